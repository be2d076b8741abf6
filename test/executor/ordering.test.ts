import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { ledgerIntegration, startTestEngine, waitForRuns } from './harness.js';
import { Sink } from './sink.js';

// concurrency.orderBy through a running engine: the key is evaluated when the event is accepted,
// runs with one key execute one at a time in arrival order, and different keys run side by side.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('ordering by key', () => {
  it('runs the events of one customer one at a time, in order, and customers in parallel', async () => {
    // Every answer takes 60 ms, so overlapping runs of one key would show as arrivals closer than that.
    const sink = await new Sink(() => ({ delayMs: 60 })).start();
    cleanups.push(() => sink.close());
    const steps = `    - id: record
      call: ledger.entries.create
      with: { account: "{{ event.customer }}", amount: "{{ event.n }}" }`;
    const engine = await startTestEngine({
      integrations: { books: ledgerIntegration({ name: 'books', origin: sink.origin, steps, policy: '    concurrency: { limit: 10, orderBy: "{{ event.customer }}" }' }) },
      env: { LEDGER_TOKEN: `ldg_test_${randomBytes(8).toString('hex')}`, LEDGER_WEBHOOK_SECRET: 'whsec_test_order' },
      executor: { pollIntervalMs: 5 },
    });
    cleanups.push(() => engine.close());
    const events = Array.from({ length: 8 }, (_, n) => ({ integration: 'books', eventKey: `evt_${n}`, payload: { customer: n % 2 === 0 ? 'cus_a' : 'cus_b', n } }));
    await engine.executor.submit(events);
    engine.executor.start();
    await waitForRuns(engine, 8, 10_000, ['succeeded']);

    const sent = sink.deliveries.map((delivery) => ({ at: delivery.at, body: JSON.parse(delivery.body) as { account: string; amount: number } }));
    for (const customer of ['cus_a', 'cus_b']) {
      const mine = sent.filter((delivery) => delivery.body.account === customer);
      expect(mine.map((delivery) => delivery.body.amount)).toEqual(customer === 'cus_a' ? [0, 2, 4, 6] : [1, 3, 5, 7]);
      for (let i = 1; i < mine.length; i += 1) expect(mine[i]!.at - mine[i - 1]!.at).toBeGreaterThanOrEqual(55);
    }
    // The two customers were not serialised behind one another.
    expect(Math.abs(sent[0]!.at - sent[1]!.at)).toBeLessThan(50);
  });
});
