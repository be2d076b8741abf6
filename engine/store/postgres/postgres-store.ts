import pg from 'pg';
import { PatchbayError } from '../../diag/errors.js';
import { systemClock, type Clock } from '../../lib/clock.js';
import { newId } from '../../lib/ids.js';
import { silentLogger, type Logger } from '../../lib/log.js';
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
import { parseJson, toAttemptRow, toRunRow, toStepRow, type AttemptRecord, type RunRecord, type StepRecord } from '../rows.js';
import { applicableAssignments, type PendingRun } from '../order-keys.js';
import { postgresMigrations } from './migrations.js';

export interface PostgresStoreOptions {
  /**
   * The schema that holds the store's tables, created when missing. Several stores (a test per
   * schema, two environments) can share one database, each in its own schema. A lower-case
   * letter or underscore, then lower-case letters, digits and underscores, 63 characters at most.
   * @default 'patchbay'
   */
  readonly schema?: string;
  /** Most connections the store holds open at once; more concurrent operations wait for one. @default 10 */
  readonly poolSize?: number;
  /**
   * How long a statement waits for a lock another connection holds (PostgreSQL's `lock_timeout`)
   * before failing with `PB_STATE_BUSY`.
   * @default 5000
   */
  readonly busyTimeoutMs?: number;
  /** How long opening a connection may take before `PB_STATE_UNAVAILABLE` (`PB_STATE_UNREADABLE` while opening the store). @default 10000 */
  readonly connectTimeoutMs?: number;
  /** The clock that stamps `schema_migrations.applied_at`; the store's own times all come from its callers. @default systemClock */
  readonly clock?: Clock;
  /** Where a connection that fails while idle in the pool is reported. @default silentLogger */
  readonly logger?: Logger;
}

/** The newest schema version this code knows. */
export const schemaVersion = postgresMigrations.reduce((highest, migration) => Math.max(highest, migration.version), 0);

const schemaPattern = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Opens the PostgreSQL state store in `options.schema` of the database `connectionString` names
 * (a `postgres://user:password@host:port/database` URL, with libpq's query parameters such as
 * `sslmode`), creating the schema when missing and bringing it up to date with forward-only
 * migrations. Migrations run under a transaction-scoped advisory lock per schema, so daemons
 * starting together apply each one once. The connection string is never quoted in an error or a
 * log line: messages name the host, port, database, user and schema only.
 *
 * Throws a RangeError for an invalid schema name, pool size or timeout (a programming error).
 * Errors: `PB_STATE_UNREADABLE` when the server cannot be reached, refuses the login, has no such
 * database, does not let the user create the schema, or the schema holds another program's
 * tables; `PB_STATE_TOO_NEW` when a newer Patchbay has migrated the schema past `schemaVersion`;
 * `PB_STATE_BUSY` when another connection holds the migration lock longer than `busyTimeoutMs`.
 */
export async function openPostgresStore(connectionString: string, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
  const schema = options.schema ?? 'patchbay';
  if (!schemaPattern.test(schema)) {
    throw new RangeError(`schema ${JSON.stringify(schema)} is not a lower-case PostgreSQL name (letters, digits, underscores; at most 63)`);
  }
  const poolSize = options.poolSize ?? 10;
  const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  if (!Number.isInteger(poolSize) || poolSize < 1) throw new RangeError(`poolSize must be a whole number from 1, not ${poolSize}`);
  if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 1) throw new RangeError(`busyTimeoutMs must be a whole number of milliseconds from 1, not ${busyTimeoutMs}`);
  if (!Number.isInteger(connectTimeoutMs) || connectTimeoutMs < 1) {
    throw new RangeError(`connectTimeoutMs must be a whole number of milliseconds from 1, not ${connectTimeoutMs}`);
  }
  const target = describeTarget(connectionString, schema);
  const logger = options.logger ?? silentLogger;
  const pool = new pg.Pool({
    connectionString,
    max: poolSize,
    connectionTimeoutMillis: connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    // Sent at connection start, so every statement of the store has it without a round trip.
    lock_timeout: busyTimeoutMs,
    // The connection string's own application_name wins (tests use it to find their connections).
    fallback_application_name: 'patchbay',
    types: storeTypes,
  });
  // A connection that breaks while idle in the pool (a server restart, a network cut) is dropped
  // and replaced on next use; without a listener Node would end the process on the event.
  pool.on('error', (error) => {
    logger.log('warn', 'a PostgreSQL connection of the state store failed while idle; the pool replaces it', {
      target: target.text,
      reason: target.scrub(reasonOf(error)),
    });
  });
  try {
    await migrate(pool, schema, options.clock ?? systemClock, target);
    const syncCommit = (await pool.query<{ setting: string }>(`SELECT current_setting('synchronous_commit') AS setting`)).rows[0]?.setting;
    return new PostgresStore(pool, schema, target, syncCommit === 'off');
  } catch (error) {
    await pool.end().catch((ended: unknown) => {
      // The store failed to open and the pool is being thrown away: the first error is the one
      // to report, and a second one from closing broken connections adds nothing.
      void ended;
    });
    if (error instanceof PatchbayError) throw error;
    const mapped = storeError(error, target);
    if (mapped instanceof PatchbayError && mapped.code === 'PB_STATE_BUSY') throw mapped;
    throw new PatchbayError('PB_STATE_UNREADABLE', `${target.text} cannot be opened as a Patchbay state database: ${openReason(error, target)}`, {
      cause: target.scrubError(error),
    });
  }
}

/** What messages may say about where the store is: never the password or the query string. */
interface Target {
  /** `PostgreSQL 127.0.0.1:5432/patchbay (user patchbay, schema patchbay)`. */
  readonly text: string;
  /** Removes the password and the connection string from a text that may quote them. */
  readonly scrub: (text: string) => string;
  /** The error itself when its message is clean, or a copy without the secret. */
  readonly scrubError: (error: unknown) => unknown;
}

function describeTarget(connectionString: string, schema: string): Target {
  let where = 'the server in the connection string';
  const secrets = [connectionString];
  try {
    const url = new URL(connectionString);
    if (url.protocol === 'postgres:' || url.protocol === 'postgresql:') {
      const user = decodeURIComponent(url.username);
      const host = url.hostname || url.searchParams.get('host') || 'localhost';
      const port = url.port || url.searchParams.get('port') || '5432';
      const database = decodeURIComponent(url.pathname.replace(/^\//, '')) || user;
      where = `${host}:${port}/${database} (${user === '' ? '' : `user ${user}, `}schema ${schema})`;
      if (url.password !== '') secrets.push(url.password, decodeURIComponent(url.password));
      const fromQuery = url.searchParams.get('password');
      if (fromQuery !== null && fromQuery !== '') secrets.push(fromQuery);
    } else {
      where = `${where} (schema ${schema})`;
    }
  } catch (error) {
    // Not a URL (a socket path or a malformed string): pg reports it on connect, and the
    // description stays generic because the string may hold the password.
    void error;
    where = `${where} (schema ${schema})`;
  }
  // Longest first, so the whole string goes before the password inside it.
  const ordered = [...new Set(secrets)].filter((secret) => secret !== '').sort((a, b) => b.length - a.length);
  const scrub = (text: string): string => ordered.reduce((clean, secret) => clean.split(secret).join('[hidden]'), text);
  return {
    text: `PostgreSQL ${where}`,
    scrub,
    scrubError: (error) => {
      if (!(error instanceof Error) || scrub(`${error.message}\n${error.stack ?? ''}`) === `${error.message}\n${error.stack ?? ''}`) return error;
      return new Error(scrub(error.message));
    },
  };
}

/**
 * Column types as the store reads them: 64-bit integers (`seq`, attempt ids, counts) as numbers,
 * exact up to 2^53, and `json` columns as their text, so SQL NULL (no output) and JSON `null` (an
 * output of null) stay apart. Other types keep pg's parsers. A value passed per pool, not a change
 * to pg's global parsers.
 */
const int8Oid = 20;
const jsonOid = 114;
const storeTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) => {
    if (oid === int8Oid) return (text: string) => Number(text);
    if (oid === jsonOid) return (text: string) => text;
    return pg.types.getTypeParser(oid, format as 'text');
  }) as pg.CustomTypesConfig['getTypeParser'],
};

/** SQLSTATEs after which a whole transaction is tried again: nothing of it was committed. */
const retryableStates = new Set(['40P01', '40001']);
const maxTries = 3;

/**
 * Runs `work` in one transaction on one pooled connection: BEGIN (or `begin`), the work, COMMIT;
 * ROLLBACK on any failure. `work` must only await queries on `client`. A deadlock or
 * serialization failure (PostgreSQL rolled everything back) is tried again, twice at most.
 */
async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await transactionOnce(pool, work, begin);
    } catch (error) {
      if (attempt >= maxTries || !(error instanceof pg.DatabaseError) || !retryableStates.has(error.code ?? '')) throw error;
    }
  }
}

async function transactionOnce<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>, begin: string): Promise<T> {
  const client = await pool.connect();
  // While checked out, a connection error between two statements is emitted on the client;
  // kept here, it makes the client be destroyed on release instead of ending the process.
  let broken: Error | undefined;
  const onError = (error: Error): void => {
    broken = error;
  };
  client.on('error', onError);
  try {
    await client.query(begin);
    const value = await work(client);
    await client.query('COMMIT');
    return value;
  } catch (error) {
    if (broken === undefined) {
      await client.query('ROLLBACK').catch((rollbackError: unknown) => {
        // The connection is unusable (the original error says why): it is destroyed below and
        // PostgreSQL rolls back the transaction of a connection that goes away.
        broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
      });
    }
    throw error;
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}

/**
 * PostgreSQL text cannot hold U+0000 (it refuses the whole statement), where SQLite stores it. A
 * provider's error message or an event id could carry one, so every string written or looked up
 * has it replaced by U+FFFD instead. JSON is unaffected: JSON.stringify escapes it as `\u0000`.
 */
function withoutNul(value: unknown): unknown {
  if (typeof value === 'string') return value.includes('\u0000') ? value.replaceAll('\u0000', '\uFFFD') : value;
  if (Array.isArray(value)) return value.map(withoutNul);
  return value;
}

/** A statement prepared once per connection under its name (the server keeps its plan). */
interface Statement {
  readonly name: string;
  readonly text: string;
}

/** One statement of the store, on the pool or a transaction's connection, with its strings made storable. */
function query<R extends pg.QueryResultRow = pg.QueryResultRow>(
  on: pg.Pool | pg.PoolClient,
  statement: Statement | string,
  values: readonly unknown[] = [],
): Promise<pg.QueryResult<R>> {
  const text = typeof statement === 'string' ? statement : statement.text;
  const name = typeof statement === 'string' ? undefined : statement.name;
  return on.query<R>({ text, values: values.map(withoutNul), ...(name === undefined ? {} : { name }) });
}

async function migrate(pool: pg.Pool, schema: string, clock: Clock, target: Target): Promise<void> {
  const quoted = pg.escapeIdentifier(schema);
  // Two 32-bit keys: their own key space, apart from the single 64-bit keys of the order locks.
  const lock = { text: `SELECT pg_advisory_xact_lock(hashtext('patchbay:migrations'), hashtext($1))`, values: [schema] };
  const highest = `SELECT COALESCE(MAX(version), 0) AS version FROM ${quoted}.schema_migrations`;
  const checkNotTooNew = (version: number): void => {
    if (version > schemaVersion) {
      throw new PatchbayError(
        'PB_STATE_TOO_NEW',
        `${target.text} has schema version ${version}, but this Patchbay knows versions up to ${schemaVersion}: upgrade patchbay (a newer version migrated this schema)`,
      );
    }
  };
  const current = await inTransaction(pool, async (client) => {
    await client.query(lock);
    // Existence is checked before CREATE SCHEMA, which needs the CREATE privilege on the database
    // even when the schema exists: a schema made for Patchbay by an administrator is enough.
    const found = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    if (found.rowCount === 0) await client.query(`CREATE SCHEMA ${quoted}`);
    const tables = (
      await client.query<{ name: string }>(
        `SELECT c.relname AS name FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')`,
        [schema],
      )
    ).rows.map((row) => row.name);
    if (tables.length > 0 && !tables.includes('schema_migrations')) {
      throw new PatchbayError(
        'PB_STATE_UNREADABLE',
        `${target.text} holds another program's tables (no schema_migrations): choose another schema for Patchbay`,
      );
    }
    if (tables.includes('schema_migrations')) {
      const columns = (
        await client.query<{ name: string }>(
          `SELECT a.attname AS name FROM pg_attribute AS a
           WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped`,
          [`${quoted}.schema_migrations`],
        )
      ).rows.map((row) => row.name);
      if (!['version', 'name', 'applied_at'].every((column) => columns.includes(column))) {
        throw new PatchbayError(
          'PB_STATE_UNREADABLE',
          `${target.text} has a schema_migrations table of another program: choose another schema for Patchbay`,
        );
      }
    } else {
      await client.query(`CREATE TABLE ${quoted}.schema_migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at double precision NOT NULL
      )`);
    }
    const version = (await client.query<{ version: number }>(highest)).rows[0]!.version;
    checkNotTooNew(version);
    return version;
  });
  if (current >= schemaVersion) return;
  const ordered = [...postgresMigrations].sort((a, b) => a.version - b.version);
  for (const migration of ordered) {
    await inTransaction(pool, async (client) => {
      await client.query(lock);
      // Checked again under the lock: a daemon that started at the same time may have applied it.
      const version = (await client.query<{ version: number }>(highest)).rows[0]!.version;
      checkNotTooNew(version);
      if (version >= migration.version) return;
      await client.query(`SET LOCAL search_path TO ${quoted}`);
      await client.query(migration.sql);
      await client.query(`INSERT INTO ${quoted}.schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`, [
        migration.version,
        migration.name,
        clock.now(),
      ]);
    });
  }
}

/** Network failures Node reports by errno code. */
const networkCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'ECONNABORTED']);
// pg reports a lost or never-made connection with plain Errors whose only mark is the message.
const lostConnection = /^Connection terminated|not queryable|timeout exceeded when trying to connect|Connection terminated due to connection timeout/;

function isConnectionFailure(error: unknown): boolean {
  if (error instanceof pg.DatabaseError) {
    const state = error.code ?? '';
    return state.startsWith('08') || ['57P01', '57P02', '57P03', '53300'].includes(state);
  }
  if (!(error instanceof Error)) return false;
  const errno = (error as NodeJS.ErrnoException).code;
  if (errno !== undefined && networkCodes.has(errno)) return true;
  if (error instanceof AggregateError && error.errors.some(isConnectionFailure)) return true;
  return lostConnection.test(error.message);
}

function reasonOf(error: unknown): string {
  if (error instanceof pg.DatabaseError) return `${error.message} (SQLSTATE ${error.code ?? 'unknown'})`;
  if (error instanceof AggregateError && error.errors.length > 0) return error.errors.map(reasonOf).join('; ');
  if (error instanceof Error) {
    const errno = (error as NodeJS.ErrnoException).code;
    return errno !== undefined && !error.message.includes(errno) ? `${errno} (${error.message})` : error.message;
  }
  return String(error);
}

/** Why opening failed, with what to do, for the `PB_STATE_UNREADABLE` message. */
function openReason(error: unknown, target: Target): string {
  const reason = target.scrub(reasonOf(error));
  if (error instanceof pg.DatabaseError) {
    switch (error.code) {
      case '28P01':
      case '28000':
        return `${reason}; check the user and password in the connection string`;
      case '3D000':
        return `${reason}; create the database or correct its name in the connection string`;
      case '42501':
        return `${reason}; grant the user CREATE on the database, or create the schema for it`;
      default:
        return reason;
    }
  }
  if (isConnectionFailure(error)) return `${reason}; check that the server is running and accepts connections there`;
  return reason;
}

/** Translates PostgreSQL's failures into the catalogue's codes; anything else (a bug) passes through. */
function storeError(error: unknown, target: Target): unknown {
  if (error instanceof PatchbayError) return error;
  if (isConnectionFailure(error)) {
    return new PatchbayError(
      'PB_STATE_UNAVAILABLE',
      `${target.text} could not be reached or dropped the connection (${target.scrub(reasonOf(error))}): the operation may not have been committed; try again`,
      { cause: target.scrubError(error) },
    );
  }
  if (!(error instanceof pg.DatabaseError)) return error;
  const state = error.code ?? '';
  if (state === '55P03' || state === '40P01' || state === '40001' || state === '57014') {
    return new PatchbayError(
      'PB_STATE_BUSY',
      `${target.text}: another connection held a lock this operation needed for longer than the busy timeout (SQLSTATE ${state}): try again`,
      { cause: error },
    );
  }
  if (state === '53100') {
    return new PatchbayError('PB_STATE_FULL', `${target.text}: the server's disk is full (SQLSTATE ${state}): purge old runs with patchbay runs purge --older-than, or free disk space`, {
      cause: error,
    });
  }
  if (state === 'XX001' || state === 'XX002' || state === '58030') {
    return new PatchbayError('PB_STATE_IO', `${target.text} cannot be read or written (${error.message}, SQLSTATE ${state}): check the server, and restore from a backup if data is damaged`, {
      cause: error,
    });
  }
  return error;
}

type ClaimRecord = RunRecord & { payload: string; claimed_status: RunStatus };

const maxListLimit = 1000;
const defaultListLimit = 50;
/** A claim's capacity beyond this (an integer column's range) means "all there is". */
const maxClaimLimit = 2 ** 31 - 1;

/**
 * The PostgreSQL `StateStore` (see `state-store.ts` for each method's contract); open it with
 * `openPostgresStore`. It behaves as the SQLite store does for every method, including leases,
 * order keys, replays and retention, and passes the same contract suite.
 *
 * Each method is one transaction (or one statement) on a pooled connection, at READ COMMITTED,
 * awaiting nothing but its own queries. Times are the callers' (never the server's `now()`).
 *
 * - Claims lock their candidates with `FOR UPDATE SKIP LOCKED`, so several daemons on one schema
 *   share the work without waiting for each other and never take the same run; a candidate whose
 *   row changed before the lock is checked again by PostgreSQL and dropped if no longer claimable.
 * - `acceptEvents` waits for its commit to be flushed to disk (`synchronous_commit` is raised to
 *   `on` for its transaction when the session has it `off`), so an accepted event survives a
 *   server crash or a power cut. Other writes commit as the server is configured. It draws the
 *   batch's `seq` numbers in order, then inserts the rows sorted by key, so two concurrent
 *   batches meet their common keys in the same order and never deadlock; duplicates are skipped
 *   with `ON CONFLICT DO NOTHING` and answered with the existing run.
 * - Order keys: a transaction that accepts, finishes or replays runs with an order key first takes
 *   a transaction-scoped advisory lock per key (in one global order), then decides `blocked` from
 *   a fresh snapshot, so it sees what the previous holder committed: without it, a run accepted
 *   while the run in front of it finished could stay blocked behind nothing.
 * - Pending ordering keys: accepting pending events and assigning keys both take the
 *   integration's keying lock (a transaction-scoped advisory lock, before any order-key lock), so
 *   the pending runs of an integration commit in `seq` order and a worker deciding keys sees all of
 *   those before any it assigns: a lower `seq` can never turn up after a higher one was keyed.
 *   This serialises accepting an integration's events while its keys are pending (as a direct
 *   order key serialises acceptance per key).
 * - Leases: as in the SQLite store, a worker holds a run while `lease_owner` names it and it is
 *   `running`, even past `leaseExpiresAt` until another claim takes it over.
 * - Purges delete the runs (cascading to steps and attempts) and then their events. PostgreSQL
 *   does not overwrite the freed space: the rows stay in dead tuples until (auto)vacuum reclaims
 *   them, and in the write-ahead log and backups until those are recycled.
 * - Text cannot hold U+0000 in PostgreSQL: strings are stored with U+FFFD in its place (see
 *   `withoutNul`), so such an event key or error message reads back changed, where SQLite keeps it.
 *
 * Failures are `PatchbayError`s: `PB_STATE_BUSY` (a lock held past `busyTimeoutMs`, a deadlock
 * that persisted over three tries), `PB_STATE_UNAVAILABLE` (server unreachable or connection lost;
 * the operation may or may not have been committed, and `acceptEvents`, being deduplicated, can be
 * called again), `PB_STATE_FULL` (disk full), `PB_STATE_IO` (damaged data), `PB_STATE_CLOSED`.
 */
export class PostgresStore implements StateStore {
  readonly kind = 'postgres';
  /** The schema holding the tables. */
  readonly schema: string;
  /** Where the store is, as messages name it: host, port, database, user and schema. */
  readonly location: string;

  private readonly pool: pg.Pool;
  private readonly target: Target;
  private readonly acceptBegin: string;
  private readonly inFlight = new Set<Promise<unknown>>();
  private closing: Promise<void> | undefined;
  private readonly sql: ReturnType<typeof statements>;

  /** Use `openPostgresStore`: it migrates the schema this expects. */
  constructor(pool: pg.Pool, schema: string, target: Target, raiseSyncCommit: boolean) {
    this.pool = pool;
    this.schema = schema;
    this.target = target;
    this.location = target.text;
    // `local` and the remote levels already flush the commit locally before answering; only `off` does not.
    this.acceptBegin = raiseSyncCommit ? 'BEGIN; SET LOCAL synchronous_commit TO on' : 'BEGIN';
    this.sql = statements(schema);
  }

  async recordRevision(revision: RevisionRow): Promise<void> {
    const integrations = JSON.stringify(revision.integrations);
    await this.run(() => query(this.pool, this.sql.upsertRevision, [revision.id, revision.appliedAt, integrations]));
  }

  async latestRevision(): Promise<RevisionRow | undefined> {
    const { rows } = await this.run(() => query<{ id: string; applied_at: number; integrations: string }>(this.pool, this.sql.selectLatestRevision));
    const row = rows[0];
    return row === undefined ? undefined : { id: row.id, appliedAt: row.applied_at, integrations: JSON.parse(row.integrations) as string[] };
  }

  async acceptEvents(events: readonly NewEvent[]): Promise<readonly AcceptedEvent[]> {
    this.checkOpen();
    // Serialised before the transaction: an unserialisable payload fails before anything is sent.
    const payloads = events.map((event) => JSON.stringify(event.payload) ?? 'null');
    if (events.length === 0) return [];
    const runIds = events.map((event) => newId('run', Math.max(0, Math.floor(event.receivedAt))));
    const keyed = events.filter((event) => event.orderKey !== undefined);
    for (const event of events) {
      if (event.keyPending === true && event.orderKey !== undefined) {
        throw new RangeError(`event ${JSON.stringify(event.eventKey)}: an event has either an orderKey or keyPending, not both`);
      }
    }
    const pendingIn = [...new Set(events.filter((event) => event.keyPending === true).map((event) => event.integration))];
    return this.run(() =>
      inTransaction(
        this.pool,
        async (client) => {
          // Pending runs of an integration must get their seq in the order they commit (keys are
          // decided in seq order by transactions holding the same lock, which must never see a
          // lower seq commit after a higher one): the integration's keying lock comes first.
          if (pendingIn.length > 0) await query(client, this.sql.lockKeying, [pendingIn]);
          if (keyed.length > 0) {
            await query(client, this.sql.lockOrderKeys, [keyed.map((event) => event.integration), keyed.map((event) => event.orderKey)]);
          }
          const drawn = (await query<{ seq: number }>(client, this.sql.drawSeqs, [events.length])).rows.map((row) => row.seq).sort((a, b) => a - b);
          const inserted = await query<{ seq: number }>(client, this.sql.insertEvents, [
            drawn,
            events.map((event) => event.integration),
            events.map((event) => event.eventKey),
            events.map((event) => event.type ?? null),
            events.map((event) => event.source),
            payloads,
            events.map((event) => event.receivedAt),
            events.map((event) => event.revision),
            events.map((event) => event.orderKey ?? null),
            events.map((event) => event.stepCount ?? null),
            runIds,
            events.map((event) => event.keyPending === true),
          ]);
          const accepted = new Set(inserted.rows.map((row) => row.seq));
          const existing = new Map<string, string>();
          if (accepted.size < events.length) {
            const duplicates = events.filter((_, index) => !accepted.has(drawn[index]!));
            const found = await query<{ integration: string; event_key: string; id: string }>(client, this.sql.selectRunIdsOfEvents, [
              duplicates.map((event) => event.integration),
              duplicates.map((event) => event.eventKey),
            ]);
            for (const row of found.rows) existing.set(JSON.stringify([row.integration, row.event_key]), row.id);
          }
          return events.map((event, index): AcceptedEvent => {
            if (accepted.has(drawn[index]!)) return { accepted: true, runId: runIds[index]! };
            const runId = existing.get(JSON.stringify(withoutNul([event.integration, event.eventKey])));
            if (runId === undefined) throw new Error(`event ${event.eventKey} of ${event.integration} was neither inserted nor found (a store bug)`);
            return { accepted: false, runId };
          });
        },
        this.acceptBegin,
      ),
    );
  }

  async pendingOrderKeys(integrations: readonly string[], limitPerIntegration: number): Promise<readonly PendingOrderKey[]> {
    this.checkOpen();
    const limit = Math.min(Math.floor(limitPerIntegration), maxClaimLimit);
    if (!(limit > 0) || integrations.length === 0) return [];
    const { rows } = await this.run(() =>
      query<{ run_id: string; integration: string; seq: number; payload: string }>(this.pool, this.sql.selectPendingOf, [[...new Set(integrations)], limit]),
    );
    return rows.map((row) => ({ runId: row.run_id, integration: row.integration, seq: row.seq, payload: parseJson(row.payload) }));
  }

  async assignOrderKeys(assignments: readonly OrderKeyAssignment[]): Promise<readonly string[]> {
    this.checkOpen();
    if (assignments.length === 0) return [];
    const ids = assignments.map((assignment) => assignment.runId);
    return this.run(() =>
      inTransaction(this.pool, async (client) => {
        const integrations = (await query<{ integration: string }>(client, this.sql.selectIntegrationsOf, [ids])).rows.map((row) => row.integration);
        if (integrations.length === 0) return [];
        // Under the keying locks of the integrations, their pending runs stay as read: no other
        // worker decides keys, and no new pending run commits with a lower seq.
        await query(client, this.sql.lockKeying, [integrations]);
        const targets = (await query<{ integration: string; seq: number }>(client, this.sql.selectAssignTargets, [ids])).rows;
        if (targets.length === 0) return [];
        const pending = (
          await query<PendingRun>(client, this.sql.selectPendingUpTo, [targets.map((target) => target.integration), targets.map((target) => target.seq)])
        ).rows;
        const applicable = applicableAssignments(pending, assignments);
        if (applicable.length === 0) return [];
        const keyed = applicable.filter((assignment) => assignment.orderKey !== null);
        if (keyed.length > 0) {
          await query(client, this.sql.lockOrderKeys, [keyed.map((assignment) => assignment.integration), keyed.map((assignment) => assignment.orderKey)]);
        }
        const assigned = new Set(
          (
            await query<{ id: string }>(client, this.sql.assignKeys, [applicable.map((assignment) => assignment.runId), applicable.map((assignment) => assignment.orderKey)])
          ).rows.map((row) => row.id),
        );
        return applicable.filter((assignment) => assigned.has(assignment.runId)).map((assignment) => assignment.runId);
      }),
    );
  }

  async claimRuns(options: ClaimOptions): Promise<readonly ClaimedRun[]> {
    this.checkOpen();
    const integrations: string[] = [];
    const limits: number[] = [];
    for (const [integration, capacity] of options.capacity) {
      const limit = Math.min(Math.floor(capacity), maxClaimLimit);
      if (!(limit > 0)) continue;
      integrations.push(integration);
      limits.push(limit);
    }
    if (integrations.length === 0) return [];
    return this.run(() =>
      inTransaction(this.pool, async (client) => {
        const claimed = (
          await query<ClaimRecord>(client, this.sql.claim, [integrations, limits, options.now, options.owner, options.now + options.leaseMs])
        ).rows.sort((a, b) => a.seq - b.seq);
        if (claimed.length === 0) return [];
        const steps = new Map<string, StepRow[]>();
        for (const row of (await query<StepRecord>(client, this.sql.selectStepsOf, [claimed.map((run) => run.id)])).rows) {
          const list = steps.get(row.run_id) ?? [];
          list.push(toStepRow(row));
          steps.set(row.run_id, list);
        }
        return claimed.map((row) => ({
          run: toRunRow(row, row),
          payload: parseJson(row.payload),
          steps: steps.get(row.id) ?? [],
          resumedAfterLoss: row.claimed_status === 'running',
        }));
      }),
    );
  }

  async renewLeases(owner: string, until: number): Promise<number> {
    return (await this.run(() => query(this.pool, this.sql.renew, [owner, until]))).rowCount ?? 0;
  }

  async releaseLeases(owner: string, now: number, lost: boolean): Promise<number> {
    return (await this.run(() => query(this.pool, lost ? this.sql.releaseLost : this.sql.releaseKept, [owner, now]))).rowCount ?? 0;
  }

  async leaseOwners(now: number): Promise<readonly string[]> {
    return (await this.run(() => query<{ lease_owner: string }>(this.pool, this.sql.selectLeaseOwners, [now]))).rows.map((row) => row.lease_owner);
  }

  async recordInterrupted(runId: string, owner: string, stepIndex: number, stepId: string, now: number): Promise<boolean> {
    return this.run(() =>
      inTransaction(this.pool, async (client) => {
        // The row lock keeps a claim by another worker from taking the run until this commits.
        if ((await query(client, this.sql.lockHeldRun, [runId, owner])).rowCount === 0) return false;
        await query(client, this.sql.insertAttempt, [runId, stepIndex, stepId, now, 0, 'interrupted', null, null, null, null, null, null]);
        await query(client, this.sql.countInterrupted, [runId, stepIndex, stepId, now]);
        return true;
      }),
    );
  }

  async recordStep(result: StepResult): Promise<boolean> {
    this.checkOpen();
    const { runId, owner, stepIndex, stepId, now, attempt, run } = result;
    const request = toJson(attempt.request);
    const response = toJson(attempt.response);
    const output = toJson(result.step.output);
    let move: { statement: Statement; values: unknown[] };
    switch (run.status) {
      case 'running':
        move = { statement: this.sql.runContinue, values: [run.nextStep] };
        break;
      case 'retrying':
        move = { statement: this.sql.runRetry, values: [run.availableAt] };
        break;
      case 'succeeded':
        move = { statement: this.sql.runSucceed, values: [] };
        break;
      case 'dead':
        move = { statement: this.sql.runDie, values: [run.errorCode, run.errorMessage, run.errorStep] };
        break;
      default:
        throw new RangeError(`a step result cannot move a run to ${JSON.stringify((run as { status: unknown }).status)}`);
    }
    const values = [
      runId,
      owner,
      now,
      stepIndex,
      stepId,
      attempt.startedAt,
      attempt.durationMs,
      attempt.outcome,
      request,
      response,
      attempt.status ?? null,
      attempt.errorCode ?? null,
      attempt.errorMessage ?? null,
      attempt.retryAt ?? null,
      output,
      result.step.status,
      ...move.values,
    ];
    // One statement, so one transaction, except for a finishing run, which may let the next run of
    // its order key go: that key's lock comes first, in the order every transaction takes locks
    // (see the class comment), and the statement after it then sees every run of the key.
    if (run.status !== 'succeeded' && run.status !== 'dead') {
      return ((await this.run(() => query(this.pool, move.statement, values))).rowCount ?? 0) > 0;
    }
    return this.run(() =>
      inTransaction(this.pool, async (client) => {
        await query(client, this.sql.lockKeyOfRun, [runId]);
        return ((await query(client, move.statement, values)).rowCount ?? 0) > 0;
      }),
    );
  }

  async deferRun(runId: string, owner: string, availableAt: number, now: number): Promise<boolean> {
    return ((await this.run(() => query(this.pool, this.sql.defer, [runId, owner, availableAt, now]))).rowCount ?? 0) > 0;
  }

  async nextWakeAt(): Promise<number | undefined> {
    const { rows } = await this.run(() => query<{ at: number | null }>(this.pool, this.sql.selectNextWake));
    return rows[0]?.at ?? undefined;
  }

  async getRun(runId: string): Promise<RunRow | undefined> {
    const row = (await this.run(() => query<RunRecord>(this.pool, this.sql.selectRun, [runId]))).rows[0];
    return row === undefined ? undefined : toRunRow(row, row);
  }

  async getSteps(runId: string): Promise<readonly StepRow[]> {
    return (await this.run(() => query<StepRecord>(this.pool, this.sql.selectSteps, [runId]))).rows.map(toStepRow);
  }

  async getAttempts(runId: string): Promise<readonly AttemptRow[]> {
    return (await this.run(() => query<AttemptRecord>(this.pool, this.sql.selectAttempts, [runId]))).rows.map(toAttemptRow);
  }

  async getPayload(runId: string): Promise<unknown> {
    const row = (await this.run(() => query<{ payload: string }>(this.pool, this.sql.selectPayload, [runId]))).rows[0];
    return row === undefined ? undefined : parseJson(row.payload);
  }

  /** See `StateStore.listRuns`; `limit` above 1000 is lowered to 1000. Throws a RangeError for a limit below 1. */
  async listRuns(filter: RunFilter): Promise<readonly RunRow[]> {
    const limit = Math.min(filter.limit ?? defaultListLimit, maxListLimit);
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`a run listing's limit must be a whole number from 1, not ${filter.limit}`);
    const where: string[] = [];
    const values: unknown[] = [];
    const add = (condition: (placeholder: string) => string, value: unknown): void => {
      values.push(value);
      where.push(condition(`$${values.length}`));
    };
    if (filter.integration !== undefined) add((p) => `r.integration = ${p}`, filter.integration);
    if (filter.status !== undefined) add((p) => `r.status = ${p}`, filter.status);
    if (filter.since !== undefined) add((p) => `e.received_at >= ${p}`, filter.since);
    if (filter.beforeSeq !== undefined) add((p) => `r.seq < ${p}`, filter.beforeSeq);
    values.push(limit);
    const text = `${this.sql.selectRuns.text} ${where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`} ORDER BY r.seq DESC LIMIT $${values.length}`;
    return (await this.run(() => query<RunRecord>(this.pool, text, values))).rows.map((row) => toRunRow(row, row));
  }

  async countRuns(): Promise<readonly RunCounts[]> {
    return (await this.run(() => query<RunCounts>(this.pool, this.sql.countRuns))).rows.map((row) => ({
      integration: row.integration,
      status: row.status,
      count: row.count,
    }));
  }

  async replayDead(runIds: readonly string[], now: number): Promise<readonly string[]> {
    this.checkOpen();
    const unique = [...new Set(runIds)];
    if (unique.length === 0) return [];
    return this.run(() =>
      inTransaction(this.pool, async (client) => {
        await query(client, this.sql.lockKeysOfRuns, [unique]);
        const dead = (await query<{ id: string }>(client, this.sql.lockDeadRuns, [unique])).rows.map((row) => row.id);
        if (dead.length === 0) return [];
        await query(client, this.sql.resetSteps, [dead, now]);
        await query(client, this.sql.requeueDead, [dead, now]);
        await query(client, this.sql.blockLater, [dead]);
        await query(client, this.sql.reblock, [dead]);
        const replayed = new Set(dead);
        return unique.filter((runId) => replayed.has(runId));
      }),
    );
  }

  async purgeRuns(finishedBefore: number, integration?: string): Promise<number> {
    this.checkOpen();
    const [statement, values] = integration === undefined ? [this.sql.purgeAll, [finishedBefore]] : [this.sql.purgeIntegration, [finishedBefore, integration]];
    // One statement, in a transaction only so a deadlock with a concurrent replay is tried again.
    return this.run(() => inTransaction(this.pool, async (client) => (await query(client, statement, values)).rowCount ?? 0));
  }

  async getCursor(integration: string): Promise<string | undefined> {
    return (await this.run(() => query<{ cursor: string }>(this.pool, this.sql.selectCursor, [integration]))).rows[0]?.cursor;
  }

  async setCursor(integration: string, cursor: string, now: number): Promise<void> {
    await this.run(() => query(this.pool, this.sql.upsertCursor, [integration, cursor, now]));
  }

  async acquireTriggerLease(integration: string, owner: string, now: number, leaseMs: number): Promise<boolean> {
    if (!(leaseMs > 0) || !Number.isFinite(leaseMs)) throw new RangeError(`a trigger lease lasts a positive number of milliseconds, not ${leaseMs}`);
    return ((await this.run(() => query(this.pool, this.sql.acquireTriggerLease, [integration, owner, now, now + leaseMs]))).rowCount ?? 0) > 0;
  }

  async releaseTriggerLease(integration: string, owner: string): Promise<void> {
    await this.run(() => query(this.pool, this.sql.releaseTriggerLease, [integration, owner]));
  }

  /**
   * Waits for the operations already started, then closes every connection. Calling it again
   * waits for the same close; any other method called afterwards rejects with `PB_STATE_CLOSED`.
   */
  async close(): Promise<void> {
    if (this.closing === undefined) {
      this.closing = (async () => {
        // Their own callers hear of their failures; close only waits for them to settle.
        await Promise.allSettled([...this.inFlight]);
        await this.pool.end();
      })();
    }
    return this.closing;
  }

  private checkOpen(): void {
    if (this.closing !== undefined) throw this.closedError();
  }

  /** Runs one database operation, tracked for `close` and with its failure translated. */
  private run<T>(operation: () => Promise<T>): Promise<T> {
    if (this.closing !== undefined) return Promise.reject(this.closedError());
    const running = operation().catch((error: unknown) => {
      throw storeError(error, this.target);
    });
    this.inFlight.add(running);
    const forget = (): void => {
      this.inFlight.delete(running);
    };
    running.then(forget, forget);
    return running;
  }

  private closedError(): PatchbayError {
    return new PatchbayError('PB_STATE_CLOSED', `the state store (${this.target.text}) is closed (Patchbay is shutting down): try again once it is running`);
  }
}

/**
 * The statement that writes a step result: moves the run (`set`, under the caller's lease), adds
 * the attempt and upserts the step, and for a run that `finishes`, lets the next run of its order
 * key go. Parameters: $1 run id, $2 owner, $3 now, $4 step index, $5 step id, $6 started at,
 * $7 duration, $8 outcome, $9 request, $10 response, $11 HTTP status, $12 error code, $13 error
 * message, $14 retry at, $15 output, $16 step status; $17… for `set` (next step, available at, the
 * dead letter's reason).
 */
function stepResult(s: string, set: string, finishes: boolean): string {
  const active = `('queued', 'running', 'retrying')`;
  // When a run of a key finishes, the first unfinished run of the key (if it was waiting behind
  // it) may go; only that one, since every later run still has it in front. The statement still
  // sees the finishing run as unfinished (one snapshot), so it is left out by its seq; the key's
  // advisory lock, taken by the statement before, makes the snapshot hold every run of the key.
  const unblock = finishes
    ? `, unblocked AS (
        UPDATE ${s}.runs AS r SET blocked = false FROM held AS h
        WHERE h.order_key IS NOT NULL AND r.blocked AND r.seq = (
          SELECT MIN(a.seq) FROM ${s}.runs AS a
          WHERE a.integration = h.integration AND a.order_key = h.order_key AND a.status IN ${active} AND a.seq <> h.seq)
        RETURNING r.seq)`
    : '';
  return `WITH held AS (
      UPDATE ${s}.runs SET ${set}
      WHERE id = $1 AND status = 'running' AND lease_owner = $2
      RETURNING seq, integration, order_key
    ),
    attempt AS (
      INSERT INTO ${s}.attempts (run_id, step_idx, step_id, attempt, started_at, duration_ms, outcome,
        request, response, status, error_code, error_message, retry_at)
      SELECT $1, $4, $5, (SELECT COALESCE(MAX(attempt), 0) + 1 FROM ${s}.attempts WHERE run_id = $1 AND step_idx = $4),
        $6, $7, $8, $9::json, $10::json, $11, $12, $13, $14
      FROM held
    ),
    step AS (
      INSERT INTO ${s}.steps (run_id, idx, step_id, status, output, attempts, first_attempt_at, updated_at)
      SELECT $1, $4, $5, $16, $15::json, 1, $6, $3 FROM held
      ON CONFLICT (run_id, idx) DO UPDATE SET step_id = excluded.step_id, status = excluded.status, output = excluded.output,
        attempts = steps.attempts + 1, first_attempt_at = COALESCE(steps.first_attempt_at, excluded.first_attempt_at),
        updated_at = excluded.updated_at
    )${unblock}
    SELECT seq FROM held`;
}

/** Every statement of the store, with the schema written into the table names. */
function statements(schema: string) {
  const s = pg.escapeIdentifier(schema);
  const active = `('queued', 'running', 'retrying')`;
  // The advisory lock key of one order key: a 64-bit hash of the schema, integration and key (the
  // JSON array keeps the three apart). Two keys may share a hash; they then only wait for each other.
  const orderLock = (integration: string, orderKey: string) =>
    `hashtextextended(json_build_array(${pg.escapeLiteral(schema)}::text, ${integration}, ${orderKey})::text, 0)`;
  // Locks taken in ascending key order, the one order every transaction uses, so two never wait
  // for each other's keys in a cycle. The ORDER BY sits in a subquery, which PostgreSQL does not
  // flatten, so the locks are taken in its order.
  const lockKeys = (keys: string) => `SELECT count(pg_advisory_xact_lock(key)) FROM (SELECT DISTINCT ${keys} ORDER BY key) AS keys`;
  const runColumns = `r.id, r.seq, r.integration, r.order_key, r.key_pending, r.status, r.available_at, r.lease_owner, r.lease_expires_at,
    r.next_step, r.step_count, r.replays, r.error_code, r.error_message, r.error_step, r.updated_at, r.finished_at,
    e.event_key, e.type, e.source, e.received_at, e.revision`;
  // Named columns rather than *: a prepared statement whose result shape changes (a later migration
  // adding a column while a daemon runs) fails instead of being planned again.
  const stepColumns = 'run_id, idx, step_id, status, output, attempts, first_attempt_at, updated_at';
  const attemptColumns = `id, run_id, step_idx, step_id, attempt, started_at, duration_ms, outcome, request, response, status, error_code,
    error_message, retry_at`;
  // A run given back keeps telling operators whether it was between attempts of a failing step.
  const waitingStatus = `CASE WHEN EXISTS (SELECT 1 FROM ${s}.steps AS st WHERE st.run_id = runs.id AND st.idx = runs.next_step AND st.attempts > 0)
    THEN 'retrying' ELSE 'queued' END`;
  const finished = `DELETE FROM ${s}.runs WHERE status IN ('succeeded', 'dead') AND finished_at < $1`;
  return prepared({
    upsertRevision: `INSERT INTO ${s}.revisions (id, applied_at, integrations) VALUES ($1, $2, $3::json)
      ON CONFLICT (id) DO UPDATE SET applied_at = excluded.applied_at, integrations = excluded.integrations`,
    selectLatestRevision: `SELECT id, applied_at, integrations FROM ${s}.revisions ORDER BY applied_at DESC, ord DESC LIMIT 1`,

    // The keying lock of each integration (two 32-bit keys: apart from the order keys' 64-bit
    // space), in one order, before any order key lock: see acceptEvents and assignOrderKeys.
    lockKeying: `SELECT count(pg_advisory_xact_lock(hashtext('patchbay:order-key-pending'), hashtext(k)))
      FROM (SELECT DISTINCT json_build_array(${pg.escapeLiteral(schema)}::text, i)::text AS k FROM unnest($1::text[]) AS u(i) ORDER BY k) AS keys`,
    selectPendingOf: `SELECT c.id AS run_id, c.integration, c.seq, e.payload
      FROM unnest($1::text[]) AS w(integration) CROSS JOIN LATERAL (
        SELECT id, integration, seq FROM ${s}.runs WHERE integration = w.integration AND key_pending ORDER BY seq LIMIT $2) AS c
      JOIN ${s}.events AS e ON e.seq = c.seq
      ORDER BY c.seq`,
    selectIntegrationsOf: `SELECT DISTINCT integration FROM ${s}.runs WHERE id = ANY($1::text[]) AND key_pending`,
    selectAssignTargets: `SELECT integration, MAX(seq) AS seq FROM ${s}.runs WHERE id = ANY($1::text[]) AND key_pending GROUP BY integration`,
    selectPendingUpTo: `SELECT r.id, r.seq, r.integration FROM unnest($1::text[], $2::bigint[]) AS t(integration, seq)
      JOIN ${s}.runs AS r ON r.integration = t.integration AND r.key_pending AND r.seq <= t.seq
      ORDER BY r.seq`,
    // As insertEvents decides `blocked`: behind an earlier unfinished run of the key, committed
    // (visible after the key's lock) or assigned in this same statement (still pending in its snapshot).
    assignKeys: `WITH input AS (
        SELECT * FROM unnest($1::text[], $2::text[]) AS i(id, order_key)
      ),
      target AS (
        SELECT r.seq, r.integration, i.order_key FROM input AS i JOIN ${s}.runs AS r ON r.id = i.id WHERE r.key_pending
      )
      UPDATE ${s}.runs AS r SET key_pending = false, order_key = t.order_key,
        blocked = t.order_key IS NOT NULL AND (
          EXISTS (SELECT 1 FROM ${s}.runs AS a WHERE a.integration = t.integration AND a.order_key = t.order_key AND a.status IN ${active} AND a.seq < t.seq)
          OR EXISTS (SELECT 1 FROM target AS b WHERE b.integration = t.integration AND b.order_key = t.order_key AND b.seq < t.seq))
      FROM target AS t
      WHERE r.seq = t.seq
      RETURNING r.id`,

    lockOrderKeys: lockKeys(`${orderLock('i', 'k')} AS key FROM unnest($1::text[], $2::text[]) AS u(i, k)`),
    lockKeyOfRun: `SELECT pg_advisory_xact_lock(${orderLock('integration', 'order_key')}) FROM ${s}.runs WHERE id = $1 AND order_key IS NOT NULL`,
    // A run's key never changes, so the keys of every run named are locked, whatever its status.
    lockKeysOfRuns: lockKeys(`${orderLock('integration', 'order_key')} AS key FROM ${s}.runs WHERE id = ANY($1::text[]) AND order_key IS NOT NULL`),
    drawSeqs: `SELECT nextval(${pg.escapeLiteral(`${s}.events_seq`)}) AS seq FROM generate_series(1, $1)`,
    // The rows go in sorted by key (the unique index's order, the same in every batch); the first
    // of two equal keys in a batch (lowest seq) is the one kept. A new run is blocked behind any
    // unfinished run of its key: every earlier one, committed (visible after the key's lock) or
    // in this batch (counted by the window, since this statement cannot see its own rows).
    insertEvents: `WITH input AS (
        SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::float8[], $8::text[], $9::text[],
          $10::integer[], $11::text[], $12::boolean[])
          AS i(seq, integration, event_key, type, source, payload, received_at, revision, order_key, step_count, run_id, key_pending)
      ),
      inserted AS (
        INSERT INTO ${s}.events (seq, integration, event_key, type, source, payload, received_at, revision)
        SELECT seq, integration, event_key, type, source, payload::json, received_at, revision FROM input
        ORDER BY integration COLLATE "C", event_key COLLATE "C", seq
        ON CONFLICT (integration, event_key) DO NOTHING
        RETURNING seq
      )
      INSERT INTO ${s}.runs (seq, id, integration, order_key, key_pending, status, available_at, updated_at, step_count, blocked)
      SELECT i.seq, i.run_id, i.integration, i.order_key, i.key_pending, 'queued', i.received_at, i.received_at, i.step_count,
        i.order_key IS NOT NULL AND (
          row_number() OVER (PARTITION BY i.integration, i.order_key ORDER BY i.seq) > 1
          OR EXISTS (SELECT 1 FROM ${s}.runs AS a WHERE a.integration = i.integration AND a.order_key = i.order_key AND a.status IN ${active}))
      FROM input AS i JOIN inserted AS n ON n.seq = i.seq
      RETURNING seq`,
    selectRunIdsOfEvents: `SELECT e.integration, e.event_key, r.id FROM ${s}.events AS e JOIN ${s}.runs AS r ON r.seq = e.seq
      WHERE (e.integration, e.event_key) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,

    // Per integration, the oldest claimable runs of each kind that no other transaction holds
    // (SKIP LOCKED), then the oldest `limit` of both kinds. Waiting runs and expired leases are
    // found by their own indexes; a candidate updated by a transaction that committed after this
    // statement began is checked again against the conditions once locked.
    claim: `WITH wanted AS (
        SELECT * FROM unnest($1::text[], $2::integer[]) AS w(integration, lim)
      ),
      waiting AS (
        SELECT c.seq, c.status, w.integration, w.lim FROM wanted AS w CROSS JOIN LATERAL (
          SELECT seq, status FROM ${s}.runs
          WHERE integration = w.integration AND status IN ('queued', 'retrying') AND NOT blocked AND NOT key_pending AND available_at <= $3
          ORDER BY seq LIMIT w.lim FOR UPDATE SKIP LOCKED) AS c
      ),
      expired AS (
        SELECT c.seq, c.status, w.integration, w.lim FROM wanted AS w CROSS JOIN LATERAL (
          SELECT seq, status FROM ${s}.runs
          WHERE status = 'running' AND lease_expires_at <= $3 AND integration = w.integration AND NOT blocked
          ORDER BY seq LIMIT w.lim FOR UPDATE SKIP LOCKED) AS c
      ),
      chosen AS (
        SELECT seq, status FROM (
          SELECT seq, status, lim, row_number() OVER (PARTITION BY integration ORDER BY seq) AS rank
          FROM (SELECT * FROM waiting UNION ALL SELECT * FROM expired) AS found) AS ranked
        WHERE rank <= lim
      )
      UPDATE ${s}.runs AS r SET status = 'running', lease_owner = $4, lease_expires_at = $5, updated_at = $3
      FROM chosen AS c JOIN ${s}.events AS e ON e.seq = c.seq
      WHERE r.seq = c.seq
      RETURNING ${runColumns}, e.payload, c.status AS claimed_status`,
    selectStepsOf: `SELECT ${stepColumns} FROM ${s}.steps WHERE run_id = ANY($1::text[]) ORDER BY run_id, idx`,

    lockHeldRun: `SELECT 1 FROM ${s}.runs WHERE id = $1 AND status = 'running' AND lease_owner = $2 FOR UPDATE`,
    // One statement per way a step result moves its run. The run moves first, and only under the
    // caller's lease: no row back means the lease is gone, and the attempt and step, which are
    // written only for a moved run, are not either. Its row lock is held from then on, so no other
    // attempt of the run is numbered at the same time (a worker records one attempt at a time).
    runContinue: stepResult(s, `next_step = $17, updated_at = $3`, false),
    runRetry: stepResult(s, `status = 'retrying', available_at = $17, lease_owner = NULL, lease_expires_at = NULL, updated_at = $3`, false),
    runSucceed: stepResult(
      s,
      `status = 'succeeded', next_step = GREATEST(next_step, $4::integer + 1), finished_at = $3, lease_owner = NULL, lease_expires_at = NULL,
        error_code = NULL, error_message = NULL, error_step = NULL, updated_at = $3`,
      true,
    ),
    runDie: stepResult(
      s,
      `status = 'dead', next_step = $4, finished_at = $3, lease_owner = NULL, lease_expires_at = NULL,
        error_code = $17, error_message = $18, error_step = $19, updated_at = $3`,
      true,
    ),
    insertAttempt: `INSERT INTO ${s}.attempts (run_id, step_idx, step_id, attempt, started_at, duration_ms, outcome,
        request, response, status, error_code, error_message, retry_at)
      SELECT $1, $2, $3, COALESCE(MAX(attempt), 0) + 1, $4, $5, $6, $7::json, $8::json, $9, $10, $11, $12
      FROM ${s}.attempts WHERE run_id = $1 AND step_idx = $2`,
    countInterrupted: `INSERT INTO ${s}.steps (run_id, idx, step_id, status, output, attempts, first_attempt_at, updated_at)
      VALUES ($1, $2, $3, 'pending', NULL, 1, $4, $4)
      ON CONFLICT (run_id, idx) DO UPDATE SET attempts = steps.attempts + 1,
        first_attempt_at = COALESCE(steps.first_attempt_at, excluded.first_attempt_at), updated_at = excluded.updated_at`,
    defer: `UPDATE ${s}.runs SET status = ${waitingStatus}, available_at = $3, lease_owner = NULL, lease_expires_at = NULL, updated_at = $4
      WHERE id = $1 AND status = 'running' AND lease_owner = $2`,

    renew: `UPDATE ${s}.runs SET lease_expires_at = $2 WHERE status = 'running' AND lease_owner = $1`,
    // A lost worker's runs stay `running` with their lease ended now: the next claim takes them as
    // expired leases and reports `resumedAfterLoss`, exactly as if the lease had run out.
    releaseLost: `UPDATE ${s}.runs SET lease_expires_at = LEAST(lease_expires_at, $2) WHERE status = 'running' AND lease_owner = $1`,
    releaseKept: `UPDATE ${s}.runs SET status = ${waitingStatus}, available_at = $2, lease_owner = NULL, lease_expires_at = NULL, updated_at = $2
      WHERE status = 'running' AND lease_owner = $1`,
    selectLeaseOwners: `SELECT DISTINCT lease_owner FROM ${s}.runs WHERE status = 'running' AND lease_expires_at > $1 ORDER BY lease_owner`,
    selectNextWake: `SELECT LEAST(
        (SELECT MIN(available_at) FROM ${s}.runs WHERE NOT blocked AND NOT key_pending AND status IN ('queued', 'retrying')),
        (SELECT available_at FROM ${s}.runs WHERE key_pending ORDER BY seq LIMIT 1),
        (SELECT MIN(lease_expires_at) FROM ${s}.runs WHERE status = 'running')) AS at`,

    selectRun: `SELECT ${runColumns} FROM ${s}.runs AS r JOIN ${s}.events AS e ON e.seq = r.seq WHERE r.id = $1`,
    selectRuns: `SELECT ${runColumns} FROM ${s}.runs AS r JOIN ${s}.events AS e ON e.seq = r.seq`,
    selectPayload: `SELECT e.payload FROM ${s}.runs AS r JOIN ${s}.events AS e ON e.seq = r.seq WHERE r.id = $1`,
    selectSteps: `SELECT ${stepColumns} FROM ${s}.steps WHERE run_id = $1 ORDER BY idx`,
    selectAttempts: `SELECT ${attemptColumns} FROM ${s}.attempts WHERE run_id = $1 ORDER BY id`,
    countRuns: `SELECT integration, status, COUNT(*) AS count FROM ${s}.runs GROUP BY integration, status ORDER BY integration, status`,

    // Locked in seq order; the statements after it see them as locked, so a concurrent replay of
    // the same run waits and then finds it no longer dead.
    lockDeadRuns: `SELECT id FROM ${s}.runs WHERE id = ANY($1::text[]) AND status = 'dead' ORDER BY seq FOR UPDATE`,
    // A replay starts a new generation: the step that died, and any not reached, begin again at
    // zero attempts; finished steps keep their outputs and never run again.
    resetSteps: `UPDATE ${s}.steps SET status = 'pending', output = NULL, attempts = 0, first_attempt_at = NULL, updated_at = $2
      WHERE run_id = ANY($1::text[]) AND status IN ('dead', 'pending')`,
    requeueDead: `UPDATE ${s}.runs SET status = 'queued', available_at = $2, replays = replays + 1, finished_at = NULL,
        error_code = NULL, error_message = NULL, error_step = NULL, updated_at = $2,
        next_step = COALESCE((SELECT MIN(st.idx) FROM ${s}.steps AS st WHERE st.run_id = runs.id AND st.status = 'pending'), next_step)
      WHERE id = ANY($1::text[])`,
    // Replayed runs are unfinished again: every later unfinished run of their keys waits behind
    // them, and each waits behind any earlier one (another replayed run of its key included).
    blockLater: `UPDATE ${s}.runs AS r SET blocked = true
      FROM (SELECT integration, order_key, MIN(seq) AS seq FROM ${s}.runs
            WHERE id = ANY($1::text[]) AND order_key IS NOT NULL GROUP BY integration, order_key) AS x
      WHERE NOT r.blocked AND r.integration = x.integration AND r.order_key = x.order_key AND r.status IN ${active} AND r.seq > x.seq`,
    reblock: `UPDATE ${s}.runs AS r SET blocked = EXISTS (
        SELECT 1 FROM ${s}.runs AS a WHERE a.integration = r.integration AND a.order_key = r.order_key AND a.status IN ${active} AND a.seq < r.seq)
      WHERE r.id = ANY($1::text[]) AND r.order_key IS NOT NULL`,

    // The runs go first, cascading to their steps and attempts; their events after them. A run
    // replayed meanwhile is checked again once its row lock is free, and kept.
    purgeAll: `WITH gone AS (${finished} RETURNING seq) DELETE FROM ${s}.events WHERE seq IN (SELECT seq FROM gone)`,
    purgeIntegration: `WITH gone AS (${finished} AND integration = $2 RETURNING seq) DELETE FROM ${s}.events WHERE seq IN (SELECT seq FROM gone)`,

    upsertCursor: `INSERT INTO ${s}.poll_cursors (integration, cursor, updated_at) VALUES ($1, $2, $3)
      ON CONFLICT (integration) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at`,
    selectCursor: `SELECT cursor FROM ${s}.poll_cursors WHERE integration = $1`,
    // One statement, so one transaction. Two daemons inserting a new row at once: the second
    // waits for the first's row and then sees it as a conflict. The WHERE is checked against the
    // latest committed row under its row lock, so two callers can never both update a lease that
    // ran out: the second sees the first's fresh expiry. No row back: another owner holds it.
    acquireTriggerLease: `INSERT INTO ${s}.trigger_leases AS l (integration, owner, expires_at) VALUES ($1, $2, $4)
      ON CONFLICT (integration) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
        WHERE l.owner = excluded.owner OR l.expires_at <= $3::double precision
      RETURNING l.owner`,
    releaseTriggerLease: `DELETE FROM ${s}.trigger_leases WHERE integration = $1 AND owner = $2`,
  });
}

/** Names each statement after its key (`pb_claim`), so each connection prepares it once. */
function prepared<T extends Record<string, string>>(texts: T): { readonly [K in keyof T]: Statement } {
  return Object.fromEntries(Object.entries(texts).map(([key, text]) => [key, { name: `pb_${key}`, text }])) as { [K in keyof T]: Statement };
}

function toJson(value: unknown): string | null {
  return value === undefined ? null : JSON.stringify(value) ?? null;
}
