import { CronExpressionParser } from 'cron-parser';
import { closestName, didYouMean } from '../lib/did-you-mean.js';
import { formatDurationMs, parseDurationMs } from '../lib/duration.js';
import { analyseExpression, type InputReference } from '../mapping/references.js';
import { conditionExpression, parseTemplate, type TemplatePart } from '../mapping/template.js';
import { splitCall, type ProviderRegistry, type LoadedProvider } from '../providers/registry.js';
import { checkSchemaPath } from './event-paths.js';
import { formatPath, type DocPath, type DocumentReporter } from './report.js';
import { allowMarker, findCredentials, looksSecretName } from '../lib/credentials.js';
import { nodeAt } from './source.js';
import { isScalar } from 'yaml';
import { mapValueOffset } from './scalar-offsets.js';

type Json = Record<string, unknown>;

function record(value: unknown): Json | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Json) : undefined;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** Roots an expression may read; everything else at the root is undefined at run time. */
export const expressionRoots = ['event', 'steps', 'vars', 'trigger'] as const;

/** Fields of a step's result visible to later steps as `steps.<id>.<field>`. */
const stepResultFields = ['output', 'status', 'error'];

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

const limits = {
  maxDurationMs: 365 * 86_400_000,
  maxTimeoutMs: 15 * 60_000,
  maxAgeMs: 30 * 86_400_000,
};

interface StepInfo {
  readonly id: string;
  readonly index: number;
}

/** Where a string sits, for pointing inside it at an expression's column. */
interface StringSite {
  readonly path: DocPath;
  readonly value: string;
}

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
  const pollConnection = text(record(record(spec.trigger)?.poll)?.connection);
  if (pollConnection !== undefined) called.add(pollConnection);
  const context: ExpressionContext = { reporter, stepIds, vars, eventSchemas, currentStep: undefined };

  const trigger = record(spec.trigger);
  const poll = record(trigger?.poll);
  if (poll) checkTemplates(poll.with, ['spec', 'trigger', 'poll', 'with'], { ...context, currentStep: -1 });

  let unresolvedCalls = false;
  steps.forEach((raw, index) => {
    const step = record(raw);
    if (!step) return;
    const path: DocPath = ['spec', 'steps', index];
    const explicitConnection = text(step.connection);
    if (explicitConnection !== undefined && !Object.hasOwn(connections, explicitConnection)) unknownConnectionRefs.add(explicitConnection);
    const resolved = checkStep(step, path, index, connections, registry, reporter, used);
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

  // A step whose call does not resolve may be meant for any connection: advising to remove one
  // would be wrong until the call is fixed.
  // A misspelt reference was probably meant for the connection it is closest to: that one is
  // not unused, but any other is.
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
    if (pattern && typeof value === 'string' && !safeRegExp(pattern)?.test(value)) {
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
    } else if (pin.pattern && !safeRegExp(pin.pattern)?.test(pinned)) {
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
      if (allowed.length > 0 && !allowed.some((pattern) => hostMatches(pattern, url!.host) || hostMatches(pattern, host))) {
        reporter.at(
          [...path, 'baseUrl'],
          'PB_CONNECTION_BASE_URL',
          `baseUrl host ${host} is not in allowedHosts (${allowed.join(', ')})`,
        );
      }
    }
  }
}

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** `*.example.com` matches any subdomain of example.com; otherwise the host must be equal. */
export function hostMatches(pattern: string, host: string): boolean {
  const p = pattern.toLowerCase();
  const h = host.toLowerCase();
  if (p.startsWith('*.')) return h.endsWith(p.slice(1)) && h.length > p.length - 1;
  return p === h;
}

function safeRegExp(pattern: string): RegExp | undefined {
  try {
    return new RegExp(pattern, 'u');
  } catch {
    // The provider check reports a bad pattern; here it simply cannot constrain the value.
    return undefined;
  }
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
    if (hooks.verification.scheme !== 'none' && connection && connection.webhookSecrets === undefined) {
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

let zones: string[] | undefined;
// Parsing a cron expression in a time zone is slow (luxon); the same few schedules recur.
const cronIntervals = new Map<string, number>();

/** Checks a cron expression in its time zone; returns the shortest time between two ticks (ms) when it parses. */
function checkCron(
  expression: unknown,
  timezone: unknown,
  base: DocPath,
  field: string,
  reporter: DocumentReporter,
  poll: boolean,
): number | undefined {
  let tz = 'UTC';
  if (typeof timezone === 'string') {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: timezone });
      tz = timezone;
    } catch {
      // Intl throws RangeError for an unknown zone; that is exactly the finding.
      zones ??= Intl.supportedValuesOf('timeZone');
      reporter.at(
        [...base, 'timezone'],
        'PB_SCHEDULE_BAD_TIMEZONE',
        `unknown time zone "${timezone}"${didYouMean(timezone, zones)}; use an IANA name such as Europe/Paris or UTC`,
      );
      return undefined;
    }
  }
  if (typeof expression !== 'string') return undefined;
  const fields = expression.trim().split(/\s+/);
  const nickname = fields.length === 1 && fields[0]!.startsWith('@');
  if (!nickname && (fields.length < 5 || fields.length > 6)) {
    reporter.at(
      [...base, field],
      'PB_SCHEDULE_BAD_CRON',
      `cron expression "${expression}" has ${fields.length} fields; write 5 (minute hour day month weekday) or 6 (with seconds first)`,
    );
    return undefined;
  }
  const key = `${expression}\u0000${tz}`;
  let interval = cronIntervals.get(key);
  try {
    if (interval === undefined) {
      // The shortest gap over a year of ticks (at most 64): `0 9 * * 3,4` is one day apart once
      // a week, and monthly schedules differ by month.
      const iterator = CronExpressionParser.parse(expression, { tz, currentDate: new Date('2026-01-01T00:00:00Z') });
      let previous = iterator.next().getTime();
      interval = Infinity;
      for (let tick = 0; tick < 64; tick++) {
        const next = iterator.next().getTime();
        interval = Math.min(interval, next - previous);
        previous = next;
        if (next - Date.UTC(2026, 0, 1) > 366 * 86_400_000) break;
      }
      if (cronIntervals.size >= 1000) cronIntervals.clear();
      cronIntervals.set(key, interval);
    }
    if (interval < 60_000) {
      reporter.at(
        [...base, field],
        'PB_SCHEDULE_TOO_FREQUENT',
        `"${expression}" fires every ${formatDurationMs(interval)}; ${poll ? 'polling' : 'running'} more than once a minute is almost always a mistake`,
      );
    }
    return interval;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    reporter.at([...base, field], 'PB_SCHEDULE_BAD_CRON', `cron expression "${expression}" is invalid: ${reason}`);
    return undefined;
  }
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

const credentialHeaders = /^(authorization|proxy-authorization|cookie|x-api-key|api-key|x-auth-token|x-access-token)$/i;

// Expressions cannot read secrets (there is no `env` root), so any literal credential header is
// a secret written into the manifest: it belongs in the connection's auth.
function checkLiteralCredentialHeaders(headers: Json | undefined, path: DocPath, reporter: DocumentReporter): void {
  if (!headers) return;
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value === 'string' && value.trim() !== '' && (credentialHeaders.test(name) || looksSecretName(name))) {
      reporter.at(
        [...path, name],
        'PB_SECRET_LITERAL',
        `header ${name} carries a credential written in the manifest; configure it as the connection's auth with { env: NAME } instead`,
      );
    }
  }
}

function checkInputs(
  inputs: unknown,
  schema: unknown,
  path: DocPath,
  ownerPath: DocPath,
  call: string,
  reporter: DocumentReporter,
  suppliedByCursor: unknown,
): void {
  const inputSchema = record(schema) ?? {};
  const properties = record(inputSchema.properties) ?? {};
  const required = Array.isArray(inputSchema.required) ? inputSchema.required.filter((r): r is string => typeof r === 'string') : [];
  const given = record(inputs) ?? {};
  const open = inputSchema.additionalProperties !== undefined && inputSchema.additionalProperties !== false;
  if (!open) {
    for (const name of Object.keys(given)) {
      if (!Object.hasOwn(properties, name)) {
        const known = Object.keys(properties);
        reporter.at(
          [...path, name],
          'PB_STEP_UNKNOWN_INPUT',
          `${call} has no input "${name}"${didYouMean(name, known)}${known.length ? `; inputs: ${known.join(', ')}` : ''}`,
          { anchor: 'key' },
        );
      }
    }
  }
  // `anyOf: [{ required: [From] }, { required: [MessagingServiceSid] }]`, possibly under `allOf`:
  // one alternative of each group must be satisfied.
  const groups = [inputSchema, ...(Array.isArray(inputSchema.allOf) ? inputSchema.allOf : [])]
    .map((s) => record(s)?.anyOf ?? record(s)?.oneOf)
    .filter(Array.isArray);
  for (const group of groups) {
    const alternatives = (group as unknown[])
      .map((alt) => record(alt)?.required)
      .filter((req): req is string[] => Array.isArray(req) && req.every((r) => typeof r === 'string'));
    if (alternatives.length === 0 || alternatives.length !== (group as unknown[]).length) continue;
    const satisfied = alternatives.some((req) => req.every((r) => Object.hasOwn(given, r) || r === suppliedByCursor));
    if (!satisfied) {
      reporter.at(
        inputs === undefined ? [...ownerPath, 'call'] : path,
        'PB_STEP_MISSING_INPUT',
        `${call} needs one of ${alternatives.map((req) => req.join(' + ')).join(', ')}`,
        { anchor: inputs === undefined ? 'value' : 'key' },
      );
    }
  }
  for (const name of required) {
    if (!Object.hasOwn(given, name) && name !== suppliedByCursor) {
      reporter.at(
        inputs === undefined ? [...ownerPath, 'call'] : path,
        'PB_STEP_MISSING_INPUT',
        `${call} needs input "${name}"${describeInput(properties[name])}`,
        { anchor: inputs === undefined ? 'value' : 'key' },
      );
    }
  }
}

function describeInput(schema: unknown): string {
  const description = text(record(schema)?.description);
  if (!description) return '';
  const first = description.split(/(?<=\.)\s/)[0]!.trim();
  return ` (${first.length > 120 ? `${first.slice(0, 117)}…` : first})`;
}

interface ExpressionContext {
  readonly reporter: DocumentReporter;
  readonly stepIds: Map<string, StepInfo>;
  readonly vars: Json;
  readonly eventSchemas: { schemas: unknown[]; label: string };
  /** Index of the step whose fields are checked; -1 for the trigger and policy (no step output yet). */
  readonly currentStep: number | undefined;
}

function checkTemplates(value: unknown, path: DocPath, context: ExpressionContext): void {
  if (typeof value === 'string') {
    const parsed = parseTemplate(value);
    if (parsed.unterminatedAt !== undefined) {
      const offset = siteOffset({ path, value }, context, parsed.unterminatedAt);
      context.reporter.atOffsets(offset, offset + 2, 'PB_EXPR_UNTERMINATED', `"{{" at ${formatPath(path)} has no closing "}}"`);
    }
    for (const part of parsed.parts) checkExpression(part, { path, value }, context);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((item, i) => checkTemplates(item, [...path, i], context));
    return;
  }
  const object = record(value);
  if (object) for (const [key, item] of Object.entries(object)) checkTemplates(item, [...path, key], context);
}

function checkCondition(site: StringSite, context: ExpressionContext): void {
  const parsed = parseTemplate(site.value);
  // A condition is one expression: `{{ a }} and {{ b }}` would be read as text, always truthy.
  if (parsed.unterminatedAt !== undefined || (parsed.parts.length > 0 && !parsed.whole)) {
    const offset = siteOffset(site, context, parsed.unterminatedAt ?? 0);
    context.reporter.atOffsets(
      offset,
      offset + 2,
      parsed.unterminatedAt !== undefined ? 'PB_EXPR_UNTERMINATED' : 'PB_EXPR_SYNTAX',
      parsed.unterminatedAt !== undefined
        ? `"{{" at ${formatPath(site.path)} has no closing "}}"`
        : `${formatPath(site.path)} must be one expression: write it as a single {{ … }} (e.g. {{ a and b }}) or without braces`,
    );
    return;
  }
  checkExpression(conditionExpression(site.value), site, context);
}

const redactPathPattern = /^(event|trigger|steps\.[A-Za-z_][A-Za-z0-9_]*\.(output|error))(\.[A-Za-z_$][\w$-]*)*$/;

/**
 * `redact` paths must name data that exists: a misspelt path silently leaves personal data in
 * the database, so unknown steps are errors and unknown event paths warnings, as in expressions.
 */
function checkRedactPaths(redact: unknown, context: ExpressionContext): void {
  if (!Array.isArray(redact)) return;
  redact.forEach((entry, i) => {
    if (typeof entry !== 'string') return;
    const path: DocPath = ['spec', 'redact', i];
    if (!redactPathPattern.test(entry)) {
      context.reporter.at(
        path,
        'PB_MANIFEST_BAD_VALUE',
        `redact path "${entry}" must be a dotted path under event, trigger or steps.<id>.output, e.g. event.data.object.billing_details`,
      );
      return;
    }
    const names = entry.split('.');
    // Reuse the expression checks: a redact path is a path an expression could read.
    checkReference(
      { names, offsets: names.map((_, k) => names.slice(0, k).join('.').length + (k > 0 ? 1 : 0)) },
      { expression: entry, offset: 0 },
      { path, value: entry },
      { ...context, currentStep: undefined },
    );
  });
}

/** Longest expression accepted, as the schema's `expression` type says; longer ones are unreviewable. */
const maxExpressionLength = 10_000;

function checkExpression(part: TemplatePart, site: StringSite, context: ExpressionContext): void {
  const { reporter } = context;
  if (part.expression.length > maxExpressionLength) {
    const offset = siteOffset(site, context, part.offset);
    reporter.atOffsets(
      offset,
      offset + 1,
      'PB_EXPR_TOO_LONG',
      `expression is ${part.expression.length} characters long, more than ${maxExpressionLength}; move the logic into steps or shorter expressions`,
    );
    return;
  }
  const result = analyseExpression(part.expression);
  if (!result.ok) {
    const offset = siteOffset(site, context, part.offset + result.offset);
    reporter.atOffsets(offset, offset + 1, 'PB_EXPR_SYNTAX', `invalid expression: ${result.message}`);
    return;
  }
  for (const reference of result.references) checkReference(reference, part, site, context);
}

function checkReference(reference: InputReference, part: TemplatePart, site: StringSite, context: ExpressionContext): void {
  const { reporter, stepIds, vars, eventSchemas, currentStep } = context;
  const [root, second] = reference.names;
  const at = (nameIndex: number) => siteOffset(site, context, part.offset + (reference.offsets[nameIndex] ?? 0));
  const report = (nameIndex: number, code: Parameters<DocumentReporter['atOffsets']>[2], message: string) => {
    const start = at(nameIndex);
    reporter.atOffsets(start, start + (reference.names[nameIndex]?.length ?? 1), code, message);
  };
  if (root === undefined) return;
  if (!(expressionRoots as readonly string[]).includes(root)) {
    report(
      0,
      'PB_EXPR_UNKNOWN_ROOT',
      `"${root}" is not defined${didYouMean(root, expressionRoots)}; expressions read event, steps.<id>.output, vars and trigger`,
    );
    return;
  }
  if (root === 'steps' && second !== undefined) {
    const target = stepIds.get(second);
    if (!target) {
      report(1, 'PB_EXPR_UNKNOWN_STEP', `no step "${second}"${didYouMean(second, stepIds.keys())}`);
      return;
    }
    if (currentStep !== undefined && target.index >= currentStep) {
      report(
        1,
        'PB_EXPR_FORWARD_STEP',
        currentStep < 0
          ? `steps.${second} is not available here: no step has run yet`
          : target.index === currentStep
            ? `step "${second}" cannot read its own output`
            : `step "${second}" runs after this one; only earlier steps' outputs can be read`,
      );
      return;
    }
    const field = reference.names[2];
    if (field !== undefined && !stepResultFields.includes(field)) {
      report(2, 'PB_EXPR_UNKNOWN_STEP', `steps.${second} has no "${field}"${didYouMean(field, stepResultFields)}; use steps.${second}.output`);
    }
    return;
  }
  if (root === 'vars' && second !== undefined && !Object.hasOwn(vars, second)) {
    report(1, 'PB_EXPR_UNKNOWN_VAR', `vars.${second} is not defined in spec.vars${didYouMean(second, Object.keys(vars))}`);
    return;
  }
  if (root === 'event' && reference.names.length > 1 && eventSchemas.schemas.length > 0) {
    const rest = reference.names.slice(1);
    const checks = eventSchemas.schemas.map((schema) => checkSchemaPath(schema, rest));
    if (checks.some((c) => c.ok)) return;
    const failed = checks[0] as Extract<ReturnType<typeof checkSchemaPath>, { ok: false }>;
    const bad = failed.index + 1;
    const shown = ['event', ...rest.slice(0, failed.index + 1)].join('.');
    const hint = failed.suggestion
      ? ` (did you mean "${['event', ...rest.slice(0, failed.index), failed.suggestion].join('.')}"?)`
      : '';
    report(bad, 'PB_EXPR_UNKNOWN_EVENT_PATH', `${shown} is not in the payload of ${eventSchemas.label}${hint}`);
  }
}

/** Maps an offset inside a string value to its offset in the file, for every scalar style. */
function siteOffset(site: StringSite, context: ExpressionContext, offsetInValue: number): number {
  const node = nodeAt(context.reporter.source, site.path);
  if (!isScalar(node) || !node.range) return context.reporter.source.doc.range[0];
  return mapValueOffset(context.reporter.source.text, node, site.value, offsetInValue);
}

/** Defaults of the schema's policy durations, in milliseconds (see schemas/integration.schema.json). */
const policyDefaultsMs: Record<string, Record<string, number>> = {
  retry: { initialDelay: 1_000, maxDelay: 300_000, maxAge: 86_400_000 },
  timeout: { connect: 5_000, headers: 15_000, total: 30_000 },
};

// The value an unset field takes: the integration's (for a step) or the schema's default;
// undefined when the field is set (and invalid) or the group is absent.
function effectiveDefault(policy: Json, group: [string], field: string, inherited: Json | undefined): number | undefined {
  const section = record(policy[group[0]]);
  if (!section || section[field] !== undefined) return undefined;
  const fromIntegration = record(inherited?.[group[0]])?.[field];
  const inheritedMs = typeof fromIntegration === 'string' ? parseDurationMs(fromIntegration) : undefined;
  // An invalid integration value is reported there; the step falls back to the schema default.
  const usable = inheritedMs !== undefined && inheritedMs >= 1 ? inheritedMs : undefined;
  return usable ?? policyDefaultsMs[group[0]]?.[field];
}

/**
 * Checks one policy. A step's policy overrides the integration's field by field, so `inherited`
 * (the integration's policy) supplies the fields a step leaves unset before the schema defaults do.
 */
function checkPolicy(policy: Json | undefined, path: DocPath, reporter: DocumentReporter, inherited?: Json): void {
  if (!policy) return;
  const orDefault = (p: Json, group: [string], field: string) => effectiveDefault(p, group, field, inherited);
  const durationAt = (sub: DocPath, max: number, what: string): number | undefined => {
    let v: unknown = policy;
    for (const s of sub) v = record(v)?.[s as string];
    if (typeof v !== 'string') return undefined;
    const ms = parseDurationMs(v);
    if (ms === undefined) return undefined;
    if (ms < 1) {
      reporter.at([...path, ...sub], 'PB_DURATION_OUT_OF_RANGE', `${what} must be at least 1ms`);
      return undefined;
    }
    if (ms > max) {
      reporter.at([...path, ...sub], 'PB_DURATION_OUT_OF_RANGE', `${what} ${v} is longer than the limit of ${formatDurationMs(max)}`);
      return undefined;
    }
    return ms;
  };
  // Unset values take the schema's defaults, so `initialDelay: 10m` alone contradicts the 5m maxDelay.
  const initial = durationAt(['retry', 'initialDelay'], limits.maxDurationMs, 'retry.initialDelay') ?? orDefault(policy, ['retry'], 'initialDelay');
  const maxDelay = durationAt(['retry', 'maxDelay'], limits.maxDurationMs, 'retry.maxDelay') ?? orDefault(policy, ['retry'], 'maxDelay');
  const maxAge = durationAt(['retry', 'maxAge'], limits.maxAgeMs, 'retry.maxAge') ?? orDefault(policy, ['retry'], 'maxAge');
  // A pair is compared only when this policy sets at least one side: a contradiction made
  // entirely of inherited or default values belongs to where they are written.
  const setHere = (group: string, ...fields: string[]) => fields.some((f) => record(policy[group])?.[f] !== undefined);
  if (initial !== undefined && maxDelay !== undefined && initial > maxDelay && setHere('retry', 'initialDelay', 'maxDelay')) {
    reporter.at(
      [...path, 'retry', 'initialDelay'],
      'PB_POLICY_INCONSISTENT',
      `retry.initialDelay (${formatDurationMs(initial)}) is longer than retry.maxDelay (${formatDurationMs(maxDelay)})`,
    );
  }
  if (initial !== undefined && maxAge !== undefined && initial >= maxAge && setHere('retry', 'initialDelay', 'maxAge')) {
    reporter.at(
      [...path, 'retry', 'maxAge'],
      'PB_POLICY_INCONSISTENT',
      `retry.maxAge (${formatDurationMs(maxAge)}) leaves no room for a retry after retry.initialDelay (${formatDurationMs(initial)})`,
    );
  }
  const retry = record(policy.retry);
  const inheritedRetry = record(inherited?.retry);
  const retryOn = retry?.retryOn ?? inheritedRetry?.retryOn;
  const maxAttempts = retry?.maxAttempts ?? inheritedRetry?.maxAttempts;
  if (
    retry &&
    (retry.retryOn !== undefined || retry.maxAttempts !== undefined) &&
    Array.isArray(retryOn) &&
    retryOn.length === 0 &&
    typeof maxAttempts === 'number' &&
    maxAttempts > 1
  ) {
    reporter.at(
      [...path, 'retry', 'retryOn'],
      'PB_POLICY_INCONSISTENT',
      'retry.retryOn is empty, so maxAttempts above 1 can never be used; list the failures that retry',
    );
  }

  const connect = durationAt(['timeout', 'connect'], limits.maxTimeoutMs, 'timeout.connect') ?? orDefault(policy, ['timeout'], 'connect');
  const headers = durationAt(['timeout', 'headers'], limits.maxTimeoutMs, 'timeout.headers') ?? orDefault(policy, ['timeout'], 'headers');
  const total = durationAt(['timeout', 'total'], limits.maxTimeoutMs, 'timeout.total') ?? orDefault(policy, ['timeout'], 'total');
  for (const [name, part] of [['connect', connect], ['headers', headers]] as const) {
    if (part !== undefined && total !== undefined && part > total && setHere('timeout', name, 'total')) {
      reporter.at(
        [...path, 'timeout', name],
        'PB_POLICY_INCONSISTENT',
        `timeout.${name} (${formatDurationMs(part)}) is longer than timeout.total (${formatDurationMs(total)})`,
      );
    }
  }

  const rate = record(policy.rateLimit);
  const per = durationAt(['rateLimit', 'per'], limits.maxDurationMs, 'rateLimit.per');
  if (rate && per !== undefined && typeof rate.requests === 'number') {
    const perSecond = (rate.requests / per) * 1000;
    if (perSecond > 10_000) {
      reporter.at(
        [...path, 'rateLimit'],
        'PB_POLICY_UNREASONABLE',
        `rateLimit allows ${Math.round(perSecond)} requests per second; no provider accepts that — check requests and per`,
      );
    }
    if (typeof rate.burst === 'number' && rate.burst < 1) {
      reporter.at([...path, 'rateLimit', 'burst'], 'PB_MANIFEST_OUT_OF_RANGE', 'rateLimit.burst must be at least 1');
    }
  }
}
