import { CronExpressionParser, type CronExpression } from 'cron-parser';
import { PatchbayError } from '../diag/errors.js';

/**
 * Cron arithmetic for poll and schedule triggers: the ticks of an expression read in an IANA time
 * zone, as instants (milliseconds since the epoch). Ticks are wall-clock times in the zone, so a
 * `0 8 * * *` schedule in Europe/Berlin fires at 07:00 UTC in summer and 08:00 UTC in winter; a
 * local time that does not exist (the spring-forward hour) or exists twice (fall-back) is resolved
 * by cron-parser (one tick either way).
 */
export interface CronSchedule {
  readonly expression: string;
  readonly timezone: string;
  /** The first tick strictly after `afterMs`, or undefined if the expression never fires again. */
  next(afterMs: number): number | undefined;
  /** The last tick at or before `atMs`, or undefined if there is none. */
  latest(atMs: number): number | undefined;
  /**
   * How many ticks fall in `(afterMs, untilMs]`, counting at most `cap` (then `cap` is returned:
   * an every-second schedule over a week of downtime is not walked tick by tick).
   */
  count(afterMs: number, untilMs: number, cap?: number): number;
}

/**
 * Compiles a cron expression of 5 fields (minute hour day month weekday), 6 (seconds first) or a
 * nickname (`@daily`), read in `timezone` (an IANA name; default UTC). Throws
 * PB_SCHEDULE_BAD_TIMEZONE for an unknown zone and PB_SCHEDULE_BAD_CRON for an expression that
 * does not parse, has another number of fields, or never fires.
 */
export function compileCronSchedule(expression: string, timezone = 'UTC'): CronSchedule {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch (error) {
    throw new PatchbayError('PB_SCHEDULE_BAD_TIMEZONE', `unknown time zone "${timezone}"; use an IANA name such as Europe/Paris or UTC`, { cause: error });
  }
  const fields = expression.trim().split(/\s+/);
  const nickname = fields.length === 1 && fields[0]!.startsWith('@');
  if (!nickname && (fields.length < 5 || fields.length > 6)) {
    throw new PatchbayError('PB_SCHEDULE_BAD_CRON', `cron expression "${expression}" has ${fields.length} fields; write 5 (minute hour day month weekday) or 6 (with seconds first)`);
  }
  let iterator: CronExpression;
  try {
    iterator = CronExpressionParser.parse(expression.trim(), { tz: timezone, currentDate: new Date(0) });
  } catch (error) {
    throw new PatchbayError('PB_SCHEDULE_BAD_CRON', `cron expression "${expression}" is invalid: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  // cron-parser throws when no tick is found within its search limits (`0 0 30 2 *`).
  const step = (from: number, direction: 'next' | 'prev'): number | undefined => {
    iterator.reset(new Date(from));
    try {
      return direction === 'next' ? iterator.next().getTime() : iterator.prev().getTime();
    } catch (error) {
      void error; // "no further tick" is the answer here, not a failure.
      return undefined;
    }
  };
  const schedule: CronSchedule = {
    expression,
    timezone,
    next: (afterMs) => step(afterMs, 'next'),
    // prev() is strictly before its start, so start one millisecond later to include `atMs`.
    latest: (atMs) => step(atMs + 1, 'prev'),
    count(afterMs, untilMs, cap = 10_000) {
      let total = 0;
      let at = afterMs;
      while (total < cap) {
        const tick = step(at, 'next');
        if (tick === undefined || tick > untilMs) break;
        total += 1;
        at = tick;
      }
      return total;
    },
  };
  if (schedule.next(Date.UTC(2000, 0, 1)) === undefined) throw new PatchbayError('PB_SCHEDULE_BAD_CRON', `cron expression "${expression}" never fires`);
  return schedule;
}
