import type { Logger } from '../lib/log.js';
import { ExitCode } from './main.js';

/** What `watchStopSignals` gives the long-running commands. */
export interface StopSignals {
  /** Resolves at the first SIGTERM or SIGINT, or when `request` is called. */
  readonly stopped: Promise<void>;
  /** Stops as a signal would (`work --until-idle` when the queue is empty). */
  request(): void;
  /** Removes the handlers (after a clean stop). */
  dispose(): void;
}

/**
 * The shutdown contract of `work` and `serve`: the first SIGTERM or SIGINT asks for a graceful
 * stop (logged with `message`); a second one exits at once with exit status 2, after `beforeExit`
 * (synchronous: nothing async runs once `process.exit` is called). Install it before announcing
 * readiness, so a signal sent as soon as the process says it is up is handled.
 */
export function watchStopSignals(logger: Logger, message: string, fields: Readonly<Record<string, unknown>> = {}, beforeExit?: () => void): StopSignals {
  let signals = 0;
  let resolveStopped: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => {
    resolveStopped = resolve;
  });
  const onSignal = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) {
      logger.log('warn', 'second signal: exiting at once; unfinished runs resume on the next start', { signal });
      beforeExit?.();
      process.exit(ExitCode.usage);
    }
    logger.log('info', message, { signal, ...fields });
    resolveStopped();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return {
    stopped,
    request: () => resolveStopped(),
    dispose: () => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    },
  };
}
