import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { verify as verifyGithub } from '@octokit/webhooks-methods';
import Stripe from 'stripe';
import { afterEach, describe, expect, it } from 'vitest';
import { runSend } from '../engine/cli/send-command.js';
import { readSandboxFile, sandboxFilePath, writeSandboxFile } from '../engine/daemon/sandbox/state-file.js';
import { webhookSecret } from '../engine/daemon/sandbox/secrets.js';
import { makeTempDir, repoRoot } from './support/cli.js';

// `patchbay send` against a small real server that plays the daemon: it verifies each delivery
// with the provider's SDK, answers as the ingress does, and serves the run through the admin API.

const stripe = new Stripe('sk_test_fake_not_used_for_calls');
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Received {
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: Buffer;
}

interface FakeDaemon {
  readonly url: string;
  readonly received: Received[];
}

/** Answers `/hooks/*` with `hook(received)` and `GET /admin/v1/runs/:id` with the runs' next states. */
async function fakeDaemon(options: {
  token: string;
  hook: (received: Received) => Promise<{ status: number; body: unknown }>;
  states: string[];
}): Promise<FakeDaemon> {
  const received: Received[] = [];
  let looks = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const entry = { path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) };
      const reply = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (entry.path.startsWith('/hooks/')) {
        received.push(entry);
        void options.hook(entry).then(({ status, body }) => reply(status, body));
        return;
      }
      const run = /^\/admin\/v1\/runs\/([^/?]+)$/.exec(entry.path);
      if (run === null) return reply(404, { error: { code: 'PB_ADMIN_NOT_FOUND', message: 'no route' } });
      if (req.headers.authorization !== `Bearer ${options.token}`) return reply(401, { error: { code: 'PB_ADMIN_UNAUTHENTICATED', message: 'no' } });
      const status = options.states[Math.min(looks, options.states.length - 1)]!;
      looks += 1;
      reply(200, runDetail(decodeURIComponent(run[1]!), status));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received };
}

/** A run as the admin API answers it (absent values as null), with one step that called Twilio. */
function runDetail(id: string, status: string) {
  const dead = status === 'dead';
  return {
    run: {
      id, integration: 'stripe-payment-followup', eventKey: 'evt_x', eventType: 'payment_intent.succeeded', source: 'webhook', seq: 1, status,
      revision: 'abc123', orderKey: null, receivedAt: 1_760_000_000_000, updatedAt: 1_760_000_000_500, availableAt: 1_760_000_000_000,
      finishedAt: status === 'succeeded' || dead ? 1_760_000_000_900 : null, nextStep: 1, stepCount: 2, replays: 0,
      errorCode: dead ? 'PB_HTTP_CLIENT_ERROR' : null, errorMessage: dead ? 'twilio.messages.create answered 400\u001b[31m' : null, errorStep: dead ? 'sendSms' : null,
      leaseOwner: null, leaseExpiresAt: null,
    },
    steps: [{ runId: id, index: 0, stepId: 'sendSms', status: dead ? 'dead' : 'succeeded', output: { sid: 'SM1' }, attempts: 1, firstAttemptAt: 1_760_000_000_100, updatedAt: 1_760_000_000_200 }],
    attempts: [
      {
        id: 1, runId: id, stepId: 'sendSms', stepIndex: 0, attempt: 1, startedAt: 1_760_000_000_100, durationMs: 12, outcome: dead ? 'dead' : 'succeeded',
        request: { method: 'POST', url: 'http://127.0.0.1:1/twilio/2010-04-01/Accounts/[redacted]/Messages.json', body: 'To=%2B15555550123' },
        response: { status: dead ? 400 : 201, body: { sid: 'SM1' } }, status: dead ? 400 : 201, errorCode: null, errorMessage: null, retryAt: null,
      },
    ],
    payload: { id: 'evt_x', type: 'payment_intent.succeeded' },
  };
}

function capture(cwd: string) {
  let stdout = '';
  let stderr = '';
  return {
    io: { stdout: { write: (text: string) => (stdout += text) }, stderr: { write: (text: string) => (stderr += text) }, env: {}, cwd },
    out: () => stdout,
    err: () => stderr,
  };
}

async function project(daemonUrl: string, token: string, secrets: Record<string, string[]>): Promise<string> {
  const dir = makeTempDir('patchbay-send-');
  await writeSandboxFile(dir, {
    version: 1,
    daemonUrl,
    adminToken: token,
    paths: [join(repoRoot, 'integrations')],
    integrations: Object.fromEntries(Object.entries(secrets).map(([name, values]) => [name, { webhookSecrets: values }])),
  });
  return dir;
}

describe('patchbay send', () => {
  it('signs a Stripe sample as Stripe does, with a fresh event id each time, and prints the run it follows', async () => {
    const token = randomBytes(24).toString('hex');
    const secret = webhookSecret('stripe');
    const ids: string[] = [];
    const daemon = await fakeDaemon({
      token,
      states: ['running', 'succeeded', 'running', 'succeeded'],
      hook: async ({ headers, body }) => {
        const event = stripe.webhooks.constructEvent(body, String(headers['stripe-signature']), secret, 300);
        ids.push(event.id);
        return { status: 202, body: { accepted: true, runId: `run_${ids.length}` } };
      },
    });
    const dir = await project(daemon.url, token, { 'stripe-payment-followup': [secret] });
    expect(statSync(sandboxFilePath(dir)).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, '.patchbay')).mode & 0o777).toBe(0o700);

    const first = capture(dir);
    expect(await runSend(['stripe-payment-followup', '--dir', dir], first.io, { pollIntervalMs: 5 })).toBe(0);
    expect(first.err()).toBe('');
    expect(first.out()).toMatch(/^Sent payment_intent\.succeeded \(evt_sandbox[0-9a-f]{24}\) to stripe-payment-followup: 202 accepted, run run_1\n/);
    expect(first.out()).toContain('Step 1 "sendSms": succeeded, 1 attempt');
    expect(first.out()).toContain('Messages.json');
    expect(first.out()).toContain('Run run_1 succeeded.');

    const second = capture(dir);
    expect(await runSend(['stripe-payment-followup', '--dir', dir, '--json'], second.io, { pollIntervalMs: 5 })).toBe(0);
    const report = JSON.parse(second.out()) as { sent: { eventId: string; status: number }; run: { status: string; orderKey: unknown } };
    expect(report.sent.status).toBe(202);
    expect(report.run).toMatchObject({ status: 'succeeded', orderKey: null });
    expect(ids).toHaveLength(2);
    expect(ids[0]).not.toBe(ids[1]);
    expect(report.sent.eventId).toBe(ids[1]);
    expect(daemon.received[0]!.headers['content-type']).toBe('application/json');
  });

  it('signs GitHub deliveries with the event header and a delivery id, and exits 1 with the error of a dead run', async () => {
    const token = randomBytes(24).toString('hex');
    const secret = webhookSecret('github');
    const daemon = await fakeDaemon({
      token,
      states: ['dead'],
      hook: async ({ headers, body }) => {
        const valid = await verifyGithub(secret, body.toString('utf8'), String(headers['x-hub-signature-256']));
        return valid ? { status: 202, body: { accepted: true, runId: 'run_gh' } } : { status: 401, body: { error: { code: 'PB_WEBHOOK_BAD_SIGNATURE', message: 'no match' } } };
      },
    });
    const dir = await project(daemon.url, token, { 'github-issue-to-slack': [secret] });
    const out = capture(dir);
    expect(await runSend(['github-issue-to-slack', '--dir', dir, '--event', 'issues.opened'], out.io, { pollIntervalMs: 5 })).toBe(1);
    const delivery = daemon.received[0]!;
    expect(delivery.headers['x-github-event']).toBe('issues');
    expect(delivery.headers['x-github-delivery']).toMatch(/^[0-9a-f-]{36}$/);
    expect(JSON.parse(delivery.body.toString('utf8'))).toMatchObject({ action: 'opened' });
    // Control characters from the stored error are escaped, not sent to the terminal.
    expect(out.out()).not.toContain('\u001b');
    expect(out.out()).toContain('Run run_gh died: PB_HTTP_CLIENT_ERROR in step "sendSms".');
  });

  it('reports a refused delivery (exit 1), a missing sandbox, a schedule trigger and an unreachable daemon (exit 2)', async () => {
    const token = randomBytes(24).toString('hex');
    const daemon = await fakeDaemon({ token, states: ['succeeded'], hook: async () => ({ status: 401, body: { error: { code: 'PB_WEBHOOK_BAD_SIGNATURE', message: 'matches no secret' } } }) });
    const dir = await project(daemon.url, token, { 'stripe-payment-followup': [webhookSecret('stripe')] });
    const refused = capture(dir);
    expect(await runSend(['stripe-payment-followup', '--dir', dir], refused.io)).toBe(1);
    expect(refused.err()).toContain('PB_SEND_REFUSED: the daemon did not accept the delivery: PB_WEBHOOK_BAD_SIGNATURE: matches no secret');

    const schedule = capture(dir);
    expect(await runSend(['weekday-openai-summary', '--dir', dir], schedule.io)).toBe(2);
    expect(schedule.err()).toMatch(/PB_SEND_UNSUPPORTED: integration "weekday-openai-summary" runs on a schedule, "0 8 \* \* 1-5" \(Europe\/Berlin\)/);

    const poll = capture(dir);
    expect(await runSend(['shopify-orders-to-sendgrid', '--dir', dir], poll.io)).toBe(2);
    expect(poll.err()).toContain('polls orders.list');

    const unknown = capture(dir);
    expect(await runSend(['stripe-payment-folowup', '--dir', dir], unknown.io)).toBe(2);
    expect(unknown.err()).toContain('did you mean "stripe-payment-followup"');

    const noEvent = capture(dir);
    expect(await runSend(['stripe-payment-followup', '--dir', dir, '--event', 'nope.json'], noEvent.io)).toBe(2);
    expect(noEvent.err()).toContain('PB_SEND_NO_EVENT');

    const empty = makeTempDir('patchbay-send-none-');
    const missing = capture(empty);
    expect(await runSend(['stripe-payment-followup'], missing.io)).toBe(2);
    expect(missing.err()).toContain('PB_SANDBOX_NOT_RUNNING');

    // A port nobody listens on: the server is started and closed to find one.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const gone = await project(`http://127.0.0.1:${port}`, token, { 'stripe-payment-followup': [webhookSecret('stripe')] });
    const unreachable = capture(gone);
    expect(await runSend(['stripe-payment-followup', '--dir', gone], unreachable.io)).toBe(2);
    expect(unreachable.err()).toContain('PB_SEND_UNREACHABLE');

    expect(await runSend([], capture(dir).io)).toBe(2);
    expect(await runSend(['x', '--timeout', 'soon'], capture(dir).io)).toBe(2);
  });

  it('reads back what it wrote and refuses a file of another shape', async () => {
    const dir = await project('http://127.0.0.1:1', 'token', { a: ['s'] });
    expect(await readSandboxFile(dir)).toMatchObject({ version: 1, daemonUrl: 'http://127.0.0.1:1', integrations: { a: { webhookSecrets: ['s'] } } });
    await writeSandboxFile(dir, { version: 2 } as never);
    await expect(readSandboxFile(dir)).rejects.toMatchObject({ code: 'PB_SANDBOX_FILE_INVALID' });
  });
});
