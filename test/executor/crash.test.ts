import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { idempotencyKeyOf } from '../../engine/executor/executor.js';
import { openSqliteStore } from '../../engine/store/sqlite/sqlite-store.js';
import { cliPath, makeTempDir, runCli, writeFiles } from '../support/cli.js';
import { fixtureProviders, ledgerIntegration } from './harness.js';
import { Sink } from './sink.js';
import { keepForSuiteScan } from '../support/suite-record.js';

// Crash safety with the engine as a real child process: 2,000 events, the worker killed with
// SIGKILL three times at random points of the work and restarted each time. At the end every
// accepted event has completed, and the provider — which honours idempotency keys — has applied
// each step's key exactly once, with exactly one key per step of each event.

const eventCount = 2_000;
const steps = `    - id: record
      call: ledger.entries.create
      with: { account: "{{ event.data.account }}", amount: "{{ event.data.amount }}" }
    - id: notify
      call: ledger.notify.send
      with: { to: "{{ event.data.account }}", text: "{{ 'entry ' & steps.record.output.id }}" }
    - id: audit
      call: ledger.audit.write
      with: { ref: "{{ event.id }}", detail: "{{ steps.notify.output.id }}" }`;

const sink = new Sink();
afterAll(() => sink.close());

function startWorker(dir: string, env: Record<string, string>): { child: ChildProcess; exited: Promise<number | null>; stderr: () => string } {
  const child = spawn(process.execPath, [cliPath, 'work', 'integrations', '--providers', fixtureProviders, '--log-level', 'warn'], {
    cwd: dir,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, stderr: () => stderr };
}

async function waitUntil(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('crash safety', () => {
  it('completes every accepted event with each step applied once across three SIGKILLs', { timeout: 180_000 }, async () => {
    await sink.start();
    const dir = makeTempDir('patchbay-crash-');
    const env = { LEDGER_TOKEN: `ldg_test_${randomBytes(12).toString('hex')}`, LEDGER_WEBHOOK_SECRET: 'whsec_test_crash' };
    writeFiles(dir, {
      'integrations/crash.yaml': ledgerIntegration({ name: 'crash', origin: sink.origin, steps, policy: '    concurrency: { limit: 32 }\n    retry: { initialDelay: 50ms, maxDelay: 1s, maxAttempts: 10 }' }),
    });
    const lines = Array.from({ length: eventCount }, (_, index) => JSON.stringify({ id: `evt_${index}`, type: 'entry.requested', data: { account: `acct_${index % 97}`, amount: index + 1 } }));
    writeFileSync(join(dir, 'first.jsonl'), `${lines.slice(0, eventCount / 2).join('\n')}\n`);
    writeFileSync(join(dir, 'second.jsonl'), `${lines.slice(eventCount / 2).join('\n')}\n`);

    const enqueue = (file: string) => runCli(['enqueue', 'crash', 'integrations', '--event', file, '--providers', fixtureProviders, '--format', 'json'], { cwd: dir, env, timeoutMs: 60_000 });
    const first = await enqueue('first.jsonl');
    expect(first.stderr).toBe('');
    expect(JSON.parse(first.stdout)).toMatchObject({ accepted: eventCount / 2, duplicates: 0 });

    const totalRequests = eventCount * 3;
    // Kill points, drawn at random in three bands of the work so each kill lands mid-flight.
    const killAt = [0.05 + Math.random() * 0.15, 0.35 + Math.random() * 0.15, 0.6 + Math.random() * 0.15].map((share) => Math.floor(share * totalRequests));
    const workerLogs: string[] = [];
    let secondEnqueue: Promise<Awaited<ReturnType<typeof runCli>>> | undefined;
    for (const threshold of killAt) {
      const worker = startWorker(dir, env);
      // The rest of the events arrive while the first worker runs (two processes on one file).
      secondEnqueue ??= enqueue('second.jsonl');
      await waitUntil(() => sink.deliveries.length >= threshold, 60_000, `${threshold} deliveries (worker said: ${worker.stderr()})`);
      worker.child.kill('SIGKILL');
      expect(await worker.exited).toBeNull();
      workerLogs.push(worker.stderr());
    }
    const second = await secondEnqueue!;
    expect(JSON.parse(second.stdout)).toMatchObject({ accepted: eventCount / 2, duplicates: 0 });

    const last = await runCli(['work', 'integrations', '--providers', fixtureProviders, '--until-idle', '--log-level', 'warn'], { cwd: dir, env, timeoutMs: 90_000 });
    expect(last.code, last.stderr).toBe(0);

    const store = await openSqliteStore(join(dir, '.patchbay', 'state.db'));
    try {
      const counts = await store.countRuns();
      expect(counts).toEqual([{ integration: 'crash', status: 'succeeded', count: eventCount }]);
      // Every run's attempts, paging backwards through all of them.
      const interruptedByKey = new Map<string, number>();
      let interrupted = 0;
      let beforeSeq: number | undefined;
      let seen = 0;
      for (;;) {
        const page = await store.listRuns({ limit: 1_000, beforeSeq });
        if (page.length === 0) break;
        for (const run of page) {
          for (const attempt of await store.getAttempts(run.id)) {
            if (attempt.outcome !== 'interrupted') continue;
            interrupted += 1;
            const key = idempotencyKeyOf(run, { id: attempt.stepId });
            interruptedByKey.set(key, (interruptedByKey.get(key) ?? 0) + 1);
          }
        }
        seen += page.length;
        beforeSeq = page.at(-1)!.seq;
      }
      expect(seen).toBe(eventCount);
      // A step is sent again only after an interruption: never more than once plus the times its
      // attempt was cut short by a kill. Restarting a run from an earlier step would break this.
      const sent = new Map<string, number>();
      for (const delivery of sink.deliveries) sent.set(delivery.key!, (sent.get(delivery.key!) ?? 0) + 1);
      for (const [key, count] of sent) expect(count, key).toBeLessThanOrEqual(1 + (interruptedByKey.get(key) ?? 0));
      // Exactly one key per step of each event: a key that changed across a retry or a restart
      // would show up as an extra key here, a lost step as a missing one.
      const expected = new Set<string>();
      for (let index = 0; index < eventCount; index += 1) {
        for (const stepId of ['record', 'notify', 'audit']) expected.add(idempotencyKeyOf({ integration: 'crash', eventKey: `evt_${index}`, replays: 0 }, { id: stepId }));
      }
      expect(sink.deliveries.every((delivery) => delivery.key !== undefined)).toBe(true);
      expect([...sink.applied.keys()].sort()).toEqual([...expected].sort());
      expect([...sink.applied.values()].every((count) => count === 1)).toBe(true);
      console.log(
        `crash safety: ${eventCount} events, kills after ${killAt.join(', ')} of ${totalRequests} requests; ` +
          `${sink.deliveries.length} raw deliveries, ${sink.redeliveries} of them retried with a key already applied; ` +
          `${interrupted} interrupted attempts recorded`,
      );
    } finally {
      await store.close();
      keepForSuiteScan({ label: 'crash', files: [join(dir, '.patchbay', 'state.db')], logs: [last.stderr, ...workerLogs], secrets: [env.LEDGER_TOKEN] });
    }
  });
});
