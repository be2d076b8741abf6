import { sanitizeText } from '../../diag/diagnostic.js';
import { PatchbayError } from '../../diag/errors.js';
import { didYouMean } from '../../lib/did-you-mean.js';
import type { RunFilter, RunRow, RunStatus, StateStore, StepRow } from '../../store/state-store.js';

/**
 * Queries over the state store shared by `patchbay runs` on a state file and the admin API, so
 * both answer the same question the same way (paging, progress, "did you mean", replay batches).
 */

/** Runs handed to the store per `replayDead` call, and listed per page when replaying every dead run. */
export const replayBatchSize = 500;
/** Most recent runs scanned for a "did you mean" when an id is unknown. */
const suggestionScanLimit = 5_000;

/** Steps the run is past: a `failed` step had `continueOnError`; a `dead` one ended the run. */
const doneStepStatuses: ReadonlySet<string> = new Set(['succeeded', 'skipped', 'failed']);

/** How far a run got, for the STEPS and ATTEMPTS columns of `runs list`. */
export interface RunProgress {
  /** Steps finished (succeeded, skipped, or failed with continueOnError). */
  readonly finishedSteps: number;
  /** Steps of the integration when the event arrived, else the step rows that exist. */
  readonly totalSteps: number;
  /** Attempts made in the current generation, over all steps. */
  readonly attempts: number;
}

/** Progress of a run from its step rows. */
export function progressOf(run: RunRow, steps: readonly StepRow[]): RunProgress {
  return {
    finishedSteps: steps.filter((step) => doneStepStatuses.has(step.status)).length,
    totalSteps: run.stepCount ?? steps.length,
    attempts: steps.reduce((sum, step) => sum + step.attempts, 0),
  };
}

/**
 * The newest runs matching `filter`, up to `limit`, starting before `beforeSeq` when given. Stores
 * may answer fewer rows per call than asked (SQLite: 1000), so this pages back by `seq`; a store
 * that does not move backwards ends the paging instead of looping.
 */
export async function listNewest(store: StateStore, filter: Omit<RunFilter, 'limit'>, limit: number): Promise<RunRow[]> {
  const runs: RunRow[] = [];
  let beforeSeq = filter.beforeSeq;
  while (runs.length < limit) {
    const page = await store.listRuns({ ...filter, beforeSeq, limit: limit - runs.length });
    runs.push(...page);
    const last = page[page.length - 1];
    if (last === undefined || (beforeSeq !== undefined && last.seq >= beforeSeq)) break;
    beforeSeq = last.seq;
  }
  return runs.slice(0, limit);
}

/** Integration names that have runs, for a "did you mean" on an integration filter. */
export async function knownIntegrations(store: StateStore): Promise<string[]> {
  return [...new Set((await store.countRuns()).map((count) => count.integration))];
}

/**
 * Explains unknown run ids, with a suggestion from the newest runs (listed once, on first use):
 * the one id the input is the start of (with or without the `run_` prefix), else the closest id
 * by edit distance.
 */
export class UnknownRuns {
  private recent: string[] | undefined;

  constructor(private readonly store: StateStore) {}

  /** A PB_RUN_NOT_FOUND error for `id`, with a hint when a recent run id resembles it. */
  async error(id: string): Promise<PatchbayError> {
    const ids = await this.recentIds();
    const starts = id === '' ? [] : ids.filter((candidate) => candidate.startsWith(id) || candidate.slice(candidate.indexOf('_') + 1).startsWith(id));
    let hint = '';
    if (starts.length === 1) hint = ` (did you mean "${starts[0]}"?)`;
    else if (starts.length > 1) hint = ` (${starts.length} runs start with "${sanitizeText(id)}": give more of the id)`;
    else hint = didYouMean(id, ids);
    return new PatchbayError('PB_RUN_NOT_FOUND', `no run "${sanitizeText(id)}"${hint}`);
  }

  private async recentIds(): Promise<string[]> {
    if (this.recent !== undefined) return this.recent;
    const ids: string[] = [];
    let beforeSeq: number | undefined;
    while (ids.length < suggestionScanLimit) {
      const page = await this.store.listRuns({ beforeSeq, limit: replayBatchSize });
      for (const run of page) ids.push(run.id);
      const last = page[page.length - 1];
      // A store that did not move backwards would loop forever; stop instead (it is only a hint).
      if (page.length < replayBatchSize || last === undefined || (beforeSeq !== undefined && last.seq >= beforeSeq)) break;
      beforeSeq = last.seq;
    }
    this.recent = ids;
    return ids;
  }
}

/** A named run that was not replayed, and why. */
export interface SkippedReplay {
  readonly id: string;
  readonly code: 'PB_RUN_NOT_FOUND' | 'PB_RUN_NOT_DEAD';
  readonly status: RunStatus | undefined;
  readonly message: string;
}

/** What a replay did: `queued` is `replayed.length`. */
export interface ReplayResult {
  readonly queued: number;
  readonly replayed: readonly string[];
  readonly skipped: readonly SkippedReplay[];
}

/**
 * Replays the named dead runs (duplicates once), `replayBatchSize` per store call; each one that
 * is not replayed is explained (not found, with a hint; or not dead, with its status).
 * `onProgress(done)` is called after each batch.
 */
export async function replayRuns(store: StateStore, ids: readonly string[], now: () => number, onProgress?: (done: number) => void): Promise<ReplayResult> {
  const unique = [...new Set(ids)];
  const replayed: string[] = [];
  const skipped: SkippedReplay[] = [];
  const unknown = new UnknownRuns(store);
  for (let start = 0; start < unique.length; start += replayBatchSize) {
    const batch = unique.slice(start, start + replayBatchSize);
    const done = new Set(await store.replayDead(batch, now()));
    for (const id of batch) {
      if (done.has(id)) {
        replayed.push(id);
        continue;
      }
      const run = await store.getRun(id);
      if (run === undefined) {
        const error = await unknown.error(id);
        skipped.push({ id, code: 'PB_RUN_NOT_FOUND', status: undefined, message: error.message });
      } else {
        skipped.push({ id, code: 'PB_RUN_NOT_DEAD', status: run.status, message: `run ${id} is ${run.status}, not dead: skipped` });
      }
    }
    onProgress?.(start + batch.length);
  }
  return { queued: replayed.length, replayed, skipped };
}

/** Dead runs (of `integration`, when given), from the store's counts. */
export async function countDead(store: StateStore, integration: string | undefined): Promise<number> {
  const counts = await store.countRuns();
  return counts.filter((c) => c.status === 'dead' && (integration === undefined || c.integration === integration)).reduce((sum, c) => sum + c.count, 0);
}

/**
 * Replays every dead run (of `integration`, when given), newest first, a page of
 * `replayBatchSize` at a time. Throws PatchbayError PB_INTERNAL when the store's paging does not
 * move backwards. `onProgress(done)` is called after each batch.
 */
export async function replayAllDead(store: StateStore, integration: string | undefined, now: () => number, onProgress?: (done: number) => void): Promise<ReplayResult> {
  const replayed: string[] = [];
  let beforeSeq: number | undefined;
  for (;;) {
    const page = await store.listRuns({ status: 'dead', integration, beforeSeq, limit: replayBatchSize });
    const last = page[page.length - 1];
    if (last === undefined) break;
    if (beforeSeq !== undefined && last.seq >= beforeSeq) {
      throw new PatchbayError('PB_INTERNAL', `listRuns returned seq ${last.seq} for beforeSeq ${beforeSeq}; paging would not end`);
    }
    replayed.push(...(await store.replayDead(page.map((run) => run.id), now())));
    onProgress?.(replayed.length);
    if (page.length < replayBatchSize) break;
    beforeSeq = last.seq;
  }
  return { queued: replayed.length, replayed, skipped: [] };
}
