/**
 * The small path language provider definitions use to point into a parsed response:
 * `error.message`, `errors[0].extensions.code`, `data[-1].id` (negative indexes count from the
 * end), `response_metadata.next_cursor`. Segments are separated by dots; `[n]` indexes an array.
 * A name segment applied to an array reads the first element's field, so a path written for one
 * XML element still works when the parser produced a list of them.
 */

export type PathSegment = string | number;

const namePattern = /[^.[\]]+/y;
const indexPattern = /\[(-?[0-9]+)\]/y;

/**
 * Splits a path into name and index segments. Throws a plain `Error` naming the path when it is
 * empty or malformed (`a..b`, `.a`, `a[x]`): paths come from provider definitions, so a bad one
 * is a definition bug, reported by the caller with its own code.
 */
export function parsePath(path: string): PathSegment[] {
  const segments: PathSegment[] = [];
  let at = 0;
  while (at < path.length) {
    indexPattern.lastIndex = at;
    const index = indexPattern.exec(path);
    if (index !== null) {
      segments.push(Number(index[1]));
      at = indexPattern.lastIndex;
      continue;
    }
    // A name follows the start of the path or a dot.
    if (segments.length > 0) {
      if (path[at] !== '.') throw new Error(`malformed path "${path}"`);
      at += 1;
    }
    namePattern.lastIndex = at;
    const name = namePattern.exec(path);
    if (name === null) throw new Error(`malformed path "${path}"`);
    segments.push(name[0]);
    at = namePattern.lastIndex;
  }
  if (segments.length === 0) throw new Error(`malformed path "${path}"`);
  return segments;
}

const cache = new Map<string, PathSegment[]>();

/**
 * Reads `path` from `value`; undefined when any step is missing or of the wrong kind. Never
 * throws for data: a malformed path throws (see `parsePath`). Only own properties are read, so
 * `__proto__` or `constructor` in a path reads nothing.
 */
export function readPath(value: unknown, path: string): unknown {
  let segments = cache.get(path);
  if (segments === undefined) {
    segments = parsePath(path);
    if (cache.size < 1000) cache.set(path, segments);
  }
  let current = value;
  for (const segment of segments) {
    if (current === null || current === undefined) return undefined;
    if (typeof segment === 'number') {
      if (!Array.isArray(current)) return undefined;
      current = current[segment < 0 ? current.length + segment : segment];
      continue;
    }
    if (Array.isArray(current)) current = current[0];
    if (current === null || typeof current !== 'object' || !Object.hasOwn(current, segment)) return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return current;
}
