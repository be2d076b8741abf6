import { PatchbayError } from '../diag/errors.js';
import { renderText } from '../diag/render.js';
import { buildExecutionPlan, type ExecutionPlan } from '../executor/plan.js';
import { maskCredentials } from '../lib/credentials.js';
import type { Logger } from '../lib/log.js';
import { Redactor, redactingLogger } from '../lib/redact.js';
import { SecretSet } from '../lib/secrets.js';
import { validateManifests, type ValidationResult } from '../manifest/validate.js';
import { openStateStore } from '../store/open-store.js';
import type { StateStore } from '../store/state-store.js';
import { ExitCode, type CliIO } from './main.js';
import { statePath } from './state-path.js';
import { defaultProviderDirs } from './validate-command.js';

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
  readonly logger: Logger;
}

/** The flags every engine command takes, for its `parseArgs` options. */
export const engineFlags = {
  state: { type: 'string' },
  providers: { type: 'string', multiple: true },
  'no-catalogue': { type: 'boolean', default: false },
} as const;

/**
 * `loadEngine` for a command line: manifests under the positional paths (default
 * `integrations`), providers from `--providers` (default: as `validate` finds them), the state
 * file from `--state`. Prints what went wrong as `patchbay <command>: …` and returns the exit
 * code instead of an engine: 1 when no integration is valid, 2 when the state store cannot be
 * opened.
 */
export async function loadEngineFor(
  command: string,
  values: { readonly state?: string | undefined; readonly providers?: string[] | undefined; readonly 'no-catalogue'?: boolean | undefined },
  positionals: readonly string[],
  logger: Logger,
  io: CliIO,
): Promise<LoadedEngine | number> {
  const paths = positionals.length > 0 ? positionals : ['integrations'];
  let engine: LoadedEngine | 'noIntegrations';
  try {
    engine = await loadEngine(
      {
        paths,
        providerDirs: values.providers ?? defaultProviderDirs(io.cwd, paths),
        catalogue: values['no-catalogue'] !== true,
        statePath: statePath(values.state, io.cwd, io.env),
        logger,
      },
      io,
    );
  } catch (error) {
    if (error instanceof PatchbayError) {
      io.stderr.write(`patchbay ${command}: ${maskCredentials(error.message)} [${error.code}]\n`);
      return ExitCode.usage;
    }
    throw error;
  }
  if (engine === 'noIntegrations') {
    io.stderr.write(`patchbay ${command}: no valid integration to run\n`);
    return ExitCode.problems;
  }
  return engine;
}

/**
 * Validates the manifests, prepares the valid integrations (their problems printed to stderr: the
 * others still run), opens the state store and records the revision. Returns `noIntegrations`
 * when nothing can run. Throws the store's errors (PB_STATE_*) and PB_IO for unreadable paths.
 */
export async function loadEngine(options: LoadEngineOptions, io: CliIO): Promise<LoadedEngine | 'noIntegrations'> {
  const validation = await validateManifests({ paths: options.paths, providerDirs: options.providerDirs, bundledProviders: options.catalogue, cwd: io.cwd });
  const errors = validation.diagnostics.filter((diagnostic) => diagnostic.severity === 'error');
  if (errors.length > 0) {
    io.stderr.write(renderText(errors, { files: validation.files, documents: validation.documents }, false));
    io.stderr.write('patchbay: the integrations above have errors and will not run; the others will.\n');
  }
  if (validation.integrations.length === 0) return 'noIntegrations';
  const secrets = new SecretSet({ env: io.env });
  const logger = redactingLogger(options.logger, new Redactor({ secrets }));
  const plan = await buildExecutionPlan({ integrations: validation.integrations, registry: validation.registry, secrets, logger });
  let store: StateStore;
  try {
    store = await openStateStore(options.statePath);
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
