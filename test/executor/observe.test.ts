import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { AttemptObserved, RateLimitWaitObserved, RunSettled } from '../../engine/executor/executor.js';
import { ManualClock } from '../../engine/lib/clock.js';
import { ledgerIntegration, startTestEngine, waitForRuns } from './harness.js';
import { Sink } from './sink.js';

// The executor's observation hooks (what the daemon's metrics are built on): each recorded
// attempt with its outcome, and each rate-limit wait, with the values the store holds.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const env = { LEDGER_TOKEN: `ldg_test_${randomBytes(8).toString('hex')}`, LEDGER_WEBHOOK_SECRET: 'whsec_test_observe' };

describe('onAttempt', () => {
  it('reports every recorded attempt: skipped, retrying, succeeded, failed past continueOnError, dead', async () => {
    // /entries fails once with a 503, then works; /notify always refuses with a 400; /audit refuses for acct_dead.
    let entries = 0;
    const sink = await new Sink((delivery) => {
      if (delivery.path === '/entries' && (entries += 1) === 1) return { status: 503, body: '{}' };
      if (delivery.path === '/notify') return { status: 400, body: '{}' };
      if (delivery.path === '/audit' && delivery.body.includes('evt_dead')) return { status: 400, body: '{}' };
      return undefined;
    }).start();
    cleanups.push(() => sink.close());
    const steps = `    - id: maybe
      if: "event.data.amount > 100"
      call: ledger.entries.create
      with: { account: "{{ event.data.account }}", amount: "{{ event.data.amount }}" }
    - id: record
      call: ledger.entries.create
      with: { account: "{{ event.data.account }}", amount: "{{ event.data.amount }}" }
    - id: notify
      call: ledger.notify.send
      continueOnError: true
      with: { to: "{{ event.data.account }}", text: hello }
    - id: audit
      call: ledger.audit.write
      with: { ref: "{{ event.id }}" }`;
    const clock = new ManualClock();
    const attempts: AttemptObserved[] = [];
    const settled: RunSettled[] = [];
    const engine = await startTestEngine({
      integrations: { books: ledgerIntegration({ name: 'books', origin: sink.origin, steps, policy: '    concurrency: { limit: 1 }\n    retry: { initialDelay: 1s, jitter: none, maxAttempts: 3 }' }) },
      env,
      clock,
      executor: { onAttempt: (observed) => attempts.push(observed), onRunSettled: (observed) => settled.push(observed) },
    });
    cleanups.push(() => engine.close());

    const [ok] = await engine.executor.submit([{ integration: 'books', eventKey: 'evt_ok', payload: { id: 'evt_ok', data: { account: 'acct_1', amount: 5 } } }]);
    await engine.executor.drain();
    expect(attempts).toEqual([
      { runId: ok!.runId, integration: 'books', step: 'maybe', attempt: 1, outcome: 'skipped', code: undefined, durationMs: expect.any(Number) },
      { runId: ok!.runId, integration: 'books', step: 'record', attempt: 1, outcome: 'retrying', code: 'PB_HTTP_SERVER_ERROR', durationMs: expect.any(Number) },
    ]);
    clock.advance(1_000);
    await engine.executor.drain();
    expect(attempts.slice(2).map(({ step, attempt, outcome, code }) => ({ step, attempt, outcome, code }))).toEqual([
      { step: 'record', attempt: 2, outcome: 'succeeded', code: undefined },
      { step: 'notify', attempt: 1, outcome: 'failed', code: 'PB_HTTP_CLIENT_ERROR' },
      { step: 'audit', attempt: 1, outcome: 'succeeded', code: undefined },
    ]);
    // The reported durations are the recorded ones.
    const recorded = await engine.store.getAttempts(ok!.runId);
    expect(attempts.map((observed) => observed.durationMs)).toEqual(recorded.map((row) => row.durationMs));

    attempts.length = 0;
    const [dead] = await engine.executor.submit([{ integration: 'books', eventKey: 'evt_dead', payload: { id: 'evt_dead', data: { account: 'acct_2', amount: 5 } } }]);
    await engine.executor.drain();
    expect(attempts.at(-1)).toEqual({ runId: dead!.runId, integration: 'books', step: 'audit', attempt: 1, outcome: 'dead', code: 'PB_HTTP_CLIENT_ERROR', durationMs: expect.any(Number) });
    expect(settled.map((observed) => observed.outcome)).toEqual(['retrying', 'succeeded', 'dead']);
  });

  it('keeps running when a hook throws, and logs it', async () => {
    const sink = await new Sink().start();
    cleanups.push(() => sink.close());
    const steps = `    - id: record
      call: ledger.entries.create
      with: { account: "{{ event.data.account }}", amount: "{{ event.data.amount }}" }`;
    const engine = await startTestEngine({
      integrations: { books: ledgerIntegration({ name: 'books', origin: sink.origin, steps }) },
      env,
      clock: new ManualClock(),
      executor: {
        onAttempt: () => {
          throw new Error('metrics broke');
        },
        onRunSettled: () => {
          throw new Error('metrics broke');
        },
      },
    });
    cleanups.push(() => engine.close());
    const [accepted] = await engine.executor.submit([{ integration: 'books', eventKey: 'evt_1', payload: { data: { account: 'acct_1', amount: 1 } } }]);
    await engine.executor.drain();
    expect((await engine.store.getRun(accepted!.runId))?.status).toBe('succeeded');
    expect(engine.logger.text()).toContain('the onAttempt hook threw; ignored');
    expect(engine.logger.text()).toContain('the onRunSettled hook threw; ignored');
  });
});

describe('onRateLimitWait', () => {
  it('reports waits for tokens in the slot, and runs given back for a longer wait', async () => {
    const sink = await new Sink().start();
    cleanups.push(() => sink.close());
    const steps = `    - id: record
      call: ledger.entries.create
      with: { account: "{{ event.data.account }}", amount: "{{ event.data.amount }}" }`;
    const waits: RateLimitWaitObserved[] = [];
    const engine = await startTestEngine({
      // One request every 100 ms, no burst: the second run waits 100 ms in its slot; with a 150 ms
      // limit on waiting, the third (200 ms away) is given back to the queue.
      integrations: { books: ledgerIntegration({ name: 'books', origin: sink.origin, steps, policy: '    rateLimit: { requests: 10, per: 1s, burst: 1 }\n    concurrency: { limit: 3 }' }) },
      env,
      executor: { maxRateWaitMs: 150, pollIntervalMs: 10, onRateLimitWait: (observed) => waits.push(observed) },
    });
    cleanups.push(() => engine.close());
    const accepted = await engine.executor.submit([1, 2, 3].map((n) => ({ integration: 'books', eventKey: `evt_${n}`, payload: { data: { account: `acct_${n}`, amount: n } } })));
    const runIds = accepted.map((row) => row.runId);
    engine.executor.start();
    await waitForRuns(engine, 3, 5_000, ['succeeded']);
    expect(sink.deliveries).toHaveLength(3);
    const inSlot = waits.filter((wait) => !wait.deferred);
    const deferred = waits.filter((wait) => wait.deferred);
    expect(inSlot.length).toBeGreaterThanOrEqual(1);
    expect(deferred.length).toBeGreaterThanOrEqual(1);
    for (const wait of waits) {
      expect(wait.integration).toBe('books');
      expect(wait.step).toBe('record');
      expect(runIds).toContain(wait.runId);
    }
    // In the slot: at most the limit on waiting; given back: until the bucket can serve it within that limit.
    for (const wait of inSlot) {
      expect(wait.waitMs).toBeGreaterThan(0);
      expect(wait.waitMs).toBeLessThanOrEqual(150);
    }
    for (const wait of deferred) expect(wait.waitMs).toBeGreaterThan(0);
  });
});
