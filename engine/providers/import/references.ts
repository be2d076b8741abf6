import SwaggerParser from '@apidevtools/swagger-parser';
import { PatchbayError } from '../../diag/errors.js';
import type { ApiDocument } from './read-document.js';

/**
 * Finds the first `$ref` that does not point inside the document (`other.yaml#/x`,
 * `https://…`) and returns it with the JSON pointer of where it is written; undefined when all
 * are local (`#/…`). Iterative, so deep nesting cannot overflow the stack.
 */
export function findExternalRef(value: unknown): { ref: string; pointer: string } | undefined {
  interface Frame {
    readonly value: object;
    readonly keys: string[];
    index: number;
  }
  const frames: Frame[] = [];
  const seen = new Set<object>();
  const push = (node: unknown) => {
    if (node === null || typeof node !== 'object' || seen.has(node)) return;
    seen.add(node);
    frames.push({ value: node, keys: Object.keys(node), index: 0 });
  };
  push(value);
  while (frames.length > 0) {
    const frame = frames[frames.length - 1]!;
    if (frame.index === 0) {
      const ref = (frame.value as { $ref?: unknown }).$ref;
      if (typeof ref === 'string' && !ref.startsWith('#')) {
        const pointer = frames.slice(1).map((f, i) => escapePointer(frames[i]!.keys[frames[i]!.index - 1]!)).join('/');
        return { ref, pointer: `/${pointer}` };
      }
    }
    if (frame.index >= frame.keys.length) {
      frames.pop();
      continue;
    }
    const key = frame.keys[frame.index]!;
    frame.index += 1;
    push((frame.value as Record<string, unknown>)[key]);
  }
  return undefined;
}

function escapePointer(segment: string): string {
  return segment.replaceAll('~', '~0').replaceAll('/', '~1');
}

/**
 * Resolves the document's local `$ref`s in place with swagger-parser, leaving each reference
 * that would recurse (Stripe's expandable objects, trees) as a `$ref` for the schema converter
 * to cut. Nothing is fetched: a reference outside the document is refused before resolving.
 * Throws PatchbayError PB_IMPORT_BAD_REF for an external or dangling reference.
 */
export async function dereferenceDocument(document: ApiDocument, sourceName: string): Promise<Record<string, unknown>> {
  const external = findExternalRef(document.value);
  if (external) {
    throw new PatchbayError(
      'PB_IMPORT_BAD_REF',
      `${sourceName}: $ref "${external.ref}" at ${external.pointer} points outside the document; references are not fetched, so bundle the description into one file first`,
    );
  }
  // swagger-parser refuses OpenAPI patch versions it does not list and unquoted version
  // numbers; the dialect is already known, so it is given a version it accepts.
  const value: Record<string, unknown> = { ...document.value };
  if (document.version === '2.0') value.swagger = '2.0';
  else value.openapi = document.version === '3.0' ? '3.0.3' : '3.1.0';
  const info = value.info as Record<string, unknown> | undefined;
  if (info !== null && typeof info === 'object' && typeof info.version !== 'string') value.info = { ...info, version: String(info.version ?? '') };
  if (value.paths === undefined) value.paths = {};
  try {
    const resolved = await SwaggerParser.dereference(value as never, {
      resolve: { external: false, file: false, http: false },
      dereference: { circular: 'ignore' },
      validate: { schema: false, spec: false },
    } as never);
    const root = resolved as unknown as Record<string, unknown>;
    inlineLocalRefs(root, sourceName);
    return root;
  } catch (error) {
    if (error instanceof PatchbayError) throw error;
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new PatchbayError('PB_IMPORT_BAD_REF', `${sourceName}: a $ref cannot be resolved: ${reason}`, { cause: error });
  }
}

/**
 * Replaces every `$ref` object swagger-parser left (it leaves each reference that takes part in
 * a cycle, even the first one) by the object it points to, so readers see plain values; the
 * document then holds real cycles, which every reader must bound (the schema converter tracks
 * its ancestors). A `$ref` with sibling keys (OpenAPI 3.1) becomes a copy of its target with
 * the siblings laid over it. Throws PatchbayError PB_IMPORT_BAD_REF for a dangling reference.
 */
export function inlineLocalRefs(root: Record<string, unknown>, sourceName: string): void {
  const seen = new Set<object>();
  const stack: object[] = [root];
  const target = (ref: string): unknown => {
    let value: unknown = { $ref: ref };
    // A reference to a reference: follow a bounded number of hops.
    for (let hop = 0; hop < 32 && isRef(value); hop += 1) {
      const next = resolvePointer(root, (value as { $ref: string }).$ref);
      if (next === undefined) {
        throw new PatchbayError('PB_IMPORT_BAD_REF', `${sourceName}: $ref "${(value as { $ref: string }).$ref}" points to nothing in the document`);
      }
      value = next;
    }
    return isRef(value) ? {} : value;
  };
  while (stack.length > 0) {
    const node = stack.pop()!;
    if (seen.has(node)) continue;
    seen.add(node);
    const entries: [string | number, unknown][] = Array.isArray(node) ? node.map((v, i) => [i, v]) : Object.entries(node);
    for (const [key, value] of entries) {
      if (value === null || typeof value !== 'object') continue;
      let replacement = value;
      if (isRef(value)) {
        const { $ref, ...siblings } = value as { $ref: string } & Record<string, unknown>;
        const resolved = target($ref);
        replacement = Object.keys(siblings).length > 0 && resolved !== null && typeof resolved === 'object' ? { ...resolved, ...siblings } : (resolved as object);
        (node as Record<string | number, unknown>)[key] = replacement;
      }
      if (replacement !== null && typeof replacement === 'object' && !seen.has(replacement)) stack.push(replacement);
    }
  }
}

function isRef(value: unknown): boolean {
  return value !== null && typeof value === 'object' && typeof (value as { $ref?: unknown }).$ref === 'string' && (value as { $ref: string }).$ref.startsWith('#');
}

/** The value a local JSON pointer reference (`#/components/schemas/Pet`) names, or undefined. */
export function resolvePointer(root: unknown, ref: string): unknown {
  if (!ref.startsWith('#')) return undefined;
  const pointer = ref.slice(1);
  if (pointer === '') return root;
  if (!pointer.startsWith('/')) return undefined;
  let value: unknown = root;
  for (const raw of pointer.slice(1).split('/')) {
    let segment: string;
    try {
      segment = decodeURIComponent(raw).replaceAll('~1', '/').replaceAll('~0', '~');
    } catch {
      // A malformed percent-escape names nothing.
      return undefined;
    }
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, segment)) return undefined;
    value = (value as Record<string, unknown>)[segment];
  }
  return value;
}
