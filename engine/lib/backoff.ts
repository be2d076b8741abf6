/**
 * Delay before a retry, as in AWS's "Exponential Backoff and Jitter": the computed delay grows
 * with the attempt number and is capped, then full jitter draws uniformly in [0, delay) so that
 * many runs failing together do not come back together.
 */

export interface BackoffSettings {
  /** `exponential` doubles each time, `linear` adds `initialDelayMs` each time, `fixed` keeps it. */
  readonly backoff: 'exponential' | 'linear' | 'fixed';
  /** Delay after the first failed attempt, before jitter. */
  readonly initialDelayMs: number;
  /** Upper bound of any one delay, before jitter. */
  readonly maxDelayMs: number;
  /** `full` draws uniformly between 0 and the computed delay; `none` uses it as is. */
  readonly jitter: 'full' | 'none';
}

/**
 * The delay in milliseconds after failed attempt number `attempt` (1 for the first failure).
 * `random` returns a number in [0, 1) (inject a fixed one in tests). Never negative, never above
 * `maxDelayMs`; whole milliseconds.
 */
export function backoffDelayMs(settings: BackoffSettings, attempt: number, random: () => number = Math.random): number {
  const step = Math.max(1, Math.floor(attempt));
  let delay: number;
  switch (settings.backoff) {
    case 'exponential':
      // 2^(step-1) overflows to Infinity long after it passes any real maxDelay; Math.min copes.
      delay = settings.initialDelayMs * 2 ** (step - 1);
      break;
    case 'linear':
      delay = settings.initialDelayMs * step;
      break;
    case 'fixed':
      delay = settings.initialDelayMs;
      break;
  }
  const capped = Math.min(delay, settings.maxDelayMs);
  return Math.floor(settings.jitter === 'full' ? random() * capped : capped);
}
