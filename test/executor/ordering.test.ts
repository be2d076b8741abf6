import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { Executor } from '../../engine/executor/executor.js';
import { openSqliteStore } from '../../engine/store/sqlite/sqlite-store.js';
import { ledgerIntegration, startTestEngine, waitForRuns } from './harness.js';
import { Sink } from './sink.js';

// concurrency.orderBy through a running engine: the key is evaluated after the event is accepted
// (submit runs no mapping), runs with one key execute one at a time in arrival order, and
// different keys run side by side, with one worker or two on the same state file.

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

  it('accepts events without evaluating orderBy: a failing key expression neither delays nor fails submit, and the run goes unordered', async () => {
    const sink = await new Sink().start();
    cleanups.push(() => sink.close());
    const engine = await startTestEngine({
      integrations: { books: ledgerIntegration({ name: 'books', origin: sink.origin, steps: recordStep, policy: '    concurrency: { limit: 10, orderBy: "$error(\'no key\')" }' }) },
      env,
    });
    cleanups.push(() => engine.close());
    const accepted = await engine.executor.submit([{ integration: 'books', eventKey: 'evt_1', payload: { customer: 'cus_a', n: 1 } }]);
    // Committed with the key still pending: nothing evaluated the expression yet.
    expect(await engine.store.getRun(accepted[0]!.runId)).toMatchObject({ status: 'queued', keyPending: true, orderKey: undefined });
    expect(engine.logger.text()).not.toContain('orderBy');
    await engine.executor.drain();
    expect(await engine.store.getRun(accepted[0]!.runId)).toMatchObject({ status: 'succeeded', keyPending: false, orderKey: undefined });
    expect(engine.logger.text()).toContain('orderBy failed for an event; it runs unordered');
    expect(engine.logger.text()).toContain('PB_MAPPING');
    expect(sink.deliveries).toHaveLength(1);
  });

  it('keeps one customer in order with two workers on one state file keying and claiming at once', async () => {
    const sink = await new Sink(() => ({ delayMs: 30 })).start();
    cleanups.push(() => sink.close());
    const engine = await startTestEngine({
      integrations: { books: ledgerIntegration({ name: 'books', origin: sink.origin, steps: recordStep, policy: '    concurrency: { limit: 10, orderBy: "{{ event.customer }}" }' }) },
      env,
      executor: { pollIntervalMs: 5 },
    });
    cleanups.push(() => engine.close());
    const otherStore = await openSqliteStore(engine.stateFile);
    const other = new Executor({ store: otherStore, plan: engine.plan, pollIntervalMs: 5 });
    cleanups.push(async () => {
      await other.stop(1_000);
      await otherStore.close();
    });
    engine.executor.start();
    other.start();
    // Events arrive while both workers run, in small batches through both.
    for (let batch = 0; batch < 6; batch += 1) {
      const events = Array.from({ length: 4 }, (_, index) => {
        const n = batch * 4 + index;
        return { integration: 'books', eventKey: `evt_${n}`, payload: { customer: `cus_${n % 3}`, n } };
      });
      await (batch % 2 === 0 ? engine.executor : other).submit(events);
    }
    await waitForRuns(engine, 24, 15_000, ['succeeded']);
    expectOrdered(sink, 3, 24, 25);
  });
});

const env = { LEDGER_TOKEN: `ldg_test_${randomBytes(8).toString('hex')}`, LEDGER_WEBHOOK_SECRET: 'whsec_test_order' };

const recordStep = `    - id: record
      call: ledger.entries.create
      with: { account: "{{ event.customer }}", amount: "{{ event.n }}" }`;

/**
 * Every customer's deliveries came in event order and never overlapped: each began at least
 * `minGapMs` after the previous one of the same customer began (the sink takes longer to answer).
 */
function expectOrdered(sink: Sink, customers: number, events: number, minGapMs: number): void {
  const sent = sink.deliveries.map((delivery) => ({ at: delivery.at, body: JSON.parse(delivery.body) as { account: string; amount: number } }));
  expect(sent).toHaveLength(events);
  for (let customer = 0; customer < customers; customer += 1) {
    const mine = sent.filter((delivery) => delivery.body.account === `cus_${customer}`);
    const expected = Array.from({ length: events }, (_, n) => n).filter((n) => n % customers === customer);
    expect(mine.map((delivery) => delivery.body.amount)).toEqual(expected);
    for (let i = 1; i < mine.length; i += 1) expect(mine[i]!.at - mine[i - 1]!.at).toBeGreaterThanOrEqual(minGapMs);
  }
}
