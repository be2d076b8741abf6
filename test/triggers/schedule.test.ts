import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock, systemClock } from '../../engine/lib/clock.js';
import { compileCronSchedule } from '../../engine/triggers/cron-schedule.js';
import { scheduleIntegration, TriggerWorld } from './trigger-harness.js';
import { thrown } from '../support/errors.js';

// Schedule triggers on a real SQLite state file, driven by a ManualClock: one run per tick keyed
// by the tick, the last tick persisted across restarts, catch-up once and skip, time zones across
// daylight-saving changes, 6-field crons; and the real timers.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function world(integrations: Record<string, string>, clock: ManualClock | typeof systemClock, options: ConstructorParameters<typeof TriggerWorld>[2] = {}): Promise<TriggerWorld> {
  const created = await new TriggerWorld(integrations, clock, options).start();
  cleanups.push(() => created.stop());
  return created;
}

const hourly = (catchUp: string) => `      cron: "0 * * * *"\n      catchUp: ${catchUp}\n`;

describe('schedule triggers', () => {
  it('fires one run per tick, keyed by the tick, with scheduledAt, firedAt and missedTicks', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 24, 7, 30));
    const w = await world({ digest: scheduleIntegration('digest', hourly('skip')) }, clock);
    await w.scheduler.runDue();
    expect(await w.keys('digest')).toEqual([]);
    clock.set(Date.UTC(2026, 10, 24, 8, 0, 2));
    await w.scheduler.runDue();
    await w.scheduler.runDue();
    const runs = await w.runs('digest');
    expect(runs.map((run) => [run.eventKey, run.source])).toEqual([['tick:2026-11-24T08:00:00.000Z', 'schedule']]);
    expect(await w.store.getPayload(runs[0]!.id)).toEqual({
      scheduledAt: '2026-11-24T08:00:00.000Z',
      firedAt: '2026-11-24T08:00:02.000Z',
      missedTicks: 0,
      cron: '0 * * * *',
      timezone: 'UTC',
    });
    expect(await w.cursor('digest')).toEqual({ v: 1, last: '2026-11-24T08:00:00.000Z' });
    clock.set(Date.UTC(2026, 10, 24, 9, 0));
    await w.scheduler.runDue();
    expect(await w.keys('digest')).toEqual(['tick:2026-11-24T08:00:00.000Z', 'tick:2026-11-24T09:00:00.000Z']);
  });

  it('across restarts neither fires a tick twice nor misses one', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 24, 7, 30));
    const w = await world({ digest: scheduleIntegration('digest', hourly('skip')) }, clock);
    // Stopped just before 08:00, back 20 s after it: the 08:00 tick is late but not missed.
    clock.set(Date.UTC(2026, 10, 24, 7, 59, 59));
    await w.stop();
    clock.set(Date.UTC(2026, 10, 24, 8, 0, 20));
    await w.start();
    await w.scheduler.runDue();
    expect(await w.keys('digest')).toEqual(['tick:2026-11-24T08:00:00.000Z']);
    // Restarted right after firing: the persisted tick is not fired again.
    await w.restart();
    await w.scheduler.runDue();
    expect(await w.keys('digest')).toEqual(['tick:2026-11-24T08:00:00.000Z']);
    expect(w.ticks).toHaveLength(1);
  });

  it('a tick fired again after a crash between the event and the saved tick is a duplicate, not a second run', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 24, 7, 30));
    const w = await world({ digest: scheduleIntegration('digest', hourly('once')) }, clock);
    clock.set(Date.UTC(2026, 10, 24, 8, 0));
    await w.scheduler.runDue();
    await w.stop();
    // The crash: the event was committed, the tick was not recorded.
    await w.start();
    await w.store.setCursor('digest', JSON.stringify({ v: 1, last: '2026-11-24T07:30:00.000Z' }), clock.now());
    await w.restart();
    clock.set(Date.UTC(2026, 10, 24, 8, 0, 30));
    await w.scheduler.runDue();
    expect(w.ticks.at(-1)).toMatchObject({ outcome: 'fired', scheduledAt: '2026-11-24T08:00:00.000Z', accepted: false });
    expect(await w.keys('digest')).toEqual(['tick:2026-11-24T08:00:00.000Z']);
  });

  it('after downtime, catchUp skip waits for the next tick and catchUp once fires one run for the latest missed tick', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 24, 7, 30));
    const w = await world({ skipper: scheduleIntegration('skipper', hourly('skip')), catcher: scheduleIntegration('catcher', hourly('once')) }, clock);
    await w.stop();
    clock.set(Date.UTC(2026, 10, 24, 10, 30)); // 08:00, 09:00 and 10:00 missed
    await w.start();
    await w.scheduler.runDue();
    await w.scheduler.runDue();
    expect(await w.keys('skipper')).toEqual([]);
    expect(w.ticks.find((t) => t.integration === 'skipper')).toMatchObject({ outcome: 'skipped', missedTicks: 3 });
    const caught = await w.runs('catcher');
    expect(caught.map((run) => run.eventKey)).toEqual(['tick:2026-11-24T10:00:00.000Z']);
    expect(await w.store.getPayload(caught[0]!.id)).toMatchObject({ scheduledAt: '2026-11-24T10:00:00.000Z', firedAt: '2026-11-24T10:30:00.000Z', missedTicks: 3 });

    clock.set(Date.UTC(2026, 10, 24, 11, 0));
    await w.scheduler.runDue();
    expect(await w.keys('skipper')).toEqual(['tick:2026-11-24T11:00:00.000Z']);
    expect(await w.keys('catcher')).toEqual(['tick:2026-11-24T10:00:00.000Z', 'tick:2026-11-24T11:00:00.000Z']);
  });

  it('reads the cron in its time zone: 08:00 in Europe/Berlin across both daylight-saving changes', async () => {
    const spec = '      cron: "0 8 * * *"\n      timezone: Europe/Berlin\n';
    for (const [from, to, expected] of [
      [Date.UTC(2026, 2, 27, 12), Date.UTC(2026, 2, 31, 12), ['2026-03-28T07:00:00.000Z', '2026-03-29T06:00:00.000Z', '2026-03-30T06:00:00.000Z', '2026-03-31T06:00:00.000Z']],
      [Date.UTC(2026, 9, 23, 12), Date.UTC(2026, 9, 27, 12), ['2026-10-24T06:00:00.000Z', '2026-10-25T07:00:00.000Z', '2026-10-26T07:00:00.000Z', '2026-10-27T07:00:00.000Z']],
    ] as const) {
      const clock = new ManualClock(from);
      const w = await world({ berlin: scheduleIntegration('berlin', spec) }, clock);
      // Walk the days in 15-minute steps, as a running daemon would see them.
      while (clock.now() < to) {
        clock.advance(15 * 60_000);
        await w.scheduler.runDue();
      }
      const fired = w.ticks.map((t) => t.scheduledAt);
      expect(fired).toEqual(expected);
      for (const at of fired) expect(new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', hour: '2-digit', minute: '2-digit' }).format(new Date(at))).toBe('08:00');
      await w.stop();
      cleanups.pop();
    }
  });

  it('takes 6-field crons (seconds first) and refuses 4 fields, unknown zones and impossible dates', () => {
    const every30s = compileCronSchedule('*/30 * * * * *');
    expect(every30s.next(Date.UTC(2026, 0, 1, 0, 0, 10))).toBe(Date.UTC(2026, 0, 1, 0, 0, 30));
    expect(every30s.latest(Date.UTC(2026, 0, 1, 0, 0, 30))).toBe(Date.UTC(2026, 0, 1, 0, 0, 30));
    expect(every30s.count(Date.UTC(2026, 0, 1), Date.UTC(2026, 0, 1, 0, 5))).toBe(10);
    expect(every30s.count(Date.UTC(2026, 0, 1), Date.UTC(2026, 0, 8), 500)).toBe(500);
    expect(thrown(() => compileCronSchedule('0 8 * *')).code).toBe('PB_SCHEDULE_BAD_CRON');
    expect(thrown(() => compileCronSchedule('0 8 30 2 *')).code).toBe('PB_SCHEDULE_BAD_CRON');
    expect(thrown(() => compileCronSchedule('0 8 * * *', 'Europe/Atlantis')).code).toBe('PB_SCHEDULE_BAD_TIMEZONE');
  });

  it('does not schedule disabled integrations', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 24, 7, 30));
    const w = await world({ off: scheduleIntegration('off', hourly('once'), '  enabled: false\n'), on: scheduleIntegration('on', hourly('once')) }, clock);
    expect(w.scheduler.status().map((s) => s.integration)).toEqual(['on']);
    clock.set(Date.UTC(2026, 10, 24, 8, 0));
    await w.scheduler.runDue();
    expect(await w.keys('off')).toEqual([]);
    expect(await w.keys('on')).toHaveLength(1);
  });

  it('fires from its own timers on the system clock', async () => {
    const w = await world({ often: scheduleIntegration('often', '      cron: "* * * * * *"\n') }, systemClock, { timers: true });
    const deadline = Date.now() + 5_000;
    while (w.ticks.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(w.ticks.length).toBeGreaterThanOrEqual(2);
    const keys = await w.keys('often');
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys.every((key) => /^tick:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/.test(key))).toBe(true);
  });
});

describe('a schedule tick whose commit fails', () => {
  for (const catchUp of ['skip', 'once']) {
    it(`is fired on time after a retry, not skipped or folded into the next tick (catchUp: ${catchUp})`, async () => {
      const clock = new ManualClock(Date.UTC(2026, 10, 24, 7, 30));
      const w = await world({ digest: scheduleIntegration('digest', hourly(catchUp)) }, clock);
      clock.set(Date.UTC(2026, 10, 24, 8, 0, 1));
      w.failingSubmits = 1;
      await w.scheduler.runDue();
      expect(await w.keys('digest')).toEqual([]);
      // The retry comes 30 s later, well before the next tick.
      expect(w.scheduler.status()[0]?.nextRunAt).toBe('2026-11-24T08:00:31.000Z');
      clock.set(Date.UTC(2026, 10, 24, 8, 0, 31));
      await w.scheduler.runDue();
      expect(await w.keys('digest')).toEqual(['tick:2026-11-24T08:00:00.000Z']);
      const [run] = await w.runs('digest');
      expect(await w.store.getPayload(run!.id)).toMatchObject({ scheduledAt: '2026-11-24T08:00:00.000Z', missedTicks: 0 });
      clock.set(Date.UTC(2026, 10, 24, 9, 0, 1));
      await w.scheduler.runDue();
      expect(await w.keys('digest')).toEqual(['tick:2026-11-24T08:00:00.000Z', 'tick:2026-11-24T09:00:00.000Z']);
    });
  }
});
