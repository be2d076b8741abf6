import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ProviderDocument, ProviderOperation } from '../../engine/types/provider.generated.js';
import { findSpecPath, type SpecMatch } from '../support/spec-match.mjs';
import { loadBundledProviders } from './bundled.js';

/**
 * Every operation input has `additionalProperties: false`, so an input the operation does not
 * declare is refused by `patchbay validate` (PB_STEP_UNKNOWN_INPUT). This test makes sure no real
 * API field is refused that way: for every operation of a provider with a vendored official
 * description (test/fixtures/specs), each query parameter, mapped header parameter and top-level
 * request-body property the description declares must be one of the operation's inputs (and
 * each query parameter one of its `query` names), and each path parameter must be filled by an
 * input or a connection variable. Deliberate omissions are listed with a reason in
 * input-coverage-exclusions.json; credential parameters (Slack `token`, Google Maps `key`) are
 * set by the connection's auth and never inputs. `node scripts/check-input-coverage.mjs` prints
 * the same gaps and `--write` fills them from the description.
 */

const root = join(import.meta.dirname, '..', '..');
const specsDir = join(root, 'test', 'fixtures', 'specs');

/** Parameters the connection's credentials fill, never an input. */
const credentialParameters = new Set(['token', 'key']);

type Json = Record<string, unknown>;

interface Parameter {
  readonly name: string;
  readonly in: string;
  readonly schema?: Json;
  readonly required?: boolean;
}

interface PathItem extends Json {
  readonly servers?: { readonly url: string }[];
  readonly parameters?: Json[];
}

interface OpenApi extends Json {
  readonly swagger?: string;
  readonly basePath?: string;
  readonly servers?: { readonly url: string }[];
  readonly paths: Record<string, PathItem>;
}

interface SpecIndex {
  readonly openapi: Record<string, { readonly files: { readonly file: string }[] }>;
}

type Exclusions = Record<string, Record<string, string>>;

const index = JSON.parse(readFileSync(join(specsDir, 'index.json'), 'utf8')) as SpecIndex;
const exclusions = JSON.parse(readFileSync(join(import.meta.dirname, 'input-coverage-exclusions.json'), 'utf8')) as Exclusions & { $comment?: string };
delete exclusions.$comment;
const providers = loadBundledProviders();

// ---- matching an operation to its description path: test/support/spec-match.mjs ----

type Found = SpecMatch<OpenApi>;

// ---- what a description declares ----

function deref(spec: OpenApi, node: unknown, hops = 0): Json | undefined {
  if (node === null || typeof node !== 'object') return undefined;
  const ref = (node as Json).$ref;
  if (typeof ref !== 'string' || hops > 20) return node as Json;
  const target = ref
    .slice(2)
    .split('/')
    .reduce<unknown>((at, key) => (at as Json | undefined)?.[key.replace(/~1/g, '/').replace(/~0/g, '~')], spec);
  return deref(spec, target, hops + 1);
}

/** Top-level property names of a body schema: `allOf` parts merged, `oneOf`/`anyOf` variants joined. */
function bodyPropertyNames(spec: OpenApi, schema: unknown, out = new Set<string>(), depth = 0): Set<string> {
  const resolved = deref(spec, schema);
  if (resolved === undefined || depth > 10) return out;
  for (const name of Object.keys((resolved.properties as Json | undefined) ?? {})) out.add(name);
  for (const key of ['allOf', 'oneOf', 'anyOf']) {
    for (const part of (resolved[key] as unknown[] | undefined) ?? []) bodyPropertyNames(spec, part, out, depth + 1);
  }
  return out;
}

const mediaTypes: Record<string, string> = { json: 'application/json', form: 'application/x-www-form-urlencoded', multipart: 'multipart/form-data' };

interface Declared {
  readonly path: string[];
  readonly query: Set<string>;
  readonly header: Set<string>;
  readonly body: Set<string>;
}

function declaredBy(found: Found, operation: ProviderOperation): Declared {
  const { spec, pathKey, method } = found;
  const item = spec.paths[pathKey]!;
  const op = item[method] as Json;
  const parameters = new Map<string, Parameter>();
  for (const raw of [...(item.parameters ?? []), ...((op.parameters as Json[] | undefined) ?? [])]) {
    const parameter = deref(spec, raw) as unknown as Parameter;
    parameters.set(`${parameter.in}:${parameter.name}`, parameter);
  }
  const mappedHeaders = new Set(Object.values(operation.headers ?? {}).map((name) => name.toLowerCase()));
  const declared: Declared = { path: [], query: new Set(), header: new Set(), body: new Set() };
  for (const parameter of parameters.values()) {
    if (credentialParameters.has(parameter.name)) continue;
    if (parameter.in === 'path') declared.path.push(parameter.name);
    else if (parameter.in === 'query') declared.query.add(parameter.name);
    else if (parameter.in === 'header' && mappedHeaders.has(parameter.name.toLowerCase())) declared.header.add(parameter.name.toLowerCase());
    else if (parameter.in === 'formData') declared.body.add(parameter.name);
    else if (parameter.in === 'body') bodyPropertyNames(spec, parameter.schema, declared.body);
  }
  const content = deref(spec, op.requestBody)?.content as Record<string, Json> | undefined;
  if (content !== undefined) {
    const media = content[mediaTypes[operation.body ?? 'json'] ?? ''] ?? Object.values(content)[0];
    bodyPropertyNames(spec, media?.schema, declared.body);
  }
  return declared;
}

/**
 * The description's names `operation` does not accept, as `where name` strings: inputs missing
 * from `input.properties`, query parameters missing from `query`, path parameters filled by
 * neither an input nor a variable. `excluded` names are left out.
 */
function gaps(provider: ProviderDocument, operation: ProviderOperation, found: Found, excluded: Readonly<Record<string, string>>): string[] {
  const declared = declaredBy(found, operation);
  const inputs = new Set(Object.keys((operation.input as { properties?: Json }).properties ?? {}));
  const queryNames = new Set(operation.query ?? []);
  const headerInputs = new Map(Object.entries(operation.headers ?? {}).map(([input, name]) => [name.toLowerCase(), input]));
  const variables = new Set(Object.keys(provider.spec.variables ?? {}));
  const out: string[] = [];
  for (const name of declared.query) {
    if (Object.hasOwn(excluded, name)) continue;
    if (!inputs.has(name)) out.push(`query ${name} (not an input)`);
    else if (!queryNames.has(name)) out.push(`query ${name} (not in the operation's query list)`);
  }
  for (const name of declared.header) {
    if (!Object.hasOwn(excluded, name) && !inputs.has(headerInputs.get(name) ?? '')) out.push(`header ${name}`);
  }
  for (const name of declared.body) {
    if (!Object.hasOwn(excluded, name) && !inputs.has(name)) out.push(`body ${name}`);
  }
  // Path parameters by position: the operation may name its placeholder differently.
  const ours = [...(operation.path ?? '').matchAll(/\{([^}+]*)\+?\}/g)].map((match) => match[1]!);
  const theirs = [...found.pathKey.matchAll(/\{([^}]*)\}/g)].map((match) => match[1]!);
  for (const name of declared.path) {
    const placeholder = ours[ours.length - theirs.length + theirs.indexOf(name)];
    if (placeholder === undefined || (!inputs.has(placeholder) && !variables.has(placeholder))) out.push(`path ${name}`);
  }
  return out.sort();
}

// ---- the plan: every operation of every provider with a vendored description ----

interface Planned {
  readonly provider: ProviderDocument;
  readonly key: string;
  readonly operation: ProviderOperation;
  readonly found: Found | undefined;
}

const planned: Planned[] = [];
for (const [name, entry] of Object.entries(index.openapi)) {
  const provider = providers.get(name);
  if (provider === undefined) continue;
  const specs = entry.files.map(({ file }) => ({ file, spec: JSON.parse(readFileSync(join(specsDir, file), 'utf8')) as OpenApi }));
  for (const [operationName, operation] of Object.entries(provider.spec.operations)) {
    planned.push({ provider, key: `${name}.${operationName}`, operation, found: findSpecPath(provider, operation, specs) });
  }
}

describe('operation inputs cover their official descriptions', () => {
  it('covers every provider with a vendored OpenAPI description', () => {
    expect(new Set(planned.map((entry) => entry.provider.metadata.name))).toEqual(new Set(['stripe', 'twilio', 'slack', 'openai', 'github', 'sendgrid', 'googlemaps']));
    expect(planned.length).toBeGreaterThanOrEqual(68);
  });

  it('finds the description path of every operation', () => {
    expect(planned.filter((entry) => entry.found === undefined).map((entry) => entry.key)).toEqual([]);
  });

  it.each(planned.filter((entry) => entry.found !== undefined).map((entry) => [entry.key, entry] as const))(
    '%s declares every parameter and body property of its description',
    (key, entry) => {
      expect(gaps(entry.provider, entry.operation, entry.found!, exclusions[key] ?? {})).toEqual([]);
    },
  );

  it('lists only exclusions that exist: a known operation, a name its description declares and its input lacks, a reason', () => {
    const stale: string[] = [];
    for (const [key, names] of Object.entries(exclusions)) {
      const entry = planned.find((candidate) => candidate.key === key);
      if (entry?.found === undefined) {
        stale.push(`${key}: no such operation`);
        continue;
      }
      const declared = declaredBy(entry.found, entry.operation);
      const inputs = (entry.operation.input as { properties?: Json }).properties ?? {};
      for (const [name, reason] of Object.entries(names)) {
        const inSpec = declared.query.has(name) || declared.body.has(name) || declared.header.has(name);
        if (!inSpec) stale.push(`${key}: ${name} is not in the description`);
        if (Object.hasOwn(inputs, name)) stale.push(`${key}: ${name} is an input now; drop the exclusion`);
        if (reason.trim().length < 10) stale.push(`${key}: ${name} needs a reason`);
      }
    }
    expect(stale).toEqual([]);
  });

  it('fails when an input is removed (the check is not vacuous)', () => {
    const cases: [string, string, string][] = [
      ['stripe.paymentIntents.create', 'transfer_data', 'body transfer_data'],
      ['stripe.customers.list', 'expand', 'query expand (not an input)'],
      ['twilio.messages.create', 'SendAsMms', 'body SendAsMms'],
      ['slack.chat.postMessage', 'channel', 'body channel'],
      ['github.issues.create', 'owner', 'path owner'],
      ['googlemaps.directions', 'origin', 'query origin (not an input)'],
    ];
    for (const [key, input, expected] of cases) {
      const entry = planned.find((candidate) => candidate.key === key)!;
      const operation = structuredClone(entry.operation);
      const properties = (operation.input as { properties: Json }).properties;
      expect(Object.hasOwn(properties, input), `${key} declares ${input}`).toBe(true);
      delete properties[input];
      expect(gaps(entry.provider, operation, entry.found!, exclusions[key] ?? {})).toContain(expected);
    }
    // A query input that is declared but not sent as a query parameter is caught too.
    const entry = planned.find((candidate) => candidate.key === 'stripe.customers.list')!;
    const operation = { ...structuredClone(entry.operation), query: (entry.operation.query ?? []).filter((name) => name !== 'limit') };
    expect(gaps(entry.provider, operation, entry.found!, {})).toEqual(['query limit (not in the operation\'s query list)']);
  });
});
