import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import type pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../engine/lib/clock.js';
import { MemoryLogger } from '../../engine/lib/log.js';
import { postgresMigrations } from '../../engine/store/postgres/migrations.js';
import { openPostgresStore, schemaVersion, type PostgresStore, type PostgresStoreOptions } from '../../engine/store/postgres/postgres-store.js';
import type { NewEvent, StepResult } from '../../engine/store/state-store.js';
import { rejection } from '../support/errors.js';
import { postgresTestUrl, requirePostgresUnderCi, TestSchemas, withApplicationName } from '../support/postgres.js';
import { describeStateStoreContract } from './contract.js';

requirePostgresUnderCi('PostgresStore');

const t0 = Date.UTC(2026, 0, 1);

function event(n: number, overrides: Partial<NewEvent> = {}): NewEvent {
  return { integration: 'orders', eventKey: `evt_${n}`, source: 'webhook', payload: { n }, receivedAt: t0 + n, revision: 'rev_1', ...overrides };
}

function finish(runId: string, owner: string, now: number, extra: Partial<StepResult> = {}): StepResult {
  return {
    runId,
    owner,
    now,
    stepIndex: 0,
    stepId: 's0',
    attempt: { startedAt: now, durationMs: 1, outcome: 'succeeded' },
    step: { status: 'succeeded' },
    run: { status: 'succeeded' },
    ...extra,
  };
}

const orders = (count: number): ReadonlyMap<string, number> => new Map([['orders', count]]);

/** A port on 127.0.0.1 where nothing listens: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe.skipIf(postgresTestUrl === undefined)('PostgreSQL store', () => {
  // Every connection this file's stores open carries this name, so leaks can be counted.
  const appName = `pbtest_${process.pid}_${randomBytes(3).toString('hex')}`;
  const adminUrl = postgresTestUrl ?? 'postgres://unset@127.0.0.1/unset';
  const url = withApplicationName(adminUrl, appName);
  const schemas = new TestSchemas(adminUrl, 'store');

  afterAll(async () => {
    try {
      await schemas.expectNoConnections(appName);
    } finally {
      await schemas.dropAll();
    }
  });

  describeStateStoreContract('postgres', (dir, clock) => openPostgresStore(url, { schema: schemas.forDir(dir), ...(clock === undefined ? {} : { clock }) }));

  describe('PostgresStore', () => {
    const opened: PostgresStore[] = [];
    const held: pg.Client[] = [];

    afterEach(async () => {
      for (const client of held.splice(0)) await client.end();
      for (const store of opened.splice(0)) await store.close();
    });

    async function open(schema: string, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
      const store = await openPostgresStore(url, { schema, clock: new ManualClock(t0), ...options });
      opened.push(store);
      return store;
    }

    async function hold(): Promise<pg.Client> {
      const client = await schemas.connect();
      held.push(client);
      return client;
    }

    describe('opening', () => {
      it('creates its schema and records each migration once, with the time it was applied; reopening applies nothing', async () => {
        expect(postgresMigrations.map((migration) => migration.version)).toEqual(Array.from({ length: postgresMigrations.length }, (_, index) => index + 1));
        expect(schemaVersion).toBe(postgresMigrations.length);
        const schema = schemas.fresh();
        const store = await open(schema);
        expect(store.kind).toBe('postgres');
        expect(store.schema).toBe(schema);
        expect(store.location).toContain(`schema ${schema}`);
        await store.acceptEvents([event(1)]);
        await store.close();
        const appliedSql = `SELECT version, name, applied_at FROM "${schema}".schema_migrations ORDER BY version`;
        const applied = await schemas.query(appliedSql);
        expect(applied).toEqual(postgresMigrations.map((migration) => ({ version: migration.version, name: migration.name, applied_at: t0 })));

        const again = await open(schema, { clock: new ManualClock(t0 + 60_000) });
        expect((await again.listRuns({})).map((run) => run.eventKey)).toEqual(['evt_1']);
        expect(await schemas.query(appliedSql)).toEqual(applied);
      });

      it('upgrades a version-2 schema to trigger leases, keeping its cursors', async () => {
        const schema = schemas.fresh();
        const current = await open(schema);
        await current.setCursor('orders', 'c1', t0);
        await current.close();
        await schemas.query(`DROP TABLE "${schema}".trigger_leases; DELETE FROM "${schema}".schema_migrations WHERE version >= 3`);

        const upgraded = await open(schema, { clock: new ManualClock(t0 + 1_000) });
        expect(await schemas.query(`SELECT version, applied_at FROM "${schema}".schema_migrations WHERE version = 3`)).toEqual([{ version: 3, applied_at: t0 + 1_000 }]);
        expect(await upgraded.getCursor('orders')).toBe('c1');
        expect(await upgraded.acquireTriggerLease('orders', 'daemon-a', t0, 1_000)).toBe(true);
        expect(await upgraded.acquireTriggerLease('orders', 'daemon-b', t0 + 1, 1_000)).toBe(false);
      });

      it('applies the migrations once when several stores open a new schema at the same moment', async () => {
        const schema = schemas.fresh();
        const stores = await Promise.all(Array.from({ length: 4 }, () => open(schema, { poolSize: 2 })));
        const applied = await schemas.query<{ version: number }>(`SELECT version FROM "${schema}".schema_migrations ORDER BY version`);
        expect(applied.map((row) => row.version)).toEqual(postgresMigrations.map((migration) => migration.version));
        // They all see one database.
        const [accepted] = await stores[0]!.acceptEvents([event(1)]);
        for (const store of stores) expect((await store.getRun(accepted!.runId))?.eventKey).toBe('evt_1');
      });

      it('refuses a schema migrated by a newer Patchbay, naming both versions, and leaves it alone', async () => {
        const schema = schemas.fresh();
        await (await open(schema)).close();
        await schemas.query(`INSERT INTO "${schema}".schema_migrations (version, name, applied_at) VALUES ($1, 'from the future', $2)`, [schemaVersion + 998, t0]);
        const error = await rejection(openPostgresStore(url, { schema }));
        expect(error.code).toBe('PB_STATE_TOO_NEW');
        expect(error.message).toContain(`schema ${schema}`);
        expect(error.message).toContain(`schema version ${schemaVersion + 998}`);
        expect(error.message).toContain(`up to ${schemaVersion}`);
        expect(error.message).toContain('upgrade patchbay');
        expect(await schemas.query(`SELECT MAX(version) AS top FROM "${schema}".schema_migrations`)).toEqual([{ top: schemaVersion + 998 }]);
      });

      it("refuses a schema that holds another program's tables, and leaves it alone", async () => {
        const foreign = schemas.fresh();
        await schemas.query(`CREATE SCHEMA "${foreign}"; CREATE TABLE "${foreign}".users (id integer PRIMARY KEY, email text)`);
        const error = await rejection(openPostgresStore(url, { schema: foreign }));
        expect(error.code).toBe('PB_STATE_UNREADABLE');
        expect(error.message).toContain('another program');
        expect(await schemas.query(`SELECT relname FROM pg_class WHERE relnamespace = $1::regnamespace AND relkind = 'r'`, [foreign])).toEqual([{ relname: 'users' }]);

        // A schema_migrations table of another shape (another migration tool's) is not ours either.
        const tool = schemas.fresh();
        await schemas.query(`CREATE SCHEMA "${tool}"; CREATE TABLE "${tool}".schema_migrations (version varchar PRIMARY KEY)`);
        const other = await rejection(openPostgresStore(url, { schema: tool }));
        expect(other.code).toBe('PB_STATE_UNREADABLE');
        expect(other.message).toContain('another program');
      });

      it('uses a schema an administrator made for it', async () => {
        const schema = schemas.fresh();
        await schemas.query(`CREATE SCHEMA "${schema}"`);
        const store = await open(schema);
        expect((await store.acceptEvents([event(1)]))[0]?.accepted).toBe(true);
      });

      it('refuses a schema name that is not a plain lower-case name, and bad sizes', async () => {
        await expect(openPostgresStore(url, { schema: 'Patchbay' })).rejects.toThrow(RangeError);
        await expect(openPostgresStore(url, { schema: 'a; DROP TABLE x' })).rejects.toThrow(RangeError);
        await expect(openPostgresStore(url, { schema: 'x'.repeat(64) })).rejects.toThrow(RangeError);
        await expect(openPostgresStore(url, { poolSize: 0 })).rejects.toThrow(RangeError);
        await expect(openPostgresStore(url, { busyTimeoutMs: 0.5 })).rejects.toThrow(RangeError);
      });

      it('reports a server that refuses connections as PB_STATE_UNREADABLE, naming the host but never the password', async () => {
        const password = `pw${randomBytes(16).toString('hex')}`;
        const port = await closedPort();
        const error = await rejection(openPostgresStore(`postgres://patchbay:${password}@127.0.0.1:${port}/patchbay_test?sslmode=disable`, { schema: 'patchbay' }));
        expect(error.code).toBe('PB_STATE_UNREADABLE');
        expect(error.message).toContain(`127.0.0.1:${port}/patchbay_test`);
        expect(error.message).toContain('user patchbay');
        expect(error.message).toContain('ECONNREFUSED');
        expect(error.message).toContain('check that the server is running');
        expect(error.message).not.toContain('sslmode');
        const everything = `${error.message}\n${error.stack}\n${String(error.cause)}\n${(error.cause as Error | undefined)?.stack ?? ''}`;
        expect(everything).not.toContain(password);
      });

      it('reports a refused login as PB_STATE_UNREADABLE without the password it tried', async () => {
        const password = `pw${randomBytes(16).toString('hex')}`;
        const real = new URL(adminUrl);
        real.password = password;
        const error = await rejection(openPostgresStore(real.toString(), { schema: 'patchbay' }));
        expect(error.code).toBe('PB_STATE_UNREADABLE');
        expect(error.message).toContain(`${real.hostname}:${real.port || '5432'}`);
        expect(error.message).toContain('check the user and password');
        expect(`${error.message}\n${error.stack}\n${String(error.cause)}`).not.toContain(password);
      });
    });

    describe('several stores on one schema', () => {
      it('never hands one run to two stores with their own pools (1,000 runs, three claimers each)', async () => {
        const schema = schemas.fresh();
        const first = await open(schema, { poolSize: 3 });
        const second = await open(schema, { poolSize: 3 });
        const all = (await first.acceptEvents(Array.from({ length: 1_000 }, (_, n) => event(n)))).map((accepted) => accepted.runId);
        const taken = new Map<string, string>();
        const duplicates: string[] = [];
        const deadline = Date.now() + 20_000;
        const claimer = async (store: PostgresStore, owner: string, seed: number): Promise<void> => {
          // Each loop ends when the runs are all taken, after 2,000 rounds, or at the deadline.
          for (let round = 0; round < 2_000 && taken.size < all.length && Date.now() < deadline; round += 1) {
            const claimed = await store.claimRuns({ owner, now: t0 + 10_000, leaseMs: 3_600_000, capacity: orders(1 + ((round + seed) % 7)) });
            for (const claim of claimed) {
              if (taken.has(claim.run.id)) duplicates.push(`${claim.run.id} by ${owner} and ${taken.get(claim.run.id)}`);
              taken.set(claim.run.id, owner);
            }
          }
        };
        await Promise.all([
          claimer(first, 'first-a', 0),
          claimer(first, 'first-b', 1),
          claimer(first, 'first-c', 2),
          claimer(second, 'second-a', 3),
          claimer(second, 'second-b', 4),
          claimer(second, 'second-c', 5),
        ]);
        expect(duplicates).toEqual([]);
        expect([...taken.keys()].sort()).toEqual([...all].sort());
        // Both stores took a real share, so their claims overlapped in time.
        const byStore = (prefix: string): number => [...taken.values()].filter((owner) => owner.startsWith(prefix)).length;
        expect(Math.min(byStore('first'), byStore('second'))).toBeGreaterThan(all.length / 10);
        // The database agrees with what each claimer was told.
        const owners = await schemas.query<{ lease_owner: string; count: number }>(
          `SELECT lease_owner, COUNT(*)::integer AS count FROM "${schema}".runs GROUP BY lease_owner ORDER BY lease_owner`,
        );
        const told = new Map<string, number>();
        for (const owner of taken.values()) told.set(owner, (told.get(owner) ?? 0) + 1);
        expect(owners).toEqual([...told.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([owner, count]) => ({ lease_owner: owner, count })));
      }, 60_000);

      it('keeps the runs of one order key one at a time, in arrival order, when two stores accept them at once', async () => {
        const schema = schemas.fresh();
        const first = await open(schema);
        const second = await open(schema);
        // 120 events of one key arrive through both stores at once, singly and in small batches.
        const calls = Array.from({ length: 40 }, (_, call) =>
          (call % 2 === 0 ? first : second).acceptEvents([0, 1, 2].map((part) => event(call * 3 + part, { orderKey: 'cus_1' }))),
        );
        const runIds = (await Promise.all(calls)).flat().map((accepted) => accepted.runId);
        expect(new Set(runIds).size).toBe(120);
        const unblocked = await schemas.query(`SELECT id FROM "${schema}".runs WHERE NOT blocked`);
        expect(unblocked.length).toBe(1);
        const seqs: number[] = [];
        let now = t0 + 1_000;
        for (let round = 0; round < 120; round += 1) {
          const claimed = await (round % 2 === 0 ? first : second).claimRuns({ owner: 'w', now, leaseMs: 60_000, capacity: orders(10) });
          expect(claimed.length, `round ${round}`).toBe(1);
          seqs.push(claimed[0]!.run.seq);
          now += 1;
          expect(await (round % 2 === 0 ? second : first).recordStep(finish(claimed[0]!.run.id, 'w', now))).toBe(true);
        }
        expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
        expect(await first.claimRuns({ owner: 'w', now, leaseMs: 60_000, capacity: orders(10) })).toEqual([]);
      }, 60_000);

      it('never leaves a run blocked behind nothing when the run in front finishes as it arrives', async () => {
        const schema = schemas.fresh();
        const first = await open(schema);
        const second = await open(schema);
        let now = t0 + 1_000;
        let n = 0;
        // 30 rounds of 8 keys: each key's run in front finishes through one store while the next
        // run of the key arrives through the other, so the two commits race 240 times.
        for (let round = 0; round < 30; round += 1) {
          const keys = Array.from({ length: 8 }, (_, index) => `cus_${round}_${index}`);
          const fronts = (await first.acceptEvents(keys.map((orderKey) => event((n += 1), { orderKey })))).map((accepted) => accepted.runId);
          const claimed = await first.claimRuns({ owner: 'w', now, leaseMs: 60_000, capacity: orders(keys.length) });
          expect(claimed.map((claim) => claim.run.id).sort()).toEqual([...fronts].sort());
          now += 1;
          const results = await Promise.all(
            keys.flatMap((orderKey, index) => [
              first.recordStep(finish(fronts[index]!, 'w', now)),
              second.acceptEvents([event((n += 1), { orderKey, receivedAt: now })]).then(([accepted]) => accepted!.runId),
            ]),
          );
          const behind = results.filter((result): result is string => typeof result === 'string');
          expect(results.filter((result) => result === true).length).toBe(keys.length);
          const next = await second.claimRuns({ owner: 'w', now, leaseMs: 60_000, capacity: orders(keys.length * 2) });
          expect(next.map((claim) => claim.run.id).sort(), `round ${round}`).toEqual([...behind].sort());
          now += 1;
          for (const claim of next) await second.recordStep(finish(claim.run.id, 'w', now));
        }
      }, 60_000);
    });

    describe('failures', () => {
      it('reports PB_STATE_BUSY when another connection holds a lock past the busy timeout', async () => {
        const schema = schemas.fresh();
        const store = await open(schema, { busyTimeoutMs: 100 });
        await store.setCursor('orders', 'c1', t0);
        const locker = await hold();
        await locker.query('BEGIN');
        await locker.query(`SELECT * FROM "${schema}".poll_cursors FOR UPDATE`);
        const started = Date.now();
        const busy = await rejection(store.setCursor('orders', 'c2', t0 + 1));
        expect(busy.code).toBe('PB_STATE_BUSY');
        expect(busy.retry).toBe('transient');
        expect(busy.message).toContain(`schema ${schema}`);
        expect(Date.now() - started).toBeGreaterThanOrEqual(90);
        await locker.query('ROLLBACK');
        await store.setCursor('orders', 'c2', t0 + 1);
        expect(await store.getCursor('orders')).toBe('c2');
      });

      it('reports PB_STATE_UNAVAILABLE when the server ends a connection mid-operation, and carries on with new ones', async () => {
        const schema = schemas.fresh();
        const logger = new MemoryLogger();
        const store = await open(schema, { busyTimeoutMs: 30_000, logger });
        await store.setCursor('orders', 'c1', t0);
        const locker = await hold();
        await locker.query('BEGIN');
        await locker.query(`SELECT * FROM "${schema}".poll_cursors FOR UPDATE`);
        const waiting = rejection(store.setCursor('orders', 'c2', t0 + 1));
        // The store's connection waits for the lock; the server then ends it.
        let pid: number | undefined;
        for (let round = 0; round < 200 && pid === undefined; round += 1) {
          const rows = await schemas.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`, [appName]);
          pid = rows[0]?.pid;
          if (pid === undefined) await new Promise((resolve) => setTimeout(resolve, 20));
        }
        expect(pid).toBeDefined();
        await schemas.query('SELECT pg_terminate_backend($1)', [pid]);
        const lost = await waiting;
        expect(lost.code).toBe('PB_STATE_UNAVAILABLE');
        expect(lost.retry).toBe('transient');
        expect(lost.message).toContain(`schema ${schema}`);
        await locker.query('ROLLBACK');

        // Idle connections ended by the server are dropped from the pool (and logged), not fatal.
        await store.getCursor('orders');
        await schemas.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, [appName]);
        for (let round = 0; round < 100 && logger.lines.length === 0; round += 1) await new Promise((resolve) => setTimeout(resolve, 20));
        expect(logger.lines[0]).toMatchObject({ level: 'warn', fields: { target: store.location } });
        expect(await store.getCursor('orders')).toBe('c1');
        await store.setCursor('orders', 'c3', t0 + 2);
        expect(await store.getCursor('orders')).toBe('c3');
      });
    });

    describe('writes', () => {
      it('finishes the operations in flight on close, and refuses everything after it', async () => {
        const store = await open(schemas.fresh());
        const pending = store.acceptEvents([event(1)]);
        await store.close();
        const [accepted] = await pending;
        expect(accepted?.accepted).toBe(true);
        await store.close();
        for (const call of [
          store.acceptEvents([event(2)]),
          store.recordStep(finish(accepted!.runId, 'w1', t0)),
          store.getRun(accepted!.runId),
          store.claimRuns({ owner: 'w1', now: t0, leaseMs: 1_000, capacity: orders(1) }),
          store.replayDead([accepted!.runId], t0),
          store.purgeRuns(t0),
        ]) {
          expect((await rejection(call)).code).toBe('PB_STATE_CLOSED');
        }
      });

      it('keeps a payload as it was sent, key order and all, and tells a null output from none', async () => {
        const store = await open(schemas.fresh());
        const payload = { z: 1, a: { y: [3, 2, 1], b: null }, m: 'text with "quotes" and \u00e9' };
        const [run] = await store.acceptEvents([event(1, { payload })]);
        expect(JSON.stringify(await store.getPayload(run!.runId))).toBe(JSON.stringify(payload));
        await store.claimRuns({ owner: 'w1', now: t0 + 10, leaseMs: 60_000, capacity: orders(1) });
        await store.recordStep(finish(run!.runId, 'w1', t0 + 20, { step: { status: 'succeeded', output: null }, run: { status: 'running', nextStep: 1 } }));
        await store.recordStep({ ...finish(run!.runId, 'w1', t0 + 30), stepIndex: 1, stepId: 's1', step: { status: 'skipped' } });
        expect((await store.getSteps(run!.runId)).map((step) => step.output)).toEqual([null, undefined]);
      });

      it('stores text holding U+0000, which PostgreSQL text refuses, with U+FFFD in its place', async () => {
        const store = await open(schemas.fresh());
        const [first] = await store.acceptEvents([event(1, { eventKey: 'evt_\u0000nul', payload: { text: 'a\u0000b' } })]);
        expect(await store.acceptEvents([event(1, { eventKey: 'evt_\u0000nul' })])).toEqual([{ accepted: false, runId: first!.runId }]);
        expect(await store.getPayload(first!.runId)).toEqual({ text: 'a\u0000b' });
        expect((await store.getRun(first!.runId))?.eventKey).toBe('evt_\uFFFDnul');
        await store.claimRuns({ owner: 'w1', now: t0 + 10, leaseMs: 60_000, capacity: orders(1) });
        const reason = 'provider said \u0000 nothing';
        expect(
          await store.recordStep(
            finish(first!.runId, 'w1', t0 + 20, {
              attempt: { startedAt: t0 + 15, durationMs: 5, outcome: 'dead', errorCode: 'PB_PROVIDER_ERROR', errorMessage: reason },
              step: { status: 'dead' },
              run: { status: 'dead', errorCode: 'PB_PROVIDER_ERROR', errorMessage: reason, errorStep: 's0' },
            }),
          ),
        ).toBe(true);
        expect((await store.getRun(first!.runId))?.errorMessage).toBe('provider said \uFFFD nothing');
        await store.setCursor('orders', 'page\u00002', t0);
        expect(await store.getCursor('orders')).toBe('page\uFFFD2');
      });

      it('accepts events on a connection whose synchronous_commit is off (raised to on for the accept)', async () => {
        const relaxed = new URL(url);
        relaxed.searchParams.set('options', '-c synchronous_commit=off');
        const store = await openPostgresStore(relaxed.toString(), { schema: schemas.fresh() });
        opened.push(store);
        const accepted = await store.acceptEvents([event(1), event(2), event(1)]);
        expect(accepted.map((answer) => answer.accepted)).toEqual([true, true, false]);
        expect((await store.listRuns({})).length).toBe(2);
      });

      it('refuses a listing limit below one', async () => {
        const store = await open(schemas.fresh());
        await expect(store.listRuns({ limit: 0 })).rejects.toThrow(RangeError);
        await expect(store.listRuns({ limit: 2.5 })).rejects.toThrow(RangeError);
      });
    });
  });
});
