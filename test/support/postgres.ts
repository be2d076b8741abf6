import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { expect, it } from 'vitest';

/**
 * The PostgreSQL server the PostgreSQL store's tests run against: `PATCHBAY_TEST_POSTGRES_URL`,
 * such as `postgres://patchbay:…@127.0.0.1:5432/patchbay_test` (`.ci/run` starts a local server
 * and sets it). Undefined when unset or empty.
 */
export const postgresTestUrl: string | undefined = process.env['PATCHBAY_TEST_POSTGRES_URL'] || undefined;

/** True under CI (`CI` set to anything but empty or `false`), where the PostgreSQL tests must run. */
const underCi = (process.env['CI'] ?? '') !== '' && process.env['CI'] !== 'false';

/**
 * Call at the top level of a PostgreSQL test file, next to `describe.skipIf(postgresTestUrl ===
 * undefined)`. With the URL set it does nothing. Without it, under CI it registers a test that
 * fails (CI must never skip these tests silently); elsewhere it prints why the file's tests are
 * skipped and how to run them.
 */
export function requirePostgresUnderCi(suite: string): void {
  if (postgresTestUrl !== undefined) return;
  if (underCi) {
    it(`${suite}: has a PostgreSQL server to test against under CI`, () => {
      expect(process.env['PATCHBAY_TEST_POSTGRES_URL'], 'PATCHBAY_TEST_POSTGRES_URL must name a PostgreSQL database under CI (.ci/run sets it)').toBeTruthy();
    });
    return;
  }
  console.warn(
    `${suite}: skipped, PATCHBAY_TEST_POSTGRES_URL is not set. To run it: start a PostgreSQL server and set ` +
      'PATCHBAY_TEST_POSTGRES_URL=postgres://USER:PASSWORD@127.0.0.1:5432/DATABASE (a user that may create schemas in that database).',
  );
}

/** `url` with its `application_name` set, so the connections a test file opens can be counted. */
export function withApplicationName(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set('application_name', name);
  return parsed.toString();
}

/**
 * Schemas made for one test file in the test database, each with a name no other file or run
 * uses, so files run in parallel against one database; `dropAll` removes them. Also runs the
 * raw SQL a test needs to look at or tamper with a schema, on its own short connections.
 */
export class TestSchemas {
  private readonly url: string;
  private readonly prefix: string;
  private readonly made: string[] = [];
  private readonly byDir = new Map<string, string>();

  /** `label`: a few lower-case letters naming the file in schema names (`pbtest_<label>_…`). */
  constructor(url: string, label: string) {
    this.url = url;
    this.prefix = `pbtest_${label}_${randomBytes(4).toString('hex')}`;
  }

  /** A new schema name (the schema itself is created by the store that opens it). */
  fresh(): string {
    const name = `${this.prefix}_${this.made.length + 1}`;
    this.made.push(name);
    return name;
  }

  /** The schema that a contract-suite folder stands for: the same folder, the same schema. */
  forDir(dir: string): string {
    let name = this.byDir.get(dir);
    if (name === undefined) {
      name = this.fresh();
      this.byDir.set(dir, name);
    }
    return name;
  }

  /** Runs one statement on a new connection and returns its rows. */
  async query<T extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<T[]> {
    const client = new pg.Client({ connectionString: this.url, application_name: 'patchbay-tests-admin' });
    await client.connect();
    try {
      return (await client.query<T>(text, values)).rows;
    } finally {
      await client.end();
    }
  }

  /** Opens a connection for a test to hold (a lock, a transaction); the caller ends it. */
  async connect(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: this.url, application_name: 'patchbay-tests-admin' });
    await client.connect();
    return client;
  }

  /**
   * Waits until the server has no connection left with `applicationName` (backends exit shortly
   * after their client hangs up) and fails, naming how many remain, after `timeoutMs`.
   */
  async expectNoConnections(applicationName: string, timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let open = 0;
    for (let round = 0; round < 1_000; round += 1) {
      const [row] = await this.query<{ open: number }>('SELECT COUNT(*)::integer AS open FROM pg_stat_activity WHERE application_name = $1', [applicationName]);
      open = row?.open ?? 0;
      if (open === 0 || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(open, `connections of ${applicationName} still open: a store was not closed (a pool leaked)`).toBe(0);
  }

  /** Drops every schema this object named, with everything in it. */
  async dropAll(): Promise<void> {
    const names = this.made.splice(0);
    this.byDir.clear();
    if (names.length === 0) return;
    await this.query(`DROP SCHEMA IF EXISTS ${names.map((name) => pg.escapeIdentifier(name)).join(', ')} CASCADE`);
  }
}
