import type { OpenApiVersion } from './read-document.js';
import { shortenText } from './text.js';
import { compilePattern } from '../../lib/pattern.js';

/** A JSON Schema (2020-12) object as written into a provider definition. */
export type JsonSchema = { [key: string]: unknown };

/** How much of a schema is kept: the importer lowers these to fit the manifest size limit. */
export interface SchemaDetail {
  /** Levels of nesting kept below the operation's inputs (1: only their own keywords; 0: not even those). */
  readonly maxDepth: number;
  /** Longest description of a top-level input, in characters; 0 drops them. */
  readonly descriptionChars: number;
  /** Longest description of a nested schema, in characters; 0 drops them. */
  readonly nestedDescriptionChars: number;
  /** Keep short scalar `examples`. */
  readonly examples: boolean;
  /** Most schema objects kept in one input or output schema; the rest is cut as "(truncated)". */
  readonly maxNodes: number;
  /** Longest `enum` kept; a longer one is dropped (its type stays). */
  readonly maxEnum: number;
  /** Keep the operation's output schema. */
  readonly output: boolean;
  /** Keep validation keywords beyond type and enum (lengths, bounds, patterns, formats, defaults). */
  readonly constraints: boolean;
  /** Say "(truncated)" where a schema was cut. */
  readonly markTruncated: boolean;
  /** Longest operation summary, in characters. */
  readonly summaryChars: number;
}

/** Which side of the call a schema describes: inputs drop `readOnly` properties, outputs `writeOnly` ones. */
export type SchemaMode = 'input' | 'output';

/** What the conversion noticed, for the import report. */
export interface SchemaNotes {
  /** Patterns that are not valid regular expressions (with the `u` flag), dropped. */
  readonly badPatterns: Set<string>;
  /** Schemas cut because of depth, size or a recursive reference. */
  truncated: number;
}

const simpleTypes = new Set(['string', 'number', 'integer', 'boolean', 'object', 'array', 'null']);

// Formats that JSON Schema defines (and Ajv knows); OpenAPI's own (`int64`, `binary`, `password`,
// `phone-number`, …) are dropped: they say nothing a validator checks and cost space.
const keptFormats = new Set([
  'date-time', 'date', 'time', 'duration', 'email', 'idn-email', 'hostname', 'idn-hostname', 'ipv4', 'ipv6',
  'uri', 'uri-reference', 'iri', 'iri-reference', 'uri-template', 'uuid', 'json-pointer', 'regex',
]);

const nonNegativeIntegerKeys = ['minLength', 'maxLength', 'minItems', 'maxItems', 'minProperties', 'maxProperties'] as const;

const maxExampleChars = 80;

interface Context {
  readonly version: OpenApiVersion;
  readonly mode: SchemaMode;
  readonly detail: SchemaDetail;
  readonly notes: SchemaNotes;
  nodes: number;
  readonly ancestors: Set<object>;
}

/**
 * Converts an OpenAPI (2.0, 3.0 or 3.1) schema, already dereferenced except for recursive
 * `$ref`s, into a JSON Schema 2020-12 that Patchbay accepts: `nullable` becomes a type (or enum)
 * with `null`, `example` becomes `examples`, boolean `exclusiveMinimum`/`exclusiveMaximum`
 * become numbers, Swagger's `file` type a string; `discriminator`, `xml`, `externalDocs`,
 * titles, vendor extensions and OpenAPI-only formats are dropped, and so are `readOnly`
 * properties of inputs and `writeOnly` properties of outputs. The result is bounded: below
 * `detail.maxDepth` levels, after `detail.maxNodes` schema objects, and at a recursive reference
 * the schema keeps only its type and says "(truncated)". `depth` is the level of `schema` (0 for
 * a top-level input). Never throws; invalid keywords are dropped.
 */
export function convertSchema(
  schema: unknown,
  options: { version: OpenApiVersion; mode: SchemaMode; detail: SchemaDetail; notes: SchemaNotes; depth?: number; budget?: { nodes: number } },
): JsonSchema {
  const context: Context = {
    version: options.version,
    mode: options.mode,
    detail: options.detail,
    notes: options.notes,
    nodes: options.budget?.nodes ?? 0,
    ancestors: new Set(),
  };
  const result = convert(schema, options.depth ?? 0, context);
  if (options.budget) options.budget.nodes = context.nodes;
  return typeof result === 'boolean' ? (result ? {} : { not: {} }) : result;
}

/** True when a property must be left out of `mode`'s schema (`readOnly` inputs, `writeOnly` outputs). */
export function excludedFor(mode: SchemaMode, schema: unknown): boolean {
  if (schema === null || typeof schema !== 'object') return false;
  const s = schema as Record<string, unknown>;
  return mode === 'input' ? s.readOnly === true : s.writeOnly === true;
}

function convert(raw: unknown, depth: number, context: Context): JsonSchema | boolean {
  if (typeof raw === 'boolean') return raw;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return {};
  const source = raw as Record<string, unknown>;
  if (typeof source.$ref === 'string') {
    // Local references are inlined before conversion; one left is external or dangling.
    return { description: `(unresolved reference ${source.$ref.slice(0, 100)})` };
  }
  if (context.ancestors.has(source)) {
    context.notes.truncated += 1;
    const type = convertType(source, context.version);
    const cut: JsonSchema = type === undefined ? {} : { type: type.length === 1 ? type[0] : type };
    if (context.detail.markTruncated) cut.description = '(truncated: recursive schema)';
    return cut;
  }
  context.nodes += 1;
  const out: JsonSchema = {};
  const { detail } = context;
  if (detail.maxDepth === 0) return out;

  const type = convertType(source, context.version);
  const nullable = source.nullable === true || source['x-nullable'] === true;
  if (type !== undefined) out.type = nullable && !type.includes('null') ? [...type, 'null'] : type.length === 1 ? type[0] : type;
  if (Array.isArray(out.type) && out.type.length === 1) out.type = out.type[0];

  const descriptionChars = depth === 0 ? detail.descriptionChars : detail.nestedDescriptionChars;
  const description = shortenText(source.description, descriptionChars);
  if (description !== undefined) out.description = description;

  if (Array.isArray(source.enum)) {
    const values = source.enum.filter((v) => v === null || ['string', 'number', 'boolean'].includes(typeof v));
    if (nullable && !values.includes(null)) values.push(null);
    const unique = [...new Set(values)];
    if (unique.length > 0 && unique.length <= detail.maxEnum) out.enum = unique;
  }
  if ('const' in source && isScalar(source.const)) out.const = source.const;
  if (detail.constraints) convertConstraints(source, out, context);
  if (detail.examples) {
    const example = Array.isArray(source.examples) ? source.examples[0] : source.example;
    if (isShortScalar(example)) out.examples = [typeof example === 'string' ? (shortenText(example, maxExampleChars) ?? example) : example];
  }
  if (source.deprecated === true) out.deprecated = true;

  if (!isObject(source.properties) && Array.isArray(source.required)) {
    // `required` without `properties` (a part of an `allOf`, an `anyOf` alternative) stands alone.
    const required = [...new Set(source.required.filter((r): r is string => typeof r === 'string'))];
    if (required.length > 0) out.required = required;
  }

  const nested = hasNested(source);
  const cut = depth + 1 >= detail.maxDepth || context.nodes >= detail.maxNodes;
  if (nested && cut) {
    context.notes.truncated += 1;
    if (detail.markTruncated) out.description = out.description === undefined ? '(truncated)' : `${out.description} (truncated)`;
    return out;
  }
  if (!nested) return out;

  context.ancestors.add(source);
  const child = (value: unknown) => convert(value, depth + 1, context);
  if (source.properties !== null && typeof source.properties === 'object' && !Array.isArray(source.properties)) {
    const properties: JsonSchema = {};
    for (const [name, value] of Object.entries(source.properties as Record<string, unknown>)) {
      if (excludedFor(context.mode, value)) continue;
      properties[name] = child(value);
    }
    out.properties = properties;
    if (Array.isArray(source.required)) {
      const required = [...new Set(source.required.filter((r): r is string => typeof r === 'string' && Object.hasOwn(properties, r)))];
      if (required.length > 0) out.required = required;
    }
  }
  if (source.patternProperties !== null && typeof source.patternProperties === 'object' && !Array.isArray(source.patternProperties)) {
    const patternProperties: JsonSchema = {};
    for (const [pattern, value] of Object.entries(source.patternProperties as Record<string, unknown>)) {
      if (compilePattern(pattern) !== undefined) patternProperties[pattern] = child(value);
      else context.notes.badPatterns.add(pattern);
    }
    if (Object.keys(patternProperties).length > 0) out.patternProperties = patternProperties;
  }
  if (typeof source.additionalProperties === 'boolean') out.additionalProperties = source.additionalProperties;
  else if (source.additionalProperties !== null && typeof source.additionalProperties === 'object') {
    out.additionalProperties = child(source.additionalProperties);
  }
  if (Array.isArray(source.items)) {
    // Swagger/OpenAPI 3.0 never allow this; JSON Schema before 2020-12 meant a tuple.
    out.prefixItems = source.items.map(child);
  } else if (source.items !== undefined && source.items !== null && typeof source.items === 'object') {
    out.items = child(source.items);
  } else if (typeof source.items === 'boolean') {
    out.items = source.items;
  }
  if (Array.isArray(source.prefixItems)) out.prefixItems = source.prefixItems.map(child);
  for (const key of ['allOf', 'anyOf', 'oneOf'] as const) {
    const list = source[key];
    if (Array.isArray(list) && list.length > 0) out[key] = list.map(child);
  }
  if (source.not !== null && typeof source.not === 'object') out.not = child(source.not);
  context.ancestors.delete(source);
  return out;
}

function convertConstraints(source: Record<string, unknown>, out: JsonSchema, context: Context): void {
  if (typeof source.format === 'string' && keptFormats.has(source.format)) out.format = source.format;
  if (typeof source.pattern === 'string') {
    if (compilePattern(source.pattern) !== undefined) out.pattern = source.pattern;
    else context.notes.badPatterns.add(source.pattern);
  }
  convertBounds(source, out);
  if (typeof source.multipleOf === 'number' && source.multipleOf > 0) out.multipleOf = source.multipleOf;
  for (const key of nonNegativeIntegerKeys) {
    const v = source[key];
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0) out[key] = v;
  }
  if (typeof source.uniqueItems === 'boolean' && source.uniqueItems) out.uniqueItems = true;
  if ('default' in source && isScalar(source.default)) out.default = source.default;
}

function convertType(source: Record<string, unknown>, version: OpenApiVersion): string[] | undefined {
  const raw = source.type;
  const list = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw])
    .map((t) => (version === '2.0' && t === 'file' ? 'string' : t))
    .filter((t): t is string => typeof t === 'string' && simpleTypes.has(t));
  const unique = [...new Set(list)];
  return unique.length > 0 ? unique : undefined;
}

// OpenAPI 3.0 and Swagger 2.0 write `exclusiveMinimum: true` beside `minimum`; JSON Schema
// 2020-12 writes the bound itself as `exclusiveMinimum`.
function convertBounds(source: Record<string, unknown>, out: JsonSchema): void {
  for (const [bound, exclusive] of [
    ['minimum', 'exclusiveMinimum'],
    ['maximum', 'exclusiveMaximum'],
  ] as const) {
    const value = source[bound];
    const flag = source[exclusive];
    if (typeof flag === 'number') out[exclusive] = flag;
    if (typeof value !== 'number') continue;
    if (flag === true) out[exclusive] = value;
    else if (typeof flag !== 'number') out[bound] = value;
  }
}

function hasNested(source: Record<string, unknown>): boolean {
  return (
    isObject(source.properties) ||
    isObject(source.patternProperties) ||
    isObject(source.additionalProperties) ||
    (source.items !== undefined && typeof source.items === 'object' && source.items !== null) ||
    Array.isArray(source.prefixItems) ||
    Array.isArray(source.allOf) ||
    Array.isArray(source.anyOf) ||
    Array.isArray(source.oneOf) ||
    isObject(source.not)
  );
}

function isObject(value: unknown): boolean {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function isScalar(value: unknown): boolean {
  return value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
}

function isShortScalar(value: unknown): boolean {
  if (typeof value === 'string') return value.length > 0 && value.length <= maxExampleChars && !/[\r\n]/.test(value);
  return typeof value === 'number' || typeof value === 'boolean';
}
