import { didYouMean } from '../lib/did-you-mean.js';
import { compilePattern } from '../lib/pattern.js';
import { parseTemplate } from '../mapping/template.js';
import { record } from './json-access.js';
import type { Code } from '../diag/codes.js';
import type { DocPath, DocumentReporter } from './report.js';

/** One mismatch between a literal and its schema: where, which code, and the message. */
interface Mismatch {
  readonly path: DocPath;
  readonly code: Code;
  readonly message: string;
  readonly anchor: 'key' | 'value';
}

// Nested input schemas from OpenAPI documents can be deep; literals in a manifest rarely are.
const maxDepth = 32;

/**
 * Checks the literal parts of one step input against the operation's schema for that input:
 * JSON type (a YAML scalar like `+15551234567` is a number, not the phone number string it
 * looks like), `const`/`enum`, string length and `pattern`, numeric bounds, array items and
 * bounds, and in literal objects unknown keys (closed schemas) and missing required keys.
 * A value that is exactly one `{{ expr }}` is only known at run time and is not checked; text
 * around an expression makes a string, so only its type is checked. `anyOf`/`oneOf` pass when
 * any alternative does; `allOf` needs every one. `$ref`s are not followed. Reports at most one
 * problem per input, at the innermost offending value.
 */
export function checkLiteralInput(value: unknown, schema: unknown, path: DocPath, label: string, reporter: DocumentReporter): void {
  const problem = mismatch(value, schema, path, label, 0);
  if (problem) reporter.at(problem.path, problem.code, problem.message, { anchor: problem.anchor });
}

function mismatch(value: unknown, schemaValue: unknown, path: DocPath, label: string, depth: number): Mismatch | undefined {
  const schema = record(schemaValue);
  if (!schema || depth > maxDepth) return undefined;
  let templated = false;
  if (typeof value === 'string') {
    const template = parseTemplate(value);
    if (template.parts.length > 0 || template.unterminatedAt !== undefined) {
      if (template.whole) return undefined;
      templated = true;
    }
  }

  for (const key of ['anyOf', 'oneOf'] as const) {
    const alternatives = schema[key];
    if (!Array.isArray(alternatives) || alternatives.length === 0) continue;
    const problems = alternatives.map((alternative) => mismatch(value, alternative, path, label, depth + 1));
    if (problems.every((p) => p !== undefined)) {
      // One alternative's message is clearer than a list of every way the value fails.
      const closest = problems.find((p) => p.path.length > path.length) ?? problems[0];
      return alternatives.length === 1 ? closest : { ...closest!, message: `${closest!.message} (and no other allowed form matches)` };
    }
  }
  if (Array.isArray(schema.allOf)) {
    for (const part of schema.allOf) {
      const problem = mismatch(value, part, path, label, depth + 1);
      if (problem) return problem;
    }
  }

  const types = declaredTypes(schema.type);
  const actual = templated ? 'string' : jsonType(value);
  if (types && !types.includes(actual) && !(actual === 'integer' && types.includes('number'))) {
    return { path, code: 'PB_STEP_INPUT_TYPE', anchor: 'value', message: `${label} must be ${types.join(' or ')}, not ${describe(value, actual, templated)}${typeHint(value, actual, types, templated)}` };
  }
  if (templated) return undefined;

  if (Object.hasOwn(schema, 'const') && !sameJson(schema.const, value)) {
    return { path, code: 'PB_STEP_INPUT_TYPE', anchor: 'value', message: `${label} must be ${JSON.stringify(schema.const)}` };
  }
  if (Array.isArray(schema.enum) && !schema.enum.some((allowed) => sameJson(allowed, value))) {
    const names = schema.enum.filter((v): v is string => typeof v === 'string');
    const hint = typeof value === 'string' ? didYouMean(value, names) : '';
    const list = schema.enum.length <= 12 ? `; allowed: ${schema.enum.map((v) => JSON.stringify(v)).join(', ')}` : '';
    return { path, code: 'PB_STEP_INPUT_TYPE', anchor: 'value', message: `${label} is not an allowed value${hint}${list}` };
  }

  if (typeof value === 'string') {
    const length = [...value].length;
    if (typeof schema.minLength === 'number' && length < schema.minLength) {
      return { path, code: 'PB_STEP_INPUT_TYPE', anchor: 'value', message: `${label} is shorter than ${schema.minLength} characters` };
    }
    if (typeof schema.maxLength === 'number' && length > schema.maxLength) {
      return { path, code: 'PB_STEP_INPUT_TYPE', anchor: 'value', message: `${label} is longer than ${schema.maxLength} characters (${length})` };
    }
    if (typeof schema.pattern === 'string') {
      const pattern = compilePattern(schema.pattern);
      if (pattern && !pattern.test(value)) {
        return { path, code: 'PB_STEP_INPUT_TYPE', anchor: 'value', message: `${label} does not have the required form (pattern ${schema.pattern})` };
      }
    }
  }

  if (typeof value === 'number') {
    const bound = numericBoundProblem(value, schema);
    if (bound) return { path, code: 'PB_STEP_INPUT_TYPE', anchor: 'value', message: `${label} ${bound}` };
  }

  if (Array.isArray(value)) {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems) {
      return { path, code: 'PB_STEP_INPUT_TYPE', anchor: 'value', message: `${label} needs at least ${schema.minItems} items` };
    }
    if (typeof schema.maxItems === 'number' && value.length > schema.maxItems) {
      return { path, code: 'PB_STEP_INPUT_TYPE', anchor: 'value', message: `${label} allows at most ${schema.maxItems} items (${value.length} given)` };
    }
    if (schema.items !== undefined) {
      for (const [index, item] of value.entries()) {
        const problem = mismatch(item, schema.items, [...path, index], `${label}[${index}]`, depth + 1);
        if (problem) return problem;
      }
    }
    return undefined;
  }

  const object = record(value);
  if (object) {
    const properties = record(schema.properties) ?? {};
    for (const [key, child] of Object.entries(object)) {
      if (Object.hasOwn(properties, key)) {
        const problem = mismatch(child, properties[key], [...path, key], `${label}.${key}`, depth + 1);
        if (problem) return problem;
      } else if (schema.additionalProperties === false) {
        const known = Object.keys(properties);
        return { path: [...path, key], code: 'PB_STEP_UNKNOWN_INPUT', anchor: 'key', message: `${label} has no field "${key}"${didYouMean(key, known)}${known.length && known.length <= 20 ? `; fields: ${known.join(', ')}` : ''}` };
      } else if (record(schema.additionalProperties)) {
        const problem = mismatch(child, schema.additionalProperties, [...path, key], `${label}.${key}`, depth + 1);
        if (problem) return problem;
      }
    }
    if (Array.isArray(schema.required)) {
      for (const name of schema.required) {
        if (typeof name === 'string' && !Object.hasOwn(object, name)) {
          return { path, code: 'PB_STEP_MISSING_INPUT', anchor: 'key', message: `${label} needs field "${name}"` };
        }
      }
    }
  }
  return undefined;
}

type JsonType = 'string' | 'number' | 'integer' | 'boolean' | 'object' | 'array' | 'null';

function declaredTypes(type: unknown): JsonType[] | undefined {
  if (typeof type === 'string') return [type as JsonType];
  if (Array.isArray(type) && type.every((t) => typeof t === 'string')) return type as JsonType[];
  return undefined;
}

function jsonType(value: unknown): JsonType {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  if (typeof value === 'boolean') return 'boolean';
  if (typeof value === 'string') return 'string';
  return 'object';
}

function describe(value: unknown, actual: JsonType, templated: boolean): string {
  if (templated) return 'text with an expression inside';
  if (actual === 'object' || actual === 'array') return `a${actual === 'array' ? 'n' : ''} ${actual}`;
  if (actual === 'null') return 'null';
  const shown = JSON.stringify(value);
  return `${actual === 'integer' ? 'number' : actual} ${shown.length > 40 ? `${shown.slice(0, 37)}…` : shown}`;
}

function typeHint(value: unknown, actual: JsonType, expected: JsonType[], templated: boolean): string {
  if (templated) return '; text around {{ }} makes a string, so make the value exactly one {{ expression }}';
  if (actual === 'null') return '; an empty value, `~` or `null` is null in YAML: give a value or leave the input out';
  if (expected.includes('string') && (actual === 'integer' || actual === 'number' || actual === 'boolean')) {
    return '; YAML read the unquoted value as a ' + (actual === 'integer' ? 'number' : actual) + ', so quote it';
  }
  if ((expected.includes('number') || expected.includes('integer')) && actual === 'string' && typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) {
    return '; write the number without quotes';
  }
  if (expected.includes('integer') && actual === 'number') return '; it must be a whole number';
  return '';
}

function numericBoundProblem(value: number, schema: Record<string, unknown>): string | undefined {
  const { minimum, maximum, exclusiveMinimum, exclusiveMaximum } = schema;
  if (typeof minimum === 'number' && value < minimum) return `is below the minimum ${minimum}`;
  if (typeof maximum === 'number' && value > maximum) return `is above the maximum ${maximum}`;
  if (typeof exclusiveMinimum === 'number' && value <= exclusiveMinimum) return `must be greater than ${exclusiveMinimum}`;
  if (typeof exclusiveMaximum === 'number' && value >= exclusiveMaximum) return `must be less than ${exclusiveMaximum}`;
  return undefined;
}

function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}
