import { join } from 'node:path';
import { buildExecutionPlan, type ExecutionPlan } from '../../engine/executor/plan.js';
import { Executor, type ExecutorOptions } from '../../engine/executor/executor.js';
import type { Clock } from '../../engine/lib/clock.js';
import { MemoryLogger } from '../../engine/lib/log.js';
import { Redactor, redactingLogger } from '../../engine/lib/redact.js';
import { SecretSet } from '../../engine/lib/secrets.js';
import { validateManifests } from '../../engine/manifest/validate.js';
import { openSqliteStore } from '../../engine/store/sqlite/sqlite-store.js';
import type { StateStore } from '../../engine/store/state-store.js';
import { makeTempDir, repoRoot, writeFiles } from '../support/cli.js';
import { keepForSuiteScan } from '../support/suite-record.js';

/** The fixture providers of the executor tests (`ledger`). */
export const fixtureProviders = join(repoRoot, 'test', 'fixtures', 'executor', 'providers');

export interface LedgerIntegrationOptions {
  readonly name: string;
  readonly origin: string;
  /** The steps, as YAML lines indented by four spaces (`    - id: …`). */
  readonly steps: string;
  /** The spec's `policy`, as YAML lines indented by four spaces. */
  readonly policy?: string;
  /** Extra spec lines (`redact`, `vars`), indented by two spaces. */
  readonly extra?: string;
  /** Environment variable of the bearer token. @default LEDGER_TOKEN */
  readonly tokenEnv?: string;
}

/** An integration on the `ledger` fixture provider, whose connection reaches `origin` on 127.0.0.1. */
export function ledgerIntegration(options: LedgerIntegrationOptions): string {
  const host = new URL(options.origin).host;
  return `apiVersion: patchbay/v1
kind: Integration
metadata:
  name: ${options.name}
spec:
  connections:
    ledger:
      provider: ledger
      baseUrl: ${options.origin}
      allowedHosts: [ "${host}" ]
      allowPrivateAddresses: [ 127.0.0.1/32 ]
      auth: { type: bearer, token: { env: ${options.tokenEnv ?? 'LEDGER_TOKEN'} } }
      webhookSecrets: [ { env: LEDGER_WEBHOOK_SECRET } ]
  trigger:
    webhook: { connection: ledger, events: [ "*" ] }
  steps:
${options.steps}
${options.policy === undefined ? '' : `  policy:\n${options.policy}\n`}${options.extra ?? ''}`;
}

export interface TestEngine {
  readonly dir: string;
  readonly stateFile: string;
  readonly store: StateStore;
  readonly plan: ExecutionPlan;
  readonly executor: Executor;
  readonly logger: MemoryLogger;
  close(): Promise<void>;
}

/**
 * An engine in this process on real files: the integrations written to a temporary project,
 * validated (any error fails the call, with the diagnostics), planned with `env` as the
 * environment, and a SQLite store in the project folder.
 */
export async function startTestEngine(options: {
  readonly integrations: Record<string, string>;
  readonly env: Record<string, string>;
  readonly clock?: Clock;
  readonly executor?: Partial<ExecutorOptions>;
  readonly dir?: string;
  /** The state store's busy timeout. @default the store's */
  readonly busyTimeoutMs?: number;
  /** Personal-data samples the test put in events, which must not reach the state file or logs. */
  readonly personalData?: readonly string[];
}): Promise<TestEngine> {
  const dir = options.dir ?? makeTempDir('patchbay-exec-');
  writeFiles(dir, Object.fromEntries(Object.entries(options.integrations).map(([name, text]) => [`integrations/${name}.yaml`, text])));
  const validation = await validateManifests({ paths: [join(dir, 'integrations')], providerDirs: [fixtureProviders], cwd: dir });
  const errors = validation.diagnostics.filter((diagnostic) => diagnostic.severity === 'error');
  if (errors.length > 0) throw new Error(`test integrations do not validate:\n${errors.map((e) => `${e.code} ${e.message}`).join('\n')}`);
  const secrets = new SecretSet({ env: options.env });
  const logger = new MemoryLogger();
  const plan = await buildExecutionPlan({ integrations: validation.integrations, registry: validation.registry, secrets, clock: options.clock, logger: redactingLogger(logger, new Redactor({ secrets })) });
  const stateFile = join(dir, 'state.db');
  const store = await openSqliteStore(stateFile, options.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: options.busyTimeoutMs });
  let closed = false;
  const executor = new Executor({ store, plan, clock: options.clock, logger: redactingLogger(logger, new Redactor({ secrets })), ...options.executor });
  return {
    dir,
    stateFile,
    store,
    plan,
    executor,
    logger,
    close: async () => {
      // Idempotent: a test may close an engine early (a restart) and the cleanup closes it again.
      if (closed) return;
      closed = true;
      await executor.stop(1_000);
      await plan.close();
      await store.close();
      // Every secret in the environment and every sample must be absent from what was written.
      keepForSuiteScan({ label: 'executor', files: [stateFile], logs: [logger.text()], secrets: [...Object.values(options.env), ...(options.personalData ?? [])] });
    },
  };
}

/**
 * Resolves once `runs` runs are in one of `statuses` (default: finished, succeeded or dead);
 * rejects with how far it got after `timeoutMs`.
 */
export async function waitForRuns(engine: TestEngine, runs: number, timeoutMs: number, statuses: readonly string[] = ['succeeded', 'dead']): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const counts = await engine.store.countRuns();
    const done = counts.filter((row) => statuses.includes(row.status)).reduce((sum, row) => sum + row.count, 0);
    if (done >= runs) return;
    if (Date.now() > deadline) throw new Error(`only ${done} of ${runs} runs became ${statuses.join(' or ')} in ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
