import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeTempDir, runCli, writeFiles } from '../support/cli.js';
import { postgresTestUrl, requirePostgresUnderCi, TestSchemas } from '../support/postgres.js';
import { fixtureProviders, ledgerIntegration } from './harness.js';
import { Sink } from './sink.js';

// The same engine commands on the PostgreSQL store: the executor does not change, only
// `PATCHBAY_STATE` does. Two workers share the work from one schema.

requirePostgresUnderCi('engine on PostgreSQL');

describe.skipIf(postgresTestUrl === undefined)('engine on PostgreSQL', () => {
  const schemas = postgresTestUrl === undefined ? undefined : new TestSchemas(postgresTestUrl, 'engine');
  afterAll(async () => {
    await schemas?.dropAll();
  });

  it('enqueues, runs with two workers and lists runs through PATCHBAY_STATE=postgres://…', { timeout: 60_000 }, async () => {
    const sink = await new Sink().start();
    try {
      const state = new URL(postgresTestUrl!);
      state.searchParams.set('schema', schemas!.fresh());
      const dir = makeTempDir('patchbay-pg-');
      const steps = `    - id: record
      call: ledger.entries.create
      with: { account: "{{ event.data.account }}", amount: "{{ event.data.amount }}" }
    - id: audit
      call: ledger.audit.write
      with: { ref: "{{ event.id }}" }`;
      writeFiles(dir, { 'integrations/books.yaml': ledgerIntegration({ name: 'books', origin: sink.origin, steps }) });
      writeFileSync(join(dir, 'events.jsonl'), Array.from({ length: 200 }, (_, index) => JSON.stringify({ id: `evt_${index}`, type: 'entry.requested', data: { account: `a${index}`, amount: index } })).join('\n'));
      const env = { PATCHBAY_STATE: state.toString(), LEDGER_TOKEN: `ldg_test_${randomBytes(8).toString('hex')}`, LEDGER_WEBHOOK_SECRET: 'whsec_test_pg' };
      const common = ['--providers', fixtureProviders];

      const enqueued = await runCli(['enqueue', 'books', 'integrations', '--event', 'events.jsonl', ...common, '--format', 'json'], { cwd: dir, env });
      expect(enqueued.stderr).toBe('');
      expect(JSON.parse(enqueued.stdout)).toMatchObject({ accepted: 200 });

      const workers = await Promise.all([0, 1].map(() => runCli(['work', 'integrations', ...common, '--until-idle', '--log-level', 'warn'], { cwd: dir, env, timeoutMs: 50_000 })));
      for (const worker of workers) expect(worker.code, worker.stderr).toBe(0);

      const listed = await runCli(['runs', 'list', '--status', 'succeeded', '--limit', '1000', '--format', 'json'], { cwd: dir, env });
      expect(listed.code, listed.stderr).toBe(0);
      expect(JSON.parse(listed.stdout)).toHaveLength(200);
      // Each step of each event applied once, whichever worker ran it.
      expect(sink.applied.size).toBe(400);
      expect([...sink.applied.values()].every((count) => count === 1)).toBe(true);
      // The password is in the environment only: no output repeats it.
      for (const text of [enqueued.stdout, enqueued.stderr, listed.stderr, ...workers.map((worker) => worker.stderr)]) expect(text).not.toContain(state.password);
    } finally {
      await sink.close();
    }
  });
});
