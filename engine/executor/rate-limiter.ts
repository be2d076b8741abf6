/**
 * Outbound rate limits: token buckets and concurrency gates keyed by provider credential, so every
 * integration that uses the same API key draws from one budget. In memory, per process: several
 * daemons sharing one credential each get the whole budget (documented in the README; a shared
 * limiter needs the PostgreSQL store).
 */

/** A bucket's shape. */
export interface BucketSpec {
  /** Tokens added per `perMs` (requests or cost points). */
  readonly requests: number;
  readonly perMs: number;
  /** Most tokens the bucket holds; @default requests */
  readonly burst?: number | undefined;
}

/** The answer to a reservation. */
export type Reservation =
  | { readonly granted: true; /** Wait this long before sending (0: at once). */ readonly waitMs: number }
  | { readonly granted: false; /** The earliest time a reservation could be granted without waiting too long. */ readonly retryAtMs: number };

/**
 * A token bucket that reserves ahead: a granted reservation takes its tokens at once, even when
 * that leaves the bucket in debt, and says how long to wait until the debt is repaid. Callers
 * that wait their turn are thereby served in order of reservation, and the rate holds exactly:
 * at most `burst + requests × t / perMs` tokens are spent in any window of length t.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAtMs: number;
  readonly capacity: number;
  private readonly refillPerMs: number;

  constructor(spec: BucketSpec, nowMs: number) {
    this.capacity = spec.burst ?? spec.requests;
    this.refillPerMs = spec.requests / spec.perMs;
    this.tokens = this.capacity;
    this.updatedAtMs = nowMs;
  }

  /**
   * Reserves `cost` tokens when they are available within `maxWaitMs`; otherwise takes nothing
   * and says when to come back. A cost above the capacity is charged as the capacity (it could
   * never be granted otherwise).
   */
  reserve(cost: number, nowMs: number, maxWaitMs: number): Reservation {
    this.refill(nowMs);
    const charge = Math.min(cost, this.capacity);
    const debt = charge - this.tokens;
    const waitMs = debt <= 0 ? 0 : Math.ceil(debt / this.refillPerMs);
    if (waitMs > maxWaitMs) return { granted: false, retryAtMs: nowMs + waitMs - maxWaitMs };
    this.tokens -= charge;
    return { granted: true, waitMs };
  }

  /** Gives back a granted reservation that was not used (another limit refused the call). */
  refund(cost: number): void {
    this.tokens = Math.min(this.capacity, this.tokens + Math.min(cost, this.capacity));
  }


  private refill(nowMs: number): void {
    const elapsed = nowMs - this.updatedAtMs;
    if (elapsed > 0) {
      this.tokens = Math.min(this.capacity, this.tokens + elapsed * this.refillPerMs);
      this.updatedAtMs = nowMs;
    }
  }
}

/** A counting semaphore with a FIFO queue (a provider's limit on requests in flight). */
export class ConcurrencyGate {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly limit: number) {}

  /** Resolves when a slot is free; call the returned function exactly once to free it. */
  async acquire(): Promise<() => void> {
    if (this.active < this.limit) {
      this.active += 1;
    } else {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
      // The releaser handed its slot straight to us: `active` is unchanged.
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next !== undefined) next();
      else this.active -= 1;
    };
  }

  get inFlight(): number {
    return this.active;
  }
}

/** The buckets and gates of one engine, created on first use by key. */
export class RateLimiter {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly gates = new Map<string, ConcurrencyGate>();
  private readonly pauses = new Map<string, number>();

  /**
   * No call with `credential` starts before `untilMs` (a provider answered 429 or 503 with a
   * delay). Applies whether or not the credential has any bucket, so it also holds for generic
   * and imported providers that declare no limit.
   */
  pause(credential: string, untilMs: number): void {
    if (untilMs > (this.pauses.get(credential) ?? 0)) this.pauses.set(credential, untilMs);
  }

  /** When calls with `credential` may start again (0 when it is not paused). */
  pausedUntil(credential: string): number {
    return this.pauses.get(credential) ?? 0;
  }

  /** The bucket for `key`, created with `spec` (a key's spec must not change: put it in the key). */
  bucket(key: string, spec: BucketSpec, nowMs: number): TokenBucket {
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      bucket = new TokenBucket(spec, nowMs);
      this.buckets.set(key, bucket);
    }
    return bucket;
  }

  gate(key: string, limit: number): ConcurrencyGate {
    let gate = this.gates.get(key);
    if (gate === undefined) {
      gate = new ConcurrencyGate(limit);
      this.gates.set(key, gate);
    }
    return gate;
  }
}
