import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../engine/lib/clock.js';
import { ledgerIntegration, startTestEngine, waitForRuns } from './harness.js';
import { Sink, type Delivery } from './sink.js';

// Rate limits are per credential: two integrations that use the same token share one budget,
// measured where it matters, at the provider; a third with its own token is not slowed by them.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const step = `    - id: record
      call: ledger.entries.create
      with: { account: "{{ event.data.account }}", amount: "{{ event.data.amount }}" }`;
const policy = `    rateLimit: { requests: 20, per: 1s, burst: 5 }
    concurrency: { limit: 50 }`;

/** The most deliveries seen in any window of `windowMs` milliseconds. */
function busiestWindow(deliveries: readonly Delivery[], windowMs: number): number {
  const times = deliveries.map((delivery) => delivery.at).sort((a, b) => a - b);
  let most = 0;
  let start = 0;
  for (let end = 0; end < times.length; end += 1) {
    while (times[end]! - times[start]! >= windowMs) start += 1;
    most = Math.max(most, end - start + 1);
  }
  return most;
}

describe('rate limits shared by credential', () => {
  it('keeps two integrations sharing a token within the token limit together, and leaves another token alone', async () => {
    const shared = await new Sink().start();
    const other = await new Sink().start();
    cleanups.push(() => shared.close(), () => other.close());
    const engine = await startTestEngine({
      integrations: {
        alpha: ledgerIntegration({ name: 'alpha', origin: shared.origin, steps: step, policy }),
        beta: ledgerIntegration({ name: 'beta', origin: shared.origin, steps: step, policy }),
        gamma: ledgerIntegration({ name: 'gamma', origin: other.origin, steps: step, policy, tokenEnv: 'OTHER_TOKEN' }),
      },
      env: { LEDGER_TOKEN: `ldg_test_${randomBytes(8).toString('hex')}`, OTHER_TOKEN: `ldg_test_${randomBytes(8).toString('hex')}`, LEDGER_WEBHOOK_SECRET: 'whsec_test_rate' },
      executor: { pollIntervalMs: 20 },
    });
    cleanups.push(() => engine.close());

    const events = (integration: string, count: number) =>
      Array.from({ length: count }, (_, index) => ({ integration, eventKey: `${integration}-${index}`, payload: { data: { account: `acct_${index}`, amount: index + 1 } } }));
    await engine.executor.submit([...events('alpha', 30), ...events('beta', 30), ...events('gamma', 10)]);
    const started = Date.now();
    engine.executor.start();
    await waitForRuns(engine, 70, 15_000, ['succeeded']);
    const elapsedMs = Date.now() - started;

    expect(shared.deliveries).toHaveLength(60);
    expect(other.deliveries).toHaveLength(10);
    // Token bucket bound: burst + rate × window, plus one for a delivery on the window's edge.
    for (const windowMs of [100, 250, 500, 1_000]) {
      expect(busiestWindow(shared.deliveries, windowMs), `window ${windowMs} ms`).toBeLessThanOrEqual(5 + Math.ceil((20 * windowMs) / 1_000) + 1);
    }
    // 60 requests at 20/s after a burst of 5 need at least 2.75 s.
    expect(elapsedMs).toBeGreaterThanOrEqual(2_500);
    // The other token's 10 requests were not queued behind the shared budget.
    const lastOther = Math.max(...other.deliveries.map((delivery) => delivery.at));
    const lastShared = Math.max(...shared.deliveries.map((delivery) => delivery.at));
    expect(lastOther).toBeLessThan(lastShared - 1_000);
  });
});

describe('pauses and limit keys', () => {
  it('pauses every run of a credential after a 429, even for a provider that declares no limit', async () => {
    const sink = await new Sink((_delivery, index) => (index === 0 ? { status: 429, headers: { 'retry-after': '60' }, body: '{}' } : undefined)).start();
    cleanups.push(() => sink.close());
    const clock = new ManualClock();
    const engine = await startTestEngine({
      integrations: { solo: ledgerIntegration({ name: 'solo', origin: sink.origin, steps: step, policy: '    concurrency: { limit: 1 }\n    retry: { jitter: none }' }) },
      env: { LEDGER_TOKEN: `ldg_test_${randomBytes(8).toString('hex')}`, LEDGER_WEBHOOK_SECRET: 'whsec_test_pause' },
      clock,
    });
    cleanups.push(() => engine.close());
    await engine.executor.submit([0, 1, 2].map((index) => ({ integration: 'solo', eventKey: `e${index}`, payload: { data: { account: `a${index}`, amount: 1 } } })));
    await engine.executor.drain();
    expect(sink.deliveries).toHaveLength(1);
    // Once the minute has passed, all three go.
    clock.advance(60_000);
    await engine.executor.drain();
    expect(sink.deliveries).toHaveLength(4);
    expect(await engine.store.countRuns()).toEqual([{ integration: 'solo', status: 'succeeded', count: 3 }]);
  });

  it('shares a manifest limit between integrations that write the same limit differently', async () => {
    const sink = await new Sink().start();
    cleanups.push(() => sink.close());
    const engine = await startTestEngine({
      integrations: {
        one: ledgerIntegration({ name: 'one', origin: sink.origin, steps: step, policy: '    rateLimit: { requests: 10, per: 1s }' }),
        two: ledgerIntegration({ name: 'two', origin: sink.origin, steps: step, policy: '    rateLimit: { requests: 10, per: 1s, burst: 10 }' }),
      },
      env: { LEDGER_TOKEN: `ldg_test_${randomBytes(8).toString('hex')}`, LEDGER_WEBHOOK_SECRET: 'whsec_test_keys' },
    });
    cleanups.push(() => engine.close());
    const keys = ['one', 'two'].map((name) => engine.plan.integrations.get(name)!.steps[0]!.limits.map((limit) => limit.key));
    expect(keys[0]).toEqual(keys[1]);
    expect(keys[0]).toHaveLength(1);
  });
});
