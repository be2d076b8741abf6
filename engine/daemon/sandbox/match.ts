import type { ProviderDocument, ProviderOperation } from '../../types/provider.generated.js';

/**
 * Finds which operation of a provider an inbound request is, the way the provider's own server
 * would route it: by method and path template (`{param}` one segment, `{param+}` the rest of the
 * path), and where one path serves many operations by what names the operation in the request —
 * `X-Amz-Target` (AWS JSON protocols), the `Action` form field or query parameter (AWS query
 * protocol), `SOAPAction` (or SOAP 1.2's `action` media-type parameter), the GraphQL document or
 * its operation name, and any other `fixed.query` parameter.
 */

/** A request as the sandbox received it, its path relative to the provider's base URL. */
export interface SandboxRequest {
  readonly method: string;
  /** The path after the provider's prefix, without the query (`/v1/customers/cus_1`; `/` when empty). */
  readonly path: string;
  readonly query: URLSearchParams;
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

export interface OperationMatch {
  readonly name: string;
  readonly operation: ProviderOperation;
  /** Path parameters by placeholder name, percent-decoded. */
  readonly params: Readonly<Record<string, string>>;
}

interface CompiledPath {
  readonly pattern: RegExp;
  readonly names: readonly string[];
  /** Characters of literal text: more literal text is a more specific route. */
  readonly literalChars: number;
  readonly greedy: boolean;
}

const compiledPaths = new Map<string, CompiledPath>();

function compilePath(template: string): CompiledPath {
  let compiled = compiledPaths.get(template);
  if (compiled !== undefined) return compiled;
  const names: string[] = [];
  let source = '';
  let literalChars = 0;
  let greedy = false;
  let at = 0;
  const placeholder = /\{([A-Za-z_][A-Za-z0-9_]*)(\+?)\}/g;
  for (const match of template.matchAll(placeholder)) {
    const literal = template.slice(at, match.index);
    source += escapeRegExp(literal);
    literalChars += literal.length;
    names.push(match[1]!);
    if (match[2] === '+') greedy = true;
    source += match[2] === '+' ? '(.+)' : '([^/]+)';
    at = match.index + match[0].length;
  }
  const tail = template.slice(at);
  source += escapeRegExp(tail);
  literalChars += tail.length;
  const normalized = source === '' ? '/' : source.startsWith('/') || source.startsWith('(') ? source : `/${source}`;
  compiled = { pattern: new RegExp(`^${normalized}/?$`), names, literalChars, greedy };
  if (compiledPaths.size < 5000) compiledPaths.set(template, compiled);
  return compiled;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    // A malformed escape is kept as sent: the value is only shown, never used to route.
    return text;
  }
}

/** The request's form fields (AWS query protocol) or nothing. */
function formOf(request: SandboxRequest): URLSearchParams | undefined {
  if (!(request.headers['content-type'] ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded')) return undefined;
  return new URLSearchParams(request.body.toString('utf8'));
}

function jsonOf(request: SandboxRequest): unknown {
  if (!/json/i.test(request.headers['content-type'] ?? '')) return undefined;
  try {
    return JSON.parse(request.body.toString('utf8')) as unknown;
  } catch {
    // Not JSON after all: no GraphQL document to route by.
    return undefined;
  }
}

/** The SOAP action of a request: the `SOAPAction` header (quotes removed) or 1.2's `action` parameter. */
export function soapActionOf(headers: Readonly<Record<string, string>>): string | undefined {
  const header = headers.soapaction;
  if (header !== undefined) return header.replace(/^"|"$/g, '');
  const match = /;\s*action\s*=\s*"?([^";]*)"?/i.exec(headers['content-type'] ?? '');
  return match?.[1];
}

function graphqlOperationName(document: string): string | undefined {
  return /\b(?:query|mutation|subscription)\s+([A-Za-z_][A-Za-z0-9_]*)/.exec(document)?.[1];
}

const squash = (text: string) => text.replace(/\s+/g, ' ').trim();

/**
 * How well `operation` fits `request`: undefined when it cannot be it, else a score (higher is a
 * better fit: every naming discriminator that matched, then more literal path text, then no
 * greedy parameter).
 */
function score(operation: ProviderOperation, request: SandboxRequest): { score: number; params: Record<string, string> } | undefined {
  const anyMethod = operation.requestFromInputs?.method !== undefined;
  if (!anyMethod && (operation.method ?? 'POST') !== request.method) return undefined;
  const compiled = compilePath(operation.path ?? '');
  const found = compiled.pattern.exec(request.path === '' ? '/' : request.path);
  if (found === null) return undefined;
  const params: Record<string, string> = {};
  compiled.names.forEach((name, index) => {
    params[name] = decode(found[index + 1] ?? '');
  });
  let discriminators = 0;

  for (const [name, value] of Object.entries(operation.fixed?.headers ?? {})) {
    if (name.toLowerCase() !== 'x-amz-target') continue;
    if (request.headers['x-amz-target'] !== value) return undefined;
    discriminators += 1;
  }
  const action = operation.fixed?.body?.Action;
  if (typeof action === 'string') {
    const sent = formOf(request)?.get('Action') ?? request.query.get('Action');
    if (sent !== action) return undefined;
    discriminators += 1;
  }
  for (const [name, value] of Object.entries(operation.fixed?.query ?? {})) {
    if (request.query.get(name) !== value) return undefined;
    discriminators += 1;
  }
  if (operation.soap !== undefined) {
    if (soapActionOf(request.headers) !== operation.soap.action) return undefined;
    discriminators += 1;
  }
  const document = operation.graphql?.document;
  if (document !== undefined) {
    const body = jsonOf(request);
    const query = body !== null && typeof body === 'object' ? (body as { query?: unknown }).query : undefined;
    if (typeof query !== 'string') return undefined;
    const wanted = graphqlOperationName(document);
    if (squash(query) !== squash(document) && (wanted === undefined || graphqlOperationName(query) !== wanted)) return undefined;
    discriminators += 1;
  }
  return { score: discriminators * 100_000 + compiled.literalChars * 10 + (compiled.greedy ? 0 : 1) + (anyMethod ? 0 : 5), params };
}

/**
 * The operation of `provider` that `request` calls, or undefined when none fits. When several
 * fit, the most specific wins (see `score`); among equals, the first declared.
 */
export function matchOperation(provider: ProviderDocument, request: SandboxRequest): OperationMatch | undefined {
  let best: (OperationMatch & { score: number }) | undefined;
  for (const [name, operation] of Object.entries(provider.spec.operations)) {
    const fit = score(operation, request);
    if (fit === undefined) continue;
    if (best === undefined || fit.score > best.score) best = { name, operation, params: fit.params, score: fit.score };
  }
  return best === undefined ? undefined : { name: best.name, operation: best.operation, params: best.params };
}
