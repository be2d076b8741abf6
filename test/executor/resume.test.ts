import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { afterEach, describe, expect, it } from 'vitest';
import { idempotencyKeyOf } from '../../engine/executor/executor.js';
import { ManualClock } from '../../engine/lib/clock.js';
import { rejection } from '../support/errors.js';
import { ledgerIntegration, startTestEngine, type TestEngine } from './harness.js';
import { Sink, type Delivery, type Scripted } from './sink.js';

// Resuming runs safely: after the integration's steps change, after the store refused to record
// an outcome for a while, after a lease lapsed under a run still executing, and after a long wait.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const record = `    - id: record
      call: ledger.entries.create
      with: { account: "{{ event.data.account }}", amount: "{{ event.data.amount }}" }`;
const notify = `    - id: notify
      call: ledger.notify.send
      with: { to: "{{ event.data.account }}", text: hello }`;
const audit = `    - id: audit
      call: ledger.audit.write
      with: { ref: "{{ event.id }}" }`;
const policy = '    retry: { initialDelay: 1s, jitter: none, maxAttempts: 5, maxAge: 24h }';
const env = { LEDGER_TOKEN: `ldg_test_${randomBytes(8).toString('hex')}`, LEDGER_WEBHOOK_SECRET: 'whsec_test_resume' };

async function engineWith(sink: Sink, steps: string, clock: ManualClock, dir?: string, extra: Partial<Parameters<typeof startTestEngine>[0]> = {}): Promise<TestEngine> {
  const engine = await startTestEngine({ integrations: { books: ledgerIntegration({ name: 'books', origin: sink.origin, steps, policy }) }, env, clock, dir, ...extra });
  cleanups.push(() => engine.close());
  return engine;
}

async function startSink(script: (delivery: Delivery, index: number) => Scripted | Promise<Scripted> = () => undefined): Promise<Sink> {
  const sink = await new Sink(script).start();
  cleanups.push(() => sink.close());
  return sink;
}

const event = { integration: 'books', eventKey: 'evt_1', payload: { id: 'evt_1', data: { account: 'acct_1', amount: 5 } } };

describe('resuming runs', () => {
  it('dead-letters a run whose steps changed instead of calling a finished step again', async () => {
    const sink = await startSink((delivery) => (delivery.path === '/audit' ? { status: 503, body: '{}' } : undefined));
    const clock = new ManualClock();
    const before = await engineWith(sink, `${record}\n${audit}`, clock);
    const [accepted] = await before.executor.submit([event]);
    await before.executor.drain();
    expect((await before.store.getRun(accepted!.runId))?.status).toBe('retrying');
    await before.close();

    // The new revision puts a step before the one that already succeeded.
    clock.advance(60_000);
    const after = await engineWith(sink, `${notify}\n${record}\n${audit}`, clock, before.dir);
    await after.executor.drain();
    const run = await after.store.getRun(accepted!.runId);
    expect(run?.status).toBe('dead');
    expect(run?.errorCode).toBe('PB_RUN_REVISION_CHANGED');
    expect(run?.errorMessage).toContain('step 1 was "record" and is now "notify"');
    expect(sink.deliveries.map((delivery) => delivery.path)).toEqual(['/entries', '/audit']);
    const steps = await after.store.getSteps(accepted!.runId);
    expect(steps.find((row) => row.stepId === 'record')).toMatchObject({ index: 0, status: 'succeeded', output: { id: 'obj_1', path: '/entries' } });
  });

  it('replays a revision-changed dead letter once the old steps are back', async () => {
    let failAudit = true;
    const sink = await startSink((delivery) => (delivery.path === '/audit' && failAudit ? { status: 503, body: '{}' } : undefined));
    const clock = new ManualClock();
    const before = await engineWith(sink, `${record}\n${audit}`, clock);
    const [accepted] = await before.executor.submit([event]);
    await before.executor.drain();
    await before.close();
    clock.advance(60_000);
    const changed = await engineWith(sink, `${notify}\n${record}\n${audit}`, clock, before.dir);
    await changed.executor.drain();
    expect((await changed.store.getRun(accepted!.runId))?.errorCode).toBe('PB_RUN_REVISION_CHANGED');
    await changed.close();

    // The change is rolled back and the dead letter replayed: it finishes where it stopped.
    failAudit = false;
    clock.advance(60_000);
    const restored = await engineWith(sink, `${record}\n${audit}`, clock, before.dir);
    await restored.store.replayDead([accepted!.runId], clock.now());
    await restored.executor.drain();
    expect((await restored.store.getRun(accepted!.runId))?.status).toBe('succeeded');
    expect(sink.deliveries.map((delivery) => delivery.path)).toEqual(['/entries', '/audit', '/audit']);
  });

  it('dead-letters a run whose next step was removed, keeping the finished step and its output', async () => {
    const sink = await startSink((delivery) => (delivery.path === '/audit' ? { status: 503, body: '{}' } : undefined));
    const clock = new ManualClock();
    const before = await engineWith(sink, `${record}\n${audit}`, clock);
    const [accepted] = await before.executor.submit([event]);
    await before.executor.drain();
    await before.close();
    clock.advance(60_000);
    const after = await engineWith(sink, record, clock, before.dir);
    await after.executor.drain();
    expect((await after.store.getRun(accepted!.runId))?.errorCode).toBe('PB_RUN_REVISION_CHANGED');
    expect((await after.store.getSteps(accepted!.runId))[0]).toMatchObject({ stepId: 'record', status: 'succeeded', output: { id: 'obj_1', path: '/entries' } });
    expect(sink.deliveries).toHaveLength(2);
  });

  it('counts maxAge from the first attempt: an event that waited a day still gets its attempts', async () => {
    const sink = await startSink();
    const clock = new ManualClock();
    const engine = await engineWith(sink, record, clock);
    const [accepted] = await engine.executor.submit([{ ...event, receivedAt: clock.now() }]);
    clock.advance(25 * 3_600_000);
    await engine.executor.drain();
    expect((await engine.store.getRun(accepted!.runId))?.status).toBe('succeeded');
    expect(sink.deliveries).toHaveLength(1);
  });

  it('replays an old dead letter with a fresh maxAge and a new idempotency key', async () => {
    let refuse = true;
    const sink = await startSink(() => (refuse ? { status: 400, body: '{}' } : undefined));
    const clock = new ManualClock();
    const engine = await engineWith(sink, record, clock);
    const [accepted] = await engine.executor.submit([event]);
    await engine.executor.drain();
    expect((await engine.store.getRun(accepted!.runId))?.status).toBe('dead');
    clock.advance(3 * 86_400_000);
    refuse = false;
    await engine.store.replayDead([accepted!.runId], clock.now());
    await engine.executor.drain();
    expect((await engine.store.getRun(accepted!.runId))?.status).toBe('succeeded');
    expect(sink.deliveries.map((delivery) => delivery.key)).toEqual(['books:evt_1:record', 'books:evt_1:record:replay-1']);
  });

  it('does not run a run twice when its own lease lapsed while it executed', async () => {
    // The provider takes 300 ms to answer; meanwhile the clock passes the 30 s lease, so the
    // worker's own next claim hands the run back to it.
    const sink = await startSink((_delivery, index) => (index === 0 ? { delayMs: 300 } : undefined));
    const clock = new ManualClock();
    const engine = await engineWith(sink, record, clock, undefined, { executor: { pollIntervalMs: 5, leaseMs: 30_000 } });
    const [accepted] = await engine.executor.submit([event]);
    engine.executor.start();
    await waitUntil(() => sink.deliveries.length === 1);
    clock.advance(31_000);
    await waitUntil(async () => (await engine.store.getRun(accepted!.runId))?.status === 'succeeded');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(sink.deliveries).toHaveLength(1);
    expect((await engine.store.getAttempts(accepted!.runId)).map((attempt) => attempt.outcome)).toEqual(['succeeded']);
  });

  it('keeps a call the provider applied when the store refuses its record for a while: no second call', { timeout: 20_000 }, async () => {
    let locker: ReturnType<typeof spawn> | undefined;
    let stateFile = '';
    // Just as the provider applies the call, another process takes the state file's write lock
    // for 1.5 s, far past the store's 100 ms busy timeout.
    const sink = await startSink(async (_delivery, index) => {
      if (index > 0) return undefined;
      locker = spawn(process.execPath, ['-e', lockerSource, stateFile], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve) => locker!.stdout!.once('data', () => resolve()));
      return undefined;
    });
    cleanups.push(async () => void locker?.kill('SIGKILL'));
    const clock = new ManualClock();
    const engine = await engineWith(sink, record, clock, undefined, { busyTimeoutMs: 100 });
    stateFile = engine.stateFile;
    const [accepted] = await engine.executor.submit([event]);
    await engine.executor.drain();
    const run = await engine.store.getRun(accepted!.runId);
    expect(locker).toBeDefined();
    expect(run?.status).toBe('succeeded');
    expect(sink.deliveries).toHaveLength(1);
    expect((await engine.store.getAttempts(accepted!.runId)).map((attempt) => attempt.outcome)).toEqual(['succeeded']);
  });
});

describe('what a run may not do', () => {
  it('refuses events for a disabled integration', async () => {
    const sink = await startSink();
    const engine = await startTestEngine({
      integrations: { books: ledgerIntegration({ name: 'books', origin: sink.origin, steps: record, extra: '  enabled: false\n' }) },
      env,
    });
    cleanups.push(() => engine.close());
    const error = await rejection(engine.executor.submit([event]));
    expect(error.code).toBe('PB_INTEGRATION_DISABLED');
    expect(await engine.store.countRuns()).toEqual([]);
  });

  it('sends a hashed idempotency key when the event key is not a plain token', () => {
    expect(idempotencyKeyOf({ integration: 'books', eventKey: 'evt_1', replays: 0 }, { id: 'record' })).toBe('books:evt_1:record');
    for (const eventKey of ['заказ-17', 'jane@example.com', 'evt tab\there', 'x'.repeat(300)]) {
      expect(idempotencyKeyOf({ integration: 'books', eventKey, replays: 0 }, { id: 'record' })).toMatch(/^pb-[0-9a-f]{64}$/);
    }
    expect(idempotencyKeyOf({ integration: 'books', eventKey: 'jane@example.com', replays: 0 }, { id: 'record' })).not.toBe(
      idempotencyKeyOf({ integration: 'books', eventKey: 'jane@example.com', replays: 1 }, { id: 'record' }),
    );
  });
});

async function waitUntil(condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

// Holds SQLite's write lock on the file named by argv[1] for 1.5 s, saying "locked" once it has it.
const lockerSource = `
const Database = require(${JSON.stringify(createRequire(import.meta.url).resolve('better-sqlite3'))});
const db = new Database(process.argv[1]);
db.exec('BEGIN IMMEDIATE');
process.stdout.write('locked\\n');
setTimeout(() => { db.exec('COMMIT'); db.close(); }, 1500);
`;
