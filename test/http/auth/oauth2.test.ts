import { randomBytes } from 'node:crypto';
import { Agent } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { PatchbayError } from '../../../engine/diag/errors.js';
import { createTokenSigner } from '../../../engine/http/auth/bearer.js';
import { createSigner } from '../../../engine/http/auth/create-signer.js';
import { createOAuth2TokenSource, type OAuth2Options } from '../../../engine/http/auth/oauth2.js';
import type { Signer, TokenSourceContext } from '../../../engine/http/auth/signer.js';
import { createUndiciSend } from '../../../engine/http/auth/undici-send.js';
import type { OutboundRequest } from '../../../engine/http/request.js';
import { ManualClock } from '../../../engine/lib/clock.js';
import { MemoryLogger } from '../../../engine/lib/log.js';
import { SecretSet } from '../../../engine/lib/secrets.js';
import { SecretScan } from '../../support/secret-scan.js';
import { delay, json, startServer, type LocalServer, type Received } from './local-server.js';

const scan = new SecretScan();
const agent = new Agent();
const send = createUndiciSend({ dispatcher: agent });
const clientId = 'patchbay-client';
const clientSecret = scan.secret(`cs:${randomBytes(18).toString('base64')}`);

/** What the fake authorization server does; tests change it. */
interface AuthServerState {
  lifetimeS: number | undefined;
  rotate: boolean;
  /** Refresh tokens the server still accepts. */
  refreshTokens: Set<string>;
  accessTokens: Set<string>;
  /** Delay before answering a token request, so concurrent callers really overlap. */
  answerDelayMs: number;
  /** When set, token requests get this status and body instead. */
  failWith: { status: number; body: unknown; headers?: Record<string, string> } | undefined;
  tokenRequests: Received[];
}

let state: AuthServerState;
let server: LocalServer;

function issue(): string {
  return scan.secret(`at_${randomBytes(20).toString('hex')}`);
}

/** Client auth as RFC 6749 §2.3.1 has it: basic over form-encoded parts, or body fields. */
function clientOf(request: Received, form: URLSearchParams): { id: string | null; secret: string | null } {
  const header = request.headers.authorization;
  if (header?.startsWith('Basic ')) {
    const [id = '', secret = ''] = Buffer.from(header.slice(6), 'base64').toString('utf8').split(':');
    const decode = (part: string) => new URLSearchParams(`x=${part}`).get('x');
    return { id: decode(id), secret: decode(secret) };
  }
  return { id: form.get('client_id'), secret: form.get('client_secret') };
}

beforeAll(async () => {
  server = await startServer(async (request, res) => {
    if (request.target === '/api') {
      const token = request.headers.authorization?.replace(/^Bearer /, '') ?? request.headers['x-shopify-access-token'];
      return typeof token === 'string' && state.accessTokens.has(token) ? json(res, 200, { ok: true }) : json(res, 401, { error: 'unauthorized' });
    }
    state.tokenRequests.push(request);
    await delay(state.answerDelayMs);
    if (state.failWith !== undefined) return json(res, state.failWith.status, state.failWith.body, state.failWith.headers);
    const form = new URLSearchParams(request.body);
    const client = clientOf(request, form);
    if (client.id !== clientId || client.secret !== clientSecret) return json(res, 401, { error: 'invalid_client' });
    const answer: Record<string, unknown> = { access_token: issue(), token_type: 'Bearer' };
    if (state.lifetimeS !== undefined) answer.expires_in = state.lifetimeS;
    if (form.get('grant_type') === 'refresh_token') {
      const presented = form.get('refresh_token') ?? '';
      if (!state.refreshTokens.has(presented)) return json(res, 400, { error: 'invalid_grant', error_description: `refresh token ${presented} is expired or revoked` });
      if (state.rotate) {
        state.refreshTokens.delete(presented);
        const next = scan.secret(`rt_${randomBytes(20).toString('hex')}`);
        state.refreshTokens.add(next);
        answer.refresh_token = next;
      }
    } else if (form.get('grant_type') !== 'client_credentials') {
      return json(res, 400, { error: 'unsupported_grant_type' });
    }
    state.accessTokens.add(answer.access_token as string);
    json(res, 200, answer);
  });
});

beforeEach(() => {
  state = { lifetimeS: 3600, rotate: false, refreshTokens: new Set(), accessTokens: new Set(), answerDelayMs: 0, failWith: undefined, tokenRequests: [] };
});

afterAll(async () => {
  await server.close();
  await agent.close();
  expect(scan.counts().secrets).toBeGreaterThan(10);
  scan.assertClean();
});

const tokenUrl = () => new URL('/oauth/token', server.origin);
const apiRequest = (): OutboundRequest => ({ method: 'GET', url: new URL('/api', server.origin), headers: {} });

function signerFor(options: Partial<OAuth2Options>, context: TokenSourceContext = {}): Signer {
  const source = createOAuth2TokenSource(
    { tokenUrl: tokenUrl(), grant: 'clientCredentials', clientId, clientSecret, ...options },
    { send, ...context },
  );
  return createTokenSigner(source);
}

async function callApi(signer: Signer): Promise<number> {
  return (await send(await signer.sign(apiRequest()))).status;
}

describe('client credentials', () => {
  it('fetches a token with HTTP basic client auth, scopes and audience, and the API accepts it', async () => {
    const signer = signerFor({ scopes: ['read:orders', 'write:orders'], audience: 'https://api.example' }, { clock: new ManualClock() });
    expect(await callApi(signer)).toBe(200);
    const [request] = state.tokenRequests;
    const form = new URLSearchParams(request?.body);
    expect(request?.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(form.get('grant_type')).toBe('client_credentials');
    expect(form.get('scope')).toBe('read:orders write:orders');
    expect(form.get('audience')).toBe('https://api.example');
    expect(form.has('client_secret')).toBe(false);
  });

  it('sends the client in the body when told to', async () => {
    expect(await callApi(signerFor({ clientAuth: 'body' }, { clock: new ManualClock() }))).toBe(200);
    expect(state.tokenRequests[0]?.headers.authorization).toBeUndefined();
    expect(new URLSearchParams(state.tokenRequests[0]?.body).get('client_id')).toBe(clientId);
  });

  it('reuses the token before expiry and renews it 60 s ahead of it', async () => {
    const clock = new ManualClock();
    const signer = signerFor({}, { clock });
    const first = (await signer.sign(apiRequest())).headers.authorization;
    clock.advance(3600_000 - 61_000);
    expect((await signer.sign(apiRequest())).headers.authorization).toBe(first);
    expect(state.tokenRequests).toHaveLength(1);
    clock.advance(2_000);
    const second = (await signer.sign(apiRequest())).headers.authorization;
    expect(second).not.toBe(first);
    expect(state.tokenRequests).toHaveLength(2);
  });

  it('renews a short-lived token at 90 % of its life, not 60 s ahead', async () => {
    state.lifetimeS = 100;
    const clock = new ManualClock();
    const signer = signerFor({}, { clock });
    await signer.sign(apiRequest());
    clock.advance(89_000);
    await signer.sign(apiRequest());
    expect(state.tokenRequests).toHaveLength(1);
    clock.advance(2_000);
    await signer.sign(apiRequest());
    expect(state.tokenRequests).toHaveLength(2);
  });

  it('makes exactly one token request for 20 concurrent calls, then again once it expired', async () => {
    state.answerDelayMs = 50;
    const clock = new ManualClock();
    const signer = signerFor({}, { clock });
    const first = await Promise.all(Array.from({ length: 20 }, () => signer.sign(apiRequest())));
    expect(state.tokenRequests).toHaveLength(1);
    expect(new Set(first.map((r) => r.headers.authorization)).size).toBe(1);
    clock.advance(3600_000);
    const second = await Promise.all(Array.from({ length: 20 }, () => signer.sign(apiRequest())));
    expect(state.tokenRequests).toHaveLength(2);
    expect(second[0]?.headers.authorization).not.toBe(first[0]?.headers.authorization);
  });

  it('assumes an hour when the endpoint gives no lifetime', async () => {
    state.lifetimeS = undefined;
    const clock = new ManualClock();
    const signer = signerFor({}, { clock });
    await signer.sign(apiRequest());
    clock.advance(3_539_000);
    await signer.sign(apiRequest());
    expect(state.tokenRequests).toHaveLength(1);
    clock.advance(2_000);
    await signer.sign(apiRequest());
    expect(state.tokenRequests).toHaveLength(2);
  });

  it('drops the token after a 401 once, however many requests were refused with it', async () => {
    state.answerDelayMs = 20;
    const clock = new ManualClock();
    const signer = signerFor({}, { clock });
    const refused = await signer.sign(apiRequest());
    state.accessTokens.clear(); // the provider revoked it
    expect((await send(refused)).status).toBe(401);
    signer.invalidate?.(refused);
    const retried = await signer.sign(apiRequest());
    // Late 401s for the old token arrive after the refresh: they must not drop the new token.
    signer.invalidate?.(refused);
    signer.invalidate?.(refused);
    expect((await send(await signer.sign(apiRequest()))).status).toBe(200);
    expect(retried.headers.authorization).not.toBe(refused.headers.authorization);
    expect(state.tokenRequests).toHaveLength(2);
  });
});

describe('refresh tokens', () => {
  it('uses the rotated refresh token from then on, persisting it first', async () => {
    state.rotate = true;
    const initial = scan.secret(`rt_${randomBytes(20).toString('hex')}`);
    state.refreshTokens.add(initial);
    const persisted: string[] = [];
    const clock = new ManualClock();
    const signer = signerFor(
      { grant: 'refreshToken', refreshToken: initial },
      { clock, persistRefreshToken: async (token) => void persisted.push(token) },
    );
    expect(await callApi(signer)).toBe(200);
    expect(new URLSearchParams(state.tokenRequests[0]?.body).get('refresh_token')).toBe(initial);
    expect(persisted).toHaveLength(1);
    expect(state.refreshTokens.has(persisted[0] ?? '')).toBe(true);

    clock.advance(3600_000);
    expect(await callApi(signer)).toBe(200);
    expect(new URLSearchParams(state.tokenRequests[1]?.body).get('refresh_token')).toBe(persisted[0]);
    expect(persisted).toHaveLength(2);

    // The spent token is refused by the server, terminally, and the message does not quote it
    // even though the server's error_description does.
    const stale = signerFor({ grant: 'refreshToken', refreshToken: initial }, { clock });
    const error = (await scan.rejects(stale.sign(apiRequest()))) as PatchbayError;
    expect(error.code).toBe('PB_AUTH_TOKEN_REJECTED');
    expect(error.retry).toBe('terminal');
    expect(error.message).toContain('invalid_grant');
    expect(error.message).toContain('[redacted]');
  });

  it('keeps using a rotated token it could not persist, and warns without the value', async () => {
    state.rotate = true;
    const initial = scan.secret(`rt_${randomBytes(20).toString('hex')}`);
    state.refreshTokens.add(initial);
    const logger = scan.logger(new MemoryLogger());
    const secrets = new SecretSet();
    const clock = new ManualClock();
    const signer = signerFor(
      { grant: 'refreshToken', refreshToken: initial },
      { clock, logger, secrets, persistRefreshToken: async () => Promise.reject(new Error('EROFS: read-only file system')) },
    );
    expect(await callApi(signer)).toBe(200);
    clock.advance(3600_000);
    expect(await callApi(signer)).toBe(200);
    expect(logger.lines.filter((line) => line.level === 'warn')).toHaveLength(2);
    const [rotated] = [...state.refreshTokens];
    // The access tokens and the rotated refresh tokens are all remembered for redaction.
    expect(secrets.values()).toContain(rotated);
    expect(secrets.values()).toHaveLength(4);
  });

  it('refuses a refresh grant without a refresh token at creation', async () => {
    const error = (await scan.rejects(Promise.resolve().then(() => signerFor({ grant: 'refreshToken' })))) as PatchbayError;
    expect(error.code).toBe('PB_AUTH_BAD_SETTINGS');
  });
});

describe('token endpoint failures', () => {
  it('reports a wrong client secret as terminal, without the secret', async () => {
    const wrong = scan.secret(randomBytes(16).toString('hex'));
    const source = createOAuth2TokenSource({ tokenUrl: tokenUrl(), grant: 'clientCredentials', clientId, clientSecret: wrong }, { send });
    const error = (await scan.rejects(source.token())) as PatchbayError;
    expect(error.code).toBe('PB_AUTH_TOKEN_REJECTED');
    expect(error.message).toContain('HTTP 401 invalid_client');
    expect(error.message).toContain(`${server.origin}/oauth/token`);
  });

  it('reports 500 and 429 as transient, with Retry-After, and does not cache the failure', async () => {
    const signer = signerFor({}, { clock: new ManualClock() });
    state.failWith = { status: 500, body: { error: 'server_error' } };
    const error = (await scan.rejects(signer.sign(apiRequest()))) as PatchbayError;
    expect(error.code).toBe('PB_AUTH_TOKEN_UNAVAILABLE');
    expect(error.retry).toBe('transient');
    state.failWith = { status: 429, body: 'slow down', headers: { 'retry-after': '7' } };
    const limited = (await scan.rejects(signer.sign(apiRequest()))) as PatchbayError;
    expect(limited.code).toBe('PB_AUTH_TOKEN_UNAVAILABLE');
    expect(limited.retryAfterMs).toBe(7000);
    state.failWith = undefined;
    expect(await callApi(signer)).toBe(200);
    expect(state.tokenRequests).toHaveLength(3);
  });

  it('gives every concurrent caller the one failure', async () => {
    state.answerDelayMs = 30;
    state.failWith = { status: 503, body: '<html>down</html>' };
    const signer = signerFor({}, { clock: new ManualClock() });
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => signer.sign(apiRequest())));
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    for (const r of results) if (r.status === 'rejected') scan.error('concurrent failure', r.reason);
    expect(state.tokenRequests).toHaveLength(1);
  });

  it('reports an answer without a token, and an unreachable endpoint, as transient', async () => {
    state.failWith = { status: 200, body: { token_type: 'Bearer' } };
    const empty = (await scan.rejects(signerFor({}).sign(apiRequest()))) as PatchbayError;
    expect(empty.code).toBe('PB_AUTH_TOKEN_UNAVAILABLE');
    expect(empty.message).toContain('without a token');
    const closed = await startServer(() => undefined);
    await closed.close();
    const source = createOAuth2TokenSource({ tokenUrl: new URL('/token', closed.origin), grant: 'clientCredentials', clientId, clientSecret }, { send });
    const unreachable = (await scan.rejects(source.token())) as PatchbayError;
    expect(unreachable.code).toBe('PB_AUTH_TOKEN_UNAVAILABLE');
    expect(unreachable.message).toContain('cannot be reached');
  });
});

describe('through createSigner', () => {
  it('sends the token in the scheme header with an empty prefix (Shopify)', async () => {
    const signer = createSigner(
      { type: 'oauth2', tokenUrl: `${server.origin}/oauth/token`, header: 'X-Shopify-Access-Token', prefix: '' },
      { type: 'oauth2', grant: 'clientCredentials', clientId, clientSecret },
      { send, clock: new ManualClock() },
    );
    const signed = await signer.sign(apiRequest());
    expect(signed.headers.authorization).toBeUndefined();
    expect(state.accessTokens.has(signed.headers['x-shopify-access-token'] ?? '')).toBe(true);
    expect((await send(signed)).status).toBe(200);
  });

  it('fills {variables} in the token URL and refuses plain http off loopback', async () => {
    const signer = createSigner(
      { type: 'oauth2', tokenUrl: `${server.origin}/{tenant}/token` },
      { type: 'oauth2', grant: 'clientCredentials', clientId, clientSecret },
      { send, clock: new ManualClock(), variables: { tenant: 'oauth' } },
    );
    await signer.sign(apiRequest());
    expect(state.tokenRequests[0]?.target).toBe('/oauth/token');
    for (const [url, variables] of [
      ['http://auth.example.com/token', {}],
      [`${server.origin}/{tenant}/token`, {}],
    ] as const) {
      const error = (await scan.rejects(
        Promise.resolve().then(() =>
          createSigner({ type: 'oauth2', tokenUrl: url }, { type: 'oauth2', grant: 'clientCredentials', clientId, clientSecret }, { send, variables }),
        ),
      )) as PatchbayError;
      expect(error.code).toBe('PB_AUTH_BAD_SETTINGS');
    }
  });
});
