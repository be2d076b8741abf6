import type { AddressInfo } from 'node:net';
import { renderText } from '../diag/render.js';
import { Executor, type ExecutorOptions } from '../executor/executor.js';
import { buildExecutionPlan, type ExecutionPlan, type PlanOptions } from '../executor/plan.js';
import { startRetention } from '../executor/retention.js';
import type { BucketSpec } from '../executor/rate-limiter.js';
import { systemClock, type Clock } from '../lib/clock.js';
import type { Logger } from '../lib/log.js';
import { Redactor, redactingLogger } from '../lib/redact.js';
import { SecretSet, type SecretSources } from '../lib/secrets.js';
import { validateManifests, type ValidationResult } from '../manifest/validate.js';
import { openStateStore } from '../store/open-store.js';
import type { StateStore } from '../store/state-store.js';
import { WebhookIngress, type IngressObserver } from '../triggers/ingress.js';
import { buildHookRoutes, type HookRoutes, type WebhookSecretResolver } from '../triggers/webhook-routes.js';
import { createDaemonServer, type DaemonServer } from './server.js';

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
  /** Finished runs older than this are purged hourly; undefined keeps everything. */
  readonly retentionMs?: number | undefined;
  /** Secret sources other than `env` (the sandbox's generated values). */
  readonly secretSources?: SecretSources;
  /** Replaces webhook secret resolution (the sandbox's generated secrets). */
  readonly webhookSecrets?: WebhookSecretResolver;
  /** Passed to every connection (the sandbox's base URLs). */
  readonly connectionContext?: PlanOptions['connectionContext'];
  /** Extra executor settings (tests: lease and poll intervals). */
  readonly executor?: Partial<Pick<ExecutorOptions, 'leaseMs' | 'pollIntervalMs' | 'maxRateWaitMs'>>;
  readonly ingressObserver?: IngressObserver;
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
  const secrets = new SecretSet({ env: options.env, ...options.secretSources });
  const logger = redactingLogger(options.logger, new Redactor({ secrets }));
  const errors = validation.diagnostics.filter((diagnostic) => diagnostic.severity === 'error');
  if (errors.length > 0) {
    logger.log('error', 'integrations with errors are not served; the others are', {
      problems: renderText(errors, { files: validation.files, documents: validation.documents }, false).trimEnd().split('\n'),
    });
  }
  if (validation.integrations.length === 0) return { kind: 'noIntegrations', validation };

  const plan = await buildExecutionPlan({
    integrations: validation.integrations,
    registry: validation.registry,
    secrets,
    clock,
    logger,
    connectionContext: options.connectionContext,
  });
  let store: StateStore;
  try {
    store = await openStateStore(options.statePath);
  } catch (error) {
    await plan.close();
    throw error;
  }
  const hooks = await buildHookRoutes(plan, secrets, options.webhookSecrets);
  for (const [name, error] of [...plan.broken, ...hooks.problems]) {
    logger.log('error', 'integration cannot run; its deliveries are answered 503 until it is fixed', { integration: name, code: error.code, error: error.message });
  }
  await store.recordRevision({ id: plan.revision, appliedAt: clock.now(), integrations: [...plan.integrations.keys()] });

  const executor = new Executor({ store, plan, clock, logger, ...options.executor });
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
    tls: options.tls !== undefined,
    clock,
    logger,
    observer: options.ingressObserver,
  });
  const server = createDaemonServer({ ingress, ready: () => ready && !draining, tls: options.tls, logger });
  let address: AddressInfo;
  try {
    address = await server.listen(options.port ?? 8080, options.host ?? '0.0.0.0');
  } catch (error) {
    await plan.close();
    await store.close();
    throw error;
  }
  executor.start();
  const stopRetention = options.retentionMs === undefined ? async () => undefined : startRetention({ store, retentionMs: options.retentionMs, logger });
  ready = true;
  const host = address.address === '0.0.0.0' || address.address === '::' ? '127.0.0.1' : address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `${options.tls === undefined ? 'http' : 'https'}://${host}:${address.port}`;

  let stopping: Promise<void> | undefined;
  const stop = (deadlineMs = 10_000): Promise<void> => {
    stopping ??= (async () => {
      draining = true;
      await executor.stop(deadlineMs);
      await stopRetention();
      await server.close(1_000);
      await plan.close();
      await store.close();
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
    logger,
    startedAt,
    draining: () => draining,
    stop,
  };
}

/** Type guard for `startDaemon`'s result. */
export function isDaemon(value: Daemon | DaemonStartProblem): value is Daemon {
  return !('kind' in value);
}

/** Exposed for the serve command's banner: the route of each webhook integration. */
export function hookUrls(daemon: Daemon): { integration: string; url: string }[] {
  return daemon.hooks.names.map((name) => ({ integration: name, url: `${daemon.url}/hooks/${encodeURIComponent(name)}` }));
}

export type { DaemonServer };
