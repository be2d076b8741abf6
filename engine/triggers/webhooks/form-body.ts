import { PatchbayError } from '../../diag/errors.js';

/**
 * `application/x-www-form-urlencoded` bodies. Two readings: flat (Twilio: each name as sent,
 * repeated names gathered into an array) and nested (Mailchimp: `data[merges][FNAME]=Jane`
 * becomes `{ data: { merges: { FNAME: 'Jane' } } }`, `a[]=x` appends, and an object whose keys
 * are exactly 0…n-1 becomes an array, as PHP-style senders mean it).
 */

/** Upper bounds that keep a hostile body cheap: fields per body and bracket levels per name. */
export const formLimits = { maxFields: 10_000, maxDepth: 32 } as const;

/** One decoded field, in body order. */
export interface FormField {
  readonly name: string;
  readonly value: string;
}

function badBody(message: string): PatchbayError {
  return new PatchbayError('PB_WEBHOOK_BAD_BODY', message);
}

function decodeComponent(text: string, field: number, what: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch (error) {
    throw new PatchbayError('PB_WEBHOOK_BAD_BODY', `form field #${field} has a malformed percent-encoded ${what} (a bad %-escape or not UTF-8)`, { cause: error });
  }
}

/**
 * Splits form text into decoded fields (`+` is a space, `%XX` escapes must form UTF-8). Empty
 * pieces (`a=1&&b=2`) are skipped. Raises PB_WEBHOOK_BAD_BODY for a malformed escape or more
 * than `formLimits.maxFields` fields, naming the field's position, never its content.
 */
export function parseFormFields(text: string): FormField[] {
  const fields: FormField[] = [];
  if (text === '') return fields;
  const pieces = text.split('&');
  for (const [index, piece] of pieces.entries()) {
    if (piece === '') continue;
    if (fields.length >= formLimits.maxFields) throw badBody(`the form body has more than ${formLimits.maxFields} fields`);
    const equals = piece.indexOf('=');
    const rawName = equals < 0 ? piece : piece.slice(0, equals);
    const rawValue = equals < 0 ? '' : piece.slice(equals + 1);
    fields.push({ name: decodeComponent(rawName, index + 1, 'name'), value: decodeComponent(rawValue, index + 1, 'value') });
  }
  return fields;
}

/**
 * Flat reading: each name maps to its value, or to an array of values in body order when repeated.
 * Raises PB_WEBHOOK_BAD_BODY for a field named `__proto__` (see nestedFormObject).
 */
export function flatFormObject(fields: readonly FormField[]): Record<string, string | string[]> {
  const result: Record<string, string | string[]> = {};
  for (const [index, { name, value }] of fields.entries()) {
    if (name === '__proto__') throw badBody(`form field #${index + 1} uses the reserved name __proto__`);
    const existing = Object.hasOwn(result, name) ? result[name] : undefined;
    if (existing === undefined) defineField(result, name, value);
    else if (Array.isArray(existing)) existing.push(value);
    else defineField(result, name, [existing, value]);
  }
  return result;
}

// defineProperty, not assignment: a name like `constructor` stays an own data property.
function defineField(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** The bracket segments of a name: `data[merges][FNAME]` → ['data', 'merges', 'FNAME']; undefined when the name is not of that shape (then it stays flat). */
function segmentsOf(name: string): string[] | undefined {
  const open = name.indexOf('[');
  if (open <= 0) return undefined;
  const segments = [name.slice(0, open)];
  let rest = name.slice(open);
  while (rest !== '') {
    const match = /^\[([^[\]]*)\]/.exec(rest);
    if (match === null) return undefined;
    segments.push(match[1] ?? '');
    rest = rest.slice(match[0].length);
  }
  return segments;
}

type Node = { [key: string]: Node | string | string[] };

/**
 * Nested reading (see the file comment). Raises PB_WEBHOOK_BAD_BODY when a name is both a value and
 * a container (`a=1&a[b]=2`), nests deeper than `formLimits.maxDepth`, or uses `__proto__` as a
 * segment (refused rather than stored, so no consumer that merges objects can be led to touch a
 * prototype). The result holds only plain objects, arrays and strings.
 */
export function nestedFormObject(fields: readonly FormField[]): Record<string, unknown> {
  const root: Node = Object.create(null) as Node;
  for (const [index, { name, value }] of fields.entries()) {
    const segments = segmentsOf(name) ?? [name];
    if (segments.length > formLimits.maxDepth) throw badBody(`form field #${index + 1} nests deeper than ${formLimits.maxDepth} levels`);
    if (segments.includes('__proto__')) throw badBody(`form field #${index + 1} uses the reserved name __proto__`);
    let node = root;
    for (let depth = 0; depth < segments.length; depth += 1) {
      let segment = segments[depth] ?? '';
      const last = depth === segments.length - 1;
      if (segment === '' && depth > 0) segment = String(Object.keys(node).length);
      const existing = Object.hasOwn(node, segment) ? node[segment] : undefined;
      if (last) {
        if (existing === undefined) node[segment] = value;
        else if (typeof existing === 'string') node[segment] = [existing, value];
        else if (Array.isArray(existing)) existing.push(value);
        else throw badBody(`form field #${index + 1} gives a value to a name that also holds nested fields`);
      } else {
        if (existing === undefined) {
          const child: Node = Object.create(null) as Node;
          node[segment] = child;
          node = child;
        } else if (typeof existing === 'string' || Array.isArray(existing)) {
          throw badBody(`form field #${index + 1} nests fields under a name that also holds a value`);
        } else {
          node = existing;
        }
      }
    }
  }
  return toPlainObject(root) as Record<string, unknown>;
}

/** Copies null-prototype nodes into plain objects (keys are safe by construction), turning 0…n-1 keyed objects into arrays. */
function toPlainObject(node: unknown): unknown {
  if (typeof node === 'string' || Array.isArray(node)) return node;
  const entries = Object.entries(node as Record<string, unknown>);
  const isList = entries.length > 0 && entries.every(([key], position) => key === String(position));
  if (isList) return entries.map(([, child]) => toPlainObject(child));
  const result: Record<string, unknown> = {};
  for (const [key, child] of entries) defineField(result, key, toPlainObject(child));
  return result;
}
