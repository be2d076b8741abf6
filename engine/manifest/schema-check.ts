import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { closestName, didYouMean } from '../lib/did-you-mean.js';
import { packageRoot } from '../lib/package-root.js';
import { DocumentReporter, formatPath, type DocPath } from './report.js';

export type DocumentKind = 'Integration' | 'Provider';

export interface SchemaValidators {
  readonly Integration: ValidateFunction;
  readonly Provider: ValidateFunction;
}

/** Options every Ajv instance of Patchbay uses; the build's precompiled validators use the same. */
export const ajvOptions = {
  allErrors: true,
  discriminator: true,
  strict: true,
  strictRequired: false,
  allowUnionTypes: true,
  verbose: true,
} as const;

let cached: SchemaValidators | undefined;

/**
 * Returns validators for the two document kinds. Uses the standalone validators that the build
 * precompiles into dist/ (compiling the schemas costs ~200 ms, more than validating a thousand
 * manifests), and falls back to compiling schemas/ at run time when they are absent (tests
 * running from TypeScript sources).
 */
export async function loadSchemaValidators(): Promise<SchemaValidators> {
  if (cached) return cached;
  const precompiled = new URL('./schema-validators.cjs', import.meta.url);
  if (existsSync(fileURLToPath(precompiled))) {
    const module = ((await import(precompiled.href)) as { default: { Integration: ValidateFunction; Provider: ValidateFunction } }).default;
    cached = { Integration: module.Integration, Provider: module.Provider };
    return cached;
  }
  const { default: Ajv2020 } = await import('ajv/dist/2020.js');
  const { default: addFormats } = await import('ajv-formats');
  const ajv = new Ajv2020.default(ajvOptions);
  addFormats.default(ajv);
  const read = (name: string) => JSON.parse(readFileSync(join(packageRoot, 'schemas', `${name}.schema.json`), 'utf8'));
  cached = { Integration: ajv.compile(read('integration')), Provider: ajv.compile(read('provider')) };
  return cached;
}

/** Turns a JSON pointer (`/spec/steps/0`) into a document path (`['spec', 'steps', 0]`). */
export function pointerToPath(pointer: string): (string | number)[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((raw) => raw.replaceAll('~1', '/').replaceAll('~0', '~'))
    .map((segment) => (/^(0|[1-9][0-9]*)$/.test(segment) ? Number(segment) : segment));
}

interface SchemaNode {
  title?: string;
  properties?: Record<string, unknown>;
  enum?: unknown[];
  const?: unknown;
  description?: string;
}

/**
 * Validates a document's value against its kind's schema and reports each problem at the
 * offending key or value with a specific code: unknown fields with a did-you-mean, literal
 * secrets (without echoing them), bad names, durations, enums, ranges. Returns false when the
 * document has schema errors (later checks then skip what they cannot trust).
 */
export function checkSchema(validate: ValidateFunction, value: unknown, reporter: DocumentReporter): boolean {
  if (validate(value)) return true;
  const raw = validate.errors ?? [];
  const errors = collapse(raw);
  // Collapsing keeps the most specific errors; should it keep none, the first raw one is still
  // reported, so an invalid document never passes silently.
  for (const error of errors.length > 0 ? errors : raw.slice(0, 1)) reportSchemaError(error, reporter);
  return false;
}

// Ajv reports a failing `oneOf`/`discriminator` both as the branch's errors and as a summary;
// and a literal in a secret slot fails both `type` and the object keywords. Keep the specific ones.
function collapse(errors: readonly ErrorObject[]): ErrorObject[] {
  const seen = new Set<string>();
  const out: ErrorObject[] = [];
  const typeFailures = new Set(errors.filter((e) => e.keyword === 'type').map((e) => e.instancePath));
  // `tokn` for `token`: the unknown field is the finding; the missing one is the same mistake.
  const misspelt = errors.filter((e) => e.keyword === 'additionalProperties');
  const isMisspeltRequired = (error: ErrorObject) =>
    error.keyword === 'required' &&
    misspelt.some(
      (m) =>
        m.instancePath === error.instancePath &&
        closestName(String((m.params as { additionalProperty?: unknown }).additionalProperty), [
          String((error.params as { missingProperty?: unknown }).missingProperty),
        ]) !== undefined,
    );
  for (const error of errors) {
    if (error.keyword === 'oneOf' || error.keyword === 'if' || error.keyword === 'anyOf') continue;
    if (error.keyword === 'propertyNames') continue;
    if (typeFailures.has(error.instancePath) && error.keyword !== 'type') continue;
    if (isMisspeltRequired(error)) continue;
    const key = `${error.instancePath}|${error.keyword}|${JSON.stringify(error.params)}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(error);
  }
  return out;
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return 'a string';
  return `a ${typeof value}`;
}

function expectedType(type: unknown): string {
  const names: Record<string, string> = {
    object: 'a mapping',
    array: 'a list',
    string: 'a string',
    integer: 'an integer',
    number: 'a number',
    boolean: 'true or false',
    null: 'null',
  };
  const list = Array.isArray(type) ? type : [type];
  return list.map((t) => names[String(t)] ?? String(t)).join(' or ');
}

function reportSchemaError(error: ErrorObject, reporter: DocumentReporter): void {
  const path = pointerToPath(error.instancePath);
  const where = formatPath(path);
  const parent = (error.parentSchema ?? {}) as SchemaNode;
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties': {
      const field = String(params.additionalProperty);
      const known = Object.keys(parent.properties ?? {});
      const hint = didYouMean(field, known);
      const list = known.length > 0 && !hint ? `; known fields: ${known.join(', ')}` : '';
      reporter.at([...path, field], 'PB_MANIFEST_UNKNOWN_FIELD', `unknown field "${field}" in ${where}${hint}${list}`, {
        anchor: 'key',
      });
      return;
    }
    case 'required': {
      const field = String(params.missingProperty);
      const target: DocPath = path;
      reporter.at(target, 'PB_MANIFEST_MISSING_FIELD', `${where} is missing required field "${field}"`, {
        anchor: path.length > 0 ? 'key' : 'value',
      });
      return;
    }
    case 'type': {
      if ((parent.title === 'SecretRef' || parent.title === 'PlainOrSecret') && typeof error.data !== 'object') {
        reporter.at(
          path,
          'PB_SECRET_LITERAL',
          `${where} must be a secret reference, not a literal value: write { env: NAME } or { file: /path } and keep the value out of the repository`,
        );
        return;
      }
      if (parent.title === 'SecretRef') {
        reporter.at(path, 'PB_SECRET_LITERAL', `${where} must be a secret reference: { env: NAME } or { file: /path }`);
        return;
      }
      reporter.at(path, 'PB_MANIFEST_WRONG_TYPE', `${where} must be ${expectedType(params.type)}, not ${describeType(error.data)}`);
      return;
    }
    case 'const': {
      const expected = JSON.stringify(params.allowedValue);
      if (path.length === 1 && path[0] === 'apiVersion') {
        reporter.at(path, 'PB_MANIFEST_API_VERSION', `apiVersion must be ${expected}`);
        return;
      }
      reporter.at(path, 'PB_MANIFEST_BAD_VALUE', `${where} must be ${expected}`);
      return;
    }
    case 'enum': {
      const allowed = (params.allowedValues as unknown[]).map(String);
      const hint = typeof error.data === 'string' ? didYouMean(error.data, allowed) : '';
      reporter.at(path, 'PB_MANIFEST_BAD_VALUE', `${where} must be one of ${allowed.join(', ')}${hint}`);
      return;
    }
    case 'discriminator': {
      const tag = String(params.tag ?? 'type');
      const value = (error.data as Record<string, unknown> | null)?.[tag];
      const allowed = discriminatorValues(error);
      if (value === undefined) {
        reporter.at(path, 'PB_MANIFEST_MISSING_FIELD', `${where} is missing required field "${tag}" (one of ${allowed.join(', ')})`, {
          anchor: 'key',
        });
      } else {
        const hint = typeof value === 'string' ? didYouMean(value, allowed) : '';
        reporter.at([...path, tag], 'PB_MANIFEST_BAD_VALUE', `${where}.${tag} must be one of ${allowed.join(', ')}${hint}`);
      }
      return;
    }
    case 'pattern': {
      const title = parent.title;
      if (params.propertyName !== undefined || error.propertyName !== undefined) {
        const key = String(error.propertyName ?? params.propertyName);
        reporter.at([...path, key], 'PB_MANIFEST_BAD_KEY', `key "${key}" in ${where} must match ${String(params.pattern)}`, {
          anchor: 'key',
        });
        return;
      }
      if (title === 'Name' || path.at(-1) === 'name') {
        reporter.at(
          path,
          'PB_MANIFEST_BAD_NAME',
          `${where} "${String(error.data)}" is not a valid name: use lowercase letters, digits and hyphens, starting with a letter (at most 63)`,
        );
        return;
      }
      if (path.at(-1) === 'env') {
        reporter.at(
          path,
          'PB_MANIFEST_BAD_VALUE',
          `${where} must be the name of an environment variable, like STRIPE_API_KEY (no $, spaces or value)`,
        );
        return;
      }
      if (title === 'Duration') {
        reporter.at(path, 'PB_MANIFEST_BAD_VALUE', `${where} "${String(error.data)}" is not a duration: write e.g. 500ms, 30s, 5m, 1h30m`);
        return;
      }
      if (path.at(-1) === 'id') {
        reporter.at(
          path,
          'PB_MANIFEST_BAD_VALUE',
          `step id "${String(error.data)}" must be letters, digits and underscores starting with a letter (it is read as steps.<id> in expressions)`,
        );
        return;
      }
      if (path.at(-1) === 'call') {
        reporter.at(path, 'PB_MANIFEST_BAD_VALUE', `call "${String(error.data)}" must be <provider>.<operation>, e.g. twilio.messages.create`);
        return;
      }
      reporter.at(path, 'PB_MANIFEST_BAD_VALUE', `${where} does not have the allowed form (${String(params.pattern)})`);
      return;
    }
    case 'minProperties':
    case 'maxProperties': {
      if (parent.title === 'Trigger') {
        const present = Object.keys((error.data as object) ?? {});
        reporter.at(
          path,
          'PB_MANIFEST_BAD_VALUE',
          present.length === 0
            ? 'trigger needs exactly one of webhook, poll or schedule'
            : `trigger needs exactly one of webhook, poll or schedule, not ${present.join(' and ')}`,
          { anchor: present.length === 0 ? 'key' : 'value' },
        );
        return;
      }
      if (parent.title === 'SecretRef' || parent.title === 'PlainOrSecret') {
        reporter.at(path, 'PB_MANIFEST_BAD_VALUE', `${where} must have exactly one of env or file`);
        return;
      }
      reporter.at(path, 'PB_MANIFEST_OUT_OF_RANGE', `${where} ${error.message ?? 'has the wrong number of entries'}`);
      return;
    }
    case 'format': {
      reporter.at(path, 'PB_MANIFEST_BAD_VALUE', `${where} must be a valid ${String(params.format)}`);
      return;
    }
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
    case 'minItems':
    case 'maxItems':
    case 'minLength':
    case 'maxLength':
    case 'uniqueItems': {
      reporter.at(path, 'PB_MANIFEST_OUT_OF_RANGE', `${where} ${error.message ?? 'is out of range'}`);
      return;
    }
    default:
      reporter.at(path, 'PB_MANIFEST_BAD_VALUE', `${where} ${error.message ?? 'is not valid'}`);
  }
}

let integrationDefs: Record<string, { properties?: { type?: { const?: string } } }> | undefined;

// Lists the values a discriminator accepts by following the `oneOf` branches' `$ref`s into the
// integration schema (the only schema with a discriminator) and reading each branch's `type` const.
function discriminatorValues(error: ErrorObject): string[] {
  const parent = error.parentSchema as { oneOf?: { $ref?: string }[] } | undefined;
  integrationDefs ??= JSON.parse(readFileSync(schemaPaths.integration(), 'utf8')).$defs;
  const values: string[] = [];
  for (const branch of parent?.oneOf ?? []) {
    const name = branch.$ref?.split('/').at(-1);
    const value = name ? integrationDefs?.[name]?.properties?.type?.const : undefined;
    if (value) values.push(value);
  }
  return values;
}

export const schemaPaths = {
  integration: () => join(packageRoot, 'schemas', 'integration.schema.json'),
  provider: () => join(packageRoot, 'schemas', 'provider.schema.json'),
};
