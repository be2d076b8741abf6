import { STATUS_CODES } from 'node:http';
import type { Code } from '../diag/codes.js';
import { PatchbayError } from '../diag/errors.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { maskCredentials } from '../lib/credentials.js';
import type { InboundResponse } from './request.js';

/**
 * Turns outbound HTTP outcomes into `PatchbayError`s with the right retry intent, and parses
 * the headers that say how long to wait. Messages name the method, origin and path only: a
 * query string can hold an API key (Google Maps `key=`), so it never appears.
 */

/**
 * `METHOD origin/path` for messages: no query string, no fragment, no user info, and
 * credential-looking path parts (a Slack webhook URL's secret) masked.
 */
export function describeTarget(method: string, url: URL): string {
  return maskCredentials(`${method} ${url.origin}${url.pathname}`);
}

const secondsPattern = /^\s*([0-9]+(?:\.[0-9]+)?)\s*$/;

/**
 * Parses a `Retry-After` value (RFC 9110: delay in seconds, or an HTTP date) into milliseconds
 * from `clock.now()`. A date in the past gives 0. Returns undefined for an absent, empty or
 * unparsable value (and for a bare number that is not a non-negative decimal).
 */
export function parseRetryAfter(value: string | undefined, clock: Clock = systemClock): number | undefined {
  if (value === undefined) return undefined;
  const seconds = secondsPattern.exec(value);
  if (seconds !== null) return toMs(Number(seconds[1]) * 1000);
  return untilDate(value, clock);
}

// Go-style durations as OpenAI sends them in x-ratelimit-reset-*: `1s`, `6m0s`, `250ms`, `1h2m`.
const durationPattern = /^\s*((?:[0-9]+(?:\.[0-9]+)?(?:ms|h|m|s))+)\s*$/;
const durationPart = /([0-9]+(?:\.[0-9]+)?)(ms|h|m|s)/g;
const unitMs: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

// Below this a bare number is a delay in seconds; at or above it, a Unix time (2001-09-09).
const epochSecondsFrom = 1_000_000_000;
// At or above this a bare number is a Unix time in milliseconds.
const epochMsFrom = 100_000_000_000;

/**
 * Parses a rate-limit reset header into milliseconds from `clock.now()`. Accepts the forms
 * providers use: Unix time in seconds (GitHub `x-ratelimit-reset: 1767225600`) or milliseconds,
 * a delay in seconds (`ratelimit-reset: 30`), a duration (`6m0s`, `250ms`), or an HTTP date.
 * A bare number of 1,000,000,000 or more is read as a Unix time. A time in the past gives 0.
 * Returns undefined for an absent or unparsable value.
 */
export function parseRateLimitReset(value: string | undefined, clock: Clock = systemClock): number | undefined {
  if (value === undefined) return undefined;
  const number = secondsPattern.exec(value);
  if (number !== null) {
    const n = Number(number[1]);
    if (n >= epochMsFrom) return toMs(n - clock.now());
    if (n >= epochSecondsFrom) return toMs(n * 1000 - clock.now());
    return toMs(n * 1000);
  }
  const duration = durationPattern.exec(value);
  if (duration !== null) {
    let ms = 0;
    for (const [, amount, unit] of duration[1]!.matchAll(durationPart)) ms += Number(amount) * unitMs[unit!]!;
    return toMs(ms);
  }
  return untilDate(value, clock);
}

function untilDate(value: string, clock: Clock): number | undefined {
  // Date.parse reads "5" or "2026" as years: only text with a letter (a month or weekday name,
  // or GMT) is taken as an HTTP date.
  if (!/[A-Za-z]/.test(value)) return undefined;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : toMs(at - clock.now());
}

/**
 * The longest wait a server's `Retry-After` or reset header can ask for: one day, the default
 * `retry.maxAge`. Longer (or absurd: `Retry-After: 99999999999`, year 9999) is read as one day,
 * so a timer never overflows and a hostile server cannot park work for years.
 */
export const maxRetryAfterMs = 24 * 60 * 60 * 1000;

function toMs(ms: number): number | undefined {
  if (Number.isNaN(ms)) return undefined;
  return Math.min(maxRetryAfterMs, Math.max(0, Math.ceil(ms)));
}

// C0, DEL, C1, line and paragraph separators, and bidirectional overrides: anything that could
// forge a log line or reorder what a terminal shows.
const unsafeChars = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function escapeChar(char: string): string {
  if (char === '\n') return '\\n';
  if (char === '\r') return '\\r';
  if (char === '\t') return '\\t';
  return `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/**
 * A short excerpt of a body for an error message: decoded as UTF-8, credential-looking text
 * masked, the values of `url`'s query parameters removed (servers echo them back), control
 * and bidi characters escaped, trimmed to about `maxChars` characters (default 200).
 */
export function bodyExcerpt(body: Uint8Array, url?: URL, maxChars = 200): string {
  // Mask before trimming, so a credential cut at the edge is still recognised whole.
  const head = Buffer.from(body.buffer, body.byteOffset, Math.min(body.byteLength, maxChars * 8)).toString('utf8');
  let text = maskCredentials(head);
  if (url !== undefined) {
    const secrets = new Set<string>();
    for (const value of url.searchParams.values()) if (value.length >= 3) secrets.add(value);
    if (url.password.length > 0) secrets.add(decodeURIComponent(url.password));
    for (const secret of secrets) {
      text = text.split(secret).join('[redacted]');
      const encoded = encodeURIComponent(secret);
      if (encoded !== secret) text = text.split(encoded).join('[redacted]');
    }
  }
  text = text.replace(/\s+/g, ' ').trim().replace(unsafeChars, escapeChar);
  return text.length > maxChars || head.length < body.byteLength ? `${text.slice(0, maxChars)}…` : text;
}

/** Options of `classifyResponse`. */
export interface ClassifyOptions {
  /** The request's method, for the message. @default 'request' */
  readonly method?: string;
  /** The clock `Retry-After` dates are measured against. @default systemClock */
  readonly clock?: Clock;
  /**
   * A provider's rate-limit reset header (`x-ratelimit-reset`), read by `parseRateLimitReset`
   * when a 429 carries no `Retry-After`.
   */
  readonly resetHeader?: string;
}

/**
 * Classifies a response by status: undefined for 1xx, 2xx and 304; otherwise the
 * `PatchbayError` a caller should throw:
 * - 3xx → `PB_HTTP_REDIRECT` (terminal: a redirect the client did not follow);
 * - 408 → `PB_HTTP_TIMEOUT` (transient);
 * - 429 → `PB_HTTP_RATE_LIMITED` (after), `retryAfterMs` from `Retry-After` (seconds or HTTP
 *   date against `clock`) or `resetHeader`; none when absent or invalid;
 * - 503 with a valid `Retry-After` → `PB_HTTP_UNAVAILABLE` (after) with `retryAfterMs`;
 * - other 5xx, and 503 without one → `PB_HTTP_SERVER_ERROR` (transient);
 * - other 4xx → `PB_HTTP_CLIENT_ERROR` (terminal).
 * The message names method, origin, path and status, plus a short masked excerpt of the body;
 * never the query string.
 */
export function classifyResponse(response: InboundResponse, options: ClassifyOptions = {}): PatchbayError | undefined {
  const status = response.status;
  if (status < 300 || status === 304) return undefined;
  const clock = options.clock ?? systemClock;
  const target = describeTarget(options.method ?? 'request', response.url);
  const answered = `${target} answered ${status} ${STATUS_CODES[status] ?? ''}`.trimEnd();
  const excerpt = response.body.byteLength > 0 ? `: ${bodyExcerpt(response.body, response.url)}` : '';
  const make = (code: Code, advice: string, retryAfterMs?: number) =>
    new PatchbayError(code, `${answered}${excerpt} (${advice})`, retryAfterMs === undefined ? {} : { retryAfterMs });

  if (status < 400) {
    const location = response.headers.location;
    let where = '';
    if (location !== undefined) {
      try {
        const next = new URL(location, response.url);
        where = ` to ${describeTarget('', next).trimStart()}`;
      } catch {
        // An unparsable Location is reported without a destination.
        where = ' to an invalid location';
      }
    }
    return new PatchbayError('PB_HTTP_REDIRECT', `${answered}, a redirect${where} that was not followed`);
  }
  if (status === 408) return make('PB_HTTP_TIMEOUT', 'the server timed out waiting for the request; retrying may help');
  if (status === 429) {
    let retryAfterMs = parseRetryAfter(response.headers['retry-after'], clock);
    if (retryAfterMs === undefined && options.resetHeader !== undefined) {
      retryAfterMs = parseRateLimitReset(response.headers[options.resetHeader.toLowerCase()], clock);
    }
    return make('PB_HTTP_RATE_LIMITED', retryAfterMs === undefined ? 'rate limited; no retry delay given' : `rate limited; retry after ${retryAfterMs} ms`, retryAfterMs);
  }
  if (status === 503) {
    const retryAfterMs = parseRetryAfter(response.headers['retry-after'], clock);
    if (retryAfterMs !== undefined) return make('PB_HTTP_UNAVAILABLE', `unavailable; retry after ${retryAfterMs} ms`, retryAfterMs);
  }
  if (status >= 500) return make('PB_HTTP_SERVER_ERROR', 'server error; retrying may help');
  return make('PB_HTTP_CLIENT_ERROR', 'the request was refused; retrying will not help until it is fixed');
}

/** Options of `parseJsonBody`. */
export interface ParseJsonOptions {
  /** The request's method, for the message. @default 'request' */
  readonly method?: string;
}

/**
 * Parses a response body as JSON. An empty body (204, or a 200 with nothing) gives undefined.
 * Throws `PB_HTTP_MALFORMED_BODY` (terminal) when the body is not JSON, naming the content
 * type and quoting a short masked excerpt (see `bodyExcerpt`).
 */
export function parseJsonBody(response: InboundResponse, options: ParseJsonOptions = {}): unknown {
  if (response.body.byteLength === 0) return undefined;
  const text = Buffer.from(response.body.buffer, response.body.byteOffset, response.body.byteLength).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (error) {
    const type = response.headers['content-type'] ?? 'no content type';
    throw new PatchbayError(
      'PB_HTTP_MALFORMED_BODY',
      `${describeTarget(options.method ?? 'request', response.url)} answered ${response.status} with a body that is not JSON (${maskCredentials(type.slice(0, 100))}): ${bodyExcerpt(response.body, response.url)}`,
      { cause: error },
    );
  }
}

/** Where a call was when it failed, for timeout and network messages. */
export type CallPhase = 'connect' | 'headers' | 'body';

const timeoutCodes: Readonly<Record<string, CallPhase>> = {
  UND_ERR_CONNECT_TIMEOUT: 'connect',
  ETIMEDOUT: 'connect',
  UND_ERR_HEADERS_TIMEOUT: 'headers',
  UND_ERR_BODY_TIMEOUT: 'body',
};

/**
 * Turns an error from sending a request (undici or socket errors) into a `PatchbayError`:
 * a `PatchbayError` keeps its code and gets the target prefixed; timeouts become
 * `PB_HTTP_TIMEOUT` with their phase; a request undici cannot send (an invalid header) becomes
 * `PB_HTTP_CLIENT_ERROR` (terminal); everything else (refused, reset, DNS failure, closed
 * mid-body, TLS failure) becomes `PB_HTTP_NETWORK`. The original error is the `cause`; its
 * message is not copied (only its code), so nothing it quotes can leak.
 */
export function classifyNetworkError(error: unknown, method: string, url: URL, phase: CallPhase): PatchbayError {
  const target = describeTarget(method, url);
  if (error instanceof PatchbayError) {
    if (error.message.startsWith(target)) return error;
    return new PatchbayError(error.code, `${target}: ${error.message}`, {
      cause: error,
      ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }),
    });
  }
  const code = typeof (error as { code?: unknown })?.code === 'string' ? (error as { code: string }).code : undefined;
  const timedOut = code === undefined ? undefined : timeoutCodes[code];
  if (timedOut !== undefined) {
    return new PatchbayError('PB_HTTP_TIMEOUT', `${target} timed out in the ${timedOut} phase (${code})`, { cause: error });
  }
  if (code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_NOT_SUPPORTED') {
    // The request itself cannot be sent (a header value with a line break, a hop-by-hop
    // header): retrying the same request cannot help. undici's message names the header, not
    // its value.
    const detail = maskCredentials(String((error as Error).message).slice(0, 100));
    return new PatchbayError('PB_HTTP_CLIENT_ERROR', `${target} could not be sent: ${detail} (${code})`, { cause: error });
  }
  if (code === 'UND_ERR_HEADERS_OVERFLOW') {
    // The same server answers the same oversized headers next time: retrying cannot help.
    return new PatchbayError('PB_HTTP_RESPONSE_TOO_LARGE', `${target} answered with headers larger than the limit (${code})`, { cause: error });
  }
  const where = phase === 'connect' ? 'while connecting' : phase === 'headers' ? 'before the answer' : 'in the middle of the answer';
  return new PatchbayError('PB_HTTP_NETWORK', `${target} failed ${where} (${code ?? (error as Error)?.name ?? 'error'})`, { cause: error });
}
