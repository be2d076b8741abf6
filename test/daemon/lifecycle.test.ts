import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { openSqliteStore } from '../../engine/store/sqlite/sqlite-store.js';
import { makeTempDir, writeFiles } from '../support/cli.js';
import { keepForSuiteScan } from '../support/suite-record.js';
import { ledgerIntegration } from '../executor/harness.js';
import { Sink } from '../executor/sink.js';
import { fixtureProviders, ledgerSignature, postHook, spawnDaemon } from './harness.js';

// The daemon as a child process: HTTPS with --tls-cert/--tls-key, and the shutdown sequence —
// SIGTERM refuses new deliveries with 503 while a step is in flight, a second signal exits at once,
// and the unfinished run resumes on the next start with the same idempotency key.

const sinks: Sink[] = [];
afterAll(async () => {
  for (const sink of sinks) await sink.close();
});

function project(sink: Sink): { dir: string; env: Record<string, string>; secret: string; args: string[] } {
  const dir = makeTempDir('patchbay-daemon-life-');
  const secret = `whsec_test_${randomBytes(12).toString('hex')}`;
  writeFiles(dir, {
    'integrations/life.yaml': ledgerIntegration({
      name: 'life',
      origin: sink.origin,
      steps: `    - id: record
      call: ledger.entries.create
      with: { account: "{{ event.account }}", amount: "{{ event.amount }}" }`,
    }),
  });
  return { dir, secret, env: { LEDGER_TOKEN: `ldg_test_${randomBytes(12).toString('hex')}`, LEDGER_WEBHOOK_SECRET: secret }, args: ['integrations', '--providers', fixtureProviders, '--state', join(dir, 'state.db')] };
}

function body(id: string): string {
  return JSON.stringify({ id, type: 'entry.requested', account: 'acct_life', amount: 7 });
}

describe('the daemon process', () => {
  it('serves HTTPS with the given certificate and key', { timeout: 30_000 }, async () => {
    const sink = await new Sink().start();
    sinks.push(sink);
    const { dir, env, secret, args } = project(sink);
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const daemon = await spawnDaemon(dir, [...args, '--tls-cert', 'cert.pem', '--tls-key', 'key.pem'], env);
    const agent = new Agent({ connect: { ca: readFileSync(join(dir, 'cert.pem')) } });
    try {
      expect(daemon.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const health = await request(`${daemon.url}/healthz`, { dispatcher: agent });
      expect(health.statusCode).toBe(200);
      await health.body.dump();
      const text = body('evt_tls');
      const answer = await request(`${daemon.url}/hooks/life`, { method: 'POST', dispatcher: agent, body: text, headers: { 'content-type': 'application/json', 'ledger-signature': ledgerSignature(text, secret) } });
      expect(answer.statusCode).toBe(202);
      await answer.body.dump();
      // Plain HTTP to the TLS port gets nothing usable.
      await expect(request(daemon.url.replace('https:', 'http:') + '/healthz').then(async (response) => {
        await response.body.dump();
        return response.statusCode;
      })).rejects.toThrow();
    } finally {
      await agent.close();
      daemon.child.kill('SIGTERM');
      expect(await daemon.exited).toBe(0);
    }
  });

  it('drains on SIGTERM (503 for new deliveries), exits at once on a second signal, and resumes the run on restart', { timeout: 60_000 }, async () => {
    let stall = true;
    const sink = await new Sink(() => (stall ? { delayMs: 20_000 } : undefined)).start();
    sinks.push(sink);
    const { dir, env, secret, args } = project(sink);
    const first = await spawnDaemon(dir, [...args, '--drain-timeout', '30s'], env);
    const text = body('evt_drain');
    expect((await postHook(first.url, 'life', text, { 'ledger-signature': ledgerSignature(text, secret) })).status).toBe(202);
    const deadline = Date.now() + 10_000;
    while (sink.deliveries.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(sink.deliveries).toHaveLength(1);

    first.child.kill('SIGTERM');
    // Once the signal is handled /readyz turns 503; the listener still answers, deliveries get 503.
    let readyStatus = 200;
    for (let i = 0; i < 200 && readyStatus !== 503; i += 1) {
      const ready = await request(`${first.url}/readyz`);
      readyStatus = ready.statusCode;
      await ready.body.dump();
      if (readyStatus !== 503) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(readyStatus).toBe(503);
    const late = body('evt_late');
    const refused = await postHook(first.url, 'life', late, { 'ledger-signature': ledgerSignature(late, secret) });
    expect(refused.status).toBe(503);
    expect(refused.json.error.code).toBe('PB_DAEMON_DRAINING');
    expect(refused.headers['retry-after']).toBe('5');

    // The step is still in flight (20 s) and the drain would wait 30 s: a second signal ends it now.
    const secondAt = Date.now();
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(2);
    expect(Date.now() - secondAt).toBeLessThan(3_000);
    expect(first.output()).toContain('second signal');

    stall = false;
    const second = await spawnDaemon(dir, args, env);
    const store = await openSqliteStore(join(dir, 'state.db'));
    try {
      const until = Date.now() + 30_000;
      let status: string | undefined;
      for (;;) {
        const runs = await store.listRuns({ integration: 'life' });
        status = runs.find((run) => run.eventKey === 'evt_drain')?.status;
        if (status === 'succeeded' || Date.now() > until) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(status).toBe('succeeded');
      // Sent again after the restart, with the same key: applied once.
      const keys = sink.deliveries.map((delivery) => delivery.key);
      expect(keys.length).toBeGreaterThanOrEqual(2);
      expect(new Set(keys).size).toBe(1);
      expect(sink.applied.get('life:evt_drain:record')).toBe(1);
      // Deliveries refused while draining were not stored.
      expect((await store.listRuns({ integration: 'life' })).map((run) => run.eventKey)).toEqual(['evt_drain']);
    } finally {
      await store.close();
      second.child.kill('SIGTERM');
      await second.exited;
      keepForSuiteScan({ label: 'daemon-lifecycle', files: [join(dir, 'state.db')], logs: [first.output(), second.output()], secrets: Object.values(env) });
    }
  });
});
