import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { rejection } from '../support/errors.js';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { Sink } from '../executor/sink.js';
import { ledgerIntegration, waitForRuns } from '../executor/harness.js';
import { fixtureProviders, ledgerSignature, newWebhookSecret, postHook, startTestDaemon, type TestDaemon } from './harness.js';
import { repoRoot } from '../support/cli.js';
import { join } from 'node:path';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function ledgerDaemon(options: { sink?: Sink; extra?: Record<string, string>; daemon?: Parameters<typeof startTestDaemon>[0]['daemon']; env?: Record<string, string> } = {}): Promise<{ test: TestDaemon; sink: Sink; secret: string }> {
  const sink = options.sink ?? (await new Sink().start());
  const secret = newWebhookSecret();
  const test = await startTestDaemon({
    integrations: {
      ledger: ledgerIntegration({
        name: 'ledger-hooks',
        origin: sink.origin,
        steps: `    - id: record
      call: ledger.entries.create
      with: { account: "{{ event.account }}", amount: "{{ event.amount }}" }`,
      }),
      ...options.extra,
    },
    env: { LEDGER_TOKEN: 'ledger_test_token_0001', LEDGER_WEBHOOK_SECRET: secret, ...options.env },
    daemon: options.daemon,
  });
  cleanups.push(() => sink.close(), () => test.close());
  return { test, sink, secret };
}

/** A `ledger` connection (indented for `spec.connections`) to the sink, for integrations whose trigger is another provider. */
function ledgerConnection(sink: Sink): string {
  return `    ledger:
      provider: ledger
      baseUrl: ${sink.origin}
      allowedHosts: [ "${new URL(sink.origin).host}" ]
      allowPrivateAddresses: [ 127.0.0.1/32 ]
      auth: { type: bearer, token: { env: LEDGER_TOKEN } }
`;
}

function event(id: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ id, type: 'entry.requested', account: 'acct_1', amount: 250, ...extra });
}

describe('webhook ingress', () => {
  it('accepts a signed delivery with 202 after committing it, runs it, and answers a duplicate 200 without running it again', async () => {
    const { test, sink, secret } = await ledgerDaemon();
    const body = event('evt_1');
    const first = await postHook(test.url, 'ledger-hooks', body, { 'ledger-signature': ledgerSignature(body, secret) });
    expect(first.status).toBe(202);
    expect(first.json).toMatchObject({ accepted: true });
    const run = await test.daemon.store.getRun(first.json.runId);
    expect(run?.eventKey).toBe('evt_1');
    await waitForRuns({ store: test.daemon.store } as never, 1, 10_000);
    const again = await postHook(test.url, 'ledger-hooks', body, { 'ledger-signature': ledgerSignature(body, secret) });
    expect(again.status).toBe(200);
    expect(again.json).toEqual({ accepted: false, duplicate: true, runId: first.json.runId });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(sink.deliveries.filter((d) => d.path === '/entries')).toHaveLength(1);
  });

  it('answers before any step runs: the 2xx comes while the executor has not called the provider', async () => {
    // The provider stalls every call; the webhook answer must not wait for it.
    const sink = await new Sink(() => ({ delayMs: 2_000 })).start();
    const { test, secret } = await ledgerDaemon({ sink });
    const body = event('evt_fast');
    const started = Date.now();
    const answer = await postHook(test.url, 'ledger-hooks', body, { 'ledger-signature': ledgerSignature(body, secret) });
    expect(answer.status).toBe(202);
    expect(Date.now() - started).toBeLessThan(1_500);
  });

  it('refuses forged, stale and unsigned deliveries with 401 and stores nothing', async () => {
    const { test, secret } = await ledgerDaemon();
    const body = event('evt_forged');
    const tampered = await postHook(test.url, 'ledger-hooks', body.replace('250', '251'), { 'ledger-signature': ledgerSignature(body, secret) });
    expect(tampered.status).toBe(401);
    expect(tampered.json.error.code).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    const wrongSecret = await postHook(test.url, 'ledger-hooks', body, { 'ledger-signature': ledgerSignature(body, newWebhookSecret()) });
    expect(wrongSecret.status).toBe(401);
    const stale = await postHook(test.url, 'ledger-hooks', body, { 'ledger-signature': ledgerSignature(body, secret, Math.floor(Date.now() / 1000) - 3_600) });
    expect(stale.status).toBe(401);
    expect(stale.json.error.code).toBe('PB_WEBHOOK_STALE');
    const unsigned = await postHook(test.url, 'ledger-hooks', body, {});
    expect(unsigned.status).toBe(401);
    expect(unsigned.json.error.code).toBe('PB_WEBHOOK_MISSING_SIGNATURE');
    expect(await test.daemon.store.countRuns()).toEqual([]);
    // Refusals are logged without the body.
    expect(test.logger.text()).not.toContain('acct_1');
    expect(test.logger.lines.filter((line) => line.message === 'webhook refused')).toHaveLength(4);
  });

  it('answers bad input with the right status and keeps serving others', async () => {
    const { test, secret } = await ledgerDaemon({ daemon: { maxBodyBytes: 64 * 1024 } });
    const unknown = await postHook(test.url, 'no-such-integration', '{}', {});
    expect(unknown.status).toBe(404);
    expect(unknown.json.error.code).toBe('PB_WEBHOOK_UNKNOWN_INTEGRATION');

    const get = await request(`${test.url}/hooks/ledger-hooks`);
    expect(get.statusCode).toBe(405);
    expect(get.headers.allow).toBe('POST');
    expect((await get.body.json() as any).error.code).toBe('PB_WEBHOOK_METHOD_NOT_ALLOWED');

    const malformed = '{"id": "evt_bad", "type": ';
    const bad = await postHook(test.url, 'ledger-hooks', malformed, { 'ledger-signature': ledgerSignature(malformed, secret) });
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe('PB_WEBHOOK_BAD_BODY');

    const form = 'a=1&b=2';
    const media = await postHook(test.url, 'ledger-hooks', form, { 'content-type': 'application/x-www-form-urlencoded', 'ledger-signature': ledgerSignature(form, secret) });
    expect(media.status).toBe(415);
    expect(media.json.error.code).toBe('PB_WEBHOOK_UNSUPPORTED_MEDIA');

    // 10 MB, declared: refused before it is read.
    const huge = Buffer.alloc(10 * 1024 * 1024, 0x61);
    const large = await postHook(test.url, 'ledger-hooks', huge, { 'ledger-signature': 't=1,v1=00' }).catch((error: Error) => ({ status: -1, json: { error: { code: error.message } }, headers: {} }));
    // The server may close the connection while the client still sends: either a 413 or a reset.
    if (large.status !== -1) {
      expect(large.status).toBe(413);
      expect(large.json.error.code).toBe('PB_WEBHOOK_TOO_LARGE');
    }
    // Chunked (no length): refused once the limit is crossed.
    const chunked = await request(`${test.url}/hooks/ledger-hooks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'ledger-signature': 't=1,v1=00' },
      body: Readable.from((function* () {
        for (let i = 0; i < 40; i += 1) yield Buffer.alloc(64 * 1024, 0x61);
      })()),
    }).then(async (response) => ({ status: response.statusCode, json: await response.body.json() as any }), (error: Error) => ({ status: -1, json: { error: { code: error.message } } }));
    if (chunked.status !== -1) expect(chunked.status).toBe(413);

    // After all that, a good delivery still goes through.
    const body = event('evt_after_bad');
    const good = await postHook(test.url, 'ledger-hooks', body, { 'ledger-signature': ledgerSignature(body, secret) });
    expect(good.status).toBe(202);
    const counts = await test.daemon.store.countRuns();
    expect(counts.reduce((sum, row) => sum + row.count, 0)).toBe(1);
  });

  it('limits deliveries per sender address with 429 and Retry-After', async () => {
    const { test, secret } = await ledgerDaemon({ daemon: { inboundRate: { requests: 2, perMs: 60_000, burst: 3 } } });
    const statuses: number[] = [];
    let retryAfter: unknown;
    for (let i = 0; i < 5; i += 1) {
      const body = event(`evt_rate_${i}`);
      const answer = await postHook(test.url, 'ledger-hooks', body, { 'ledger-signature': ledgerSignature(body, secret) });
      statuses.push(answer.status);
      if (answer.status === 429) retryAfter = answer.headers['retry-after'];
    }
    expect(statuses).toEqual([202, 202, 202, 429, 429]);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
  });

  it('survives a slow-loris client: it holds one socket until the header timeout, others are served meanwhile', async () => {
    const { test, secret } = await ledgerDaemon();
    const port = test.daemon.address.port;
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write('POST /hooks/ledger-hooks HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    let closedAt = 0;
    const closed = new Promise<void>((resolve) => socket.once('close', () => {
      closedAt = Date.now();
      resolve();
    }));
    socket.on('error', () => undefined);
    let answer = '';
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
    });
    const openedAt = Date.now();
    // Served while the slow client dribbles its headers.
    for (let i = 0; i < 3; i += 1) {
      socket.write(`X-Slow-${i}: 1\r\n`);
      const body = event(`evt_loris_${i}`);
      const answer = await postHook(test.url, 'ledger-hooks', body, { 'ledger-signature': ledgerSignature(body, secret) });
      expect(answer.status).toBe(202);
    }
    await closed;
    // The default header timeout is 10 s, checked every second.
    expect(closedAt - openedAt).toBeLessThan(13_000);
    expect(closedAt - openedAt).toBeGreaterThanOrEqual(9_000);
    // Node's header limit answers 408; the daemon's idle-socket limit (the same 10 s) just closes.
    expect(answer === '' || /^HTTP\/1\.1 408 /.test(answer)).toBe(true);
  }, 20_000);

  it('serves /healthz and /readyz without auth, revealing nothing; refuses deliveries with 503 while draining', async () => {
    const sink = await new Sink(() => ({ delayMs: 800 })).start();
    const { test, secret } = await ledgerDaemon({ sink });
    const health = await request(`${test.url}/healthz`);
    expect(health.statusCode).toBe(200);
    expect(await health.body.json()).toEqual({ status: 'ok' });
    const ready = await request(`${test.url}/readyz`);
    expect(ready.statusCode).toBe(200);
    expect(await ready.body.json()).toEqual({ status: 'ready' });

    const body = event('evt_inflight');
    expect((await postHook(test.url, 'ledger-hooks', body, { 'ledger-signature': ledgerSignature(body, secret) })).status).toBe(202);
    // Wait until the step is in flight, then stop.
    const deadline = Date.now() + 5_000;
    while (sink.deliveries.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    const stopping = test.daemon.stop(5_000);
    const late = event('evt_late');
    const refused = await postHook(test.url, 'ledger-hooks', late, { 'ledger-signature': ledgerSignature(late, secret) });
    expect(refused.status).toBe(503);
    expect(refused.json.error.code).toBe('PB_DAEMON_DRAINING');
    expect(refused.headers['retry-after']).toBe('5');
    const notReady = await request(`${test.url}/readyz`);
    expect(notReady.statusCode).toBe(503);
    await notReady.body.dump();
    await stopping;
    // The step in flight finished within the drain deadline.
    expect(sink.deliveries).toHaveLength(1);
  });

  it('serves the other integrations when one cannot run, answering its deliveries 503 so they are not lost', async () => {
    const sink = await new Sink().start();
    const broken = ledgerIntegration({
      name: 'ledger-broken',
      origin: sink.origin,
      tokenEnv: 'MISSING_LEDGER_TOKEN',
      steps: `    - id: record
      call: ledger.entries.create
      with: { account: a, amount: 1 }`,
    });
    const adminToken = 'pbadmin_test_broken_0123456789';
    const { test, secret } = await ledgerDaemon({ sink, extra: { broken }, env: { PATCHBAY_ADMIN_TOKEN: adminToken } });
    const status = await request(`${test.url}/admin/v1/status`, { headers: { authorization: `Bearer ${adminToken}` } });
    const view = await status.body.json() as { integrations: { name: string; state: string; error?: { code: string } }[] };
    expect(view.integrations.find((integration) => integration.name === 'ledger-broken')).toMatchObject({ state: 'broken', error: { code: 'PB_SECRET_UNRESOLVED' } });
    expect(view.integrations.find((integration) => integration.name === 'ledger-hooks')).toMatchObject({ state: 'running' });
    const body = event('evt_broken');
    const refused = await postHook(test.url, 'ledger-broken', body, { 'ledger-signature': ledgerSignature(body, secret) });
    expect(refused.status).toBe(503);
    expect(refused.json.error.code).toBe('PB_INTEGRATION_BROKEN');
    const ok = await postHook(test.url, 'ledger-hooks', body, { 'ledger-signature': ledgerSignature(body, secret) });
    expect(ok.status).toBe(202);
    expect(test.logger.lines.some((line) => line.level === 'error' && line.fields.integration === 'ledger-broken')).toBe(true);
  });
});

describe('the daemon\'s admin surface', () => {
  it('answers nothing but health without a token, and counts deliveries in /metrics for a read token', async () => {
    const adminToken = `pbadmin_test_${Math.random().toString(36).slice(2)}_0123456789`;
    const readToken = `pbread_test_${Math.random().toString(36).slice(2)}_0123456789`;
    const { test, secret } = await ledgerDaemon({ env: { PATCHBAY_ADMIN_TOKEN: adminToken, PATCHBAY_ADMIN_READ_TOKEN: readToken } });
    for (const path of ['/metrics', '/admin/v1/status', '/admin/v1/runs', '/admin/v1/nope']) {
      const anonymous = await request(`${test.url}${path}`);
      expect(anonymous.statusCode, path).toBe(401);
      await anonymous.body.dump();
    }
    const body = event('evt_metrics');
    expect((await postHook(test.url, 'ledger-hooks', body, { 'ledger-signature': ledgerSignature(body, secret) })).status).toBe(202);
    expect((await postHook(test.url, 'ledger-hooks', body, { 'ledger-signature': ledgerSignature(body, secret) })).status).toBe(200);
    expect((await postHook(test.url, 'ledger-hooks', body, { 'ledger-signature': ledgerSignature(body, 'whsec_test_not_the_secret') })).status).toBe(401);
    await waitForRuns({ store: test.daemon.store } as never, 1, 10_000);

    const metrics = await request(`${test.url}/metrics`, { headers: { authorization: `Bearer ${readToken}` } });
    expect(metrics.statusCode).toBe(200);
    const text = await metrics.body.text();
    expect(text).toMatch(/patchbay_webhook_events_received_total\{integration="ledger-hooks",source="webhook"\} 1\n/);
    expect(text).toMatch(/patchbay_webhook_events_rejected_total\{integration="ledger-hooks",reason="PB_WEBHOOK_BAD_SIGNATURE"\} 1\n/);
    expect(text).toMatch(/patchbay_runs_total\{integration="ledger-hooks",outcome="succeeded"\} 1\n/);
    expect(text).toMatch(/patchbay_step_duration_seconds_count\{integration="ledger-hooks",step="record",outcome="succeeded"\} 1\n/);

    const status = await request(`${test.url}/admin/v1/status`, { headers: { authorization: `Bearer ${readToken}` } });
    expect(status.statusCode).toBe(200);
    const view = await status.body.json() as { integrations: { name: string; state: string; trigger: string }[] };
    expect(view.integrations).toEqual([expect.objectContaining({ name: 'ledger-hooks', state: 'running', trigger: 'webhook' })]);
    // The read token cannot operate.
    const retry = await request(`${test.url}/admin/v1/runs/retry`, { method: 'POST', body: '{}', headers: { authorization: `Bearer ${readToken}`, 'content-type': 'application/json' } });
    expect(retry.statusCode).toBe(403);
    await retry.body.dump();
    expect(test.logger.text()).not.toContain(adminToken);
    expect(test.logger.text()).not.toContain(readToken);
  });
});

describe('hostile deliveries (review findings)', () => {
  it('deduplicates GitHub deliveries by their body: a captured delivery replayed with a new X-GitHub-Delivery is not run again', async () => {
    const sink = await new Sink().start();
    const githubSecret = newWebhookSecret();
    const integration = `apiVersion: patchbay/v1
kind: Integration
metadata:
  name: gh-hooks
spec:
  connections:
    github:
      provider: github
      webhookSecrets: [ { env: GH_WEBHOOK_SECRET } ]
${ledgerConnection(sink)}  trigger:
    webhook: { connection: github, events: [ issues.opened ] }
  steps:
    - id: record
      call: ledger.entries.create
      with: { account: "{{ event.repository.full_name }}", amount: 1 }
`;
    const { test } = await ledgerDaemon({ sink, extra: { gh: integration }, env: { GH_WEBHOOK_SECRET: githubSecret } });
    const body = JSON.stringify({ action: 'opened', issue: { number: 7, title: 'Bug' }, repository: { full_name: 'octo/widgets' } });
    const signature = `sha256=${createHmac('sha256', githubSecret).update(body).digest('hex')}`;
    const deliver = (id: string) => postHook(test.url, 'gh-hooks', body, { 'x-hub-signature-256': signature, 'x-github-event': 'issues', 'x-github-delivery': id });
    const first = await deliver('d-1');
    expect(first.status).toBe(202);
    const replayed = await deliver('d-2');
    expect(replayed.status).toBe(200);
    expect(replayed.json).toMatchObject({ duplicate: true, runId: first.json.runId });
    const changed = JSON.stringify({ action: 'opened', issue: { number: 8, title: 'Another' }, repository: { full_name: 'octo/widgets' } });
    const other = await postHook(test.url, 'gh-hooks', changed, { 'x-hub-signature-256': `sha256=${createHmac('sha256', githubSecret).update(changed).digest('hex')}`, 'x-github-event': 'issues', 'x-github-delivery': 'd-3' });
    expect(other.status).toBe(202);
  });

  it('takes the sender address from the right of X-Forwarded-For behind a proxy, so a client cannot pick a fresh rate bucket', async () => {
    const { test, secret } = await ledgerDaemon({ daemon: { trustProxy: true, inboundRate: { requests: 1, perMs: 60_000, burst: 2 } } });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i += 1) {
      const body = event(`evt_xff_${i}`);
      statuses.push((await postHook(test.url, 'ledger-hooks', body, { 'ledger-signature': ledgerSignature(body, secret), 'x-forwarded-for': `10.0.0.${i}, 192.0.2.7` })).status);
    }
    expect(statuses).toEqual([202, 202, 429, 429]);
    // Another address, as the proxy reports it, has its own bucket.
    const body = event('evt_xff_other');
    expect((await postHook(test.url, 'ledger-hooks', body, { 'ledger-signature': ledgerSignature(body, secret), 'x-forwarded-for': '192.0.2.8' })).status).toBe(202);
  });

  it('behind two proxies, takes the sender from the second entry from the right', async () => {
    const { test, secret } = await ledgerDaemon({ daemon: { trustProxy: true, proxyHops: 2, inboundRate: { requests: 1, perMs: 60_000, burst: 2 } } });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i += 1) {
      const body = event(`evt_hops_${i}`);
      // The client's claim, what the CDN saw (the real sender), and the CDN edge the load balancer saw.
      statuses.push((await postHook(test.url, 'ledger-hooks', body, { 'ledger-signature': ledgerSignature(body, secret), 'x-forwarded-for': `10.9.9.${i}, 198.51.100.7, 203.0.113.${i}` })).status);
    }
    expect(statuses).toEqual([202, 202, 429, 429]);
  });

  it('answers malformed percent-encoding 404, an aborted upload without an error-level line, and refuses an oversized Expect: 100-continue before the body', async () => {
    const { test } = await ledgerDaemon();
    for (const path of ['/hooks/%E0%A4%A', '/hooks/%', '/hooks/ledger-hooks%']) {
      const answer = await rawRequest(test.daemon.address.port, `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      expect(answer, path).toMatch(/^HTTP\/1\.1 404 /);
      expect(answer).toContain('PB_WEBHOOK_UNKNOWN_INTEGRATION');
    }
    // Declares 1000 bytes, sends 10, hangs up.
    await rawRequest(test.daemon.address.port, `POST /hooks/ledger-hooks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"id":"ev"`, 100);
    const deadline = Date.now() + 2_000;
    while (!test.logger.text().includes('PB_WEBHOOK_ABORTED') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    const aborted = test.logger.lines.filter((line) => line.fields.code === 'PB_WEBHOOK_ABORTED');
    expect(aborted.map((line) => line.level)).toEqual(['info']);
    expect(test.logger.lines.filter((line) => line.level === 'error')).toEqual([]);

    const answer = await rawRequest(test.daemon.address.port, `POST /hooks/ledger-hooks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${10 * 1024 * 1024}\r\nExpect: 100-continue\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer).not.toContain('100 Continue');
  });
});

describe('idle connections', () => {
  it('closes a connection that sends nothing after the header limit, and keeps serving', async () => {
    const { test, secret } = await ledgerDaemon({ daemon: { serverTimeouts: { headersTimeoutMs: 1_000 } } });
    const openedAt = Date.now();
    const sockets = Array.from({ length: 20 }, () => connect(test.daemon.address.port, '127.0.0.1'));
    const closed = sockets.map((socket) => new Promise<number>((resolve) => {
      socket.on('error', () => undefined);
      socket.resume();
      socket.on('close', () => resolve(Date.now() - openedAt));
    }));
    const body = event('evt_idle');
    expect((await postHook(test.url, 'ledger-hooks', body, { 'ledger-signature': ledgerSignature(body, secret) })).status).toBe(202);
    const times = await Promise.all(closed);
    expect(Math.max(...times)).toBeLessThan(4_000);
    expect(Math.min(...times)).toBeGreaterThanOrEqual(900);
  });
});

/** Writes `text` on a raw socket and resolves with everything answered until the server closes (or `closeAfterMs`). */
function rawRequest(port: number, text: string, closeAfterMs?: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(answer));
    socket.write(text);
    if (closeAfterMs !== undefined) setTimeout(() => socket.destroy(), closeAfterMs);
    else setTimeout(() => socket.destroy(), 3_000);
  });
}

describe('deliveries without a signed id', () => {
  it('are keyed by the body and the signed time: a replay is a duplicate, the same bytes signed later are a new event', async () => {
    const sink = await new Sink().start();
    const stampSecret = newWebhookSecret();
    const integration = `apiVersion: patchbay/v1
kind: Integration
metadata:
  name: stamped-hooks
spec:
  connections:
    source:
      provider: stamped
      webhookSecrets: [ { env: STAMP_SECRET } ]
${ledgerConnection(sink)}  trigger:
    webhook: { connection: source, events: [ "*" ] }
  steps:
    - id: record
      call: ledger.entries.create
      with: { account: "{{ event.item }}", amount: 1 }
`;
    const { test } = await ledgerDaemon({ sink, extra: { stamped: integration }, env: { STAMP_SECRET: stampSecret }, daemon: { providerDirs: [fixtureProviders, join(repoRoot, 'test', 'fixtures', 'daemon', 'providers')] } });
    const body = JSON.stringify({ kind: 'updates.available', item: 'item_1' });
    const deliver = (timeS: number) => postHook(test.url, 'stamped-hooks', body, {
      'stamp-time': String(timeS),
      'stamp-signature': createHmac('sha256', stampSecret).update(`${timeS}.${body}`).digest('hex'),
    });
    const now = Math.floor(Date.now() / 1000);
    const first = await deliver(now - 60);
    expect(first.status, `${JSON.stringify(first.json)} ${test.logger.text().slice(0, 3000)}`).toBe(202);
    expect((await deliver(now - 60)).json).toMatchObject({ duplicate: true, runId: first.json.runId });
    const later = await deliver(now);
    expect(later.status).toBe(202);
    expect(later.json.runId).not.toBe(first.json.runId);
  });
});

describe('Mailchimp audience webhooks', () => {
  it('answers Mailchimp\'s GET check of the URL, and accepts form deliveries carrying the secret in the URL, which is never logged', async () => {
    const sink = await new Sink().start();
    const key = `mckey_test_${Math.random().toString(36).slice(2)}_0123456789`;
    const integration = `apiVersion: patchbay/v1
kind: Integration
metadata:
  name: mc-hooks
spec:
  connections:
    audience:
      provider: mailchimp
      variables: { dc: us21 }
      webhookSecrets: [ { env: MC_WEBHOOK_KEY } ]
${ledgerConnection(sink)}  trigger:
    webhook: { connection: audience, events: [ subscribe ] }
  steps:
    - id: record
      call: ledger.entries.create
      with: { account: "{{ event.data.email }}", amount: 1 }
`;
    const { test } = await ledgerDaemon({ sink, extra: { mc: integration }, env: { MC_WEBHOOK_KEY: key } });
    for (const method of ['GET', 'HEAD']) {
      const check = await request(`${test.url}/hooks/mc-hooks`, { method: method as 'GET' | 'HEAD' });
      expect(check.statusCode, method).toBe(200);
      await check.body.dump();
    }
    const form = 'type=subscribe&fired_at=2026-11-24+10%3A00%3A00&data%5Bid%5D=8a25ff1d98&data%5Blist_id%5D=a6b5da1054&data%5Bemail%5D=api%40example.com';
    const post = (query: string) => request(`${test.url}/hooks/mc-hooks${query}`, { method: 'POST', body: form, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    const refused = await post('?key=wrong_key_0123456789');
    expect(refused.statusCode).toBe(401);
    await refused.body.dump();
    const accepted = await post(`?key=${encodeURIComponent(key)}`);
    expect(accepted.statusCode).toBe(202);
    const { runId } = await accepted.body.json() as { runId: string };
    // The form's brackets are nested into the event the steps read.
    expect(await test.daemon.store.getPayload(runId)).toMatchObject({ type: 'subscribe', data: { email: 'api@example.com', list_id: 'a6b5da1054' } });
    expect(test.logger.text()).not.toContain(key);
  });
});

describe('start-up', () => {
  it('refuses a port in use with PB_DAEMON_LISTEN naming the address', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as AddressInfo).port;
    try {
      const error = await rejection(startTestDaemon({
        integrations: { ledger: ledgerIntegration({ name: 'ledger-hooks', origin: 'http://127.0.0.1:9', steps: '    - id: record\n      call: ledger.entries.create\n      with: { account: a, amount: 1 }' }) },
        env: { LEDGER_TOKEN: 'ledger_test_token_0002', LEDGER_WEBHOOK_SECRET: newWebhookSecret() },
        daemon: { port },
      }));
      expect(error.code).toBe('PB_DAEMON_LISTEN');
      expect(error.message).toContain(`127.0.0.1:${port}`);
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });
});
