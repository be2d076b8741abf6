import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseAdminAuthSettings } from '../../engine/daemon/admin/auth.js';
import type { IntegrationBody, RunDetailBody, RunsPageBody, StatusBody } from '../../engine/daemon/admin/api.js';
import { ManualClock } from '../../engine/lib/clock.js';
import { openSqliteStore } from '../../engine/store/sqlite/sqlite-store.js';
import type { StateStore } from '../../engine/store/state-store.js';
import { buildRunsFixture, fixtureStatus, minuteMs, startAdminServer, type AdminServer, type RunsFixture } from './admin-fixture.js';

// Every admin route through a real node:http server over a real SQLite state file.

const token = `adm_${randomBytes(24).toString('hex')}`;
const auth = parseAdminAuthSettings({ PATCHBAY_ADMIN_TOKEN: token });

let fixture: RunsFixture;
let store: StateStore;
let server: AdminServer;
let clock: ManualClock;

beforeEach(async () => {
  fixture = await buildRunsFixture();
  store = await openSqliteStore(fixture.path);
  clock = new ManualClock(fixture.base);
  server = await startAdminServer({ store, auth, status: () => fixtureStatus(fixture.base, true), clock });
});

afterEach(async () => {
  await server.close();
  await store.close();
});

async function call<T = Record<string, unknown>>(method: string, path: string, body?: string) {
  const response = await fetch(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${token}` }, ...(body === undefined ? {} : { body }) });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: JSON.parse(text) as T & { error: { code: string; message: string } } };
}

describe('GET /admin/v1/status and /integrations', () => {
  it('reports the daemon, each integration with trigger, state and error, and run counts from the store', async () => {
    const result = await call<StatusBody>('GET', '/admin/v1/status');
    expect(result.status).toBe(200);
    expect(result.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(result.headers.get('cache-control')).toBe('no-store');
    const body = result.body;
    expect(body).toMatchObject({ revision: 'rev-1', startedAt: new Date(fixture.base - 5 * minuteMs).toISOString(), draining: true, version: '0.1.0' });
    expect(body.runs).toEqual({ queued: 1, running: 0, retrying: 1, succeeded: 2, dead: 2 });
    expect(body.integrations.map((i) => [i.name, i.trigger, i.state])).toEqual([
      ['billing', 'webhook', 'broken'],
      ['mail', 'schedule', 'disabled'],
      ['orders', 'poll', 'running'],
    ]);
    const billing = body.integrations[0]!;
    expect(billing.error).toEqual({ code: 'PB_INTEGRATION_BROKEN', message: 'connection "stripe" does not open: STRIPE_KEY is not set' });
    expect(billing.runs).toEqual({ queued: 1, running: 0, retrying: 0, succeeded: 1, dead: 1 });
    expect(body.integrations[1]!.error).toBeNull();
    expect(body.integrations[1]!.runs.succeeded).toBe(0);
  });

  it('lists integrations, one by name, and lists an integration that has runs but left the plan with null state', async () => {
    await store.acceptEvents([{ integration: 'legacy', eventKey: 'e1', source: 'manual', payload: {}, receivedAt: fixture.base, revision: 'rev-0' }]);
    const list = await call<{ integrations: IntegrationBody[] }>('GET', '/admin/v1/integrations');
    expect(list.body.integrations.map((i) => i.name)).toEqual(['billing', 'mail', 'orders', 'legacy']);
    expect(list.body.integrations[3]).toMatchObject({ name: 'legacy', trigger: null, state: null, runs: { queued: 1 } });
    const one = await call<IntegrationBody>('GET', '/admin/v1/integrations/orders');
    expect(one.body).toMatchObject({ name: 'orders', trigger: 'poll', state: 'running', enabled: true, runs: { succeeded: 1, dead: 1, retrying: 1 } });
    const missing = await call('GET', '/admin/v1/integrations/nope');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('PB_ADMIN_NOT_FOUND');
  });
});

describe('GET /admin/v1/runs', () => {
  const ids = (page: RunsPageBody) => page.runs.map((item) => item.run.id);

  it('lists runs newest first with progress, filtered by integration, status, since, and paged with before', async () => {
    const all = await call<RunsPageBody>('GET', '/admin/v1/runs');
    expect(all.status).toBe(200);
    expect(ids(all.body)).toEqual([fixture.queued, fixture.deadBilling, fixture.retrying, fixture.dead, fixture.succeeded, fixture.oldSucceeded]);
    expect(all.body.nextBefore).toBeNull();
    const dead = all.body.runs.find((item) => item.run.id === fixture.dead)!;
    expect(dead.progress).toEqual({ finishedSteps: 1, totalSteps: 2, attempts: 3 });
    expect(dead.run).toMatchObject({ status: 'dead', errorCode: 'PB_PROVIDER_ERROR', errorStep: 'notify', leaseOwner: null });
    expect(ids((await call<RunsPageBody>('GET', '/admin/v1/runs?integration=orders&status=dead')).body)).toEqual([fixture.dead]);
    expect(ids((await call<RunsPageBody>('GET', `/admin/v1/runs?since=${fixture.base - 15 * minuteMs}`)).body)).toEqual([fixture.queued, fixture.deadBilling]);
    expect(ids((await call<RunsPageBody>('GET', `/admin/v1/runs?since=${new Date(fixture.base - 15 * minuteMs).toISOString()}`)).body)).toEqual([fixture.queued, fixture.deadBilling]);
    const first = await call<RunsPageBody>('GET', '/admin/v1/runs?limit=4');
    expect(ids(first.body)).toEqual([fixture.queued, fixture.deadBilling, fixture.retrying, fixture.dead]);
    expect(first.body.nextBefore).toBe(first.body.runs[3]!.run.seq);
    const second = await call<RunsPageBody>('GET', `/admin/v1/runs?limit=4&before=${first.body.nextBefore}`);
    expect(ids(second.body)).toEqual([fixture.succeeded, fixture.oldSucceeded]);
    expect(second.body.nextBefore).toBeNull();
  });

  it('answers 400 PB_ADMIN_BAD_REQUEST for a bad status, limit, since, before, or an unknown or repeated parameter', async () => {
    for (const query of ['status=daed', 'limit=0', 'limit=1001', 'limit=ten', 'since=yesterday', 'before=-1', 'integration=', 'sort=asc', 'status=dead&status=queued']) {
      const result = await call('GET', `/admin/v1/runs?${query}`);
      expect(result.status, query).toBe(400);
      expect(result.body.error.code, query).toBe('PB_ADMIN_BAD_REQUEST');
    }
    expect((await call('GET', '/admin/v1/runs?limit=1000')).status).toBe(200);
    expect((await call('GET', '/admin/v1/status?verbose=1')).status).toBe(400);
  });
});

describe('GET /admin/v1/runs/:id', () => {
  it('answers the run with its steps, attempts and payload as stored', async () => {
    const result = await call<RunDetailBody>('GET', `/admin/v1/runs/${fixture.dead}`);
    expect(result.status).toBe(200);
    expect(result.body.run.id).toBe(fixture.dead);
    expect(result.body.steps.map((s) => [s.stepId, s.status])).toEqual([
      ['fetch', 'succeeded'],
      ['notify', 'dead'],
    ]);
    expect(result.body.attempts.map((a) => a.outcome)).toEqual(['succeeded', 'failed', 'dead']);
    expect(result.body.attempts[1]).toMatchObject({ status: 503, errorCode: 'PB_HTTP_UNAVAILABLE', request: { headers: { authorization: '[redacted]' } } });
    expect(result.body.payload).toEqual({ id: 'evt_dead', order: { total: 42 } });
  });

  it('answers 404 PB_RUN_NOT_FOUND with a suggestion for an unknown id', async () => {
    const result = await call('GET', `/admin/v1/runs/${fixture.dead.slice(0, -1)}`);
    expect(result.status).toBe(404);
    expect(result.body.error.code).toBe('PB_RUN_NOT_FOUND');
    expect(result.body.error.message).toContain(`did you mean "${fixture.dead}"`);
  });
});

describe('retry', () => {
  it('POST /admin/v1/runs/:id/retry queues a dead letter; a run that is not dead is 409 PB_RUN_NOT_DEAD, an unknown one 404', async () => {
    const result = await call('POST', `/admin/v1/runs/${fixture.dead}/retry`);
    expect(result.status).toBe(200);
    expect(result.body).toEqual({ queued: 1, replayed: [fixture.dead], skipped: [] });
    const run = await store.getRun(fixture.dead);
    expect(run).toMatchObject({ status: 'queued', replays: 1, availableAt: fixture.base });
    const again = await call('POST', `/admin/v1/runs/${fixture.dead}/retry`);
    expect(again.status).toBe(409);
    expect(again.body.error).toEqual({ code: 'PB_RUN_NOT_DEAD', message: `run ${fixture.dead} is queued, not dead: skipped` });
    expect((await call('POST', '/admin/v1/runs/run_nope/retry')).status).toBe(404);
  });

  it('POST /admin/v1/runs/retry replays every dead run of an integration, every dead run, or named ids', async () => {
    const billing = await call('POST', '/admin/v1/runs/retry', JSON.stringify({ integration: 'billing' }));
    expect(billing.status).toBe(200);
    expect(billing.body).toEqual({ queued: 1, replayed: [fixture.deadBilling], skipped: [] });
    expect((await store.getRun(fixture.dead))?.status).toBe('dead');
    const rest = await call('POST', '/admin/v1/runs/retry');
    expect(rest.body).toEqual({ queued: 1, replayed: [fixture.dead], skipped: [] });
    const named = await call<{ skipped: { id: string; code: string }[] }>('POST', '/admin/v1/runs/retry', JSON.stringify({ ids: [fixture.succeeded, 'run_missing'] }));
    expect(named.status).toBe(200);
    expect(named.body.skipped.map((s) => [s.id, s.code])).toEqual([
      [fixture.succeeded, 'PB_RUN_NOT_DEAD'],
      ['run_missing', 'PB_RUN_NOT_FOUND'],
    ]);
  });

  it('replays more dead letters than one batch', async () => {
    const events = Array.from({ length: 1203 }, (_, i) => ({ integration: 'bulk', eventKey: `b${i}`, source: 'manual', payload: {}, receivedAt: fixture.base, revision: 'rev-1' }));
    const accepted = await store.acceptEvents(events);
    const claimed = await store.claimRuns({ owner: 'o', now: fixture.base, leaseMs: 60_000, capacity: new Map([['bulk', 2000]]) });
    expect(claimed).toHaveLength(1203);
    for (const { runId } of accepted) {
      await store.recordStep({ runId, owner: 'o', now: fixture.base, stepIndex: 0, stepId: 's', attempt: { startedAt: fixture.base, durationMs: 1, outcome: 'dead', errorCode: 'PB_PROVIDER_ERROR', errorMessage: 'no' }, step: { status: 'dead' }, run: { status: 'dead', errorCode: 'PB_PROVIDER_ERROR', errorMessage: 'no', errorStep: 's' } });
    }
    const result = await call<{ queued: number }>('POST', '/admin/v1/runs/retry', JSON.stringify({ integration: 'bulk' }));
    expect(result.body.queued).toBe(1203);
    expect((await store.countRuns()).find((c) => c.integration === 'bulk' && c.status === 'dead')).toBeUndefined();
  });

  it('refuses a malformed body with 400', async () => {
    for (const body of ['{not json', '[]', JSON.stringify({ ids: [], integration: 'x' }), JSON.stringify({ ids: [] }), JSON.stringify({ ids: [1] }), JSON.stringify({ integrations: 'billing' }), JSON.stringify({ ids: Array.from({ length: 1001 }, (_, i) => `r${i}`) })]) {
      const result = await call('POST', '/admin/v1/runs/retry', body);
      expect(result.status, body.slice(0, 40)).toBe(400);
      expect(result.body.error.code).toBe('PB_ADMIN_BAD_REQUEST');
    }
    expect((await store.getRun(fixture.dead))?.status).toBe('dead');
  });
});

describe('errors', () => {
  it('answers 405 with Allow for a wrong method, 404 for an unknown route', async () => {
    const wrong = await call('DELETE', '/admin/v1/runs');
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('GET');
    expect(wrong.body.error.code).toBe('PB_ADMIN_METHOD');
    const get = await call('GET', '/admin/v1/runs/retry');
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    expect((await call('POST', '/admin/v1/status')).headers.get('allow')).toBe('GET');
    const unknown = await call('GET', '/admin/v1/things');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('PB_ADMIN_NOT_FOUND');
    // /metrics without a DaemonMetrics is not served.
    expect((await call('GET', '/metrics')).status).toBe(404);
  });

  it('answers 503 PB_ADMIN_STORE_TIMEOUT when the store does not answer in time, and keeps serving', async () => {
    let hang = true;
    const slow: StateStore = Object.create(store, {
      countRuns: { value: () => (hang ? new Promise(() => undefined) : store.countRuns()) },
    }) as StateStore;
    const slowServer = await startAdminServer({ store: slow, auth, status: () => fixtureStatus(fixture.base), readTimeoutMs: 200 });
    try {
      const started = Date.now();
      const response = await fetch(`${slowServer.url}/admin/v1/status`, { headers: { authorization: `Bearer ${token}` } });
      expect(response.status).toBe(503);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('PB_ADMIN_STORE_TIMEOUT');
      hang = false;
      expect((await fetch(`${slowServer.url}/admin/v1/status`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    } finally {
      await slowServer.close();
    }
  });

  it('answers 500 PB_INTERNAL without the message for an unexpected error, and 503 for a transient store error', async () => {
    const broken: StateStore = Object.create(store, {
      getRun: { value: () => Promise.reject(new Error('secret-ish internal detail')) },
    }) as StateStore;
    const brokenServer = await startAdminServer({ store: broken, auth, status: () => fixtureStatus(fixture.base) });
    try {
      const response = await fetch(`${brokenServer.url}/admin/v1/runs/${fixture.dead}`, { headers: { authorization: `Bearer ${token}` } });
      expect(response.status).toBe(500);
      const text = await response.text();
      expect(text).toContain('PB_INTERNAL');
      expect(text).not.toContain('secret-ish');
    } finally {
      await brokenServer.close();
    }
    await store.close();
    const closed = await fetch(`${server.url}/admin/v1/status`, { headers: { authorization: `Bearer ${token}` } });
    expect(closed.status).toBe(503);
    expect(((await closed.json()) as { error: { code: string } }).error.code).toBe('PB_STATE_CLOSED');
    store = await openSqliteStore(fixture.path);
  });
});
