import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maxRetryAfterMs, parseRateLimitReset, parseRetryAfter } from '../../engine/http/classify.js';
import { HttpClient } from '../../engine/http/client.js';
import { ManualClock } from '../../engine/lib/clock.js';
import { rejection } from '../support/errors.js';

describe('retry delays a server asks for', () => {
  const clock = new ManualClock(Date.UTC(2026, 10, 24, 12, 0, 0));

  it('are read as given when reasonable', () => {
    expect(parseRetryAfter('7', clock)).toBe(7000);
    expect(parseRetryAfter('Tue, 24 Nov 2026 12:00:30 GMT', clock)).toBe(30_000);
    expect(parseRateLimitReset(String(Date.UTC(2026, 10, 24, 12, 1, 0) / 1000), clock)).toBe(60_000);
  });

  it('are capped at one day, so an absurd answer can neither overflow a timer nor park work for years', () => {
    for (const value of ['315360000', '99999999999999999999999', 'Fri, 31 Dec 9999 23:59:59 GMT']) {
      expect(parseRetryAfter(value, clock)).toBe(maxRetryAfterMs);
    }
    expect(parseRateLimitReset('99999999999999', clock)).toBe(maxRetryAfterMs);
    expect(maxRetryAfterMs).toBe(24 * 60 * 60 * 1000);
  });
});

describe('limits of the client itself', () => {
  it('refuses timeouts above 15 minutes instead of letting a timer overflow to 1 ms', () => {
    expect(() => new HttpClient({ totalTimeoutMs: 99_999 * 86_400_000 })).toThrow(/at most 900000/);
  });

  // A raw TCP server, so the headers can be larger than any HTTP server library would send.
  let server: Server;
  let port = 0;
  beforeAll(async () => {
    server = createServer((socket) => {
      // The client hangs up as soon as the headers overflow; that reset is expected here.
      socket.on('error', () => undefined);
      socket.once('data', () => {
        socket.end(`HTTP/1.1 200 OK\r\nx-filler: ${'a'.repeat(100_000)}\r\ncontent-length: 0\r\n\r\n`);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('treats oversized response headers as terminal, not as a network blip to retry', async () => {
    const client = new HttpClient({ allowHttpHosts: ['127.0.0.1'], addressPolicy: { allow: ['127.0.0.1'] } });
    try {
      const error = await rejection(client.send({ method: 'GET', url: new URL(`http://127.0.0.1:${port}/`), headers: {} }));
      expect(error.code).toBe('PB_HTTP_RESPONSE_TOO_LARGE');
      expect(error.retry).toBe('terminal');
    } finally {
      await client.close();
    }
  });
});
