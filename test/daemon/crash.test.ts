import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { openSqliteStore } from '../../engine/store/sqlite/sqlite-store.js';
import { makeTempDir, writeFiles } from '../support/cli.js';
import { keepForSuiteScan } from '../support/suite-record.js';
import { ledgerIntegration } from '../executor/harness.js';
import { Sink } from '../executor/sink.js';
import { fixtureProviders, ledgerSignature, spawnDaemon } from './harness.js';

// "Nothing acknowledged is ever lost": the daemon as a real child process receives a burst of
// webhooks (a tenth of them forged) and is killed with SIGKILL in the middle of it. After a
// restart on the same state file, every delivery that got a 2xx has run (its step applied once
// at the provider), and none that got an error status has a run. Deliveries whose connection
// died with the process have no answer, so either outcome is allowed for them.

const total = 600;
const sink = new Sink();
afterAll(() => sink.close());

type Outcome = { readonly id: string; readonly forged: boolean; status: number | 'lost' };

describe('the daemon under SIGKILL', () => {
  it('runs every delivery it acknowledged and none it refused', { timeout: 120_000 }, async () => {
    await sink.start();
    const dir = makeTempDir('patchbay-daemon-crash-');
    const secret = `whsec_test_${randomBytes(12).toString('hex')}`;
    const env = { LEDGER_TOKEN: `ldg_test_${randomBytes(12).toString('hex')}`, LEDGER_WEBHOOK_SECRET: secret };
    writeFiles(dir, {
      'integrations/burst.yaml': ledgerIntegration({
        name: 'burst',
        origin: sink.origin,
        steps: `    - id: record
      call: ledger.entries.create
      with: { account: "{{ event.account }}", amount: "{{ event.amount }}" }`,
        policy: '    concurrency: { limit: 16 }\n    retry: { initialDelay: 50ms, maxDelay: 1s, maxAttempts: 10 }',
      }),
    });
    const args = ['integrations', '--providers', fixtureProviders, '--state', join(dir, 'state.db'), '--inbound-rate', '100000/s', '--log-level', 'info'];
    const first = await spawnDaemon(dir, args, env);
    const killAfter = 150 + Math.floor(Math.random() * 250);
    const outcomes: Outcome[] = [];
    const agent = new Agent({ connections: 32, pipelining: 1 });
    let answered = 0;
    let next = 0;
    const sendOne = async (index: number): Promise<void> => {
      const id = `evt_burst_${index}`;
      const forged = index % 10 === 7;
      const body = JSON.stringify({ id, type: 'entry.requested', account: `acct_${index}`, amount: index });
      const outcome: Outcome = { id, forged, status: 'lost' };
      outcomes.push(outcome);
      try {
        const response = await request(`${first.url}/hooks/burst`, {
          method: 'POST',
          dispatcher: agent,
          body,
          headers: { 'content-type': 'application/json', 'ledger-signature': ledgerSignature(body, forged ? 'whsec_test_wrong' : secret) },
        });
        await response.body.dump();
        outcome.status = response.statusCode;
        answered += 1;
        if (answered === killAfter) first.child.kill('SIGKILL');
      } catch {
        // The process died with this request in flight: no answer, so no promise was made.
      }
    };
    const workers = Array.from({ length: 24 }, async () => {
      while (next < total) await sendOne(next++);
    });
    await Promise.all(workers);
    await agent.close();
    await first.exited;

    const acknowledged = outcomes.filter((o) => typeof o.status === 'number' && o.status >= 200 && o.status < 300);
    const refused = outcomes.filter((o) => typeof o.status === 'number' && o.status >= 300);
    const lost = outcomes.filter((o) => o.status === 'lost');
    expect(acknowledged.length).toBeGreaterThanOrEqual(100);
    expect(lost.length).toBeGreaterThan(0);
    expect(refused.every((o) => o.forged && o.status === 401)).toBe(true);
    expect(acknowledged.every((o) => !o.forged)).toBe(true);

    // Restart on the same state file; everything acknowledged must finish.
    const second = await spawnDaemon(dir, args, env);
    const store = await openSqliteStore(join(dir, 'state.db'));
    try {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const counts = await store.countRuns();
        const open = counts.filter((row) => row.status !== 'succeeded' && row.status !== 'dead').reduce((sum, row) => sum + row.count, 0);
        if (open === 0) break;
        if (Date.now() > deadline) throw new Error(`runs still open after restart: ${JSON.stringify(counts)}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const runs = await store.listRuns({ limit: 1000 });
      const byKey = new Map(runs.map((run) => [run.eventKey, run]));
      for (const outcome of acknowledged) {
        const run = byKey.get(outcome.id);
        expect(run, `acknowledged ${outcome.id} has a run`).toBeDefined();
        expect(run?.status).toBe('succeeded');
        expect(sink.applied.get(`burst:${outcome.id}:record`), `${outcome.id} applied once`).toBe(1);
      }
      for (const outcome of refused) expect(byKey.has(outcome.id), `refused ${outcome.id} has no run`).toBe(false);
      // Only real deliveries ever became runs.
      expect(runs.every((run) => !outcomes.find((o) => o.id === run.eventKey)?.forged)).toBe(true);
      console.log(`daemon SIGKILL burst: killed after ${killAfter} answers; ${acknowledged.length} acknowledged, ${refused.length} refused, ${lost.length} without an answer (${runs.length - acknowledged.length} of these had been committed)`);
    } finally {
      await store.close();
      second.child.kill('SIGTERM');
      await second.exited;
      keepForSuiteScan({ label: 'daemon-crash', files: [join(dir, 'state.db')], logs: [first.output(), second.output()], secrets: Object.values(env) });
    }
  });
});
