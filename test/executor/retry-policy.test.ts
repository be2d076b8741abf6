import { describe, expect, it } from 'vitest';
import { PatchbayError } from '../../engine/diag/errors.js';
import { compileRetryPolicy, compileTimeouts, decideRetry, retryClassOf } from '../../engine/executor/retry-policy.js';
import { backoffDelayMs } from '../../engine/lib/backoff.js';

describe('backoffDelayMs', () => {
  const exponential = { backoff: 'exponential', initialDelayMs: 1_000, maxDelayMs: 30_000, jitter: 'none' } as const;

  it('doubles from the initial delay and stops at the cap', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((attempt) => backoffDelayMs(exponential, attempt))).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
  });

  it('grows linearly or stays fixed when asked', () => {
    expect([1, 2, 3].map((attempt) => backoffDelayMs({ ...exponential, backoff: 'linear' }, attempt))).toEqual([1_000, 2_000, 3_000]);
    expect([1, 2, 3].map((attempt) => backoffDelayMs({ ...exponential, backoff: 'fixed' }, attempt))).toEqual([1_000, 1_000, 1_000]);
  });

  it('draws full jitter uniformly below the computed delay', () => {
    const jittered = { ...exponential, jitter: 'full' } as const;
    expect(backoffDelayMs(jittered, 3, () => 0)).toBe(0);
    expect(backoffDelayMs(jittered, 3, () => 0.5)).toBe(2_000);
    expect(backoffDelayMs(jittered, 3, () => 0.999_999)).toBe(3_999);
    // Spread: 1,000 draws cover the range rather than clustering.
    const draws = Array.from({ length: 1_000 }, () => backoffDelayMs(jittered, 3));
    expect(Math.min(...draws)).toBeLessThan(400);
    expect(Math.max(...draws)).toBeGreaterThan(3_600);
  });

  it('never overflows into a hot loop on huge attempt numbers', () => {
    expect(backoffDelayMs(exponential, 5_000)).toBe(30_000);
  });
});

describe('compileRetryPolicy', () => {
  it('fills the schema defaults', () => {
    const policy = compileRetryPolicy(undefined, undefined);
    expect(policy).toMatchObject({ maxAttempts: 5, backoff: 'exponential', initialDelayMs: 1_000, maxDelayMs: 300_000, maxAgeMs: 86_400_000, jitter: 'full' });
    expect([...policy.retryOn].sort()).toEqual(['network', 'rateLimited', 'serverError', 'timeout']);
  });

  it("lets a step override the integration's fields one by one", () => {
    const policy = compileRetryPolicy({ maxAttempts: 8, initialDelay: '2s', maxDelay: '10m' }, { maxAttempts: 3 });
    expect(policy).toMatchObject({ maxAttempts: 3, initialDelayMs: 2_000, maxDelayMs: 600_000 });
  });

  it('reads timeouts the same way', () => {
    expect(compileTimeouts({ connect: '2s', total: '1m' }, { total: '5s' })).toEqual({ connectTimeoutMs: 2_000, headersTimeoutMs: 15_000, totalTimeoutMs: 5_000 });
  });
});

describe('decideRetry', () => {
  const policy = compileRetryPolicy({ maxAttempts: 4, initialDelay: '1s', maxDelay: '1m', maxAge: '1h', jitter: 'none' }, undefined);
  const now = 1_000_000;

  it('classifies failures by code', () => {
    expect(retryClassOf(new PatchbayError('PB_HTTP_NETWORK', 'x'))).toBe('network');
    expect(retryClassOf(new PatchbayError('PB_HTTP_TIMEOUT', 'x'))).toBe('timeout');
    expect(retryClassOf(new PatchbayError('PB_HTTP_RATE_LIMITED', 'x'))).toBe('rateLimited');
    expect(retryClassOf(new PatchbayError('PB_PROVIDER_ERROR_RETRYABLE', 'x'))).toBe('serverError');
    expect(retryClassOf(new PatchbayError('PB_HTTP_CLIENT_ERROR', 'x'))).toBeUndefined();
    expect(retryClassOf(new Error('a bug'))).toBeUndefined();
  });

  it('waits the longer of the backoff and what the provider asked', () => {
    const told = new PatchbayError('PB_HTTP_RATE_LIMITED', 'x', { retryAfterMs: 9_500 });
    expect(decideRetry(told, 1, policy, now, now)).toEqual({ retry: true, atMs: now + 9_500, delayMs: 9_500 });
    const shortTold = new PatchbayError('PB_HTTP_RATE_LIMITED', 'x', { retryAfterMs: 100 });
    expect(decideRetry(shortTold, 3, policy, now, now)).toEqual({ retry: true, atMs: now + 4_000, delayMs: 4_000 });
  });

  it('stops at maxAttempts, at maxAge, on terminal failures and on classes not retried', () => {
    const transient = new PatchbayError('PB_HTTP_SERVER_ERROR', 'x');
    expect(decideRetry(transient, 4, policy, now, now)).toEqual({ retry: false, reason: 'attempts' });
    expect(decideRetry(transient, 1, policy, now, now - 3_600_000 + 500)).toEqual({ retry: false, reason: 'maxAge' });
    expect(decideRetry(new PatchbayError('PB_HTTP_CLIENT_ERROR', 'x'), 1, policy, now, now)).toEqual({ retry: false, reason: 'terminal' });
    const noTimeouts = compileRetryPolicy({ retryOn: ['serverError'] }, undefined);
    expect(decideRetry(new PatchbayError('PB_HTTP_TIMEOUT', 'x'), 1, noTimeouts, now, now)).toEqual({ retry: false, reason: 'notRetried' });
  });
});
