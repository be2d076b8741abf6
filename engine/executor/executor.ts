import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { PatchbayError } from '../diag/errors.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { evaluateCondition, evaluateMapping, type MappingLimits } from '../mapping/evaluate.js';
import type { CallResult } from '../providers/connection.js';
import type { ProviderFailure } from '../providers/response-reader.js';
import type { AcceptedEvent, ClaimedRun, NewEvent, OrderKeyAssignment, RunRow, StateStore, StepResult, StepRow } from '../store/state-store.js';
import type { ExecutionPlan, IntegrationPlan, StepPlan } from './plan.js';
import { RateLimiter, type Reservation, type TokenBucket } from './rate-limiter.js';
import { decideRetry, type RetryDecision } from './retry-policy.js';

/**
 * The executor: takes runs from the store and walks their steps. For each step it evaluates the
 * `if` condition and maps the inputs (JSONata with time, depth and size limits), waits its turn in
 * the credential's rate limits, calls the operation with the step's timeouts and an idempotency
 * key derived from the event and the step, and writes the attempt and the step's new state in one
 * transaction before going on. A failed attempt is retried on a durable timer (backoff with full
 * jitter, `Retry-After` honoured) or ends the run as a dead letter with its reason.
 *
 * Crash safety comes from the store: a run is leased while it executes; a worker that dies leaves
 * the lease to expire (or to be released by the next worker on this host, which sees the process
 * is gone), and the run resumes at its first unfinished step. A step that succeeded is never
 * called again; one that was in flight is called again with the same idempotency key, so
 * providers that honour keys apply it once.
 */

/** An event handed to `submit`, not yet redacted. */
export interface SubmittedEvent {
  readonly integration: string;
  /** The provider's event id, a polled item's id, a tick: duplicates are not run twice. */
  readonly eventKey: string;
  readonly type?: string | undefined;
  /** @default 'manual' */
  readonly source?: string;
  readonly payload: unknown;
  /** @default the clock's now */
  readonly receivedAt?: number;
}

/** What the executor reports when a run stops executing (finished, waiting on a timer, or given back). */
export interface RunSettled {
  readonly runId: string;
  readonly integration: string;
  /** `succeeded`, `dead`, `retrying`, `deferred` (rate limit or shutdown) or `lost` (the lease was taken). */
  readonly outcome: 'succeeded' | 'dead' | 'retrying' | 'deferred' | 'lost';
}

export interface ExecutorOptions {
  readonly store: StateStore;
  readonly plan: ExecutionPlan;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Lines carry run ids, step ids, codes and redacted messages only. @default silentLogger */
  readonly logger?: Logger;
  /** Lease owner identity. @default `<host>/<pid>/<start time>/<boot id>:<pid namespace>` */
  readonly owner?: string;
  /** How long a claimed run stays leased without renewal. @default 30_000 */
  readonly leaseMs?: number;
  /** How often an idle worker looks for runs written by another process or due timers. @default 200 */
  readonly pollIntervalMs?: number;
  /** A rate-limit wait longer than this gives the run back to the queue instead of holding a slot. @default 5_000 */
  readonly maxRateWaitMs?: number;
  readonly mappingLimits?: MappingLimits;
  /** Source of jitter, in [0, 1). @default Math.random */
  readonly random?: () => number;
  /** Called when a run stops executing (metrics, tests). Must not throw. */
  readonly onRunSettled?: (settled: RunSettled) => void;
  /**
   * Called after each attempt at a step is recorded in the store (metrics, tests), including the
   * `interrupted` attempt written for a run resumed after its worker died. Not called when the
   * record was refused (the lease was lost). Must not throw; an exception is logged and ignored.
   */
  readonly onAttempt?: (observed: AttemptObserved) => void;
  /**
   * Called when a step waits for a rate limit (a credential's token buckets or a pause after a
   * 429) before its call, or when its run is given back to the queue because the wait is longer
   * than `maxRateWaitMs`. Must not throw; an exception is logged and ignored.
   */
  readonly onRateLimitWait?: (observed: RateLimitWaitObserved) => void;
}

/** One recorded attempt, as `ExecutorOptions.onAttempt` reports it. */
export interface AttemptObserved {
  readonly runId: string;
  readonly integration: string;
  /** The step's id. */
  readonly step: string;
  /** 1-based, within the run's current generation (a replay starts again at 1). */
  readonly attempt: number;
  /**
   * `succeeded`; `skipped` (its `if` was false); `retrying` (failed, another attempt is scheduled);
   * `failed` (failed for good, and `continueOnError` lets the run go on); `dead` (failed for good:
   * the run is a dead letter); `interrupted` (the worker stopped mid-attempt; recorded when the
   * run resumes).
   */
  readonly outcome: 'succeeded' | 'skipped' | 'retrying' | 'failed' | 'dead' | 'interrupted';
  /** The failure's `PB_…` code, for `retrying`, `failed` and `dead`. */
  readonly code?: string | undefined;
  /** How long the attempt took (the call, or the mapping for an attempt that failed before it); 0 for `interrupted`. */
  readonly durationMs: number;
}

/** One rate-limit wait, as `ExecutorOptions.onRateLimitWait` reports it. */
export interface RateLimitWaitObserved {
  readonly runId: string;
  readonly integration: string;
  /** The step's id. */
  readonly step: string;
  /** How long the step waits (or, when `deferred`, how long until the run is claimable again). */
  readonly waitMs: number;
  /** True when the run was given back to the queue instead of waiting in its slot. */
  readonly deferred: boolean;
}

type StepOutcome = 'next';

const finishedStepStatuses = new Set(['succeeded', 'skipped', 'failed']);

/** Pending ordering keys decided per integration per store round trip. */
const keyBatch = 64;

export class Executor {
  readonly owner: string;
  private plan: ExecutionPlan;
  private readonly store: StateStore;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly leaseMs: number;
  private readonly pollIntervalMs: number;
  private readonly maxRateWaitMs: number;
  private readonly mappingLimits: MappingLimits | undefined;
  private readonly random: () => number;
  private readonly onRunSettled: ((settled: RunSettled) => void) | undefined;
  private readonly onAttempt: ((observed: AttemptObserved) => void) | undefined;
  private readonly onRateLimitWait: ((observed: RateLimitWaitObserved) => void) | undefined;
  private readonly limiter = new RateLimiter();
  private readonly inFlight = new Map<string, number>();
  private readonly tasks = new Set<Promise<void>>();
  /** Runs this worker is executing now: a claim that hands one back (its lease lapsed while it ran) is ignored. */
  private readonly executing = new Set<string>();
  /** Runs whose outcome could not be written nor the run given back; retried at every heartbeat. */
  private readonly stranded = new Set<string>();
  private readonly abort = new AbortController();
  private running = false;
  private loopDone: Promise<void> | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private wakeUp: (() => void) | undefined;
  private woken = false;
  /** Whether runs with a pending ordering key may exist though the plan has no orderBy (see `assignPendingKeys`). */
  private keysMaybePending = true;

  constructor(options: ExecutorOptions) {
    this.store = options.store;
    this.plan = options.plan;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.owner = options.owner ?? `${hostname()}/${process.pid}/${Date.now()}/${machineRun()}`;
    this.leaseMs = options.leaseMs ?? 30_000;
    this.pollIntervalMs = options.pollIntervalMs ?? 200;
    this.maxRateWaitMs = options.maxRateWaitMs ?? 5_000;
    this.mappingLimits = options.mappingLimits;
    this.random = options.random ?? Math.random;
    this.onRunSettled = options.onRunSettled;
    this.onAttempt = options.onAttempt;
    this.onRateLimitWait = options.onRateLimitWait;
    // Every call in flight and every rate-limit wait listens for the shutdown abort.
    setMaxListeners(0, this.abort.signal);
  }

  /** Switches to a new revision's plan; runs in flight finish on the plan they started with. */
  setPlan(plan: ExecutionPlan): void {
    this.plan = plan;
    this.keysMaybePending = true;
    this.wake();
  }

  /** Runs currently executing, per integration. */
  inFlightCount(integration?: string): number {
    if (integration !== undefined) return this.inFlight.get(integration) ?? 0;
    let total = 0;
    for (const count of this.inFlight.values()) total += count;
    return total;
  }

  /**
   * Accepts events: each is redacted with its integration's rules and committed durably with its
   * run (see `StateStore.acceptEvents`), and nothing else: no mapping runs before the promise
   * resolves, so a webhook is answered as soon as its event is safe. The ordering key of an
   * integration with `concurrency.orderBy` is decided afterwards, by the executor's loop (see
   * `assignPendingKeys`). Rejects with PB_INTEGRATION_DISABLED for a disabled integration,
   * PB_INTEGRATION_BROKEN for one that is not in the plan or cannot run (nothing of the batch is
   * written then), and with the store's errors.
   */
  async submit(events: readonly SubmittedEvent[]): Promise<readonly AcceptedEvent[]> {
    const now = this.clock.now();
    const rows: NewEvent[] = [];
    for (const event of events) {
      const plan = this.integrationPlan(event.integration);
      if (!plan.enabled) throw new PatchbayError('PB_INTEGRATION_DISABLED', `integration "${plan.name}" is disabled (enabled: false): it receives no events`);
      rows.push({
        integration: event.integration,
        eventKey: event.eventKey,
        type: event.type,
        source: event.source ?? 'manual',
        payload: plan.redactor.redactEvent(event.payload),
        receivedAt: event.receivedAt ?? now,
        revision: this.plan.revision,
        keyPending: plan.orderBy !== undefined,
        stepCount: plan.steps.length,
      });
    }
    const accepted = await this.store.acceptEvents(rows);
    this.wake();
    return accepted;
  }

  /** Starts the background loop: recover orphaned runs, then claim and execute until `stop`. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.heartbeat = setInterval(() => {
      this.store.renewLeases(this.owner, this.clock.now() + this.leaseMs).catch((error: unknown) => {
        this.logger.log('error', 'could not renew leases', { error: errorText(error) });
      });
      for (const runId of this.stranded) {
        this.store.deferRun(runId, this.owner, this.clock.now(), this.clock.now()).then(
          () => this.stranded.delete(runId),
          (error: unknown) => this.logger.log('error', 'could not give a stranded run back yet', { run: runId, error: errorText(error) }),
        );
      }
    }, Math.max(10, Math.floor(this.leaseMs / 3)));
    this.heartbeat.unref();
    this.loopDone = this.loop();
  }

  /**
   * Stops claiming, waits for runs in flight up to `deadlineMs`, then aborts the rest and gives
   * their leases back (they resume at their current step, which counts as interrupted).
   */
  async stop(deadlineMs = 10_000): Promise<void> {
    this.running = false;
    this.wake();
    await this.loopDone;
    if (this.tasks.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, deadlineMs);
      });
      await Promise.race([Promise.allSettled([...this.tasks]), deadline]);
      clearTimeout(timer);
    }
    try {
      if (this.tasks.size > 0) {
        this.abort.abort();
        await Promise.allSettled([...this.tasks]);
        await this.store.releaseLeases(this.owner, this.clock.now(), true);
      }
    } finally {
      // Even when the store refuses the release: a stopped executor must not keep its leases alive.
      if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
      this.heartbeat = undefined;
    }
  }

  /**
   * Executes everything claimable now and waits for it, again and again until nothing is left
   * to claim: a deterministic way to drive the executor in tests and one-shot commands (use with
   * a `ManualClock`; runs waiting on a timer in the future are left waiting).
   */
  async drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const keyed = await this.assignPendingKeys();
      const claimed = await this.claimBatch();
      total += claimed;
      if (this.tasks.size === 0 && claimed === 0 && keyed === 0) return total;
      if (this.tasks.size > 0) await Promise.race([...this.tasks]);
    }
  }

  private async loop(): Promise<void> {
    await this.recoverOrphans();
    while (this.running) {
      let claimed = 0;
      let keyed = 0;
      try {
        keyed = await this.assignPendingKeys();
      } catch (error) {
        this.logger.log('error', 'deciding ordering keys failed; trying again', { error: errorText(error) });
      }
      try {
        claimed = await this.claimBatch();
      } catch (error) {
        this.logger.log('error', 'claiming runs failed; trying again', { error: errorText(error) });
      }
      if (claimed === 0 && keyed === 0) await this.waitForWork();
    }
  }

  private wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  private async waitForWork(): Promise<void> {
    if (this.woken) {
      this.woken = false;
      // Let completions of the same tick gather so one claim serves them all.
      await new Promise((resolve) => setImmediate(resolve));
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, this.pollIntervalMs);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wakeUp = done;
    });
    this.wakeUp = undefined;
    this.woken = false;
  }

  /**
   * Releases the leases of workers on this host whose process is gone (SQLite: the daemon that
   * was killed), so their runs resume now rather than when the lease would have expired.
   */
  private async recoverOrphans(): Promise<void> {
    try {
      const host = hostname();
      for (const owner of await this.store.leaseOwners(this.clock.now())) {
        if (owner === this.owner) continue;
        const [ownerHost, pidText, , run] = owner.split('/');
        const pid = Number(pidText);
        // Only a process this one can see: same host name, same boot of the same machine and the
        // same PID namespace (two containers with one host name each have their own pid 1, 2, …;
        // two machines with one host name share the initial namespace's number).
        if (ownerHost !== host || run !== machineRun() || run === '-' || !Number.isInteger(pid) || processExists(pid)) continue;
        const released = await this.store.releaseLeases(owner, this.clock.now(), true);
        this.logger.log('warn', 'resuming runs of a worker that stopped without finishing them', { owner, runs: released });
      }
    } catch (error) {
      this.logger.log('error', 'could not look for orphaned runs; they resume when their leases expire', { error: errorText(error) });
    }
  }

  private async claimBatch(): Promise<number> {
    const capacity = new Map<string, number>();
    for (const plan of this.plan.integrations.values()) {
      if (!plan.enabled) continue;
      const running = this.inFlight.get(plan.name) ?? 0;
      const free = plan.concurrencyLimit - running;
      // Claim in batches: every claim is a write transaction, so a freed slot waits until a
      // quarter of the limit is free (or nothing runs) rather than costing a claim of its own.
      const worthClaiming = running === 0 ? 1 : Math.ceil(plan.concurrencyLimit / 4);
      if (free >= worthClaiming) capacity.set(plan.name, free);
    }
    if (capacity.size === 0 || (!this.running && this.loopDone !== undefined)) return 0;
    const claimed = await this.store.claimRuns({ owner: this.owner, now: this.clock.now(), leaseMs: this.leaseMs, capacity });
    for (const run of claimed) {
      // Our own lease lapsed (a stalled event loop, a slow store) while we still execute the run:
      // the claim handed it back to us; running it twice at once would send its step twice.
      if (this.executing.has(run.run.id)) continue;
      this.executing.add(run.run.id);
      const integration = run.run.integration;
      this.inFlight.set(integration, (this.inFlight.get(integration) ?? 0) + 1);
      const task = this.executeRun(run)
        .then((outcome) => this.settled(run.run, outcome))
        .catch((error: unknown) => {
          this.logger.log('error', 'run stopped by an unexpected error; it resumes when its lease expires', { run: run.run.id, error: errorText(error) });
        })
        .finally(() => {
          this.executing.delete(run.run.id);
          this.inFlight.set(integration, (this.inFlight.get(integration) ?? 1) - 1);
          this.tasks.delete(task);
          this.wake();
        });
      this.tasks.add(task);
    }
    return claimed.filter((run) => this.executing.has(run.run.id)).length;
  }

  private settled(run: RunRow, outcome: RunSettled['outcome']): void {
    this.observe('onRunSettled', this.onRunSettled, { runId: run.id, integration: run.integration, outcome });
  }

  /** Calls an observation hook; a hook that throws is logged, never allowed to disturb the run. */
  private observe<T>(name: string, hook: ((observed: T) => void) | undefined, observed: T): void {
    if (hook === undefined) return;
    try {
      hook(observed);
    } catch (error) {
      this.logger.log('error', `the ${name} hook threw; ignored`, { error: errorText(error) });
    }
  }

  /** Reports a recorded attempt to `onAttempt`, naming its outcome from the record written. */
  private attemptRecorded(result: StepResult, integration: string, attempt: number): void {
    if (this.onAttempt === undefined) return;
    const recorded = result.attempt.outcome;
    const outcome: AttemptObserved['outcome'] =
      recorded === 'failed' ? 'retrying' : recorded === 'dead' ? (result.run.status === 'dead' ? 'dead' : 'failed') : recorded;
    this.observe('onAttempt', this.onAttempt, {
      runId: result.runId,
      integration,
      step: result.stepId,
      attempt,
      outcome,
      code: result.attempt.errorCode,
      durationMs: result.attempt.durationMs,
    });
  }

  private integrationPlan(name: string): IntegrationPlan {
    const plan = this.plan.integrations.get(name);
    if (plan !== undefined) return plan;
    const broken = this.plan.broken.get(name);
    throw new PatchbayError(
      'PB_INTEGRATION_BROKEN',
      broken !== undefined ? `integration "${name}" cannot run: ${broken.message}` : `no integration "${name}" in the applied revision`,
    );
  }

  /**
   * Decides the ordering keys of runs accepted with their key pending (see `submit`): takes the
   * oldest pending runs of the integrations in the plan, evaluates each one's `orderBy` over its
   * stored (redacted) event with the mapping limits, and hands the keys to the store, which sets
   * them in arrival order and postpones any run behind an earlier one still pending (another
   * worker's, or one left out here), so a run never overtakes an earlier run of its key. Runs of
   * an integration that no longer has `orderBy` get no key. Runs of integrations not in the plan
   * (broken) stay pending until a plan has them. Returns how many keys were set.
   */
  private async assignPendingKeys(): Promise<number> {
    if (!this.running && this.loopDone !== undefined) return 0;
    const integrations = [...this.plan.integrations.keys()];
    if (integrations.length === 0) return 0;
    // Without any orderBy in the plan, only leftovers of an earlier revision can be pending: look
    // until none is left, then stop asking the store at every turn (the ingest benchmark measured
    // that query at 2% of the daemon's time).
    const ordered = [...this.plan.integrations.values()].some((plan) => plan.orderBy !== undefined);
    if (!ordered && !this.keysMaybePending) return 0;
    let total = 0;
    // A few rounds at most, so a large backlog of pending keys does not hold up claiming.
    for (let round = 0; round < 4; round += 1) {
      const pending = await this.store.pendingOrderKeys(integrations, keyBatch);
      if (pending.length === 0) {
        if (!ordered) this.keysMaybePending = false;
        break;
      }
      const assignments: OrderKeyAssignment[] = [];
      for (const run of pending) {
        const plan = this.plan.integrations.get(run.integration);
        if (plan === undefined) continue;
        assignments.push({ runId: run.runId, orderKey: await this.orderKeyOf(plan, run.payload, run.runId) });
      }
      const assigned = (await this.store.assignOrderKeys(assignments)).length;
      total += assigned;
      if (assigned === 0 || pending.length < keyBatch) break;
    }
    return total;
  }

  /**
   * The hashed ordering key: only equality matters, and the raw value may be personal data.
   *
   * An expression that fails (a mapping error, a time, depth or size limit) gives no key: the run
   * executes unordered, with a warning naming the run and the code. The alternatives are worse:
   * holding the run would hold every later run of the integration (keys are decided in arrival
   * order), and a dead letter would run unordered anyway once replayed, after the runs of its key
   * that went on meanwhile. An empty key (undefined, null, '') also means unordered, by design.
   */
  private async orderKeyOf(plan: IntegrationPlan, payload: unknown, runId: string): Promise<string | undefined> {
    if (plan.orderBy === undefined) return undefined;
    let value: unknown;
    try {
      value = await evaluateMapping(plan.orderBy, { event: payload, vars: plan.vars }, this.mappingLimits);
    } catch (error) {
      // The code only: mapping messages carry no data, but the code is all an operator needs here.
      this.logger.log('warn', 'orderBy failed for an event; it runs unordered', {
        integration: plan.name,
        run: runId,
        code: error instanceof PatchbayError ? error.code : 'PB_INTERNAL',
      });
      return undefined;
    }
    if (value === undefined || value === null || value === '') return undefined;
    return createHash('sha256').update(typeof value === 'string' ? value : JSON.stringify(value)).digest('hex').slice(0, 24);
  }

  private async executeRun(claimed: ClaimedRun): Promise<RunSettled['outcome']> {
    const { run } = claimed;
    const plan = this.plan.integrations.get(run.integration);
    if (plan === undefined) {
      // The integration left the plan while the run was claimed: give it back for a later revision.
      const ok = await this.store.deferRun(run.id, this.owner, this.clock.now() + 60_000, this.clock.now());
      return ok ? 'deferred' : 'lost';
    }
    const context: RunContext = {
      event: claimed.payload,
      steps: {},
      vars: plan.vars,
      trigger: { integration: run.integration, eventId: run.eventKey, type: run.eventType, source: run.source, receivedAt: new Date(run.receivedAt).toISOString(), runId: run.id },
    };
    for (const row of claimed.steps) {
      if (finishedStepStatuses.has(row.status)) context.steps[row.stepId] = { output: row.output, status: row.status };
    }
    const changed = revisionMismatch(claimed.steps, plan, run.nextStep);
    if (changed !== undefined) {
      // The integration's steps changed under a started run: resuming by position could call a
      // succeeded step again or skip a new one, so the run stops here, with the reason. The
      // record goes on the step the run was at, so restoring the old steps and replaying works.
      const failure = new PatchbayError(
        'PB_RUN_REVISION_CHANGED',
        `the integration's steps changed since this run started (${changed}); restore the steps and replay it with patchbay runs retry, or enqueue the event again under a new key (--key)`,
      );
      const atRow = claimed.steps.find((row) => row.index === run.nextStep);
      const stepId = atRow?.stepId ?? plan.steps[run.nextStep]?.id ?? '(removed)';
      const now = this.clock.now();
      const ok = await this.write(
        {
          runId: run.id,
          owner: this.owner,
          now,
          stepIndex: run.nextStep,
          stepId,
          attempt: { startedAt: now, durationMs: 0, outcome: 'dead', errorCode: failure.code, errorMessage: failure.message },
          step: { status: 'dead' },
          run: { status: 'dead', errorCode: failure.code, errorMessage: failure.message, errorStep: stepId },
        },
        run.integration,
        (atRow?.attempts ?? 0) + 1,
      );
      return ok ? 'dead' : 'lost';
    }
    // The step row at the resume point counts only when it is the same step (attempts of a step
    // that was renamed or replaced there are not this step's).
    const currentRow = claimed.steps.find((row) => row.index === run.nextStep && row.stepId === plan.steps[run.nextStep]?.id);
    let attempts = currentRow?.attempts ?? 0;
    const current = plan.steps[run.nextStep]!;
    if (claimed.resumedAfterLoss) {
      if (!(await this.store.recordInterrupted(run.id, this.owner, current.index, current.id, this.clock.now()))) return 'lost';
      attempts += 1;
      this.observe('onAttempt', this.onAttempt, { runId: run.id, integration: run.integration, step: current.id, attempt: attempts, outcome: 'interrupted', durationMs: 0 });
      this.logger.log('warn', 'resuming a run whose worker stopped mid-step; the step is tried again with the same idempotency key', { run: run.id, step: current.id });
    }
    for (let index = run.nextStep; index < plan.steps.length; index += 1) {
      const step = plan.steps[index]!;
      const first = index === run.nextStep;
      const result = await this.executeStep(run, plan, step, context, first ? attempts : 0, first ? currentRow?.firstAttemptAt : undefined);
      if (result !== 'next') return result;
    }
    return 'succeeded';
  }

  /**
   * Runs one step to its next state. Returns `next` to go on with the following step, else how
   * the run settled. `attempts` were already made in this generation (`interrupted` ones
   * included), the first of them at `firstAttemptAt`.
   */
  private async executeStep(
    run: RunRow,
    plan: IntegrationPlan,
    step: StepPlan,
    context: RunContext,
    attempts: number,
    firstAttemptAt: number | undefined,
  ): Promise<StepOutcome | RunSettled['outcome']> {
    const startedAt = this.clock.now();
    const isLast = step.index === plan.steps.length - 1;
    const onward: StepResult['run'] = isLast ? { status: 'succeeded' } : { status: 'running', nextStep: step.index + 1 };
    const settle = async (written: Promise<boolean>, outcome: StepOutcome | RunSettled['outcome']): Promise<StepOutcome | RunSettled['outcome']> =>
      (await written) ? (outcome === 'next' && isLast ? 'succeeded' : outcome) : 'lost';
    // maxAge counts from the first attempt of this generation: an event that waited in the queue
    // (a broken integration, a stopped engine) gets its attempts, and a replay starts afresh.
    const ageFrom = firstAttemptAt ?? startedAt;

    if (attempts >= step.retry.maxAttempts) {
      // The last allowed attempt was cut short by the engine stopping (a crash loop on this step).
      const failure = new PatchbayError('PB_RUN_INTERRUPTED', `step "${step.id}": all ${attempts} attempts are used and the last was interrupted by the engine stopping`);
      return this.finishFailed(run, plan, step, startedAt, attempts, failure, undefined, { retry: false, reason: 'attempts' }, onward, context);
    }
    if (startedAt > ageFrom + step.retry.maxAgeMs) {
      const failure = new PatchbayError('PB_RUN_EXPIRED', `step "${step.id}": its first attempt was longer ago than the retry policy's maxAge`);
      return this.finishFailed(run, plan, step, startedAt, attempts, failure, undefined, { retry: false, reason: 'maxAge' }, onward, context);
    }

    let inputs: Record<string, unknown>;
    try {
      if (step.condition !== undefined && !(await evaluateCondition(step.condition, context, this.mappingLimits))) {
        context.steps[step.id] = { output: undefined, status: 'skipped' };
        const written = this.write(this.result(run, step, { startedAt, durationMs: this.clock.now() - startedAt, outcome: 'skipped' }, { status: 'skipped' }, onward), run.integration, attempts + 1);
        return settle(written, 'next');
      }
      const mapped = await evaluateMapping(step.inputs, context, this.mappingLimits);
      inputs = mapped !== null && typeof mapped === 'object' && !Array.isArray(mapped) ? (mapped as Record<string, unknown>) : {};
      const problems = step.checkInputs(inputs);
      if (problems.length > 0) throw new PatchbayError('PB_STEP_INPUT_INVALID', `step "${step.id}" (${step.call}): ${problems.join('; ')}`);
    } catch (error) {
      return this.finishFailed(run, plan, step, startedAt, attempts, asPatchbayError(error), undefined, { retry: false, reason: 'terminal' }, onward, context);
    }

    const reservation = this.reserve(step, inputs);
    const waited = (waitMs: number, deferred: boolean): void =>
      this.observe('onRateLimitWait', this.onRateLimitWait, { runId: run.id, integration: run.integration, step: step.id, waitMs, deferred });
    if (!reservation.granted) {
      waited(Math.max(0, reservation.retryAtMs - this.clock.now()), true);
      const ok = await this.store.deferRun(run.id, this.owner, reservation.retryAtMs, this.clock.now());
      return ok ? 'deferred' : 'lost';
    }
    // Wait for the tokens, then for any pause announced meanwhile (a 429 of another run); the
    // tokens are already taken, so only the pause is looked at again.
    for (let waitMs = reservation.waitMs; waitMs > 0; waitMs = this.limiter.pausedUntil(step.connection.credentialId) - this.clock.now()) {
      if (waitMs > this.maxRateWaitMs) {
        waited(waitMs, true);
        const ok = await this.store.deferRun(run.id, this.owner, this.clock.now() + waitMs, this.clock.now());
        return ok ? 'deferred' : 'lost';
      }
      waited(waitMs, false);
      await sleep(waitMs, this.abort.signal);
      if (this.abort.signal.aborted) {
        // Stopped before anything was sent: give the run back cleanly (not as interrupted).
        const ok = await this.store.deferRun(run.id, this.owner, this.clock.now(), this.clock.now());
        return ok ? 'deferred' : 'lost';
      }
    }

    const idempotencyKey = idempotencyKeyOf(run, step);
    const release = step.gate === undefined ? undefined : await this.limiter.gate(step.gate.key, step.gate.limit).acquire();
    const callStartedAt = this.clock.now();
    let result: CallResult | undefined;
    let callError: unknown;
    try {
      result = await step.connection.call(step.operationName, inputs, {
        idempotencyKey,
        connectTimeoutMs: step.timeouts.connectTimeoutMs,
        headersTimeoutMs: step.timeouts.headersTimeoutMs,
        totalTimeoutMs: step.timeouts.totalTimeoutMs,
        signal: this.abort.signal,
      });
    } catch (error) {
      callError = error;
    } finally {
      release?.();
    }
    // Only the call's own failure is a failed attempt; a failure to record the outcome is not
    // (see `write`), so a call the provider applied is never classified as failed.
    if (result !== undefined) {
      const output = plan.redactor.redactStepOutput(step.id, result.output);
      // Later steps of this execution read the answer as it came; after a restart they read it as stored.
      context.steps[step.id] = { output: result.output, status: 'succeeded' };
      const written = this.write(
        this.result(
          run,
          step,
          {
            startedAt: callStartedAt,
            durationMs: result.durationMs,
            outcome: 'succeeded',
            request: plan.redactor.redactRequest(result.request),
            response: plan.redactor.redactResponse(result.status, {}, output),
            status: result.status,
          },
          { status: 'succeeded', output },
          onward,
        ),
        run.integration,
        attempts + 1,
      );
      return settle(written, 'next');
    }
    // A shutdown past its deadline: the request may have gone out; the next worker records the
    // attempt as interrupted and repeats it with the same idempotency key.
    if (this.abort.signal.aborted) return 'deferred';
    const failure = asPatchbayError(callError);
    if (failure.retryAfterMs !== undefined && (failure.code === 'PB_HTTP_RATE_LIMITED' || failure.code === 'PB_HTTP_UNAVAILABLE')) {
      // The provider says the credential is out of budget: every run using it waits, not just this one.
      this.limiter.pause(step.connection.credentialId, this.clock.now() + failure.retryAfterMs);
    }
    const decision = decideRetry(failure, attempts + 1, step.retry, this.clock.now(), ageFrom, this.random);
    let request: unknown;
    try {
      request = plan.redactor.redactRequest(step.connection.build(step.operationName, inputs, { idempotencyKey }));
    } catch (buildError) {
      // The request could not even be built (that is the failure being recorded); store none.
      void buildError;
    }
    return this.finishFailed(run, plan, step, callStartedAt, attempts, failure, request, decision, onward, context);
  }

  /**
   * Records an attempt whose outcome is known. A store that is busy or unreachable is tried again
   * (50 ms to 5 s apart, 8 tries; twice once shutting down) rather than giving up: the call behind the record
   * happened, and giving up would either repeat it or leave the run leased. If the store still
   * refuses, the run is given back to the queue when possible and the error is raised; the step
   * is then repeated with the same idempotency key.
   */
  private async write(result: StepResult, integration: string, attemptNumber: number): Promise<boolean> {
    let delayMs = 50;
    for (let attempt = 1; ; attempt += 1) {
      try {
        const written = await this.store.recordStep(result);
        if (written) this.attemptRecorded(result, integration, attemptNumber);
        return written;
      } catch (error) {
        const transient = error instanceof PatchbayError && error.retry !== 'terminal';
        // Shutting down: one more try at most, so `stop` keeps its deadline.
        if (!transient || attempt >= 8 || (this.abort.signal.aborted && attempt >= 2)) {
          this.logger.log('error', 'could not record a step; the run is given back and the step will be repeated with the same idempotency key', {
            run: result.runId,
            step: result.stepId,
            error: errorText(error),
          });
          await this.store.deferRun(result.runId, this.owner, this.clock.now(), this.clock.now()).catch((deferError: unknown) => {
            this.logger.log('error', 'could not give the run back either; it resumes when its lease expires', { run: result.runId, error: errorText(deferError) });
            this.stranded.add(result.runId);
          });
          throw error;
        }
        await sleep(delayMs, this.abort.signal);
        delayMs = Math.min(delayMs * 2, 5_000);
      }
    }
  }

  /** Records a failed attempt: a retry on a timer, a failure the run goes past (`continueOnError`), or a dead letter. */
  private async finishFailed(
    run: RunRow,
    plan: IntegrationPlan,
    step: StepPlan,
    startedAt: number,
    attempts: number,
    failure: PatchbayError,
    request: unknown,
    decision: RetryDecision,
    onward: StepResult['run'],
    context: RunContext,
  ): Promise<StepOutcome | RunSettled['outcome']> {
    const now = this.clock.now();
    const message = plan.redactor.redactText(failure.message);
    const answer = failure.cause as Partial<ProviderFailure> | undefined;
    const attempt = {
      startedAt,
      durationMs: Math.max(0, now - startedAt),
      request,
      // What the provider said, when it answered: its status and error code (message redacted).
      response:
        typeof answer?.status === 'number'
          ? { status: answer.status, providerCode: answer.providerCode, providerMessage: answer.providerMessage === undefined ? undefined : plan.redactor.redactText(answer.providerMessage) }
          : undefined,
      status: typeof answer?.status === 'number' ? answer.status : undefined,
      errorCode: failure.code,
      errorMessage: message,
    };
    if (decision.retry) {
      this.logger.log('info', 'step failed; retrying', { run: run.id, step: step.id, code: failure.code, attempt: attempts + 1, retryInMs: decision.delayMs });
      const ok = await this.write(this.result(run, step, { ...attempt, outcome: 'failed', retryAt: decision.atMs }, { status: 'pending' }, { status: 'retrying', availableAt: decision.atMs }), run.integration, attempts + 1);
      return ok ? 'retrying' : 'lost';
    }
    const why = reasonText(decision, attempts + 1, step.retry.maxAttempts);
    if (step.continueOnError) {
      this.logger.log('warn', 'step failed; continuing (continueOnError)', { run: run.id, step: step.id, code: failure.code });
      const ok = await this.write(this.result(run, step, { ...attempt, outcome: 'dead' }, { status: 'failed' }, onward), run.integration, attempts + 1);
      if (!ok) return 'lost';
      context.steps[step.id] = { output: undefined, status: 'failed' };
      return onward.status === 'succeeded' ? 'succeeded' : 'next';
    }
    this.logger.log('warn', 'run is a dead letter', { run: run.id, step: step.id, code: failure.code, reason: why });
    const ok = await this.write(
      this.result(run, step, { ...attempt, outcome: 'dead' }, { status: 'dead' }, { status: 'dead', errorCode: failure.code, errorMessage: `${message} (${why})`, errorStep: step.id }),
      run.integration,
      attempts + 1,
    );
    return ok ? 'dead' : 'lost';
  }

  private result(run: RunRow, step: StepPlan, attempt: StepResult['attempt'], stepState: StepResult['step'], runState: StepResult['run']): StepResult {
    return { runId: run.id, owner: this.owner, now: this.clock.now(), stepIndex: step.index, stepId: step.id, attempt, step: stepState, run: runState };
  }

  private bucketsOf(step: StepPlan, inputs: Readonly<Record<string, unknown>>): { bucket: TokenBucket; cost: number }[] {
    const now = this.clock.now();
    return step.limits.map((limit) => {
      const narrowed = limit.keyInput === undefined ? limit.key : `${limit.key}|${String(inputs[limit.keyInput] ?? '')}`;
      return { bucket: this.limiter.bucket(narrowed, limit.spec, now), cost: limit.cost };
    });
  }

  /** Reserves a token in every bucket of the step, or none of them. */
  private reserve(step: StepPlan, inputs: Readonly<Record<string, unknown>>): Reservation {
    const now = this.clock.now();
    const pausedMs = this.limiter.pausedUntil(step.connection.credentialId) - now;
    if (pausedMs > this.maxRateWaitMs) return { granted: false, retryAtMs: now + pausedMs };
    const taken: { bucket: TokenBucket; cost: number }[] = [];
    let waitMs = Math.max(0, pausedMs);
    for (const entry of this.bucketsOf(step, inputs)) {
      const reservation = entry.bucket.reserve(entry.cost, now, this.maxRateWaitMs);
      if (!reservation.granted) {
        for (const done of taken) done.bucket.refund(done.cost);
        return reservation;
      }
      taken.push(entry);
      waitMs = Math.max(waitMs, reservation.waitMs);
    }
    return { granted: true, waitMs };
  }
}

/** What expressions see. */
interface RunContext {
  event: unknown;
  steps: Record<string, { output: unknown; status: string }>;
  vars: Readonly<Record<string, unknown>>;
  trigger: Readonly<Record<string, unknown>>;
}

/**
 * The idempotency key of a step: the integration, the event's key and the step id, so every
 * attempt — after a retry, a crash or a restart — sends the same key, and a replay of a dead
 * letter (a deliberate new try) sends a new one. A key longer than 200 characters (Stripe
 * accepts 255) or with characters other than letters, digits and `_.:~+=-` is sent as
 * `pb-<sha256 hex>` instead.
 */
export function idempotencyKeyOf(run: Pick<RunRow, 'integration' | 'eventKey' | 'replays'>, step: Pick<StepPlan, 'id'>): string {
  const key = `${run.integration}:${run.eventKey}:${step.id}${run.replays > 0 ? `:replay-${run.replays}` : ''}`;
  // Readable when it is a plain token; otherwise hashed, so a header never carries non-ASCII
  // (refused by HTTP), spaces, or what an event key made of personal data would reveal.
  return readableKey.test(key) ? key : `pb-${createHash('sha256').update(key).digest('hex')}`;
}

const readableKey = /^[A-Za-z0-9_.:~+=-]{1,200}$/;

/**
 * Why a run's finished steps do not fit the plan it would resume on, or undefined when they do:
 * every finished step must sit at the same position in the plan under the same id (a step that
 * ran must never run again, and none may be skipped), and the step to resume must exist.
 */
function revisionMismatch(rows: readonly StepRow[], plan: IntegrationPlan, nextStep: number): string | undefined {
  for (const row of rows) {
    if (!finishedStepStatuses.has(row.status)) continue;
    const planned = plan.steps[row.index];
    if (planned === undefined) return `step ${row.index + 1}, "${row.stepId}", is gone`;
    if (planned.id !== row.stepId) return `step ${row.index + 1} was "${row.stepId}" and is now "${planned.id}"`;
  }
  if (nextStep >= plan.steps.length) return `the run stopped at step ${nextStep + 1} and the integration now has ${plan.steps.length}`;
  return undefined;
}

function reasonText(decision: RetryDecision, attempt: number, maxAttempts: number): string {
  if (decision.retry) return '';
  switch (decision.reason) {
    case 'terminal':
      return `attempt ${attempt}: not retryable`;
    case 'notRetried':
      return `attempt ${attempt}: the retry policy does not retry this kind of failure`;
    case 'attempts':
      return `gave up after ${attempt} of ${maxAttempts} attempts`;
    case 'maxAge':
      return `attempt ${attempt}: the next attempt would start after the retry policy's maxAge`;
  }
}

function asPatchbayError(error: unknown): PatchbayError {
  if (error instanceof PatchbayError) return error;
  return new PatchbayError('PB_INTERNAL', `unexpected error: ${errorText(error)}`, { cause: error });
}

function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/**
 * This machine's boot and this process's PID namespace (`<boot id>:pid:[4026531836]` on Linux),
 * or `-` where they cannot be read: then no other owner is ever taken for a dead local process.
 */
function machineRun(): string {
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const namespace = readlinkSync('/proc/self/ns/pid');
    return `${boot}:${namespace}`.replace(/[^A-Za-z0-9:[\]-]/g, '');
  } catch {
    // Not Linux (or /proc hidden): orphaned leases are left to expire.
    return '-';
  }
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
