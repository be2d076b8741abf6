import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createAdminHandler, isAdminPath, type AdminHandlerOptions } from '../../engine/daemon/admin/handler.js';
import type { DaemonStatus } from '../../engine/daemon/admin/api.js';
import { openSqliteStore } from '../../engine/store/sqlite/sqlite-store.js';
import type { NewEvent, StepResult } from '../../engine/store/state-store.js';
import { makeTempDir } from '../support/cli.js';

// A state file with one run in each interesting state, and a real node:http server on
// 127.0.0.1:0 that mounts the admin handler the way the daemon does (admin paths and /metrics).

export const minuteMs = 60_000;
export const hourMs = 60 * minuteMs;
export const fixtureOwner = 'test-host:1:1';

export interface RunsFixture {
  readonly path: string;
  readonly base: number;
  /** billing, succeeded 3 h ago. */
  readonly oldSucceeded: string;
  /** orders, two steps, succeeded 2 h ago. */
  readonly succeeded: string;
  /** orders, step 1 succeeded, step 2 failed then died, 30 min ago. */
  readonly dead: string;
  /** orders, step 1 failed, retrying in an hour. */
  readonly retrying: string;
  /** billing, died on its first step 10 min ago. */
  readonly deadBilling: string;
  /** billing, never claimed. */
  readonly queued: string;
}

/** An event as the fixture accepts it; `stepCount` only when the fixture records integrations' step counts. */
export function fixtureEvent(integration: string, key: string, receivedAt: number, type = 'order.created', stepCount?: number): NewEvent {
  return { integration, eventKey: key, type, source: 'webhook', payload: { id: key, order: { total: 42 } }, receivedAt, revision: 'rev-1', ...(stepCount === undefined ? {} : { stepCount }) };
}

/** A stored (already redacted) request. */
export function fixtureRequest(text: string) {
  return {
    method: 'POST',
    url: 'https://api.acme.test/notes',
    headers: { authorization: '[redacted]', 'content-type': 'application/json', 'idempotency-key': `key-${text}` },
    body: { text },
  };
}

/** A step record written by `fixtureOwner`. */
export function fixtureStep(runId: string, now: number, index: number, stepId: string, attempt: StepResult['attempt'], stepState: StepResult['step'], runState: StepResult['run']): StepResult {
  return { runId, owner: fixtureOwner, now, stepIndex: index, stepId, attempt, step: stepState, run: runState };
}

/**
 * Builds a state file (closed again) in a new temporary folder, with one run in each interesting
 * state, received (in this order, which is also the order of `seq`) 3 h, 2 h, 30 min, 20 min,
 * 10 min and 1 min before now. Stored bodies and messages hold terminal escapes, for the commands
 * that must print them escaped. `stepCounts: false` leaves the runs' step counts unknown (runs
 * accepted before the store recorded them).
 */
export async function buildRunsFixture(options: { readonly stepCounts?: boolean } = {}): Promise<RunsFixture> {
  const dir = makeTempDir('runs');
  const path = join(dir, 'state.db');
  const base = Date.now();
  const count = (integration: string) => (options.stepCounts === false ? undefined : integration === 'orders' ? 2 : 1);
  const event = (integration: string, key: string, receivedAt: number, type?: string) => fixtureEvent(integration, key, receivedAt, type, count(integration));
  const request = fixtureRequest;
  const step = fixtureStep;
  const ok = (written: boolean) => {
    if (!written) throw new Error('fixture step not recorded');
  };
  const store = await openSqliteStore(path);
  try {
    await store.recordRevision({ id: 'rev-1', appliedAt: base - 4 * hourMs, integrations: ['billing', 'orders'] });
    const accepted = await store.acceptEvents([
      event('billing', 'evt_old', base - 3 * hourMs, 'invoice.paid'),
      event('orders', 'evt_ok', base - 2 * hourMs),
      event('orders', 'evt_dead', base - 30 * minuteMs),
      event('orders', 'evt_retry', base - 20 * minuteMs),
      event('billing', 'evt_dead_billing', base - 10 * minuteMs, 'invoice.paid'),
    ]);
    const [oldSucceeded, succeeded, dead, retrying, deadBilling] = accepted.map((a) => a.runId) as [string, string, string, string, string];
    const claimed = await store.claimRuns({ owner: fixtureOwner, now: base - minuteMs, leaseMs: 24 * hourMs, capacity: new Map([['orders', 10], ['billing', 10]]) });
    if (claimed.length !== 5) throw new Error(`fixture claimed ${claimed.length} runs, not 5`);
    let t = base - 3 * hourMs;
    ok(await store.recordStep(step(oldSucceeded, t + 1000, 0, 'charge', { startedAt: t + 500, durationMs: 12, outcome: 'succeeded', request: request('old'), response: { status: 200, body: { id: 'in_1' } }, status: 200 }, { status: 'succeeded', output: { id: 'in_1' } }, { status: 'succeeded' })));
    t = base - 2 * hourMs;
    ok(await store.recordStep(step(succeeded, t + 100, 0, 'fetch', { startedAt: t + 50, durationMs: 40, outcome: 'succeeded', request: request('fetch-ok'), response: { status: 200, body: { id: 'n_1' } }, status: 200 }, { status: 'succeeded', output: { id: 'n_1' } }, { status: 'running', nextStep: 1 })));
    ok(await store.recordStep(step(succeeded, t + 200, 1, 'notify', { startedAt: t + 150, durationMs: 30, outcome: 'succeeded', request: request('notify-ok'), response: { status: 201, body: { id: 'n_2' } }, status: 201 }, { status: 'succeeded', output: { id: 'n_2' } }, { status: 'succeeded' })));
    t = base - 30 * minuteMs;
    ok(await store.recordStep(step(dead, t + 100, 0, 'fetch', { startedAt: t + 50, durationMs: 41, outcome: 'succeeded', request: request('fetch-dead'), response: { status: 200, body: { id: 'n_3' } }, status: 200 }, { status: 'succeeded', output: { id: 'n_3' } }, { status: 'running', nextStep: 1 })));
    ok(await store.recordStep(step(dead, t + 200, 1, 'notify', { startedAt: t + 150, durationMs: 503, outcome: 'failed', request: request('notify-1'), response: { status: 503, body: { error: 'busy' } }, status: 503, errorCode: 'PB_HTTP_UNAVAILABLE', errorMessage: 'the provider answered 503', retryAt: t + 1150 }, { status: 'pending' }, { status: 'running', nextStep: 1 })));
    ok(await store.recordStep(step(dead, t + 2000, 1, 'notify', { startedAt: t + 1200, durationMs: 77, outcome: 'dead', request: request('notify-2'), response: { status: 422, body: { error: 'bad \u001b[31mred\u001b[0m text \u009b2J' } }, status: 422, errorCode: 'PB_PROVIDER_ERROR', errorMessage: 'rejected: \u001b[2Jcleared' }, { status: 'dead' }, { status: 'dead', errorCode: 'PB_PROVIDER_ERROR', errorMessage: 'rejected: \u001b[2Jcleared', errorStep: 'notify' })));
    t = base - 20 * minuteMs;
    ok(await store.recordStep(step(retrying, t + 100, 0, 'fetch', { startedAt: t + 50, durationMs: 5, outcome: 'failed', request: request('retry-1'), response: { status: 500, body: {} }, status: 500, errorCode: 'PB_HTTP_SERVER_ERROR', errorMessage: 'the provider answered 500', retryAt: base + hourMs }, { status: 'pending' }, { status: 'retrying', availableAt: base + hourMs })));
    t = base - 10 * minuteMs;
    ok(await store.recordStep(step(deadBilling, t + 100, 0, 'charge', { startedAt: t + 50, durationMs: 9, outcome: 'dead', request: request('charge'), response: { status: 400, body: { error: 'no' } }, status: 400, errorCode: 'PB_PROVIDER_ERROR', errorMessage: 'card declined' }, { status: 'dead' }, { status: 'dead', errorCode: 'PB_PROVIDER_ERROR', errorMessage: 'card declined', errorStep: 'charge' })));
    const [queuedEvent] = await store.acceptEvents([event('billing', 'evt_queued', base - minuteMs, 'invoice.paid')]);
    return { path, base, oldSucceeded, succeeded, dead, retrying, deadBilling, queued: queuedEvent!.runId };
  } finally {
    await store.close();
  }
}

/** The daemon status the fixture's server reports: orders running, billing broken, mail disabled. */
export function fixtureStatus(base: number, draining = false): DaemonStatus {
  return {
    revision: 'rev-1',
    startedAt: base - 5 * minuteMs,
    draining,
    version: '0.1.0',
    integrations: [
      { name: 'billing', trigger: 'webhook', enabled: true, state: 'broken', error: { code: 'PB_INTEGRATION_BROKEN', message: 'connection "stripe" does not open: STRIPE_KEY is not set' } },
      { name: 'mail', trigger: 'schedule', enabled: false, state: 'disabled' },
      { name: 'orders', trigger: 'poll', enabled: true, state: 'running' },
    ],
  };
}

export interface AdminServer {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * A node:http server on 127.0.0.1:0 that hands `/admin/…` and `/metrics` to the admin handler
 * (as the daemon's server does) and answers `/healthz` itself.
 */
export async function startAdminServer(options: AdminHandlerOptions): Promise<AdminServer> {
  const handler = createAdminHandler(options);
  const server: Server = createServer((req, res) => {
    const target = req.url ?? '/';
    const pathname = target.split('?')[0]!;
    if (isAdminPath(target)) {
      void handler(req, res, target);
      return;
    }
    res.statusCode = pathname === '/healthz' ? 200 : 404;
    res.end(pathname === '/healthz' ? 'ok' : 'not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error === undefined ? resolve() : reject(error)));
      }),
  };
}
