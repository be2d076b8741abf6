import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { idempotencyKeyOf } from '../../engine/executor/executor.js';
import { ManualClock } from '../../engine/lib/clock.js';
import { ledgerIntegration, startTestEngine, type TestEngine } from './harness.js';
import { Sink, type Delivery, type Scripted } from './sink.js';

// The executor against a provider that misbehaves in a scripted order, with a manual clock: every
// delay the executor chooses is read back from the store's durable timers and checked exactly.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(script: (delivery: Delivery, index: number) => Scripted, steps: string, policy: string): Promise<{ engine: TestEngine; sink: Sink; clock: ManualClock; token: string }> {
  const sink = await new Sink(script).start();
  cleanups.push(() => sink.close());
  const clock = new ManualClock(Date.UTC(2026, 10, 24, 12, 0, 0));
  const token = `ldg_test_${randomBytes(12).toString('hex')}`;
  const engine = await startTestEngine({
    integrations: { books: ledgerIntegration({ name: 'books', origin: sink.origin, steps, policy }) },
    env: { LEDGER_TOKEN: token, LEDGER_WEBHOOK_SECRET: 'whsec_test_hostile' },
    clock,
    // No jitter source surprises: the policy below turns jitter off; this makes any use visible.
    executor: { random: () => 0.5 },
  });
  cleanups.push(() => engine.close());
  return { engine, sink, clock, token };
}

const oneStep = `    - id: record
      call: ledger.entries.create
      with: { account: "{{ event.data.account }}", amount: "{{ event.data.amount }}" }`;

function retryPolicy(fields: string): string {
  return `    retry: { backoff: exponential, initialDelay: 1s, maxDelay: 1m, jitter: none, ${fields} }
    timeout: { connect: 1s, headers: 200ms, total: 1s }`;
}

async function submitOne(engine: TestEngine, clock: ManualClock): Promise<string> {
  const [accepted] = await engine.executor.submit([
    { integration: 'books', eventKey: 'evt_1', type: 'entry.requested', payload: { id: 'evt_1', type: 'entry.requested', data: { account: 'acct_9', amount: 250 } }, receivedAt: clock.now() },
  ]);
  return accepted!.runId;
}

describe('executor against a hostile provider', () => {
  it('retries 429, 500, 503, a reset and a stall on the delays it should, then dead-letters malformed JSON', async () => {
    const script: Scripted[] = [
      { status: 429, headers: { 'retry-after': '7' }, body: '{"error":{"message":"slow down"}}' },
      { status: 500, body: '{"error":{"message":"boom"}}' },
      { status: 503, headers: { 'retry-after': '10' }, body: '{}' },
      { reset: true },
      { stallMs: 3_000 },
      { status: 200, body: '{"id": "obj_1", ' },
    ];
    const { engine, sink, clock } = await setup((_delivery, index) => script[index], oneStep, retryPolicy('maxAttempts: 8, maxAge: 1h'));
    const runId = await submitOne(engine, clock);
    const start = clock.now();

    // Attempt 1 → 429 with Retry-After 7 s, longer than the 1 s backoff: the timer says 7 s.
    await engine.executor.drain();
    let run = await engine.store.getRun(runId);
    expect(run?.status).toBe('retrying');
    expect(run!.availableAt - start).toBe(7_000);

    // Not due yet: nothing is sent.
    clock.advance(6_999);
    await engine.executor.drain();
    expect(sink.deliveries).toHaveLength(1);

    // Attempt 2 → 500: exponential backoff after the second failure, 2 s.
    clock.advance(1);
    await engine.executor.drain();
    run = await engine.store.getRun(runId);
    expect(sink.deliveries).toHaveLength(2);
    expect(run!.availableAt - clock.now()).toBe(2_000);

    // Attempt 3 → 503 with Retry-After 10 s, longer than the 4 s backoff.
    clock.advance(2_000);
    await engine.executor.drain();
    run = await engine.store.getRun(runId);
    expect(run!.availableAt - clock.now()).toBe(10_000);

    // Attempt 4 → connection reset: 8 s.
    clock.advance(10_000);
    await engine.executor.drain();
    run = await engine.store.getRun(runId);
    expect(run!.availableAt - clock.now()).toBe(8_000);

    // Attempt 5 → no headers within 200 ms: a timeout, 16 s.
    clock.advance(8_000);
    await engine.executor.drain();
    run = await engine.store.getRun(runId);
    expect(run!.availableAt - clock.now()).toBe(16_000);

    // Attempt 6 → a 200 whose JSON is cut short: terminal, the run is a dead letter.
    clock.advance(16_000);
    await engine.executor.drain();
    run = await engine.store.getRun(runId);
    expect(run?.status).toBe('dead');
    expect(run?.errorCode).toBe('PB_HTTP_MALFORMED_BODY');
    expect(run?.errorStep).toBe('record');
    expect(run?.errorMessage).toContain('not retryable');

    const attempts = await engine.store.getAttempts(runId);
    expect(attempts.map((attempt) => [attempt.outcome, attempt.errorCode])).toEqual([
      ['failed', 'PB_HTTP_RATE_LIMITED'],
      ['failed', 'PB_HTTP_SERVER_ERROR'],
      ['failed', 'PB_HTTP_UNAVAILABLE'],
      ['failed', 'PB_HTTP_NETWORK'],
      ['failed', 'PB_HTTP_TIMEOUT'],
      ['dead', 'PB_HTTP_MALFORMED_BODY'],
    ]);
    expect(attempts.map((attempt) => attempt.attempt)).toEqual([1, 2, 3, 4, 5, 6]);
    // Every attempt carried the same idempotency key.
    const key = idempotencyKeyOf({ integration: 'books', eventKey: 'evt_1', replays: 0 }, { id: 'record' });
    expect(sink.deliveries.map((delivery) => delivery.key)).toEqual(Array(6).fill(key));
  });

  it('gives up after maxAttempts with the last failure as the reason', async () => {
    const { engine, sink, clock } = await setup(() => ({ status: 502, body: '{}' }), oneStep, retryPolicy('maxAttempts: 3'));
    const runId = await submitOne(engine, clock);
    for (let index = 0; index < 3; index += 1) {
      await engine.executor.drain();
      clock.advance(60_000);
    }
    await engine.executor.drain();
    const run = await engine.store.getRun(runId);
    expect(sink.deliveries).toHaveLength(3);
    expect(run?.status).toBe('dead');
    expect(run?.errorCode).toBe('PB_HTTP_SERVER_ERROR');
    expect(run?.errorMessage).toContain('gave up after 3 of 3 attempts');
  });

  it('sends a 4xx straight to the dead letters, after one attempt', async () => {
    const { engine, sink, clock } = await setup(() => ({ status: 422, body: '{"error":{"code":"invalid_account","message":"no such account"}}' }), oneStep, retryPolicy('maxAttempts: 5'));
    const runId = await submitOne(engine, clock);
    await engine.executor.drain();
    const run = await engine.store.getRun(runId);
    expect(sink.deliveries).toHaveLength(1);
    expect(run?.status).toBe('dead');
    expect(run?.errorCode).toBe('PB_HTTP_CLIENT_ERROR');
    const [attempt] = await engine.store.getAttempts(runId);
    expect(attempt?.status).toBe(422);
  });

  it('does not retry past maxAge, even when the provider asks to wait', async () => {
    const { engine, sink, clock } = await setup(() => ({ status: 429, headers: { 'retry-after': '120' }, body: '{}' }), oneStep, retryPolicy('maxAttempts: 5, maxAge: 1m'));
    const runId = await submitOne(engine, clock);
    await engine.executor.drain();
    const run = await engine.store.getRun(runId);
    expect(sink.deliveries).toHaveLength(1);
    expect(run?.status).toBe('dead');
    expect(run?.errorCode).toBe('PB_HTTP_RATE_LIMITED');
    expect(run?.errorMessage).toContain('maxAge');
  });

  it('does not retry a failure class the policy leaves out of retryOn', async () => {
    const { engine, sink, clock } = await setup(() => ({ stallMs: 2_000 }), oneStep, retryPolicy('maxAttempts: 5, retryOn: [ rateLimited, serverError ]'));
    const runId = await submitOne(engine, clock);
    await engine.executor.drain();
    const run = await engine.store.getRun(runId);
    expect(sink.deliveries).toHaveLength(1);
    expect(run?.status).toBe('dead');
    expect(run?.errorCode).toBe('PB_HTTP_TIMEOUT');
    expect(run?.errorMessage).toContain('does not retry this kind of failure');
  });

  it('skips a step whose condition is false, goes past a failure with continueOnError, and feeds outputs forward', async () => {
    const steps = `    - id: maybe
      call: ledger.notify.send
      if: "{{ event.data.amount > 1000 }}"
      with: { to: big-spenders, text: "{{ 'big: ' & event.data.amount }}" }
    - id: record
      call: ledger.entries.create
      with: { account: "{{ event.data.account }}", amount: "{{ event.data.amount }}" }
      continueOnError: true
    - id: audit
      call: ledger.audit.write
      with: { ref: "{{ event.id }}", detail: "{{ steps.record.status }}" }`;
    const { engine, sink, clock } = await setup((delivery) => (delivery.path === '/entries' ? { status: 400, body: '{}' } : undefined), steps, retryPolicy('maxAttempts: 2'));
    const runId = await submitOne(engine, clock);
    await engine.executor.drain();
    const run = await engine.store.getRun(runId);
    expect(run?.status).toBe('succeeded');
    const stepRows = await engine.store.getSteps(runId);
    expect(stepRows.map((row) => [row.stepId, row.status])).toEqual([
      ['maybe', 'skipped'],
      ['record', 'failed'],
      ['audit', 'succeeded'],
    ]);
    expect(sink.deliveries.map((delivery) => delivery.path)).toEqual(['/entries', '/audit']);
    expect(JSON.parse(sink.deliveries[1]!.body)).toEqual({ ref: 'evt_1', detail: 'failed' });
  });

  it('dead-letters mapped inputs that do not match the operation schema, naming the input but not the value', async () => {
    const steps = `    - id: record
      call: ledger.entries.create
      with: { account: "{{ event.data.account }}", amount: "{{ event.data.account }}" }`;
    const { engine, sink, clock } = await setup(() => undefined, steps, retryPolicy('maxAttempts: 3'));
    const runId = await submitOne(engine, clock);
    await engine.executor.drain();
    const run = await engine.store.getRun(runId);
    expect(sink.deliveries).toHaveLength(0);
    expect(run?.status).toBe('dead');
    expect(run?.errorCode).toBe('PB_STEP_INPUT_INVALID');
    expect(run?.errorMessage).toContain('with.amount: must be integer');
    expect(run?.errorMessage).not.toContain('acct_9');
  });

  it('resumes a run whose worker died mid-step: the attempt counts as interrupted and the same key is sent again', async () => {
    const { engine, sink, clock } = await setup(() => undefined, oneStep, retryPolicy('maxAttempts: 3'));
    const runId = await submitOne(engine, clock);
    // Another worker claims the run and dies without writing anything.
    const [claimed] = await engine.store.claimRuns({ owner: 'gone-host/1/1', now: clock.now(), leaseMs: 30_000, capacity: new Map([['books', 1]]) });
    expect(claimed?.run.id).toBe(runId);
    await engine.executor.drain();
    expect(sink.deliveries).toHaveLength(0);
    clock.advance(30_000);
    await engine.executor.drain();
    const run = await engine.store.getRun(runId);
    expect(run?.status).toBe('succeeded');
    const attempts = await engine.store.getAttempts(runId);
    expect(attempts.map((attempt) => attempt.outcome)).toEqual(['interrupted', 'succeeded']);
    expect(sink.deliveries[0]!.key).toBe(idempotencyKeyOf({ integration: 'books', eventKey: 'evt_1', replays: 0 }, { id: 'record' }));
  });

  it('keeps a retry timer across a restart: the new engine waits for it, then retries', async () => {
    const first = await setup((_delivery, index) => (index === 0 ? { status: 503, headers: { 'retry-after': '30' }, body: '{}' } : undefined), oneStep, retryPolicy('maxAttempts: 3'));
    const runId = await submitOne(first.engine, first.clock);
    await first.engine.executor.drain();
    const due = (await first.engine.store.getRun(runId))!.availableAt;
    expect(due - first.clock.now()).toBe(30_000);
    await first.engine.close();

    // A new engine (new store handle, new executor) on the same folder and state file.
    const clock = new ManualClock(first.clock.now() + 29_000);
    const again = await startTestEngine({
      dir: first.engine.dir,
      integrations: { books: ledgerIntegration({ name: 'books', origin: first.sink.origin, steps: oneStep, policy: retryPolicy('maxAttempts: 3') }) },
      env: { LEDGER_TOKEN: first.token, LEDGER_WEBHOOK_SECRET: 'whsec_test_hostile' },
      clock,
    });
    cleanups.push(() => again.close());
    await again.executor.drain();
    expect(first.sink.deliveries).toHaveLength(1);
    clock.set(due);
    await again.executor.drain();
    expect(first.sink.deliveries).toHaveLength(2);
    expect((await again.store.getRun(runId))?.status).toBe('succeeded');
  });

  it('accepts an event once: a duplicate delivery gets the same run and sends nothing more', async () => {
    const { engine, sink, clock } = await setup(() => undefined, oneStep, retryPolicy('maxAttempts: 3'));
    const first = await submitOne(engine, clock);
    await engine.executor.drain();
    const [again] = await engine.executor.submit([{ integration: 'books', eventKey: 'evt_1', payload: { id: 'evt_1', data: { account: 'acct_9', amount: 250 } } }]);
    expect(again).toEqual({ accepted: false, runId: first });
    await engine.executor.drain();
    expect(sink.deliveries).toHaveLength(1);
  });
});
