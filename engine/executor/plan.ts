import { createHash } from 'node:crypto';
import Ajv2020 from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { PatchbayError } from '../diag/errors.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { parseDurationMs } from '../lib/duration.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { Redactor } from '../lib/redact.js';
import { SecretSet, type SecretSources } from '../lib/secrets.js';
import { compileCondition, compileMapping, type CompiledCondition, type CompiledMapping } from '../mapping/evaluate.js';
import { conditionExpression } from '../mapping/template.js';
import type { LoadedIntegration } from '../manifest/validate.js';
import { ProviderConnection, type ConnectionContext } from '../providers/connection.js';
import { splitCall, type LoadedProvider, type ProviderRegistry } from '../providers/registry.js';
import type { IntegrationDocument, RateLimit } from '../types/integration.generated.js';
import type { ProviderOperation } from '../types/provider.generated.js';
import { compileRetryPolicy, compileTimeouts, type CompiledRetryPolicy, type CompiledTimeouts } from './retry-policy.js';
import type { BucketSpec } from './rate-limiter.js';

/**
 * An execution plan: a revision of the manifests made ready to run. Everything that can be done
 * once is done here — connections opened (secrets resolved, signers built), expressions compiled,
 * policies normalised, input validators compiled, rate-limit keys fixed — so running a step only
 * evaluates and calls. An integration that cannot be made ready (a missing secret) is kept aside
 * as broken with its error; the others run.
 */
export interface ExecutionPlan {
  /** Content hash of the integration and provider documents: the same manifests give the same id. */
  readonly revision: string;
  readonly integrations: ReadonlyMap<string, IntegrationPlan>;
  /** Integrations that could not be prepared, with why. Their events wait in the queue. */
  readonly broken: ReadonlyMap<string, PatchbayError>;
  /** Closes every connection's sockets. */
  close(): Promise<void>;
}

export interface IntegrationPlan {
  readonly name: string;
  readonly document: IntegrationDocument;
  readonly enabled: boolean;
  /** Runs in flight at once. @default 10 */
  readonly concurrencyLimit: number;
  /** The ordering key expression (`concurrency.orderBy`), evaluated over `{ event, vars }` at acceptance. */
  readonly orderBy: CompiledMapping | undefined;
  readonly steps: readonly StepPlan[];
  readonly vars: Readonly<Record<string, unknown>>;
  /** Redacts this integration's events, requests, responses and outputs before they are written. */
  readonly redactor: Redactor;
  readonly connections: ReadonlyMap<string, ProviderConnection>;
}

/** One rate limit a step's call must pass. */
export interface LimitPlan {
  /** Bucket key: the credential, where the limit comes from, and its shape. */
  readonly key: string;
  readonly spec: BucketSpec;
  /** Tokens one call takes. */
  readonly cost: number;
  /** An input whose value narrows the limit (Slack: per channel); appended to the key at run time. */
  readonly keyInput: string | undefined;
}

export interface StepPlan {
  readonly id: string;
  readonly index: number;
  /** `provider.operation`, as written. */
  readonly call: string;
  readonly operationName: string;
  readonly operation: ProviderOperation;
  readonly connection: ProviderConnection;
  readonly condition: CompiledCondition | undefined;
  readonly inputs: CompiledMapping;
  readonly retry: CompiledRetryPolicy;
  readonly timeouts: CompiledTimeouts;
  readonly continueOnError: boolean;
  readonly limits: readonly LimitPlan[];
  /** The provider's in-flight limit per credential, if it has one. */
  readonly gate: { readonly key: string; readonly limit: number } | undefined;
  /**
   * Checks mapped inputs against the operation's input schema; returns problems as
   * `with.<path>: <what is wrong>` lines (types and rules only, never the values).
   */
  readonly checkInputs: (inputs: unknown) => readonly string[];
}

export interface PlanOptions {
  readonly integrations: readonly LoadedIntegration[];
  readonly registry: ProviderRegistry;
  readonly secretSources?: SecretSources;
  /**
   * Collects every secret the plan's connections resolve (one set for all integrations, so a
   * log redactor built on it scrubs them all). @default a new set reading `secretSources`
   */
  readonly secrets?: SecretSet;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Passed to every connection (a sandbox base URL, private addresses allowed, HTTP client options). */
  readonly connectionContext?: PlanConnectionContext;
}

/** What the plan passes to every connection it opens. */
export interface PlanConnectionContext extends Pick<ConnectionContext, 'http' | 'allowPrivateAddresses' | 'overrideBaseUrl'> {
  /**
   * A base URL per provider name (the built-in sandbox plays each provider at its own URL). A
   * provider it answers undefined for falls back to `overrideBaseUrl`, then to its own URLs.
   */
  readonly overrideBaseUrlFor?: (provider: string) => string | undefined;
}

/**
 * Prepares validated integrations for execution. Never rejects for one integration's sake: an
 * integration whose connection cannot open (PB_SECRET_UNRESOLVED, PB_AUTH_*) or whose expressions
 * do not compile lands in `broken`.
 */
export async function buildExecutionPlan(options: PlanOptions): Promise<ExecutionPlan> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger;
  const integrations = new Map<string, IntegrationPlan>();
  const broken = new Map<string, PatchbayError>();
  const opened: ProviderConnection[] = [];
  const validators = new InputValidators();
  const secrets = options.secrets ?? new SecretSet(options.secretSources);
  for (const loaded of options.integrations) {
    const connections = new Map<string, ProviderConnection>();
    try {
      const spec = loaded.document.spec;
      const calling = callingConnections(spec);
      for (const [name, connection] of Object.entries(spec.connections)) {
        let provider = options.registry.get(connection.provider);
        if (provider === undefined) throw new PatchbayError('PB_REF_UNKNOWN_PROVIDER', `connection "${name}": provider "${connection.provider}" is not loaded`);
        if (connection.auth === undefined && !calling.has(name)) provider = webhookOnly(provider);
        const { overrideBaseUrlFor, ...context } = options.connectionContext ?? {};
        const overrideBaseUrl = overrideBaseUrlFor?.(connection.provider) ?? context.overrideBaseUrl;
        const open = await ProviderConnection.open(name, connection, provider, { ...context, overrideBaseUrl, secrets, clock, logger });
        connections.set(name, open);
        opened.push(open);
      }
      const redactor = new Redactor({ secrets, paths: spec.redact ?? [], detectors: spec.redactDetectors });
      const steps = spec.steps.map((step, index) => planStep(loaded, step, index, connections, validators));
      const concurrency = spec.policy?.concurrency;
      integrations.set(loaded.name, {
        name: loaded.name,
        document: loaded.document,
        enabled: spec.enabled ?? true,
        concurrencyLimit: concurrency?.limit ?? 10,
        orderBy:
          concurrency?.orderBy === undefined
            ? undefined
            : compileMapping(`{{ ${conditionExpression(concurrency.orderBy).expression} }}`, 'spec.policy.concurrency.orderBy'),
        steps,
        vars: spec.vars ?? {},
        redactor,
        connections,
      });
    } catch (error) {
      const failure = error instanceof PatchbayError ? error : new PatchbayError('PB_INTEGRATION_BROKEN', `integration "${loaded.name}" cannot be prepared: ${String(error)}`, { cause: error });
      broken.set(loaded.name, failure);
      logger.log('error', 'integration cannot run; its events wait in the queue', { integration: loaded.name, code: failure.code, error: failure.message });
    }
  }
  return {
    revision: revisionOf(options.integrations, options.registry),
    integrations,
    broken,
    close: async () => {
      await Promise.all(opened.map((connection) => connection.close()));
    },
  };
}

/**
 * The connections something calls through: each step's (named, or the first connection to its
 * provider) and a poll trigger's. The others only receive webhooks.
 */
function callingConnections(spec: IntegrationDocument['spec']): Set<string> {
  const names = new Set<string>();
  const entries = Object.entries(spec.connections);
  for (const step of spec.steps) {
    const providerName = splitCall(step.call).provider;
    const name = step.connection ?? entries.find(([, connection]) => connection.provider === providerName)?.[0];
    if (name !== undefined) names.add(name);
  }
  if (spec.trigger.poll !== undefined) names.add(spec.trigger.poll.connection);
  return names;
}

/**
 * A connection without `auth` that nothing calls through only receives webhooks (verified by its
 * webhook secrets): it opens without credentials even when the provider's API needs some.
 */
function webhookOnly(provider: LoadedProvider): LoadedProvider {
  const spec = provider.document.spec;
  if (spec.auth.some((scheme) => scheme.type === 'none')) return provider;
  return { ...provider, document: { ...provider.document, spec: { ...spec, auth: [...spec.auth, { type: 'none', description: 'Receives webhooks only: no API calls.' }] } } };
}

function planStep(
  loaded: LoadedIntegration,
  step: IntegrationDocument['spec']['steps'][number],
  index: number,
  connections: ReadonlyMap<string, ProviderConnection>,
  validators: InputValidators,
): StepPlan {
  const spec = loaded.document.spec;
  const { provider: providerName, operation: operationName } = splitCall(step.call);
  const connection =
    step.connection !== undefined
      ? connections.get(step.connection)
      : [...connections.values()].find((candidate) => candidate.provider.name === providerName);
  if (connection === undefined) throw new PatchbayError('PB_REF_UNKNOWN_CONNECTION', `step "${step.id}": no connection to provider "${providerName}"`);
  const operations = connection.provider.document.spec.operations;
  const operation = Object.hasOwn(operations, operationName) ? operations[operationName] : undefined;
  if (operation === undefined) throw new PatchbayError('PB_REF_UNKNOWN_OPERATION', `step "${step.id}": provider "${providerName}" has no operation "${operationName}"`);
  const policy = spec.policy;
  return {
    id: step.id,
    index,
    call: step.call,
    operationName,
    operation,
    connection,
    condition: step.if === undefined ? undefined : compileCondition(conditionExpression(step.if).expression, `steps[${index}].if`),
    inputs: compileMapping(step.with ?? {}, `steps[${index}].with`),
    retry: compileRetryPolicy(policy?.retry, step.policy?.retry),
    timeouts: compileTimeouts(policy?.timeout, step.policy?.timeout),
    continueOnError: step.continueOnError ?? false,
    limits: limitsOf(connection, operation, step.policy?.rateLimit ?? policy?.rateLimit),
    gate: gateOf(connection),
    checkInputs: validators.for(`${connection.provider.name}.${operationName}`, operation),
  };
}

/**
 * The buckets a call draws from: the provider's documented limit (its tier, when the operation
 * names one) and the manifest's own `rateLimit`, each keyed by credential so integrations that
 * share an API key share the budget.
 */
function limitsOf(connection: ProviderConnection, operation: ProviderOperation, policy: RateLimit | undefined): LimitPlan[] {
  const limits: LimitPlan[] = [];
  const provider = connection.provider.document.spec.rateLimit;
  if (provider !== undefined) {
    const tier = operation.rateLimitTier === undefined ? undefined : provider.tiers?.[operation.rateLimitTier];
    const source = tier ?? provider;
    const perMs = parseDurationMs(source.per);
    const strategy = tier?.strategy ?? provider.strategy ?? 'requests';
    if (perMs !== undefined && perMs > 0) {
      limits.push({
        key: `${connection.credentialId}|provider|${operation.rateLimitTier ?? ''}`,
        spec: { requests: source.requests, perMs, burst: source.burst },
        cost: strategy === 'cost' ? operation.cost ?? 1 : 1,
        keyInput: tier?.keyInput,
      });
    }
  }
  if (policy !== undefined) {
    const perMs = parseDurationMs(policy.per);
    if (perMs !== undefined && perMs > 0) {
      limits.push({
        // Keyed by what the limit is, not how it is written: `burst` defaults to `requests`.
        key: `${connection.credentialId}|policy|${policy.requests}/${perMs}/${policy.burst ?? policy.requests}`,
        spec: { requests: policy.requests, perMs, burst: policy.burst },
        cost: 1,
        keyInput: undefined,
      });
    }
  }
  return limits;
}

function gateOf(connection: ProviderConnection): StepPlan['gate'] {
  const limit = connection.provider.document.spec.rateLimit?.concurrency;
  return limit === undefined ? undefined : { key: `${connection.credentialId}|inflight`, limit };
}

/** Compiled input schemas, shared by every step that calls the same operation. */
class InputValidators {
  private ajv: InstanceType<typeof Ajv2020.default> | undefined;
  private readonly compiled = new Map<string, (inputs: unknown) => readonly string[]>();

  for(key: string, operation: ProviderOperation): (inputs: unknown) => readonly string[] {
    let check = this.compiled.get(key);
    if (check === undefined) {
      check = this.compile(operation);
      this.compiled.set(key, check);
    }
    return check;
  }

  private compile(operation: ProviderOperation): (inputs: unknown) => readonly string[] {
    const schema = operation.input;
    if (schema === undefined) return () => [];
    let validate: ValidateFunction;
    try {
      // Formats are not enforced: providers are more lenient than their descriptions' formats.
      this.ajv ??= new Ajv2020.default({ strict: false, validateFormats: false, allErrors: true });
      validate = this.ajv.compile(schema as object);
    } catch (error) {
      // An input schema Ajv cannot compile was accepted by validation; calls go out unchecked
      // rather than every run failing, and the provider judges the request.
      void error;
      return () => [];
    }
    return (inputs) => (validate(inputs) ? [] : (validate.errors ?? []).slice(0, 5).map(describeInputError));
  }
}

function describeInputError(error: ErrorObject): string {
  const path = error.instancePath === '' ? 'with' : `with${error.instancePath.replace(/\/([^/]*)/g, (_, part: string) => `.${part.replace(/~1/g, '/').replace(/~0/g, '~')}`)}`;
  switch (error.keyword) {
    case 'required':
      return `${path}: required input "${String((error.params as { missingProperty: string }).missingProperty)}" is missing (its expression gave nothing)`;
    case 'additionalProperties':
      return `${path}: unknown input "${String((error.params as { additionalProperty: string }).additionalProperty)}"`;
    default:
      // Ajv's messages name the rule ("must be integer", "must match pattern …"), never the value.
      return `${path}: ${error.message ?? error.keyword}`;
  }
}

/** Content hash of what the plan runs: integration and provider documents, canonicalised. */
function revisionOf(integrations: readonly LoadedIntegration[], registry: ProviderRegistry): string {
  const hash = createHash('sha256');
  const used = new Set<string>();
  for (const loaded of [...integrations].sort((a, b) => a.name.localeCompare(b.name))) {
    hash.update(canonicalJson(loaded.document));
    for (const connection of Object.values(loaded.document.spec.connections)) used.add(connection.provider);
  }
  for (const name of [...used].sort()) hash.update(canonicalJson(registry.get(name)?.document ?? null));
  return hash.digest('hex').slice(0, 12);
}

function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    inner !== null && typeof inner === 'object' && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : inner,
  );
}
