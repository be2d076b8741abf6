import { XMLParser, XMLValidator } from 'fast-xml-parser';
import type { Code } from '../diag/codes.js';
import { PatchbayError } from '../diag/errors.js';
import { bodyExcerpt, classifyResponse, describeTarget, parseRateLimitReset, parseRetryAfter } from '../http/classify.js';
import type { InboundResponse } from '../http/request.js';
import { systemClock, type Clock } from '../lib/clock.js';
import type { ProviderDocument, ProviderOperation } from '../types/provider.generated.js';
import { findOperation } from './request-builder.js';
import { readPath } from './paths.js';

/**
 * Reads a provider's answer into the step output, or into a `PatchbayError` that carries the
 * provider's own error code and message and the retry intent the provider's definition gives.
 */

/** What the provider said about a failure, as found in the answer. */
export interface ProviderFailure {
  readonly status: number;
  /** The provider's error code (`card_declined`, `channel_not_found`, `OVER_QUERY_LIMIT`). */
  readonly providerCode?: string;
  /** The provider's message: masked, control characters escaped, at most 300 characters. */
  readonly providerMessage?: string;
}

/** The default of `retry.statuses` in the provider schema. */
const defaultRetryStatuses: readonly number[] = [408, 429, 500, 502, 503, 504];

const maxMessageChars = 300;

type Format = 'json' | 'xml' | 'text' | 'binary' | 'empty';

/** How the operation's answer is parsed: its `responseFormat`; XML for SOAP; else JSON. */
function formatOf(operation: ProviderOperation): Format {
  return operation.responseFormat ?? (operation.body === 'soap' ? 'xml' : 'json');
}

function utf8(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}

const xmlParser = new XMLParser({
  ignoreAttributes: true,
  removeNSPrefix: true,
  // Identifiers such as `000123` or message ids must stay text.
  parseTagValue: false,
  trimValues: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
});

/**
 * Parses XML text into plain objects: element names without namespace prefixes, attributes
 * dropped, text kept as strings, repeated elements as lists. Throws a plain `Error` for text
 * that is not well-formed XML or that declares a DOCTYPE (no provider needs one, and entity
 * expansion is how XML bombs work).
 */
export function parseXml(text: string): unknown {
  if (/<!DOCTYPE/i.test(text)) throw new Error('the XML declares a DOCTYPE, which is refused');
  const valid = XMLValidator.validate(text);
  if (valid !== true) throw new Error(`the XML is not well-formed (line ${valid.err.line}: ${valid.err.code})`);
  return xmlParser.parse(text) as unknown;
}

/** The failure's "who answered": built only when a failure needs it (it masks the URL, which costs time on every answer otherwise). */
type Context = () => string;

function malformed(context: Context, response: InboundResponse, what: string, cause: unknown): PatchbayError {
  return new PatchbayError(
    'PB_HTTP_MALFORMED_BODY',
    `${context()} answered ${response.status} with a body that is not ${what}: ${bodyExcerpt(response.body, response.url)}`,
    { cause },
  );
}

/** Parses a body as `format`; throws `PB_HTTP_MALFORMED_BODY` when it does not parse. */
function parseAs(format: Format, response: InboundResponse, context: Context): unknown {
  switch (format) {
    case 'empty':
      return { status: response.status, headers: { ...response.headers } };
    case 'text':
      return utf8(response.body);
    case 'binary':
      return Buffer.from(response.body.buffer, response.body.byteOffset, response.body.byteLength).toString('base64');
    case 'xml': {
      if (response.body.byteLength === 0) return null;
      try {
        return parseXml(utf8(response.body));
      } catch (error) {
        throw malformed(context, response, 'XML', error);
      }
    }
    case 'json': {
      if (response.body.byteLength === 0) return null;
      try {
        return JSON.parse(utf8(response.body)) as unknown;
      } catch (error) {
        throw malformed(context, response, 'JSON', error);
      }
    }
  }
}

const jsonType = /^application\/(?:[a-z0-9.+-]*\+)?json\s*(?:;|$)/i;

/**
 * The answer of a generic request (an operation whose method comes from its inputs, the `http`
 * provider): `{ status, headers, body }`, the body parsed as JSON when the content type says
 * JSON (`application/json`, `application/*+json`), else text; null when empty. Throws
 * `PB_HTTP_MALFORMED_BODY` for a body announced as JSON that does not parse.
 */
function envelope(response: InboundResponse, context: Context): { status: number; headers: Record<string, string>; body: unknown } {
  const headers = { ...response.headers };
  if (response.body.byteLength === 0) return { status: response.status, headers, body: null };
  const body = jsonType.test(response.headers['content-type'] ?? '') ? parseAs('json', response, context) : utf8(response.body);
  return { status: response.status, headers, body };
}

/** Best-effort parse of an error answer: JSON or XML by content, else undefined. */
function parseLoosely(response: InboundResponse): unknown {
  const text = utf8(response.body).trim();
  if (text === '') return undefined;
  try {
    if (text.startsWith('{') || text.startsWith('[')) return JSON.parse(text) as unknown;
    if (text.startsWith('<')) return parseXml(text);
  } catch {
    // An error answer that does not parse is still an error: its status and an excerpt of
    // the body make the message.
    return undefined;
  }
  return undefined;
}

function soapFault(body: unknown): unknown {
  return readPath(body, 'Envelope.Body.Fault');
}

/** Text of a message value: a string, the messages of a list of errors, or compact JSON. */
function messageText(value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) {
    const parts = value.map((item) => messageText(typeof item === 'object' && item !== null && 'message' in item ? item.message : item));
    const joined = parts.filter((part): part is string => part !== undefined).join('; ');
    return joined === '' ? undefined : joined;
  }
  // Shopify REST: `{"errors": {"title": ["can't be blank"]}}`.
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).map(([key, inner]) => `${key}: ${messageText(inner) ?? ''}`);
    return entries.length === 0 ? undefined : entries.join('; ');
  }
  return undefined;
}

function codeText(value: unknown): string | undefined {
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

function safePath(body: unknown, path: string | undefined): unknown {
  if (path === undefined) return undefined;
  try {
    return readPath(body, path);
  } catch {
    // A malformed path in a provider definition reads nothing; `patchbay validate` reports it.
    return undefined;
  }
}

/**
 * The provider's error code and message in `body` as its `errors` settings locate them. SOAP
 * faults are read natively when the configured paths find nothing (1.1 `faultcode` /
 * `faultstring`, 1.2 `Code/Value` (with `Subcode`) / `Reason/Text`); GraphQL errors fall back to
 * `errors[0].extensions.code` and the joined messages.
 */
export function extractProviderError(
  provider: ProviderDocument,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): { code?: string; message?: string } {
  const errors = provider.spec.errors ?? {};
  let code = codeText(safePath(body, errors.codePath));
  if (code === undefined && errors.codeHeader !== undefined) code = codeText(headers[errors.codeHeader.toLowerCase()]?.split(':')[0]?.trim() || undefined);
  // AWS JSON protocols qualify the code with its namespace (`com.amazonaws.sqs#QueueDoesNotExist`).
  if (code?.includes('#')) code = code.slice(code.lastIndexOf('#') + 1);
  let message = messageText(safePath(body, errors.messagePath));
  if (errors.statusPath !== undefined) code ??= codeText(safePath(body, errors.statusPath));
  const fault = soapFault(body);
  if (fault !== undefined && fault !== null) {
    code ??= codeText(readPath(fault, 'faultcode')) ?? soap12Code(fault);
    message ??= messageText(readPath(fault, 'faultstring')) ?? messageText(readPath(fault, 'Reason.Text'));
  }
  const graphql = readPath(body, 'errors');
  if (errors.graphqlErrors === true && Array.isArray(graphql) && graphql.length > 0) {
    code ??= codeText(readPath(graphql, '[0].extensions.code'));
    message ??= messageText(graphql);
  }
  return { ...(code === undefined ? {} : { code }), ...(message === undefined ? {} : { message }) };
}

function soap12Code(fault: unknown): string | undefined {
  const value = codeText(readPath(fault, 'Code.Value'));
  const sub = codeText(readPath(fault, 'Code.Subcode.Value'));
  return value === undefined ? undefined : sub === undefined ? value : `${value}/${sub}`;
}

/** Why a 2xx answer is a failure, or undefined when it is not. */
function failureInSuccess(provider: ProviderDocument, body: unknown): string | undefined {
  const errors = provider.spec.errors;
  if (errors === undefined) return undefined;
  if (errors.okPath !== undefined && safePath(body, errors.okPath) === false) return `${errors.okPath} is false`;
  if (errors.statusPath !== undefined) {
    const status = safePath(body, errors.statusPath);
    if (status !== undefined && !(errors.okStatuses ?? ['OK']).includes(String(status))) return `status ${String(status)}`;
  }
  if (errors.graphqlErrors === true) {
    const list = readPath(body, 'errors');
    if (Array.isArray(list) && list.length > 0) return 'GraphQL errors';
  }
  if (errors.soapFault === true) {
    const fault = soapFault(body);
    if (fault !== undefined && fault !== null) return 'a SOAP Fault';
  }
  return undefined;
}

/** Cleans provider text for a message: masked, redacted of the URL's query values, escaped, trimmed. */
function clean(text: string, url: URL): string {
  return bodyExcerpt(Buffer.from(text, 'utf8'), url, maxMessageChars);
}

function waitMs(provider: ProviderDocument, response: InboundResponse, clock: Clock): number | undefined {
  const header = (provider.spec.retry?.retryAfterHeader ?? 'Retry-After').toLowerCase();
  const after = parseRetryAfter(response.headers[header], clock);
  if (after !== undefined) return after;
  const limits = provider.spec.rateLimit?.headers;
  if (limits?.reset === undefined) return undefined;
  const remaining = limits.remaining === undefined ? undefined : response.headers[limits.remaining.toLowerCase()];
  if (response.status !== 429 && remaining?.trim() !== '0') return undefined;
  const reset = response.headers[limits.reset.toLowerCase()];
  if (reset === undefined) return undefined;
  if (limits.resetFormat === 'seconds') {
    const seconds = Number(reset);
    return Number.isFinite(seconds) && seconds >= 0 ? Math.ceil(seconds * 1000) : undefined;
  }
  if (limits.resetFormat === 'epochSeconds') {
    const at = Number(reset);
    return Number.isFinite(at) ? Math.max(0, Math.ceil(at * 1000 - clock.now())) : undefined;
  }
  return parseRateLimitReset(reset, clock);
}

/**
 * Reads `response` to the answer of `operationName` of `provider`, or throws.
 *
 * Success (2xx without a provider error) returns the body parsed per the operation's
 * `responseFormat`: JSON (an empty body gives null), XML (plain objects, prefixes removed;
 * for SOAP operations the content of `Body`), text, binary (base64 text) or `empty`
 * (`{ status, headers }`). A generic request (method from the inputs: the `http` provider)
 * returns `{ status, headers, body }`, the body JSON or text by its content type.
 *
 * Failures throw a `PatchbayError` whose message names provider, operation, method, origin,
 * path, status and the provider's code and message (masked, escaped, trimmed; never the query
 * string), with a `ProviderFailure` as `cause`:
 * - a 2xx body that does not parse → `PB_HTTP_MALFORMED_BODY` (terminal);
 * - an error inside a 2xx (`okPath` false, a `statusPath` value outside `okStatuses`, GraphQL
 *   `errors`, a SOAP Fault) → `PB_PROVIDER_ERROR_RETRYABLE` when its code is in
 *   `retry.errorCodes`, else `PB_PROVIDER_ERROR`;
 * - any other status: a code in `retry.excludeErrorCodes` → `PB_PROVIDER_ERROR` (terminal even
 *   with a retryable status); a status in `retry.statuses` (default 408, 429, 500, 502, 503,
 *   504) or a code in `retry.errorCodes` → `PB_HTTP_RATE_LIMITED` (429), `PB_HTTP_UNAVAILABLE`
 *   (503 with a delay), `PB_HTTP_TIMEOUT` (408), `PB_HTTP_SERVER_ERROR` (5xx) or
 *   `PB_PROVIDER_ERROR_RETRYABLE` (another 4xx); otherwise `PB_HTTP_REDIRECT` (3xx),
 *   `PB_HTTP_CLIENT_ERROR` (4xx) or `PB_PROVIDER_ERROR` (a 5xx the provider does not retry:
 *   SOAP faults come as 500).
 * `retryAfterMs` comes from the provider's retry-after header (seconds or HTTP date, against
 * `clock`), else, on a 429 or when the remaining budget header reads 0, from its rate-limit
 * reset header.
 */
export function readResponse(
  provider: ProviderDocument,
  operationName: string,
  response: InboundResponse,
  clock: Clock = systemClock,
): unknown {
  const operation = findOperation(provider, operationName);
  // An operation may read its errors differently from the rest of its provider (AWS XML vs JSON).
  if (operation.errors !== undefined) {
    provider = { ...provider, spec: { ...provider.spec, errors: { ...provider.spec.errors, ...operation.errors } } };
  }
  const label = `${provider.metadata.name}.${operationName}`;
  // A generic operation's method comes from its inputs, which are not known here.
  const method = operation.requestFromInputs?.method !== undefined ? 'request' : (operation.method ?? 'POST');
  const context: Context = () => `${label}: ${describeTarget(method, response.url)}`;
  const format = formatOf(operation);
  const ok = response.status >= 200 && response.status < 300;
  const retry = provider.spec.retry ?? {};

  if (ok) {
    if (operation.requestFromInputs?.method !== undefined) return envelope(response, context);
    const body = parseAs(format, response, context);
    const why = failureInSuccess(provider, body);
    if (why === undefined) {
      if (operation.body === 'soap' && format === 'xml') {
        const content = readPath(body, 'Envelope.Body');
        if (content === undefined) throw malformed(context, response, 'a SOAP envelope', undefined);
        return content === '' ? {} : content;
      }
      return body;
    }
    const found = extractProviderError(provider, body, response.headers);
    const retryable = found.code !== undefined && (retry.errorCodes ?? []).includes(found.code) && !(retry.excludeErrorCodes ?? []).includes(found.code);
    return fail(retryable ? 'PB_PROVIDER_ERROR_RETRYABLE' : 'PB_PROVIDER_ERROR', why, found, retryable ? waitMs(provider, response, clock) : undefined);
  }

  const found = extractProviderError(provider, parseLoosely(response), response.headers);
  const excluded = found.code !== undefined && (retry.excludeErrorCodes ?? []).includes(found.code);
  const listedCode = found.code !== undefined && (retry.errorCodes ?? []).includes(found.code);
  const listedStatus = (retry.statuses ?? defaultRetryStatuses).includes(response.status);
  const status = response.status;
  if (excluded) return fail('PB_PROVIDER_ERROR', `error code ${found.code} is never retried`, found);
  if (listedStatus || listedCode) {
    const wait = waitMs(provider, response, clock);
    if (status === 429) return fail('PB_HTTP_RATE_LIMITED', wait === undefined ? 'rate limited; no retry delay given' : `rate limited; retry after ${wait} ms`, found, wait);
    if (status === 503 && wait !== undefined) return fail('PB_HTTP_UNAVAILABLE', `unavailable; retry after ${wait} ms`, found, wait);
    if (status === 408) return fail('PB_HTTP_TIMEOUT', 'the server timed out waiting for the request; retrying may help', found, wait);
    if (status >= 500) return fail('PB_HTTP_SERVER_ERROR', 'server error; retrying may help', found, wait);
    return fail('PB_PROVIDER_ERROR_RETRYABLE', listedCode ? `error code ${found.code} is retried` : `status ${status} is retried`, found, wait);
  }
  if (status >= 300 && status < 400) {
    const redirect = classifyResponse(response, { method, clock });
    if (redirect !== undefined) throw new PatchbayError(redirect.code, `${label}: ${redirect.message}`, { cause: failure(found) });
  }
  if (status >= 400 && status < 500) return fail('PB_HTTP_CLIENT_ERROR', 'the request was refused; retrying will not help until it is fixed', found);
  return fail('PB_PROVIDER_ERROR', `status ${status} is not retried for this provider`, found);

  function failure(found: { code?: string; message?: string }): ProviderFailure {
    return {
      status: response.status,
      ...(found.code === undefined ? {} : { providerCode: clean(found.code, response.url) }),
      ...(found.message === undefined ? {} : { providerMessage: clean(found.message, response.url) }),
    };
  }

  function fail(code: Code, advice: string, found: { code?: string; message?: string }, retryAfterMs?: number): never {
    const details = failure(found);
    let said: string;
    if (details.providerCode !== undefined || details.providerMessage !== undefined) {
      const parts = [details.providerCode, details.providerMessage].filter((part) => part !== undefined);
      // Slack's code and message are the same field: say it once.
      said = parts.length === 2 && parts[0] === parts[1] ? parts[0]! : parts.join(': ');
    } else {
      said = response.body.byteLength > 0 ? bodyExcerpt(response.body, response.url) : 'no body';
    }
    throw new PatchbayError(code, `${context()} answered ${response.status}: ${said} (${advice})`, {
      cause: details,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    });
  }
}
