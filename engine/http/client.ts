import { performance } from 'node:perf_hooks';
import type { Transform } from 'node:stream';
import { constants as zlibConstants, createBrotliDecompress, createGunzip, createInflate, createInflateRaw } from 'node:zlib';
import { Agent, type Dispatcher } from 'undici';
import { PatchbayError } from '../diag/errors.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { looksSecretName } from '../lib/credentials.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { AddressGuard, type AddressPolicy, type LookupAddresses } from './address-guard.js';
import { buildGuardedConnector } from './guarded-connector.js';
import { hostMatches } from './hosts.js';
import { classifyNetworkError, describeTarget, type CallPhase } from './classify.js';
import type { HttpMethod, InboundResponse, OutboundRequest } from './request.js';

/**
 * The outbound HTTP client: one keep-alive pool per origin (undici), https only, the SSRF guard
 * at connect time, timeouts per phase, a size limit on raw and decompressed bytes, and every
 * failure turned into a `PatchbayError`. Status codes are not failures here: `send` returns
 * any answer, and `classifyResponse` (./classify.ts) says what a status means.
 */

/** Options of an `HttpClient`. Values are validated once, in the constructor. */
export interface HttpClientOptions {
  /** Measures `durationMs`. @default systemClock */
  readonly clock?: Clock;
  /** Receives a debug line per followed redirect (no query strings). @default silentLogger */
  readonly logger?: Logger;
  /** Milliseconds to establish TCP and TLS; also the longest a per-call value can make it. @default 10_000 */
  readonly connectTimeoutMs?: number;
  /** Milliseconds from the connection to the end of the response headers. @default 30_000 */
  readonly headersTimeoutMs?: number;
  /** Milliseconds for the whole call: connect, headers, body, and any redirects followed. @default 60_000 */
  readonly totalTimeoutMs?: number;
  /** Largest body accepted, in bytes, counted raw and again decompressed. @default 10 MiB */
  readonly maxResponseBytes?: number;
  /**
   * Redirects to follow (301, 302, 303, 307, 308), to the same origin or to an allowed host
   * only; credential headers are dropped when the origin changes. 0 returns the 3xx answer.
   * @default 0
   */
  readonly maxRedirects?: number;
  /** Connections kept per origin. @default 32 */
  readonly connectionsPerOrigin?: number;
  /** Milliseconds an idle keep-alive connection is kept (a server's `Keep-Alive` can lower it). @default 4_000 */
  readonly keepAliveTimeoutMs?: number;
  /**
   * Host names (`localhost`, `127.0.0.1`, `*.test`, optionally with `:port`) that may be called
   * over plain http. For tests and local development only. @default []
   */
  readonly allowHttpHosts?: readonly string[];
  /**
   * A hook that may refuse a URL (return false) before anything is sent, and that allows a
   * redirect to another origin (return true). Per-call `allowedHosts` are checked as well.
   */
  readonly isHostAllowed?: (url: URL) => boolean;
  /** Private addresses that may be reached on purpose (SSRF guard). @default { allow: [] } */
  readonly addressPolicy?: AddressPolicy;
  /** Resolves host names for the SSRF guard (tests inject one). @default systemLookup */
  readonly lookup?: LookupAddresses;
}

/** Per-call settings of `send`; each limit overrides the client's. */
export interface SendOptions {
  readonly connectTimeoutMs?: number;
  readonly headersTimeoutMs?: number;
  readonly totalTimeoutMs?: number;
  readonly maxResponseBytes?: number;
  /** Aborts the call; `send` then rejects with `signal.reason`, as `fetch` does. */
  readonly signal?: AbortSignal;
  /**
   * The connection's allowed hosts (`api.example.com`, `*.example.com`, optionally with
   * `:port`): the URL and any redirect target must match one.
   */
  readonly allowedHosts?: readonly string[];
}

interface Limits {
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly totalTimeoutMs: number;
  readonly maxResponseBytes: number;
}

const mebibyte = 1024 * 1024;
const acceptEncoding = 'gzip, deflate, br';
const redirectStatuses = new Set([301, 302, 303, 307, 308]);
// Credential headers that `looksSecretName` does not recognise by their words alone.
const credentialHeaders = new Set(['authorization', 'proxy-authorization', 'cookie', 'cookie2']);
const bodyHeaders = ['content-type', 'content-length', 'content-encoding', 'content-language', 'content-location', 'transfer-encoding'];
const emptyBody = new Uint8Array(0);
// Lenient like browsers: a stream whose trailer is missing still yields what it holds.
const zlibOptions = { flush: zlibConstants.Z_SYNC_FLUSH, finishFlush: zlibConstants.Z_SYNC_FLUSH };
const brotliOptions = { flush: zlibConstants.BROTLI_OPERATION_FLUSH, finishFlush: zlibConstants.BROTLI_OPERATION_FLUSH };

function positiveInteger(value: number | undefined, fallback: number, name: string, allowZero = false): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < (allowZero ? 0 : 1)) {
    throw new RangeError(`${name} must be ${allowZero ? 'a non-negative' : 'a positive'} integer, got ${String(value)}`);
  }
  return value;
}

/** The longest timeout accepted, as for a manifest's `policy.timeout`: 15 minutes. */
export const maxTimeoutMs = 15 * 60 * 1000;

function timeoutMs(value: number | undefined, fallback: number, name: string): number {
  const ms = positiveInteger(value, fallback, name);
  if (ms > maxTimeoutMs) throw new RangeError(`${name} must be at most ${maxTimeoutMs} (15 minutes), got ${ms}`);
  return ms;
}


function isCredentialHeader(name: string): boolean {
  return credentialHeaders.has(name) || looksSecretName(name) || name.includes('api-key') || name.includes('apikey');
}

/**
 * The outbound HTTP client. Build one per process (or per test) and share it: its pools are
 * per origin. `close()` it to release sockets.
 */
export class HttpClient {
  private readonly agent: Agent;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly defaults: Limits;
  private readonly maxRedirects: number;
  private readonly allowHttpHosts: readonly string[];
  private readonly isHostAllowed: ((url: URL) => boolean) | undefined;

  /** Validates `options` (a bad value throws a `RangeError` naming the option) and builds the pools. */
  constructor(options: HttpClientOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.defaults = {
      connectTimeoutMs: timeoutMs(options.connectTimeoutMs, 10_000, 'connectTimeoutMs'),
      headersTimeoutMs: timeoutMs(options.headersTimeoutMs, 30_000, 'headersTimeoutMs'),
      totalTimeoutMs: timeoutMs(options.totalTimeoutMs, 60_000, 'totalTimeoutMs'),
      maxResponseBytes: positiveInteger(options.maxResponseBytes, 10 * mebibyte, 'maxResponseBytes'),
    };
    this.maxRedirects = positiveInteger(options.maxRedirects, 0, 'maxRedirects', true);
    this.allowHttpHosts = options.allowHttpHosts ?? [];
    this.isHostAllowed = options.isHostAllowed;
    const guard = new AddressGuard(options.addressPolicy, options.lookup);
    this.agent = new Agent({
      connect: buildGuardedConnector(guard, { connectTimeoutMs: this.defaults.connectTimeoutMs }),
      connections: positiveInteger(options.connectionsPerOrigin, 32, 'connectionsPerOrigin'),
      keepAliveTimeout: positiveInteger(options.keepAliveTimeoutMs, 4_000, 'keepAliveTimeoutMs'),
      pipelining: 1,
      // The exchange keeps its own deadlines per phase; undici's would only duplicate them.
      headersTimeout: 0,
      bodyTimeout: 0,
    });
  }

  /**
   * Sends one request and reads the whole answer, decompressed (gzip, deflate, br). Adds
   * `accept-encoding: gzip, deflate, br` unless the request sets one. Resolves with any status;
   * rejects with a `PatchbayError`:
   * - `PB_HTTP_INSECURE`: not https and the host is not in `allowHttpHosts`;
   * - `PB_HTTP_HOST_NOT_ALLOWED`: refused by `allowedHosts` or the `isHostAllowed` hook;
   * - `PB_HTTP_PRIVATE_ADDRESS`: the host is or resolves to a refused address;
   * - `PB_HTTP_TIMEOUT`: connect, headers or total (body) deadline passed;
   * - `PB_HTTP_NETWORK`: refused, reset, DNS failure, closed mid-body;
   * - `PB_HTTP_RESPONSE_TOO_LARGE`: raw or decompressed body over `maxResponseBytes` (reading
   *   stops and the connection is closed as soon as the limit is crossed);
   * - `PB_HTTP_MALFORMED_BODY`: the body does not decode as its `content-encoding`;
   * - `PB_HTTP_REDIRECT`: too many redirects, or one to a place not allowed.
   * An aborted `signal` rejects with its reason.
   */
  send(request: OutboundRequest, perCall?: SendOptions): Promise<InboundResponse> {
    try {
      const limits = perCall === undefined ? this.defaults : this.limitsFor(perCall);
      this.assertAllowed(request.method, request.url, perCall?.allowedHosts);
      if (perCall?.signal?.aborted) return Promise.reject(perCall.signal.reason);
      const startedAt = performance.now();
      const startedAtMs = this.clock.now();
      const pending = this.exchange(request, limits, perCall?.signal, startedAt, startedAtMs);
      return this.maxRedirects === 0 ? pending : this.follow(request, pending, limits, perCall, startedAt, startedAtMs);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Closes every pool, waiting for calls in flight to end. */
  async close(): Promise<void> {
    await this.agent.close();
  }

  private limitsFor(perCall: SendOptions): Limits {
    const d = this.defaults;
    if (
      perCall.connectTimeoutMs === undefined &&
      perCall.headersTimeoutMs === undefined &&
      perCall.totalTimeoutMs === undefined &&
      perCall.maxResponseBytes === undefined
    ) {
      return d;
    }
    return {
      connectTimeoutMs: timeoutMs(perCall.connectTimeoutMs, d.connectTimeoutMs, 'connectTimeoutMs'),
      headersTimeoutMs: timeoutMs(perCall.headersTimeoutMs, d.headersTimeoutMs, 'headersTimeoutMs'),
      totalTimeoutMs: timeoutMs(perCall.totalTimeoutMs, d.totalTimeoutMs, 'totalTimeoutMs'),
      maxResponseBytes: positiveInteger(perCall.maxResponseBytes, d.maxResponseBytes, 'maxResponseBytes'),
    };
  }

  private assertAllowed(method: string, url: URL, allowedHosts: readonly string[] | undefined): void {
    const protocol = url.protocol;
    if (protocol !== 'https:' && !(protocol === 'http:' && this.allowHttpHosts.some((p) => hostMatches(p, url)))) {
      throw new PatchbayError(
        'PB_HTTP_INSECURE',
        `${describeTarget(method, url)}: refused to send over ${protocol.slice(0, -1)}; use https (plain http needs the host in allowHttpHosts, for local development)`,
      );
    }
    if (
      (allowedHosts !== undefined && !allowedHosts.some((p) => hostMatches(p, url))) ||
      (this.isHostAllowed !== undefined && !this.isHostAllowed(url))
    ) {
      throw new PatchbayError(
        'PB_HTTP_HOST_NOT_ALLOWED',
        `${describeTarget(method, url)}: host ${url.host} is not among the connection's allowed hosts`,
      );
    }
  }

  private exchange(
    request: OutboundRequest,
    limits: Limits,
    signal: AbortSignal | undefined,
    startedAt: number,
    startedAtMs: number,
  ): Promise<InboundResponse> {
    const url = request.url;
    const exchange = new Exchange(request.method, url, limits, signal, startedAt, startedAtMs, this.clock, this.maxRedirects > 0);
    const headers = request.headers['accept-encoding'] === undefined ? { ...request.headers, 'accept-encoding': acceptEncoding } : request.headers;
    this.agent.dispatch(
      { origin: url.origin, path: url.pathname + url.search, method: request.method, headers, body: request.body ?? null },
      exchange,
    );
    return exchange.promise;
  }

  private async follow(
    first: OutboundRequest,
    pending: Promise<InboundResponse>,
    limits: Limits,
    perCall: SendOptions | undefined,
    startedAt: number,
    startedAtMs: number,
  ): Promise<InboundResponse> {
    let request = first;
    let response = await pending;
    for (let hop = 1; ; hop++) {
      const location = response.headers.location;
      if (!redirectStatuses.has(response.status) || location === undefined) return response;
      const from = describeTarget(request.method, request.url);
      if (hop > this.maxRedirects) {
        throw new PatchbayError('PB_HTTP_REDIRECT', `${from}: more than ${this.maxRedirects} redirects; not followed`);
      }
      let next: URL;
      try {
        next = new URL(location, request.url);
      } catch (error) {
        throw new PatchbayError('PB_HTTP_REDIRECT', `${from} answered ${response.status} with an invalid Location`, { cause: error });
      }
      const refused = (reason: string, cause?: unknown) =>
        new PatchbayError('PB_HTTP_REDIRECT', `${from} answered ${response.status}: redirect to ${describeTarget('', next).trimStart()} refused: ${reason}`, { cause });
      const sameOrigin = next.origin === request.url.origin;
      if (!sameOrigin) {
        const allowed =
          perCall?.allowedHosts?.some((p) => hostMatches(p, next)) === true ||
          (perCall?.allowedHosts === undefined && this.isHostAllowed?.(next) === true);
        if (!allowed) throw refused('another origin, not among the allowed hosts');
      }
      request = redirectRequest(request, next, response.status, sameOrigin);
      try {
        this.assertAllowed(request.method, next, perCall?.allowedHosts);
      } catch (error) {
        throw refused((error as Error).message, error);
      }
      this.logger.log('debug', 'following a redirect', { from, to: describeTarget(request.method, next), status: response.status, hop });
      try {
        response = await this.exchange(request, limits, perCall?.signal, startedAt, startedAtMs);
      } catch (error) {
        if (error instanceof PatchbayError && error.code === 'PB_HTTP_PRIVATE_ADDRESS') throw refused(error.message, error);
        throw error;
      }
    }
  }
}

/**
 * The request to send for a redirect: 303 (and 301/302 after a POST) becomes a GET without a
 * body; credential headers are dropped when the origin changes.
 */
function redirectRequest(request: OutboundRequest, next: URL, status: number, sameOrigin: boolean): OutboundRequest {
  const toGet = (status === 303 && request.method !== 'HEAD') || ((status === 301 || status === 302) && request.method === 'POST');
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (!sameOrigin && isCredentialHeader(name)) continue;
    if (toGet && bodyHeaders.includes(name)) continue;
    headers[name] = value;
  }
  const method: HttpMethod = toGet ? 'GET' : request.method;
  return toGet || request.body === undefined ? { method, url: next, headers } : { method, url: next, headers, body: request.body };
}

function onExchangeTimer(exchange: Exchange): void {
  exchange.onTimer();
}

// undici hands a keep-alive socket back to its pool in a `setImmediate` queued right after the
// response ends. Settling after it (a microtask runs once that is queued; then our own
// immediate runs after undici's) lets the caller's next call reuse the socket instead of
// opening a second connection.
function completeExchange(exchange: Exchange): void {
  exchange.completeIfPending();
}

/**
 * One request/response, as an undici dispatch handler: collects the body (decoding it when
 * compressed), enforces the deadlines and the size limit, and settles its promise once.
 */
class Exchange implements Dispatcher.DispatchHandler {
  readonly promise: Promise<InboundResponse>;
  private resolve!: (response: InboundResponse) => void;
  private reject!: (error: unknown) => void;
  private controller: Dispatcher.DispatchController | undefined;
  private settled = false;
  private failure: unknown;
  private phase: CallPhase = 'connect';
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private readonly connectDeadline: number;
  private headersDeadline = Number.POSITIVE_INFINITY;
  private readonly totalDeadline: number;
  private status = 0;
  private headers: Record<string, string> = {};
  private chunks: Buffer[] = [];
  private bodyBytes = 0;
  private rawBytes = 0;
  private decoder: Transform | undefined;
  private deflatePending = false;
  private discardBody = false;
  private readonly onAbort: (() => void) | undefined;

  constructor(
    private readonly method: HttpMethod,
    private readonly url: URL,
    private readonly limits: Limits,
    private readonly signal: AbortSignal | undefined,
    startedAt: number,
    private readonly startedAtMs: number,
    private readonly clock: Clock,
    private readonly followRedirects: boolean,
  ) {
    this.promise = new Promise<InboundResponse>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    const now = performance.now();
    this.connectDeadline = now + limits.connectTimeoutMs;
    this.totalDeadline = startedAt + limits.totalTimeoutMs;
    this.schedule(now);
    if (signal !== undefined) {
      this.onAbort = () => this.fail(signal.reason);
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.settled) {
      // The call already failed (a deadline, an abort) while it waited for a connection.
      controller.abort(this.failure instanceof Error ? this.failure : new Error('aborted'));
      return;
    }
    this.phase = 'headers';
    const now = performance.now();
    this.headersDeadline = now + this.limits.headersTimeoutMs;
    if (this.headersDeadline < this.timerAt) this.schedule(now);
  }

  onResponseStart(_controller: Dispatcher.DispatchController, status: number, headers: Record<string, string | string[] | undefined>): void {
    if (this.settled || status < 200) return;
    this.phase = 'body';
    this.status = status;
    // undici hands over a fresh object per response: normalise it in place rather than copy.
    for (const name in headers) {
      const value = headers[name];
      if (name === 'set-cookie' || value === undefined) delete headers[name];
      else if (typeof value !== 'string') headers[name] = value.join(', ');
    }
    const normalised = headers as Record<string, string>;
    this.headers = normalised;
    const declared = normalised['content-length'];
    // A HEAD answer's length describes the body a GET would get; none follows here.
    if (declared !== undefined && this.method !== 'HEAD' && Number(declared) > this.limits.maxResponseBytes) {
      this.fail(this.tooLarge(`declares ${declared} bytes`));
      return;
    }
    if (this.followRedirects && redirectStatuses.has(status) && normalised.location !== undefined) {
      // The body of a redirect to follow is read (to keep the connection) and thrown away.
      this.discardBody = true;
      return;
    }
    const encoding = normalised['content-encoding'];
    if (encoding === undefined || this.method === 'HEAD' || status === 204 || status === 304) return;
    const coding = encoding.trim().toLowerCase();
    if (coding === 'gzip' || coding === 'x-gzip') this.useDecoder(createGunzip(zlibOptions));
    else if (coding === 'br') this.useDecoder(createBrotliDecompress(brotliOptions));
    else if (coding === 'deflate') this.deflatePending = true;
    // Anything else (identity, or a coding we did not ask for) is handed back as it came.
    else return;
    delete normalised['content-encoding'];
    delete normalised['content-length'];
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.settled) return;
    this.rawBytes += chunk.length;
    if (this.rawBytes > this.limits.maxResponseBytes) {
      this.fail(this.tooLarge('raw'));
      return;
    }
    if (this.discardBody) return;
    if (this.deflatePending) {
      this.deflatePending = false;
      // "deflate" is meant to be zlib-wrapped, but some servers send raw deflate: a zlib
      // header has compression method 8 in its low nibble.
      this.useDecoder((chunk[0]! & 0x0f) === 8 ? createInflate(zlibOptions) : createInflateRaw(zlibOptions));
    }
    if (this.decoder !== undefined) {
      this.decoder.write(chunk);
      return;
    }
    this.chunks.push(chunk);
    this.bodyBytes += chunk.length;
  }

  onResponseEnd(): void {
    if (this.settled) return;
    if (this.decoder !== undefined) this.decoder.end();
    else queueMicrotask(() => setImmediate(completeExchange, this));
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, error: Error): void {
    if (this.settled) return;
    this.fail(classifyNetworkError(error, this.method, this.url, this.phase));
  }

  onTimer(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    if (this.settled) return;
    // A timer can fire a fraction of a millisecond early by performance.now().
    const now = performance.now() + 1;
    if (now >= this.totalDeadline) {
      this.fail(this.timeout(this.phase, this.limits.totalTimeoutMs, 'total'));
    } else if (this.phase === 'connect' && now >= this.connectDeadline) {
      this.fail(this.timeout('connect', this.limits.connectTimeoutMs, 'connect'));
    } else if (this.phase === 'headers' && now >= this.headersDeadline) {
      this.fail(this.timeout('headers', this.limits.headersTimeoutMs, 'headers'));
    } else {
      this.schedule(now - 1);
    }
  }

  private schedule(now: number): void {
    let at = this.totalDeadline;
    if (this.phase === 'connect' && this.connectDeadline < at) at = this.connectDeadline;
    if (this.phase === 'headers' && this.headersDeadline < at) at = this.headersDeadline;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerAt = at;
    // setTimeout turns a delay above 2^31 - 1 ms into 1 ms; deadlines are far below it, but clamp anyway.
    this.timer = setTimeout(onExchangeTimer, Math.min(2_147_483_647, Math.max(0, Math.ceil(at - now))), this);
  }

  private useDecoder(decoder: Transform): void {
    this.decoder = decoder;
    decoder.on('data', (chunk: Buffer) => {
      if (this.settled) return;
      this.bodyBytes += chunk.length;
      if (this.bodyBytes > this.limits.maxResponseBytes) {
        this.fail(this.tooLarge('decompressed'));
        return;
      }
      this.chunks.push(chunk);
    });
    decoder.on('end', () => {
      if (!this.settled) this.complete();
    });
    decoder.on('error', (error: Error) => {
      if (this.settled) return;
      this.fail(
        new PatchbayError(
          'PB_HTTP_MALFORMED_BODY',
          `${describeTarget(this.method, this.url)} answered ${this.status} with a body that does not decode as its content-encoding (${(error as NodeJS.ErrnoException).code ?? error.name})`,
          { cause: error },
        ),
      );
    });
  }

  /** Completes the exchange unless a failure settled it first. */
  completeIfPending(): void {
    if (!this.settled) this.complete();
  }

  private complete(): void {
    const chunks = this.chunks;
    const body = chunks.length === 0 ? emptyBody : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.bodyBytes);
    this.settle();
    this.resolve({
      status: this.status,
      headers: this.headers,
      body,
      url: this.url,
      durationMs: this.clock.now() - this.startedAtMs,
    });
  }

  private fail(error: unknown): void {
    if (this.settled) return;
    this.failure = error;
    this.settle();
    if (this.decoder !== undefined) this.decoder.destroy();
    this.chunks = [];
    // Aborting destroys the socket, so a body still streaming in stops here.
    if (this.controller !== undefined && !this.controller.aborted) {
      this.controller.abort(error instanceof Error ? error : new Error('aborted'));
    }
    this.reject(error);
  }

  private settle(): void {
    this.settled = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.onAbort !== undefined) this.signal?.removeEventListener('abort', this.onAbort);
  }

  private timeout(phase: CallPhase, ms: number, which: 'connect' | 'headers' | 'total'): PatchbayError {
    const waiting = phase === 'connect' ? 'waiting for a connection' : phase === 'headers' ? 'waiting for the response headers' : 'reading the body';
    return new PatchbayError(
      'PB_HTTP_TIMEOUT',
      `${describeTarget(this.method, this.url)} timed out in the ${phase} phase, ${waiting} (${which} timeout ${ms} ms)`,
    );
  }

  private tooLarge(what: string): PatchbayError {
    return new PatchbayError(
      'PB_HTTP_RESPONSE_TOO_LARGE',
      `${describeTarget(this.method, this.url)} answered ${this.status} with a body over ${this.limits.maxResponseBytes} bytes (${what}); it was not read further`,
    );
  }
}
