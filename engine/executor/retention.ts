import { systemClock, type Clock } from '../lib/clock.js';
import { silentLogger, type Logger } from '../lib/log.js';
import type { StateStore } from '../store/state-store.js';

export interface RetentionOptions {
  readonly store: StateStore;
  /** Finished runs older than this are deleted. */
  readonly retentionMs: number;
  /** How often to sweep. @default 1 hour */
  readonly intervalMs?: number;
  /** @default systemClock */
  readonly clock?: Clock;
  /** @default silentLogger */
  readonly logger?: Logger;
}

/**
 * The retention policy: deletes runs that finished more than `retentionMs` ago (with their steps,
 * attempts and events; see `StateStore.purgeRuns`) once now and then every `intervalMs`, so the
 * state file does not grow without bound. Returns a function that stops the sweeps and resolves
 * when a sweep in progress has ended. A failed sweep is logged and tried again at the next one.
 */
export function startRetention(options: RetentionOptions): () => Promise<void> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger;
  let current: Promise<void> = Promise.resolve();
  const sweep = (): void => {
    current = current.then(async () => {
      try {
        const deleted = await options.store.purgeRuns(clock.now() - options.retentionMs);
        if (deleted > 0) logger.log('info', 'retention: deleted finished runs', { deleted, retentionMs: options.retentionMs });
      } catch (error) {
        logger.log('error', 'retention sweep failed; trying again at the next one', { error: error instanceof Error ? error.message : String(error) });
      }
    });
  };
  sweep();
  const timer = setInterval(sweep, options.intervalMs ?? 3_600_000);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await current;
  };
}
