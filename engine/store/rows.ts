import type { AttemptOutcome, AttemptRow, RunRow, RunStatus, StepRow, StepStatus } from './state-store.js';

/**
 * The column shapes both SQL stores read back (snake_case, `null` for absent, JSON as text) and
 * the mapping into the contract's rows, kept in one place so SQLite and PostgreSQL cannot drift.
 */

/** The columns of `runs` a RunRow shows. */
export interface RunColumns {
  id: string;
  seq: number;
  integration: string;
  order_key: string | null;
  /** 0/1 in SQLite, a boolean in PostgreSQL. */
  key_pending: number | boolean;
  status: RunStatus;
  available_at: number;
  lease_owner: string | null;
  lease_expires_at: number | null;
  next_step: number;
  step_count: number | null;
  replays: number;
  error_code: string | null;
  error_message: string | null;
  error_step: string | null;
  updated_at: number;
  finished_at: number | null;
}

/** The columns of `events` a RunRow shows. */
export interface EventColumns {
  event_key: string;
  type: string | null;
  source: string;
  received_at: number;
  revision: string;
}

/** A run joined with its event. */
export type RunRecord = RunColumns & EventColumns;

export interface StepRecord {
  run_id: string;
  idx: number;
  step_id: string;
  status: StepStatus;
  output: string | null;
  attempts: number;
  first_attempt_at: number | null;
  updated_at: number;
}

export interface AttemptRecord {
  id: number;
  run_id: string;
  step_idx: number;
  step_id: string;
  attempt: number;
  started_at: number;
  duration_ms: number;
  outcome: AttemptOutcome;
  request: string | null;
  response: string | null;
  status: number | null;
  error_code: string | null;
  error_message: string | null;
  retry_at: number | null;
}

/** Stored JSON text back to a value; `null` (no value stored) is `undefined`. */
export function parseJson(text: string | null): unknown {
  return text === null ? undefined : JSON.parse(text);
}

/** A RunRow from a run's columns and its event's (one joined row can be both). */
export function toRunRow(run: RunColumns, event: EventColumns): RunRow {
  return {
    id: run.id,
    integration: run.integration,
    eventKey: event.event_key,
    eventType: event.type ?? undefined,
    source: event.source,
    seq: run.seq,
    status: run.status,
    revision: event.revision,
    orderKey: run.order_key ?? undefined,
    keyPending: Boolean(run.key_pending),
    receivedAt: event.received_at,
    updatedAt: run.updated_at,
    availableAt: run.available_at,
    finishedAt: run.finished_at ?? undefined,
    nextStep: run.next_step,
    stepCount: run.step_count ?? undefined,
    replays: run.replays,
    errorCode: run.error_code ?? undefined,
    errorMessage: run.error_message ?? undefined,
    errorStep: run.error_step ?? undefined,
    leaseOwner: run.lease_owner ?? undefined,
    leaseExpiresAt: run.lease_expires_at ?? undefined,
  };
}

export function toStepRow(row: StepRecord): StepRow {
  return {
    runId: row.run_id,
    index: row.idx,
    stepId: row.step_id,
    status: row.status,
    output: parseJson(row.output),
    attempts: row.attempts,
    firstAttemptAt: row.first_attempt_at ?? undefined,
    updatedAt: row.updated_at,
  };
}

export function toAttemptRow(row: AttemptRecord): AttemptRow {
  return {
    id: row.id,
    runId: row.run_id,
    stepId: row.step_id,
    stepIndex: row.step_idx,
    attempt: row.attempt,
    startedAt: row.started_at,
    durationMs: row.duration_ms,
    outcome: row.outcome,
    request: parseJson(row.request),
    response: parseJson(row.response),
    status: row.status ?? undefined,
    errorCode: row.error_code ?? undefined,
    errorMessage: row.error_message ?? undefined,
    retryAt: row.retry_at ?? undefined,
  };
}
