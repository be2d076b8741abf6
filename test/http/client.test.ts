import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PatchbayError } from '../../engine/diag/errors.js';
import { HttpClient, type HttpClientOptions } from '../../engine/http/client.js';
import {
  bodyExcerpt,
  classifyResponse,
  parseJsonBody,
  parseRateLimitReset,
  parseRetryAfter,
} from '../../engine/http/classify.js';
import type { InboundResponse, OutboundRequest } from '../../engine/http/request.js';
import { ManualClock } from '../../engine/lib/clock.js';
import { MemoryLogger } from '../../engine/lib/log.js';
import { rejection } from '../support/errors.js';

// ---------------------------------------------------------------------------------------------
// A real node:http server on 127.0.0.1:0 that plays the provider. Each test installs its route;
// the server records what it received.

interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  socket: Socket;
}

type Route = (req: IncomingMessage, res: ServerResponse, body: string) => void;

class LocalServer {
  readonly received: Received[] = [];
  readonly sockets = new Set<Socket>();
  connections = 0;
  route: Route = (_req, res) => res.end('ok');
  private server: Server | undefined;

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        const body = Buffer.concat(parts).toString('utf8');
        this.received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, socket: req.socket });
        this.route(req, res, body);
      });
    });
    this.server.on('connection', (socket: Socket) => {
      this.connections += 1;
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return this;
  }

  get port(): number {
    return (this.server!.address() as AddressInfo).port;
  }

  url(path: string): URL {
    return new URL(`http://127.0.0.1:${this.port}${path}`);
  }

  reset(): void {
    this.received.length = 0;
    this.connections = 0;
    this.route = (_req, res) => res.end('ok');
    for (const socket of this.sockets) socket.destroy();
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }
}

const local = { allowHttpHosts: ['127.0.0.1'], addressPolicy: { allow: ['127.0.0.1/32'] } } satisfies HttpClientOptions;

const get = (url: URL, headers: Record<string, string> = {}): OutboundRequest => ({ method: 'GET', url, headers });

// A fake key assembled at run time, so no credential-shaped literal is in the repository.
const fakeStripeKey = () => 'sk_' + 'live_' + randomBytes(16).toString('hex');

let server: LocalServer;
const clients: HttpClient[] = [];
function client(options: HttpClientOptions = {}): HttpClient {
  const made = new HttpClient({ ...local, ...options });
  clients.push(made);
  return made;
}

beforeAll(async () => {
  server = await new LocalServer().start();
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => undefined)));
  server.reset();
});
afterAll(async () => {
  await server.stop();
});

// ---------------------------------------------------------------------------------------------

describe('HttpClient: a plain exchange', () => {
  it('sends method, headers and body, asks for compression, and returns status, headers and body', async () => {
    server.route = (_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      res.setHeader('x-multi', ['one', 'two']);
      res.end('{"ok":true}');
    };
    const response = await client().send({
      method: 'POST',
      url: server.url('/v1/things'),
      headers: { 'content-type': 'application/json', 'x-trace': 'abc' },
      body: '{"name":"x"}',
    });
    expect(response.status).toBe(200);
    expect(parseJsonBody(response)).toEqual({ ok: true });
    expect(response.headers['content-type']).toBe('application/json');
    expect(response.headers['x-multi']).toBe('one, two');
    expect(response.headers['set-cookie']).toBeUndefined();
    expect(response.url.href).toBe(server.url('/v1/things').href);
    const [seen] = server.received;
    expect(seen?.method).toBe('POST');
    expect(seen?.url).toBe('/v1/things');
    expect(seen?.body).toBe('{"name":"x"}');
    expect(seen?.headers['x-trace']).toBe('abc');
    expect(seen?.headers['accept-encoding']).toBe('gzip, deflate, br');
  });

  it("keeps the request's own accept-encoding", async () => {
    await client().send(get(server.url('/'), { 'accept-encoding': 'identity' }));
    expect(server.received[0]?.headers['accept-encoding']).toBe('identity');
  });

  it('reuses one keep-alive connection for sequential calls', async () => {
    const c = client();
    for (let i = 0; i < 5; i += 1) {
      const response = await c.send(get(server.url(`/n/${i}`)));
      expect(response.status).toBe(200);
    }
    expect(server.received).toHaveLength(5);
    expect(server.connections).toBe(1);
    expect(new Set(server.received.map((r) => r.socket)).size).toBe(1);
  });

  it('measures durationMs with the injected clock', async () => {
    const clock = new ManualClock();
    server.route = (_req, res) => {
      clock.advance(1234);
      res.end('ok');
    };
    const response = await client({ clock }).send(get(server.url('/')));
    expect(response.durationMs).toBe(1234);
  });
});

describe('HttpClient: decompression', () => {
  const payload = JSON.stringify({ items: Array.from({ length: 200 }, (_, i) => ({ id: i, name: `item ${i}` })) });
  const encodings: [string, (b: Buffer) => Buffer][] = [
    ['gzip', gzipSync],
    ['br', brotliCompressSync],
    ['deflate', deflateSync],
    ['deflate', deflateRawSync],
  ];
  for (const [encoding, compress] of encodings) {
    it(`decodes ${encoding} (${compress.name}) transparently and drops the encoding headers`, async () => {
      const compressed = compress(Buffer.from(payload));
      expect(compressed.length).toBeLessThan(payload.length / 2);
      server.route = (_req, res) => {
        res.writeHead(200, { 'content-encoding': encoding, 'content-length': compressed.length, 'content-type': 'application/json' });
        res.end(compressed);
      };
      const response = await client().send(get(server.url('/')));
      expect(Buffer.from(response.body).toString('utf8')).toBe(payload);
      expect(response.headers['content-encoding']).toBeUndefined();
      expect(response.headers['content-length']).toBeUndefined();
    });
  }

  it('refuses a zip bomb: the limit applies to the decompressed bytes', async () => {
    const bomb = gzipSync(Buffer.alloc(20 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(100_000);
    server.route = (_req, res) => {
      res.writeHead(200, { 'content-encoding': 'gzip' });
      res.end(bomb);
    };
    const error = await rejection(client({ maxResponseBytes: 1024 * 1024 }).send(get(server.url('/'))));
    expect(error.code).toBe('PB_HTTP_RESPONSE_TOO_LARGE');
    expect(error.message).toContain('decompressed');
    expect(error.retry).toBe('terminal');
  });

  it('reports a body that does not decode as its content-encoding as malformed', async () => {
    server.route = (_req, res) => {
      res.writeHead(200, { 'content-encoding': 'gzip' });
      res.end('this is not gzip at all');
    };
    const error = await rejection(client().send(get(server.url('/'))));
    expect(error.code).toBe('PB_HTTP_MALFORMED_BODY');
  });
});

describe('HttpClient: status classification', () => {
  const clock = new ManualClock(Date.UTC(2026, 2, 1, 12, 0, 0));

  async function answer(status: number, headers: Record<string, string> = {}, body = ''): Promise<InboundResponse> {
    server.route = (_req, res) => {
      res.writeHead(status, headers);
      res.end(body);
    };
    return client({ clock }).send(get(server.url('/v1/charges?key=abc')));
  }

  it('429 with Retry-After in seconds is rate limited, retry after that many ms', async () => {
    const error = classifyResponse(await answer(429, { 'retry-after': '7' }), { method: 'GET', clock });
    expect(error?.code).toBe('PB_HTTP_RATE_LIMITED');
    expect(error?.retry).toBe('after');
    expect(error?.retryAfterMs).toBe(7000);
  });

  it('429 with Retry-After as an HTTP date is measured against the injected clock', async () => {
    const at = new Date(clock.now() + 90_000).toUTCString();
    const error = classifyResponse(await answer(429, { 'retry-after': at }), { method: 'GET', clock });
    expect(error?.code).toBe('PB_HTTP_RATE_LIMITED');
    expect(error?.retryAfterMs).toBe(90_000);
  });

  it('429 without or with an invalid Retry-After is still "after", with no delay', async () => {
    for (const headers of [{}, { 'retry-after': 'soon' }] as Record<string, string>[]) {
      const error = classifyResponse(await answer(429, headers), { clock });
      expect(error?.code).toBe('PB_HTTP_RATE_LIMITED');
      expect(error?.retry).toBe('after');
      expect(error?.retryAfterMs).toBeUndefined();
    }
  });

  it("429 without Retry-After reads the provider's reset header when told its name", async () => {
    const reset = String(Math.floor(clock.now() / 1000) + 30);
    const error = classifyResponse(await answer(429, { 'x-ratelimit-reset': reset }), { clock, resetHeader: 'X-RateLimit-Reset' });
    expect(error?.retryAfterMs).toBe(30_000);
  });

  it('500 is a transient server error', async () => {
    const error = classifyResponse(await answer(500, {}, 'boom'), { method: 'GET', clock });
    expect(error?.code).toBe('PB_HTTP_SERVER_ERROR');
    expect(error?.retry).toBe('transient');
    expect(error?.message).toContain(`GET http://127.0.0.1:${server.port}/v1/charges answered 500`);
  });

  it('503 with Retry-After is unavailable-after; without it, a transient server error', async () => {
    const withDelay = classifyResponse(await answer(503, { 'retry-after': '120' }), { clock });
    expect(withDelay?.code).toBe('PB_HTTP_UNAVAILABLE');
    expect(withDelay?.retry).toBe('after');
    expect(withDelay?.retryAfterMs).toBe(120_000);
    const without = classifyResponse(await answer(503), { clock });
    expect(without?.code).toBe('PB_HTTP_SERVER_ERROR');
    expect(without?.retry).toBe('transient');
    expect(without?.retryAfterMs).toBeUndefined();
  });

  it('4xx is terminal, 408 is a transient timeout, 2xx and 304 are not errors', async () => {
    const notFound = classifyResponse(await answer(404, {}, '{"error":"no such charge"}'));
    expect(notFound?.code).toBe('PB_HTTP_CLIENT_ERROR');
    expect(notFound?.retry).toBe('terminal');
    expect(notFound?.message).toContain('no such charge');
    const slow = classifyResponse(await answer(408));
    expect(slow?.code).toBe('PB_HTTP_TIMEOUT');
    expect(slow?.retry).toBe('transient');
    expect(classifyResponse(await answer(201))).toBeUndefined();
    expect(classifyResponse(await answer(304))).toBeUndefined();
  });

  it('masks credentials and query values a server echoes in an error body', async () => {
    const key = fakeStripeKey();
    const response = await answer(401, {}, `{"error":"invalid key ${key}","request":"/v1/charges?key=abc"}\u001b[31m`);
    const error = classifyResponse(response);
    expect(error?.code).toBe('PB_HTTP_CLIENT_ERROR');
    expect(error?.message).not.toContain(key);
    expect(error?.message).toContain('sk_l…[redacted]');
    expect(error?.message).not.toContain('key=abc');
    expect(error?.message).not.toContain('\u001b');
    expect(error?.message).toContain('\\u001b');
  });
});

describe('HttpClient: failures in transit', () => {
  it('a connection reset before the answer is a transient network failure', async () => {
    server.route = (req) => req.socket.destroy();
    const error = await rejection(client().send(get(server.url('/'))));
    expect(error.code).toBe('PB_HTTP_NETWORK');
    expect(error.retry).toBe('transient');
  });

  it('a socket closed in the middle of the body is a network failure in the body phase', async () => {
    server.route = (req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write('x'.repeat(100), () => setTimeout(() => req.socket.destroy(), 20));
    };
    const error = await rejection(client().send(get(server.url('/'))));
    expect(error.code).toBe('PB_HTTP_NETWORK');
    expect(error.message).toContain('in the middle of the answer');
  });

  it('a refused connection is a network failure', async () => {
    const closed = await new LocalServer().start();
    const url = closed.url('/');
    await closed.stop();
    const error = await rejection(client().send(get(url)));
    expect(error.code).toBe('PB_HTTP_NETWORK');
    expect(error.message).toContain('while connecting');
  });

  it('headers that never come time out in the headers phase (per-call value overrides the default)', async () => {
    server.route = () => undefined; // never answers
    const started = performance.now();
    const error = await rejection(client().send(get(server.url('/')), { headersTimeoutMs: 200 }));
    const elapsed = performance.now() - started;
    expect(error.code).toBe('PB_HTTP_TIMEOUT');
    expect(error.retry).toBe('transient');
    expect(error.message).toContain('headers phase');
    expect(elapsed).toBeGreaterThanOrEqual(190);
    expect(elapsed).toBeLessThan(1000);
  });

  it('a body that stalls after its first bytes times out in the body phase', async () => {
    server.route = (_req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write('first bytes');
    };
    const started = performance.now();
    const error = await rejection(client({ totalTimeoutMs: 300 }).send(get(server.url('/'))));
    const elapsed = performance.now() - started;
    expect(error.code).toBe('PB_HTTP_TIMEOUT');
    expect(error.message).toContain('body phase');
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(1000);
  });

  it('a connection that cannot be made in time times out in the connect phase', async () => {
    // The resolver takes longer than the connect timeout, so no socket is ever opened.
    const lookup = (name: string) =>
      new Promise<{ address: string; family: number }[]>((resolve) => setTimeout(() => resolve([{ address: '127.0.0.1', family: 4 }]), 1500 + name.length));
    const error = await rejection(
      client({ lookup, allowHttpHosts: ['slow.test'] }).send(get(new URL(`http://slow.test:${server.port}/`)), { connectTimeoutMs: 150 }),
    );
    expect(error.code).toBe('PB_HTTP_TIMEOUT');
    expect(error.message).toContain('connect phase');
    expect(server.received).toHaveLength(0);
  });

  it('a request undici cannot send (a header value with a line break) is a terminal client error, sent nowhere', async () => {
    const error = await rejection(client().send(get(server.url('/'), { 'x-note': 'one\ntwo' })));
    expect(error.code).toBe('PB_HTTP_CLIENT_ERROR');
    expect(error.retry).toBe('terminal');
    expect(error.message).toContain('invalid x-note header');
    expect(error.message).not.toContain('two');
    expect(server.received).toHaveLength(0);
  });

  it('an aborted signal rejects with its reason', async () => {
    server.route = () => undefined;
    const controller = new AbortController();
    const pending = client().send(get(server.url('/')), { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('caller gave up')), 50);
    await expect(pending).rejects.toThrow('caller gave up');
  });
});

describe('HttpClient: response size', () => {
  const fiftyMiB = 50 * 1024 * 1024;

  it('refuses a 50 MB streamed answer without buffering it: the server sees the socket close early', async () => {
    let written = 0;
    let finished = false;
    const closedEarly = new Promise<boolean>((resolve) => {
      server.route = (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream' }); // chunked: no length announced
        const chunk = Buffer.alloc(64 * 1024, 120);
        const pump = () => {
          while (written < fiftyMiB) {
            written += chunk.length;
            if (!res.write(chunk)) {
              res.once('drain', pump);
              return;
            }
          }
          finished = true;
          res.end();
        };
        res.on('close', () => resolve(!finished));
        pump();
      };
    });
    const error = await rejection(client().send(get(server.url('/big'))));
    expect(error.code).toBe('PB_HTTP_RESPONSE_TOO_LARGE');
    expect(error.message).toContain('raw');
    expect(await closedEarly).toBe(true);
    // The server could push at most the limit plus what the socket buffers held.
    expect(written).toBeLessThan(fiftyMiB / 2);
  });

  it('refuses an answer whose content-length is over the limit before reading its body', async () => {
    let written = 0;
    const closed = new Promise<void>((resolve) => {
      server.route = (_req, res) => {
        res.writeHead(200, { 'content-length': String(fiftyMiB) });
        const chunk = Buffer.alloc(64 * 1024);
        const pump = () => {
          while (written < fiftyMiB && !res.destroyed) {
            written += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
        };
        res.on('close', () => resolve());
        pump();
      };
    });
    const error = await rejection(client().send(get(server.url('/big'))));
    expect(error.code).toBe('PB_HTTP_RESPONSE_TOO_LARGE');
    expect(error.message).toContain(`declares ${fiftyMiB} bytes`);
    await closed;
    expect(written).toBeLessThan(fiftyMiB / 2);
  });

  it('accepts a HEAD answer that announces a large body', async () => {
    server.route = (_req, res) => {
      res.writeHead(200, { 'content-length': String(fiftyMiB) });
      res.end();
    };
    const response = await client().send({ method: 'HEAD', url: server.url('/big'), headers: {} });
    expect(response.status).toBe(200);
    expect(response.headers['content-length']).toBe(String(fiftyMiB));
    expect(response.body.byteLength).toBe(0);
  });

  it('accepts a body exactly at the limit', async () => {
    server.route = (_req, res) => res.end(Buffer.alloc(4096, 97));
    const response = await client({ maxResponseBytes: 4096 }).send(get(server.url('/')));
    expect(response.body.byteLength).toBe(4096);
    const error = await rejection(client({ maxResponseBytes: 4095 }).send(get(server.url('/'))));
    expect(error.code).toBe('PB_HTTP_RESPONSE_TOO_LARGE');
  });
});

describe('parseJsonBody', () => {
  it('refuses invalid JSON in a 200 with a short, masked, escaped excerpt', async () => {
    const key = fakeStripeKey();
    server.route = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`<html>\n<body>oops ${key}\u0007 ${'z'.repeat(5000)}</body></html>`);
    };
    const response = await client().send(get(server.url('/v1/data?key=abcdef')));
    let thrown: unknown;
    try {
      parseJsonBody(response, { method: 'GET' });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(PatchbayError);
    const error = thrown as PatchbayError;
    expect(error.code).toBe('PB_HTTP_MALFORMED_BODY');
    expect(error.retry).toBe('terminal');
    expect(error.message).toContain('application/json');
    expect(error.message).toContain('<html>');
    expect(error.message).not.toContain(key);
    expect(error.message).toContain('sk_l…[redacted]');
    expect(error.message).toContain('\\u0007');
    expect(error.message).not.toContain('abcdef');
    expect(error.message.length).toBeLessThan(400);
  });

  it('returns undefined for an empty body', () => {
    const empty: InboundResponse = { status: 204, headers: {}, body: new Uint8Array(0), url: new URL('https://x.test/'), durationMs: 0 };
    expect(parseJsonBody(empty)).toBeUndefined();
  });
});

describe('HttpClient: transport security', () => {
  it('refuses plain http unless the host is allowed, and sends nothing', async () => {
    const error = await rejection(new HttpClient({ addressPolicy: local.addressPolicy }).send(get(server.url('/'))));
    expect(error.code).toBe('PB_HTTP_INSECURE');
    expect(error.retry).toBe('terminal');
    expect(server.connections).toBe(0);
    expect((await client().send(get(server.url('/')))).status).toBe(200);
  });

  it("refuses a host outside the call's allowed hosts, and sends nothing", async () => {
    const error = await rejection(client().send(get(server.url('/')), { allowedHosts: ['api.example.com'] }));
    expect(error.code).toBe('PB_HTTP_HOST_NOT_ALLOWED');
    expect(server.connections).toBe(0);
    const hook = await rejection(client({ isHostAllowed: () => false }).send(get(server.url('/'))));
    expect(hook.code).toBe('PB_HTTP_HOST_NOT_ALLOWED');
    expect(server.connections).toBe(0);
    const ok = await client().send(get(server.url('/')), { allowedHosts: [`127.0.0.1:${server.port}`] });
    expect(ok.status).toBe(200);
  });
});

describe('HttpClient: redirects', () => {
  let other: LocalServer;
  beforeAll(async () => {
    other = await new LocalServer().start();
  });
  afterEach(() => other.reset());
  afterAll(async () => {
    await other.stop();
  });

  const redirectTo = (location: string, status = 302) => {
    server.route = (req, res) => {
      if (req.url?.startsWith('/final')) return void res.end('landed');
      res.writeHead(status, { location });
      res.end('moved');
    };
  };
  const credentials = { authorization: 'Bearer t0k3n', 'x-api-key': 'k3y', cookie: 'sid=1', 'x-trace': 'keep-me' };

  it('does not follow by default: the 3xx comes back and classifies as a redirect', async () => {
    redirectTo('/final');
    const response = await client().send(get(server.url('/start')));
    expect(response.status).toBe(302);
    const error = classifyResponse(response, { method: 'GET' });
    expect(error?.code).toBe('PB_HTTP_REDIRECT');
    expect(server.received).toHaveLength(1);
  });

  it('follows a same-origin redirect, keeping credential headers', async () => {
    redirectTo('/final?x=1');
    const response = await client({ maxRedirects: 2 }).send(get(server.url('/start'), credentials));
    expect(Buffer.from(response.body).toString()).toBe('landed');
    expect(response.url.pathname).toBe('/final');
    expect(server.received.map((r) => r.url)).toEqual(['/start', '/final?x=1']);
    expect(server.received[1]?.headers.authorization).toBe('Bearer t0k3n');
  });

  it('refuses a redirect to another origin that is not allowed, and sends nothing there', async () => {
    redirectTo(other.url('/final').href);
    const error = await rejection(client({ maxRedirects: 2 }).send(get(server.url('/start'), credentials)));
    expect(error.code).toBe('PB_HTTP_REDIRECT');
    expect(error.retry).toBe('terminal');
    expect(other.connections).toBe(0);
  });

  it('follows a redirect to an allowed host without forwarding credentials', async () => {
    redirectTo(other.url('/final').href, 307);
    other.route = (_req, res) => res.end('other');
    const response = await client({ maxRedirects: 2 }).send(get(server.url('/start'), credentials), {
      allowedHosts: [`127.0.0.1:${server.port}`, `127.0.0.1:${other.port}`],
    });
    expect(Buffer.from(response.body).toString()).toBe('other');
    const seen = other.received[0]!.headers;
    expect(seen.authorization).toBeUndefined();
    expect(seen['x-api-key']).toBeUndefined();
    expect(seen.cookie).toBeUndefined();
    expect(seen['x-trace']).toBe('keep-me');
  });

  it('refuses a redirect to a name that resolves to a private address, before connecting', async () => {
    const asked: string[] = [];
    const lookup = async (name: string) => {
      asked.push(name);
      return [{ address: '10.0.0.5', family: 4 }];
    };
    redirectTo('http://internal.test/admin');
    const error = await rejection(
      client({ maxRedirects: 2, lookup, allowHttpHosts: ['127.0.0.1', 'internal.test'] }).send(get(server.url('/start')), {
        allowedHosts: [`127.0.0.1:${server.port}`, 'internal.test'],
      }),
    );
    expect(error.code).toBe('PB_HTTP_REDIRECT');
    expect((error.cause as PatchbayError).code).toBe('PB_HTTP_PRIVATE_ADDRESS');
    expect(error.message).toContain('10.0.0.5');
    expect(asked).toEqual(['internal.test']);
  });

  it('refuses a redirect to a literal loopback address on another port (not allow-listed as an address)', async () => {
    redirectTo(`http://[::1]:${other.port}/final`);
    const error = await rejection(
      client({ maxRedirects: 2, allowHttpHosts: ['127.0.0.1', '::1'] }).send(get(server.url('/start')), {
        allowedHosts: [`127.0.0.1:${server.port}`, '::1'],
      }),
    );
    expect(error.code).toBe('PB_HTTP_REDIRECT');
    expect((error.cause as PatchbayError).code).toBe('PB_HTTP_PRIVATE_ADDRESS');
  });

  it('refuses a redirect to plain http on a host without the http allowance', async () => {
    redirectTo(other.url('/final').href.replace('127.0.0.1', 'localhost'));
    const error = await rejection(
      client({ maxRedirects: 2 }).send(get(server.url('/start')), { allowedHosts: [`127.0.0.1:${server.port}`, 'localhost'] }),
    );
    expect(error.code).toBe('PB_HTTP_REDIRECT');
    expect((error.cause as PatchbayError).code).toBe('PB_HTTP_INSECURE');
  });

  it('stops after maxRedirects', async () => {
    redirectTo('/loop');
    const error = await rejection(client({ maxRedirects: 3 }).send(get(server.url('/loop'))));
    expect(error.code).toBe('PB_HTTP_REDIRECT');
    expect(error.message).toContain('more than 3 redirects');
    expect(server.received).toHaveLength(4);
  });

  it('turns a POST into a GET without body on 303, and keeps it on 307', async () => {
    const post: OutboundRequest = { method: 'POST', url: server.url('/start'), headers: { 'content-type': 'text/plain' }, body: 'payload' };
    redirectTo('/final', 303);
    await client({ maxRedirects: 1 }).send(post);
    expect(server.received[1]).toMatchObject({ method: 'GET', body: '' });
    expect(server.received[1]?.headers['content-type']).toBeUndefined();
    server.received.length = 0;
    redirectTo('/final', 307);
    await client({ maxRedirects: 1 }).send(post);
    expect(server.received[1]).toMatchObject({ method: 'POST', body: 'payload' });
  });

  it('logs a followed redirect without its query string', async () => {
    redirectTo('/final?token=hidden');
    const logger = new MemoryLogger();
    await client({ maxRedirects: 1, logger }).send(get(server.url('/start?key=alsohidden')));
    expect(logger.lines).toHaveLength(1);
    expect(logger.text()).toContain('/final');
    expect(logger.text()).not.toContain('hidden');
  });
});

describe('HttpClient: no query string in any error message', () => {
  const secret = 'SECRET' + randomBytes(12).toString('hex');
  const withKey = (path: string) => new URL(`${server.url(path).href}?key=${secret}&x=1`);

  // `key=` may remain where a server echoes the URL (its values are removed): then only the
  // secret itself is checked.
  function assertClean(error: PatchbayError, echoed = false): void {
    for (let e: unknown = error; e instanceof Error; e = e.cause) {
      expect(e.message).not.toContain(secret);
      if (!echoed) expect(e.message).not.toContain('key=');
    }
  }

  it('holds for every failure the client raises', async () => {
    const errors: PatchbayError[] = [];
    const c = client({ maxRedirects: 1 });
    const routes: Route[] = [
      (req) => req.socket.destroy(),
      () => undefined,
      (_req, res) => res.end(Buffer.alloc(2048)),
      (_req, res) => {
        res.writeHead(302, { location: `/again?key=${secret}` });
        res.end();
      },
      (_req, res) => {
        res.writeHead(200, { 'content-encoding': 'gzip' });
        res.end('not gzip');
      },
    ];
    for (const route of routes) {
      server.route = route;
      errors.push(await rejection(c.send(get(withKey('/x')), { headersTimeoutMs: 150, maxResponseBytes: 1024 })));
    }
    errors.push(await rejection(new HttpClient().send(get(withKey('/x')))));
    errors.push(await rejection(c.send(get(withKey('/x')), { allowedHosts: ['elsewhere.test'] })));
    expect(errors.map((e) => e.code)).toEqual([
      'PB_HTTP_NETWORK',
      'PB_HTTP_TIMEOUT',
      'PB_HTTP_RESPONSE_TOO_LARGE',
      'PB_HTTP_REDIRECT',
      'PB_HTTP_MALFORMED_BODY',
      'PB_HTTP_INSECURE',
      'PB_HTTP_HOST_NOT_ALLOWED',
    ]);
    for (const error of errors) assertClean(error);
  });

  it('holds for classified statuses and malformed JSON', async () => {
    const c = client();
    for (const status of [302, 400, 429, 500, 503]) {
      server.route = (req, res) => {
        res.writeHead(status, { location: `/next?key=${secret}` });
        res.end(`you asked for ${req.url}`);
      };
      const error = classifyResponse(await c.send(get(withKey('/y'))), { method: 'GET' });
      expect(error).toBeInstanceOf(PatchbayError);
      if (status >= 400) expect(error!.message).toContain('you asked for /y?key=[redacted]');
      assertClean(error!, true);
    }
    server.route = (req, res) => res.end(`not json ${req.url}`);
    const response = await c.send(get(withKey('/z')));
    expect(() => parseJsonBody(response)).toThrow(PatchbayError);
    try {
      parseJsonBody(response);
    } catch (error) {
      assertClean(error as PatchbayError, true);
    }
  });
});

describe('Retry-After and rate-limit reset parsing', () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1, 0, 0, 0));

  it('reads seconds and HTTP dates, and refuses the rest', () => {
    expect(parseRetryAfter('120', clock)).toBe(120_000);
    expect(parseRetryAfter(' 0 ', clock)).toBe(0);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:01:30 GMT', clock)).toBe(90_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', clock)).toBe(0);
    for (const bad of [undefined, '', 'soon', '-5', '5 seconds', 'Thu, 99 Foo 2026']) {
      expect(parseRetryAfter(bad, clock)).toBeUndefined();
    }
  });

  it('reads epoch seconds and milliseconds, delays, durations and dates', () => {
    const nowS = clock.now() / 1000;
    expect(parseRateLimitReset(String(nowS + 42), clock)).toBe(42_000);
    expect(parseRateLimitReset(String(clock.now() + 1500), clock)).toBe(1500);
    expect(parseRateLimitReset(String(nowS - 10), clock)).toBe(0);
    expect(parseRateLimitReset('30', clock)).toBe(30_000);
    expect(parseRateLimitReset('6m0s', clock)).toBe(360_000);
    expect(parseRateLimitReset('250ms', clock)).toBe(250);
    expect(parseRateLimitReset('1h2m3.5s', clock)).toBe(3_723_500);
    expect(parseRateLimitReset('Thu, 01 Jan 2026 00:00:10 GMT', clock)).toBe(10_000);
    expect(parseRateLimitReset('later', clock)).toBeUndefined();
    expect(parseRateLimitReset(undefined, clock)).toBeUndefined();
  });

  it('bodyExcerpt trims long text and escapes control and bidi characters', () => {
    const excerpt = bodyExcerpt(Buffer.from(`a\u202eb\u0000c ${'y'.repeat(1000)}`));
    expect(excerpt).toContain('a\\u202eb\\u0000c');
    expect(excerpt.length).toBeLessThanOrEqual(201);
    expect(excerpt.endsWith('…')).toBe(true);
  });
});

describe('HttpClient: options', () => {
  it('refuses invalid limits with the option named', () => {
    expect(() => new HttpClient({ totalTimeoutMs: 0 })).toThrow(/totalTimeoutMs/);
    expect(() => new HttpClient({ maxRedirects: -1 })).toThrow(/maxRedirects/);
    expect(() => new HttpClient({ addressPolicy: { allow: ['not-an-ip'] } })).toThrow(/addressPolicy\.allow\[0\]/);
  });
});
