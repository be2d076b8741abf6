import type { AttemptRow, RunCounts, RunRow, RunStatus, StepRow } from '../../store/state-store.js';
import type { ReplayResult, RunProgress } from './run-queries.js';

/**
 * The admin API's shapes: what the daemon supplies (`DaemonStatus`) and what travels as JSON
 * (the `…Body` types), shared by the handler and the CLI's client. On the wire absent values are
 * `null`, never missing keys.
 */

/** Base path of the admin API. */
export const adminBasePath = '/admin/v1';

/** Most runs one `GET /admin/v1/runs` answers. */
export const maxRunsPageLimit = 1000;

/** How one integration of the applied revision is doing, as the daemon knows it. */
export interface IntegrationStatus {
  readonly name: string;
  /** `webhook`, `poll`, `schedule` (or `none` when it has no trigger). */
  readonly trigger: string;
  readonly enabled: boolean;
  /** `running`: receiving and executing; `broken`: could not be prepared (see `error`); `disabled`: `enabled: false`. */
  readonly state: 'running' | 'broken' | 'disabled';
  /** Why it is broken: the PatchbayError's code and (secret-free) message. */
  readonly error?: { readonly code: string; readonly message: string } | undefined;
}

/** What the daemon reports about itself (the lead's `status()` callback fills it). */
export interface DaemonStatus {
  /** Id of the applied revision, if one is applied. */
  readonly revision: string | undefined;
  /** When the daemon started, ms since the epoch. */
  readonly startedAt: number;
  /** True once SIGTERM was received: new events are refused while in-flight work drains. */
  readonly draining: boolean;
  /** Patchbay's version. */
  readonly version?: string | undefined;
  readonly integrations: readonly IntegrationStatus[];
}

/** Runs of one integration by status (every status present, zero when none). */
export type RunCountsByStatus = Readonly<Record<RunStatus, number>>;

/** An integration on the wire: its status and its run counts. */
export interface IntegrationBody {
  readonly name: string;
  readonly trigger: string | null;
  readonly enabled: boolean | null;
  readonly state: IntegrationStatus['state'] | null;
  readonly error: { readonly code: string; readonly message: string } | null;
  readonly runs: RunCountsByStatus;
}

/** `GET /admin/v1/status`. */
export interface StatusBody {
  readonly revision: string | null;
  /** ISO time. */
  readonly startedAt: string;
  readonly draining: boolean;
  readonly version: string | null;
  /** The plan's integrations, then any other integration that has runs in the store (trigger/state null). */
  readonly integrations: readonly IntegrationBody[];
  /** Totals over every integration. */
  readonly runs: RunCountsByStatus;
}

/** `GET /admin/v1/integrations`. */
export interface IntegrationsBody {
  readonly integrations: readonly IntegrationBody[];
}

/** One run of `GET /admin/v1/runs`: the stored run plus how far it got. */
export interface RunListItem {
  readonly run: RunRow;
  readonly progress: RunProgress;
}

/** `GET /admin/v1/runs`. */
export interface RunsPageBody {
  readonly runs: readonly RunListItem[];
  /** Cursor for the next (older) page: pass it as `before`; null when this page was not full. */
  readonly nextBefore: number | null;
}

/** `GET /admin/v1/runs/:id`: everything as stored (redacted before it was written). */
export interface RunDetailBody {
  readonly run: RunRow;
  readonly steps: readonly StepRow[];
  readonly attempts: readonly AttemptRow[];
  readonly payload: unknown;
}

/** `POST /admin/v1/runs/:id/retry` and `POST /admin/v1/runs/retry`. */
export type RetryBody = ReplayResult;

/** An error answer. */
export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string };
}

const allStatuses: readonly RunStatus[] = ['queued', 'running', 'retrying', 'succeeded', 'dead'];

/** Zero-filled counts by status of `integration` (every integration when undefined). */
export function countsByStatus(counts: readonly RunCounts[], integration?: string): RunCountsByStatus {
  const result = Object.fromEntries(allStatuses.map((status) => [status, 0])) as Record<RunStatus, number>;
  for (const row of counts) if (integration === undefined || row.integration === integration) result[row.status] = (result[row.status] ?? 0) + row.count;
  return result;
}
