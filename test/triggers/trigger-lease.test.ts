import { afterEach, describe, expect, it } from 'vitest';
import { PatchbayError } from '../../engine/diag/errors.js';
import { ManualClock } from '../../engine/lib/clock.js';
import { pollIntegration, scheduleIntegration, ticket, TicketApi, TriggerWorld } from './trigger-harness.js';

// Two daemons (two TriggerSchedulers, each with its own SQLite connection) on one state file,
// driven by one ManualClock, against a slow paginated API on 127.0.0.1: the trigger lease keeps
// them from polling one integration at once, hands the cursor from one to the other, survives
// long listings by renewal, and is taken over when its holder dies.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const start = Date.UTC(2026, 2, 2, 9, 1); // 09:01 UTC; polls tick every 5 minutes
const initial = '2026-03-01T00:00:00.000Z';
const leaseMs = 120_000;

async function api(): Promise<TicketApi> {
  const server = await new TicketApi().start();
  cleanups.push(() => server.close());
  return server;
}

/** A daemon named `owner`; with `shareWith`, on that daemon's state file. */
async function daemon(owner: string, integrations: Record<string, string>, clock: ManualClock, shareWith?: TriggerWorld, maxPagesPerPoll = 100): Promise<TriggerWorld> {
  const created = await new TriggerWorld(integrations, clock, { owner, leaseMs, maxPagesPerPoll }, shareWith).start();
  cleanups.push(() => created.stop());
  return created;
}

const feed = (origin: string, extra = '') =>
  pollIntegration(
    'feed',
    origin,
    `      schedule: "*/5 * * * *"
      with: { limit: 2 }
      cursor: { field: updated_at, param: updated_since, initial: "${initial}" }
      itemId: id
${extra}`,
  );

const skipped = (world: TriggerWorld) => world.logger.lines.filter((line) => line.level === 'debug' && line.message.includes('another daemon holds this trigger'));

describe('trigger leases between daemons sharing a state file', () => {
  it('lets one daemon at a time poll an integration, each continuing from the cursor the other left, every item once', async () => {
    const server = await api();
    server.delayMs = 40;
    for (let n = 1; n <= 7; n += 1) server.add(ticket(`t${n}`, `2026-03-01T1${n}:00:00Z`));
    const clock = new ManualClock(start);
    // Three pages per poll: the listing of 4 pages needs two polls, so the second continues the first's.
    const a = await daemon('daemon-a', { feed: feed(server.origin) }, clock, undefined, 3);
    const b = await daemon('daemon-b', { feed: feed(server.origin) }, clock, a, 3);

    // Both due at 09:05 at the same moment: one polls, the other skips quietly.
    clock.set(Date.UTC(2026, 2, 2, 9, 5));
    await Promise.all([a.scheduler.runDue(), b.scheduler.runDue()]);
    expect(server.maxConcurrent).toBe(1);
    expect(a.polls).toMatchObject([{ outcome: 'partial', pages: 3, accepted: 6 }]);
    expect(b.polls).toEqual([]);
    expect(skipped(b)).toHaveLength(1);
    expect(b.logger.lines.filter((line) => line.level === 'error' || line.level === 'warn')).toEqual([]);
    expect(await a.cursor('feed')).toMatchObject({ value: initial, page: { page_token: '6' } });

    // B looks again 30 s later: the tick was handled, nothing to do, no request.
    clock.set(Date.UTC(2026, 2, 2, 9, 5, 30));
    await Promise.all([a.scheduler.runDue(), b.scheduler.runDue()]);
    expect(server.requests).toHaveLength(3);

    // At 09:10 B takes the lease first and A asks while B's poll is in flight: B continues from
    // A's page position (it read the state again under the lease), A stays out.
    server.add(ticket('t8', '2026-03-02T09:07:00Z'));
    clock.set(Date.UTC(2026, 2, 2, 9, 10));
    const first = b.scheduler.runDue();
    await new Promise((resolve) => setTimeout(resolve, 10));
    await a.scheduler.runDue();
    await first;
    expect(server.requests.slice(3).map((request) => request.query)).toEqual([{ limit: '2', updated_since: initial, page_token: '6' }]);
    expect(b.polls).toMatchObject([{ outcome: 'succeeded', pages: 1, accepted: 2 }]);
    expect(skipped(a)).toHaveLength(1);

    // 09:15: whoever polls starts from the cursor B moved.
    clock.set(Date.UTC(2026, 2, 2, 9, 15));
    await Promise.all([a.scheduler.runDue(), b.scheduler.runDue()]);
    expect(server.requests.slice(4).map((request) => request.query.updated_since)).toEqual(['2026-03-02T09:07:00Z']);

    expect(server.maxConcurrent).toBe(1);
    const keys = await a.keys('feed');
    expect(keys).toEqual(['t1', 't2', 't3', 't4', 't5', 't6', 't7', 't8']);
    expect(await b.keys('feed')).toEqual(keys);
    expect(await b.cursor('feed')).toEqual({ v: 1, last: '2026-03-02T09:15:00.000Z', value: '2026-03-02T09:07:00Z' });
  });

  it('renews the lease page by page, so a listing longer than the lease is not taken over half-way', async () => {
    const server = await api();
    server.delayMs = 30;
    for (let n = 1; n <= 8; n += 1) server.add(ticket(`t${n}`, `2026-03-01T1${n}:00:00Z`));
    const clock = new ManualClock(start);
    const a = await daemon('daemon-a', { feed: feed(server.origin) }, clock);
    const b = await daemon('daemon-b', { feed: feed(server.origin) }, clock, a);
    clock.set(Date.UTC(2026, 2, 2, 9, 5));
    // Each page takes 90 s of the manual clock: the whole listing (4 pages, 6 minutes) outlasts
    // the 2-minute lease. B becomes due again while page 4 is being answered (09:09:30).
    const late: Promise<void>[] = [];
    server.failWhen = (_query, index) => {
      clock.advance(90_000);
      if (index === 3) late.push(b.scheduler.runDue());
      return false;
    };
    await a.scheduler.runDue();
    await Promise.all(late);
    expect(late).toHaveLength(1);
    expect(a.polls).toMatchObject([{ outcome: 'succeeded', pages: 4, accepted: 8 }]);
    expect(b.polls).toEqual([]);
    expect(skipped(b)).toHaveLength(1);
    expect(server.maxConcurrent).toBe(1);
    expect(server.requests).toHaveLength(4);
    expect(await a.keys('feed')).toEqual(['t1', 't2', 't3', 't4', 't5', 't6', 't7', 't8']);
  });

  it('stops a poll that outlived its lease before it writes the cursor the new holder owns', async () => {
    const server = await api();
    server.delayMs = 30;
    for (let n = 1; n <= 4; n += 1) server.add(ticket(`t${n}`, `2026-03-01T1${n}:00:00Z`));
    const clock = new ManualClock(start);
    const a = await daemon('daemon-a', { feed: feed(server.origin) }, clock);
    clock.set(Date.UTC(2026, 2, 2, 9, 5));
    // Page 1 takes longer than the lease, and meanwhile another daemon takes the integration over.
    let takenOver: Promise<boolean> | undefined;
    server.failWhen = (_query, index) => {
      if (index === 0) {
        clock.advance(leaseMs);
        takenOver = a.store.acquireTriggerLease('feed', 'daemon-b', clock.now(), leaseMs);
      }
      return false;
    };
    const cursorBefore = await a.cursor('feed');
    await a.scheduler.runDue();
    expect(await takenOver).toBe(true);
    expect(a.polls).toMatchObject([{ outcome: 'failed', pages: 1, code: 'PB_TRIGGER_LEASE_LOST' }]);
    expect(server.requests).toHaveLength(1);
    expect(await a.cursor('feed')).toEqual(cursorBefore);
    // Its lease is the new holder's: A's release at the end of its job did not free it.
    expect(await a.store.acquireTriggerLease('feed', 'daemon-a', clock.now(), leaseMs)).toBe(false);
  });

  it('takes over the poll of a daemon that died holding the lease once the lease runs out, from its cursor', async () => {
    const server = await api();
    for (let n = 1; n <= 3; n += 1) server.add(ticket(`t${n}`, `2026-03-01T1${n}:00:00Z`));
    const clock = new ManualClock(start);
    const b = await daemon('daemon-b', { feed: feed(server.origin) }, clock);
    // Daemon A (with a 6-minute lease) took the 09:05 tick, saved its first page and its
    // position, and was killed: it never released the lease, which runs out at 09:11.
    clock.set(Date.UTC(2026, 2, 2, 9, 5));
    expect(await b.store.acquireTriggerLease('feed', 'daemon-a', clock.now(), 6 * 60_000)).toBe(true);
    await b.store.setCursor('feed', JSON.stringify({ v: 1, last: '2026-03-02T09:05:00.000Z', value: initial, high: '2026-03-01T12:00:00Z', page: { page_token: '2' } }), clock.now());
    await b.scheduler.runDue();
    expect(skipped(b)).toHaveLength(1);

    // B looks again every 30 s and at the 09:10 tick; the lease is still A's until 09:11:00.
    for (let at = Date.UTC(2026, 2, 2, 9, 5, 30); at < Date.UTC(2026, 2, 2, 9, 11); at += 30_000) {
      clock.set(at);
      await b.scheduler.runDue();
    }
    expect(server.requests).toHaveLength(0);
    expect(skipped(b).length).toBeGreaterThanOrEqual(2);
    clock.set(Date.UTC(2026, 2, 2, 9, 11));
    await b.scheduler.runDue();
    expect(server.requests.map((request) => request.query)).toEqual([{ limit: '2', updated_since: initial, page_token: '2' }]);
    expect(b.polls).toMatchObject([{ outcome: 'succeeded', scheduledAt: '2026-03-02T09:10:00.000Z', accepted: 1 }]);
    expect(await b.keys('feed')).toEqual(['t3']);
    expect(await b.cursor('feed')).toEqual({ v: 1, last: '2026-03-02T09:10:00.000Z', value: '2026-03-01T13:00:00Z' });
    expect(b.logger.lines.filter((line) => line.level === 'error')).toEqual([]);
  });

  it('fires the schedule tick of a daemon that died holding the lease, as on time, once the lease runs out', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 24, 7, 30));
    const digest = scheduleIntegration('digest', '      cron: "0 * * * *"\n      catchUp: skip\n');
    const b = await daemon('daemon-b', { digest }, clock);
    clock.set(Date.UTC(2026, 10, 24, 8, 0));
    expect(await b.store.acquireTriggerLease('digest', 'daemon-a', clock.now(), leaseMs)).toBe(true);
    await b.scheduler.runDue();
    expect(await b.keys('digest')).toEqual([]);
    // Three minutes late, past the 1-minute tolerance: still fired, not skipped as missed.
    for (let second = 30; second <= 180; second += 30) {
      clock.set(Date.UTC(2026, 10, 24, 8, 0) + second * 1000);
      await b.scheduler.runDue();
      if (second < 120) expect(await b.keys('digest')).toEqual([]);
    }
    expect(await b.keys('digest')).toEqual(['tick:2026-11-24T08:00:00.000Z']);
    expect(b.ticks).toMatchObject([{ outcome: 'fired', scheduledAt: '2026-11-24T08:00:00.000Z', missedTicks: 0, accepted: true }]);
    expect(b.scheduler.status()[0]).toMatchObject({ nextRunAt: '2026-11-24T09:00:00.000Z', consecutiveFailures: 0 });
  });

  it('treats a store failure taking the lease as a failure of the tick, retried shortly', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 24, 7, 30));
    const digest = scheduleIntegration('digest', '      cron: "0 * * * *"\n');
    const b = await daemon('daemon-b', { digest }, clock);
    const store = b.store;
    const realAcquire = store.acquireTriggerLease.bind(store);
    let failures = 1;
    store.acquireTriggerLease = (...args) => (failures-- > 0 ? Promise.reject(new PatchbayError('PB_STATE_UNAVAILABLE', 'the state database dropped the connection')) : realAcquire(...args));
    clock.set(Date.UTC(2026, 10, 24, 8, 0, 1));
    await b.scheduler.runDue();
    expect(await b.keys('digest')).toEqual([]);
    expect(b.logger.lines.some((line) => line.level === 'error' && line.message.includes('could not take the trigger lease'))).toBe(true);
    expect(b.scheduler.status()[0]).toMatchObject({ consecutiveFailures: 1, nextRunAt: '2026-11-24T08:00:31.000Z', error: { code: 'PB_STATE_UNAVAILABLE' } });
    expect(b.ticks).toMatchObject([{ outcome: 'failed', scheduledAt: '2026-11-24T08:00:00.000Z', code: 'PB_STATE_UNAVAILABLE' }]);
    clock.set(Date.UTC(2026, 10, 24, 8, 0, 31));
    await b.scheduler.runDue();
    expect(await b.keys('digest')).toEqual(['tick:2026-11-24T08:00:00.000Z']);
    expect(b.scheduler.status()[0]).toMatchObject({ consecutiveFailures: 0 });
    expect(b.ticks.map((tick) => tick.outcome)).toEqual(['failed', 'fired']);
  });
});
