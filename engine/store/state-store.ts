/**
 * The state store: everything the engine must not forget, behind one interface so that the
 * executor, the CLI and (later) the daemon never know which database holds it. SQLite
 * (`sqlite/`) is the embedded default; a PostgreSQL store shares this contract and the contract
 * test suite (`test/store/contract.ts`).
 *
 * Every method is asynchronous so a networked database can implement it, but each one is a single
 * transaction that never waits on anything but the database: no network call, no timer, no
 * `await` of engine work happens inside it. Callers redact before they write: a store writes what
 * it is given (see `engine/lib/redact.ts`).
 *
 * Times are milliseconds since the Unix epoch, from the caller's clock (stores never read the
 * system time, so tests can drive leases and timers with a `ManualClock`).
 */

/** Where a run is. `queued` and `retrying` runs are claimable once `availableAt` has passed. */
export const RunStatus = {
  /** Accepted, waiting for a worker (or replayed from the dead letters). */
  queued: 'queued',
  /** Claimed by a worker that holds its lease. */
  running: 'running',
  /** A step failed with a retryable error; a durable timer (`availableAt`) says when to try again. */
  retrying: 'retrying',
  /** Every step succeeded, was skipped, or failed with `continueOnError`. */
  succeeded: 'succeeded',
  /** A step failed for good: the run is a dead letter, with the reason in `errorCode`/`errorMessage`. */
  dead: 'dead',
} as const;
export type RunStatus = (typeof RunStatus)[keyof typeof RunStatus];

/** Where one step of a run is. */
export const StepStatus = {
  pending: 'pending',
  succeeded: 'succeeded',
  /** Its `if` condition was false. */
  skipped: 'skipped',
  /** It failed for good, and `continueOnError` let the run go on. */
  failed: 'failed',
  /** It failed for good and ended the run. */
  dead: 'dead',
} as const;
export type StepStatus = (typeof StepStatus)[keyof typeof StepStatus];

/** An event to accept. The payload is already redacted. */
export interface NewEvent {
  readonly integration: string;
  /**
   * Deduplication key within the integration: the provider's event id (Stripe `evt_…`, GitHub's
   * delivery id), a polled item's id, or a schedule tick. A second event with the same key is not
   * accepted again.
   */
  readonly eventKey: string;
  /** The provider's event type (`payment_intent.succeeded`), when it has one. */
  readonly type?: string | undefined;
  /** How it arrived: `webhook`, `poll`, `schedule`, `manual`. */
  readonly source: string;
  /** The event body as parsed JSON, redacted. */
  readonly payload: unknown;
  readonly receivedAt: number;
  /** The applied revision that accepted it. */
  readonly revision: string;
  /** Ordering key (from the integration's `concurrency.orderBy`): runs with the same key execute one at a time, in arrival order. */
  readonly orderKey?: string | undefined;
  /**
   * True when the ordering key is decided after acceptance (the executor evaluates `orderBy` then,
   * so nothing but the commit happens before a webhook is answered) and set with
   * `assignOrderKeys`. Until then the run is not claimable. Not together with `orderKey`
   * (RangeError); within one integration, use either this or `orderKey`, not both.
   */
  readonly keyPending?: boolean | undefined;
  /** Steps the integration had when the event was accepted (for progress such as `2/3`). */
  readonly stepCount?: number | undefined;
}

/** What accepting one event did. */
export interface AcceptedEvent {
  /** False when an event with the same `(integration, eventKey)` was accepted before. */
  readonly accepted: boolean;
  /** The run of this event (the earlier one for a duplicate). */
  readonly runId: string;
}

/** A run as stored. */
export interface RunRow {
  readonly id: string;
  readonly integration: string;
  readonly eventKey: string;
  readonly eventType: string | undefined;
  readonly source: string;
  /** Arrival order among all runs (monotonic). */
  readonly seq: number;
  readonly status: RunStatus;
  /** Revision that accepted the event. */
  readonly revision: string;
  readonly orderKey: string | undefined;
  /** True while the run waits for its ordering key (`NewEvent.keyPending`); such a run is `queued` and not claimable. */
  readonly keyPending: boolean;
  readonly receivedAt: number;
  readonly updatedAt: number;
  /** When a `queued`/`retrying` run may be claimed (the durable timer). */
  readonly availableAt: number;
  readonly finishedAt: number | undefined;
  /** Index of the first step that has not finished. */
  readonly nextStep: number;
  /** Steps the integration had when the event was accepted; unknown for runs stored before it was recorded. */
  readonly stepCount: number | undefined;
  /** How many times the run was replayed from the dead letters (part of the idempotency keys). */
  readonly replays: number;
  readonly errorCode: string | undefined;
  readonly errorMessage: string | undefined;
  /** Step id that ended the run, for a dead letter. */
  readonly errorStep: string | undefined;
  readonly leaseOwner: string | undefined;
  readonly leaseExpiresAt: number | undefined;
}

/** One step of a run as stored. */
export interface StepRow {
  readonly runId: string;
  readonly index: number;
  readonly stepId: string;
  readonly status: StepStatus;
  /** The step's output (redacted), once it succeeded. */
  readonly output: unknown;
  /** Attempts made in the current generation (reset when the run is replayed). */
  readonly attempts: number;
  /** When the first attempt of the current generation started (for `maxAge` bookkeeping). */
  readonly firstAttemptAt: number | undefined;
  readonly updatedAt: number;
}

/** One attempt at a step, as stored (request and response redacted by the caller). */
export interface AttemptRow {
  readonly id: number;
  readonly runId: string;
  readonly stepId: string;
  readonly stepIndex: number;
  /** 1-based, counted across generations. */
  readonly attempt: number;
  readonly startedAt: number;
  readonly durationMs: number;
  /** `succeeded`, `skipped`, `failed` (will retry), `dead`, `interrupted` (the worker died mid-attempt). */
  readonly outcome: AttemptOutcome;
  readonly request: unknown;
  readonly response: unknown;
  readonly status: number | undefined;
  readonly errorCode: string | undefined;
  readonly errorMessage: string | undefined;
  /** For a failed attempt: when the next one is due. */
  readonly retryAt: number | undefined;
}

export type AttemptOutcome = 'succeeded' | 'skipped' | 'failed' | 'dead' | 'interrupted';

/** A run handed to a worker, with what it needs to continue. */
export interface ClaimedRun {
  readonly run: RunRow;
  /** The event's payload (as stored: redacted). */
  readonly payload: unknown;
  /** Every step row that exists so far, in index order (finished steps carry their outputs). */
  readonly steps: readonly StepRow[];
  /**
   * True when the run was `running` under a lease that expired or was released as orphaned: the
   * previous worker may have sent the current step's request before it died. The executor records
   * that as an `interrupted` attempt.
   */
  readonly resumedAfterLoss: boolean;
}

export interface ClaimOptions {
  /** Identity of the claiming worker (`host:pid:start`). */
  readonly owner: string;
  readonly now: number;
  /** Lease length; a run whose lease expires is claimable by anyone again. */
  readonly leaseMs: number;
  /**
   * Integrations to claim for, each with how many more runs the worker will take now (its free
   * concurrency). Integrations not listed are not claimed.
   */
  readonly capacity: ReadonlyMap<string, number>;
}

/** What to write when an attempt at a step ends. One transaction. */
export interface StepResult {
  readonly runId: string;
  /** The lease holder; nothing is written (and `false` returned) if it no longer holds the lease. */
  readonly owner: string;
  readonly now: number;
  readonly stepIndex: number;
  readonly stepId: string;
  readonly attempt: {
    readonly startedAt: number;
    readonly durationMs: number;
    readonly outcome: Exclude<AttemptOutcome, 'interrupted'>;
    readonly request?: unknown;
    readonly response?: unknown;
    readonly status?: number | undefined;
    readonly errorCode?: string | undefined;
    readonly errorMessage?: string | undefined;
    readonly retryAt?: number | undefined;
  };
  /** The step's new state. `output` for a success; `pending` keeps it for a retry. */
  readonly step: { readonly status: StepStatus; readonly output?: unknown };
  /**
   * The run's new state: `running` (go on with `nextStep`, lease kept), `retrying` (release the
   * lease; claimable again at `availableAt`), `succeeded` or `dead` (release the lease, finished).
   */
  readonly run:
    | { readonly status: 'running'; readonly nextStep: number }
    | { readonly status: 'retrying'; readonly availableAt: number }
    | { readonly status: 'succeeded' }
    | { readonly status: 'dead'; readonly errorCode: string; readonly errorMessage: string; readonly errorStep: string };
}

/** A run whose ordering key is pending, as `pendingOrderKeys` lists it. */
export interface PendingOrderKey {
  readonly runId: string;
  readonly integration: string;
  readonly seq: number;
  /** The event's payload as stored (redacted): what `orderBy` is evaluated over. */
  readonly payload: unknown;
}

/** The ordering key decided for a pending run: `undefined` runs it unordered. */
export interface OrderKeyAssignment {
  readonly runId: string;
  readonly orderKey: string | undefined;
}

export interface RunFilter {
  readonly integration?: string | undefined;
  readonly status?: RunStatus | undefined;
  /** Received at or after. */
  readonly since?: number | undefined;
  /** Received before (paging backwards: pass the last row's `receivedAt`… see `beforeSeq`). */
  readonly beforeSeq?: number | undefined;
  /** @default 50 */
  readonly limit?: number | undefined;
}

/** Counts for `patchbay status` and metrics. */
export interface RunCounts {
  readonly integration: string;
  readonly status: RunStatus;
  readonly count: number;
}

export interface RevisionRow {
  readonly id: string;
  readonly appliedAt: number;
  /** Integration names in the revision. */
  readonly integrations: readonly string[];
}

export interface StateStore {
  /** `sqlite` or `postgres`. */
  readonly kind: string;

  /** Records that a revision was applied (idempotent on `id`). */
  recordRevision(revision: RevisionRow): Promise<void>;
  /** The most recently applied revision. */
  latestRevision(): Promise<RevisionRow | undefined>;

  /**
   * Accepts events and creates their runs (`queued`, available at `receivedAt`), all in one
   * transaction committed durably before the promise resolves (fsync: an accepted event survives
   * a power cut). Duplicates by `(integration, eventKey)` are answered with the existing run.
   */
  acceptEvents(events: readonly NewEvent[]): Promise<readonly AcceptedEvent[]>;

  /**
   * Runs whose ordering key is pending (`NewEvent.keyPending`), of the integrations named, oldest
   * first (ascending `seq`), at most `limitPerIntegration` of each.
   */
  pendingOrderKeys(integrations: readonly string[], limitPerIntegration: number): Promise<readonly PendingOrderKey[]>;

  /**
   * Sets the ordering keys of pending runs, in one transaction, in `seq` order, each exactly as
   * `acceptEvents` would have with that `orderKey`: the run is blocked while an earlier
   * unfinished run of its integration has the same key, and becomes claimable (at its
   * `availableAt`) otherwise. A run is assigned only when no earlier run of its integration is
   * still pending after the assignments before it in this call: the others are postponed (left
   * pending, for a later call), so keys are always decided in arrival order, whichever worker
   * decides them and however many do at once. A run that is no longer pending (another worker
   * assigned it) is left alone. Returns the ids assigned by this call.
   */
  assignOrderKeys(assignments: readonly OrderKeyAssignment[]): Promise<readonly string[]>;

  /**
   * Claims runnable runs: `queued` or `retrying` with `availableAt <= now`, or `running` with an
   * expired lease, oldest first, at most `capacity` per integration; a run with an `orderKey` is
   * claimed only when no earlier unfinished run of the integration has the same key, and a run
   * whose key is pending is not claimed. Each claimed run becomes `running` under `owner` until
   * `now + leaseMs`.
   */
  claimRuns(options: ClaimOptions): Promise<readonly ClaimedRun[]>;

  /** Extends every lease `owner` holds to `until`. Returns how many runs it holds. */
  renewLeases(owner: string, until: number): Promise<number>;

  /**
   * Makes the runs `owner` holds claimable at once (a worker found to be gone, or one shutting
   * down). Their next claim reports `resumedAfterLoss` only when `lost` is true.
   */
  releaseLeases(owner: string, now: number, lost: boolean): Promise<number>;

  /** Owners holding unexpired leases now (to find workers that died). */
  leaseOwners(now: number): Promise<readonly string[]>;

  /**
   * Records an `interrupted` attempt for the current step of a run resumed after a lost lease,
   * counting toward its attempts. False when `owner` does not hold the lease.
   */
  recordInterrupted(runId: string, owner: string, stepIndex: number, stepId: string, now: number): Promise<boolean>;

  /** Records the end of an attempt and moves the run on (see `StepResult`). False when the lease was lost. */
  recordStep(result: StepResult): Promise<boolean>;

  /**
   * Gives a claimed run back without an attempt (a rate limit that frees up only later, a
   * shutdown): `queued` (or `retrying` when it had attempts) until `availableAt`. False when the
   * lease was lost.
   */
  deferRun(runId: string, owner: string, availableAt: number, now: number): Promise<boolean>;

  /**
   * Earliest `availableAt` of a waiting run, or of a lease expiry, or of the oldest run whose key
   * is pending (keying is due at once): when a worker should look again.
   */
  nextWakeAt(): Promise<number | undefined>;

  getRun(runId: string): Promise<RunRow | undefined>;
  /** Steps of a run, in index order. */
  getSteps(runId: string): Promise<readonly StepRow[]>;
  /** Attempts of a run, oldest first. */
  getAttempts(runId: string): Promise<readonly AttemptRow[]>;
  /** The stored (redacted) payload of a run's event. */
  getPayload(runId: string): Promise<unknown>;
  /** Runs newest first. */
  listRuns(filter: RunFilter): Promise<readonly RunRow[]>;
  countRuns(): Promise<readonly RunCounts[]>;

  /**
   * Puts dead runs back in the queue: each becomes `queued`, available at `now`, its `replays`
   * incremented, its dead step reset to `pending` with zero attempts; succeeded steps are kept
   * and never run again. Runs that are not dead are left alone. Returns the ids replayed.
   */
  replayDead(runIds: readonly string[], now: number): Promise<readonly string[]>;

  /**
   * Deletes finished runs (`succeeded`, `dead`) that finished before `finishedBefore`, with their
   * steps, attempts and events, overwriting the freed pages. Returns how many runs went.
   */
  purgeRuns(finishedBefore: number, integration?: string): Promise<number>;

  /** The poll cursor of an integration (opaque text). */
  getCursor(integration: string): Promise<string | undefined>;
  setCursor(integration: string, cursor: string, now: number): Promise<void>;

  /**
   * Takes or keeps the trigger lease of `integration` for `owner` until `now + leaseMs`, so that of
   * several daemons sharing this store only one polls an integration or fires its schedule at a
   * time. True when `owner` holds the lease after the call: it was free, `owner` already held it
   * (renewed, even when it had run out meanwhile), or the holder's lease had run out
   * (`expiresAt <= now`: taken over). False, changing nothing, while another owner's lease runs.
   * One transaction: of any number of concurrent calls for one integration, at most one answers
   * true until that lease runs out. `leaseMs` is a positive number of milliseconds (RangeError
   * otherwise).
   */
  acquireTriggerLease(integration: string, owner: string, now: number, leaseMs: number): Promise<boolean>;

  /** Ends `owner`'s trigger lease of `integration` at once; does nothing when another owner holds it (it took the lease over) or nobody does. */
  releaseTriggerLease(integration: string, owner: string): Promise<void>;

  /** Closes the database; pending writes are flushed. */
  close(): Promise<void>;
}
