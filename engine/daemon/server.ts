import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { PatchbayError } from '../diag/errors.js';
import { sendJson } from '../lib/http-server.js';
import { silentLogger, type Logger } from '../lib/log.js';
import type { WebhookIngress } from '../triggers/ingress.js';

/**
 * The daemon's one HTTP(S) listener and its routes:
 *
 * - `POST /hooks/<integration>`: webhook ingress (authenticated by each provider's signature);
 * - `/admin/v1/…` and `/metrics`: the admin handler (authenticated by token or JWT);
 * - `GET /healthz` (the process answers) and `GET /readyz` (ready to accept events): no
 *   authentication, and nothing in them but a status word.
 *
 * The server's own time limits are what protect it from slow clients: headers must arrive within
 * `headersTimeoutMs` and the whole request within `requestTimeoutMs`, checked every second, so a
 * slow-loris client holds one socket for seconds, not forever, and never a worker.
 */

export interface DaemonServerOptions {
  readonly ingress: WebhookIngress;
  /** Handles `/admin/v1/…` and `/metrics`; `path` is the request target (path and query). */
  readonly admin?: ((req: IncomingMessage, res: ServerResponse, path: string) => Promise<void>) | undefined;
  /** Whether the daemon accepts events now (store open, revision applied, not draining). */
  readonly ready: () => boolean;
  /** PEM certificate chain and key: serve HTTPS instead of HTTP. */
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer } | undefined;
  /** @default 10_000 */
  readonly headersTimeoutMs?: number;
  /** @default 30_000 */
  readonly requestTimeoutMs?: number;
  /** @default 5_000 */
  readonly keepAliveTimeoutMs?: number;
  /** Largest webhook body: a `Expect: 100-continue` request declaring more is refused before its body is sent. @default 1 MiB */
  readonly maxBodyBytes?: number;
  /** Open connections at most; more are refused by the kernel's backlog. @default 4096 */
  readonly maxConnections?: number;
  readonly logger?: Logger;
}

/** A started listener. */
export interface DaemonServer {
  readonly server: Server;
  /** Listens on `port` (0: any free port) and `host`; resolves with the address bound. Rejects with PB_DAEMON_LISTEN. */
  listen(port: number, host: string): Promise<AddressInfo>;
  /**
   * Stops listening, lets requests in flight finish for up to `graceMs`, then closes every
   * connection left.
   */
  close(graceMs?: number): Promise<void>;
}

/** Creates the daemon's listener (see the module comment); nothing is bound until `listen`. */
export function createDaemonServer(options: DaemonServerOptions): DaemonServer {
  const logger = options.logger ?? silentLogger;
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    route(options, req, res).catch((error: unknown) => {
      logger.log('error', 'request failed', { error: error instanceof Error ? error.message : String(error) });
      if (!res.headersSent) sendJson(res, 500, { error: { code: 'PB_INTERNAL', message: 'internal error' } });
      else res.destroy();
    });
  };
  const serverOptions = {
    headersTimeout: options.headersTimeoutMs ?? 10_000,
    requestTimeout: options.requestTimeoutMs ?? 30_000,
    keepAliveTimeout: options.keepAliveTimeoutMs ?? 5_000,
    // Node checks the two timeouts above at this interval; its default (30 s) would let a
    // slow-loris client keep a socket for half a minute past its limit.
    connectionsCheckingInterval: 1_000,
  };
  const server: Server = options.tls === undefined
    ? createHttpServer(serverOptions, handler)
    : // A client that never finishes its TLS handshake is dropped as soon as a slow request would be.
      (createHttpsServer({ ...serverOptions, cert: options.tls.cert, key: options.tls.key, handshakeTimeout: serverOptions.headersTimeout }, handler) as unknown as Server);
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    // Refuse before "100 Continue", or the sender starts uploading a body that will be refused.
    const declared = Number(req.headers['content-length']);
    if ((req.url ?? '').startsWith('/hooks/') && Number.isFinite(declared) && declared > maxBodyBytes) {
      res.setHeader('connection', 'close');
      sendJson(res, 413, { error: { code: 'PB_WEBHOOK_TOO_LARGE', message: `the body is larger than the limit of ${maxBodyBytes} bytes` } });
      return;
    }
    res.writeContinue();
    handler(req, res);
  });
  server.maxConnections = options.maxConnections ?? 4096;
  // Node's header and request limits start with a request's first byte: a client that connects
  // (and finishes its TLS handshake) and then sends nothing would hold its socket forever. Until
  // a request arrives, a socket idle for the header limit is closed; keep-alive idles between
  // requests are Node's keepAliveTimeout.
  const idleMs = serverOptions.headersTimeout;
  const watchIdle = (socket: Socket): void => {
    socket.setTimeout(idleMs, () => socket.destroy());
  };
  server.on(options.tls === undefined ? 'connection' : 'secureConnection', watchIdle);
  server.on('request', (req: IncomingMessage) => {
    // The request's own limits (headersTimeout, requestTimeout) take over from here.
    req.socket.setTimeout(0);
  });
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    // Malformed requests and timed-out ones: answer when the socket can still take it.
    const status = error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : error.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    if (socket.writable && !socket.writableEnded) {
      // Ended, then destroyed shortly after: a client still sending (a slow-loris) would
      // otherwise keep the half-closed socket open.
      socket.end(`HTTP/1.1 ${status} ${status === 408 ? 'Request Timeout' : status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      setTimeout(() => socket.destroy(), 500).unref();
    } else {
      socket.destroy();
    }
    logger.log('debug', 'client error', { code: error.code ?? 'unknown', status });
  });

  return {
    server,
    listen: (port, host) =>
      new Promise((resolve, reject) => {
        const onError = (error: NodeJS.ErrnoException): void => {
          reject(new PatchbayError('PB_DAEMON_LISTEN', `cannot listen on ${host}:${port}: ${error.code ?? error.message}`, { cause: error }));
        };
        server.once('error', onError);
        server.listen(port, host, () => {
          server.off('error', onError);
          resolve(server.address() as AddressInfo);
        });
      }),
    close: async (graceMs = 2_000) => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs);
      });
      await Promise.race([closed, grace]);
      clearTimeout(timer);
      server.closeAllConnections();
      await closed;
    },
  };
}

async function route(options: DaemonServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const target = req.url ?? '/';
  const queryAt = target.indexOf('?');
  const path = queryAt === -1 ? target : target.slice(0, queryAt);
  if (path.startsWith('/hooks/')) {
    const rest = path.slice('/hooks/'.length);
    const segment = rest.endsWith('/') ? rest.slice(0, -1) : rest;
    if (segment !== '' && !segment.includes('/')) {
      await options.ingress.handle(req, res, segment);
      return;
    }
  }
  if (path === '/healthz' || path === '/readyz') {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      sendJson(res, 405, { error: { code: 'PB_ADMIN_METHOD', message: `${req.method ?? ''} is not allowed here` } });
      return;
    }
    if (path === '/healthz') sendJson(res, 200, { status: 'ok' });
    else if (options.ready()) sendJson(res, 200, { status: 'ready' });
    else sendJson(res, 503, { status: 'unavailable' });
    return;
  }
  if ((path === '/metrics' || path === '/admin/v1' || path.startsWith('/admin/v1/')) && options.admin !== undefined) {
    await options.admin(req, res, target);
    return;
  }
  // Drain what the client sent so the connection can be reused, without keeping it.
  req.resume();
  sendJson(res, 404, { error: { code: path.startsWith('/hooks/') ? 'PB_WEBHOOK_UNKNOWN_INTEGRATION' : 'PB_ADMIN_NOT_FOUND', message: 'no such route' } });
}
