import type { SubmittedEvent } from '../executor/executor.js';
import { PatchbayError } from '../diag/errors.js';
import type { AcceptedEvent } from '../store/state-store.js';

/**
 * The event of a schedule tick. Its key is the tick's instant (`tick:2026-11-24T07:00:00.000Z`):
 * however many processes or restarts fire the same tick, the store accepts it once.
 */

/** The payload of a schedule run (`event.*` in the integration's expressions). */
export interface ScheduleTickPayload {
  /** The tick this run is for (ISO 8601, UTC). For a catch-up run, the latest missed tick. */
  readonly scheduledAt: string;
  /** When the run was fired (ISO 8601, UTC). */
  readonly firedAt: string;
  /**
   * Ticks this run stands for that did not fire on time: 0 for a punctual tick; for a catch-up
   * run after downtime (`catchUp: once`), every tick that passed meanwhile, `scheduledAt` included.
   */
  readonly missedTicks: number;
  readonly cron: string;
  readonly timezone: string;
}

/** The event key of a tick. */
export function tickEventKey(tickMs: number): string {
  return `tick:${new Date(tickMs).toISOString()}`;
}

/**
 * Submits the event of one tick of `integration`'s schedule, fired at `firedAtMs`. Resolves with
 * the store's answer (`accepted: false` when the tick had been fired before, by this process
 * before a restart or by another); rejects with `submit`'s errors.
 */
export async function fireScheduleTick(options: {
  readonly integration: string;
  readonly tickMs: number;
  readonly firedAtMs: number;
  readonly missedTicks: number;
  readonly cron: string;
  readonly timezone: string;
  readonly submit: (events: readonly SubmittedEvent[]) => Promise<readonly AcceptedEvent[]>;
}): Promise<AcceptedEvent> {
  const payload: ScheduleTickPayload = {
    scheduledAt: new Date(options.tickMs).toISOString(),
    firedAt: new Date(options.firedAtMs).toISOString(),
    missedTicks: options.missedTicks,
    cron: options.cron,
    timezone: options.timezone,
  };
  const [accepted] = await options.submit([
    { integration: options.integration, eventKey: tickEventKey(options.tickMs), source: 'schedule', payload, receivedAt: options.firedAtMs },
  ]);
  if (accepted === undefined) throw new PatchbayError('PB_INTERNAL', 'submit answered no result for the tick event');
  return accepted;
}
