import { existsSync } from 'node:fs';
import { renderText } from '../diag/render.js';
import { buildExecutionPlan, type ExecutionPlan } from '../executor/plan.js';
import type { Logger } from '../lib/log.js';
import { Redactor, redactingLogger } from '../lib/redact.js';
import { SecretSet } from '../lib/secrets.js';
import { validateManifests, type ValidationResult } from '../manifest/validate.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import type { StateStore } from '../store/state-store.js';
import type { CliIO } from './main.js';

/** What the engine commands (`work`, `enqueue`) run on. */
export interface LoadedEngine {
  readonly validation: ValidationResult;
  readonly plan: ExecutionPlan;
  readonly store: StateStore;
  /** Redacts every secret of every connection (wraps the command's logger). */
  readonly logger: Logger;
  close(): Promise<void>;
}

export interface LoadEngineOptions {
  readonly paths: readonly string[];
  readonly providerDirs: readonly string[];
  readonly catalogue: boolean;
  readonly statePath: string;
  /** Refuse to create a state file that does not exist yet. */
  readonly requireState?: boolean;
  readonly logger: Logger;
}

/**
 * Validates the manifests, prepares the valid integrations (their problems printed to stderr: the
 * others still run), opens the state store and records the revision. Returns a number (the exit
 * code) when nothing can run: no valid integration, or a state file required but missing.
 * Throws the store's errors (PB_STATE_*).
 */
export async function loadEngine(options: LoadEngineOptions, io: CliIO): Promise<LoadedEngine | 'noIntegrations' | 'noState'> {
  const validation = await validateManifests({ paths: options.paths, providerDirs: options.providerDirs, bundledProviders: options.catalogue, cwd: io.cwd });
  const errors = validation.diagnostics.filter((diagnostic) => diagnostic.severity === 'error');
  if (errors.length > 0) {
    io.stderr.write(renderText(errors, { files: validation.files, documents: validation.documents }, false));
    io.stderr.write('patchbay: the integrations above have errors and will not run; the others will.\n');
  }
  if (validation.integrations.length === 0) return 'noIntegrations';
  if (options.requireState === true && !existsSync(options.statePath)) return 'noState';
  const secrets = new SecretSet({ env: io.env });
  const logger = redactingLogger(options.logger, new Redactor({ secrets }));
  const plan = await buildExecutionPlan({ integrations: validation.integrations, registry: validation.registry, secrets, logger });
  let store: StateStore;
  try {
    store = await openSqliteStore(options.statePath);
  } catch (error) {
    await plan.close();
    throw error;
  }
  await store.recordRevision({ id: plan.revision, appliedAt: Date.now(), integrations: [...plan.integrations.keys()] });
  return {
    validation,
    plan,
    store,
    logger,
    close: async () => {
      await plan.close();
      await store.close();
    },
  };
}
