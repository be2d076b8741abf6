import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { renderText } from '../diag/render.js';
import { Executor, type ExecutorOptions } from '../executor/executor.js';
import { buildExecutionPlan, type ExecutionPlan } from '../executor/plan.js';
import { startRetention } from '../executor/retention.js';
import type { BucketSpec } from '../executor/rate-limiter.js';
import { systemClock, type Clock } from '../lib/clock.js';
import type { Logger } from '../lib/log.js';
import { Redactor, redactingLogger } from '../lib/redact.js';
import { SecretSet } from '../lib/secrets.js';
import { validateManifests, type ValidationResult } from '../manifest/validate.js';
import { openStateStore } from '../store/open-store.js';
import type { StateStore } from '../store/state-store.js';
import { WebhookIngress } from '../triggers/ingress.js';
import { buildHookRoutes, type HookRoutes } from '../triggers/webhook-routes.js';
import { packageRoot } from '../lib/package-root.js';
import { startTriggers, type TriggerScheduler } from '../triggers/scheduler.js';
import type { DaemonStatus, IntegrationStatus } from './admin/api.js';
import { adminAuthWarning, parseAdminAuthSettings } from './admin/auth.js';
import { createAdminHandler } from './admin/handler.js';
import { DaemonMetrics } from './metrics.js';
import { startSandbox, sandboxConnectionContext, type Sandbox } from './sandbox/sandbox.js';
import { createSandboxSecrets } from './sandbox/secrets.js';
import { removeSandboxFile, writeSandboxFile } from './sandbox/state-file.js';
import { createDaemonServer } from './server.js';

/**
 * The daemon's composition root: validates the manifests, prepares the plan, opens the store,
 * and starts the executor, the webhook ingress, pollers and schedules, retention and the
 * listener. Each part is a value built here and handed to the next; nothing is global, so a
 * test builds a whole daemon in one call.
 */

export interface DaemonOptions {
  /** Manifest files and folders. */
  readonly paths: readonly string[];
  readonly providerDirs: readonly string[];
  readonly catalogue: boolean;
  /** SQLite file or `postgres://` URL. */
  readonly statePath: string;
  readonly cwd: string;
  /** Where `{ env }` secrets come from. */
  readonly env: NodeJS.ProcessEnv;
  /** @default 8080 */
  readonly port?: number;
  /** @default '0.0.0.0' */
  readonly host?: string;
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer } | undefined;
  /** Not yet redacting: the daemon wraps it with every resolved secret. */
  readonly logger: Logger;
  readonly clock?: Clock;
  readonly maxBodyBytes?: number;
  readonly inboundRate?: BucketSpec;
  readonly publicUrl?: URL | undefined;
  readonly trustProxy?: boolean;
  /** With `trustProxy`, how many proxies append to X-Forwarded-For. @default 1 */
  readonly proxyHops?: number;
  /** Finished runs older than this are purged hourly; undefined keeps everything. */
  readonly retentionMs?: number | undefined;
  /** Extra executor settings (tests: lease and poll intervals). */
  readonly executor?: Partial<Pick<ExecutorOptions, 'leaseMs' | 'pollIntervalMs' | 'maxRateWaitMs'>>;
  /**
   * Send every provider call to a built-in local sandbox, resolve secrets the environment lacks to
   * generated values, generate webhook secrets and an admin token, and write them to
   * `.patchbay/sandbox.json` under `cwd` for `patchbay send`. @default false
   */
  readonly sandbox?: boolean;
  /** The listener's time limits (tests shorten them). @default 10 s for headers, 30 s for a request */
  readonly serverTimeouts?: { readonly headersTimeoutMs?: number; readonly requestTimeoutMs?: number };
  /** Pollers' and schedules' random jitter source, in [0, 1). @default Math.random */
  readonly random?: () => number;
}

/** A running daemon. */
export interface Daemon {
  readonly address: AddressInfo;
  /** `http(s)://host:port` as bound (loopback when bound to every interface). */
  readonly url: string;
  readonly plan: ExecutionPlan;
  readonly store: StateStore;
  readonly validation: ValidationResult;
  readonly hooks: HookRoutes;
  readonly executor: Executor;
  readonly metrics: DaemonMetrics;
  /** The sandbox, when the daemon runs in sandbox mode. */
  readonly sandbox: Sandbox | undefined;
  /** Environment variables given generated values in sandbox mode (names only). */
  readonly generatedSecrets: readonly string[];
  status(): DaemonStatus;
  /** Redacting logger every part writes to. */
  readonly logger: Logger;
  readonly startedAt: number;
  draining(): boolean;
  /**
   * Stops: deliveries are refused with 503 from now on, pollers and schedules stop, steps in
   * flight get `deadlineMs` to finish (the rest are given back and resume on the next start),
   * then the listener, the connections and the store close.
   */
  stop(deadlineMs?: number): Promise<void>;
}

/** The outcome of `startDaemon` when nothing can run. */
export type DaemonStartProblem = { readonly kind: 'noIntegrations'; readonly validation: ValidationResult };

/**
 * Starts a daemon (see `DaemonOptions`). Integrations with validation errors are reported to the
 * logger and left out; one whose connections cannot open is served 503 and reported. Resolves to
 * `noIntegrations` when no manifest is valid. Rejects with the store's PB_STATE_* errors and
 * PB_DAEMON_LISTEN, having closed what it opened.
 */
export async function startDaemon(options: DaemonOptions): Promise<Daemon | DaemonStartProblem> {
  const clock = options.clock ?? systemClock;
  const startedAt = clock.now();
  const validation = await validateManifests({ paths: options.paths, providerDirs: options.providerDirs, bundledProviders: options.catalogue, cwd: options.cwd });
  const sandboxSecrets = options.sandbox === true ? createSandboxSecrets({ integrations: validation.integrations, registry: validation.registry, env: options.env }) : undefined;
  const secrets = new SecretSet({ env: options.env, ...sandboxSecrets?.sources });
  const logger = redactingLogger(options.logger, new Redactor({ secrets }));
  const errors = validation.diagnostics.filter((diagnostic) => diagnostic.severity === 'error');
  if (errors.length > 0) {
    logger.log('error', 'integrations with errors are not served; the others are', {
      problems: renderText(errors, { files: validation.files, documents: validation.documents }, false).trimEnd().split('\n'),
    });
  }
  if (validation.integrations.length === 0) return { kind: 'noIntegrations', validation };

  // Everything opened so far, closed in reverse when the start fails part-way.
  const opened: (() => Promise<void>)[] = [];
  const undo = async (): Promise<void> => {
    for (const close of opened.reverse()) {
      await close().catch((error: unknown) => logger.log('warn', 'could not close after a failed start', { error: error instanceof Error ? error.message : String(error) }));
    }
  };
  try {
    let sandbox: Sandbox | undefined;
    if (options.sandbox === true) {
      sandbox = await startSandbox({ registry: validation.registry, logger, secrets, clock });
      opened.push(() => sandbox!.close());
    }
    const plan = await buildExecutionPlan({
      integrations: validation.integrations,
      registry: validation.registry,
      secrets,
      clock,
      logger,
      ...(sandbox === undefined ? {} : { connectionContext: sandboxConnectionContext(sandbox) }),
    });
    opened.push(() => plan.close());
    const store = await openStateStore(options.statePath);
    opened.push(() => store.close());
    const hooks = await buildHookRoutes(plan, secrets, sandboxSecrets === undefined ? undefined : (...args) => sandboxSecrets.resolveWebhookSecrets(...args));
    opened.push(() => hooks.close());
    for (const [name, error] of [...plan.broken, ...hooks.problems]) {
      logger.log('error', 'integration cannot run; its deliveries are answered 503 until it is fixed', { integration: name, code: error.code, error: error.message });
    }
    await store.recordRevision({ id: plan.revision, appliedAt: clock.now(), integrations: [...plan.integrations.keys()] });

    const metrics = new DaemonMetrics({ countRuns: () => store.countRuns(), logger });
    metrics.setIntegrations([...plan.integrations.keys(), ...plan.broken.keys()]);
    const executor = new Executor({
      store,
      plan,
      clock,
      logger,
      onRunSettled: metrics.onRunSettled,
      onAttempt: metrics.onAttempt,
      onRateLimitWait: metrics.onRateLimitWait,
      ...options.executor,
    });
    let draining = false;
    let ready = false;
    const ingress = new WebhookIngress({
      table: hooks,
      submit: (events) => executor.submit(events),
      draining: () => draining,
      maxBodyBytes: options.maxBodyBytes,
      inboundRate: options.inboundRate,
      publicUrl: options.publicUrl,
      trustProxy: options.trustProxy,
      proxyHops: options.proxyHops,
      tls: options.tls !== undefined,
      clock,
      logger,
      observer: {
        received: (integration) => metrics.eventReceived(integration, 'webhook'),
        rejected: (integration, code) => metrics.eventRejected(integration, code),
      },
    });

    const adminEnv: Record<string, string | undefined> = { ...options.env };
    let sandboxToken: string | undefined;
    if (sandbox !== undefined && (adminEnv.PATCHBAY_ADMIN_TOKEN === undefined || adminEnv.PATCHBAY_ADMIN_TOKEN === '')) {
      sandboxToken = `pbsandbox_${randomBytes(24).toString('base64url')}`;
      adminEnv.PATCHBAY_ADMIN_TOKEN = sandboxToken;
      secrets.add(sandboxToken);
    }
    const authSettings = parseAdminAuthSettings(adminEnv);
    const authWarning = adminAuthWarning(authSettings);
    if (authWarning !== undefined) logger.log('warn', authWarning);

    let triggers: TriggerScheduler | undefined;
    const status = (): DaemonStatus => daemonStatus({ plan, validation, hooks, triggers, startedAt, draining });
    const admin = createAdminHandler({ store, auth: authSettings, metrics, status, clock, logger });
    const server = createDaemonServer({ ingress, admin, ready: () => ready && !draining, tls: options.tls, maxBodyBytes: options.maxBodyBytes, ...options.serverTimeouts, logger });
    const address = await server.listen(options.port ?? 8080, options.host ?? '0.0.0.0');
    opened.push(() => server.close(0));
    executor.start();
    opened.push(() => executor.stop(0));
    triggers = await startTriggers({
      plan,
      store,
      // One identity per daemon process: with several daemons on one store, the lease holder polls.
      owner: executor.owner,
      submit: (events) => executor.submit(events),
      clock,
      logger,
      onPoll: (report) => {
        metrics.triggerRun(report.integration, 'poll', report.outcome);
        for (let i = 0; i < report.accepted; i += 1) metrics.eventReceived(report.integration, 'poll');
      },
      onTick: (report) => {
        metrics.triggerRun(report.integration, 'schedule', report.outcome);
        if (report.accepted) metrics.eventReceived(report.integration, 'schedule');
      },
      ...(options.random === undefined ? {} : { random: options.random }),
    });
    const stopRetention = options.retentionMs === undefined ? async () => undefined : startRetention({ store, retentionMs: options.retentionMs, logger });
    const host = address.address === '0.0.0.0' || address.address === '::' ? '127.0.0.1' : address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const url = `${options.tls === undefined ? 'http' : 'https'}://${host}:${address.port}`;
    if (sandbox !== undefined && sandboxSecrets !== undefined) {
      await writeSandboxFile(options.cwd, {
        version: 1,
        daemonUrl: url,
        adminToken: sandboxToken ?? adminEnv.PATCHBAY_ADMIN_TOKEN ?? '',
        sandboxUrl: sandbox.url,
        pid: process.pid,
        startedAt: new Date(startedAt).toISOString(),
        paths: options.paths,
        integrations: Object.fromEntries([...sandboxSecrets.webhookSecrets].map(([name, values]) => [name, { webhookSecrets: values }])),
      });
    }
    ready = true;

    let stopping: Promise<void> | undefined;
    const stop = (deadlineMs = 10_000): Promise<void> => {
      stopping ??= (async () => {
        draining = true;
        await triggers?.stop();
        await executor.stop(deadlineMs);
        await stopRetention();
        await server.close(1_000);
        await hooks.close();
        await plan.close();
        await store.close();
        if (sandbox !== undefined) {
          await removeSandboxFile(options.cwd);
          await sandbox.close();
        }
      })();
      return stopping;
    };
    return {
      address,
      url,
      plan,
      store,
      validation,
      hooks,
      executor,
      metrics,
      sandbox,
      generatedSecrets: sandboxSecrets?.generated ?? [],
      status,
      logger,
      startedAt,
      draining: () => draining,
      stop,
    };
  } catch (error) {
    await undo();
    throw error;
  }
}

let cachedVersion: string | undefined;
function patchbayVersion(): string {
  cachedVersion ??= (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
  return cachedVersion;
}

/** The status the admin API reports: each integration of the revision, how it runs, and why one cannot. */
function daemonStatus(input: { plan: ExecutionPlan; validation: ValidationResult; hooks: HookRoutes; triggers: TriggerScheduler | undefined; startedAt: number; draining: boolean }): DaemonStatus {
  const integrations: IntegrationStatus[] = [];
  const triggerErrors = new Map<string, { code: string; message: string }>();
  for (const trigger of input.triggers?.status() ?? []) {
    if (trigger.error !== undefined) triggerErrors.set(trigger.integration, trigger.error);
  }
  const kindOf = (trigger: { webhook?: unknown; poll?: unknown; schedule?: unknown } | undefined): string =>
    trigger?.webhook !== undefined ? 'webhook' : trigger?.poll !== undefined ? 'poll' : trigger?.schedule !== undefined ? 'schedule' : 'none';
  for (const plan of input.plan.integrations.values()) {
    const kind = kindOf(plan.document.spec.trigger);
    const problem = input.hooks.problems.get(plan.name) ?? triggerErrors.get(plan.name);
    integrations.push({
      name: plan.name,
      trigger: kind,
      enabled: plan.enabled,
      state: problem !== undefined ? 'broken' : plan.enabled ? 'running' : 'disabled',
      ...(problem === undefined ? {} : { error: { code: problem.code, message: problem.message } }),
    });
  }
  for (const [name, error] of input.plan.broken) {
    const document = input.validation.integrations.find((integration) => integration.name === name)?.document;
    integrations.push({ name, trigger: kindOf(document?.spec.trigger), enabled: document?.spec.enabled !== false, state: 'broken', error: { code: error.code, message: error.message } });
  }
  integrations.sort((a, b) => a.name.localeCompare(b.name));
  return { revision: input.plan.revision, startedAt: input.startedAt, draining: input.draining, version: patchbayVersion(), integrations };
}

/** Type guard for `startDaemon`'s result. */
export function isDaemon(value: Daemon | DaemonStartProblem): value is Daemon {
  return !('kind' in value);
}

/** Exposed for the serve command's banner: the route of each webhook integration. */
export function hookUrls(daemon: Daemon): { integration: string; url: string }[] {
  return daemon.hooks.names.map((name) => ({ integration: name, url: `${daemon.url}/hooks/${encodeURIComponent(name)}` }));
}

