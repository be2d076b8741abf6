import type { Clock } from '../../lib/clock.js';
import type { TokenSource } from './signer.js';

/** A token as issued, with when it stops working if the issuer said. */
export interface IssuedToken {
  readonly value: string;
  /** Epoch milliseconds; absent when the issuer gave no lifetime. */
  readonly expiresAtMs?: number;
}

export interface TokenCacheOptions {
  readonly clock: Clock;
  /** Lifetime assumed for a token issued without one. @default 3_600_000 (one hour) */
  readonly defaultLifetimeMs?: number;
  /** Refresh this long before expiry at most. @default 60_000 */
  readonly maxSkewMs?: number;
  /** ...and at most this share of the token's lifetime, so a short-lived token is still reused. @default 0.1 */
  readonly skewRatio?: number;
}

interface Cached {
  readonly value: string;
  readonly refreshAtMs: number;
}

/**
 * Caches one credential's token and renews it ahead of expiry: at `expiresAt - min(maxSkewMs,
 * skewRatio × lifetime)`, the lifetime being measured from when the fetch started. Fetches are
 * single-flight: however many callers ask while the token is absent or stale, one `fetchToken`
 * runs and all of them get its result or its error. A failed fetch is not cached; the next call
 * tries again.
 */
export class TokenCache implements TokenSource {
  private cached: Cached | undefined;
  private pending: Promise<string> | undefined;
  private readonly clock: Clock;
  private readonly defaultLifetimeMs: number;
  private readonly maxSkewMs: number;
  private readonly skewRatio: number;

  constructor(private readonly fetchToken: () => Promise<IssuedToken>, options: TokenCacheOptions) {
    this.clock = options.clock;
    this.defaultLifetimeMs = options.defaultLifetimeMs ?? 3_600_000;
    this.maxSkewMs = options.maxSkewMs ?? 60_000;
    this.skewRatio = options.skewRatio ?? 0.1;
  }

  /** A token valid now, fetched only when none is cached or the cached one is due for renewal. */
  token(): Promise<string> {
    const cached = this.cached;
    if (cached !== undefined && this.clock.now() < cached.refreshAtMs) return Promise.resolve(cached.value);
    this.pending ??= this.refresh().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  /** Drops the cached token (only if it is `rejected`, when given). A fetch under way is kept. */
  invalidate(rejected?: string): void {
    if (rejected === undefined || this.cached?.value === rejected) this.cached = undefined;
  }

  private async refresh(): Promise<string> {
    const startedMs = this.clock.now();
    const issued = await this.fetchToken();
    const expiresAtMs = issued.expiresAtMs ?? startedMs + this.defaultLifetimeMs;
    const lifetimeMs = expiresAtMs - startedMs;
    // A token that is already expired when it arrives (a skewed issuer clock) is handed to the
    // callers waiting for it but never reused.
    const refreshAtMs = lifetimeMs > 0 ? expiresAtMs - Math.min(this.maxSkewMs, lifetimeMs * this.skewRatio) : startedMs;
    this.cached = { value: issued.value, refreshAtMs };
    return issued.value;
  }
}
