import { PatchbayError } from '../diag/errors.js';
import { httpMethods, type HttpMethod, type InboundResponse, type OutboundRequest } from '../http/request.js';
import type { ProviderDocument, ProviderOperation, ProviderPagination } from '../types/provider.generated.js';
import {
  decodeBase64,
  encodeMultipart,
  flattenInput,
  joinPairs,
  percentEncode,
  scalarText,
  soapEnvelope,
  soapHeaders,
  xmlElements,
  type InputEncoding,
  type Pair,
  type SoapVersion,
} from './encode.js';
import { readPath } from './paths.js';

/**
 * Turns a provider operation and its inputs into the exact HTTP request to send (before auth:
 * signers are applied to the result), and computes the request for the next page of a listing.
 * Pure: no I/O, no clock, no randomness.
 */

/** Where a call goes: the connection's side of the URL. */
export interface CallTarget {
  /** The connection's base URL (generic providers, sandboxes); used when the operation has none. */
  readonly baseUrl?: string;
  /**
   * A base URL that replaces every other one, the operation's own included: a local emulator
   * serving all of a provider's services at one address (LocalStack, a mock server in tests).
   */
  readonly overrideBaseUrl?: string;
  /** Connection variables (`shop`, `region`); the provider's defaults fill the rest. */
  readonly variables: Readonly<Record<string, string>>;
  /** The pinned API version; the provider's `apiVersion.default` when absent. */
  readonly apiVersion?: string;
}

/** Per-call options of `buildRequest`. */
export interface BuildOptions {
  /**
   * Sent in the provider's idempotency header when the operation honours it (`idempotent`, or
   * a POST when the provider declares the header). Keep it across retries of one call.
   */
  readonly idempotencyKey?: string;
}

interface InputSchema {
  readonly properties?: Readonly<Record<string, InputEncoding & Record<string, unknown>>>;
  readonly required?: readonly string[];
}

function badInput(message: string): PatchbayError {
  return new PatchbayError('PB_CALL_BAD_INPUT', message);
}

function badTarget(message: string): PatchbayError {
  return new PatchbayError('PB_CALL_BAD_TARGET', message);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** The operation `name` of `provider`; throws `PB_REF_UNKNOWN_OPERATION` when it has none. */
export function findOperation(provider: ProviderDocument, name: string): ProviderOperation {
  const operations = provider.spec.operations;
  if (!Object.hasOwn(operations, name)) {
    throw new PatchbayError('PB_REF_UNKNOWN_OPERATION', `provider "${provider.metadata.name}" has no operation "${name}"`);
  }
  return operations[name]!;
}

// `{name}` or the greedy `{name+}` (the value may hold `/`, as in Smithy's `/{Bucket}/{Key+}`).
const placeholderPattern = /\{([A-Za-z_][A-Za-z0-9_]*)(\+?)\}/g;

// In the host, a value may only add letters, digits, dots and hyphens: nothing that could end
// the host (`/ ? #`), add user info (`@`) or a port (`:`), or smuggle encoded text (`%`).
const hostValue = /^[A-Za-z0-9.-]+$/;

/** Headers an input map may never set: credentials, routing and framing belong to Patchbay. */
const reservedHeaders = new Set([
  'authorization', 'proxy-authorization', 'cookie', 'host', 'content-length', 'transfer-encoding', 'connection',
  'te', 'upgrade', 'expect', 'keep-alive', 'trailer',
]);

const headerName = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function headerValue(what: string, value: string): string {
  if (/[\r\n\0]/.test(value)) throw badInput(`${what} holds a line break or NUL, which would forge another header`);
  return value;
}

/** The API version this target pins, checked against the provider's pattern. */
function pinnedVersion(provider: ProviderDocument, target: CallTarget): string | undefined {
  const pin = provider.spec.apiVersion;
  const version = target.apiVersion ?? pin?.default;
  if (version !== undefined && pin?.pattern !== undefined && !new RegExp(pin.pattern, 'u').test(version)) {
    throw new PatchbayError('PB_CONNECTION_API_VERSION', `API version "${version}" does not match the provider's pattern ${pin.pattern}`);
  }
  return version;
}

function resolveVariables(provider: ProviderDocument, target: CallTarget): Map<string, string> {
  const values = new Map<string, string>();
  for (const [name, variable] of Object.entries(provider.spec.variables ?? {})) {
    const value = Object.hasOwn(target.variables, name) ? target.variables[name] : variable.default;
    if (value === undefined) continue;
    if (variable.pattern !== undefined && !new RegExp(variable.pattern, 'u').test(value)) {
      throw badTarget(`variable "${name}" does not match its pattern ${variable.pattern}`);
    }
    values.set(name, value);
  }
  return values;
}

/**
 * Fills a base URL template: in the scheme and host part a value must be host text (letters,
 * digits, dots, hyphens), elsewhere it is percent-encoded. The result must be an http(s) URL
 * without user info, query or fragment.
 */
function fillBaseUrl(template: string, lookup: (name: string) => string | undefined): string {
  const authorityEnd = template.search(/[^/]\/(?!\/)/);
  const split = authorityEnd < 0 ? template.length : authorityEnd + 1;
  const fill = (part: string, inHost: boolean) =>
    part.replace(placeholderPattern, (_whole, name: string) => {
      const value = lookup(name);
      if (value === undefined || value === '') throw badTarget(`variable "${name}" of the base URL is not set`);
      if (inHost) {
        if (!hostValue.test(value)) throw badTarget(`variable "${name}" may only hold letters, digits, dots and hyphens, as it is part of the host`);
        return value;
      }
      if (value === '.' || value === '..') throw badTarget(`variable "${name}" may not be "." or ".."`);
      return percentEncode(value);
    });
  const filled = fill(template.slice(0, split), true) + fill(template.slice(split), false);
  let url: URL;
  try {
    url = new URL(filled);
  } catch (error) {
    throw new PatchbayError('PB_CALL_BAD_TARGET', 'the base URL is not a valid URL', { cause: error });
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw badTarget('the base URL must be an http(s) URL without user info, query or fragment');
  }
  return filled.replace(/\/+$/, '');
}

function pathValue(name: string, value: unknown, greedy: boolean): string {
  if (value === null || value === undefined || value === '') throw badInput(`input "${name}" is required: it is part of the path`);
  const text = scalarText(name, value);
  const segments = greedy ? text.split('/') : [text];
  for (const segment of segments) {
    // The URL parser would resolve these away and move the request to another resource.
    if (segment === '.' || segment === '..') throw badInput(`input "${name}" may not hold a "." or ".." path segment`);
  }
  return segments.map((segment) => percentEncode(segment)).join('/');
}

/** Which request part an input went to, so the rest can be the body. */
type Placed = Set<string>;

function inputSchema(operation: ProviderOperation): InputSchema {
  return operation.input as InputSchema;
}

function encodingOf(schema: InputSchema, name: string): InputEncoding {
  return schema.properties?.[name] ?? {};
}

function present(inputs: Readonly<Record<string, unknown>>, name: string): boolean {
  return Object.hasOwn(inputs, name) && inputs[name] !== undefined && inputs[name] !== null;
}

const contentTypes = {
  json: 'application/json',
  form: 'application/x-www-form-urlencoded',
  xml: 'application/xml',
  graphql: 'application/json',
  text: 'text/plain; charset=utf-8',
  raw: 'application/octet-stream',
} as const;

function acceptFor(operation: ProviderOperation, soapVersion: SoapVersion | undefined): string {
  if (operation.body === 'soap') return soapVersion === '1.2' ? 'application/soap+xml' : 'text/xml';
  switch (operation.responseFormat ?? 'json') {
    case 'json':
      return 'application/json';
    case 'xml':
      return 'application/xml, text/xml';
    default:
      return '*/*';
  }
}

/**
 * Builds the request for `operationName` of `provider` from `inputs`:
 *
 * - URL: `target.overrideBaseUrl` ?? the operation's `baseUrl` ?? `target.baseUrl` ?? the
 *   provider's `baseUrl`, then the operation's `path`. `{variable}` and `{apiVersion}`
 *   placeholders are filled: in the host only with host text (a value holding `/ @ : ? # %`
 *   is refused, so no variable can move the call to another host), elsewhere percent-encoded.
 *   Path `{input}` placeholders are percent-encoded whole; a greedy `{input+}` keeps its `/`
 *   (S3 object keys, the generic `http` provider's path). `.` and `..` segments are refused.
 * - Query: the operation's `query` inputs (see `flattenInput`: arrays repeat the key unless the
 *   input's schema says `style: deepObject`; objects are bracketed), `fixed.query`, the API
 *   version when pinned `in: query`, and a `requestFromInputs.query` map.
 * - Headers (lower-case names), later ones winning: `accept` and `content-type` for the
 *   encoding (or the operation's `contentType`), the provider's `headers` (with `{variables}`),
 *   the API version when pinned `in: header`, `fixed.headers`, the operation's header inputs,
 *   a `requestFromInputs.headers` map (never Authorization, Cookie, Host or framing headers),
 *   and the idempotency header when `options.idempotencyKey` is given and the operation honours
 *   it (`idempotent`, or a POST when the provider declares `idempotency`).
 * - Body: the inputs not used above, over `fixed.body`, encoded as `body` says: `json`; `form`
 *   (Stripe-style `a[b]=`, `a[0]=`; see `flattenInput`); `multipart` (`encodeMultipart`);
 *   `xml` (one element per input); `soap` (an envelope; 1.1 with `SOAPAction`, 1.2 with the
 *   `action` parameter); `graphql` (`{query, variables, operationName}`); `raw` (the `rawBody`
 *   input, decoded from base64 when its schema says `contentEncoding: base64`); `none`. GET and
 *   HEAD never carry a body. Without `graphql.document` or `soap` settings (the generic
 *   providers), the inputs `query`/`variables`/`operationName` and `action`/`body`/`namespace`/
 *   `version` hold them.
 *
 * Throws `PB_CALL_BAD_INPUT` (terminal) naming the input for a missing required path, query or
 * header input, a value of the wrong shape, an input that has no place in the request, or a
 * header value with a line break; `PB_CALL_BAD_TARGET` for a missing base URL or variable, or a
 * variable that would change the host; `PB_CONNECTION_API_VERSION` for a version not matching
 * the provider's pattern; `PB_REF_UNKNOWN_OPERATION` for an unknown operation. Messages never
 * quote input values.
 */
export function buildRequest(
  provider: ProviderDocument,
  operationName: string,
  inputs: Readonly<Record<string, unknown>>,
  target: CallTarget,
  options: BuildOptions = {},
): OutboundRequest {
  const operation = findOperation(provider, operationName);
  const spec = provider.spec;
  const schema = inputSchema(operation);
  const declared = new Set(Object.keys(schema.properties ?? {}));
  const required = new Set(schema.required ?? []);
  const fromInputs = operation.requestFromInputs ?? {};
  const placed: Placed = new Set(Object.values(fromInputs).filter((name): name is string => name !== undefined));
  const version = pinnedVersion(provider, target);
  const variables = resolveVariables(provider, target);
  const lookup = (name: string) => (name === 'apiVersion' ? version : variables.get(name));

  // Method.
  let method: HttpMethod = operation.method ?? 'POST';
  if (fromInputs.method !== undefined && present(inputs, fromInputs.method)) {
    const wanted = String(inputs[fromInputs.method]).toUpperCase();
    if (!(httpMethods as readonly string[]).includes(wanted)) throw badInput(`input "${fromInputs.method}" is not an HTTP method`);
    method = wanted as HttpMethod;
  }

  // URL.
  const baseTemplate = target.overrideBaseUrl ?? operation.baseUrl ?? target.baseUrl ?? spec.baseUrl;
  if (baseTemplate === undefined) throw badTarget(`${provider.metadata.name}.${operationName} has no base URL: the connection must give \`baseUrl\``);
  const base = fillBaseUrl(baseTemplate, lookup);
  const path = (operation.path ?? '').replace(placeholderPattern, (_whole, name: string, greedy: string) => {
    if (declared.has(name)) {
      placed.add(name);
      return pathValue(name, inputs[name], greedy === '+');
    }
    const value = lookup(name);
    if (value === undefined) throw badTarget(`variable "${name}" of the path is not set`);
    return pathValue(name, value, greedy === '+');
  });
  if (path !== '' && !path.startsWith('/')) throw badInput('the path must start with "/"');

  const query: Pair[] = [];
  for (const name of operation.query ?? []) {
    placed.add(name);
    if (!present(inputs, name)) {
      if (required.has(name)) throw badInput(`input "${name}" is required: it is a query parameter`);
      continue;
    }
    query.push(...flattenInput(name, inputs[name], encodingOf(schema, name), 'query'));
  }
  for (const [name, value] of Object.entries(operation.fixed?.query ?? {})) query.push([name, value]);
  if (spec.apiVersion?.in === 'query' && version !== undefined) query.push([spec.apiVersion.name ?? 'api-version', version]);
  if (fromInputs.query !== undefined && present(inputs, fromInputs.query)) {
    const map = inputs[fromInputs.query];
    if (!isRecord(map)) throw badInput(`input "${fromInputs.query}" must be a map of query parameters`);
    for (const [name, value] of Object.entries(map)) query.push(...flattenInput(name, value, { style: 'form' }, 'query'));
  }

  // Headers.
  const headers: Record<string, string> = {};
  let soapVersion: SoapVersion | undefined;
  if (operation.body === 'soap') {
    const wanted = operation.soap?.version ?? (present(inputs, 'version') && operation.soap === undefined ? String(inputs.version) : '1.1');
    if (wanted !== '1.1' && wanted !== '1.2') throw badInput('input "version" must be "1.1" or "1.2"');
    soapVersion = wanted;
  }
  headers.accept = acceptFor(operation, soapVersion);
  for (const [name, template] of Object.entries(spec.headers ?? {})) {
    headers[name.toLowerCase()] = headerValue(
      `provider header ${name}`,
      template.replace(placeholderPattern, (_whole, variable: string) => {
        const value = lookup(variable);
        if (value === undefined) throw badTarget(`variable "${variable}" of header ${name} is not set`);
        return value;
      }),
    );
  }
  if (spec.apiVersion?.in === 'header' && version !== undefined) headers[(spec.apiVersion.name ?? 'api-version').toLowerCase()] = version;
  for (const [name, value] of Object.entries(operation.fixed?.headers ?? {})) headers[name.toLowerCase()] = headerValue(`fixed header ${name}`, value);
  for (const [input, name] of Object.entries(operation.headers ?? {})) {
    placed.add(input);
    if (!present(inputs, input)) {
      if (required.has(input)) throw badInput(`input "${input}" is required: it is the ${name} header`);
      continue;
    }
    const value = inputs[input];
    const text = Array.isArray(value) ? value.map((item) => scalarText(input, item)).join(', ') : scalarText(input, value);
    headers[name.toLowerCase()] = headerValue(`input "${input}"`, text);
  }
  if (fromInputs.headers !== undefined && present(inputs, fromInputs.headers)) {
    const map = inputs[fromInputs.headers];
    if (!isRecord(map)) throw badInput(`input "${fromInputs.headers}" must be a map of header names to values`);
    for (const [name, value] of Object.entries(map)) {
      const lower = name.toLowerCase();
      if (!headerName.test(name)) throw badInput(`input "${fromInputs.headers}" names an invalid header`);
      if (reservedHeaders.has(lower)) throw badInput(`input "${fromInputs.headers}" may not set ${name}: Patchbay sets it`);
      headers[lower] = headerValue(`header ${name} of input "${fromInputs.headers}"`, scalarText(fromInputs.headers, value));
    }
  }

  // Body.
  const rest: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(operation.fixed?.body ?? {})) rest[name] = value;
  for (const [name, value] of Object.entries(inputs)) {
    if (!placed.has(name) && value !== undefined) rest[name] = value;
  }
  const encoded = encodeBody(operation, method, inputs, rest, schema, soapVersion, fromInputs);
  if (encoded !== undefined) {
    if (method === 'GET' || method === 'HEAD') throw badInput(`a ${method} request cannot carry a body`);
    for (const [name, value] of Object.entries(encoded.headers)) headers[name] = value;
  }
  if (operation.contentType !== undefined && encoded !== undefined) headers['content-type'] = headerValue('contentType', operation.contentType);
  // Header inputs win over the encoding's content type (S3 PutObject's ContentType).
  for (const [input, name] of Object.entries(operation.headers ?? {})) {
    if (name.toLowerCase() === 'content-type' && present(inputs, input)) headers['content-type'] = scalarText(input, inputs[input]);
  }

  const honoursIdempotency = operation.idempotent ?? method === 'POST';
  if (options.idempotencyKey !== undefined && spec.idempotency !== undefined && honoursIdempotency) {
    headers[spec.idempotency.header.toLowerCase()] = headerValue('the idempotency key', options.idempotencyKey);
  }

  const search = query.length > 0 ? `?${joinPairs(query)}` : '';
  let url: URL;
  try {
    url = new URL(`${base}${path}${search}`);
  } catch (error) {
    throw new PatchbayError('PB_CALL_BAD_TARGET', 'the request URL is not valid', { cause: error });
  }
  return encoded?.body === undefined ? { method, url, headers } : { method, url, headers, body: encoded.body };
}

interface EncodedBody {
  readonly body?: Uint8Array | string;
  readonly headers: Record<string, string>;
}

function encodeBody(
  operation: ProviderOperation,
  method: HttpMethod,
  inputs: Readonly<Record<string, unknown>>,
  rest: Record<string, unknown>,
  schema: InputSchema,
  soapVersion: SoapVersion | undefined,
  fromInputs: NonNullable<ProviderOperation['requestFromInputs']>,
): EncodedBody | undefined {
  const bodyMethod = method !== 'GET' && method !== 'HEAD';
  const leftover = () => {
    const names = Object.keys(rest);
    if (names.length > 0) throw badInput(`input "${names[0]}" has no place in the request: it is neither a path, query, header nor body input`);
  };

  if (fromInputs.body !== undefined) {
    leftover();
    if (!present(inputs, fromInputs.body)) return undefined;
    const value = inputs[fromInputs.body];
    const wanted = fromInputs.contentType !== undefined && present(inputs, fromInputs.contentType) ? String(inputs[fromInputs.contentType]) : 'json';
    if (wanted === 'json') return { body: JSON.stringify(value), headers: { 'content-type': contentTypes.json } };
    if (wanted === 'form') {
      if (!isRecord(value)) throw badInput(`input "${fromInputs.body}" must be an object to be sent as a form`);
      const pairs = Object.entries(value).flatMap(([name, inner]) => flattenInput(name, inner, {}, 'form'));
      return { body: joinPairs(pairs), headers: { 'content-type': contentTypes.form } };
    }
    if (wanted === 'text') return { body: scalarText(fromInputs.body, value), headers: { 'content-type': contentTypes.text } };
    throw badInput(`input "${fromInputs.contentType}" must be json, form or text`);
  }

  const kind = operation.body ?? 'json';
  // GET and HEAD carry no body; nor does an empty DELETE.
  const empty = Object.keys(rest).length === 0;
  if (kind === 'none' || !bodyMethod || (empty && method === 'DELETE' && (kind === 'json' || kind === 'form'))) {
    leftover();
    return undefined;
  }
  switch (kind) {
    case 'json':
      return { body: JSON.stringify(rest), headers: { 'content-type': contentTypes.json } };
    case 'form': {
      const pairs = Object.entries(rest).flatMap(([name, value]) => flattenInput(name, value, encodingOf(schema, name), 'form'));
      return { body: joinPairs(pairs), headers: { 'content-type': contentTypes.form } };
    }
    case 'multipart': {
      const encodings: Record<string, InputEncoding> = {};
      for (const name of Object.keys(rest)) encodings[name] = encodingOf(schema, name);
      const { body, contentType } = encodeMultipart(rest, encodings);
      return { body, headers: { 'content-type': contentType } };
    }
    case 'xml': {
      const names = Object.keys(rest);
      if (names.length === 0) return undefined;
      if (names.length !== 1 || !isRecord(rest[names[0]!])) {
        throw badInput('an XML body needs exactly one input, an object holding the root element');
      }
      return { body: `<?xml version="1.0" encoding="UTF-8"?>${xmlElements(rest)}`, headers: { 'content-type': contentTypes.xml } };
    }
    case 'graphql': {
      const document = operation.graphql?.document;
      if (document !== undefined) {
        return { body: JSON.stringify({ query: document, variables: rest }), headers: { 'content-type': contentTypes.graphql } };
      }
      const { query, variables, operationName, ...others } = rest;
      if (Object.keys(others).length > 0) {
        throw badInput(`input "${Object.keys(others)[0]}" has no place in a GraphQL request`);
      }
      if (typeof query !== 'string' || query === '') throw badInput('input "query" is required: it is the GraphQL document');
      if (variables !== undefined && !isRecord(variables)) throw badInput('input "variables" must be an object');
      if (operationName !== undefined && typeof operationName !== 'string') throw badInput('input "operationName" must be a string');
      const payload: Record<string, unknown> = { query };
      if (variables !== undefined) payload.variables = variables;
      if (operationName !== undefined) payload.operationName = operationName;
      return { body: JSON.stringify(payload), headers: { 'content-type': contentTypes.graphql } };
    }
    case 'soap':
      return encodeSoap(operation, rest, soapVersion ?? '1.1');
    case 'raw': {
      const name = operation.rawBody;
      if (name === undefined) throw badInput('`body: raw` needs `rawBody`, the input that holds the body');
      const { [name]: value, ...others } = rest;
      const stray = Object.keys(others)[0];
      if (stray !== undefined) throw badInput(`input "${stray}" has no place in the request: the body is the raw "${name}"`);
      if (value === undefined || value === null) {
        if (schema.required?.includes(name)) throw badInput(`input "${name}" is required: it is the body`);
        return { body: '', headers: { 'content-type': contentTypes.raw } };
      }
      const text = scalarText(name, value);
      const body = encodingOf(schema, name).contentEncoding === 'base64' ? decodeBase64(name, text) : text;
      return { body, headers: { 'content-type': contentTypes.raw } };
    }
  }
}

function encodeSoap(operation: ProviderOperation, rest: Record<string, unknown>, version: SoapVersion): EncodedBody {
  const soap = operation.soap;
  if (soap !== undefined) {
    const element = soap.element ?? soap.action.replace(/^.*[/#]/, '');
    if (!/^[A-Za-z_][A-Za-z0-9._-]*$/.test(element)) throw badInput(`the SOAP element name of the operation is not an XML name`);
    const qualified = soap.namespace === undefined ? element : `ns:${element}`;
    const bodyXml = `<${qualified}>${xmlElements(rest)}</${qualified}>`;
    return { body: soapEnvelope(version, bodyXml, soap.namespace), headers: soapHeaders(version, soap.action) };
  }
  // The generic provider: the inputs carry the action, the element's XML and its namespace.
  const { action, body, namespace, version: _version, ...others } = rest;
  if (Object.keys(others).length > 0) throw badInput(`input "${Object.keys(others)[0]}" has no place in a SOAP request`);
  if (typeof action !== 'string' || action === '') throw badInput('input "action" is required: it is the SOAPAction');
  if (typeof body !== 'string' || body === '') throw badInput('input "body" is required: it is the operation element');
  if (namespace !== undefined && typeof namespace !== 'string') throw badInput('input "namespace" must be a string');
  return { body: soapEnvelope(version, body, namespace), headers: soapHeaders(version, action) };
}

// ---------------------------------------------------------------------------------------------
// Pagination.

/** What `nextPageRequest` needs to know about the page just read. */
export interface PageContext {
  readonly provider: ProviderDocument;
  readonly operationName: string;
  /** The inputs the page was built from (for cursor, page and offset styles). */
  readonly inputs: Readonly<Record<string, unknown>>;
  readonly target: CallTarget;
  /** The request that fetched the page (for link and next-URL styles). */
  readonly request: OutboundRequest;
  readonly response: InboundResponse;
  /** The parsed body, as `readResponse` returned it. */
  readonly body: unknown;
}

/** The pagination that applies to an operation: its own, else the provider's, else none. */
export function paginationOf(provider: ProviderDocument, operation: ProviderOperation): ProviderPagination | undefined {
  const pagination = operation.pagination ?? provider.spec.pagination;
  return pagination === undefined || pagination.style === 'none' ? undefined : pagination;
}

/** The item list of a page, per `itemsPath` (the body itself when it is a list). */
export function pageItems(pagination: ProviderPagination | undefined, body: unknown): unknown[] | undefined {
  const items = pagination?.itemsPath === undefined ? body : readPath(body, pagination.itemsPath);
  return Array.isArray(items) ? items : undefined;
}

// `<target>` then parameters, whose quoted values may hold `,` and `;`.
const linkValue = /<([^>]*)>((?:\s*;\s*(?:[^;,"]|"[^"]*")*)*)/g;

/** The `rel="next"` target of an RFC 8288 `Link` header, or undefined. */
export function nextLink(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  for (const match of header.matchAll(linkValue)) {
    const params = match[2] ?? '';
    const rel = /;\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))/i.exec(params);
    const rels = (rel?.[1] ?? rel?.[2] ?? '').toLowerCase().split(/\s+/);
    if (rels.includes('next')) return match[1];
  }
  return undefined;
}

function badPage(message: string): PatchbayError {
  return new PatchbayError('PB_PROVIDER_BAD_PAGE', message);
}

/**
 * The request for the page after `context`'s, or undefined on the last page (or when the
 * operation does not page). By style:
 * - `cursor`: the value at `cursorPath` goes into the `cursorParam` input; last page when
 *   `hasMorePath` reads false, or the cursor is empty, null or absent;
 * - `page`: `pageParam` + 1 (from 1); `offset`: `pageParam` + the number of items (from 0);
 *   both end on an empty page, a page shorter than `limitParam`, or `hasMorePath` false;
 * - `link`: the `Link: <…>; rel="next"` URL; `nextUrl`: the URL or absolute path at
 *   `nextUrlPath` (resolved against the request's origin). Both keep the request's method and
 *   headers, drop its body, and must stay on the request's origin.
 * Throws `PB_PROVIDER_BAD_PAGE` (terminal) when a next link leaves the origin (it would carry
 * the credentials elsewhere) or a cursor, page or link does not move (an endless loop), and
 * the errors of `buildRequest` for the rebuilt request.
 */
export function nextPageRequest(context: PageContext): OutboundRequest | undefined {
  const operation = findOperation(context.provider, context.operationName);
  const pagination = paginationOf(context.provider, operation);
  if (pagination === undefined) return undefined;
  const { body, inputs, request } = context;
  const hasMore = pagination.hasMorePath === undefined ? undefined : readPath(body, pagination.hasMorePath);
  if (hasMore === false || hasMore === 'false') return undefined;
  const rebuild = (changes: Record<string, unknown>) =>
    buildRequest(context.provider, context.operationName, { ...inputs, ...changes }, context.target);

  switch (pagination.style) {
    case 'cursor': {
      if (pagination.cursorPath === undefined || pagination.cursorParam === undefined) return undefined;
      const cursor = readPath(body, pagination.cursorPath);
      if (cursor === undefined || cursor === null || cursor === '') return undefined;
      if (typeof cursor !== 'string' && typeof cursor !== 'number') throw badPage(`the cursor at ${pagination.cursorPath} is not a string or number`);
      if (String(inputs[pagination.cursorParam]) === String(cursor)) throw badPage(`the cursor at ${pagination.cursorPath} did not move`);
      return rebuild({ [pagination.cursorParam]: cursor });
    }
    case 'page':
    case 'offset': {
      if (pagination.pageParam === undefined) return undefined;
      const items = pageItems(pagination, body);
      if (items === undefined || items.length === 0) return undefined;
      const limit = pagination.limitParam === undefined ? undefined : Number(inputs[pagination.limitParam]);
      if (limit !== undefined && Number.isFinite(limit) && items.length < limit) return undefined;
      const current = Number(inputs[pagination.pageParam] ?? (pagination.style === 'page' ? 1 : 0));
      if (!Number.isFinite(current)) throw badPage(`input "${pagination.pageParam}" is not a number`);
      return rebuild({ [pagination.pageParam]: pagination.style === 'page' ? current + 1 : current + items.length });
    }
    case 'link':
    case 'nextUrl': {
      let next: unknown;
      if (pagination.style === 'link') {
        next = nextLink(context.response.headers.link);
      } else {
        next = pagination.nextUrlPath === undefined ? undefined : readPath(body, pagination.nextUrlPath);
      }
      if (next === undefined || next === null || next === '') return undefined;
      if (typeof next !== 'string') throw badPage('the next page reference is not a string');
      let url: URL;
      try {
        url = new URL(next, request.url.origin);
      } catch (error) {
        throw new PatchbayError('PB_PROVIDER_BAD_PAGE', 'the next page reference is not a valid URL', { cause: error });
      }
      if (url.origin !== request.url.origin) throw badPage(`the next page is on another origin (${url.origin}); it was not followed`);
      if (url.href === request.url.href) throw badPage('the next page is the page just read');
      const { body: _body, ...rest } = request;
      const headers = { ...rest.headers };
      delete headers['content-type'];
      return { method: request.method, url, headers };
    }
    default:
      return undefined;
  }
}
