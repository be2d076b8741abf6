import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { parseAdminAuthSettings } from '../../engine/daemon/admin/auth.js';
import { DaemonMetrics } from '../../engine/daemon/metrics.js';
import { ManualClock } from '../../engine/lib/clock.js';
import { MemoryLogger } from '../../engine/lib/log.js';
import { openSqliteStore } from '../../engine/store/sqlite/sqlite-store.js';
import type { RunCounts } from '../../engine/store/state-store.js';
import { ledgerIntegration, startTestEngine } from '../executor/harness.js';
import { Sink } from '../executor/sink.js';
import { buildRunsFixture, fixtureStatus, startAdminServer } from './admin-fixture.js';

// The daemon's Prometheus metrics: exposition text that parses, counters that move when fed,
// bounded labels, queue depth read from a real store within a time limit, a private registry.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/**
 * Parses Prometheus text exposition (format 0.0.4): `# HELP`/`# TYPE` lines and samples
 * `name{label="value",…} number`. Throws on any line that is neither.
 */
function parseExposition(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type !== null) {
      types.set(type[1]!, type[2]!);
      continue;
    }
    if (/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*$/.test(line)) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/i.exec(line);
    if (sample === null) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const match of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[match[1]!] = match[2]!.replace(/\\(.)/g, '$1');
    samples.push({ name: sample[1]!, labels, value: Number(sample[3]) });
  }
  return { samples, types };
}

function value(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

async function scrape(metrics: DaemonMetrics): Promise<Sample[]> {
  const { contentType, body } = await metrics.render();
  expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(body).samples;
}

describe('DaemonMetrics', () => {
  it('counts events, rejections, runs, dead letters, attempts, retries and rate-limit waits, with bounded labels', async () => {
    const metrics = new DaemonMetrics({ processMetrics: false });
    metrics.setIntegrations(['orders', 'billing']);
    const before = await scrape(metrics);
    expect(value(before, 'patchbay_webhook_events_received_total', { integration: 'orders' })).toBeUndefined();

    metrics.eventReceived('orders', 'webhook');
    metrics.eventReceived('orders', 'webhook');
    metrics.eventReceived('billing', 'poll');
    metrics.eventReceived('attacker-chosen-name', 'webhook');
    metrics.eventReceived('orders', 'carrier-pigeon');
    metrics.eventRejected('orders', 'PB_WEBHOOK_BAD_SIGNATURE');
    metrics.eventRejected(undefined, 'PB_WEBHOOK_UNKNOWN_INTEGRATION');
    metrics.eventRejected('orders', 'made up reason');
    metrics.eventRejected('orders', 'toString');
    metrics.onRunSettled({ runId: 'r1', integration: 'orders', outcome: 'succeeded' });
    metrics.onRunSettled({ runId: 'r2', integration: 'orders', outcome: 'dead' });
    metrics.onRunSettled({ runId: 'r3', integration: 'gone', outcome: 'dead' });
    metrics.onAttempt({ runId: 'r1', integration: 'orders', step: 'charge', attempt: 1, outcome: 'retrying', code: 'PB_HTTP_SERVER_ERROR', durationMs: 250 });
    metrics.onAttempt({ runId: 'r1', integration: 'orders', step: 'charge', attempt: 2, outcome: 'succeeded', durationMs: 40 });
    metrics.onAttempt({ runId: 'r1', integration: 'orders', step: 'charge', attempt: 3, outcome: 'interrupted', durationMs: 0 });
    metrics.onRateLimitWait({ runId: 'r1', integration: 'orders', step: 'charge', waitMs: 1500, deferred: false });
    metrics.onRateLimitWait({ runId: 'r1', integration: 'orders', step: 'charge', waitMs: 60_000, deferred: true });

    const after = await scrape(metrics);
    expect(value(after, 'patchbay_webhook_events_received_total', { integration: 'orders', source: 'webhook' })).toBe(2);
    expect(value(after, 'patchbay_webhook_events_received_total', { integration: 'billing', source: 'poll' })).toBe(1);
    expect(value(after, 'patchbay_webhook_events_received_total', { integration: '(unknown)', source: 'webhook' })).toBe(1);
    expect(value(after, 'patchbay_webhook_events_received_total', { integration: 'orders', source: '(other)' })).toBe(1);
    expect(value(after, 'patchbay_webhook_events_rejected_total', { integration: 'orders', reason: 'PB_WEBHOOK_BAD_SIGNATURE' })).toBe(1);
    expect(value(after, 'patchbay_webhook_events_rejected_total', { integration: '(unknown)', reason: 'PB_WEBHOOK_UNKNOWN_INTEGRATION' })).toBe(1);
    expect(value(after, 'patchbay_webhook_events_rejected_total', { integration: 'orders', reason: '(other)' })).toBe(2);
    expect(value(after, 'patchbay_runs_total', { integration: 'orders', outcome: 'succeeded' })).toBe(1);
    expect(value(after, 'patchbay_runs_total', { integration: 'orders', outcome: 'dead' })).toBe(1);
    expect(value(after, 'patchbay_dead_letters_total', { integration: 'orders' })).toBe(1);
    expect(value(after, 'patchbay_dead_letters_total', { integration: '(unknown)' })).toBe(1);
    expect(value(after, 'patchbay_step_retries_total', { integration: 'orders', step: 'charge' })).toBe(2);
    expect(value(after, 'patchbay_step_duration_seconds_count', { integration: 'orders', step: 'charge', outcome: 'retrying' })).toBe(1);
    expect(value(after, 'patchbay_step_duration_seconds_sum', { integration: 'orders', step: 'charge', outcome: 'retrying' })).toBeCloseTo(0.25);
    expect(value(after, 'patchbay_step_duration_seconds_bucket', { integration: 'orders', step: 'charge', outcome: 'succeeded', le: '0.05' })).toBe(1);
    expect(value(after, 'patchbay_step_duration_seconds_bucket', { integration: 'orders', step: 'charge', outcome: 'succeeded', le: '0.025' })).toBe(0);
    expect(value(after, 'patchbay_rate_limit_wait_seconds_sum', { integration: 'orders', deferred: 'false' })).toBeCloseTo(1.5);
    expect(value(after, 'patchbay_rate_limit_wait_seconds_count', { integration: 'orders', deferred: 'true' })).toBe(1);
    // Unknown integrations never create their own series.
    expect(after.some((s) => Object.values(s.labels).includes('attacker-chosen-name') || Object.values(s.labels).includes('gone'))).toBe(false);
  });

  it('caps the step labels of an integration', async () => {
    const metrics = new DaemonMetrics({ processMetrics: false, maxStepsPerIntegration: 3 });
    metrics.setIntegrations(['orders']);
    for (let i = 0; i < 10; i++) metrics.onAttempt({ runId: 'r', integration: 'orders', step: `s${i}`, attempt: 1, outcome: 'succeeded', durationMs: 1 });
    const steps = new Set((await scrape(metrics)).filter((s) => s.name === 'patchbay_step_duration_seconds_count').map((s) => s.labels.step));
    expect([...steps].sort()).toEqual(['(other)', 's0', 's1', 's2']);
  });

  it('reads queue depth from a real store at scrape time, zero-filled for the plan, and keeps its own registry', async () => {
    const fixture = await buildRunsFixture();
    const store = await openSqliteStore(fixture.path);
    cleanups.push(() => store.close());
    const metrics = new DaemonMetrics({ countRuns: () => store.countRuns() });
    metrics.setIntegrations(['orders', 'billing', 'mail']);
    let samples = await scrape(metrics);
    expect(value(samples, 'patchbay_queue_depth', { integration: 'billing', status: 'queued' })).toBe(1);
    expect(value(samples, 'patchbay_queue_depth', { integration: 'orders', status: 'retrying' })).toBe(1);
    expect(value(samples, 'patchbay_queue_depth', { integration: 'mail', status: 'queued' })).toBe(0);
    expect(samples.some((s) => s.name === 'patchbay_queue_depth' && (s.labels.status === 'succeeded' || s.labels.status === 'dead'))).toBe(false);
    await store.acceptEvents([{ integration: 'orders', eventKey: 'new', source: 'webhook', payload: {}, receivedAt: fixture.base, revision: 'rev-1' }]);
    samples = await scrape(metrics);
    expect(value(samples, 'patchbay_queue_depth', { integration: 'orders', status: 'queued' })).toBe(1);
    // Process metrics are on the private registry; a second instance starts from zero.
    expect(value(samples, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    metrics.eventReceived('orders', 'webhook');
    const other = new DaemonMetrics({ processMetrics: false });
    other.setIntegrations(['orders']);
    expect(value(await scrape(other), 'patchbay_webhook_events_received_total', { integration: 'orders', source: 'webhook' })).toBeUndefined();
  });

  it('answers a scrape in time when the store hangs or fails, keeping the last queue depth', async () => {
    let mode: 'ok' | 'hang' | 'fail' = 'ok';
    const counts: RunCounts[] = [{ integration: 'orders', status: 'queued', count: 7 }];
    const logger = new MemoryLogger();
    const metrics = new DaemonMetrics({
      processMetrics: false,
      countTimeoutMs: 100,
      logger,
      countRuns: () => (mode === 'ok' ? Promise.resolve(counts) : mode === 'hang' ? new Promise(() => undefined) : Promise.reject(new Error('disk on fire'))),
    });
    metrics.setIntegrations(['orders']);
    expect(value(await scrape(metrics), 'patchbay_queue_depth', { integration: 'orders', status: 'queued' })).toBe(7);
    mode = 'hang';
    const started = Date.now();
    const stale = await scrape(metrics);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(value(stale, 'patchbay_queue_depth', { integration: 'orders', status: 'queued' })).toBe(7);
    expect(value(stale, 'patchbay_queue_depth_read_failures_total')).toBe(1);
    mode = 'fail';
    expect(value(await scrape(metrics), 'patchbay_queue_depth_read_failures_total')).toBe(2);
    expect(logger.lines.map((line) => line.fields.code)).toEqual(['PB_ADMIN_STORE_TIMEOUT', 'PB_INTERNAL']);
  });
});

describe('/metrics', () => {
  it('is served by the admin handler to a read credential only, and its counters move with the executor hooks of a real engine', async () => {
    const sink = await new Sink((delivery) => (delivery.path === '/notify' ? { status: 400, body: '{}' } : undefined)).start();
    cleanups.push(() => sink.close());
    const metrics = new DaemonMetrics({ processMetrics: false });
    const steps = `    - id: record
      call: ledger.entries.create
      with: { account: "{{ event.data.account }}", amount: "{{ event.data.amount }}" }
    - id: notify
      if: "event.data.amount > 100"
      call: ledger.notify.send
      with: { to: "{{ event.data.account }}", text: hello }`;
    const env = { LEDGER_TOKEN: `ldg_test_${randomBytes(8).toString('hex')}`, LEDGER_WEBHOOK_SECRET: 'whsec_test_metrics' };
    const engine = await startTestEngine({
      integrations: { books: ledgerIntegration({ name: 'books', origin: sink.origin, steps }) },
      env,
      clock: new ManualClock(),
      executor: { onRunSettled: metrics.onRunSettled, onAttempt: metrics.onAttempt, onRateLimitWait: metrics.onRateLimitWait },
    });
    cleanups.push(() => engine.close());
    metrics.setIntegrations(['books']);
    const readToken = `rd_${randomBytes(20).toString('hex')}`;
    const server = await startAdminServer({ store: engine.store, auth: parseAdminAuthSettings({ PATCHBAY_ADMIN_READ_TOKEN: readToken }), metrics, status: () => fixtureStatus(Date.now()) });
    cleanups.push(() => server.close());
    const get = async () => {
      const response = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${readToken}` } });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
      return parseExposition(await response.text());
    };

    expect((await fetch(`${server.url}/metrics`)).status).toBe(401);
    const first = await get();
    expect(first.types.get('patchbay_step_duration_seconds')).toBe('histogram');
    expect(first.types.get('patchbay_runs_total')).toBe('counter');
    expect(value(first.samples, 'patchbay_runs_total', { integration: 'books', outcome: 'succeeded' })).toBeUndefined();

    await engine.executor.submit([
      { integration: 'books', eventKey: 'evt_small', payload: { id: 'evt_small', data: { account: 'a1', amount: 5 } } },
      { integration: 'books', eventKey: 'evt_big', payload: { id: 'evt_big', data: { account: 'a2', amount: 500 } } },
    ]);
    await engine.executor.drain();
    const second = (await get()).samples;
    expect(value(second, 'patchbay_runs_total', { integration: 'books', outcome: 'succeeded' })).toBe(1);
    expect(value(second, 'patchbay_runs_total', { integration: 'books', outcome: 'dead' })).toBe(1);
    expect(value(second, 'patchbay_dead_letters_total', { integration: 'books' })).toBe(1);
    expect(value(second, 'patchbay_step_duration_seconds_count', { integration: 'books', step: 'record', outcome: 'succeeded' })).toBe(2);
    expect(value(second, 'patchbay_step_duration_seconds_count', { integration: 'books', step: 'notify', outcome: 'skipped' })).toBe(1);
    expect(value(second, 'patchbay_step_duration_seconds_count', { integration: 'books', step: 'notify', outcome: 'dead' })).toBe(1);
  });
});
