/**
 * The PostgreSQL store's schema, as numbered forward-only migrations. Each is applied once, in
 * order, in its own transaction under the schema's migration lock, and recorded in
 * `schema_migrations`; a released migration is never edited (add a new one instead), so every
 * schema that says it is at version N has the same tables. The numbering is this store's own: it
 * says nothing about the SQLite store's versions.
 *
 * The statements name tables without a schema: `migratePostgres` runs them with `search_path` set
 * to the store's schema for the length of the transaction (`SET LOCAL`).
 */
export interface PostgresMigration {
  /** 1, 2, 3…: consecutive, never reused. */
  readonly version: number;
  /** A few words for `schema_migrations.name` and error messages. */
  readonly name: string;
  /** One or more statements, sent together as one simple query. */
  readonly sql: string;
}

/**
 * Design notes for version 1 (the SQLite store's versions 1 and 2, less what PostgreSQL does for
 * us, and with the same meaning for every column):
 *
 * - `events` holds what arrived, `runs` the small, hot, mutable state; a run shares its event's
 *   `seq`. `seq` comes from the `events_seq` sequence, which the store draws from before it
 *   inserts a batch: the numbers follow the order of the batch while the rows go in sorted by key
 *   (see `acceptEvents` in `postgres-store.ts`). Deleting a run cascades to its steps and
 *   attempts; the store deletes its event after it.
 * - Times are `double precision` milliseconds from the caller's clock (integers up to 2^53 are
 *   exact, and times computed with jitter keep their fraction), never the server's `now()`.
 * - Payloads, outputs, requests and responses are `json`, which keeps the caller's text as it was
 *   (`jsonb` would reorder keys) and still refuses anything that is not JSON.
 * - Names the store sorts by (integrations, statuses, lease owners, run ids) are `COLLATE "C"`:
 *   byte order, as in SQLite, whatever the database's locale, and cheaper to compare.
 * - `runs.blocked` is true while an earlier unfinished run of the same integration has the same
 *   order key, kept up to date when a run is accepted, finishes or is replayed, so a claim never
 *   looks at runs waiting behind another. Transactions that change it first take an advisory lock
 *   per order key, so two of them never decide from snapshots that miss each other's runs.
 * - Indexes, each for a query in `postgres-store.ts`:
 *   `runs_ready` (integration, seq, available_at): only waiting runs that are not blocked; the
 *   claim walks one integration oldest first and checks `available_at` in the index.
 *   `runs_leases` (lease_expires_at): only running runs: expired leases, the earliest expiry.
 *   `runs_lease_owner`: only running runs, for renewals and releases by owner.
 *   `runs_order_active`: only unfinished runs with an order key (the first unfinished run of a key).
 *   `runs_timers`: only claimable waiting runs, so `nextWakeAt` reads the earliest timer directly.
 *   `runs_finished`: only finished runs, so retention purges do not scan live ones.
 *   `runs_by_status` (integration, status, seq): counting and listing by integration and status.
 *   `attempts_of_run`: the unique (run_id, step_idx, attempt), also for the next attempt number.
 * - CHECK constraints hold the invariants the store relies on: a run is `running` exactly when a
 *   lease is held, and finished exactly when it has `finished_at`.
 */
export const postgresMigrations: readonly PostgresMigration[] = [
  {
    version: 1,
    name: 'initial',
    sql: `
CREATE TABLE revisions (
  id text COLLATE "C" PRIMARY KEY,
  applied_at double precision NOT NULL,
  -- JSON array of the integration names in the revision.
  integrations json NOT NULL,
  -- First-recorded order: breaks ties between revisions applied in the same millisecond.
  ord bigint GENERATED ALWAYS AS IDENTITY
);

CREATE SEQUENCE events_seq AS bigint;

CREATE TABLE events (
  seq bigint PRIMARY KEY DEFAULT nextval('events_seq'),
  integration text COLLATE "C" NOT NULL,
  event_key text COLLATE "C" NOT NULL,
  type text,
  source text NOT NULL,
  -- Redacted by the caller.
  payload json NOT NULL,
  received_at double precision NOT NULL,
  revision text NOT NULL,
  UNIQUE (integration, event_key)
);
ALTER SEQUENCE events_seq OWNED BY events.seq;

CREATE TABLE runs (
  seq bigint PRIMARY KEY REFERENCES events (seq) ON DELETE CASCADE,
  id text COLLATE "C" NOT NULL UNIQUE,
  integration text COLLATE "C" NOT NULL,
  order_key text COLLATE "C",
  status text COLLATE "C" NOT NULL CHECK (status IN ('queued', 'running', 'retrying', 'succeeded', 'dead')),
  available_at double precision NOT NULL,
  lease_owner text COLLATE "C",
  lease_expires_at double precision,
  next_step integer NOT NULL DEFAULT 0,
  -- Steps the integration had when the event was accepted; null when not given.
  step_count integer,
  replays integer NOT NULL DEFAULT 0,
  error_code text,
  error_message text,
  error_step text,
  updated_at double precision NOT NULL,
  finished_at double precision,
  -- True while an earlier unfinished run of the integration has the same order key.
  blocked boolean NOT NULL DEFAULT false CHECK (NOT blocked OR order_key IS NOT NULL),
  CHECK ((status = 'running') = (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL)),
  CHECK ((status IN ('succeeded', 'dead')) = (finished_at IS NOT NULL))
);

CREATE INDEX runs_ready ON runs (integration, seq, available_at)
  WHERE NOT blocked AND status IN ('queued', 'retrying');
CREATE INDEX runs_leases ON runs (lease_expires_at) WHERE status = 'running';
CREATE INDEX runs_lease_owner ON runs (lease_owner) WHERE status = 'running';
CREATE INDEX runs_order_active ON runs (integration, order_key, seq)
  WHERE order_key IS NOT NULL AND status IN ('queued', 'running', 'retrying');
CREATE INDEX runs_timers ON runs (available_at) WHERE NOT blocked AND status IN ('queued', 'retrying');
CREATE INDEX runs_finished ON runs (finished_at) WHERE status IN ('succeeded', 'dead');
CREATE INDEX runs_by_status ON runs (integration, status, seq);

CREATE TABLE steps (
  run_id text COLLATE "C" NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  idx integer NOT NULL,
  step_id text NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'succeeded', 'skipped', 'failed', 'dead')),
  -- The step's output once it succeeded; SQL NULL otherwise (JSON null is an output).
  output json,
  -- Attempts in the current generation (reset by a replay).
  attempts integer NOT NULL,
  first_attempt_at double precision,
  updated_at double precision NOT NULL,
  PRIMARY KEY (run_id, idx)
);

CREATE TABLE attempts (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id text COLLATE "C" NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  step_idx integer NOT NULL,
  step_id text NOT NULL,
  -- 1-based, counted across generations: replays continue the numbering.
  attempt integer NOT NULL,
  started_at double precision NOT NULL,
  duration_ms double precision NOT NULL,
  outcome text NOT NULL CHECK (outcome IN ('succeeded', 'skipped', 'failed', 'dead', 'interrupted')),
  -- Redacted by the caller.
  request json,
  response json,
  status integer,
  error_code text,
  error_message text,
  retry_at double precision,
  CONSTRAINT attempts_of_run UNIQUE (run_id, step_idx, attempt)
);

CREATE TABLE poll_cursors (
  integration text COLLATE "C" PRIMARY KEY,
  cursor text NOT NULL,
  updated_at double precision NOT NULL
);
`,
  },
  {
    version: 2,
    name: 'order-key-pending',
    // Ordering keys decided after acceptance (so a webhook is answered once its event is
    // committed, before any mapping runs), as in the SQLite store's version 3: `key_pending` is
    // true until `assignOrderKeys` sets the key; such a run is left out of the claim and timer
    // indexes, rebuilt with the extra condition; `runs_key_pending` lists an integration's
    // pending runs in arrival order.
    sql: `
ALTER TABLE runs ADD COLUMN key_pending boolean NOT NULL DEFAULT false;
ALTER TABLE runs ADD CONSTRAINT runs_key_pending_check CHECK (NOT key_pending OR (order_key IS NULL AND NOT blocked AND status = 'queued'));
DROP INDEX runs_ready;
CREATE INDEX runs_ready ON runs (integration, seq, available_at)
  WHERE NOT blocked AND NOT key_pending AND status IN ('queued', 'retrying');
DROP INDEX runs_timers;
CREATE INDEX runs_timers ON runs (available_at) WHERE NOT blocked AND NOT key_pending AND status IN ('queued', 'retrying');
CREATE INDEX runs_key_pending ON runs (integration, seq) WHERE key_pending;
`,
  },
  {
    version: 3,
    name: 'trigger-leases',
    // Which daemon polls an integration or fires its schedule now, as in the SQLite store's
    // version 4: one row per integration, taken over by another owner once `expires_at` (the
    // callers' clock) has passed.
    sql: `
CREATE TABLE trigger_leases (
  integration text COLLATE "C" PRIMARY KEY,
  owner text COLLATE "C" NOT NULL,
  expires_at double precision NOT NULL
);
`,
  },
];
