import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PatchbayError } from '../../engine/diag/errors.js';
import { ManualClock } from '../../engine/lib/clock.js';
import type { NewEvent, StateStore, StepResult, StepStatus } from '../../engine/store/state-store.js';
import { migrations } from '../../engine/store/sqlite/migrations.js';
import { openSqliteStore, schemaVersion, type SqliteStore, type SqliteStoreOptions } from '../../engine/store/sqlite/sqlite-store.js';
import { repoRoot } from '../support/cli.js';
import { rejection } from '../support/errors.js';
import { describeStateStoreContract } from './contract.js';

describeStateStoreContract('sqlite', (dir, clock) => openSqliteStore(join(dir, '.patchbay', 'state.db'), clock === undefined ? {} : { clock }));

const t0 = Date.UTC(2026, 0, 1);

function event(n: number, overrides: Partial<NewEvent> = {}): NewEvent {
  return { integration: 'orders', eventKey: `evt_${n}`, source: 'webhook', payload: { n }, receivedAt: t0 + n, revision: 'rev_1', ...overrides };
}

function succeed(runId: string, owner: string, now: number, stepIndex: number, extra: Partial<StepResult> = {}): StepResult {
  return {
    runId,
    owner,
    now,
    stepIndex,
    stepId: `s${stepIndex}`,
    attempt: { startedAt: now, durationMs: 1, outcome: 'succeeded' },
    step: { status: 'succeeded' },
    run: { status: 'succeeded' },
    ...extra,
  };
}

const orders = (count: number): ReadonlyMap<string, number> => new Map([['orders', count]]);

/** Migration 3 undone: the indexes as version 1 made them, and no key_pending column. */
const undoKeyPending = `DROP INDEX runs_key_pending; DROP INDEX runs_ready; DROP INDEX runs_timers;
  ALTER TABLE runs DROP COLUMN key_pending;
  CREATE INDEX runs_ready ON runs (integration, status, seq, available_at) WHERE blocked = 0 AND status IN ('queued', 'retrying');
  CREATE INDEX runs_timers ON runs (available_at) WHERE blocked = 0 AND status IN ('queued', 'retrying');`;

/** Migration 4 undone: a version-3 database. */
const undoTriggerLeases = 'DROP TABLE trigger_leases;';

/** Reads a table of the database file directly, as another program would. */
function readRaw<T>(file: string, sql: string): T[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare(sql).all() as T[];
  } finally {
    db.close();
  }
}

describe('SqliteStore', () => {
  let dir: string;
  let file: string;
  const opened: StateStore[] = [];
  const children: ChildProcessWithoutNullStreams[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pb-sqlite-'));
    file = join(dir, '.patchbay', 'state.db');
  });

  afterEach(async () => {
    for (const child of children.splice(0)) child.kill('SIGKILL');
    for (const store of opened.splice(0)) await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function open(options: SqliteStoreOptions = {}, path = file): Promise<SqliteStore> {
    const store = await openSqliteStore(path, { clock: new ManualClock(t0), ...options });
    opened.push(store);
    return store;
  }

  describe('opening', () => {
    it('creates the folder (0700) and the file (0600), in write-ahead-log mode', async () => {
      const store = await open();
      expect(store.kind).toBe('sqlite');
      expect(store.path).toBe(file);
      expect(statSync(join(dir, '.patchbay')).mode & 0o777).toBe(0o700);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      await store.acceptEvents([event(1)]);
      // SQLite gives the write-ahead log the database file's mode.
      expect(statSync(`${file}-wal`).mode & 0o777).toBe(0o600);
      expect(readRaw<{ journal_mode: string }>(file, 'PRAGMA journal_mode')[0]?.journal_mode).toBe('wal');
    });

    it('records each migration once, with the time it was applied, and applies nothing again on reopen', async () => {
      expect(migrations.map((migration) => migration.version)).toEqual(Array.from({ length: migrations.length }, (_, index) => index + 1));
      expect(schemaVersion).toBe(migrations.length);
      const store = await open();
      await store.acceptEvents([event(1)]);
      await store.close();
      const applied = readRaw(file, 'SELECT version, name, applied_at FROM schema_migrations ORDER BY version');
      expect(applied).toEqual(migrations.map((migration) => ({ version: migration.version, name: migration.name, applied_at: t0 })));

      const again = await open({ clock: new ManualClock(t0 + 60_000) });
      expect((await again.listRuns({})).map((run) => run.eventKey)).toEqual(['evt_1']);
      await again.close();
      expect(readRaw(file, 'SELECT version, name, applied_at FROM schema_migrations ORDER BY version')).toEqual(applied);
    });

    it('upgrades a database made by an older Patchbay in place, keeping its runs', async () => {
      // Make a version-1 database holding one run: today's file with migration 2 undone.
      const current = await open();
      const [old] = await current.acceptEvents([event(1)]);
      await current.close();
      const raw = new Database(file);
      raw.exec(`${undoTriggerLeases} ${undoKeyPending} ALTER TABLE runs DROP COLUMN step_count; DELETE FROM schema_migrations WHERE version >= 2`);
      raw.close();

      const upgraded = await open({ clock: new ManualClock(t0 + 1_000) });
      const applied = readRaw<{ version: number; applied_at: number }>(file, 'SELECT version, applied_at FROM schema_migrations ORDER BY version');
      expect(applied.map((row) => row.version)).toEqual(migrations.map((migration) => migration.version));
      expect(applied.find((row) => row.version === 2)?.applied_at).toBe(t0 + 1_000);
      expect(await upgraded.getRun(old!.runId)).toMatchObject({ eventKey: 'evt_1', status: 'queued', stepCount: undefined });
      const [fresh] = await upgraded.acceptEvents([event(2, { stepCount: 2 })]);
      expect((await upgraded.getRun(fresh!.runId))?.stepCount).toBe(2);
    });

    it('upgrades a version-2 database to pending ordering keys, its runs keyed as they were and claimable', async () => {
      const current = await open();
      const [old] = await current.acceptEvents([event(1, { orderKey: 'k' })]);
      await current.close();
      const raw = new Database(file);
      raw.exec(`${undoTriggerLeases} ${undoKeyPending} DELETE FROM schema_migrations WHERE version >= 3`);
      raw.close();

      const upgraded = await open();
      expect(await upgraded.getRun(old!.runId)).toMatchObject({ orderKey: 'k', keyPending: false, status: 'queued' });
      const [pending] = await upgraded.acceptEvents([event(2, { keyPending: true })]);
      expect((await upgraded.getRun(pending!.runId))?.keyPending).toBe(true);
      const claimed = await upgraded.claimRuns({ owner: 'w', now: t0 + 10_000, leaseMs: 1_000, capacity: new Map([['orders', 10]]) });
      expect(claimed.map((run) => run.run.id)).toEqual([old!.runId]);
    });

    it('upgrades a version-3 database to trigger leases, keeping its cursors', async () => {
      const current = await open();
      await current.setCursor('orders', 'c1', t0);
      await current.close();
      const raw = new Database(file);
      raw.exec(`${undoTriggerLeases} DELETE FROM schema_migrations WHERE version >= 4`);
      raw.close();

      const upgraded = await open({ clock: new ManualClock(t0 + 1_000) });
      expect(readRaw<{ version: number; applied_at: number }>(file, 'SELECT version, applied_at FROM schema_migrations WHERE version = 4')).toEqual([{ version: 4, applied_at: t0 + 1_000 }]);
      expect(await upgraded.getCursor('orders')).toBe('c1');
      expect(await upgraded.acquireTriggerLease('orders', 'daemon-a', t0, 1_000)).toBe(true);
      expect(await upgraded.acquireTriggerLease('orders', 'daemon-b', t0 + 1, 1_000)).toBe(false);
    });

    it('refuses a database migrated by a newer Patchbay, naming both versions, and leaves it alone', async () => {
      await (await open()).close();
      const raw = new Database(file);
      raw.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(schemaVersion + 998, 'from the future', t0);
      raw.close();
      const error = await rejection(openSqliteStore(file));
      expect(error.code).toBe('PB_STATE_TOO_NEW');
      expect(error.message).toContain(file);
      expect(error.message).toContain(`schema version ${schemaVersion + 998}`);
      expect(error.message).toContain(`up to ${schemaVersion}`);
      expect(error.message).toContain('upgrade patchbay');
      expect(readRaw<{ top: number }>(file, 'SELECT MAX(version) AS top FROM schema_migrations')[0]?.top).toBe(schemaVersion + 998);
    });

    it('refuses a file that is not a SQLite database, naming it', async () => {
      mkdirSync(join(dir, '.patchbay'));
      writeFileSync(file, 'apiVersion: patchbay/v1\nkind: Integration\n'.repeat(200));
      const error = await rejection(openSqliteStore(file));
      expect(error.code).toBe('PB_STATE_UNREADABLE');
      expect(error.message).toContain(file);
      expect(error.message).toContain('not a SQLite database');
      expect(readFileSync(file, 'utf8')).toMatch(/^apiVersion/);
    });

    it("refuses another program's SQLite database and a folder in the file's place", async () => {
      mkdirSync(join(dir, '.patchbay'));
      const raw = new Database(file);
      raw.exec('CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)');
      raw.close();
      const foreign = await rejection(openSqliteStore(file));
      expect(foreign.code).toBe('PB_STATE_UNREADABLE');
      expect(foreign.message).toContain('another program');
      expect(readRaw(file, "SELECT name FROM sqlite_schema WHERE type = 'table'")).toEqual([{ name: 'users' }]);

      const folder = join(dir, 'a-folder');
      mkdirSync(folder);
      const notAFile = await rejection(openSqliteStore(folder));
      expect(notAFile.code).toBe('PB_STATE_UNREADABLE');
      expect(notAFile.message).toContain(folder);
    });
  });

  describe('writes', () => {
    it('leaves no byte of a purged run in the database file or its log', async () => {
      const marker = `pbmarker${randomBytes(12).toString('hex')}`;
      const store = await open();
      const [marked] = await store.acceptEvents([event(1, { eventKey: `evt_${marker}`, payload: { note: marker, padding: 'x'.repeat(3_000) } })]);
      await store.acceptEvents([event(2), event(3)]);
      await store.claimRuns({ owner: 'w1', now: t0 + 10, leaseMs: 60_000, capacity: orders(1) });
      await store.recordStep(
        succeed(marked!.runId, 'w1', t0 + 20, 0, {
          attempt: { startedAt: t0 + 15, durationMs: 5, outcome: 'succeeded', request: { body: marker }, response: { body: `${marker}-response` } },
          step: { status: 'succeeded', output: { echoed: marker } },
        }),
      );
      await store.close();
      const bytes = (path: string): Buffer => (existsSync(path) ? readFileSync(path) : Buffer.alloc(0));
      // The control: before the purge the marker is in the file, so the search below can find it.
      expect(bytes(file).includes(marker)).toBe(true);

      const reopened = await open();
      expect(await reopened.purgeRuns(t0 + 1_000)).toBe(1);
      expect((await reopened.listRuns({})).length).toBe(2);
      await reopened.close();
      for (const path of [file, `${file}-wal`, `${file}-shm`, `${file}-journal`]) {
        expect(bytes(path).includes(marker), path).toBe(false);
      }
    });

    it('commits the writes queued before a close, and refuses everything after it', async () => {
      const store = await open();
      const pending = store.acceptEvents([event(1)]);
      await store.close();
      const [accepted] = await pending;
      expect(accepted?.accepted).toBe(true);
      await store.close();
      for (const call of [
        store.acceptEvents([event(2)]),
        store.recordStep(succeed(accepted!.runId, 'w1', t0, 0)),
        store.getRun(accepted!.runId),
        store.claimRuns({ owner: 'w1', now: t0, leaseMs: 1_000, capacity: orders(1) }),
      ]) {
        expect((await rejection(call)).code).toBe('PB_STATE_CLOSED');
      }
      const reopened = await open();
      expect((await reopened.getRun(accepted!.runId))?.eventKey).toBe('evt_1');
    });

    it('keeps a step result made just before another operation in order with it', async () => {
      const store = await open();
      const [first] = await store.acceptEvents([event(1)]);
      await store.claimRuns({ owner: 'w1', now: t0 + 10, leaseMs: 60_000, capacity: orders(1) });
      // Not awaited: the deferral must still see the step result, or it would take the lease
      // away first and the result would be lost.
      const recorded = store.recordStep(succeed(first!.runId, 'w1', t0 + 20, 0, { run: { status: 'running', nextStep: 1 } }));
      expect(await store.deferRun(first!.runId, 'w1', t0 + 500, t0 + 21)).toBe(true);
      expect(await recorded).toBe(true);
      expect(await store.getRun(first!.runId)).toMatchObject({ status: 'queued', nextStep: 1, availableAt: t0 + 500 });
    });

    it('rejects only the caller whose write fails when writes share a commit', async () => {
      const store = await open();
      const [good, bad] = (await store.acceptEvents([event(1), event(2)])).map((accepted) => accepted.runId);
      await store.claimRuns({ owner: 'w1', now: t0 + 10, leaseMs: 60_000, capacity: orders(2) });
      const fine = store.recordStep(succeed(good!, 'w1', t0 + 20, 0));
      // Each rejection gets its handler at once, so none is reported as unhandled.
      const refused = expect(store.recordStep(succeed(bad!, 'w1', t0 + 20, 0, { step: { status: 'bogus' as StepStatus } }))).rejects.toThrow(/CHECK constraint/);
      const unserialisable = expect(store.acceptEvents([event(3, { payload: { amount: 10n } })])).rejects.toThrow(TypeError);
      const alongside = store.acceptEvents([event(4)]);
      await refused;
      await unserialisable;
      expect(await fine).toBe(true);
      expect((await alongside)[0]?.accepted).toBe(true);
      expect((await store.getRun(good!))?.status).toBe('succeeded');
      expect((await store.getRun(bad!))?.status).toBe('running');
      expect(await store.getAttempts(bad!)).toEqual([]);
      expect((await store.listRuns({})).map((run) => run.eventKey)).toEqual(['evt_4', 'evt_2', 'evt_1']);
    });

    it('refuses a listing limit below one', async () => {
      const store = await open();
      await expect(store.listRuns({ limit: 0 })).rejects.toThrow(RangeError);
      await expect(store.listRuns({ limit: 2.5 })).rejects.toThrow(RangeError);
    });
  });

  describe('failures', () => {
    it('reports PB_STATE_BUSY when another process holds the write lock past the busy timeout', async () => {
      const store = await open({ busyTimeoutMs: 50 });
      const raw = new Database(file);
      raw.exec('BEGIN IMMEDIATE');
      try {
        const started = Date.now();
        const busy = await rejection(store.setCursor('orders', 'c1', t0));
        expect(busy.code).toBe('PB_STATE_BUSY');
        expect(busy.retry).toBe('transient');
        expect(busy.message).toContain(file);
        expect(Date.now() - started).toBeGreaterThanOrEqual(40);
        expect((await rejection(store.acceptEvents([event(1)]))).code).toBe('PB_STATE_BUSY');
      } finally {
        raw.exec('ROLLBACK');
        raw.close();
      }
      await store.setCursor('orders', 'c1', t0);
      expect(await store.getCursor('orders')).toBe('c1');
      expect((await store.acceptEvents([event(1)]))[0]?.accepted).toBe(true);
    });

    it('reports PB_STATE_FULL at the size limit and keeps what was written before', async () => {
      const store = await open({ maxSizeBytes: 256 * 1024 });
      let full: PatchbayError | undefined;
      let accepted = 0;
      for (let n = 0; n < 200 && full === undefined; n += 1) {
        try {
          await store.acceptEvents([event(n, { payload: { blob: randomBytes(4_000).toString('base64') } })]);
          accepted += 1;
        } catch (error) {
          expect(error).toBeInstanceOf(PatchbayError);
          full = error as PatchbayError;
        }
      }
      expect(full?.code).toBe('PB_STATE_FULL');
      expect(full?.message).toContain('purge');
      expect(accepted).toBeGreaterThan(10);
      expect((await store.countRuns())[0]?.count).toBe(accepted);
    });

    it('reports PB_STATE_IO for a damaged page, naming the file', async () => {
      const store = await open();
      const runIds = (await store.acceptEvents(Array.from({ length: 300 }, (_, n) => event(n, { payload: { text: 'y'.repeat(1_000) } })))).map(
        (accepted) => accepted.runId,
      );
      await store.close();
      const [{ rootpage, page_size: pageSize }] = readRaw<{ rootpage: number; page_size: number }>(
        file,
        "SELECT rootpage, (SELECT page_size FROM pragma_page_size) AS page_size FROM sqlite_schema WHERE name = 'events'",
      ) as [{ rootpage: number; page_size: number }];
      const handle = openSync(file, 'r+');
      writeSync(handle, Buffer.alloc(pageSize, 0xff), 0, pageSize, (rootpage - 1) * pageSize);
      closeSync(handle);

      const damaged = await open();
      const error = await rejection(damaged.getPayload(runIds[150]!));
      expect(error.code).toBe('PB_STATE_IO');
      expect(error.message).toContain(file);
      expect((await rejection(damaged.listRuns({}))).code).toBe('PB_STATE_IO');
    });
  });

  describe('processes', () => {
    const storeModule = join(repoRoot, 'dist', 'store', 'sqlite', 'sqlite-store.js');

    /** Starts `node` on an inline ES module that can import the built store as `STORE`. */
    function startNode(source: string, env: Record<string, string>): ChildProcessWithoutNullStreams {
      const child = spawn(process.execPath, ['--input-type=module', '-e', `const STORE = ${JSON.stringify(storeModule)};\n${source}`], {
        env: { ...process.env, ...env },
      });
      children.push(child);
      return child;
    }

    /** Resolves with the first stdout line matching `pattern` (rejects if the process exits first). */
    function lineOf(child: ChildProcessWithoutNullStreams, pattern: RegExp): Promise<string> {
      return new Promise((resolve, reject) => {
        let buffered = '';
        let stderr = '';
        child.stderr.on('data', (chunk: Buffer) => {
          stderr += chunk.toString();
        });
        const onData = (chunk: Buffer): void => {
          buffered += chunk.toString();
          // Only whole lines: the last piece may be the start of a line still being written.
          const line = buffered.split('\n').slice(0, -1).find((candidate) => pattern.test(candidate));
          if (line !== undefined) {
            child.stdout.off('data', onData);
            resolve(line);
          }
        };
        child.stdout.on('data', onData);
        child.once('exit', (code, signal) => reject(new Error(`child exited (${code ?? signal}) before printing ${pattern}: ${stderr}`)));
      });
    }

    it('keeps an accepted event when the process is killed right after the answer', async () => {
      const child = startNode(
        `const { openSqliteStore } = await import(STORE);
         const store = await openSqliteStore(process.env.PB_STATE);
         const accepted = await store.acceptEvents([{ integration: 'orders', eventKey: 'evt_kill', source: 'webhook', payload: { ok: true }, receivedAt: 1, revision: 'rev_1' }]);
         process.stdout.write('accepted ' + accepted[0].runId + '\\n');
         setInterval(() => {}, 1000);`,
        { PB_STATE: file },
      );
      const line = await lineOf(child, /^accepted /);
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      const store = await open();
      expect((await store.getRun(line.slice('accepted '.length)))?.eventKey).toBe('evt_kill');
    });

    it('never lets two processes claim the same run of one file', async () => {
      const setup = await open();
      const all = (await setup.acceptEvents(Array.from({ length: 1_500 }, (_, n) => event(n)))).map((accepted) => accepted.runId);
      await setup.close();
      const claimer = (owner: string): ChildProcessWithoutNullStreams =>
        startNode(
          `const { openSqliteStore } = await import(STORE);
           const store = await openSqliteStore(process.env.PB_STATE);
           process.stdout.write('ready\\n');
           await new Promise((resolve) => process.stdin.once('data', resolve));
           const claimed = [];
           const deadline = Date.now() + 20000;
           for (let round = 0; round < 100000 && Date.now() < deadline; round += 1) {
             const got = await store.claimRuns({ owner: process.env.PB_OWNER, now: ${t0 + 10_000}, leaseMs: 3600000, capacity: new Map([['orders', 1 + (round % 3)]]) });
             if (got.length === 0) break;
             for (const claim of got) claimed.push(claim.run.id);
             // A pause between claims, as a worker makes while it runs them: without it one
             // process retakes the lock at once while the other sleeps in SQLite's busy handler,
             // and the two would not interleave.
             await new Promise((resolve) => setTimeout(resolve, 1));
           }
           await store.close();
           process.stdout.write('claimed ' + JSON.stringify(claimed) + '\\n');`,
          { PB_STATE: file, PB_OWNER: owner },
        );
      const first = claimer('first');
      const second = claimer('second');
      await Promise.all([lineOf(first, /^ready$/), lineOf(second, /^ready$/)]);
      const results = Promise.all([lineOf(first, /^claimed /), lineOf(second, /^claimed /)]);
      first.stdin.write('go\n');
      second.stdin.write('go\n');
      const [a, b] = (await results).map((line) => JSON.parse(line.slice('claimed '.length)) as string[]) as [string[], string[]];
      // Both took a real share, so their claims interleaved.
      expect(Math.min(a.length, b.length)).toBeGreaterThan(all.length / 10);
      const bSet = new Set(b);
      expect(a.filter((runId) => bSet.has(runId))).toEqual([]);
      expect([...a, ...b].sort()).toEqual([...all].sort());
      const owners = readRaw<{ lease_owner: string; count: number }>(file, 'SELECT lease_owner, COUNT(*) AS count FROM runs GROUP BY lease_owner ORDER BY lease_owner');
      expect(owners).toEqual([
        { lease_owner: 'first', count: a.length },
        { lease_owner: 'second', count: b.length },
      ]);
    }, 60_000);
  });
});
