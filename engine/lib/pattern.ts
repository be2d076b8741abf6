/**
 * Compiles a JSON Schema `pattern` (ECMA-262 with the `u` flag, as Ajv does), or returns
 * undefined when it does not compile. Callers decide what an invalid pattern means: a finding
 * (provider checks), a keyword to drop (OpenAPI import), or a value that cannot be constrained.
 * Compiled patterns are memoised: the same few provider patterns are tested against every
 * manifest value.
 */
export function compilePattern(pattern: string): RegExp | undefined {
  let compiled = cache.get(pattern);
  if (compiled === undefined) {
    try {
      compiled = new RegExp(pattern, 'u');
    } catch {
      // An invalid pattern is reported as `undefined`; the caller says what it means.
      compiled = null;
    }
    if (cache.size >= maxCached) cache.clear();
    cache.set(pattern, compiled);
  }
  return compiled ?? undefined;
}

// Bounded so patterns from many user documents cannot grow it without limit.
const maxCached = 1000;
const cache = new Map<string, RegExp | null>();
