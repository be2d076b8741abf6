import { closestName, didYouMean } from '../lib/did-you-mean.js';
import { compilePattern } from '../lib/pattern.js';
import { formatDurationMs, parseDurationMs } from '../lib/duration.js';
import { allowMarker, findCredentials, looksSecretName } from '../lib/credentials.js';
import { isIP } from 'node:net';
import { AddressGuard } from '../http/address-guard.js';
import { hostMatches, isLoopbackHost } from '../http/hosts.js';
import { splitCall, type ProviderRegistry, type LoadedProvider } from '../providers/registry.js';
import { checkSchemaPath } from './event-paths.js';
import {
  checkCondition,
  checkRedactPaths,
  checkTemplates,
  type ExpressionContext,
  type StepInfo,
} from './check-expressions.js';
import { checkInputs, checkLiteralCredentialHeaders } from './check-inputs.js';
import { checkPolicy } from './check-policy.js';
import { checkCron } from './check-schedule.js';
import { record, text, type Json } from './json-access.js';
import { formatPath, type DocPath, type DocumentReporter } from './report.js';

/** Shape of `event` for schedule triggers. */
const scheduleEventSchema = {
  type: 'object',
  properties: {
    scheduledAt: { type: 'string', description: 'The tick this run is for (ISO 8601).' },
    firedAt: { type: 'string', description: 'When the run was started (ISO 8601).' },
    cron: { type: 'string' },
    timezone: { type: 'string' },
  },
};

/**
 * Checks an integration beyond its schema: references to providers, connections, operations,
 * inputs and earlier steps; auth and connection variables against the provider; webhook events;
 * expressions (syntax and what they read); cron schedules and time zones; policy sanity; and
 * secrets put in `vars`. Written defensively: it runs on documents that failed the schema too,
 * so every problem is reported in one pass.
 */
export function checkIntegration(value: unknown, reporter: DocumentReporter, registry: ProviderRegistry): void {
  const doc = record(value);
  const spec = record(doc?.spec);
  if (!spec) return;

  const connections = record(spec.connections) ?? {};
  // Without a connections section (missing or misspelt, reported by the schema), every reference
  // to a connection would be reported again.
  if (record(spec.connections) === undefined) reporter.suppress('PB_REF_UNKNOWN_CONNECTION', 'PB_REF_NO_CONNECTION');
  const connectionProviders = new Map<string, LoadedProvider | undefined>();
  // `used`: referenced by the trigger or a step; `called`: Patchbay makes calls with it.
  const used = new Set<string>();
  const called = new Set<string>();
  const unknownConnectionRefs = new Set<string>();

  for (const [name, raw] of Object.entries(connections)) {
    const connection = record(raw);
    if (!connection) continue;
    const providerName = text(connection.provider);
    const provider = providerName ? registry.get(providerName) : undefined;
    connectionProviders.set(name, provider);
    const path: DocPath = ['spec', 'connections', name];
    if (providerName && !provider) {
      reporter.at(
        [...path, 'provider'],
        'PB_REF_UNKNOWN_PROVIDER',
        `unknown provider "${providerName}"${didYouMean(providerName, registry.names())}; define it with kind: Provider or use one of the catalogue`,
      );
      continue;
    }
    if (provider) checkConnection(connection, provider, path, reporter);
  }

  const vars = record(spec.vars) ?? {};
  checkVarsForSecrets(vars, ['spec', 'vars'], reporter, 0);

  const steps = Array.isArray(spec.steps) ? spec.steps : [];
  const stepIds = new Map<string, StepInfo>();
  steps.forEach((raw, index) => {
    const id = text(record(raw)?.id);
    if (id === undefined) return;
    if (stepIds.has(id)) {
      reporter.at(
        ['spec', 'steps', index, 'id'],
        'PB_STEP_DUPLICATE_ID',
        `step id "${id}" is already used by step ${stepIds.get(id)!.index + 1}; step ids must be unique`,
      );
      return;
    }
    stepIds.set(id, { id, index });
  });

  const eventSchemas = checkTrigger(spec, connectionProviders, registry, reporter, used, unknownConnectionRefs);
  const context: ExpressionContext = { reporter, stepIds, vars, eventSchemas, currentStep: undefined };

  const poll = record(record(spec.trigger)?.poll);
  const pollConnection = text(poll?.connection);
  if (pollConnection !== undefined) called.add(pollConnection);
  if (poll) checkTemplates(poll.with, ['spec', 'trigger', 'poll', 'with'], { ...context, currentStep: -1 });

  let unresolvedCalls = false;
  steps.forEach((raw, index) => {
    const step = record(raw);
    if (!step) return;
    const path: DocPath = ['spec', 'steps', index];
    const resolved = checkStep(step, path, index, connections, registry, reporter, used, unknownConnectionRefs);
    if (resolved === false) unresolvedCalls = true;
    else if (resolved !== true) called.add(resolved);
    const stepContext = { ...context, currentStep: index };
    const condition = text(step.if);
    if (condition !== undefined) checkCondition({ path: [...path, 'if'], value: condition }, stepContext);
    checkTemplates(step.with, [...path, 'with'], stepContext);
    checkPolicy(record(step.policy), [...path, 'policy'], reporter, record(spec.policy));
  });

  checkRedactPaths(spec.redact, context);

  const policy = record(spec.policy);
  checkPolicy(policy, ['spec', 'policy'], reporter);
  const orderBy = text(record(policy?.concurrency)?.orderBy);
  if (orderBy !== undefined) {
    checkCondition({ path: ['spec', 'policy', 'concurrency', 'orderBy'], value: orderBy }, { ...context, currentStep: -1 });
  }

  // Auth is needed only where Patchbay calls the provider: a connection that only receives
  // webhooks is verified by its webhookSecrets.
  for (const name of called) {
    const provider = connectionProviders.get(name);
    const connection = record(connections[name]);
    if (!provider || !connection || connection.auth !== undefined) continue;
    const schemes = provider.document.spec.auth ?? [];
    if (schemes.some((s) => s.type === 'none')) continue;
    reporter.at(
      ['spec', 'connections', name],
      'PB_AUTH_MISSING',
      `connection "${name}" calls ${provider.name} but has no auth; ${provider.name} accepts ${schemes.map((s) => s.type).join(', ')}`,
      { anchor: 'key' },
    );
  }

  // Advice to remove an unused connection must not be wrong: a step whose call does not resolve
  // may be meant for any connection (no warnings until it is fixed), and a misspelt reference
  // was probably meant for the connection it is closest to (that one is exempt).
  const meantFor = new Set([...unknownConnectionRefs].map((ref) => closestName(ref, Object.keys(connections))));
  const unresolved = unresolvedCalls || !Array.isArray(spec.steps);
  for (const name of unresolved ? [] : Object.keys(connections).filter((n) => !meantFor.has(n))) {
    if (!used.has(name) && connectionProviders.get(name)) {
      reporter.at(
        ['spec', 'connections', name],
        'PB_CONNECTION_UNUSED',
        `connection "${name}" is used by neither the trigger nor any step; remove it`,
        { anchor: 'key' },
      );
    }
  }
}

/**
 * A value stored under a key that names a secret (`password`, `apiKey`, `clientSecret`; see
 * `looksSecretName`) is reported unless it is a link. Keys that merely mention one (`tokenUrl`,
 * `secretName`, `passwordPolicy`) are ordinary settings.
 */
function looksLikeCredentialValue(value: string): boolean {
  // Under a key that names a secret, any literal is one, except a link to where it is kept.
  return value.trim().length >= 4 && !/^[a-z][a-z0-9+.-]*:\/\//i.test(value);
}

function checkVarsForSecrets(value: unknown, path: DocPath, reporter: DocumentReporter, depth: number, secretParent = false): void {
  if (depth > 8) return;
  const entries: [string | number, unknown][] = Array.isArray(value)
    ? value.map((item, i) => [i, item])
    : Object.entries(record(value) ?? {});
  for (const [name, item] of entries) {
    const secretName = typeof name === 'string' ? looksSecretName(name) : secretParent;
    if (typeof item === 'string') {
      if (!secretName || !looksLikeCredentialValue(item)) continue;
      // The text scan already reports a recognised live key format here; one finding is enough.
      // (Test keys are only a warning there, and 32-hex tokens need the key on the same line.)
      if (findCredentials(item).some((f) => f.kind === 'live')) continue;
      if (reporter.lineHas([...path, name], allowMarker)) continue;
      reporter.at(
        [...path, name],
        'PB_SECRET_IN_VARS',
        `${formatPath([...path.slice(1), name])} looks like a secret; vars are stored and logged in clear — put it in a connection's auth as { env: NAME } (or mark a reviewed false positive with "# ${allowMarker}")`,
        { anchor: typeof name === 'string' ? 'key' : 'value' },
      );
    } else {
      checkVarsForSecrets(item, [...path, name], reporter, depth + 1, secretName);
    }
  }
}

/**
 * A connection's own token URL must point where the provider's does, or at one of the hosts the
 * connection may call: the client secret and refresh token are sent there.
 */
function checkTokenUrl(
  tokenUrl: string | undefined,
  schemeTokenUrl: string | undefined,
  providerHosts: readonly string[],
  connection: Json,
  path: DocPath,
  reporter: DocumentReporter,
): void {
  if (tokenUrl === undefined) return;
  let url: URL;
  try {
    url = new URL(tokenUrl);
  } catch {
    // The schema's `format: uri` reports an unparsable URL.
    return;
  }
  const allowed = Array.isArray(connection.allowedHosts) ? connection.allowedHosts.filter((h): h is string => typeof h === 'string') : [];
  const patterns = [...providerHosts, ...allowed];
  let schemeHost: string | undefined;
  try {
    schemeHost = schemeTokenUrl === undefined ? undefined : new URL(schemeTokenUrl.replace(/\{[A-Za-z_][A-Za-z0-9_]*\}/g, 'x')).host;
  } catch {
    // A provider token URL with a variable in its host cannot be compared; its hosts still apply.
    schemeHost = undefined;
  }
  const host = url.host;
  if (host === schemeHost || patterns.some((pattern) => hostMatches(pattern, url))) return;
  reporter.at(
    path,
    'PB_AUTH_TOKEN_URL',
    `tokenUrl host ${host} is neither the provider's token endpoint${schemeHost ? ` (${schemeHost})` : ''} nor a host the connection may call; the client secret would be sent there (add it to allowedHosts if it is yours)`,
  );
}

const knownAuthTypes = ['none', 'apiKey', 'bearer', 'basic', 'oauth2', 'jwt', 'awsSigV4'];

function checkConnection(connection: Json, provider: LoadedProvider, path: DocPath, reporter: DocumentReporter): void {
  const spec = provider.document.spec;
  const schemes = spec.auth ?? [];
  const auth = record(connection.auth);
  const authType = text(auth?.type);
  // An auth type that is no auth type at all is reported by the schema, with a did-you-mean.
  if (authType && knownAuthTypes.includes(authType)) {
    const scheme = schemes.find((s) => s.type === authType);
    if (!scheme) {
      const accepted = schemes.map((s) => s.type);
      reporter.at(
        [...path, 'auth', 'type'],
        'PB_AUTH_UNSUPPORTED',
        `provider "${provider.name}" does not accept auth type "${authType}"; it accepts ${accepted.join(', ')}${didYouMean(authType, accepted)}`,
      );
    } else if (authType === 'oauth2') {
      checkTokenUrl(text(auth?.tokenUrl), scheme.tokenUrl, spec.hosts ?? [], connection, [...path, 'auth', 'tokenUrl'], reporter);
      if (auth?.grant === 'refreshToken' && auth.refreshToken === undefined) {
        reporter.at([...path, 'auth'], 'PB_MANIFEST_MISSING_FIELD', 'grant refreshToken needs refreshToken: { env: NAME }', {
          anchor: 'key',
        });
      }
      const known = Object.keys(scheme.scopes ?? {});
      const scopes = Array.isArray(auth?.scopes) ? auth.scopes : [];
      if (known.length > 0) {
        scopes.forEach((scope, i) => {
          if (typeof scope === 'string' && !known.includes(scope)) {
            reporter.at(
              [...path, 'auth', 'scopes', i],
              'PB_AUTH_UNKNOWN_SCOPE',
              `scope "${scope}" is not declared by provider "${provider.name}"${didYouMean(scope, known)}`,
            );
          }
        });
      }
    }
  }

  const declared = spec.variables ?? {};
  const given = record(connection.variables) ?? {};
  for (const [name, value] of Object.entries(given)) {
    if (!Object.hasOwn(declared, name)) {
      const names = Object.keys(declared);
      reporter.at(
        [...path, 'variables', name],
        'PB_CONNECTION_UNKNOWN_VARIABLE',
        `provider "${provider.name}" has no variable "${name}"${didYouMean(name, names)}${names.length ? `; it declares ${names.join(', ')}` : ''}`,
        { anchor: 'key' },
      );
      continue;
    }
    const pattern = declared[name]?.pattern;
    if (pattern && typeof value === 'string' && !compilePattern(pattern)?.test(value)) {
      reporter.at(
        [...path, 'variables', name],
        'PB_MANIFEST_BAD_VALUE',
        `variable "${name}" does not match the provider's pattern ${pattern}`,
      );
    }
  }
  for (const [name, variable] of Object.entries(declared)) {
    if (variable.default === undefined && !Object.hasOwn(given, name)) {
      reporter.at(
        path,
        'PB_CONNECTION_MISSING_VARIABLE',
        `connection must set variables.${name}${variable.description ? ` (${variable.description})` : ''}`,
        { anchor: 'key' },
      );
    }
  }

  const pinned = text(connection.apiVersion);
  if (pinned !== undefined) {
    const pin = spec.apiVersion;
    if (!pin) {
      reporter.at(
        [...path, 'apiVersion'],
        'PB_CONNECTION_API_VERSION',
        `provider "${provider.name}" has no versioned API; remove apiVersion`,
      );
    } else if (pin.pattern && !compilePattern(pin.pattern)?.test(pinned)) {
      reporter.at(
        [...path, 'apiVersion'],
        'PB_CONNECTION_API_VERSION',
        `"${pinned}" is not a valid API version for provider "${provider.name}" (expected the form ${pin.pattern}, e.g. ${pin.default})`,
      );
    } else if (pin.supported && !pin.supported.includes(pinned)) {
      reporter.at(
        [...path, 'apiVersion'],
        'PB_CONNECTION_UNKNOWN_API_VERSION',
        `API version "${pinned}" is not among those known to work with Patchbay (${pin.supported.join(', ')})${didYouMean(pinned, pin.supported)}`,
      );
    }
  }

  const baseUrl = text(connection.baseUrl);
  const allowed = Array.isArray(connection.allowedHosts) ? connection.allowedHosts.filter((h): h is string => typeof h === 'string') : [];
  if (spec.generic) {
    if (baseUrl === undefined) {
      reporter.at(path, 'PB_CONNECTION_BASE_URL', `provider "${provider.name}" is generic: set baseUrl`, { anchor: 'key' });
    }
    if (allowed.length === 0) {
      reporter.at(
        path,
        'PB_CONNECTION_BASE_URL',
        `provider "${provider.name}" is generic: list the hosts it may call in allowedHosts`,
        { anchor: 'key' },
      );
    }
  }
  const privateAllow: string[] = [];
  if (Array.isArray(connection.allowPrivateAddresses)) {
    connection.allowPrivateAddresses.forEach((entry, index) => {
      if (typeof entry !== 'string') return;
      try {
        new AddressGuard({ allow: [entry] });
        privateAllow.push(entry);
      } catch {
        // The guard's RangeError is the finding: the entry is neither an address nor a CIDR block.
        reporter.at([...path, 'allowPrivateAddresses', index], 'PB_MANIFEST_BAD_VALUE', `"${entry}" is neither an IP address nor a CIDR block (10.0.0.0/8, fd00::/8)`);
      }
    });
  }
  if (baseUrl !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(baseUrl);
    } catch {
      // The schema's `format: uri` already reports an unparsable URL.
      url = undefined;
    }
    if (url) {
      const host = url.hostname.replace(/^\[|\]$/g, '');
      if (url.protocol === 'http:' && !isLoopbackHost(host)) {
        reporter.at(
          [...path, 'baseUrl'],
          'PB_CONNECTION_INSECURE_URL',
          `baseUrl uses plain http to ${host}; use https (plain http is allowed only for loopback test servers)`,
        );
      }
      const refusal = privateHostRefusal(host, privateAllow);
      if (refusal !== undefined) {
        reporter.at(
          [...path, 'baseUrl'],
          'PB_CONNECTION_PRIVATE_ADDRESS',
          `baseUrl points at ${host}, ${refusal}; calls to it are refused unless allowPrivateAddresses lists it (only for servers you own)`,
        );
      }
      if (allowed.length > 0 && !allowed.some((pattern) => hostMatches(pattern, url!))) {
        reporter.at(
          [...path, 'baseUrl'],
          'PB_CONNECTION_BASE_URL',
          `baseUrl host ${host} is not in allowedHosts (${allowed.join(', ')})`,
        );
      }
    }
  }
}

/**
 * Why calls to `host` would be refused by the outbound address guard, for hosts known without
 * DNS (`localhost` and literal IPs), or undefined. Names are resolved only at call time.
 */
function privateHostRefusal(hostText: string, allow: readonly string[]): string | undefined {
  const guard = new AddressGuard({ allow });
  // `localhost.` is the same name as `localhost` (a fully qualified name's root dot).
  const host = hostText.replace(/\.$/, '');
  if (host.toLowerCase() === 'localhost') {
    return guard.refusal('127.0.0.1') === undefined && guard.refusal('::1') === undefined ? undefined : 'a loopback name';
  }
  if (isIP(host) === 0) return undefined;
  const reason = guard.refusal(host);
  return reason === undefined ? undefined : `a ${reason} address`;
}

/** Returns the payload schemas `event` can have (empty when unknown: no path checks). */
function checkTrigger(
  spec: Json,
  connectionProviders: Map<string, LoadedProvider | undefined>,
  registry: ProviderRegistry,
  reporter: DocumentReporter,
  used: Set<string>,
  unknownRefs: Set<string>,
): { schemas: unknown[]; label: string } {
  const trigger = record(spec.trigger);
  const none = { schemas: [], label: '' };
  if (!trigger) return none;

  const connectionOf = (name: unknown, path: DocPath): LoadedProvider | undefined => {
    if (typeof name !== 'string') return undefined;
    if (!connectionProviders.has(name)) {
      unknownRefs.add(name);
      reporter.at(
        path,
        'PB_REF_UNKNOWN_CONNECTION',
        `unknown connection "${name}"${didYouMean(name, connectionProviders.keys())}; define it under spec.connections`,
      );
      return undefined;
    }
    used.add(name);
    return connectionProviders.get(name);
  };

  const webhook = record(trigger.webhook);
  if (webhook) {
    const base: DocPath = ['spec', 'trigger', 'webhook'];
    const provider = connectionOf(webhook.connection, [...base, 'connection']);
    if (!provider) return none;
    const hooks = provider.document.spec.webhooks;
    if (!hooks) {
      reporter.at(
        [...base, 'connection'],
        'PB_TRIGGER_NO_WEBHOOKS',
        `provider "${provider.name}" sends no webhooks; use a poll trigger on one of its listing operations`,
      );
      return none;
    }
    const connection = record(record(spec.connections)?.[String(webhook.connection)]);
    // Plaid signs with keys fetched with the connection's own credentials: it has no webhook secret.
    if (hooks.verification.scheme !== 'none' && hooks.verification.scheme !== 'plaid' && connection && connection.webhookSecrets === undefined) {
      reporter.at(
        ['spec', 'connections', String(webhook.connection)],
        'PB_TRIGGER_NO_SECRET',
        `connection "${String(webhook.connection)}" receives webhooks but has no webhookSecrets; unverified webhooks are refused — add webhookSecrets: [{ env: NAME }]`,
        { anchor: 'key' },
      );
    }
    const known = Object.keys(hooks.events ?? {});
    const schemas: unknown[] = [];
    const events = Array.isArray(webhook.events) ? webhook.events : [];
    let open = false;
    events.forEach((event, i) => {
      if (typeof event !== 'string') return;
      if (event === '*') {
        open = true;
        return;
      }
      const definition = hooks.events && Object.hasOwn(hooks.events, event) ? hooks.events[event] : undefined;
      if (!definition) {
        if (hooks.anyEvent) {
          open = true;
          return;
        }
        // A near miss is a typo; anything else may be a real event the catalogue does not list
        // yet, which should not block the user: a warning, and no payload checks.
        const hint = didYouMean(event, known);
        reporter.at(
          [...base, 'events', i],
          'PB_TRIGGER_UNKNOWN_EVENT',
          hint
            ? `provider "${provider.name}" sends no event "${event}"${hint}`
            : `"${event}" is not among the ${known.length} events the ${provider.name} definition lists (${known.slice(0, 8).join(', ')}${known.length > 8 ? ', …' : ''}); if it is real, its payload cannot be checked — add it to the provider definition`,
          { severity: hint ? 'error' : 'warning' },
        );
        open = true;
        return;
      }
      if (definition.schema) schemas.push(definition.schema);
      else open = true;
    });
    // With one open event type (no schema, `*`), nothing can be said about paths.
    return open ? none : { schemas, label: events.filter((e) => typeof e === 'string').join(', ') };
  }

  const poll = record(trigger.poll);
  if (poll) {
    const base: DocPath = ['spec', 'trigger', 'poll'];
    const interval = checkCron(poll.schedule, poll.timezone, base, 'schedule', reporter, true);
    const jitterMs = typeof poll.jitter === 'string' ? parseDurationMs(poll.jitter) : undefined;
    if (jitterMs !== undefined && interval !== undefined && jitterMs >= interval) {
      reporter.at(
        [...base, 'jitter'],
        'PB_DURATION_OUT_OF_RANGE',
        `jitter ${formatDurationMs(jitterMs)} is not shorter than the schedule's interval (${formatDurationMs(interval)}); ticks would run into each other`,
      );
    }
    const provider = connectionOf(poll.connection, [...base, 'connection']);
    const operationName = text(poll.operation);
    if (!provider || operationName === undefined) return none;
    const operation = registry.operation(provider.name, operationName);
    if (!operation) {
      reporter.at(
        [...base, 'operation'],
        'PB_REF_UNKNOWN_OPERATION',
        `provider "${provider.name}" has no operation "${operationName}"${didYouMean(operationName, Object.keys(provider.document.spec.operations))}`,
      );
      return none;
    }
    const listing = operation.paginated === true || (operation.method ?? 'POST') === 'GET';
    if (!listing) {
      reporter.at(
        [...base, 'operation'],
        'PB_TRIGGER_NOT_LISTING',
        `${provider.name}.${operationName} is a ${operation.method ?? 'POST'} that does not list items; polling it would repeat its effect on every tick — poll a listing operation${listingHint(provider)}`,
      );
    }
    checkInputs(poll.with, operation.input, [...base, 'with'], base, `${provider.name}.${operationName}`, reporter, record(poll.cursor)?.param);
    const cursor = record(poll.cursor);
    const param = text(cursor?.param);
    const properties = record(record(operation.input)?.properties) ?? {};
    if (param !== undefined && !Object.hasOwn(properties, param)) {
      reporter.at(
        [...base, 'cursor', 'param'],
        'PB_TRIGGER_BAD_CURSOR',
        `"${param}" is not an input of ${provider.name}.${operationName}${didYouMean(param, Object.keys(properties))}`,
      );
    }
    const itemsPath = operation.pagination?.itemsPath ?? provider.document.spec.pagination?.itemsPath;
    const item = itemSchema(operation.output, itemsPath);
    if (!item) return none;
    const label = `an item of ${provider.name}.${operationName}`;
    // A wrong item id silently breaks deduplication, a wrong cursor field the resumption.
    for (const [field, path] of [
      [text(poll.itemId), [...base, 'itemId']],
      [text(cursor?.field), [...base, 'cursor', 'field']],
    ] as const) {
      if (field === undefined || !/^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$/.test(field)) continue;
      const check = checkSchemaPath(item, field.split('.'));
      if (!check.ok) {
        const hint = check.suggestion ? ` (did you mean "${[...field.split('.').slice(0, check.index), check.suggestion].join('.')}"?)` : '';
        reporter.at(path, 'PB_TRIGGER_UNKNOWN_ITEM_FIELD', `"${field}" is not a field of ${label}${hint}`);
      }
    }
    return { schemas: [item], label };
  }

  const schedule = record(trigger.schedule);
  if (schedule) {
    checkCron(schedule.cron, schedule.timezone, ['spec', 'trigger', 'schedule'], 'cron', reporter, false);
    return { schemas: [scheduleEventSchema], label: 'schedule' };
  }
  return none;
}

function listingHint(provider: LoadedProvider): string {
  const operations = Object.entries(provider.document.spec.operations);
  const paginated = operations.filter(([, op]) => op.paginated === true);
  const listings = (paginated.length > 0 ? paginated : operations.filter(([, op]) => op.method === 'GET')).map(([name]) => name);
  return listings.length > 0 ? ` such as ${listings.slice(0, 4).join(', ')}` : '';
}

/** The schema of one listed item: the output schema at `itemsPath`, then its `items`. */
function itemSchema(output: unknown, itemsPath: string | undefined): unknown {
  let current = record(output);
  for (const name of itemsPath ? itemsPath.split('.') : []) {
    current = record(record(current?.properties)?.[name]);
  }
  return record(current?.items);
}


/**
 * Checks a step's call, connection and inputs. Returns false when its call does not resolve, the
 * name of the connection it uses when that is known, and true otherwise.
 */
function checkStep(
  step: Json,
  path: DocPath,
  index: number,
  connections: Json,
  registry: ProviderRegistry,
  reporter: DocumentReporter,
  used: Set<string>,
  unknownRefs: Set<string>,
): boolean | string {
  const call = text(step.call);
  if (call === undefined || !/^[a-z][-a-z0-9]*\.[A-Za-z0-9_.-]+$/.test(call)) return false;
  const { provider: providerName, operation: operationName } = splitCall(call);
  const provider = registry.get(providerName);
  if (!provider) {
    reporter.at(
      [...path, 'call'],
      'PB_REF_UNKNOWN_PROVIDER',
      `unknown provider "${providerName}" in call "${call}"${didYouMean(providerName, registry.names())}`,
    );
    return false;
  }
  const explicit = text(step.connection);
  let chosen: string | undefined;
  if (explicit !== undefined) {
    if (!Object.hasOwn(connections, explicit)) {
      unknownRefs.add(explicit);
      reporter.at(
        [...path, 'connection'],
        'PB_REF_UNKNOWN_CONNECTION',
        `unknown connection "${explicit}"${didYouMean(explicit, Object.keys(connections))}`,
      );
    } else {
      used.add(explicit);
      chosen = explicit;
      const actual = text(record(connections[explicit])?.provider);
      if (actual !== undefined && actual !== providerName) {
        reporter.at(
          [...path, 'connection'],
          'PB_REF_CONNECTION_MISMATCH',
          `connection "${explicit}" uses provider "${actual}", but the step calls "${providerName}"`,
        );
      }
    }
  } else {
    const candidates = Object.entries(connections)
      .filter(([, c]) => text(record(c)?.provider) === providerName)
      .map(([name]) => name);
    const unresolvedConnection = Object.values(connections).some((c) => {
      const name = text(record(c)?.provider);
      return name !== undefined && !registry.get(name);
    });
    if (candidates.length === 0 && unresolvedConnection) {
      // A connection with a misspelt provider is already reported; it is probably this one.
    } else if (candidates.length === 0) {
      reporter.at(
        [...path, 'call'],
        'PB_REF_NO_CONNECTION',
        `step ${index + 1} calls ${providerName} but the integration has no connection with provider: ${providerName}; add one under spec.connections`,
      );
    } else if (candidates.length > 1) {
      reporter.at(
        [...path, 'call'],
        'PB_REF_AMBIGUOUS_CONNECTION',
        `connections ${candidates.join(', ')} all use ${providerName}; say which with connection: <name>`,
      );
      candidates.forEach((c) => used.add(c));
    } else {
      used.add(candidates[0]!);
      chosen = candidates[0];
    }
  }

  const operations = provider.document.spec.operations ?? {};
  const operation = Object.hasOwn(operations, operationName) ? operations[operationName] : undefined;
  if (!operation) {
    reporter.at(
      [...path, 'call'],
      'PB_REF_UNKNOWN_OPERATION',
      `provider "${providerName}" has no operation "${operationName}"${didYouMean(operationName, Object.keys(operations))}`,
    );
    return false;
  }
  checkInputs(step.with, operation.input, [...path, 'with'], path, call, reporter, undefined);
  checkLiteralCredentialHeaders(record(record(step.with)?.headers), [...path, 'with', 'headers'], reporter);
  const auth = record(record(chosen === undefined ? undefined : connections[chosen])?.auth);
  if (auth && (auth.type === 'oauth2' || auth.type === 'jwt') && Array.isArray(auth.scopes) && operation.scopes?.length) {
    const granted = new Set(auth.scopes.filter((x): x is string => typeof x === 'string'));
    const missing = operation.scopes.filter((scope) => !granted.has(scope));
    if (missing.length > 0) {
      reporter.at(
        [...path, 'call'],
        'PB_AUTH_MISSING_SCOPE',
        `${call} needs scope${missing.length > 1 ? 's' : ''} ${missing.join(', ')}, which connection "${chosen}" does not request; add ${missing.length > 1 ? 'them' : 'it'} to its auth.scopes`,
      );
    }
  }
  return chosen ?? true;
}
