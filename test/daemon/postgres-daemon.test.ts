import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { openStateStore } from '../../engine/store/open-store.js';
import { makeTempDir, writeFiles } from '../support/cli.js';
import { postgresTestUrl, requirePostgresUnderCi, TestSchemas } from '../support/postgres.js';
import { keepForSuiteScan } from '../support/suite-record.js';
import { ledgerIntegration } from '../executor/harness.js';
import { Sink } from '../executor/sink.js';
import { fixtureProviders, ledgerSignature, postHook, spawnDaemon } from './harness.js';

// Several daemons sharing the work on one PostgreSQL database: webhooks delivered to either
// daemon run once, executed by whichever claims them, and a duplicate delivered to the other
// daemon is recognised.

requirePostgresUnderCi('daemon on PostgreSQL');

describe.skipIf(postgresTestUrl === undefined)('two daemons on PostgreSQL', () => {
  const schemas = postgresTestUrl === undefined ? undefined : new TestSchemas(postgresTestUrl, 'daemon');
  afterAll(async () => {
    await schemas?.dropAll();
  });

  it('share deliveries and runs, each event run once', { timeout: 60_000 }, async () => {
    const sink = await new Sink().start();
    const state = new URL(postgresTestUrl!);
    state.searchParams.set('schema', schemas!.fresh());
    const dir = makeTempDir('patchbay-daemon-pg-');
    const secret = `whsec_test_${randomBytes(12).toString('hex')}`;
    writeFiles(dir, {
      'integrations/shared.yaml': ledgerIntegration({
        name: 'shared',
        origin: sink.origin,
        steps: `    - id: record
      call: ledger.entries.create
      with: { account: "{{ event.account }}", amount: "{{ event.amount }}" }`,
      }),
    });
    const env = { LEDGER_TOKEN: `ldg_test_${randomBytes(8).toString('hex')}`, LEDGER_WEBHOOK_SECRET: secret };
    const args = ['integrations', '--providers', fixtureProviders, '--state', state.toString()];
    const daemons = await Promise.all([spawnDaemon(dir, args, env), spawnDaemon(dir, args, env)]);
    try {
      const answers = await Promise.all(Array.from({ length: 60 }, async (_, index) => {
        const body = JSON.stringify({ id: `evt_pg_${index}`, type: 'entry.requested', account: `acct_${index}`, amount: index });
        return postHook(daemons[index % 2]!.url, 'shared', body, { 'ledger-signature': ledgerSignature(body, secret) });
      }));
      expect(answers.every((answer) => answer.status === 202)).toBe(true);
      // The same event delivered to the other daemon is a duplicate.
      const again = JSON.stringify({ id: 'evt_pg_0', type: 'entry.requested', account: 'acct_0', amount: 0 });
      const duplicate = await postHook(daemons[1]!.url, 'shared', again, { 'ledger-signature': ledgerSignature(again, secret) });
      expect(duplicate.status).toBe(200);
      expect(duplicate.json).toMatchObject({ duplicate: true, runId: answers[0]!.json.runId });

      const deadline = Date.now() + 30_000;
      while (sink.applied.size < 60 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(sink.applied.size).toBe(60);
      expect([...sink.applied.values()].every((count) => count === 1)).toBe(true);
      const store = await openStateStore(state.toString());
      try {
        const counts = await store.countRuns();
        expect(counts).toEqual([{ integration: 'shared', status: 'succeeded', count: 60 }]);
      } finally {
        await store.close();
      }
    } finally {
      for (const daemon of daemons) daemon.child.kill('SIGTERM');
      for (const daemon of daemons) expect(await daemon.exited).toBe(0);
      await sink.close();
      keepForSuiteScan({ label: 'daemon-postgres', logs: daemons.map((daemon) => daemon.output()), secrets: Object.values(env) });
    }
  });
});
