import { CronExpressionParser } from 'cron-parser';
import { didYouMean } from '../lib/did-you-mean.js';
import { formatDurationMs } from '../lib/duration.js';
import type { DocPath, DocumentReporter } from './report.js';

let zones: string[] | undefined;
// Parsing a cron expression in a time zone is slow (luxon); the same few schedules recur.
const cronIntervals = new Map<string, number>();

/** Checks a cron expression in its time zone; returns the shortest time between two ticks (ms) when it parses. */
export function checkCron(
  expression: unknown,
  timezone: unknown,
  base: DocPath,
  field: string,
  reporter: DocumentReporter,
  poll: boolean,
): number | undefined {
  let tz = 'UTC';
  if (typeof timezone === 'string') {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: timezone });
      tz = timezone;
    } catch {
      // Intl throws RangeError for an unknown zone; that is exactly the finding.
      zones ??= Intl.supportedValuesOf('timeZone');
      reporter.at(
        [...base, 'timezone'],
        'PB_SCHEDULE_BAD_TIMEZONE',
        `unknown time zone "${timezone}"${didYouMean(timezone, zones)}; use an IANA name such as Europe/Paris or UTC`,
      );
      return undefined;
    }
  }
  if (typeof expression !== 'string') return undefined;
  const fields = expression.trim().split(/\s+/);
  const nickname = fields.length === 1 && fields[0]!.startsWith('@');
  if (!nickname && (fields.length < 5 || fields.length > 6)) {
    reporter.at(
      [...base, field],
      'PB_SCHEDULE_BAD_CRON',
      `cron expression "${expression}" has ${fields.length} fields; write 5 (minute hour day month weekday) or 6 (with seconds first)`,
    );
    return undefined;
  }
  const key = `${expression}\u0000${tz}`;
  let interval = cronIntervals.get(key);
  try {
    if (interval === undefined) {
      // The shortest gap over a year of ticks (at most 64): `0 9 * * 3,4` is one day apart once
      // a week, and monthly schedules differ by month.
      const iterator = CronExpressionParser.parse(expression, { tz, currentDate: new Date('2026-01-01T00:00:00Z') });
      let previous = iterator.next().getTime();
      interval = Infinity;
      for (let tick = 0; tick < 64; tick++) {
        const next = iterator.next().getTime();
        interval = Math.min(interval, next - previous);
        previous = next;
        if (next - Date.UTC(2026, 0, 1) > 366 * 86_400_000) break;
      }
      if (cronIntervals.size >= 1000) cronIntervals.clear();
      cronIntervals.set(key, interval);
    }
    if (interval < 60_000) {
      reporter.at(
        [...base, field],
        'PB_SCHEDULE_TOO_FREQUENT',
        `"${expression}" fires every ${formatDurationMs(interval)}; ${poll ? 'polling' : 'running'} more than once a minute is almost always a mistake`,
      );
    }
    return interval;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    reporter.at([...base, field], 'PB_SCHEDULE_BAD_CRON', `cron expression "${expression}" is invalid: ${reason}`);
    return undefined;
  }
}
