import { formatDurationMs, parseDurationMs } from '../lib/duration.js';
import { record, type Json } from './json-access.js';
import type { DocPath, DocumentReporter } from './report.js';

/** Upper bounds of policy durations: longer values are mistakes, not policies. */
const limits = {
  maxDurationMs: 365 * 86_400_000,
  maxTimeoutMs: 15 * 60_000,
  maxAgeMs: 30 * 86_400_000,
};

/** Defaults of the schema's policy durations, in milliseconds (see schemas/integration.schema.json). */
const policyDefaultsMs: Record<string, Record<string, number>> = {
  retry: { initialDelay: 1_000, maxDelay: 300_000, maxAge: 86_400_000 },
  timeout: { connect: 5_000, headers: 15_000, total: 30_000 },
};

// The value an unset field takes: the integration's (for a step) or the schema's default;
// undefined when the field is set (and invalid) or the group is absent.
function effectiveDefault(policy: Json, group: [string], field: string, inherited: Json | undefined): number | undefined {
  const section = record(policy[group[0]]);
  if (!section || section[field] !== undefined) return undefined;
  const fromIntegration = record(inherited?.[group[0]])?.[field];
  const inheritedMs = typeof fromIntegration === 'string' ? parseDurationMs(fromIntegration) : undefined;
  // An invalid integration value is reported there; the step falls back to the schema default.
  const usable = inheritedMs !== undefined && inheritedMs >= 1 ? inheritedMs : undefined;
  return usable ?? policyDefaultsMs[group[0]]?.[field];
}

/**
 * Checks one policy. A step's policy overrides the integration's field by field, so `inherited`
 * (the integration's policy) supplies the fields a step leaves unset before the schema defaults do.
 */
export function checkPolicy(policy: Json | undefined, path: DocPath, reporter: DocumentReporter, inherited?: Json): void {
  if (!policy) return;
  const orDefault = (p: Json, group: [string], field: string) => effectiveDefault(p, group, field, inherited);
  const durationAt = (sub: DocPath, max: number, what: string): number | undefined => {
    let v: unknown = policy;
    for (const s of sub) v = record(v)?.[s as string];
    if (typeof v !== 'string') return undefined;
    const ms = parseDurationMs(v);
    if (ms === undefined) return undefined;
    if (ms < 1) {
      reporter.at([...path, ...sub], 'PB_DURATION_OUT_OF_RANGE', `${what} must be at least 1ms`);
      return undefined;
    }
    if (ms > max) {
      reporter.at([...path, ...sub], 'PB_DURATION_OUT_OF_RANGE', `${what} ${v} is longer than the limit of ${formatDurationMs(max)}`);
      return undefined;
    }
    return ms;
  };
  // Unset values take the schema's defaults, so `initialDelay: 10m` alone contradicts the 5m maxDelay.
  const initial = durationAt(['retry', 'initialDelay'], limits.maxDurationMs, 'retry.initialDelay') ?? orDefault(policy, ['retry'], 'initialDelay');
  const maxDelay = durationAt(['retry', 'maxDelay'], limits.maxDurationMs, 'retry.maxDelay') ?? orDefault(policy, ['retry'], 'maxDelay');
  const maxAge = durationAt(['retry', 'maxAge'], limits.maxAgeMs, 'retry.maxAge') ?? orDefault(policy, ['retry'], 'maxAge');
  // A pair is compared only when this policy sets at least one side: a contradiction made
  // entirely of inherited or default values belongs to where they are written.
  const setHere = (group: string, ...fields: string[]) => fields.some((f) => record(policy[group])?.[f] !== undefined);
  if (initial !== undefined && maxDelay !== undefined && initial > maxDelay && setHere('retry', 'initialDelay', 'maxDelay')) {
    reporter.at(
      [...path, 'retry', 'initialDelay'],
      'PB_POLICY_INCONSISTENT',
      `retry.initialDelay (${formatDurationMs(initial)}) is longer than retry.maxDelay (${formatDurationMs(maxDelay)})`,
    );
  }
  if (initial !== undefined && maxAge !== undefined && initial >= maxAge && setHere('retry', 'initialDelay', 'maxAge')) {
    reporter.at(
      [...path, 'retry', 'maxAge'],
      'PB_POLICY_INCONSISTENT',
      `retry.maxAge (${formatDurationMs(maxAge)}) leaves no room for a retry after retry.initialDelay (${formatDurationMs(initial)})`,
    );
  }
  const retry = record(policy.retry);
  const inheritedRetry = record(inherited?.retry);
  const retryOn = retry?.retryOn ?? inheritedRetry?.retryOn;
  const maxAttempts = retry?.maxAttempts ?? inheritedRetry?.maxAttempts;
  if (
    retry &&
    (retry.retryOn !== undefined || retry.maxAttempts !== undefined) &&
    Array.isArray(retryOn) &&
    retryOn.length === 0 &&
    typeof maxAttempts === 'number' &&
    maxAttempts > 1
  ) {
    reporter.at(
      [...path, 'retry', 'retryOn'],
      'PB_POLICY_INCONSISTENT',
      'retry.retryOn is empty, so maxAttempts above 1 can never be used; list the failures that retry',
    );
  }

  const connect = durationAt(['timeout', 'connect'], limits.maxTimeoutMs, 'timeout.connect') ?? orDefault(policy, ['timeout'], 'connect');
  const headers = durationAt(['timeout', 'headers'], limits.maxTimeoutMs, 'timeout.headers') ?? orDefault(policy, ['timeout'], 'headers');
  const total = durationAt(['timeout', 'total'], limits.maxTimeoutMs, 'timeout.total') ?? orDefault(policy, ['timeout'], 'total');
  for (const [name, part] of [['connect', connect], ['headers', headers]] as const) {
    if (part !== undefined && total !== undefined && part > total && setHere('timeout', name, 'total')) {
      reporter.at(
        [...path, 'timeout', name],
        'PB_POLICY_INCONSISTENT',
        `timeout.${name} (${formatDurationMs(part)}) is longer than timeout.total (${formatDurationMs(total)})`,
      );
    }
  }

  const rate = record(policy.rateLimit);
  const per = durationAt(['rateLimit', 'per'], limits.maxDurationMs, 'rateLimit.per');
  if (rate && per !== undefined && typeof rate.requests === 'number') {
    const perSecond = (rate.requests / per) * 1000;
    if (perSecond > 10_000) {
      reporter.at(
        [...path, 'rateLimit'],
        'PB_POLICY_UNREASONABLE',
        `rateLimit allows ${Math.round(perSecond)} requests per second; no provider accepts that — check requests and per`,
      );
    }
    if (typeof rate.burst === 'number' && rate.burst < 1) {
      reporter.at([...path, 'rateLimit', 'burst'], 'PB_MANIFEST_OUT_OF_RANGE', 'rateLimit.burst must be at least 1');
    }
  }
}
