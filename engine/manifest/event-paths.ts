import { closestName } from '../lib/did-you-mean.js';

interface SchemaLike {
  type?: string | string[];
  properties?: Record<string, SchemaLike>;
  additionalProperties?: boolean | SchemaLike;
  patternProperties?: Record<string, SchemaLike>;
  items?: SchemaLike;
  anyOf?: SchemaLike[];
  oneOf?: SchemaLike[];
  allOf?: SchemaLike[];
}

/** Result of following a path through a payload schema. */
export type PathCheck =
  | { readonly ok: true }
  | { readonly ok: false; readonly index: number; readonly known: readonly string[]; readonly suggestion: string | undefined };

/**
 * Follows `names` through a JSON Schema the way JSONata navigates a value: arrays are mapped
 * over, so a name after an array applies to its items. A name is unknown when the schema at
 * that level lists `properties` and neither lists the name nor allows other properties
 * explicitly (`additionalProperties: true` or a schema). Schemas that say nothing are open.
 */
export function checkSchemaPath(schema: unknown, names: readonly string[]): PathCheck {
  let current: SchemaLike | undefined = schema as SchemaLike;
  for (let i = 0; i < names.length; i++) {
    current = unwrapArrays(current);
    if (!current || typeof current !== 'object') return { ok: true };
    const name = names[i]!;
    const properties = current.properties;
    if (properties && Object.hasOwn(properties, name)) {
      current = properties[name];
      continue;
    }
    const patternMatch = Object.entries(current.patternProperties ?? {}).find(([pattern]) => safeTest(pattern, name));
    if (patternMatch) {
      current = patternMatch[1];
      continue;
    }
    const extra = current.additionalProperties;
    if (extra && typeof extra === 'object') {
      current = extra;
      continue;
    }
    // Variants that list no properties only add rules such as `required`: they say nothing of names.
    const variants = [...(current.anyOf ?? []), ...(current.oneOf ?? []), ...(current.allOf ?? [])].filter(
      (v) => v && typeof v === 'object' && (v.properties || v.additionalProperties !== undefined || v.anyOf || v.oneOf || v.allOf || v.items),
    );
    if (variants.length > 0) {
      // The rest of the path is valid when any variant accepts it.
      const rest = names.slice(i);
      const results = variants.map((v) => checkSchemaPath(v, rest));
      if (results.some((r) => r.ok)) return { ok: true };
      if (!properties) {
        const first = results[0] as Extract<PathCheck, { ok: false }>;
        return { ...first, index: first.index + i };
      }
    }
    if (extra === true || !properties) return { ok: true };
    const known = Object.keys(properties);
    return { ok: false, index: i, known, suggestion: closestName(name, known) };
  }
  return { ok: true };
}

// A provider's schema may hold a pattern JavaScript cannot compile; it then matches nothing.
function safeTest(pattern: string, name: string): boolean {
  try {
    return new RegExp(pattern, 'u').test(name);
  } catch {
    return false;
  }
}

function unwrapArrays(schema: SchemaLike | undefined): SchemaLike | undefined {
  let current = schema;
  for (let guard = 0; guard < 8 && current && (current.type === 'array' || (current.items && !current.properties)); guard++) {
    current = current.items;
  }
  return current;
}
