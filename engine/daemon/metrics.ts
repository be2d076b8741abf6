import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { codes } from '../diag/codes.js';
import { PatchbayError } from '../diag/errors.js';
import type { AttemptObserved, RateLimitWaitObserved, RunSettled } from '../executor/executor.js';
import { silentLogger, type Logger } from '../lib/log.js';
import type { RunCounts } from '../store/state-store.js';

/**
 * The daemon's Prometheus metrics, on a registry of its own (never prom-client's global one, so
 * two daemons in one process, or a test, never share counters).
 *
 * Label values are bounded: integration names are those of the applied plan (`setIntegrations`;
 * anything else is `(unknown)`), reasons are codes of the error table, outcomes and sources come
 * from fixed lists (else `(other)`), and at most `maxStepsPerIntegration` step ids per
 * integration are labelled (the rest `(other)`), so no sender can grow the series without end.
 */

/** Label value for an integration that is not in the applied plan. */
export const unknownLabel = '(unknown)';
/** Label value for a value outside a fixed list. */
export const otherLabel = '(other)';

const sources = new Set(['webhook', 'poll', 'schedule', 'manual']);
const runOutcomes = new Set(['succeeded', 'dead', 'retrying', 'deferred', 'lost']);
const attemptOutcomes = new Set(['succeeded', 'skipped', 'retrying', 'failed', 'dead', 'interrupted']);
/** Statuses counted as queue depth: the runs not finished. */
const queueStatuses = ['queued', 'running', 'retrying'] as const;

export interface DaemonMetricsOptions {
  /** Counts of runs by integration and status, read at each scrape (the store's `countRuns`). */
  readonly countRuns?: () => Promise<readonly RunCounts[]>;
  /** Time limit of `countRuns` during a scrape; past it the last counts are kept. @default 2_000 */
  readonly countTimeoutMs?: number;
  /** Add Node.js process metrics (CPU, memory, event loop lag, GC). @default true */
  readonly processMetrics?: boolean;
  /** Step ids labelled per integration before the rest collapse to `(other)`. @default 100 */
  readonly maxStepsPerIntegration?: number;
  /** Where a failed or slow queue-depth read is reported. @default silentLogger */
  readonly logger?: Logger;
}

/**
 * Counters, histograms and gauges of one daemon. Every method is synchronous and never throws,
 * so the executor hooks (`onRunSettled`, `onAttempt`, `onRateLimitWait`, bound properties that
 * can be passed as they are) and the ingress can call them on their hot paths.
 */
const triggerOutcomes = new Set(['succeeded', 'partial', 'failed', 'fired', 'skipped']);

export class DaemonMetrics {
  readonly registry = new Registry();
  private integrations: ReadonlySet<string> = new Set();
  private readonly steps = new Map<string, Set<string>>();
  private readonly maxSteps: number;
  private readonly countTimeoutMs: number;
  private readonly logger: Logger;
  private readonly received: Counter<'integration' | 'source'>;
  private readonly rejected: Counter<'integration' | 'reason'>;
  private readonly runs: Counter<'integration' | 'outcome'>;
  private readonly stepDuration: Histogram<'integration' | 'step' | 'outcome'>;
  private readonly retries: Counter<'integration' | 'step'>;
  private readonly deadLetters: Counter<'integration'>;
  private readonly rateLimitWaits: Histogram<'integration' | 'deferred'>;
  private readonly queueReadFailures: Counter;
  private readonly triggerRuns: Counter<'integration' | 'kind' | 'outcome'>;
  private readonly queueDepth: Gauge<'integration' | 'status'>;
  private readonly countRuns: (() => Promise<readonly RunCounts[]>) | undefined;

  constructor(options: DaemonMetricsOptions = {}) {
    this.maxSteps = options.maxStepsPerIntegration ?? 100;
    this.countTimeoutMs = options.countTimeoutMs ?? 2_000;
    this.logger = options.logger ?? silentLogger;
    const registers = [this.registry];
    this.received = new Counter({ name: 'patchbay_webhook_events_received_total', help: 'Events accepted into the queue, by integration and source (webhook, poll, schedule, manual).', labelNames: ['integration', 'source'], registers });
    this.rejected = new Counter({ name: 'patchbay_webhook_events_rejected_total', help: 'Inbound webhook requests refused, by integration and reason (the PB_ error code).', labelNames: ['integration', 'reason'], registers });
    this.runs = new Counter({ name: 'patchbay_runs_total', help: 'Runs that stopped executing, by outcome: succeeded, dead, retrying, deferred, lost.', labelNames: ['integration', 'outcome'], registers });
    this.stepDuration = new Histogram({
      name: 'patchbay_step_duration_seconds',
      help: 'Duration of step attempts, by integration, step and outcome.',
      labelNames: ['integration', 'step', 'outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.retries = new Counter({ name: 'patchbay_step_retries_total', help: 'Step attempts that failed and will be tried again (including attempts interrupted by a crash).', labelNames: ['integration', 'step'], registers });
    this.deadLetters = new Counter({ name: 'patchbay_dead_letters_total', help: 'Runs that became dead letters.', labelNames: ['integration'], registers });
    this.rateLimitWaits = new Histogram({
      name: 'patchbay_rate_limit_wait_seconds',
      help: 'Waits for a rate limit before a step, by integration; deferred="true" when the run went back to the queue instead.',
      labelNames: ['integration', 'deferred'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    });

    this.triggerRuns = new Counter({
      name: 'patchbay_trigger_runs_total',
      help: 'Polls (succeeded, partial, failed) and schedule ticks (fired, skipped, failed), by integration.',
      labelNames: ['integration', 'kind', 'outcome'],
      registers,
    });

    this.countRuns = options.countRuns;
    this.queueDepth = new Gauge({
      name: 'patchbay_queue_depth',
      help: 'Runs not finished, by integration and status (queued, running, retrying), read from the state store at scrape time.',
      labelNames: ['integration', 'status'],
      registers,
    });
    this.queueReadFailures = new Counter({ name: 'patchbay_queue_depth_read_failures_total', help: 'Scrapes where the queue depth could not be read in time (the previous values were kept).', registers });
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /**
   * Sets the integrations whose names are used as label values (the applied plan's, broken ones
   * included); call again when a new revision is applied. Other names are counted as `(unknown)`.
   */
  setIntegrations(names: Iterable<string>): void {
    this.integrations = new Set(names);
  }

  /** An event was accepted into the queue (after a duplicate check: count accepted ones only). */
  eventReceived(integration: string, source: string): void {
    this.received.inc({ integration: this.integrationLabel(integration), source: sources.has(source) ? source : otherLabel });
  }

  /** A poll or schedule tick finished with `outcome` (`succeeded`, `partial`, `failed`, `fired`, `skipped`). */
  triggerRun(integration: string, kind: 'poll' | 'schedule', outcome: string): void {
    this.triggerRuns.inc({ integration: this.integrationLabel(integration), kind, outcome: triggerOutcomes.has(outcome) ? outcome : otherLabel });
  }

  /** An inbound webhook was refused with `code` (a PB_ code; anything else is `(other)`). */
  eventRejected(integration: string | undefined, code: string): void {
    this.rejected.inc({ integration: integration === undefined ? unknownLabel : this.integrationLabel(integration), reason: Object.hasOwn(codes, code) ? code : otherLabel });
  }

  /** `ExecutorOptions.onRunSettled`. */
  readonly onRunSettled = (settled: RunSettled): void => {
    const integration = this.integrationLabel(settled.integration);
    this.runs.inc({ integration, outcome: runOutcomes.has(settled.outcome) ? settled.outcome : otherLabel });
    if (settled.outcome === 'dead') this.deadLetters.inc({ integration });
  };

  /** `ExecutorOptions.onAttempt`. */
  readonly onAttempt = (observed: AttemptObserved): void => {
    const integration = this.integrationLabel(observed.integration);
    const step = this.stepLabel(integration, observed.step);
    const outcome = attemptOutcomes.has(observed.outcome) ? observed.outcome : otherLabel;
    if (observed.outcome !== 'interrupted') this.stepDuration.observe({ integration, step, outcome }, Math.max(0, observed.durationMs) / 1000);
    if (observed.outcome === 'retrying' || observed.outcome === 'interrupted') this.retries.inc({ integration, step });
  };

  /** `ExecutorOptions.onRateLimitWait`. */
  readonly onRateLimitWait = (observed: RateLimitWaitObserved): void => {
    this.rateLimitWaits.observe({ integration: this.integrationLabel(observed.integration), deferred: observed.deferred ? 'true' : 'false' }, Math.max(0, observed.waitMs) / 1000);
  };

  /**
   * The exposition text of every metric (queue depth read at this moment, within
   * `countTimeoutMs`). Never rejects because of the store.
   */
  async render(): Promise<{ contentType: string; body: string }> {
    // Read before serialising (not in a gauge's collect): prom-client collects every metric at
    // once, so a failure counted during collection would only show in the next scrape.
    await this.refreshQueueDepth();
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  private integrationLabel(name: string): string {
    return this.integrations.has(name) ? name : unknownLabel;
  }

  private stepLabel(integration: string, step: string): string {
    if (integration === unknownLabel) return otherLabel;
    let seen = this.steps.get(integration);
    if (seen === undefined) this.steps.set(integration, (seen = new Set()));
    if (seen.has(step)) return step;
    if (seen.size >= this.maxSteps) return otherLabel;
    seen.add(step);
    return step;
  }

  /** Sets the queue-depth gauge from the store; on a failure or timeout the previous values stay. */
  private async refreshQueueDepth(): Promise<void> {
    if (this.countRuns === undefined) return;
    const counts = await this.readCounts(this.countRuns);
    if (counts === undefined) return;
    const depth = new Map<string, number>();
    for (const name of this.integrations) for (const status of queueStatuses) depth.set(`${name}\u0000${status}`, 0);
    for (const row of counts) {
      if (!(queueStatuses as readonly string[]).includes(row.status)) continue;
      const key = `${this.integrationLabel(row.integration)}\u0000${row.status}`;
      depth.set(key, (depth.get(key) ?? 0) + row.count);
    }
    this.queueDepth.reset();
    for (const [key, count] of depth) {
      const [integration, status] = key.split('\u0000') as [string, string];
      this.queueDepth.set({ integration, status }, count);
    }
  }

  private async readCounts(countRuns: () => Promise<readonly RunCounts[]>): Promise<readonly RunCounts[] | undefined> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        countRuns(),
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => reject(new PatchbayError('PB_ADMIN_STORE_TIMEOUT', `the state store did not count runs within ${this.countTimeoutMs} ms`)), this.countTimeoutMs);
        }),
      ]);
    } catch (error) {
      this.queueReadFailures.inc();
      this.logger.log('warn', 'queue depth not read for /metrics; the previous values are served', { code: error instanceof PatchbayError ? error.code : 'PB_INTERNAL' });
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }
}
