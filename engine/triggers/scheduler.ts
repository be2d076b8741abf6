import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { PatchbayError } from '../diag/errors.js';
import type { SubmittedEvent } from '../executor/executor.js';
import type { ExecutionPlan, IntegrationPlan } from '../executor/plan.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { parseDurationMs } from '../lib/duration.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { compileMapping, type MappingLimits } from '../mapping/evaluate.js';
import type { AcceptedEvent, StateStore } from '../store/state-store.js';
import { compileCronSchedule, type CronSchedule } from './cron-schedule.js';
import { pollListing, type PollTarget } from './poller.js';
import { fireScheduleTick } from './schedule.js';
import { parseTriggerState, serializeTriggerState, type TriggerState } from './trigger-state.js';

/**
 * The clock-driven triggers of the daemon: one job per enabled integration whose trigger is
 * `poll` or `schedule` (webhooks arrive through the ingress instead). Each job knows its next
 * tick; `runDue` starts every job whose time has come, and the timers only call `runDue`, so a
 * test moves a `ManualClock` and awaits `runDue()` to see exactly what a tick does.
 *
 * Per tick, with `last` the last tick handled (persisted in the integration's cursor):
 * - the ticks in `(last, now]` are due; the latest of them is punctual when it is at most
 *   `lateToleranceMs` (plus the poll's jitter) old, else it was missed during downtime;
 * - a punctual tick fires (a schedule's event, a poll); older ticks before it are covered by it
 *   with `catchUp: once` and dropped with `skip`;
 * - missed ticks only: `once` fires one run for the latest of them, `skip` records them as
 *   handled and waits for the next tick.
 * A job never runs twice at once: a tick that comes while its poll still runs is coalesced into
 * one poll right after it. Failures are logged, reported and retried at the next tick; one
 * job's failure does not touch the others.
 *
 * Several daemons may share one store (one PostgreSQL database, one SQLite file): each schedules
 * every job, and before a job runs it takes the integration's trigger lease in the store (as
 * `owner`, for `leaseMs`), renews it before each page's cursor is saved, and releases it after.
 * A daemon that finds the lease held by another skips the tick quietly (the holder handles it)
 * and looks again after `retryDelayMs`, with the tick still counting as on time, so a holder that
 * died is taken over once its lease runs out. The state is read again after the lease is taken,
 * so each daemon continues from where the previous holder left the cursor. A poll that outlives
 * its lease and finds it taken over stops before saving (`PB_TRIGGER_LEASE_LOST`).
 */

/** What one poll did, for metrics. */
export interface PollReport {
  readonly integration: string;
  /** `succeeded` (the listing finished), `partial` (stopped at the page limit; continues next tick) or `failed`. */
  readonly outcome: 'succeeded' | 'partial' | 'failed';
  readonly scheduledAt: string;
  readonly pages: number;
  readonly items: number;
  readonly accepted: number;
  readonly duplicates: number;
  readonly durationMs: number;
  /** The failure's code (`PB_HTTP_SERVER_ERROR`, `PB_POLL_NOT_A_LIST`, …). */
  readonly code?: string | undefined;
}

/** What one schedule tick did, for metrics. */
export interface TickReport {
  readonly integration: string;
  /** `fired` (accepted or a duplicate of an earlier firing), `skipped` (missed, `catchUp: skip`) or `failed`. */
  readonly outcome: 'fired' | 'skipped' | 'failed';
  readonly scheduledAt: string;
  readonly missedTicks: number;
  /** False when the tick had been fired before (a restart, another daemon). */
  readonly accepted: boolean;
  readonly code?: string | undefined;
}

/** A job's state, for the daemon's status. */
export interface TriggerStatus {
  readonly integration: string;
  readonly kind: 'poll' | 'schedule';
  /** When the job will next run (ISO 8601), unless it is broken. */
  readonly nextRunAt: string | undefined;
  /** The last tick handled (ISO 8601). */
  readonly lastTickAt: string | undefined;
  readonly running: boolean;
  /** Failures in a row (0 after a success). */
  readonly consecutiveFailures: number;
  /** The last failure, or why the job cannot run (a bad cron expression). */
  readonly error: { readonly code: string; readonly message: string } | undefined;
}

export interface TriggerSchedulerOptions {
  readonly plan: ExecutionPlan;
  readonly store: StateStore;
  /** Commits events durably (the executor's `submit`). */
  readonly submit: (events: readonly SubmittedEvent[]) => Promise<readonly AcceptedEvent[]>;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Source of jitter, in [0, 1). @default Math.random */
  readonly random?: () => number;
  /** @default silentLogger */
  readonly logger?: Logger;
  /** Called after every poll. Must not throw. */
  readonly onPoll?: (report: PollReport) => void;
  /** Called after every schedule tick. Must not throw. */
  readonly onTick?: (report: TickReport) => void;
  /** Arm real timers that call `runDue` when a job is due. Tests pass false and call `runDue`. @default true */
  readonly timers?: boolean;
  /** How late a tick may be handled and still count as punctual. @default 60_000 */
  readonly lateToleranceMs?: number;
  /** Pages one poll reads at most; the next poll continues the listing. @default 100 */
  readonly maxPagesPerPoll?: number;
  /** Wait before retrying a job whose state could not be read. @default 30_000 */
  readonly retryDelayMs?: number;
  readonly mappingLimits?: MappingLimits;
  /**
   * This scheduler's identity in trigger leases: unique among the daemons sharing the store (the
   * executor's `owner` does). @default `<host>/<pid>/<random UUID>`
   */
  readonly owner?: string;
  /**
   * How long a trigger lease lasts without renewal: longer than one page of a listing takes
   * (with its retries), since it is renewed page by page. A daemon that dies holding it blocks
   * the integration's triggers on the other daemons for at most this long.
   * @default 120_000
   */
  readonly leaseMs?: number;
}

interface Job {
  readonly integration: string;
  readonly kind: 'poll' | 'schedule';
  /** The trigger (and polled connection) as written: a job is kept across plans while it is unchanged. */
  readonly signature: string;
  readonly schedule: CronSchedule | undefined;
  readonly catchUp: 'once' | 'skip';
  readonly jitterMs: number;
  poll: PollTarget | undefined;
  state: TriggerState | undefined;
  dueAt: number | undefined;
  running: Promise<void> | undefined;
  /** A replaced job's run still in flight: this one waits for it (no overlap across plans). */
  blockedBy: Promise<void> | undefined;
  coalescedLogged: boolean;
  consecutiveFailures: number;
  error: PatchbayError | undefined;
  /** A schedule tick whose firing failed: retried after `retryDelayMs` and still fired as on time. */
  retryTickMs: number | undefined;
  readonly abort: AbortController;
}

/** Drives poll and schedule triggers; see the module comment. Build it with `startTriggers`. */
export class TriggerScheduler {
  private readonly store: StateStore;
  private readonly submit: TriggerSchedulerOptions['submit'];
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly logger: Logger;
  private readonly onPoll: TriggerSchedulerOptions['onPoll'];
  private readonly onTick: TriggerSchedulerOptions['onTick'];
  private readonly timers: boolean;
  private readonly lateToleranceMs: number;
  private readonly maxPagesPerPoll: number;
  private readonly retryDelayMs: number;
  private readonly mappingLimits: MappingLimits | undefined;
  private readonly owner: string;
  private readonly leaseMs: number;
  private jobs = new Map<string, Job>();
  private readonly inFlight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(options: TriggerSchedulerOptions) {
    this.store = options.store;
    this.submit = options.submit;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.logger = options.logger ?? silentLogger;
    this.onPoll = options.onPoll;
    this.onTick = options.onTick;
    this.timers = options.timers ?? true;
    this.lateToleranceMs = options.lateToleranceMs ?? 60_000;
    this.maxPagesPerPoll = options.maxPagesPerPoll ?? 100;
    this.retryDelayMs = options.retryDelayMs ?? 30_000;
    this.mappingLimits = options.mappingLimits;
    this.owner = options.owner ?? `${hostname()}/${process.pid}/${randomUUID()}`;
    this.leaseMs = options.leaseMs ?? 120_000;
    if (!(this.leaseMs > 0) || !Number.isFinite(this.leaseMs)) throw new RangeError(`leaseMs must be a positive number of milliseconds, not ${this.leaseMs}`);
  }

  /**
   * Switches to a new revision's plan: jobs of unchanged triggers keep their timing (their
   * connection and vars follow the new plan), new and changed ones are prepared (their state
   * read, first-time state written), removed and disabled ones stop being scheduled (a poll in
   * flight finishes). Resolves when the new jobs are prepared; never rejects (a job whose state
   * cannot be read is retried at `runDue`).
   */
  async setPlan(plan: ExecutionPlan): Promise<void> {
    const next = new Map<string, Job>();
    const fresh: Job[] = [];
    for (const integration of plan.integrations.values()) {
      const trigger = integration.document.spec.trigger;
      if (!integration.enabled || (trigger.poll === undefined && trigger.schedule === undefined)) continue;
      const signature = signatureOf(integration);
      const current = this.jobs.get(integration.name);
      if (current !== undefined && current.signature === signature) {
        // The same trigger on the new plan's connection (the old plan's is closed with it).
        if (current.kind === 'poll' && current.schedule !== undefined) current.poll = this.pollTarget(integration);
        next.set(integration.name, current);
        continue;
      }
      const job = this.createJob(integration, signature);
      const previous = current?.running ?? current?.blockedBy;
      if (previous !== undefined) {
        job.blockedBy = previous;
        void previous.finally(() => {
          job.blockedBy = undefined;
          this.arm();
        });
      }
      next.set(integration.name, job);
      fresh.push(job);
    }
    for (const [name, job] of this.jobs) {
      if (next.get(name) !== job) job.dueAt = undefined;
    }
    this.jobs = next;
    await Promise.all(fresh.filter((job) => job.error === undefined).map((job) => this.prepare(job)));
    this.arm();
  }

  /**
   * Starts every job that is due at the clock's now and resolves when they have finished (their
   * events submitted, their state persisted). A job still running from an earlier call is not
   * started again (its tick is coalesced into one run after it). The timers call this; tests
   * call it after moving a `ManualClock`. Never rejects.
   */
  async runDue(): Promise<void> {
    if (this.stopped) return;
    const now = this.clock.now();
    const started: Promise<void>[] = [];
    for (const job of this.jobs.values()) {
      if (job.error !== undefined && job.schedule === undefined) continue;
      if (job.dueAt === undefined || job.dueAt > now) continue;
      if (job.running !== undefined || job.blockedBy !== undefined) {
        if (!job.coalescedLogged) {
          job.coalescedLogged = true;
          this.logger.log('warn', 'a tick came while the previous poll of this integration was still running; it is coalesced into one poll after it', { integration: job.integration });
        }
        continue;
      }
      const run = (job.state === undefined ? this.prepare(job) : this.runJob(job)).finally(() => {
        job.running = undefined;
        this.inFlight.delete(run);
        this.arm();
      });
      job.running = run;
      this.inFlight.add(run);
      started.push(run);
    }
    await Promise.all(started);
    this.arm();
  }

  /** Every job, for the daemon's status. */
  status(): TriggerStatus[] {
    return [...this.jobs.values()].map((job) => ({
      integration: job.integration,
      kind: job.kind,
      nextRunAt: job.dueAt === undefined ? undefined : new Date(job.dueAt).toISOString(),
      lastTickAt: job.state === undefined ? undefined : new Date(job.state.lastTickMs).toISOString(),
      running: job.running !== undefined,
      consecutiveFailures: job.consecutiveFailures,
      error: job.error === undefined ? undefined : { code: job.error.code, message: job.error.message },
    }));
  }

  /**
   * Stops scheduling, aborts requests in flight (their page is not committed: the cursor stays
   * where the last committed page put it) and resolves when every running job has finished.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    for (const job of this.jobs.values()) job.abort.abort();
    await Promise.allSettled([...this.inFlight]);
  }

  private createJob(integration: IntegrationPlan, signature: string): Job {
    const trigger = integration.document.spec.trigger;
    const kind = trigger.poll !== undefined ? 'poll' : 'schedule';
    const job: Job = {
      integration: integration.name,
      kind,
      signature,
      schedule: undefined,
      catchUp: trigger.poll !== undefined ? (trigger.poll.catchUp ?? 'once') : (trigger.schedule?.catchUp ?? 'skip'),
      jitterMs: trigger.poll !== undefined ? (parseDurationMs(trigger.poll.jitter ?? '5s') ?? 5_000) : 0,
      poll: undefined,
      state: undefined,
      dueAt: undefined,
      running: undefined,
      blockedBy: undefined,
      coalescedLogged: false,
      retryTickMs: undefined,
      consecutiveFailures: 0,
      error: undefined,
      abort: new AbortController(),
    };
    try {
      const cron = trigger.poll !== undefined ? trigger.poll.schedule : trigger.schedule!.cron;
      const timezone = (trigger.poll !== undefined ? trigger.poll.timezone : trigger.schedule?.timezone) ?? 'UTC';
      const schedule = compileCronSchedule(cron, timezone);
      if (trigger.poll !== undefined) job.poll = this.pollTarget(integration);
      return { ...job, schedule };
    } catch (error) {
      job.error = error instanceof PatchbayError ? error : new PatchbayError('PB_INTEGRATION_BROKEN', String(error), { cause: error });
      this.logger.log('error', 'trigger cannot be scheduled', { integration: integration.name, code: job.error.code, error: job.error.message });
      return job;
    }
  }

  private pollTarget(integration: IntegrationPlan): PollTarget {
    const poll = integration.document.spec.trigger.poll!;
    const connection = integration.connections.get(poll.connection);
    if (connection === undefined) throw new PatchbayError('PB_REF_UNKNOWN_CONNECTION', `trigger.poll: no connection "${poll.connection}"`);
    return { integration: integration.name, trigger: poll, connection, inputs: compileMapping(poll.with ?? {}, 'spec.trigger.poll.with'), vars: integration.vars };
  }

  /** Reads the job's state (writing the first one) and sets when it runs next. */
  private async prepare(job: Job): Promise<void> {
    const now = this.clock.now();
    try {
      let state = await this.readState(job);
      if (state === undefined) {
        const cursor = job.poll?.trigger.cursor;
        // The first time the trigger is seen: ticks before now are not missed, and a poll's
        // cursor starts at `cursor.initial` or now (items changed before it are not new).
        state = { lastTickMs: now, value: cursor === undefined ? undefined : (cursor.initial ?? new Date(now).toISOString()) };
        await this.store.setCursor(job.integration, serializeTriggerState(state), now);
        this.logger.log('info', 'trigger starts', { integration: job.integration, kind: job.kind, from: new Date(now).toISOString() });
        if (job.kind === 'poll' && job.poll?.trigger.cursor === undefined) {
          this.logger.log('warn', 'poll trigger without a cursor: every poll lists everything, and items are deduplicated by id only', { integration: job.integration });
        }
      }
      job.state = state;
      const latest = job.schedule!.latest(now);
      // Ticks passed since the last one handled: decide at once (with a poll's jitter).
      job.dueAt = latest !== undefined && latest > state.lastTickMs ? now + this.jitter(job) : this.nextDue(job, state.lastTickMs);
    } catch (error) {
      const failure = asPatchbayError(error);
      job.consecutiveFailures += 1;
      job.dueAt = now + this.retryDelayMs;
      this.logger.log('error', 'could not read the trigger state; trying again later', { integration: job.integration, code: failure.code, error: failure.message });
    }
  }

  private async readState(job: Job): Promise<TriggerState | undefined> {
    const text = await this.store.getCursor(job.integration);
    if (text === undefined) return undefined;
    try {
      return parseTriggerState(text);
    } catch (error) {
      const failure = asPatchbayError(error);
      this.logger.log('warn', 'the stored trigger state is unreadable; starting again from now', { integration: job.integration, code: failure.code, error: failure.message });
      return undefined;
    }
  }

  /** Runs a due job under its trigger lease (see the module comment). */
  private async runJob(job: Job): Promise<void> {
    job.coalescedLogged = false;
    let held: boolean;
    try {
      held = await this.store.acquireTriggerLease(job.integration, this.owner, this.clock.now(), this.leaseMs);
    } catch (error) {
      const failure = asPatchbayError(error);
      this.failed(job, failure, 'could not take the trigger lease; the tick is tried again shortly', { retryInMs: this.retryDelayMs });
      const tickMs = job.schedule!.latest(this.clock.now()) ?? this.clock.now();
      const scheduledAt = new Date(tickMs).toISOString();
      if (job.kind === 'schedule') this.onTick?.({ integration: job.integration, outcome: 'failed', scheduledAt, missedTicks: 0, accepted: false, code: failure.code });
      else this.onPoll?.({ integration: job.integration, outcome: 'failed', scheduledAt, pages: 0, items: 0, accepted: 0, duplicates: 0, durationMs: 0, code: failure.code });
      this.lookAgain(job);
      return;
    }
    if (!held) {
      this.logger.log('debug', 'another daemon holds this trigger and handles the tick', { integration: job.integration, retryInMs: this.retryDelayMs });
      this.lookAgain(job);
      return;
    }
    try {
      await this.runHeld(job);
    } finally {
      try {
        await this.store.releaseTriggerLease(job.integration, this.owner);
      } catch (error) {
        // Harmless: the lease runs out by itself, and this daemon renews it if it is due again first.
        const failure = asPatchbayError(error);
        this.logger.log('warn', 'could not release the trigger lease; it runs out by itself', { integration: job.integration, code: failure.code, error: failure.message });
      }
    }
  }

  /**
   * A due tick left to another attempt (the lease is held elsewhere, or could not be taken): look
   * again after `retryDelayMs` (or at the next tick, if sooner), and still count the tick as on
   * time then, so that a holder that died without handling it is not turned into a missed tick.
   */
  private lookAgain(job: Job): void {
    const now = this.clock.now();
    const last = job.state!.lastTickMs;
    const latest = job.schedule!.latest(now);
    if (latest !== undefined && latest > last) job.retryTickMs = latest;
    job.dueAt = Math.min(now + this.retryDelayMs, this.nextDue(job, Math.max(last, now)) ?? Number.POSITIVE_INFINITY);
  }

  private async runHeld(job: Job): Promise<void> {
    const schedule = job.schedule!;
    // Read under the lease: another daemon may have moved the state since this one last read it.
    try {
      job.state = (await this.readState(job)) ?? job.state!;
    } catch (error) {
      const failure = asPatchbayError(error);
      this.failed(job, failure, 'could not read the trigger state; the tick is tried again at the next one');
      job.dueAt = this.nextDue(job, Math.max(job.state!.lastTickMs, this.clock.now()));
      return;
    }
    const now = this.clock.now();
    const last = job.state!.lastTickMs;
    const latest = schedule.latest(now);
    if (latest === undefined || latest <= last) {
      // Handled already (by another daemon, while this one waited for the lease).
      job.retryTickMs = undefined;
      job.dueAt = this.nextDue(job, Math.max(last, now));
      return;
    }
    const due = schedule.count(last, now);
    const punctual = now - latest <= this.lateToleranceMs + job.jitterMs || job.retryTickMs === latest;
    const missed = punctual ? due - 1 : due;
    if (!punctual && job.catchUp === 'skip') {
      await this.skipTicks(job, latest, missed);
    } else {
      const missedTicks = job.catchUp === 'once' ? missed : 0;
      if (missed > 0 && job.catchUp === 'skip') {
        this.logger.log('info', 'ticks missed before this one are skipped (catchUp: skip)', { integration: job.integration, skipped: missed });
      } else if (missed > 0) {
        this.logger.log('info', 'catching up missed ticks with one run (catchUp: once)', { integration: job.integration, missedTicks: missed, scheduledAt: new Date(latest).toISOString() });
      }
      if (job.kind === 'schedule') await this.fireTick(job, latest, missedTicks);
      else await this.poll(job, latest);
    }
    // A poll's failure waits for the next tick; only a schedule tick is retried sooner.
    if (job.kind === 'poll') job.retryTickMs = undefined;
    // From the tick handled: a tick that passed while a slow poll ran is due at once (coalesced).
    const next = this.nextDue(job, Math.max(job.state!.lastTickMs, latest));
    // A tick that could not be fired is tried again soon, not left to the next tick (which would
    // skip it, or fold it into a later run): the daemon was up, so it is not a missed tick.
    job.dueAt = job.retryTickMs === undefined ? next : Math.min(this.clock.now() + this.retryDelayMs, next ?? Number.POSITIVE_INFINITY);
  }

  private async skipTicks(job: Job, latest: number, missed: number): Promise<void> {
    this.logger.log('info', 'ticks missed during downtime are skipped (catchUp: skip)', { integration: job.integration, skipped: missed, next: new Date(job.schedule!.next(latest) ?? latest).toISOString() });
    const state: TriggerState = { ...job.state!, lastTickMs: latest };
    try {
      await this.store.setCursor(job.integration, serializeTriggerState(state), this.clock.now());
      job.state = state;
      if (job.kind === 'schedule') this.onTick?.({ integration: job.integration, outcome: 'skipped', scheduledAt: new Date(latest).toISOString(), missedTicks: missed, accepted: false });
    } catch (error) {
      this.failed(job, asPatchbayError(error), 'could not record skipped ticks');
    }
  }

  private async fireTick(job: Job, tickMs: number, missedTicks: number): Promise<void> {
    const firedAtMs = this.clock.now();
    const scheduledAt = new Date(tickMs).toISOString();
    try {
      const result = await fireScheduleTick({
        integration: job.integration,
        tickMs,
        firedAtMs,
        missedTicks,
        cron: job.schedule!.expression,
        timezone: job.schedule!.timezone,
        submit: this.submit,
      });
      // The tick's event is committed before the tick is recorded: a crash between the two
      // fires it again, and its key makes that a duplicate.
      const state: TriggerState = { lastTickMs: tickMs };
      await this.store.setCursor(job.integration, serializeTriggerState(state), this.clock.now());
      job.state = state;
      job.consecutiveFailures = 0;
      job.error = undefined;
      job.retryTickMs = undefined;
      this.logger.log('info', result.accepted ? 'schedule fired' : 'schedule tick had already fired', { integration: job.integration, scheduledAt, run: result.runId, missedTicks });
      this.onTick?.({ integration: job.integration, outcome: 'fired', scheduledAt, missedTicks, accepted: result.accepted });
    } catch (error) {
      const failure = asPatchbayError(error);
      job.retryTickMs = tickMs;
      this.failed(job, failure, 'schedule tick could not be fired; it is tried again shortly', { retryInMs: this.retryDelayMs });
      this.onTick?.({ integration: job.integration, outcome: 'failed', scheduledAt, missedTicks, accepted: false, code: failure.code });
    }
  }

  private async poll(job: Job, tickMs: number): Promise<void> {
    const startedAt = this.clock.now();
    const outcome = await pollListing({
      target: job.poll!,
      state: job.state!,
      tickMs,
      saveState: this.leasedSave(job),
      submit: this.submit,
      clock: this.clock,
      logger: this.logger,
      signal: job.abort.signal,
      maxPages: this.maxPagesPerPoll,
      mappingLimits: this.mappingLimits,
    });
    job.state = outcome.state;
    const report = {
      integration: job.integration,
      scheduledAt: new Date(tickMs).toISOString(),
      pages: outcome.pages,
      items: outcome.items,
      accepted: outcome.accepted,
      duplicates: outcome.duplicates,
      durationMs: this.clock.now() - startedAt,
    };
    if (outcome.error !== undefined) {
      this.failed(job, outcome.error, 'poll failed; the cursor stays and the poll is tried again at the next tick', { pages: outcome.pages, accepted: outcome.accepted });
      this.onPoll?.({ ...report, outcome: 'failed', code: outcome.error.code });
      return;
    }
    job.consecutiveFailures = 0;
    job.error = undefined;
    this.logger.log('info', 'polled', { ...report, older: outcome.older, withoutId: outcome.withoutId, finished: outcome.finished });
    this.onPoll?.({ ...report, outcome: outcome.finished ? 'succeeded' : 'partial' });
  }

  /**
   * How one poll saves its state: every write first renews the trigger lease, and is refused with
   * `PB_TRIGGER_LEASE_LOST` when another daemon has taken it over (this poll outlived its lease),
   * so the two never race on the cursor: this one stops, the new holder goes on from the last
   * state saved.
   */
  private leasedSave(job: Job): (state: string, now: number) => Promise<void> {
    return async (state, now) => {
      if (!(await this.store.acquireTriggerLease(job.integration, this.owner, now, this.leaseMs))) {
        throw new PatchbayError('PB_TRIGGER_LEASE_LOST', `another daemon took over the trigger of ${job.integration} while this one polled it (the lease of ${this.leaseMs} ms ran out): it continues from the last saved cursor`);
      }
      await this.store.setCursor(job.integration, state, now);
    };
  }

  private failed(job: Job, failure: PatchbayError, message: string, fields: Record<string, unknown> = {}): void {
    job.consecutiveFailures += 1;
    job.error = failure;
    this.logger.log('error', message, { integration: job.integration, code: failure.code, error: failure.message, failures: job.consecutiveFailures, ...fields });
  }

  /** The run time of the first tick after `afterMs`, with a fresh jitter draw. */
  private nextDue(job: Job, afterMs: number): number | undefined {
    const tick = job.schedule!.next(afterMs);
    return tick === undefined ? undefined : tick + this.jitter(job);
  }

  /** A delay in [0, jitterMs). */
  private jitter(job: Job): number {
    if (job.jitterMs <= 0) return 0;
    return Math.min(job.jitterMs - 1, Math.floor(this.random() * job.jitterMs));
  }

  private arm(): void {
    if (!this.timers || this.stopped) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    let earliest: number | undefined;
    for (const job of this.jobs.values()) {
      if (job.dueAt === undefined || job.running !== undefined || job.blockedBy !== undefined) continue;
      if (earliest === undefined || job.dueAt < earliest) earliest = job.dueAt;
    }
    if (earliest === undefined) return;
    // Capped so a clock that jumps (a suspended laptop, a corrected system time) is noticed.
    const delayMs = Math.min(Math.max(0, earliest - this.clock.now()), 60_000);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.runDue();
    }, delayMs);
    this.timer.unref();
  }
}

/**
 * Builds the scheduler for `options.plan`, prepares every job (reads its state, writes a first
 * state for a new trigger) and, unless `timers: false`, arms its timers. Resolves when the jobs
 * are prepared; never rejects for one job's sake (see `TriggerScheduler.setPlan`).
 */
export async function startTriggers(options: TriggerSchedulerOptions): Promise<TriggerScheduler> {
  const scheduler = new TriggerScheduler(options);
  await scheduler.setPlan(options.plan);
  return scheduler;
}

function signatureOf(integration: IntegrationPlan): string {
  const trigger = integration.document.spec.trigger;
  const connection = trigger.poll === undefined ? undefined : integration.document.spec.connections[trigger.poll.connection];
  return JSON.stringify([trigger, connection]);
}

function asPatchbayError(error: unknown): PatchbayError {
  return error instanceof PatchbayError ? error : new PatchbayError('PB_INTERNAL', error instanceof Error ? error.message : String(error), { cause: error });
}
