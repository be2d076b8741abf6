import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { PatchbayError } from '../../diag/errors.js';
import { systemClock, type Clock } from '../../lib/clock.js';
import { newId } from '../../lib/ids.js';
import type {
  AcceptedEvent,
  AttemptRow,
  ClaimedRun,
  ClaimOptions,
  NewEvent,
  OrderKeyAssignment,
  PendingOrderKey,
  RevisionRow,
  RunCounts,
  RunFilter,
  RunRow,
  RunStatus,
  StateStore,
  StepResult,
  StepRow,
} from '../state-store.js';
import { parseJson, toAttemptRow, toRunRow, toStepRow, type AttemptRecord, type EventColumns, type RunColumns, type RunRecord, type StepRecord } from '../rows.js';
import { applicableAssignments, type PendingRun } from '../order-keys.js';
import { migrations, type Migration } from './migrations.js';

export interface SqliteStoreOptions {
  /**
   * How long a statement waits for another connection (another process on the same file) to
   * release the write lock before failing with `PB_STATE_BUSY`.
   * @default 5000
   */
  readonly busyTimeoutMs?: number;
  /**
   * A cap on the database file's size; writes past it fail with `PB_STATE_FULL` (and purging old
   * runs frees room again). Rounded down to whole pages.
   * @default no limit beyond the disk
   */
  readonly maxSizeBytes?: number;
  /** The clock that stamps `schema_migrations.applied_at`; the store's own times all come from its callers. @default systemClock */
  readonly clock?: Clock;
}

/** The newest schema version this code knows. */
export const schemaVersion = migrations.reduce((highest, migration) => Math.max(highest, migration.version), 0);

/**
 * Opens (creating it, and its folder, when missing) the SQLite state database at `path`, brings
 * its schema up to date and returns the store. A new folder gets mode 0700 and a new file mode
 * 0600; SQLite gives its `-wal` and `-shm` files the database file's mode.
 *
 * Errors: `PB_STATE_UNREADABLE` (with the path) when the file is not a SQLite database, belongs to
 * another program, cannot be created or opened, or lives on a file system without write-ahead
 * logging; `PB_STATE_TOO_NEW` when a newer Patchbay has migrated it past `schemaVersion`;
 * `PB_STATE_BUSY` when another process holds the write lock longer than `busyTimeoutMs`.
 */
export async function openSqliteStore(path: string, options: SqliteStoreOptions = {}): Promise<SqliteStore> {
  const file = resolve(path);
  const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
  if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0) throw new RangeError(`busyTimeoutMs must be a whole number of milliseconds, not ${busyTimeoutMs}`);
  createPrivateFile(file);
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { timeout: busyTimeoutMs });
    configure(db, file, options.maxSizeBytes);
    migrate(db, file, options.clock ?? systemClock);
    return new SqliteStore(db, file);
  } catch (error) {
    db?.close();
    if (error instanceof PatchbayError) throw error;
    const mapped = storeError(error, file);
    if (mapped instanceof PatchbayError && mapped.code === 'PB_STATE_BUSY') throw mapped;
    throw new PatchbayError('PB_STATE_UNREADABLE', `${file} cannot be opened as a Patchbay state database: ${sqliteReason(error, file)}`, { cause: error });
  }
}

function createPrivateFile(file: string): void {
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    closeSync(openSync(file, 'wx', 0o600));
  } catch (error) {
    // An existing file is the normal case: SQLite opens it next, and reports it if it is unusable.
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw new PatchbayError('PB_STATE_UNREADABLE', `${file} cannot be created (${(error as NodeJS.ErrnoException).code ?? String(error)}): check that its folder is writable`, { cause: error });
  }
}

function configure(db: Database.Database, file: string, maxSizeBytes: number | undefined): void {
  // WAL: readers never block the writer and a commit appends to one file. It is a property of the
  // file (every later connection uses it too); a file system that cannot share memory between
  // processes (some network mounts) refuses it, and the store's locking assumes it.
  const mode = db.pragma('journal_mode = WAL', { simple: true });
  if (mode !== 'wal') {
    throw new PatchbayError('PB_STATE_UNREADABLE', `${file} cannot use write-ahead logging (the file system allowed only "${String(mode)}"): keep the state on a local disk`);
  }
  // NORMAL: in WAL mode a commit is atomic and consistent but only fsynced at checkpoints, so a
  // power cut may forget the last few step records. A forgotten step record only makes a step run
  // again, with the same idempotency key. Accepting events is different and switches to FULL.
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  // Purged runs (redacted, but still customer data) must not linger in free pages or the WAL.
  db.pragma('secure_delete = ON');
  if (maxSizeBytes !== undefined) {
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    db.pragma(`max_page_count = ${Math.max(1, Math.floor(maxSizeBytes / pageSize))}`);
  }
}

function migrate(db: Database.Database, file: string, clock: Clock): void {
  const tables = db.prepare(`SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`).pluck().all() as string[];
  if (tables.length > 0 && !tables.includes('schema_migrations')) {
    throw new PatchbayError(
      'PB_STATE_UNREADABLE',
      `${file} is a SQLite database of another program (it has tables but no schema_migrations): point the state path at a new file`,
    );
  }
  db.transaction(() => {
    db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY,
      name TEXT NOT NULL,
      applied_at INTEGER NOT NULL
    )`);
  }).immediate();
  const highest = db.prepare('SELECT COALESCE(MAX(version), 0) FROM schema_migrations').pluck();
  const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
  const checkNotTooNew = (version: number): void => {
    if (version > schemaVersion) {
      throw new PatchbayError(
        'PB_STATE_TOO_NEW',
        `${file} has schema version ${version}, but this Patchbay knows versions up to ${schemaVersion}: upgrade patchbay (a newer version wrote this database)`,
      );
    }
  };
  checkNotTooNew(highest.get() as number);
  const ordered = [...migrations].sort((a, b) => a.version - b.version);
  for (const migration of ordered) {
    // Each migration checks the version again under the write lock: two processes opening a new
    // file together both see version 0, and the second must find the first one's work.
    db.transaction((step: Migration) => {
      const current = highest.get() as number;
      checkNotTooNew(current);
      if (current >= step.version) return;
      db.exec(step.sql);
      record.run(step.version, step.name, clock.now());
    }).immediate(migration);
  }
}

/** Translates SQLite's failures into the catalogue's codes; anything else (a bug) passes through. */
function storeError(error: unknown, file: string): unknown {
  if (!(error instanceof Database.SqliteError)) return error;
  const code = error.code;
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new PatchbayError('PB_STATE_BUSY', `${file} stayed locked by another connection for longer than the busy timeout (${code}): try again`, { cause: error });
  }
  if (code === 'SQLITE_FULL') {
    return new PatchbayError(
      'PB_STATE_FULL',
      `${file} is full (its size limit or the disk): purge old runs with patchbay runs purge --older-than, or free disk space`,
      { cause: error },
    );
  }
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_IOERR')) {
    return new PatchbayError('PB_STATE_IO', `${file} cannot be read or written (${code}): check the disk, and restore the file from a backup if it is damaged`, { cause: error });
  }
  return error;
}

function sqliteReason(error: unknown, file: string): string {
  if (error instanceof Database.SqliteError) {
    if (error.code === 'SQLITE_NOTADB') return 'it is not a SQLite database; move it away or point the state path at a new file';
    if (error.code.startsWith('SQLITE_CORRUPT')) return 'it is damaged; restore it from a backup';
    return `${error.code} (${error.message}); check the permissions of ${dirname(file)} and of the file`;
  }
  return error instanceof Error ? error.message : String(error);
}

/** An event row as a claim reads it: the columns a RunRow shows, its seq and its payload. */
interface EventPart extends EventColumns {
  seq: number;
  payload: string;
}

interface EventParams {
  readonly integration: string;
  readonly eventKey: string;
  readonly type: string | null;
  readonly source: string;
  readonly payload: string;
  readonly receivedAt: number;
  readonly revision: string;
  readonly orderKey: string | null;
  readonly keyPending: 0 | 1;
  readonly stepCount: number | null;
}

/** Most writes one group commit takes; a full batch is committed at once. */
const maxWritesPerCommit = 48;
/** How long the first queued write waits for others to join its commit. */
const writeWindowMs = 1;

/** A write waiting for its group commit (see `SqliteStore.flushWrites`). */
type QueuedWrite =
  | {
      readonly kind: 'accept';
      readonly events: readonly EventParams[];
      readonly resolve: (accepted: readonly AcceptedEvent[]) => void;
      readonly reject: (error: unknown) => void;
    }
  | {
      readonly kind: 'step';
      readonly result: StepResult;
      readonly json: StepJson;
      readonly resolve: (written: boolean) => void;
      readonly reject: (error: unknown) => void;
    };

/** A step result's JSON columns, serialised before the transaction. */
interface StepJson {
  readonly request: string | null;
  readonly response: string | null;
  readonly output: string | null;
}

/** Where a run sits among the runs of its order key. */
interface KeyOfRun {
  readonly seq: number;
  readonly integration: string;
  readonly orderKey: string | null;
}

interface Candidate {
  readonly seq: number;
  readonly status: RunStatus;
}

const runColumns = `r.id, r.seq, r.integration, r.order_key, r.key_pending, r.status, r.available_at, r.lease_owner, r.lease_expires_at,
  r.next_step, r.step_count, r.replays, r.error_code, r.error_message, r.error_step, r.updated_at, r.finished_at,
  e.event_key, e.type, e.source, e.received_at, e.revision`;

// The unfinished runs of one integration and order key, through the index that holds only those.
// Both conditions are spelled out so SQLite sees that the partial index applies.
const activeOfKey = `runs INDEXED BY runs_order_active
  WHERE integration = @integration AND order_key = @orderKey AND order_key IS NOT NULL AND status IN ('queued', 'running', 'retrying')`;

const maxListLimit = 1000;
const defaultListLimit = 50;

/**
 * The SQLite `StateStore` (see `state-store.ts` for each method's contract). Open it with
 * `openSqliteStore`. Every method is one synchronous better-sqlite3 transaction over statements
 * prepared in the constructor; write transactions are IMMEDIATE, so they take the write lock
 * before reading and two processes on one file serialise instead of both claiming a run read
 * from the same snapshot.
 *
 * `acceptEvents` and `recordStep` calls made within a millisecond of each other (up to 48) are
 * committed together, in order (group commit; see `flushWrites`): each caller's promise still resolves only
 * after the commit (for accepted events, the fsync) that holds its write, and one commit serves
 * them all. Any other method first commits what is queued, so it sees every earlier write.
 *
 * Leases: a worker holds a run while `lease_owner` names it and the run is `running`, even past
 * `leaseExpiresAt` until another worker's claim takes the run over; its step records and renewals
 * are accepted until then. `releaseLeases(owner, now, true)` ends the leases at `now` and leaves
 * the runs `running`, so the next claim takes them as expired (`resumedAfterLoss`), exactly like a
 * lease that ran out; with `lost = false` the runs go back to `queued` (or `retrying` when their
 * current step has attempts), available at `now`, and the next claim is a fresh one.
 *
 * `nextWakeAt` leaves out runs waiting behind an earlier run with the same order key (they become
 * claimable when that run finishes, which its worker sees). It may return a time in the past
 * while runs wait for capacity; callers then wait for a run to finish or a short poll interval.
 *
 * Failures are `PatchbayError`s: `PB_STATE_BUSY` (another process held the write lock past the
 * busy timeout), `PB_STATE_FULL`, `PB_STATE_IO` (I/O error, damaged file), `PB_STATE_CLOSED`.
 */
export class SqliteStore implements StateStore {
  readonly kind = 'sqlite';
  /** The database file's absolute path. */
  readonly path: string;

  private readonly db: Database.Database;
  private queue: QueuedWrite[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private closed = false;

  private readonly syncFull: Database.Statement;
  private readonly syncNormal: Database.Statement;
  private readonly insertEvent: Database.Statement;
  private readonly insertRun: Database.Statement;
  private readonly selectRunIdOfEvent: Database.Statement;
  private readonly claimArms: { readonly queued: Database.Statement; readonly retrying: Database.Statement; readonly expired: Database.Statement };
  private readonly takeLeases: Database.Statement;
  private readonly selectPendingOf: Database.Statement;
  private readonly selectPendingUpTo: Database.Statement;
  private readonly selectAssignTargets: Database.Statement;
  private readonly assignKey: Database.Statement;
  private readonly selectEventsOf: Database.Statement;
  private readonly selectStepsOf: Database.Statement;
  private readonly selectRun: Database.Statement;
  private readonly selectPayload: Database.Statement;
  private readonly selectSteps: Database.Statement;
  private readonly selectAttempts: Database.Statement;
  private readonly holdsLease: Database.Statement;
  private readonly unblockNext: Database.Statement;
  private readonly blockLater: Database.Statement;
  private readonly reblock: Database.Statement;
  private readonly nextAttempt: Database.Statement;
  private readonly insertAttempt: Database.Statement;
  private readonly upsertStep: Database.Statement;
  private readonly countInterrupted: Database.Statement;
  private readonly runContinue: Database.Statement;
  private readonly runRetry: Database.Statement;
  private readonly runSucceed: Database.Statement;
  private readonly runDie: Database.Statement;
  private readonly runDefer: Database.Statement;
  private readonly renew: Database.Statement;
  private readonly releaseLost: Database.Statement;
  private readonly releaseKept: Database.Statement;
  private readonly selectLeaseOwners: Database.Statement;
  private readonly selectNextWake: Database.Statement;
  private readonly selectStatus: Database.Statement;
  private readonly resetSteps: Database.Statement;
  private readonly requeueDead: Database.Statement;
  private readonly purgeAll: Database.Statement;
  private readonly purgeIntegration: Database.Statement;
  private readonly listQueries: readonly Database.Statement[];
  private readonly countQuery: Database.Statement;
  private readonly upsertCursor: Database.Statement;
  private readonly selectCursor: Database.Statement;
  private readonly upsertTriggerLease: Database.Statement;
  private readonly deleteTriggerLease: Database.Statement;
  private readonly upsertRevision: Database.Statement;
  private readonly selectLatestRevision: Database.Statement;
  private readonly checkpoint: Database.Statement;

  private readonly writeBatchTx: Database.Transaction<(batch: readonly QueuedWrite[]) => unknown[]>;
  private readonly claimTx: Database.Transaction<(options: ClaimOptions) => ClaimedRun[]>;
  private readonly assignTx: Database.Transaction<(assignments: readonly OrderKeyAssignment[]) => string[]>;
  private readonly recordInterruptedTx: Database.Transaction<(runId: string, owner: string, stepIndex: number, stepId: string, now: number) => boolean>;
  private readonly deferTx: Database.Transaction<(runId: string, owner: string, availableAt: number, now: number) => boolean>;
  private readonly replayTx: Database.Transaction<(runIds: readonly string[], now: number) => string[]>;

  /** Use `openSqliteStore`: it configures the connection and migrates the schema this expects. */
  constructor(db: Database.Database, path: string) {
    this.db = db;
    this.path = path;
    this.syncFull = db.prepare('PRAGMA synchronous = FULL');
    this.syncNormal = db.prepare('PRAGMA synchronous = NORMAL');
    this.checkpoint = db.prepare('PRAGMA wal_checkpoint(TRUNCATE)');

    this.insertEvent = db.prepare(`INSERT INTO events (integration, event_key, type, source, payload, received_at, revision)
      VALUES (@integration, @eventKey, @type, @source, @payload, @receivedAt, @revision)
      ON CONFLICT (integration, event_key) DO NOTHING`);
    // Every unfinished run of the key is earlier than a new one, so any of them blocks it.
    this.insertRun = db.prepare(`INSERT INTO runs (seq, id, integration, order_key, key_pending, status, available_at, updated_at, step_count, blocked)
      VALUES (@seq, @id, @integration, @orderKey, @keyPending, 'queued', @receivedAt, @receivedAt, @stepCount,
        @orderKey IS NOT NULL AND EXISTS (SELECT 1 FROM ${activeOfKey}))`);
    this.selectRunIdOfEvent = db.prepare(`SELECT r.id FROM events AS e JOIN runs AS r ON r.seq = e.seq
      WHERE e.integration = ? AND e.event_key = ?`).pluck();

    // Three scans instead of one `status IN (...)`: each walks an index in seq order and stops
    // after `limit` rows, where an IN list would make SQLite sort every waiting run first. The
    // redundant status and blocked terms let SQLite match the partial index.
    const waitingArm = (status: 'queued' | 'retrying'): Database.Statement =>
      db.prepare(`SELECT seq, status FROM runs INDEXED BY runs_ready
        WHERE integration = @integration AND status = '${status}' AND available_at <= @now
          AND blocked = 0 AND key_pending = 0 AND status IN ('queued', 'retrying')
        ORDER BY seq LIMIT @limit`);
    this.claimArms = {
      queued: waitingArm('queued'),
      retrying: waitingArm('retrying'),
      // Expired leases are few (normally none): found by expiry time, then put in seq order.
      expired: db.prepare(`SELECT seq, status FROM runs INDEXED BY runs_leases
        WHERE status = 'running' AND lease_expires_at <= @now AND integration = @integration AND blocked = 0
        ORDER BY seq LIMIT @limit`),
    };
    // The claim's writes and reads take one statement each for all its runs (ids passed as a JSON
    // array), not one per run: a statement call costs more than the rows it touches.
    this.takeLeases = db.prepare(`UPDATE runs SET status = 'running', lease_owner = @owner, lease_expires_at = @until, updated_at = @now
      WHERE seq IN (SELECT value FROM json_each(@seqs))
      RETURNING id, seq, integration, order_key, key_pending, status, available_at, lease_owner, lease_expires_at, next_step, step_count, replays,
        error_code, error_message, error_step, updated_at, finished_at`);
    // Pending keys: an integration's pending runs oldest first, through the index of only those.
    this.selectPendingOf = db.prepare(`SELECT r.id AS runId, r.integration, r.seq, e.payload FROM runs AS r INDEXED BY runs_key_pending
        JOIN events AS e ON e.seq = r.seq
      WHERE r.integration = @integration AND r.key_pending = 1 ORDER BY r.seq LIMIT @limit`);
    this.selectAssignTargets = db.prepare(`SELECT integration, MAX(seq) AS seq FROM runs WHERE id IN (SELECT value FROM json_each(?)) AND key_pending = 1
      GROUP BY integration`);
    this.selectPendingUpTo = db.prepare(`SELECT id, seq, integration FROM runs INDEXED BY runs_key_pending
      WHERE integration = @integration AND key_pending = 1 AND seq <= @seq ORDER BY seq`);
    // Exactly as insertRun decides it, except that later runs of the key may exist (accepted with
    // a key of their own): only an earlier unfinished run blocks this one.
    this.assignKey = db.prepare(`UPDATE runs SET key_pending = 0, order_key = @orderKey,
        blocked = @orderKey IS NOT NULL AND EXISTS (SELECT 1 FROM ${activeOfKey} AND seq < @seq)
      WHERE seq = @seq AND key_pending = 1`);
    this.selectEventsOf = db.prepare(`SELECT seq, event_key, type, source, received_at, revision, payload FROM events
      WHERE seq IN (SELECT value FROM json_each(?))`);
    this.selectStepsOf = db.prepare('SELECT * FROM steps WHERE run_id IN (SELECT value FROM json_each(?)) ORDER BY run_id, idx');
    this.selectRun = db.prepare(`SELECT ${runColumns} FROM runs AS r JOIN events AS e ON e.seq = r.seq WHERE r.id = ?`);
    this.selectPayload = db.prepare('SELECT e.payload FROM runs AS r JOIN events AS e ON e.seq = r.seq WHERE r.id = ?').pluck();
    this.selectSteps = db.prepare('SELECT * FROM steps WHERE run_id = ? ORDER BY idx');
    this.selectAttempts = db.prepare('SELECT * FROM attempts WHERE run_id = ? ORDER BY id');

    this.holdsLease = db.prepare(`SELECT seq, integration, order_key AS orderKey FROM runs WHERE id = ? AND status = 'running' AND lease_owner = ?`);
    // When a run of a key finishes, the first unfinished run of the key (if it was waiting behind
    // it) may go. Only that one: every later run still has it in front.
    this.unblockNext = db.prepare(`UPDATE runs SET blocked = 0 WHERE blocked = 1 AND seq = (SELECT MIN(seq) FROM ${activeOfKey})`);
    // A replayed run is unfinished again: every later unfinished run of its key waits behind it,
    // and it waits behind any earlier one.
    this.blockLater = db.prepare(`UPDATE runs SET blocked = 1 WHERE blocked = 0 AND seq IN (SELECT seq FROM ${activeOfKey} AND seq > @seq)`);
    this.reblock = db.prepare(`UPDATE runs SET blocked = EXISTS (SELECT 1 FROM ${activeOfKey} AND seq < @seq) WHERE seq = @seq`);
    this.nextAttempt = db.prepare('SELECT COALESCE(MAX(attempt), 0) + 1 FROM attempts WHERE run_id = ? AND step_idx = ?').pluck();
    this.insertAttempt = db.prepare(`INSERT INTO attempts (run_id, step_idx, step_id, attempt, started_at, duration_ms, outcome,
        request, response, status, error_code, error_message, retry_at)
      VALUES (@runId, @stepIndex, @stepId, @attempt, @startedAt, @durationMs, @outcome,
        @request, @response, @status, @errorCode, @errorMessage, @retryAt)`);
    this.upsertStep = db.prepare(`INSERT INTO steps (run_id, idx, step_id, status, output, attempts, first_attempt_at, updated_at)
      VALUES (@runId, @stepIndex, @stepId, @status, @output, 1, @startedAt, @now)
      ON CONFLICT (run_id, idx) DO UPDATE SET step_id = excluded.step_id, status = excluded.status, output = excluded.output,
        attempts = steps.attempts + 1, first_attempt_at = COALESCE(steps.first_attempt_at, excluded.first_attempt_at),
        updated_at = excluded.updated_at`);
    this.countInterrupted = db.prepare(`INSERT INTO steps (run_id, idx, step_id, status, output, attempts, first_attempt_at, updated_at)
      VALUES (@runId, @stepIndex, @stepId, 'pending', NULL, 1, @now, @now)
      ON CONFLICT (run_id, idx) DO UPDATE SET attempts = steps.attempts + 1,
        first_attempt_at = COALESCE(steps.first_attempt_at, excluded.first_attempt_at), updated_at = excluded.updated_at`);
    // The run moves first, and only under the caller's lease: no row back means the lease is gone
    // and nothing else is written.
    const leaseHeld = `WHERE id = @runId AND status = 'running' AND lease_owner = @owner RETURNING seq, integration, order_key AS orderKey`;
    this.runContinue = db.prepare(`UPDATE runs SET next_step = @nextStep, updated_at = @now ${leaseHeld}`);
    this.runRetry = db.prepare(`UPDATE runs SET status = 'retrying', available_at = @availableAt, lease_owner = NULL, lease_expires_at = NULL,
        updated_at = @now ${leaseHeld}`);
    this.runSucceed = db.prepare(`UPDATE runs SET status = 'succeeded', next_step = MAX(next_step, @stepIndex + 1), finished_at = @now,
        lease_owner = NULL, lease_expires_at = NULL, error_code = NULL, error_message = NULL, error_step = NULL, updated_at = @now
      ${leaseHeld}`);
    this.runDie = db.prepare(`UPDATE runs SET status = 'dead', next_step = @stepIndex, finished_at = @now, lease_owner = NULL,
        lease_expires_at = NULL, error_code = @errorCode, error_message = @errorMessage, error_step = @errorStep, updated_at = @now
      ${leaseHeld}`);
    // A run given back keeps telling operators whether it was between attempts of a failing step.
    const waitingStatus = `CASE WHEN EXISTS (SELECT 1 FROM steps AS s WHERE s.run_id = runs.id AND s.idx = runs.next_step AND s.attempts > 0)
      THEN 'retrying' ELSE 'queued' END`;
    this.runDefer = db.prepare(`UPDATE runs SET status = ${waitingStatus}, available_at = @availableAt, lease_owner = NULL,
        lease_expires_at = NULL, updated_at = @now WHERE id = @runId`);

    this.renew = db.prepare(`UPDATE runs SET lease_expires_at = @until WHERE status = 'running' AND lease_owner = @owner`);
    // A lost worker's runs stay `running` with their lease ended now: the next claim takes them as
    // expired leases and reports `resumedAfterLoss`, exactly as if the lease had run out.
    this.releaseLost = db.prepare(`UPDATE runs SET lease_expires_at = MIN(lease_expires_at, @now) WHERE status = 'running' AND lease_owner = @owner`);
    this.releaseKept = db.prepare(`UPDATE runs SET status = ${waitingStatus}, available_at = @now, lease_owner = NULL, lease_expires_at = NULL,
        updated_at = @now WHERE status = 'running' AND lease_owner = @owner`);
    this.selectLeaseOwners = db.prepare(`SELECT DISTINCT lease_owner FROM runs WHERE status = 'running' AND lease_expires_at > ?
      ORDER BY lease_owner`).pluck();
    this.selectNextWake = db.prepare(`SELECT MIN(at) FROM (
        SELECT MIN(available_at) AS at FROM runs INDEXED BY runs_timers WHERE blocked = 0 AND key_pending = 0 AND status IN ('queued', 'retrying')
        UNION ALL
        SELECT available_at AS at FROM (SELECT available_at FROM runs WHERE key_pending = 1 ORDER BY seq LIMIT 1)
        UNION ALL
        SELECT MIN(lease_expires_at) AS at FROM runs WHERE status = 'running')`).pluck();

    this.selectStatus = db.prepare('SELECT seq, status, integration, order_key AS orderKey FROM runs WHERE id = ?');
    // A replay starts a new generation: the step that died, and any not reached, begin again at
    // zero attempts; finished steps keep their outputs and never run again.
    this.resetSteps = db.prepare(`UPDATE steps SET status = 'pending', output = NULL, attempts = 0, first_attempt_at = NULL, updated_at = @now
      WHERE run_id = @runId AND status IN ('dead', 'pending')`);
    this.requeueDead = db.prepare(`UPDATE runs SET status = 'queued', available_at = @now, replays = replays + 1, finished_at = NULL,
        error_code = NULL, error_message = NULL, error_step = NULL, updated_at = @now,
        next_step = COALESCE((SELECT MIN(s.idx) FROM steps AS s WHERE s.run_id = runs.id AND s.status = 'pending'), next_step)
      WHERE id = @runId AND status = 'dead'`);
    // Deleting the event cascades to its run, and the run's to its steps and attempts.
    const finished = `SELECT seq FROM runs INDEXED BY runs_finished WHERE status IN ('succeeded', 'dead') AND finished_at < @before`;
    this.purgeAll = db.prepare(`DELETE FROM events WHERE seq IN (${finished})`);
    this.purgeIntegration = db.prepare(`DELETE FROM events WHERE seq IN (${finished} AND integration = @integration)`);

    // One statement per combination of filters, so each can use the index that fits it.
    const lists: Database.Statement[] = [];
    for (let mask = 0; mask < 16; mask += 1) {
      const where = ['TRUE'];
      if (mask & 1) where.push('r.integration = @integration');
      if (mask & 2) where.push('r.status = @status');
      if (mask & 4) where.push('e.received_at >= @since');
      if (mask & 8) where.push('r.seq < @beforeSeq');
      lists.push(db.prepare(`SELECT ${runColumns} FROM runs AS r JOIN events AS e ON e.seq = r.seq
        WHERE ${where.join(' AND ')} ORDER BY r.seq DESC LIMIT @limit`));
    }
    this.listQueries = lists;
    this.countQuery = db.prepare('SELECT integration, status, COUNT(*) AS count FROM runs GROUP BY integration, status ORDER BY integration, status');

    this.upsertCursor = db.prepare(`INSERT INTO poll_cursors (integration, cursor, updated_at) VALUES (?, ?, ?)
      ON CONFLICT (integration) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at`);
    this.selectCursor = db.prepare('SELECT cursor FROM poll_cursors WHERE integration = ?').pluck();
    // One statement, so one write transaction: the row is inserted, or updated only when the
    // caller holds it already or its lease has run out; no row back means another owner holds it.
    this.upsertTriggerLease = db.prepare(`INSERT INTO trigger_leases (integration, owner, expires_at) VALUES (@integration, @owner, @until)
      ON CONFLICT (integration) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
        WHERE trigger_leases.owner = excluded.owner OR trigger_leases.expires_at <= @now
      RETURNING owner`).pluck();
    this.deleteTriggerLease = db.prepare('DELETE FROM trigger_leases WHERE integration = ? AND owner = ?');
    // Applying a revision again (a rollback to it) makes it the latest again.
    this.upsertRevision = db.prepare(`INSERT INTO revisions (id, applied_at, integrations) VALUES (?, ?, ?)
      ON CONFLICT (id) DO UPDATE SET applied_at = excluded.applied_at, integrations = excluded.integrations`);
    this.selectLatestRevision = db.prepare('SELECT id, applied_at, integrations FROM revisions ORDER BY applied_at DESC, rowid DESC LIMIT 1');

    this.writeBatchTx = db.transaction((batch: readonly QueuedWrite[]) =>
      batch.map((write): unknown => (write.kind === 'accept' ? write.events.map((event) => this.acceptOne(event)) : this.writeStep(write.result, write.json))),
    );
    this.claimTx = db.transaction((options: ClaimOptions) => this.claim(options));
    this.assignTx = db.transaction((assignments: readonly OrderKeyAssignment[]) => this.assign(assignments));
    this.recordInterruptedTx = db.transaction((runId: string, owner: string, stepIndex: number, stepId: string, now: number) => {
      if (this.holdsLease.get(runId, owner) === undefined) return false;
      const attempt = this.nextAttempt.get(runId, stepIndex) as number;
      this.insertAttempt.run({
        runId, stepIndex, stepId, attempt, startedAt: now, durationMs: 0, outcome: 'interrupted',
        request: null, response: null, status: null, errorCode: null, errorMessage: null, retryAt: null,
      });
      this.countInterrupted.run({ runId, stepIndex, stepId, now });
      return true;
    });
    this.deferTx = db.transaction((runId: string, owner: string, availableAt: number, now: number) => {
      if (this.holdsLease.get(runId, owner) === undefined) return false;
      this.runDefer.run({ runId, availableAt, now });
      return true;
    });
    this.replayTx = db.transaction((runIds: readonly string[], now: number) => {
      const replayed: string[] = [];
      for (const runId of new Set(runIds)) {
        const run = this.selectStatus.get(runId) as (KeyOfRun & { status: RunStatus }) | undefined;
        if (run?.status !== 'dead') continue;
        this.resetSteps.run({ runId, now });
        this.requeueDead.run({ runId, now });
        if (run.orderKey !== null) {
          const key = { integration: run.integration, orderKey: run.orderKey, seq: run.seq };
          this.blockLater.run(key);
          this.reblock.run(key);
        }
        replayed.push(runId);
      }
      return replayed;
    });
  }

  async recordRevision(revision: RevisionRow): Promise<void> {
    const integrations = JSON.stringify(revision.integrations);
    this.guard(() => this.upsertRevision.run(revision.id, revision.appliedAt, integrations));
  }

  async latestRevision(): Promise<RevisionRow | undefined> {
    const row = this.guard(() => this.selectLatestRevision.get()) as { id: string; applied_at: number; integrations: string } | undefined;
    if (row === undefined) return undefined;
    return { id: row.id, appliedAt: row.applied_at, integrations: JSON.parse(row.integrations) as string[] };
  }

  acceptEvents(events: readonly NewEvent[]): Promise<readonly AcceptedEvent[]> {
    if (this.closed) return Promise.reject(this.closedError());
    let params: EventParams[];
    try {
      // Serialised before joining a batch, so an unserialisable payload fails only its own call.
      params = events.map(toEventParams);
    } catch (error) {
      return Promise.reject(error);
    }
    if (params.length === 0) return Promise.resolve([]);
    return new Promise((resolvePromise, rejectPromise) => {
      this.enqueue({ kind: 'accept', events: params, resolve: resolvePromise, reject: rejectPromise });
    });
  }

  private enqueue(write: QueuedWrite): void {
    this.queue.push(write);
    // A commit costs far more than a write in it (begin, commit, the WAL frames): writes gather
    // for up to a millisecond, or until a batch is full, so one commit serves many steps. The
    // executor benchmark measured about 15 writes a commit at the end of each event-loop turn,
    // about 22 with this window, and a fifth less store time per event.
    if (this.queue.length >= maxWritesPerCommit) this.flushWrites();
    else if (this.queue.length === 1) this.flushTimer = setTimeout(() => this.flushWrites(), writeWindowMs);
  }

  /**
   * Commits every queued write (accepted events and step results) in one IMMEDIATE transaction, in
   * the order they were made, then settles each caller's promise. Runs when the write window
   * closes or a batch is full, and before any other operation of the store, so every operation still sees the
   * writes made before it. One commit (and, for accepted events, one fsync) serves the whole batch.
   */
  private flushWrites(): void {
    if (this.flushTimer !== undefined) {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    }
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    this.commitWrites(batch);
  }

  private commitWrites(batch: readonly QueuedWrite[]): void {
    const durable = batch.some((write) => write.kind === 'accept');
    let values: unknown[];
    try {
      // FULL makes this commit fsync the WAL before it returns, so an acknowledged event survives
      // a power cut (with every commit before it in the WAL). The level cannot change inside a
      // transaction, so it is raised around it and lowered again for the step bookkeeping.
      if (durable) this.syncFull.run();
      try {
        values = this.writeBatchTx.immediate(batch);
      } finally {
        if (durable) this.syncNormal.run();
      }
    } catch (error) {
      const mapped = storeError(error, this.path);
      if (batch.length > 1 && !(mapped instanceof PatchbayError)) {
        // One write was refused (a bug in its caller, such as a value a CHECK refuses) and the
        // whole batch rolled back: commit each alone so only that caller hears of it. Savepoints
        // around every write would cost more than this rare second pass.
        for (const write of batch) this.commitWrites([write]);
        return;
      }
      for (const write of batch) write.reject(mapped);
      return;
    }
    batch.forEach((write, index) => {
      if (write.kind === 'accept') write.resolve(values[index] as AcceptedEvent[]);
      else write.resolve(values[index] as boolean);
    });
  }

  private acceptOne(event: EventParams): AcceptedEvent {
    const inserted = this.insertEvent.run(event);
    if (inserted.changes === 0) {
      return { accepted: false, runId: this.selectRunIdOfEvent.get(event.integration, event.eventKey) as string };
    }
    const runId = newId('run', Math.max(0, Math.floor(event.receivedAt)));
    this.insertRun.run({
      seq: inserted.lastInsertRowid,
      id: runId,
      integration: event.integration,
      orderKey: event.orderKey,
      keyPending: event.keyPending,
      receivedAt: event.receivedAt,
      stepCount: event.stepCount,
    });
    return { accepted: true, runId };
  }

  async pendingOrderKeys(integrations: readonly string[], limitPerIntegration: number): Promise<readonly PendingOrderKey[]> {
    const limit = Math.floor(limitPerIntegration);
    if (!(limit > 0)) return [];
    return this.guard(() => {
      const found: PendingOrderKey[] = [];
      for (const integration of new Set(integrations)) {
        for (const row of this.selectPendingOf.all({ integration, limit }) as { runId: string; integration: string; seq: number; payload: string }[]) {
          found.push({ runId: row.runId, integration: row.integration, seq: row.seq, payload: parseJson(row.payload) });
        }
      }
      return found.sort((a, b) => a.seq - b.seq);
    });
  }

  async assignOrderKeys(assignments: readonly OrderKeyAssignment[]): Promise<readonly string[]> {
    if (assignments.length === 0) return [];
    return this.guard(() => this.assignTx.immediate(assignments));
  }

  /** See `StateStore.assignOrderKeys`; the IMMEDIATE transaction is the lock that keeps the pending runs still. */
  private assign(assignments: readonly OrderKeyAssignment[]): string[] {
    const ids = JSON.stringify(assignments.map((assignment) => assignment.runId));
    const targets = this.selectAssignTargets.all(ids) as { integration: string; seq: number }[];
    const pending: PendingRun[] = [];
    for (const target of targets) pending.push(...(this.selectPendingUpTo.all(target) as PendingRun[]));
    pending.sort((a, b) => a.seq - b.seq);
    const assigned: string[] = [];
    for (const assignment of applicableAssignments(pending, assignments)) {
      this.assignKey.run({ seq: assignment.seq, integration: assignment.integration, orderKey: assignment.orderKey });
      assigned.push(assignment.runId);
    }
    return assigned;
  }

  async claimRuns(options: ClaimOptions): Promise<readonly ClaimedRun[]> {
    return this.guard(() => this.claimTx.immediate(options));
  }

  private claim(options: ClaimOptions): ClaimedRun[] {
    const chosen: Candidate[] = [];
    for (const [integration, capacity] of options.capacity) {
      const limit = Math.floor(capacity);
      if (!(limit > 0)) continue;
      const query = { integration, now: options.now, limit };
      const candidates = [
        ...(this.claimArms.queued.all(query) as Candidate[]),
        ...(this.claimArms.retrying.all(query) as Candidate[]),
        ...(this.claimArms.expired.all(query) as Candidate[]),
      ];
      // Each scan gave its oldest `limit`, so the oldest `limit` of all three are among them.
      candidates.sort((a, b) => a.seq - b.seq);
      chosen.push(...candidates.slice(0, limit));
    }
    if (chosen.length === 0) return [];
    chosen.sort((a, b) => a.seq - b.seq);
    const seqs = JSON.stringify(chosen.map((candidate) => candidate.seq));
    const runs = new Map<number, RunColumns>();
    for (const run of this.takeLeases.all({ owner: options.owner, until: options.now + options.leaseMs, now: options.now, seqs }) as RunColumns[]) {
      runs.set(run.seq, run);
    }
    const events = new Map<number, EventPart>();
    for (const event of this.selectEventsOf.all(seqs) as EventPart[]) events.set(event.seq, event);
    const steps = new Map<string, StepRow[]>();
    for (const row of this.selectStepsOf.all(JSON.stringify([...runs.values()].map((run) => run.id))) as StepRecord[]) {
      const list = steps.get(row.run_id) ?? [];
      list.push(toStepRow(row));
      steps.set(row.run_id, list);
    }
    return chosen.map((candidate) => {
      const run = runs.get(candidate.seq)!;
      const event = events.get(candidate.seq)!;
      return {
        run: toRunRow(run, event),
        payload: parseJson(event.payload),
        steps: steps.get(run.id) ?? [],
        resumedAfterLoss: candidate.status === 'running',
      };
    });
  }

  async renewLeases(owner: string, until: number): Promise<number> {
    return this.guard(() => this.renew.run({ owner, until }).changes);
  }

  async releaseLeases(owner: string, now: number, lost: boolean): Promise<number> {
    return this.guard(() => (lost ? this.releaseLost : this.releaseKept).run({ owner, now }).changes);
  }

  async leaseOwners(now: number): Promise<readonly string[]> {
    return this.guard(() => this.selectLeaseOwners.all(now) as string[]);
  }

  async recordInterrupted(runId: string, owner: string, stepIndex: number, stepId: string, now: number): Promise<boolean> {
    return this.guard(() => this.recordInterruptedTx.immediate(runId, owner, stepIndex, stepId, now));
  }

  /** See `StateStore.recordStep`; results made in the same event loop turn share one commit. */
  recordStep(result: StepResult): Promise<boolean> {
    if (this.closed) return Promise.reject(this.closedError());
    let json: StepJson;
    try {
      json = { request: toJson(result.attempt.request), response: toJson(result.attempt.response), output: toJson(result.step.output) };
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolvePromise, rejectPromise) => {
      this.enqueue({ kind: 'step', result, json, resolve: resolvePromise, reject: rejectPromise });
    });
  }

  private writeStep(result: StepResult, json: StepJson): boolean {
    const { runId, owner, stepIndex, stepId, now, attempt, run } = result;
    let held: KeyOfRun | undefined;
    switch (run.status) {
      case 'running':
        held = this.runContinue.get({ runId, owner, nextStep: run.nextStep, now }) as KeyOfRun | undefined;
        break;
      case 'retrying':
        held = this.runRetry.get({ runId, owner, availableAt: run.availableAt, now }) as KeyOfRun | undefined;
        break;
      case 'succeeded':
        held = this.runSucceed.get({ runId, owner, stepIndex, now }) as KeyOfRun | undefined;
        break;
      case 'dead':
        held = this.runDie.get({
          runId, owner, stepIndex, now, errorCode: run.errorCode, errorMessage: run.errorMessage, errorStep: run.errorStep,
        }) as KeyOfRun | undefined;
        break;
      default:
        throw new RangeError(`a step result cannot move a run to ${JSON.stringify((run as { status: unknown }).status)}`);
    }
    if (held === undefined) return false;
    this.insertAttempt.run({
      runId,
      stepIndex,
      stepId,
      attempt: this.nextAttempt.get(runId, stepIndex) as number,
      startedAt: attempt.startedAt,
      durationMs: attempt.durationMs,
      outcome: attempt.outcome,
      request: json.request,
      response: json.response,
      status: attempt.status ?? null,
      errorCode: attempt.errorCode ?? null,
      errorMessage: attempt.errorMessage ?? null,
      retryAt: attempt.retryAt ?? null,
    });
    this.upsertStep.run({ runId, stepIndex, stepId, status: result.step.status, output: json.output, startedAt: attempt.startedAt, now });
    if ((run.status === 'succeeded' || run.status === 'dead') && held.orderKey !== null) {
      this.unblockNext.run({ integration: held.integration, orderKey: held.orderKey });
    }
    return true;
  }

  async deferRun(runId: string, owner: string, availableAt: number, now: number): Promise<boolean> {
    return this.guard(() => this.deferTx.immediate(runId, owner, availableAt, now));
  }

  async nextWakeAt(): Promise<number | undefined> {
    return this.guard(() => (this.selectNextWake.get() as number | null) ?? undefined);
  }

  async getRun(runId: string): Promise<RunRow | undefined> {
    const row = this.guard(() => this.selectRun.get(runId)) as RunRecord | undefined;
    return row === undefined ? undefined : toRunRow(row, row);
  }

  async getSteps(runId: string): Promise<readonly StepRow[]> {
    return (this.guard(() => this.selectSteps.all(runId)) as StepRecord[]).map(toStepRow);
  }

  async getAttempts(runId: string): Promise<readonly AttemptRow[]> {
    return (this.guard(() => this.selectAttempts.all(runId)) as AttemptRecord[]).map(toAttemptRow);
  }

  async getPayload(runId: string): Promise<unknown> {
    const text = this.guard(() => this.selectPayload.get(runId)) as string | undefined;
    return text === undefined ? undefined : parseJson(text);
  }

  /** See `StateStore.listRuns`; `limit` above 1000 is lowered to 1000. Throws a RangeError for a limit below 1. */
  async listRuns(filter: RunFilter): Promise<readonly RunRow[]> {
    const limit = Math.min(filter.limit ?? defaultListLimit, maxListLimit);
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`a run listing's limit must be a whole number from 1, not ${filter.limit}`);
    const mask =
      (filter.integration !== undefined ? 1 : 0) | (filter.status !== undefined ? 2 : 0) | (filter.since !== undefined ? 4 : 0) | (filter.beforeSeq !== undefined ? 8 : 0);
    const params: Record<string, unknown> = { limit };
    if (filter.integration !== undefined) params['integration'] = filter.integration;
    if (filter.status !== undefined) params['status'] = filter.status;
    if (filter.since !== undefined) params['since'] = filter.since;
    if (filter.beforeSeq !== undefined) params['beforeSeq'] = filter.beforeSeq;
    return (this.guard(() => this.listQueries[mask]!.all(params)) as RunRecord[]).map((row) => toRunRow(row, row));
  }

  async countRuns(): Promise<readonly RunCounts[]> {
    return this.guard(() => this.countQuery.all()) as RunCounts[];
  }

  async replayDead(runIds: readonly string[], now: number): Promise<readonly string[]> {
    return this.guard(() => this.replayTx.immediate(runIds, now));
  }

  async purgeRuns(finishedBefore: number, integration?: string): Promise<number> {
    return this.guard(() => {
      const deleted = integration === undefined
        ? this.purgeAll.run({ before: finishedBefore })
        : this.purgeIntegration.run({ before: finishedBefore, integration });
      return deleted.changes;
    });
  }

  async getCursor(integration: string): Promise<string | undefined> {
    return (this.guard(() => this.selectCursor.get(integration)) as string | undefined) ?? undefined;
  }

  async setCursor(integration: string, cursor: string, now: number): Promise<void> {
    this.guard(() => this.upsertCursor.run(integration, cursor, now));
  }

  async acquireTriggerLease(integration: string, owner: string, now: number, leaseMs: number): Promise<boolean> {
    checkLeaseMs(leaseMs);
    return this.guard(() => this.upsertTriggerLease.get({ integration, owner, now, until: now + leaseMs }) !== undefined);
  }

  async releaseTriggerLease(integration: string, owner: string): Promise<void> {
    this.guard(() => this.deleteTriggerLease.run(integration, owner));
  }

  /**
   * Commits any `acceptEvents` still waiting for their batch, folds the WAL back into the database
   * file and truncates it (so no purged row survives in an old WAL frame), and closes. Calling it
   * again does nothing; any other method called afterwards rejects with `PB_STATE_CLOSED`.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flushWrites();
    this.closed = true;
    try {
      // Another process still reading keeps the log from being truncated; the checkpoint then
      // copies what it can, and that process (or the next open) finishes the job.
      this.checkpoint.get();
    } catch (error) {
      throw storeError(error, this.path);
    } finally {
      this.db.close();
    }
  }

  /** Runs one synchronous database operation, translating its failure (see the class comment). */
  private guard<T>(operation: () => T): T {
    if (this.closed) throw this.closedError();
    this.flushWrites();
    try {
      return operation();
    } catch (error) {
      throw storeError(error, this.path);
    }
  }

  private closedError(): PatchbayError {
    return new PatchbayError('PB_STATE_CLOSED', `the state store ${this.path} is closed (Patchbay is shutting down): try again once it is running`);
  }
}

function toEventParams(event: NewEvent): EventParams {
  return {
    integration: event.integration,
    eventKey: event.eventKey,
    type: event.type ?? null,
    source: event.source,
    payload: JSON.stringify(event.payload) ?? 'null',
    receivedAt: event.receivedAt,
    revision: event.revision,
    orderKey: event.orderKey ?? null,
    keyPending: keyPendingOf(event),
    stepCount: event.stepCount ?? null,
  };
}

/** `NewEvent.keyPending` as a column value; a RangeError when the event also has an `orderKey`. */
function keyPendingOf(event: NewEvent): 0 | 1 {
  if (event.keyPending !== true) return 0;
  if (event.orderKey !== undefined) throw new RangeError(`event ${JSON.stringify(event.eventKey)}: an event has either an orderKey or keyPending, not both`);
  return 1;
}

/** A trigger lease's length must be a positive, finite number of milliseconds. */
function checkLeaseMs(leaseMs: number): void {
  if (!(leaseMs > 0) || !Number.isFinite(leaseMs)) throw new RangeError(`a trigger lease lasts a positive number of milliseconds, not ${leaseMs}`);
}

function toJson(value: unknown): string | null {
  return value === undefined ? null : JSON.stringify(value) ?? null;
}
