import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { systemClock, type Clock } from '../../lib/clock.js';
import { looksSecretName, maskCredentials } from '../../lib/credentials.js';
import { readBodyWithin, sendJson } from '../../lib/http-server.js';
import { silentLogger, type Logger } from '../../lib/log.js';
import type { SecretSet } from '../../lib/secrets.js';
import { soapEnvelope, xmlElements, type SoapVersion } from '../../providers/encode.js';
import type { PlanConnectionContext } from '../../executor/plan.js';
import type { ProviderRegistry } from '../../providers/registry.js';
import { readPath } from '../../providers/paths.js';
import type { ProviderDocument, ProviderOperation } from '../../types/provider.generated.js';
import { matchOperation, soapActionOf, type SandboxRequest } from './match.js';
import { exampleOutput, SampleIndex } from './synthesize.js';

/**
 * The built-in sandbox: one local HTTP server that plays every provider of a registry, so
 * integrations run with no accounts. Each provider is served under its own path prefix
 * (`http://127.0.0.1:<port>/<provider>`); a connection whose base URL is overridden with it sends
 * every operation there (the request builder keeps the prefix). A request is matched to an
 * operation (see `matchOperation`), recorded with its credentials masked, and answered 200 with the
 * operation's example answer (see `exampleOutput`) in the operation's response format: JSON, XML,
 * a SOAP envelope, text, bytes, or nothing. A request that fits no operation is answered 404 with
 * a JSON error naming what was tried, and recorded too.
 */

export interface SandboxOptions {
  readonly registry: ProviderRegistry;
  /** One debug line per request: provider, operation, method, status. @default silentLogger */
  readonly logger?: Logger;
  /** Values to hide in what is recorded (the plan's resolved secrets, generated or real). */
  readonly secrets?: SecretSet;
  /** @default systemClock */
  readonly clock?: Clock;
  /** @default 127.0.0.1 */
  readonly host?: string;
  /** @default 0 (any free port) */
  readonly port?: number;
  /** Larger request bodies are answered 413. @default 10 MiB */
  readonly maxBodyBytes?: number;
  /** Requests kept for `received()`; older ones are dropped first. @default 1000 */
  readonly maxRecorded?: number;
}

/** One request the sandbox received, as recorded (credentials masked). */
export interface SandboxRecord {
  readonly provider: string;
  /** The operation it was matched to; undefined when it fit none (answered 404). */
  readonly operation: string | undefined;
  readonly method: string;
  /** Path after the provider's prefix, with the query (secret-looking parameters masked). */
  readonly path: string;
  /** Lower-case names; credential headers masked as `Bearer [redacted]`. */
  readonly headers: Readonly<Record<string, string>>;
  /** The body as UTF-8 text with known secrets and credential-looking text masked. */
  readonly body: string;
  /** What the sandbox answered. */
  readonly status: number;
  readonly receivedAt: number;
}

export interface Sandbox {
  /** The server's origin, `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** The base URL that plays `provider` (any name; unknown providers are answered 404). */
  baseUrlFor(provider: string): string;
  /** Requests received so far, oldest first. */
  received(): readonly SandboxRecord[];
  /** Stops the server and closes its connections. */
  close(): Promise<void>;
}

const credentialHeaders = new Set(['authorization', 'proxy-authorization', 'cookie', 'x-api-key', 'api-key']);

/**
 * Starts the sandbox on `host:port` (default 127.0.0.1, any free port). Resolves once it
 * listens; rejects with the listen error (EADDRINUSE) otherwise. Providers are read from the
 * registry at each request, so the caller may add providers later.
 */
export async function startSandbox(options: SandboxOptions): Promise<Sandbox> {
  const logger = options.logger ?? silentLogger;
  const clock = options.clock ?? systemClock;
  const maxBodyBytes = options.maxBodyBytes ?? 10 * 1024 * 1024;
  const maxRecorded = options.maxRecorded ?? 1000;
  const records: SandboxRecord[] = [];
  const samples = new Map<string, SampleIndex>();
  const answers = new Map<string, unknown>();

  const exampleFor = (providerName: string, document: ProviderDocument, name: string, operation: ProviderOperation): unknown => {
    const key = `${providerName}\u0000${name}`;
    if (!answers.has(key)) {
      let index = samples.get(providerName);
      if (index === undefined) {
        index = new SampleIndex(document);
        samples.set(providerName, index);
      }
      answers.set(key, exampleOutput(document, operation, index));
    }
    return structuredClone(answers.get(key));
  };

  const record = (entry: SandboxRecord) => {
    records.push(entry);
    if (records.length > maxRecorded) records.splice(0, records.length - maxRecorded);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const receivedAt = clock.now();
    const url = new URL(req.url ?? '/', 'http://sandbox.invalid');
    const method = (req.method ?? 'GET').toUpperCase();
    const [, first = '', ...rest] = url.pathname.split('/');
    const providerName = decodeSegment(first);
    const provider = options.registry.get(providerName);
    const read = await readBodyWithin(req, res, maxBodyBytes);
    if (read.kind === 'aborted') return;
    const body = read.kind === 'body' ? read.body : undefined;
    const headers = headersOf(req);
    const path = `/${rest.join('/')}`;
    const mask = (text: string) => maskCredentials(options.secrets?.redact(text) ?? text);
    const shown = {
      provider: providerName,
      method,
      path: mask(`${path}${maskedQuery(url.searchParams, provider?.document)}`),
      headers: maskHeaders(headers, mask),
      body: body === undefined ? '' : mask(body.toString('utf8')),
      receivedAt,
    };
    if (body === undefined) {
      record({ ...shown, operation: undefined, status: 413 });
      sendJson(res, 413, { error: { code: 'sandbox_body_too_large', message: `the sandbox takes bodies up to ${maxBodyBytes} bytes` } });
      return;
    }
    if (provider === undefined) {
      record({ ...shown, operation: undefined, status: 404 });
      sendJson(res, 404, { error: { code: 'sandbox_unknown_provider', message: `the sandbox plays no provider "${providerName}"; the path starts with the provider's name` } });
      return;
    }
    const request: SandboxRequest = { method, path, query: url.searchParams, headers, body };
    const match = matchOperation(provider.document, request);
    if (match === undefined) {
      record({ ...shown, operation: undefined, status: 404 });
      logger.log('warn', 'sandbox: no operation fits the request', { provider: providerName, method, path: shown.path });
      sendJson(res, 404, {
        error: { code: 'sandbox_no_operation', message: `no operation of provider "${providerName}" is ${method} ${shown.path} (with this action or document)` },
      });
      return;
    }
    const value = lastPage(provider.document, match.operation, request, exampleFor(providerName, provider.document, match.name, match.operation));
    const answer = encodeAnswer(match.operation, request, value);
    record({ ...shown, operation: match.name, status: answer.status });
    logger.log('debug', 'sandbox answered', { provider: providerName, operation: match.name, method, status: answer.status });
    res.writeHead(answer.status, { ...answer.headers, 'content-length': String(answer.body.byteLength) });
    res.end(method === 'HEAD' ? undefined : answer.body);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      logger.log('error', 'sandbox: answering failed', { error: error instanceof Error ? error.message : String(error) });
      if (!res.headersSent) sendJson(res, 500, { error: { code: 'sandbox_internal', message: 'the sandbox failed to answer' } });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const origin = `http://${host}:${address.port}`;
  return {
    url: origin,
    baseUrlFor: (provider) => `${origin}/${encodeURIComponent(provider)}`,
    received: () => [...records],
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error === undefined ? resolve() : reject(error)));
        server.closeAllConnections();
      }),
  };
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    // Not a name the registry can hold: answered as an unknown provider.
    return segment;
  }
}

function headersOf(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

/** Credential headers keep their scheme word only (`Basic [redacted]`); others are masked text. */
function maskHeaders(headers: Readonly<Record<string, string>>, mask: (text: string) => string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (credentialHeaders.has(name) || looksSecretName(name) || name.endsWith('-token')) {
      const scheme = /^(Bearer|Basic|Token|AWS4-HMAC-SHA256)\s/i.exec(value)?.[1];
      out[name] = scheme === undefined ? '[redacted]' : `${scheme} [redacted]`;
    } else {
      out[name] = mask(value);
    }
  }
  return out;
}

/** The query string with values of secret-looking parameters and the provider's query API key masked. */
function maskedQuery(query: URLSearchParams, provider: ProviderDocument | undefined): string {
  if ([...query.keys()].length === 0) return '';
  const keyNames = new Set((provider?.spec.auth ?? []).filter((scheme) => scheme.in === 'query' && scheme.name !== undefined).map((scheme) => scheme.name!));
  const out = new URLSearchParams();
  for (const [name, value] of query) out.append(name, keyNames.has(name) || looksSecretName(name) || /^x-amz-(signature|credential|security-token)$/i.test(name) ? '[redacted]' : value);
  return `?${out.toString()}`;
}

/**
 * A request for a page after the first (a cursor sent, a page above 1, an offset above 0) is
 * answered with no items, so a poller that follows pages stops.
 */
function lastPage(provider: ProviderDocument, operation: ProviderOperation, request: SandboxRequest, value: unknown): unknown {
  const pagination = operation.pagination ?? provider.spec.pagination;
  if (pagination === undefined || pagination.itemsPath === undefined || value === null || typeof value !== 'object') return value;
  const sent = (name: string | undefined): string | undefined => {
    if (name === undefined) return undefined;
    const inQuery = request.query.get(name);
    if (inQuery !== null) return inQuery;
    try {
      const body = JSON.parse(request.body.toString('utf8')) as unknown;
      const inBody = readPath(body, name);
      return inBody === undefined || inBody === null ? undefined : String(inBody);
    } catch {
      // Not a JSON body: the parameter, if any, was in the query.
      return undefined;
    }
  };
  const cursor = sent(pagination.cursorParam);
  const page = sent(pagination.pageParam);
  const later =
    (cursor !== undefined && cursor !== '') ||
    (page !== undefined && (pagination.style === 'page' ? Number(page) > 1 : Number(page) > 0));
  if (!later) return value;
  const parts = pagination.itemsPath.split('.');
  let holder: unknown = value;
  for (const part of parts.slice(0, -1)) holder = holder !== null && typeof holder === 'object' ? (holder as Record<string, unknown>)[part] : undefined;
  if (holder !== null && typeof holder === 'object' && !Array.isArray(holder)) (holder as Record<string, unknown>)[parts[parts.length - 1]!] = [];
  return value;
}

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

/** Encodes the answer value as the operation's response format says. */
function encodeAnswer(operation: ProviderOperation, request: SandboxRequest, value: unknown): Answer {
  if (operation.requestFromInputs?.method !== undefined && operation.body !== 'soap' && operation.body !== 'graphql') {
    // A generic request's output is the envelope the reader builds from the answer itself.
    return json(200, { sandbox: true, method: request.method, path: request.path });
  }
  if (operation.body === 'soap') {
    const version: SoapVersion = (request.headers['content-type'] ?? '').toLowerCase().startsWith('application/soap+xml') ? '1.2' : '1.1';
    const content = soapContent(operation, request, value);
    return {
      status: 200,
      headers: { 'content-type': version === '1.2' ? 'application/soap+xml; charset=utf-8' : 'text/xml; charset=utf-8' },
      body: Buffer.from(soapEnvelope(version, content, operation.soap?.namespace), 'utf8'),
    };
  }
  switch (operation.responseFormat ?? 'json') {
    case 'json':
      return json(200, value);
    case 'xml':
      return { status: 200, headers: { 'content-type': 'application/xml' }, body: Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>${toXml(value)}`, 'utf8') };
    case 'text':
      return { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: Buffer.from(typeof value === 'string' ? value : JSON.stringify(value), 'utf8') };
    case 'binary':
      return { status: 200, headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from('patchbay sandbox object\n', 'utf8') };
    case 'empty':
      return { status: 200, headers: { etag: '"0000000000000000000000000000sandbox"' }, body: Buffer.alloc(0) };
  }
}

function json(status: number, value: unknown): Answer {
  return { status, headers: { 'content-type': 'application/json; charset=utf-8' }, body: Buffer.from(JSON.stringify(value ?? null), 'utf8') };
}

/** One root element: the value's single key, else `<Response>` around its fields. */
function toXml(value: unknown): string {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return '<Response/>';
  const fields = value as Record<string, unknown>;
  try {
    return Object.keys(fields).length === 1 ? xmlElements(fields) : `<Response>${xmlElements(fields)}</Response>`;
  } catch {
    // A property name that is no XML name: an empty answer still reads as a success.
    return '<Response/>';
  }
}

/**
 * The content of the answer's `Body`: the example value's elements, or for the generic SOAP
 * provider (no output schema to follow) `<{Element}Response/>` after the request's operation element.
 */
function soapContent(operation: ProviderOperation, request: SandboxRequest, value: unknown): string {
  if (operation.soap === undefined) {
    const element = /<(?:[A-Za-z_][\w.-]*:)?Body[^>]*>\s*<(?:([A-Za-z_][\w.-]*):)?([A-Za-z_][\w.-]*)/.exec(request.body.toString('utf8'));
    const name = element?.[2] ?? soapActionOf(request.headers)?.replace(/^.*[/#]/, '') ?? 'Operation';
    return `<${name}Response xmlns="urn:patchbay:sandbox"><Sandbox>true</Sandbox></${name}Response>`;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return '';
  try {
    return xmlElements(value as Record<string, unknown>);
  } catch {
    // See toXml: an unrepresentable name leaves an empty, successful Body.
    return '';
  }
}

/**
 * The plan's connection context for sandbox mode: every provider's calls go to its sandbox base
 * URL, and the sandbox's loopback address is allowed (connections refuse private addresses
 * otherwise). Pass it as `buildExecutionPlan`'s `connectionContext` (with the sandbox's secret
 * sources in the plan's `SecretSet`).
 */
export function sandboxConnectionContext(sandbox: Pick<Sandbox, 'baseUrlFor'>): PlanConnectionContext {
  return { overrideBaseUrlFor: (provider) => sandbox.baseUrlFor(provider), allowPrivateAddresses: ['127.0.0.1/32', '::1/128'] };
}
