// Matches a catalogue operation to the path of its official API description (OpenAPI 3 or
// Swagger 2) that serves it: same method, same full path shape once the description's server
// path is removed. Shared by test/providers/prism.test.ts, test/providers/input-coverage.test.ts
// and scripts/check-input-coverage.mjs; plain JavaScript because that script runs under plain
// node. Types: spec-match.d.mts beside it.

/**
 * A path template by shape: every `{anything}` and `{anything+}` becomes `{}`, so templates that
 * name their placeholders differently compare equal.
 * @param {string} path
 * @returns {string}
 */
export const shape = (path) => path.replace(/\{[^}]*\}/g, '{}');

/**
 * The path of a base URL template, placeholders kept, no trailing `/`:
 * `https://{shop}.example.com/admin/api/{apiVersion}/` → `/admin/api/{apiVersion}`.
 * `undefined` gives `''`. Throws a TypeError when the template, placeholders filled, is not a URL.
 * @param {string | undefined} template
 * @returns {string}
 */
export function basePath(template) {
  if (template === undefined) return '';
  const filled = template.replace(/\{([^}]*)\}/g, (_whole, name) => `__${name}__`);
  return decodeURIComponent(new URL(filled).pathname).replace(/__([^_]+)__/g, '{$1}').replace(/\/+$/, '');
}

/**
 * The server paths a description serves `item` under, each without a trailing `/`: Swagger 2's
 * `basePath`; else the path item's own `servers`, else the description's; `['']` when none.
 * @param {{ swagger?: string, basePath?: string, servers?: readonly { url: string }[] }} spec
 * @param {{ servers?: readonly { url: string }[] }} item
 * @returns {string[]}
 */
export function serverPaths(spec, item) {
  if (spec.swagger !== undefined) return [(spec.basePath ?? '').replace(/\/+$/, '')];
  const paths = (item.servers ?? spec.servers ?? []).map((server) => basePath(server.url));
  return paths.length === 0 ? [''] : paths;
}

/**
 * The first description path, in `specs` order then `paths` order, that serves `operation`: one
 * with the operation's method (lower case, `post` when it names none) whose shape equals the
 * operation's full path (base path of its `baseUrl`, else the provider's, plus its `path`) minus
 * one of the item's server paths. Keys holding `?` are skipped. `undefined` when none matches.
 * @template {{ paths: Record<string, object> }} Spec
 * @param {{ spec: { baseUrl?: string } }} provider
 * @param {{ method?: string, baseUrl?: string, path?: string }} operation
 * @param {readonly { file: string, spec: Spec }[]} specs
 * @returns {{ file: string, spec: Spec, pathKey: string, method: string, prefix: string, base: string } | undefined}
 *   `prefix` is the server path removed, `base` the operation's base path.
 */
export function findSpecPath(provider, operation, specs) {
  const method = (operation.method ?? 'POST').toLowerCase();
  const base = basePath(operation.baseUrl ?? provider.spec.baseUrl);
  const fullPath = base + (operation.path ?? '');
  for (const { file, spec } of specs) {
    for (const [pathKey, item] of Object.entries(spec.paths)) {
      if (pathKey.includes('?') || item[method] === undefined) continue;
      for (const prefix of serverPaths(spec, item)) {
        if (prefix !== '' && !fullPath.startsWith(prefix)) continue;
        if (shape(fullPath.slice(prefix.length)) === shape(pathKey)) return { file, spec, pathKey, method, prefix, base };
      }
    }
  }
  return undefined;
}
