import { PatchbayError } from '../diag/errors.js';
import { backoffDelayMs, type BackoffSettings } from '../lib/backoff.js';
import { parseDurationMs } from '../lib/duration.js';
import type { RetryPolicy as RetryPolicyDocument, Timeout as TimeoutDocument } from '../types/integration.generated.js';

/** The failure classes a policy's `retryOn` names. */
export type RetryClass = 'network' | 'timeout' | 'rateLimited' | 'serverError';

/** A retry policy with every default applied and every duration in milliseconds. */
export interface CompiledRetryPolicy extends BackoffSettings {
  /** Attempts in total, the first included. @default 5 */
  readonly maxAttempts: number;
  /** No attempt starts later than this after the event was received. @default 24h */
  readonly maxAgeMs: number;
  readonly retryOn: ReadonlySet<RetryClass>;
}

/** Per-phase time limits of one call, in milliseconds. */
export interface CompiledTimeouts {
  /** @default 5s */
  readonly connectTimeoutMs: number;
  /** @default 15s */
  readonly headersTimeoutMs: number;
  /** @default 30s */
  readonly totalTimeoutMs: number;
}

const defaultRetryOn: readonly RetryClass[] = ['network', 'timeout', 'rateLimited', 'serverError'];

/**
 * Normalises a retry policy once (at load, not per attempt): the step's fields override the
 * integration's one by one, then the schema's defaults fill the rest. Durations that do not parse
 * were reported by validation; they fall back to the default here rather than failing a run.
 */
export function compileRetryPolicy(integration: RetryPolicyDocument | undefined, step: RetryPolicyDocument | undefined): CompiledRetryPolicy {
  const merged: RetryPolicyDocument = { ...integration, ...step };
  return {
    maxAttempts: merged.maxAttempts ?? 5,
    backoff: merged.backoff ?? 'exponential',
    initialDelayMs: durationOr(merged.initialDelay, 1_000),
    maxDelayMs: durationOr(merged.maxDelay, 300_000),
    maxAgeMs: durationOr(merged.maxAge, 86_400_000),
    jitter: merged.jitter ?? 'full',
    retryOn: new Set(merged.retryOn ?? defaultRetryOn),
  };
}

/** As `compileRetryPolicy`, for timeouts. */
export function compileTimeouts(integration: TimeoutDocument | undefined, step: TimeoutDocument | undefined): CompiledTimeouts {
  const merged: TimeoutDocument = { ...integration, ...step };
  return {
    connectTimeoutMs: durationOr(merged.connect, 5_000),
    headersTimeoutMs: durationOr(merged.headers, 15_000),
    totalTimeoutMs: durationOr(merged.total, 30_000),
  };
}

function durationOr(text: string | undefined, fallbackMs: number): number {
  const ms = text === undefined ? undefined : parseDurationMs(text);
  return ms !== undefined && ms >= 1 ? ms : fallbackMs;
}

/**
 * Which `retryOn` class a failure belongs to, or undefined when it is terminal whatever the
 * policy says (a 4xx, a bad mapping, a refused host). Provider errors the provider's definition
 * marks retryable (Slack `ratelimited`, Stripe `lock_timeout`) count as server errors.
 */
export function retryClassOf(error: unknown): RetryClass | undefined {
  if (!(error instanceof PatchbayError)) return undefined;
  switch (error.code) {
    case 'PB_HTTP_NETWORK':
      return 'network';
    case 'PB_HTTP_TIMEOUT':
      return 'timeout';
    case 'PB_HTTP_RATE_LIMITED':
      return 'rateLimited';
    case 'PB_HTTP_UNAVAILABLE':
    case 'PB_HTTP_SERVER_ERROR':
    case 'PB_PROVIDER_ERROR_RETRYABLE':
      return 'serverError';
    default:
      return error.retry === 'terminal' ? undefined : 'serverError';
  }
}

/** What to do after a failed attempt. */
export type RetryDecision =
  | { readonly retry: true; readonly atMs: number; readonly delayMs: number }
  | { readonly retry: false; readonly reason: 'terminal' | 'notRetried' | 'attempts' | 'maxAge' };

/**
 * Decides whether attempt number `attempt` (1-based; the one that just failed) is followed by
 * another, and when. A failure that knows its wait (`Retry-After`, a rate-limit reset) waits at
 * least that long; otherwise the policy's backoff applies. A retry that would start after
 * `receivedAtMs + maxAgeMs` is not made.
 */
export function decideRetry(
  error: unknown,
  attempt: number,
  policy: CompiledRetryPolicy,
  nowMs: number,
  receivedAtMs: number,
  random: () => number = Math.random,
): RetryDecision {
  const retryClass = retryClassOf(error);
  if (retryClass === undefined) return { retry: false, reason: 'terminal' };
  if (!policy.retryOn.has(retryClass)) return { retry: false, reason: 'notRetried' };
  if (attempt >= policy.maxAttempts) return { retry: false, reason: 'attempts' };
  const backoff = backoffDelayMs(policy, attempt, random);
  const told = error instanceof PatchbayError ? error.retryAfterMs : undefined;
  const delayMs = told !== undefined && told > backoff ? Math.ceil(told) : backoff;
  const atMs = nowMs + delayMs;
  if (atMs > receivedAtMs + policy.maxAgeMs) return { retry: false, reason: 'maxAge' };
  return { retry: true, atMs, delayMs };
}
