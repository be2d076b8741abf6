import { randomBytes } from 'node:crypto';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PatchbayError } from '../../../engine/diag/errors.js';
import { createApiKeySigner } from '../../../engine/http/auth/api-key.js';
import { createBasicSigner } from '../../../engine/http/auth/basic.js';
import { createBearerSigner } from '../../../engine/http/auth/bearer.js';
import { createSigner } from '../../../engine/http/auth/create-signer.js';
import type { Signer } from '../../../engine/http/auth/signer.js';
import { createUndiciSend } from '../../../engine/http/auth/undici-send.js';
import type { OutboundRequest } from '../../../engine/http/request.js';
import { SecretScan } from '../../support/secret-scan.js';
import { json, startServer, type LocalServer } from './local-server.js';

const scan = new SecretScan();
const agent = new Agent();
const send = createUndiciSend({ dispatcher: agent });
let server: LocalServer;

beforeAll(async () => {
  server = await startServer((_request, res) => json(res, 200, { ok: true }));
});
afterAll(async () => {
  await server.close();
  await agent.close();
  expect(scan.counts().secrets).toBeGreaterThan(4);
  scan.assertClean();
});

/** Signs a GET to the server, sends it, and returns what the server received. */
async function sendSigned(signer: Signer, path = '/v1/items?limit=10&q=a%20b') {
  const unsigned: OutboundRequest = { method: 'GET', url: new URL(path, server.origin), headers: { accept: 'application/json' } };
  const signed = await signer.sign(unsigned);
  expect(unsigned.headers).toEqual({ accept: 'application/json' });
  expect(unsigned.url.href).toBe(new URL(path, server.origin).href);
  const response = await send(signed);
  expect(response.status).toBe(200);
  const received = server.received.at(-1);
  if (received === undefined) throw new Error('the server received nothing');
  return received;
}

describe('apiKey', () => {
  it('sends the key in the named header, after the prefix', async () => {
    const key = scan.secret(randomBytes(24).toString('hex'));
    const received = await sendSigned(createApiKeySigner({ key, name: 'X-Api-Key' }));
    expect(received.headers['x-api-key']).toBe(key);
    const prefixed = await sendSigned(createApiKeySigner({ key, name: 'Authorization', prefix: 'token ' }));
    expect(prefixed.headers.authorization).toBe(`token ${key}`);
  });

  it('adds the key as a query parameter, keeping the other parameters as they were encoded', async () => {
    const key = scan.secret(`${randomBytes(16).toString('base64')}+/=`);
    const received = await sendSigned(createApiKeySigner({ key, in: 'query', name: 'api_key' }));
    expect(received.target).toBe(`/v1/items?limit=10&q=a%20b&api_key=${encodeURIComponent(key)}`);
    expect(new URL(received.target, server.origin).searchParams.get('api_key')).toBe(key);
  });

  it('replaces a parameter of the same name instead of sending it twice', async () => {
    const key = scan.secret(randomBytes(16).toString('hex'));
    const received = await sendSigned(createApiKeySigner({ key, in: 'query', name: 'key' }), '/v1?key=old&x=1');
    expect(new URL(received.target, server.origin).searchParams.getAll('key')).toEqual([key]);
  });

  it('takes in/name from the connection first, then the provider scheme', async () => {
    const key = scan.secret(randomBytes(16).toString('hex'));
    const signer = createSigner({ type: 'apiKey', in: 'header', name: 'X-Key' }, { type: 'apiKey', key, in: 'query', name: 'k' });
    const received = await sendSigned(signer, '/');
    expect(received.target).toBe(`/?k=${key}`);
    expect(received.headers['x-key']).toBeUndefined();
    const error = await scan.rejects(Promise.resolve().then(() => createSigner({ type: 'apiKey' }, { type: 'apiKey', key })));
    expect((error as PatchbayError).code).toBe('PB_AUTH_BAD_SETTINGS');
  });
});

describe('bearer', () => {
  it('sends Authorization: Bearer <token>', async () => {
    const token = scan.secret(randomBytes(24).toString('base64url'));
    const signer = createBearerSigner({ token });
    expect(signer.invalidate).toBeUndefined();
    expect((await sendSigned(signer)).headers.authorization).toBe(`Bearer ${token}`);
  });

  it('uses the scheme header and prefix (an empty prefix sends the bare token)', async () => {
    const token = scan.secret(randomBytes(24).toString('hex'));
    const signer = createSigner({ type: 'bearer', header: 'X-Shopify-Access-Token', prefix: '' }, { type: 'bearer', token });
    const received = await sendSigned(signer);
    expect(received.headers['x-shopify-access-token']).toBe(token);
    expect(received.headers.authorization).toBeUndefined();
  });
});

describe('basic', () => {
  it('sends base64 of UTF-8 "user:password" (RFC 7617)', async () => {
    const password = scan.secret(`pä:ss-${randomBytes(12).toString('hex')}`);
    const received = await sendSigned(createBasicSigner({ username: 'jürgen', password }));
    const header = received.headers.authorization ?? '';
    expect(header.startsWith('Basic ')).toBe(true);
    expect(Buffer.from(header.slice(6), 'base64').toString('utf8')).toBe(`jürgen:${password}`);
  });

  it('refuses a user name with a colon and control characters, without quoting them', async () => {
    const password = scan.secret(randomBytes(12).toString('hex'));
    for (const options of [
      { username: 'AC:123', password },
      { username: 'AC123', password: `${password}\n` },
    ]) {
      const error = await scan.rejects(Promise.resolve().then(() => createBasicSigner(options)));
      expect(error).toBeInstanceOf(PatchbayError);
      expect((error as PatchbayError).code).toBe('PB_AUTH_BAD_SETTINGS');
      expect(error.message).not.toContain('AC:123');
    }
  });
});

describe('none and mismatches', () => {
  it('leaves the request as it is for none', async () => {
    const received = await sendSigned(createSigner({ type: 'none' }, { type: 'none' }));
    expect(received.headers.authorization).toBeUndefined();
  });

  it('refuses a connection auth of another type than the scheme', async () => {
    const token = scan.secret(randomBytes(16).toString('hex'));
    const error = await scan.rejects(Promise.resolve().then(() => createSigner({ type: 'basic' }, { type: 'bearer', token })));
    expect((error as PatchbayError).code).toBe('PB_AUTH_UNSUPPORTED');
  });
});
