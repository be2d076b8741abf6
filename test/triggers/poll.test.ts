import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../engine/lib/clock.js';
import { pollIntegration, ticket, TicketApi, token, TriggerWorld } from './trigger-harness.js';

// Poll triggers against a real paginated API on 127.0.0.1 and a real SQLite state file, driven
// by a ManualClock: pages followed, one run per item, the cursor persisted page by page, no
// duplicates and no gaps across restarts and failures, catch-up, no overlap, jitter.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const start = Date.UTC(2026, 2, 2, 9, 1); // 09:01 UTC; the schedule ticks every 5 minutes
const initial = '2026-03-01T00:00:00.000Z';

async function api(): Promise<TicketApi> {
  const server = await new TicketApi().start();
  cleanups.push(() => server.close());
  return server;
}

async function world(integrations: Record<string, string>, clock: ManualClock, options: ConstructorParameters<typeof TriggerWorld>[2] = {}): Promise<TriggerWorld> {
  const created = await new TriggerWorld(integrations, clock, options).start();
  let stopped = false;
  cleanups.push(async () => {
    if (!stopped) await created.stop();
    stopped = true;
  });
  return created;
}

const asc = (extra = '') => `      schedule: "*/5 * * * *"
      with: { limit: 2 }
      cursor: { field: updated_at, param: updated_since, initial: "${initial}" }
      itemId: id
${extra}`;

describe('poll triggers', () => {
  it('follows every page, submits one poll run per item, then moves the cursor to the greatest value', async () => {
    const server = await api();
    server.add(ticket('t1', '2026-03-01T10:00:00Z'), ticket('t2', '2026-03-01T11:00:00Z'), ticket('t3', '2026-03-01T12:00:00Z'), ticket('t4', '2026-03-02T08:00:00Z'), ticket('t5', '2026-03-02T08:30:00Z'));
    const clock = new ManualClock(start);
    const w = await world({ feed: pollIntegration('feed', server.origin, asc()) }, clock);
    await w.scheduler.runDue();
    expect(server.requests).toHaveLength(0); // not before the first tick (09:05)

    clock.set(Date.UTC(2026, 2, 2, 9, 5));
    await w.scheduler.runDue();
    expect(server.requests.map((r) => r.query)).toEqual([
      { limit: '2', updated_since: initial },
      { limit: '2', updated_since: initial, page_token: '2' },
      { limit: '2', updated_since: initial, page_token: '4' },
    ]);
    expect(server.requests.every((r) => r.authorization === `Bearer ${token}`)).toBe(true);
    const runs = await w.runs('feed');
    expect(runs.map((run) => [run.eventKey, run.source, run.status])).toEqual(['t1', 't2', 't3', 't4', 't5'].map((id) => [id, 'poll', 'queued']));
    expect(await w.store.getPayload(runs[0]!.id)).toEqual(ticket('t1', '2026-03-01T10:00:00Z'));
    expect(await w.cursor('feed')).toEqual({ v: 1, last: '2026-03-02T09:05:00.000Z', value: '2026-03-02T08:30:00Z' });
    expect(w.polls).toMatchObject([{ integration: 'feed', outcome: 'succeeded', pages: 3, items: 5, accepted: 5, duplicates: 0 }]);

    // The next poll starts from the cursor: only what changed since, and nothing twice.
    server.add(ticket('t6', '2026-03-02T09:07:00Z'));
    clock.set(Date.UTC(2026, 2, 2, 9, 10));
    await w.scheduler.runDue();
    expect(server.requests.slice(3).map((r) => r.query)).toEqual([{ limit: '2', updated_since: '2026-03-02T08:30:00Z' }]);
    expect(await w.keys('feed')).toEqual(['t1', 't2', 't3', 't4', 't5', 't6']);
    expect(w.polls[1]).toMatchObject({ accepted: 1, duplicates: 1 }); // t5 sits on the cursor (inclusive filter) and is deduplicated
  });

  it('loses nothing and runs nothing twice across restarts of the daemon', async () => {
    const server = await api();
    server.add(ticket('a', '2026-03-01T10:00:00Z'), ticket('b', '2026-03-01T11:00:00Z'), ticket('c', '2026-03-01T12:00:00Z'));
    const clock = new ManualClock(start);
    const w = await world({ feed: pollIntegration('feed', server.origin, asc()) }, clock);
    clock.set(Date.UTC(2026, 2, 2, 9, 5));
    await w.scheduler.runDue();
    expect(await w.keys('feed')).toEqual(['a', 'b', 'c']);

    // Down for two hours; meanwhile two tickets change and one old ticket is listed again.
    await w.stop();
    server.add(ticket('d', '2026-03-02T10:00:00Z'), ticket('e', '2026-03-02T10:30:00Z'));
    clock.set(Date.UTC(2026, 2, 2, 11, 2));
    await w.start(); // same state file
    await w.scheduler.runDue(); // catchUp once (the default): one poll at once
    expect(server.requests.slice(2).map((r) => r.query.updated_since)).toEqual(['2026-03-01T12:00:00Z', '2026-03-01T12:00:00Z']);
    const keys = await w.keys('feed');
    expect(keys).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(new Set(keys).size).toBe(keys.length);
    expect(w.polls.at(-1)).toMatchObject({ accepted: 2, duplicates: 1 });

    // Another restart at once: no tick was missed, so nothing is polled until the next one.
    await w.restart();
    await w.scheduler.runDue();
    expect(server.requests).toHaveLength(4);
    clock.set(Date.UTC(2026, 2, 2, 11, 5));
    await w.scheduler.runDue();
    expect(server.requests).toHaveLength(5);
    expect(await w.keys('feed')).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('persists progress after each page: a failure on page 2 keeps page 1 and the next tick resumes at page 2', async () => {
    const server = await api();
    server.add(ticket('t1', '2026-03-01T10:00:00Z'), ticket('t2', '2026-03-01T11:00:00Z'), ticket('t3', '2026-03-01T12:00:00Z'), ticket('t4', '2026-03-01T13:00:00Z'), ticket('t5', '2026-03-01T14:00:00Z'));
    let failures = 1;
    server.failWhen = (query) => query.page_token === '2' && failures-- > 0;
    const clock = new ManualClock(start);
    const w = await world({ feed: pollIntegration('feed', server.origin, asc()) }, clock);
    clock.set(Date.UTC(2026, 2, 2, 9, 5));
    await w.scheduler.runDue();
    expect(await w.keys('feed')).toEqual(['t1', 't2']);
    // The cursor itself has not moved; the listing's position and high-water mark are saved.
    expect(await w.cursor('feed')).toEqual({ v: 1, last: '2026-03-02T09:05:00.000Z', value: initial, high: '2026-03-01T11:00:00Z', page: { page_token: '2' } });
    expect(w.polls).toMatchObject([{ outcome: 'failed', pages: 1, accepted: 2, code: 'PB_HTTP_SERVER_ERROR' }]);
    expect(w.logger.lines.some((line) => line.level === 'error' && line.fields.code === 'PB_HTTP_SERVER_ERROR' && line.fields.integration === 'feed')).toBe(true);
    expect(w.scheduler.status()).toMatchObject([{ integration: 'feed', kind: 'poll', consecutiveFailures: 1, error: { code: 'PB_HTTP_SERVER_ERROR' } }]);

    // Retried at the next tick (not at once), from page 2, after a restart in between.
    await w.scheduler.runDue();
    expect(server.requests).toHaveLength(2);
    await w.restart();
    clock.set(Date.UTC(2026, 2, 2, 9, 10));
    await w.scheduler.runDue();
    expect(server.requests.slice(2).map((r) => r.query)).toEqual([
      { limit: '2', updated_since: initial, page_token: '2' },
      { limit: '2', updated_since: initial, page_token: '4' },
    ]);
    expect(await w.keys('feed')).toEqual(['t1', 't2', 't3', 't4', 't5']);
    expect(await w.cursor('feed')).toEqual({ v: 1, last: '2026-03-02T09:10:00.000Z', value: '2026-03-01T14:00:00Z' });
    expect(w.scheduler.status()[0]).toMatchObject({ consecutiveFailures: 0, error: undefined });
  });

  it('does not skip the older pages of a newest-first listing interrupted half-way', async () => {
    const server = await api();
    server.add(ticket('old1', '2026-03-01T10:00:00Z'), ticket('old2', '2026-03-01T11:00:00Z'), ticket('new1', '2026-03-02T08:00:00Z'), ticket('new2', '2026-03-02T08:30:00Z'));
    let failures = 1;
    server.failWhen = (query) => query.page_token === '2' && failures-- > 0;
    const clock = new ManualClock(start);
    // `order` comes from vars through an expression, evaluated at every poll.
    const w = await world({ feed: pollIntegration('feed', server.origin, asc('      # newest first\n').replace('with: { limit: 2 }', 'with: { limit: 2, order: "{{ vars.order }}" }')) }, clock);
    clock.set(Date.UTC(2026, 2, 2, 9, 5));
    await w.scheduler.runDue();
    expect(server.requests[0]!.query.order).toBe('desc');
    expect(await w.keys('feed')).toEqual(['new2', 'new1']);
    // Had the cursor moved to the newest value seen (08:30), old1 and old2 would never be listed.
    expect((await w.cursor('feed'))?.value).toBe(initial);
    clock.set(Date.UTC(2026, 2, 2, 9, 10));
    await w.scheduler.runDue();
    expect(await w.keys('feed')).toEqual(['new2', 'new1', 'old2', 'old1']);
    expect((await w.cursor('feed'))?.value).toBe('2026-03-02T08:30:00Z');
  });

  it('skips items older than the cursor when the API filters coarsely, and items without an id', async () => {
    const server = await api();
    server.ignoreSince = true;
    server.add(
      ticket('before', '2026-02-27T10:00:00Z'),
      { id: '', updated_at: '2026-03-01T09:00:00Z', title: 'no id' },
      ticket('after1', '2026-03-01T10:00:00+01:00'),
      ticket('after2', '2026-03-01T09:30:00Z'),
    );
    const clock = new ManualClock(start);
    const w = await world({ feed: pollIntegration('feed', server.origin, asc()) }, clock);
    clock.set(Date.UTC(2026, 2, 2, 9, 5));
    await w.scheduler.runDue();
    expect(await w.keys('feed')).toEqual(['after1', 'after2']);
    expect(w.logger.lines.some((line) => line.fields.code === 'PB_POLL_ITEM_WITHOUT_ID')).toBe(true);
    // The greatest value by instant, not by text: 09:30Z is later than 10:00+01:00.
    expect((await w.cursor('feed'))?.value).toBe('2026-03-01T09:30:00Z');
  });

  it('starts without cursor.initial at the time the trigger is first seen, and keeps that start across restarts', async () => {
    const server = await api();
    server.add(ticket('history', '2026-03-01T10:00:00Z'), ticket('fresh', '2026-03-02T09:03:00Z'));
    const clock = new ManualClock(start);
    const poll = `      schedule: "*/5 * * * *"
      with: { limit: 2 }
      cursor: { field: updated_at, param: updated_since }
      itemId: id
`;
    const w = await world({ feed: pollIntegration('feed', server.origin, poll) }, clock);
    clock.set(Date.UTC(2026, 2, 2, 9, 2));
    await w.restart();
    clock.set(Date.UTC(2026, 2, 2, 9, 5));
    await w.scheduler.runDue();
    expect(server.requests[0]!.query.updated_since).toBe('2026-03-02T09:01:00.000Z');
    expect(await w.keys('feed')).toEqual(['fresh']);
  });

  it('after downtime polls once for all missed ticks with catchUp once, and waits for the next tick with skip', async () => {
    const server = await api();
    server.add(ticket('t1', '2026-03-01T10:00:00Z'));
    const clock = new ManualClock(start);
    const w = await world(
      {
        once: pollIntegration('once', server.origin, asc('      catchUp: once\n')),
        skip: pollIntegration('skip', server.origin, asc('      catchUp: skip\n')),
      },
      clock,
    );
    await w.stop();
    clock.set(Date.UTC(2026, 2, 2, 12, 7)); // 36 ticks missed
    await w.start();
    await w.scheduler.runDue();
    await w.scheduler.runDue();
    expect(w.polls.map((p) => [p.integration, p.scheduledAt])).toEqual([['once', '2026-03-02T12:05:00.000Z']]);
    expect(await w.keys('once')).toEqual(['t1']);
    expect(await w.keys('skip')).toEqual([]);
    expect((await w.cursor('skip'))?.last).toBe('2026-03-02T12:05:00.000Z'); // the skipped ticks are recorded as handled

    clock.set(Date.UTC(2026, 2, 2, 12, 10));
    await w.scheduler.runDue();
    expect(w.polls.map((p) => p.integration).sort()).toEqual(['once', 'once', 'skip']);
    expect(await w.keys('skip')).toEqual(['t1']);
  });

  it('never runs two polls of one integration at once: a tick during a slow poll is coalesced into one poll after it', async () => {
    const server = await api();
    server.add(ticket('t1', '2026-03-01T10:00:00Z'));
    server.delayMs = 300;
    const clock = new ManualClock(start);
    const w = await world({ feed: pollIntegration('feed', server.origin, asc()) }, clock);
    clock.set(Date.UTC(2026, 2, 2, 9, 5));
    const first = w.scheduler.runDue();
    await new Promise((resolve) => setTimeout(resolve, 50));
    clock.set(Date.UTC(2026, 2, 2, 9, 10));
    await w.scheduler.runDue(); // returns at once: the poll is still running
    expect(w.polls).toHaveLength(0);
    expect(w.scheduler.status()[0]!.running).toBe(true);
    expect(w.logger.lines.some((line) => line.message.includes('coalesced'))).toBe(true);
    clock.set(Date.UTC(2026, 2, 2, 9, 14)); // three more ticks: still one poll after the running one
    await w.scheduler.runDue();
    await first;
    expect(w.polls).toHaveLength(1);
    await w.scheduler.runDue();
    expect(w.polls.map((p) => p.scheduledAt)).toEqual(['2026-03-02T09:05:00.000Z', '2026-03-02T09:10:00.000Z']);
    expect(server.maxConcurrent).toBe(1);
    expect(server.requests).toHaveLength(2);
  });

  it('delays each tick by a jitter in [0, jitter) drawn from the injected random source', async () => {
    const server = await api();
    const tick = Date.UTC(2026, 2, 2, 9, 5);
    for (const [random, dueAt] of [
      [0, tick],
      [0.5, tick + 5_000],
      [0.999_999_9, tick + 9_999],
    ] as const) {
      const clock = new ManualClock(start);
      const before = server.requests.length;
      const w = await world({ feed: pollIntegration('feed', server.origin, asc('      jitter: 10s\n')) }, clock, { random: () => random });
      expect(w.scheduler.status()[0]!.nextRunAt).toBe(new Date(dueAt).toISOString());
      clock.set(dueAt - 1);
      await w.scheduler.runDue();
      expect(server.requests.length).toBe(before);
      clock.set(dueAt);
      await w.scheduler.runDue();
      expect(server.requests.length).toBe(before + 1);
      await w.stop();
      cleanups.pop();
    }
  });

  it('a failing poller is logged, reported and retried at the next tick while the others keep running', async () => {
    const good = await api();
    const bad = await api();
    good.add(ticket('ok', '2026-03-01T10:00:00Z'));
    bad.add(ticket('never', '2026-03-01T10:00:00Z'));
    bad.failWhen = () => true;
    const clock = new ManualClock(start);
    const w = await world({ good: pollIntegration('good', good.origin, asc()), bad: pollIntegration('bad', bad.origin, asc()) }, clock);
    const cursorBefore = await w.store.getCursor('bad');
    clock.set(Date.UTC(2026, 2, 2, 9, 5));
    await w.scheduler.runDue();
    expect(await w.keys('good')).toEqual(['ok']);
    expect(await w.keys('bad')).toEqual([]);
    expect(await w.store.getCursor('bad')).toBe(cursorBefore);
    expect(w.polls.find((p) => p.integration === 'bad')).toMatchObject({ outcome: 'failed', code: 'PB_HTTP_SERVER_ERROR' });
    clock.set(Date.UTC(2026, 2, 2, 9, 10));
    await w.scheduler.runDue();
    expect(bad.requests).toHaveLength(2);
    expect(w.scheduler.status().find((s) => s.integration === 'bad')).toMatchObject({ consecutiveFailures: 2 });
    expect(w.logger.text()).not.toContain(token);
  });
});
