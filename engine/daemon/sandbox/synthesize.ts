import { parsePath } from '../../providers/paths.js';
import type { ProviderDocument, ProviderOperation } from '../../types/provider.generated.js';

/**
 * Example answers for the sandbox: a deterministic value for an operation's `output` schema.
 * Where a part of the schema is the schema of a webhook event of the same provider (GitHub's
 * issue, Shopify's order: providers share one schema between events and listings), the event's
 * `sample` gives that part, so a listing answers the realistic sample rather than placeholders.
 * Everything else is built from the schema alone: `const`, `examples[0]`, `default`, the first
 * non-null `enum` value, else a value of the first non-null type (strings shaped by `format`,
 * numbers from `minimum`, every declared property filled, arrays of one item, `…errors` arrays
 * empty). The provider's success signals are then set so the reader takes the answer as a success
 * that ends paging: `errors.okPath` true, `errors.statusPath` its first ok status, `hasMorePath`
 * false, a cursor or next-page URL empty.
 */

type Schema = Readonly<Record<string, unknown>>;

const maxDepth = 12;

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** JSON with sorted keys, so two equal schemas (a YAML alias and its anchor) give one text. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    isRecord(inner) ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : inner,
  );
}

/**
 * Sample values of a provider by the schema they are an instance of: each webhook event's
 * sample against its schema, and recursively each property and array item of the sample against
 * the property's or item's schema. The first sample seen for a schema wins.
 */
export class SampleIndex {
  private readonly bySchema = new Map<string, unknown>();

  constructor(provider: ProviderDocument) {
    for (const event of Object.values(provider.spec.webhooks?.events ?? {})) {
      if (isRecord(event.schema) && event.sample !== undefined) this.add(event.schema, event.sample, 0);
    }
  }

  /** The sample recorded for a schema equal to `schema`, if any (a fresh copy). */
  lookup(schema: Schema): unknown {
    if (this.bySchema.size === 0) return undefined;
    const found = this.bySchema.get(canonical(schema));
    return found === undefined ? undefined : structuredClone(found);
  }

  private add(schema: Schema, sample: unknown, depth: number): void {
    if (depth > maxDepth || sample === undefined || sample === null) return;
    // Only composite values are worth recording: a scalar sample says little about other uses.
    if (typeof sample !== 'object') return;
    const key = canonical(schema);
    if (!this.bySchema.has(key)) this.bySchema.set(key, sample);
    if (Array.isArray(sample)) {
      if (isRecord(schema.items) && sample.length > 0) this.add(schema.items, sample[0], depth + 1);
      return;
    }
    const properties = isRecord(schema.properties) ? schema.properties : {};
    for (const [name, inner] of Object.entries(properties)) {
      if (isRecord(inner) && Object.hasOwn(sample, name)) this.add(inner, (sample as Record<string, unknown>)[name], depth + 1);
    }
  }
}

const formatExamples: Readonly<Record<string, string>> = {
  'date-time': '2026-01-15T09:30:00Z',
  date: '2026-01-15',
  time: '09:30:00Z',
  email: 'jane.doe@example.com',
  'idn-email': 'jane.doe@example.com',
  uri: 'https://example.com/sandbox',
  url: 'https://example.com/sandbox',
  'uri-reference': '/sandbox',
  iri: 'https://example.com/sandbox',
  hostname: 'sandbox.example.com',
  ipv4: '192.0.2.10',
  ipv6: '2001:db8::10',
  uuid: '00000000-0000-4000-8000-000000000001',
  duration: 'PT1M',
  byte: 'c2FuZGJveA==',
};

/**
 * A deterministic instance of `schema` (see the module comment). `name` is the property the value
 * is for (it shapes placeholder strings: `sandbox-id`); `samples` supplies realistic parts.
 * Never throws: unknown keywords are ignored and a schema that gives nothing yields null.
 */
export function synthesizeValue(schema: unknown, samples?: SampleIndex, name = 'value', depth = 0): unknown {
  if (!isRecord(schema) || depth > maxDepth) return null;
  const sample = samples?.lookup(schema);
  if (sample !== undefined) return sample;
  if (Object.hasOwn(schema, 'const')) return structuredClone(schema.const);
  if (Array.isArray(schema.examples) && schema.examples.length > 0) return structuredClone(schema.examples[0]);
  if (Object.hasOwn(schema, 'default')) return structuredClone(schema.default);
  if (Array.isArray(schema.enum)) {
    const value = schema.enum.find((item) => item !== null);
    if (value !== undefined) return structuredClone(value);
  }
  if (Array.isArray(schema.allOf)) {
    // The branches' properties together make the instance.
    const { allOf, ...rest } = schema;
    const properties: Record<string, unknown> = {};
    for (const branch of allOf) if (isRecord(branch) && isRecord(branch.properties)) Object.assign(properties, branch.properties);
    if (isRecord(rest.properties)) Object.assign(properties, rest.properties);
    return synthesizeValue({ type: 'object', ...rest, properties }, samples, name, depth + 1);
  }
  for (const keyword of ['oneOf', 'anyOf'] as const) {
    const branches = schema[keyword];
    if (!Array.isArray(branches) || branches.length === 0) continue;
    const branch = branches.find((candidate) => isRecord(candidate) && candidate.type !== 'null') ?? branches[0];
    const { [keyword]: _chosen, ...rest } = schema;
    return synthesizeValue({ ...rest, ...(isRecord(branch) ? branch : {}) }, samples, name, depth + 1);
  }
  switch (typeOf(schema)) {
    case 'object':
      return synthesizeObject(schema, samples, depth);
    case 'array': {
      const item = synthesizeValue(schema.items, samples, singular(name), depth + 1);
      // A list of errors with one entry would read as a failure; no errors is the success answer.
      if (/errors$/i.test(name)) return [];
      const minItems = typeof schema.minItems === 'number' ? Math.max(1, Math.min(schema.minItems, 3)) : 1;
      return Array.from({ length: minItems }, () => structuredClone(item));
    }
    case 'string':
      return synthesizeString(schema, name);
    case 'integer': {
      const minimum = numberKeyword(schema, 'minimum') ?? ((numberKeyword(schema, 'exclusiveMinimum') ?? 0) + 1);
      return Math.ceil(Math.max(minimum, Math.min(1, numberKeyword(schema, 'maximum') ?? 1)));
    }
    case 'number': {
      const minimum = numberKeyword(schema, 'minimum') ?? ((numberKeyword(schema, 'exclusiveMinimum') ?? 0) + 1);
      return Math.max(minimum, Math.min(1, numberKeyword(schema, 'maximum') ?? 1));
    }
    case 'boolean':
      return false;
    case 'null':
      return null;
    default:
      return null;
  }
}

function numberKeyword(schema: Schema, keyword: string): number | undefined {
  const value = schema[keyword];
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function singular(name: string): string {
  return name.endsWith('s') && name.length > 1 ? name.slice(0, -1) : name;
}

/** The schema's first non-null type; `object` when it has properties, else none. */
function typeOf(schema: Schema): string | undefined {
  const type = schema.type;
  if (typeof type === 'string') return type;
  if (Array.isArray(type)) {
    const first = type.find((item) => item !== 'null');
    return typeof first === 'string' ? first : 'null';
  }
  if (isRecord(schema.properties) || isRecord(schema.additionalProperties)) return 'object';
  if (schema.items !== undefined) return 'array';
  return undefined;
}

function synthesizeObject(schema: Schema, samples: SampleIndex | undefined, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const properties = isRecord(schema.properties) ? schema.properties : {};
  for (const [key, inner] of Object.entries(properties)) {
    out[key] = synthesizeValue(inner, samples, key, depth + 1);
  }
  for (const key of Array.isArray(schema.required) ? schema.required : []) {
    if (typeof key === 'string' && !Object.hasOwn(out, key)) out[key] = `sandbox-${key}`;
  }
  return out;
}

function synthesizeString(schema: Schema, name: string): string {
  const format = typeof schema.format === 'string' ? formatExamples[schema.format] : undefined;
  let text = format ?? `sandbox-${name.replace(/[^A-Za-z0-9_-]/g, '') || 'value'}`;
  const minLength = numberKeyword(schema, 'minLength');
  const maxLength = numberKeyword(schema, 'maxLength');
  if (minLength !== undefined && text.length < minLength) text = text.padEnd(minLength, 'x');
  if (maxLength !== undefined && text.length > maxLength) text = text.slice(0, Math.max(0, maxLength));
  return text;
}

/**
 * Sets `path` (names only: `a.b.c`) in `value`, creating missing objects on the way; returns false
 * (and changes nothing more) when the path has an index, is malformed, or meets a non-object.
 */
export function setPath(value: unknown, path: string, replacement: unknown): boolean {
  let segments;
  try {
    segments = parsePath(path);
  } catch {
    // A malformed path in a provider definition is reported by validation; nothing to set here.
    return false;
  }
  if (segments.some((segment) => typeof segment !== 'string')) return false;
  let current: unknown = value;
  for (const segment of segments.slice(0, -1)) {
    if (!isRecord(current)) return false;
    if (!isRecord(current[segment as string])) current[segment as string] = {};
    current = current[segment as string];
  }
  if (!isRecord(current)) return false;
  current[segments[segments.length - 1] as string] = replacement;
  return true;
}

/**
 * The sandbox's answer value for `operationName` of `provider`: the instance of its `output`
 * schema (see the module comment), with the provider's success and last-page signals set. For a
 * GraphQL operation whose output schema has no `data`, the instance is wrapped as `{ data }`.
 * Deterministic: the same provider and operation give an equal value every time.
 */
export function exampleOutput(provider: ProviderDocument, operation: ProviderOperation, samples: SampleIndex = new SampleIndex(provider)): unknown {
  const schema = operation.output;
  let value = schema === undefined ? null : synthesizeValue(schema, samples, 'output');
  if (operation.body === 'graphql' && !(isRecord(value) && Object.hasOwn(value, 'data'))) value = { data: value ?? {} };
  if (!isRecord(value)) return value;
  const errors = { ...provider.spec.errors, ...operation.errors };
  if (errors.okPath !== undefined) setPath(value, errors.okPath, true);
  if (errors.statusPath !== undefined) setPath(value, errors.statusPath, errors.okStatuses?.[0] ?? 'OK');
  const pagination = operation.pagination ?? provider.spec.pagination;
  if (pagination !== undefined) {
    if (pagination.hasMorePath !== undefined) setPath(value, pagination.hasMorePath, false);
    else if (pagination.style === 'cursor' && pagination.cursorPath !== undefined) setPath(value, pagination.cursorPath, '');
    if (pagination.nextUrlPath !== undefined) setPath(value, pagination.nextUrlPath, null);
  }
  return value;
}
