import { PatchbayError } from '../../diag/errors.js';

// Key fetches of the schemes that verify with published keys (SNS certificates, Plaid keys) share
// this limiter: its own module, so those schemes do not import verify.ts, which imports them.

/** Limits of `FetchSlots`. */
export interface FetchSlotLimits {
  /** Fetches under way at once. */
  readonly inFlight: number;
  /** Fetches that may wait for a slot when all are busy; beyond it a fetch is refused at once. */
  readonly waiting: number;
  /** Longest wait for a slot, in milliseconds; 0 refuses at once when all are busy. */
  readonly waitMs: number;
}

/**
 * Bounds the key fetches of schemes that verify with published keys (`plaid`, `awsSns`): at most
 * `inFlight` run at once; when all are busy a fetch waits its turn (first come, first served) for
 * at most `waitMs`, behind at most `waiting` others. A fetch that finds the queue full, or that
 * waited `waitMs`, rejects with PB_WEBHOOK_KEY_UNAVAILABLE naming `what` (the sender delivers
 * again later) without running. This bounds concurrency, not rate: slots come back as fast as the
 * key server answers, so a forger cannot spend them for a minute the way a per-minute budget
 * could be spent. The wait absorbs bursts (a genuine delivery arriving just after a burst of
 * forged ones waits well under a second instead of being refused). Timers are unref'd.
 */
export class FetchSlots {
  private readonly limits: FetchSlotLimits;
  private readonly what: string;
  private active = 0;
  private readonly queue: (() => void)[] = [];
  private readonly refusals = new WeakSet<object>();

  constructor(limits: FetchSlotLimits, what: string) {
    for (const [name, value] of Object.entries(limits)) {
      if (!Number.isInteger(value) || value < (name === 'inFlight' ? 1 : 0)) {
        throw new PatchbayError('PB_WEBHOOK_CONFIG', `${what}: ${name} must be a whole number${name === 'inFlight' ? ' of at least 1' : ''}`);
      }
    }
    this.limits = limits;
    this.what = what;
  }

  /** Fetches under way now (for tests and metrics). */
  get inFlight(): number {
    return this.active;
  }

  /** Runs `task` in a slot; see the class. Rejects with `task`'s own rejection, or the refusal above. */
  run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active < this.limits.inFlight) return this.start(task);
    if (this.queue.length >= this.limits.waiting || this.limits.waitMs <= 0) return Promise.reject(this.busy());
    return new Promise<T>((resolve, reject) => {
      const go = (): void => {
        clearTimeout(timer);
        this.start(task).then(resolve, reject);
      };
      const timer = setTimeout(() => {
        const index = this.queue.indexOf(go);
        if (index >= 0) this.queue.splice(index, 1);
        reject(this.busy());
      }, this.limits.waitMs);
      timer.unref();
      this.queue.push(go);
    });
  }

  /** Whether `error` is this limiter's refusal (no slot), not the task's own failure. */
  refused(error: unknown): boolean {
    return typeof error === 'object' && error !== null && this.refusals.has(error);
  }

  private async start<T>(task: () => Promise<T>): Promise<T> {
    this.active += 1;
    try {
      return await task();
    } finally {
      this.active -= 1;
      this.queue.shift()?.();
    }
  }

  private busy(): PatchbayError {
    const error = new PatchbayError(
      'PB_WEBHOOK_KEY_UNAVAILABLE',
      `${this.what}: ${this.limits.inFlight} key fetches are under way and ${this.queue.length} waiting, the most allowed; deliver again later`,
      { retryAfterMs: 5_000 },
    );
    this.refusals.add(error);
    return error;
  }
}
