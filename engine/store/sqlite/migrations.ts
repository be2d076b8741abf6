/**
 * The SQLite store's schema, as numbered forward-only migrations. Each is applied once, in order,
 * in its own transaction, and recorded in `schema_migrations`; a released migration is never
 * edited (add a new one instead), so every database that says it is at version N has the same
 * schema. They are TypeScript data rather than `.sql` files so the compiled engine carries them
 * without copying files into `dist/`.
 */
export interface Migration {
  /** 1, 2, 3…: consecutive, never reused. */
  readonly version: number;
  /** A few words for `schema_migrations.name` and error messages. */
  readonly name: string;
  /** One or more statements, run with `exec`. */
  readonly sql: string;
}

/**
 * Design notes for version 1:
 *
 * - `events` holds what arrived (payloads can be large); `runs` holds the small, hot, mutable
 *   state the workers update several times per event, so claims and step updates touch small
 *   rows. A run shares its event's `seq` (the event's AUTOINCREMENT rowid: monotonic, never
 *   reused even after a purge), which is also the run's rowid, so joining the two is a rowid
 *   lookup. Deleting an event cascades to its run, and a run to its steps and attempts.
 * - The tables are not STRICT on purpose: times and durations computed with jitter may carry a
 *   fraction of a millisecond, and STRICT INTEGER columns would refuse them at run time.
 * - `runs.blocked` is 1 while an earlier unfinished run of the same integration has the same order
 *   key. The store keeps it up to date when a run is accepted, finishes or is replayed, so a
 *   claim never looks at runs waiting behind another: with a checked-at-claim-time rule instead,
 *   a backlog of thousands of runs behind a few keys made every claim scan the whole backlog.
 * - Indexes, each for a query in `sqlite-store.ts`:
 *   `runs_ready` (integration, status, seq, available_at): only waiting runs that are not
 *   blocked; the claim walks one status of one integration oldest first, without a sort, reading
 *   `available_at` from the index, and stops after its capacity.
 *   `runs_leases` (lease_expires_at, lease_owner): only running runs (a few per worker): expired
 *   leases for the claim, renewals, releases, lease owners, the earliest expiry.
 *   `runs_order_active`: only unfinished runs with an order key, so finding the first unfinished
 *   run of a key is one probe however many finished runs share it.
 *   `runs_timers`: only claimable waiting runs, so `nextWakeAt` reads the earliest timer directly.
 *   `runs_finished`: only finished runs, so retention purges do not scan live ones.
 *   `runs_by_status` (integration, status, seq): `countRuns` without reading the table, and
 *   `listRuns` by integration and status newest first.
 * - CHECK constraints hold the invariants the store relies on: a run is `running` exactly when a
 *   lease is held, and finished exactly when it has `finished_at`.
 */
export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'initial',
    sql: `
CREATE TABLE revisions (
  id TEXT PRIMARY KEY,
  applied_at INTEGER NOT NULL,
  -- JSON array of the integration names in the revision.
  integrations TEXT NOT NULL
);

CREATE TABLE events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  integration TEXT NOT NULL,
  event_key TEXT NOT NULL,
  type TEXT,
  source TEXT NOT NULL,
  -- JSON text, redacted by the caller.
  payload TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  revision TEXT NOT NULL,
  UNIQUE (integration, event_key)
);

CREATE TABLE runs (
  seq INTEGER PRIMARY KEY REFERENCES events (seq) ON DELETE CASCADE,
  id TEXT NOT NULL UNIQUE,
  integration TEXT NOT NULL,
  order_key TEXT,
  status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'retrying', 'succeeded', 'dead')),
  available_at INTEGER NOT NULL,
  lease_owner TEXT,
  lease_expires_at INTEGER,
  next_step INTEGER NOT NULL DEFAULT 0,
  replays INTEGER NOT NULL DEFAULT 0,
  error_code TEXT,
  error_message TEXT,
  error_step TEXT,
  updated_at INTEGER NOT NULL,
  finished_at INTEGER,
  -- 1 while an earlier unfinished run of the integration has the same order key.
  blocked INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1) AND (blocked = 0 OR order_key IS NOT NULL)),
  CHECK ((status = 'running') = (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL)),
  CHECK ((status IN ('succeeded', 'dead')) = (finished_at IS NOT NULL))
);

CREATE INDEX runs_ready ON runs (integration, status, seq, available_at)
  WHERE blocked = 0 AND status IN ('queued', 'retrying');
CREATE INDEX runs_leases ON runs (lease_expires_at, lease_owner) WHERE status = 'running';
CREATE INDEX runs_order_active ON runs (integration, order_key, seq)
  WHERE order_key IS NOT NULL AND status IN ('queued', 'running', 'retrying');
CREATE INDEX runs_timers ON runs (available_at) WHERE blocked = 0 AND status IN ('queued', 'retrying');
CREATE INDEX runs_finished ON runs (finished_at) WHERE status IN ('succeeded', 'dead');
CREATE INDEX runs_by_status ON runs (integration, status, seq);

CREATE TABLE steps (
  run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  idx INTEGER NOT NULL,
  step_id TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'skipped', 'failed', 'dead')),
  -- JSON text of the step's output once it succeeded; NULL otherwise.
  output TEXT,
  -- Attempts in the current generation (reset by a replay).
  attempts INTEGER NOT NULL,
  first_attempt_at INTEGER,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (run_id, idx)
);

CREATE TABLE attempts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  step_idx INTEGER NOT NULL,
  step_id TEXT NOT NULL,
  -- 1-based, counted across generations: replays continue the numbering.
  attempt INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  duration_ms REAL NOT NULL,
  outcome TEXT NOT NULL CHECK (outcome IN ('succeeded', 'skipped', 'failed', 'dead', 'interrupted')),
  -- JSON text, redacted by the caller.
  request TEXT,
  response TEXT,
  status INTEGER,
  error_code TEXT,
  error_message TEXT,
  retry_at INTEGER,
  UNIQUE (run_id, step_idx, attempt)
);

CREATE TABLE poll_cursors (
  integration TEXT PRIMARY KEY,
  cursor TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
`,
  },
  {
    version: 2,
    name: 'run-step-count',
    // How many steps the integration had when the event was accepted, so listings can show
    // progress as 2/3 before the run has reached its last step. Null for older runs.
    sql: `ALTER TABLE runs ADD COLUMN step_count INTEGER;`,
  },
  {
    version: 3,
    name: 'order-key-pending',
    // Ordering keys decided after acceptance (so a webhook is answered once its event is
    // committed, before any mapping runs): `key_pending` is 1 until `assignOrderKeys` sets the
    // key, and such a run is left out of the claim and timer indexes, rebuilt here with the
    // extra condition. `runs_key_pending` lists the pending runs of an integration in arrival
    // order, for the workers that decide the keys and for the rule that they decide them in order.
    sql: `
ALTER TABLE runs ADD COLUMN key_pending INTEGER NOT NULL DEFAULT 0
  CHECK (key_pending IN (0, 1) AND (key_pending = 0 OR (order_key IS NULL AND blocked = 0 AND status = 'queued')));
DROP INDEX runs_ready;
CREATE INDEX runs_ready ON runs (integration, status, seq, available_at)
  WHERE blocked = 0 AND key_pending = 0 AND status IN ('queued', 'retrying');
DROP INDEX runs_timers;
CREATE INDEX runs_timers ON runs (available_at) WHERE blocked = 0 AND key_pending = 0 AND status IN ('queued', 'retrying');
CREATE INDEX runs_key_pending ON runs (integration, seq) WHERE key_pending = 1;
`,
  },
  {
    version: 4,
    name: 'trigger-leases',
    // Which daemon polls an integration or fires its schedule now, when several share one state
    // file: one row per integration, taken over by another owner once `expires_at` has passed
    // (a holder that died never releases). Times are the callers' clock, like every other column.
    sql: `
CREATE TABLE trigger_leases (
  integration TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
`,
  },
];
