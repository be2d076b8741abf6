import SwaggerParser from '@apidevtools/swagger-parser';
import { PatchbayError } from '../../diag/errors.js';
import { maxNestingDepth, type ApiDocument } from './read-document.js';
import { maskQuoted } from './text.js';

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
 * Checks what resolving the document's local `$ref`s will meet, before the (recursive) resolver
 * runs: every reference must point to something, no cycle may consist of references alone
 * (`A: {$ref: B}`, `B: {$ref: A}`: there is no schema to use, and guessing one would change how
 * the body is sent), and objects and lists, with references followed, must not nest deeper than
 * `maxDepth`. A reference back to an object being walked (a recursive schema with content) counts
 * as nothing, as the resolver leaves it in place. Iterative, and each object is measured once,
 * so its cost is linear in the document. Messages show JSON pointers as written. Throws
 * PatchbayError PB_IMPORT_BAD_REF (dangling or content-free cycle) or PB_IMPORT_TOO_DEEP.
 */
export function checkReferences(root: unknown, sourceName: string, maxDepth: number = maxNestingDepth): void {
  if (root === null || typeof root !== 'object') return;
  interface Frame {
    readonly node: object;
    /** How it is reached from its parent: a key, or `#…` for a reference followed. */
    readonly label: string;
    readonly children: [string, object][];
    index: number;
    /** Levels from this object down, itself included, as far as walked. */
    height: number;
  }
  const heights = new Map<object, number>();
  const onPath = new Set<object>();
  const frames: Frame[] = [];
  const where = (extra?: string) => renderPath([...frames.slice(1).map((f) => f.label), ...(extra === undefined ? [] : [extra])]);
  const enter = (node: object, label: string) => {
    const children: [string, object][] = [];
    for (const [key, value] of Array.isArray(node) ? node.map((v, i) => [String(i), v] as const) : Object.entries(node)) {
      if (value !== null && typeof value === 'object') children.push([key, value]);
    }
    const ref = Array.isArray(node) ? undefined : (node as { $ref?: unknown }).$ref;
    if (typeof ref === 'string' && ref.startsWith('#')) {
      const target = resolvePointer(root, ref);
      if (target === undefined) {
        throw new PatchbayError('PB_IMPORT_BAD_REF', `${sourceName}: $ref "${ref}" at ${where(label)} points to nothing in the document`);
      }
      if (target !== null && typeof target === 'object') children.push([ref, target]);
    }
    onPath.add(node);
    frames.push({ node, label, children, index: 0, height: 1 });
  };
  enter(root, '');
  while (frames.length > 0) {
    const top = frames[frames.length - 1]!;
    if (top.index >= top.children.length) {
      frames.pop();
      onPath.delete(top.node);
      heights.set(top.node, top.height);
      const parent = frames[frames.length - 1];
      if (parent) parent.height = Math.max(parent.height, top.height + 1);
      continue;
    }
    const [label, child] = top.children[top.index]!;
    top.index += 1;
    if (onPath.has(child)) {
      if (label.startsWith('#')) refusePureCycle(frames, child, label, sourceName);
      continue;
    }
    const known = heights.get(child);
    const depth = frames.length + (known ?? 1);
    if (depth > maxDepth) {
      throw new PatchbayError(
        'PB_IMPORT_TOO_DEEP',
        `${sourceName}: objects and lists nest deeper than ${maxDepth} levels (with $refs followed) at ${where(label)}; no OpenAPI description needs that many, so it is not imported`,
      );
    }
    if (known !== undefined) {
      top.height = Math.max(top.height, known + 1);
      continue;
    }
    enter(child, label);
  }
}

/**
 * Refuses a reference back to `target` (an object on the walked path) when the loop it closes
 * holds nothing but bare references: every object in it is a `$ref` and every step follows one.
 */
function refusePureCycle(frames: readonly { node: object; label: string }[], target: object, label: string, sourceName: string): void {
  const start = frames.findIndex((f) => f.node === target);
  const steps = [...frames.slice(start + 1).map((f) => f.label), label];
  if (!frames.slice(start).every((f) => isBareRef(f.node)) || !steps.every((step) => step.startsWith('#'))) return;
  const labels = frames.slice(1).map((f) => f.label);
  const first = frames[start]!;
  // Name the reference that leads into the loop, where it is written.
  const viaRef = first.label.startsWith('#');
  const entry = viaRef ? first.label : (first.node as { $ref: string }).$ref;
  const at = renderPath(labels.slice(0, viaRef ? start - 1 : start));
  const loop = [viaRef ? first.label : renderPath(labels.slice(0, start)), ...steps];
  throw new PatchbayError(
    'PB_IMPORT_BAD_REF',
    `${sourceName}: $ref "${entry}" at ${at} leads to a cycle of references with no schema in it (${loop.join(' → ')}); give one of them a schema`,
  );
}

/** An object that is a local reference and nothing else but descriptive keys. */
function isBareRef(node: object): boolean {
  if (!isRef(node)) return false;
  return Object.keys(node).every((key) => key === '$ref' || key === 'description' || key === 'summary' || key === 'title' || key.startsWith('x-'));
}

const maxShownSegments = 12;

/** A walked path as a JSON pointer, a followed reference shown as ` → #/…`; long paths end in `/…`. */
function renderPath(labels: readonly string[]): string {
  let out = '';
  let shown = 0;
  for (const label of labels) {
    if (shown >= maxShownSegments) return `${out}/…`;
    out += label.startsWith('#') ? ` → ${label}` : `/${escapePointer(label)}`;
    shown += 1;
  }
  return out === '' ? '/' : out;
}

/**
 * Resolves the document's local `$ref`s in place with swagger-parser, leaving each reference
 * that would recurse (Stripe's expandable objects, trees) as a `$ref` for the schema converter
 * to cut. Nothing is fetched: a reference outside the document is refused before resolving.
 * Throws PatchbayError PB_IMPORT_BAD_REF for an external or dangling reference or a cycle of
 * bare references, PB_IMPORT_TOO_DEEP for nesting past {@link maxNestingDepth} (see
 * {@link checkReferences}).
 */
export async function dereferenceDocument(document: ApiDocument, sourceName: string): Promise<Record<string, unknown>> {
  const external = findExternalRef(document.value);
  if (external) {
    throw new PatchbayError(
      'PB_IMPORT_BAD_REF',
      `${sourceName}: $ref "${maskQuoted(external.ref)}" at ${external.pointer} points outside the document; references are not fetched, so bundle the description into one file first`,
    );
  }
  checkReferences(document.value, sourceName);
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
    // A reference to a reference: follow it until a value, refusing a loop (checkReferences
    // refuses those first; this keeps the function safe on its own).
    const chain: string[] = [];
    let value: unknown = { $ref: ref };
    while (isRef(value)) {
      const next = (value as { $ref: string }).$ref;
      if (chain.includes(next)) {
        throw new PatchbayError(
          'PB_IMPORT_BAD_REF',
          `${sourceName}: $ref "${ref}" leads to a cycle of references with no schema in it (${[...chain.slice(chain.indexOf(next)), next].join(' → ')}); give one of them a schema`,
        );
      }
      chain.push(next);
      value = resolvePointer(root, next);
      if (value === undefined) throw new PatchbayError('PB_IMPORT_BAD_REF', `${sourceName}: $ref "${next}" points to nothing in the document`);
    }
    return value;
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
