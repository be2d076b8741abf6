import { PatchbayError } from '../../diag/errors.js';
import type { Clock } from '../../lib/clock.js';
import { maskCredentials } from '../../lib/credentials.js';
import { parseRetryAfter } from '../classify.js';
import type { OutboundRequest } from '../request.js';
import type { SendFunction } from './signer.js';
import type { IssuedToken } from './token-cache.js';

/** Where the token and its lifetime are in a token endpoint's JSON answer (dotted paths). */
export interface TokenAnswerShape {
  /** @default 'access_token' */
  readonly tokenPath?: string;
  /** Seconds until expiry. @default 'expires_in' */
  readonly expiresInPath?: string;
  /** An ISO 8601 time or epoch seconds (GitHub's `expires_at`); wins over `expiresInPath`. */
  readonly expiresAtPath?: string;
}

export interface TokenCall {
  readonly request: OutboundRequest;
  readonly send: SendFunction;
  readonly clock: Clock;
  readonly shape?: TokenAnswerShape;
  /** Values the server might echo back that must never reach an error message. */
  readonly secrets: readonly string[];
}

export interface TokenAnswer {
  readonly token: IssuedToken;
  /** The whole JSON answer (the OAuth flow reads `refresh_token` from it). */
  readonly fields: Readonly<Record<string, unknown>>;
}

/** `application/x-www-form-urlencoded` text of the defined parameters, in order. */
export function formEncode(params: Readonly<Record<string, string | undefined>>): string {
  const form = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined) form.append(name, value);
  return form.toString();
}

const loopbackHosts = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * Parses a token endpoint URL, substituting `{name}` placeholders from `variables` (URI-encoded).
 * Throws PB_AUTH_BAD_SETTINGS for an unknown placeholder, a URL that does not parse, or plain
 * http to anything but loopback (client secrets would cross the network in clear).
 */
export function parseTokenUrl(text: string, variables: Readonly<Record<string, string>> = {}): URL {
  const filled = text.replace(/\{([A-Za-z0-9_]+)\}/g, (_, name: string) => {
    const value = variables[name];
    if (value === undefined) throw new PatchbayError('PB_AUTH_BAD_SETTINGS', `the token URL uses {${name}} but the connection sets no variable "${name}"`);
    return encodeURIComponent(value);
  });
  let url: URL;
  try {
    url = new URL(filled);
  } catch (error) {
    throw new PatchbayError('PB_AUTH_BAD_SETTINGS', 'the token URL is not an absolute URL', { cause: error });
  }
  const loopback = loopbackHosts.has(url.hostname) || url.hostname.startsWith('127.');
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new PatchbayError('PB_AUTH_BAD_SETTINGS', `the token URL ${url.origin}${url.pathname} must use https (plain http is allowed to loopback only)`);
  }
  return url;
}

/** Reads `a.b.c` from a parsed JSON value. */
function readPath(value: unknown, path: string): unknown {
  let current = value;
  for (const part of path.split('.')) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

function expiryMs(fields: unknown, shape: TokenAnswerShape, startedMs: number): number | undefined {
  if (shape.expiresAtPath !== undefined) {
    const at = readPath(fields, shape.expiresAtPath);
    const ms = typeof at === 'number' ? at * 1000 : typeof at === 'string' ? Date.parse(at) : NaN;
    if (Number.isFinite(ms)) return ms;
  }
  const raw = readPath(fields, shape.expiresInPath ?? 'expires_in');
  // Some endpoints send the number as a string; null, '' and garbage mean "not said".
  const seconds = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw) : NaN;
  return Number.isFinite(seconds) && seconds >= 0 ? startedMs + seconds * 1000 : undefined;
}

// RFC 6749 §5.2: the `error` code is printable ASCII without `"` and `\`.
const oauthErrorCode = /^[\x20\x21\x23-\x5b\x5d-\x7e]{1,64}$/;

/** Server text made safe to quote: known secrets removed first, then non-printables, then cut. */
function quoteServerText(text: unknown, secrets: readonly string[]): string | undefined {
  if (typeof text !== 'string' || text === '') return undefined;
  let out = text;
  for (const secret of secrets) if (secret !== '') out = out.split(secret).join('[redacted]');
  out = out.replace(/[^\x20-\x7e]/g, '?');
  return maskCredentials(out.length > 200 ? `${out.slice(0, 200)}…` : out);
}

function parseJson(body: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(body).toString('utf8'));
  } catch {
    // Not JSON (an HTML error page, a proxy's text): the status alone describes the failure.
    return undefined;
  }
}

/**
 * Sends one token request and reads the token and its expiry from the answer. The message of
 * every error names the endpoint (origin and path, never the query), the HTTP status and the
 * OAuth `error` code, and quotes `error_description` with `secrets` removed; it never holds the
 * request's credentials or a token.
 * - 400–499 except 408 and 429 → PB_AUTH_TOKEN_REJECTED (terminal: `invalid_grant`, `invalid_client`).
 * - network failure, 408, 429, 5xx, or a 2xx without a token → PB_AUTH_TOKEN_UNAVAILABLE
 *   (transient), with `retryAfterMs` from `Retry-After` when given.
 * A PatchbayError raised by `send` itself (the HttpClient's own) passes through unchanged.
 */
export async function requestToken(call: TokenCall): Promise<TokenAnswer> {
  const { request, clock, secrets } = call;
  const shape = call.shape ?? {};
  const where = `token endpoint ${request.url.origin}${request.url.pathname}`;
  const startedMs = clock.now();
  let response;
  try {
    response = await call.send(request);
  } catch (error) {
    if (error instanceof PatchbayError) throw error;
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).name ?? 'network error';
    throw new PatchbayError('PB_AUTH_TOKEN_UNAVAILABLE', `${where} cannot be reached (${reason})`, { cause: error });
  }
  const fields = parseJson(response.body);
  const record = fields !== null && typeof fields === 'object' ? (fields as Record<string, unknown>) : {};
  if (response.status >= 200 && response.status < 300) {
    const tokenPath = shape.tokenPath ?? 'access_token';
    const value = readPath(fields, tokenPath);
    if (typeof value !== 'string' || value === '') {
      throw new PatchbayError('PB_AUTH_TOKEN_UNAVAILABLE', `${where} answered HTTP ${response.status} without a token at "${tokenPath}"`);
    }
    const expiresAtMs = expiryMs(fields, shape, startedMs);
    return { token: expiresAtMs === undefined ? { value } : { value, expiresAtMs }, fields: record };
  }
  const code = typeof record.error === 'string' && oauthErrorCode.test(record.error) ? ` ${record.error}` : '';
  const description = quoteServerText(record.error_description ?? record.message, secrets);
  const detail = `HTTP ${response.status}${code}${description === undefined ? '' : `: "${description}"`}`;
  const transient = response.status === 408 || response.status === 429 || response.status >= 500;
  if (transient) {
    const waitMs = parseRetryAfter(response.headers['retry-after'], clock);
    throw new PatchbayError('PB_AUTH_TOKEN_UNAVAILABLE', `${where} failed (${detail}); retrying later`, waitMs === undefined ? {} : { retryAfterMs: waitMs });
  }
  throw new PatchbayError('PB_AUTH_TOKEN_REJECTED', `${where} refused the request (${detail}): check the connection's credentials, grant and scopes`);
}
