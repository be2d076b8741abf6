import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, exportJWK, exportPKCS8, generateKeyPair, jwtVerify, type JWK } from 'jose';
import { Agent } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { PatchbayError } from '../../../engine/diag/errors.js';
import { createTokenSigner } from '../../../engine/http/auth/bearer.js';
import { createSigner } from '../../../engine/http/auth/create-signer.js';
import { createJwtTokenSource, importSigningKey, type JwtAlgorithm, type JwtOptions } from '../../../engine/http/auth/jwt.js';
import { createUndiciSend } from '../../../engine/http/auth/undici-send.js';
import type { OutboundRequest } from '../../../engine/http/request.js';
import { ManualClock } from '../../../engine/lib/clock.js';
import { SecretScan } from '../../support/secret-scan.js';
import { delay, json, startServer, type LocalServer, type Received } from './local-server.js';

const scan = new SecretScan();
const agent = new Agent();
const send = createUndiciSend({ dispatcher: agent });

// Keys are made here, per run. The PKCS#1 key is the form GitHub hands out for Apps.
const rsa = await generateKeyPair('RS256', { extractable: true });
const ec = await generateKeyPair('ES256', { extractable: true });
const rsaPkcs8 = scan.secret(await exportPKCS8(rsa.privateKey));
const ecJwk = scan.secret(JSON.stringify(await exportJWK(ec.privateKey)));
const github = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'pem' },
});
const githubPem = scan.secret(github.privateKey);
const publicJwks: JWK[] = [
  { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256' },
  { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256' },
  { ...(await exportJWK(createPublicKey(github.publicKey))), kid: 'github-app', alg: 'RS256' },
];

// The fake provider checks JWTs against the clock the engine uses, so ManualClock time and the
// verifier agree.
const clock = new ManualClock(Date.now());
const audience = 'https://api.example.test';

interface State {
  accessTokens: Set<string>;
  exchanges: Received[];
  claims: Record<string, unknown>[];
}
let state: State;
let server: LocalServer;
let jwks: ReturnType<typeof createRemoteJWKSet>;

async function verify(jwt: string, options: { issuer: string; audience?: string }) {
  const { payload } = await jwtVerify(jwt, jwks, { ...options, currentDate: new Date(clock.now()), algorithms: ['RS256', 'ES256'] });
  state.claims.push(payload);
  return payload;
}

function issue(): string {
  const token = scan.secret(`ghs_${randomBytes(20).toString('hex')}`);
  state.accessTokens.add(token);
  return token;
}

beforeAll(async () => {
  server = await startServer(async (request, res) => {
    const bearer = request.headers.authorization?.replace(/^Bearer /, '') ?? '';
    if (request.target === '/.well-known/jwks.json') return json(res, 200, { keys: publicJwks });
    if (request.target === '/api/direct') {
      // A provider that takes the JWT itself (a GitHub App calling /app).
      try {
        await verify(bearer, { issuer: '12345', audience });
        return json(res, 200, { ok: true });
      } catch {
        // Any verification failure is the provider's 401.
        return json(res, 401, { message: 'A JSON web token could not be decoded' });
      }
    }
    if (request.target === '/api') return state.accessTokens.has(bearer) ? json(res, 200, { ok: true }) : json(res, 401, {});
    if (request.target === '/token') {
      // Google: an RFC 7523 jwt-bearer assertion, aud = this token URL.
      state.exchanges.push(request);
      await delay(30);
      const form = new URLSearchParams(request.body);
      if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') return json(res, 400, { error: 'unsupported_grant_type' });
      try {
        await verify(form.get('assertion') ?? '', { issuer: 'robot@project.iam.gserviceaccount.com', audience: `${server.origin}/token` });
      } catch {
        // Any verification failure is Google's invalid_grant.
        return json(res, 400, { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' });
      }
      return json(res, 200, { access_token: issue(), expires_in: 3599, token_type: 'Bearer' });
    }
    const installation = /^\/app\/installations\/(\d+)\/access_tokens$/.exec(request.target);
    if (installation !== null && request.method === 'POST') {
      // GitHub: the App JWT as bearer; answers `token` and an ISO `expires_at`, with 201.
      state.exchanges.push(request);
      try {
        await verify(bearer, { issuer: '12345' });
      } catch {
        // Any verification failure is GitHub's 401.
        return json(res, 401, { message: 'A JSON web token could not be decoded' });
      }
      return json(res, 201, { token: issue(), expires_at: new Date(clock.now() + 3600_000).toISOString().replace(/\.\d{3}Z$/, 'Z') });
    }
    return json(res, 404, { message: 'Not Found' });
  });
  jwks = createRemoteJWKSet(new URL('/.well-known/jwks.json', server.origin));
});

beforeEach(() => {
  state = { accessTokens: new Set(), exchanges: [], claims: [] };
});

afterAll(async () => {
  await server.close();
  await agent.close();
  scan.assertClean();
});

const request = (path: string): OutboundRequest => ({ method: 'GET', url: new URL(path, server.origin), headers: {} });

describe('JWT sent as the bearer token', () => {
  it.each([
    ['RS256 from PKCS#8', { algorithm: 'RS256', privateKey: rsaPkcs8, keyId: 'rsa-1' }],
    ['ES256 from a JWK', { algorithm: 'ES256', privateKey: ecJwk, keyId: 'ec-1' }],
    ['RS256 from PKCS#1 (GitHub App)', { algorithm: 'RS256', privateKey: githubPem, keyId: 'github-app' }],
  ] as const)('%s verifies against the JWKS with iss, aud and exp', async (_name, key) => {
    const signer = createTokenSigner(createJwtTokenSource({ ...key, issuer: '12345', audience }, { clock }));
    const signed = await signer.sign(request('/api/direct'));
    expect((await send(signed)).status).toBe(200);
    const jwt = signed.headers.authorization?.slice(7) ?? '';
    scan.secret(jwt);
    expect(decodeProtectedHeader(jwt)).toMatchObject({ alg: key.algorithm, kid: key.keyId, typ: 'JWT' });
  });

  it('backdates iat by 60 s, expires 10 minutes later, and reuses the JWT until shortly before', async () => {
    const signer = createTokenSigner(createJwtTokenSource({ privateKey: githubPem, keyId: 'github-app', issuer: '12345', audience }, { clock }));
    const first = await signer.sign(request('/api/direct'));
    const claims = decodeJwt(first.headers.authorization?.slice(7) ?? '');
    expect(claims.iat).toBe(Math.floor((clock.now() - 60_000) / 1000));
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(600);
    clock.advance(8 * 60_000);
    expect((await signer.sign(request('/api/direct'))).headers.authorization).toBe(first.headers.authorization);
    clock.advance(60_000);
    const renewed = await signer.sign(request('/api/direct'));
    expect(renewed.headers.authorization).not.toBe(first.headers.authorization);
    expect((await send(renewed)).status).toBe(200);
    // The old one is expired by now: the provider refuses it.
    clock.advance(60_000);
    expect((await send(first)).status).toBe(401);
  });

  it('HS256 round-trips with the shared secret', async () => {
    const secret = scan.secret(randomBytes(32).toString('base64url'));
    const source = createJwtTokenSource({ algorithm: 'HS256', privateKey: secret, issuer: 'patchbay', subject: 'svc', audience }, { clock });
    const jwt = scan.secret(await source.token());
    const { payload, protectedHeader } = await jwtVerify(jwt, new TextEncoder().encode(secret), {
      issuer: 'patchbay',
      subject: 'svc',
      audience,
      currentDate: new Date(clock.now()),
    });
    expect(protectedHeader.alg).toBe('HS256');
    expect(payload.exp).toBeGreaterThan(clock.now() / 1000);
  });
});

describe('JWT exchanged for an access token', () => {
  const google: JwtOptions = { privateKey: rsaPkcs8, keyId: 'rsa-1', issuer: 'robot@project.iam.gserviceaccount.com', scopes: ['https://www.googleapis.com/auth/drive', 'openid'] };

  it('posts an RFC 7523 assertion (Google) once for 20 concurrent calls, and caches the access token', async () => {
    const signer = createSigner({ type: 'jwt', tokenExchange: true, tokenUrl: `${server.origin}/token` }, { type: 'jwt', ...google }, { send, clock });
    const signed = await Promise.all(Array.from({ length: 20 }, () => signer.sign(request('/api'))));
    expect(state.exchanges).toHaveLength(1);
    expect(new Set(signed.map((r) => r.headers.authorization)).size).toBe(1);
    expect((await send(signed[0] as OutboundRequest)).status).toBe(200);
    expect(state.claims[0]).toMatchObject({ scope: 'https://www.googleapis.com/auth/drive openid', aud: `${server.origin}/token` });
    clock.advance(3599_000 - 61_000);
    await signer.sign(request('/api'));
    expect(state.exchanges).toHaveLength(1);
    clock.advance(2_000);
    await signer.sign(request('/api'));
    expect(state.exchanges).toHaveLength(2);
  });

  it('gets a GitHub installation token with the App JWT as bearer, renewing it from expires_at', async () => {
    const signer = createSigner(
      { type: 'jwt', tokenExchange: true, exchange: 'bearer', tokenUrl: `${server.origin}/app/installations/{installationId}/access_tokens` },
      { type: 'jwt', privateKey: githubPem, keyId: 'github-app', issuer: '12345' },
      { send, clock, variables: { installationId: '4242' } },
    );
    const signed = await signer.sign(request('/api'));
    expect(state.exchanges[0]?.target).toBe('/app/installations/4242/access_tokens');
    expect((await send(signed)).status).toBe(200);
    expect(signed.headers.authorization).toMatch(/^Bearer ghs_/);
    clock.advance(3600_000 - 61_000);
    await signer.sign(request('/api'));
    expect(state.exchanges).toHaveLength(1);
    clock.advance(2_000);
    await signer.sign(request('/api'));
    expect(state.exchanges).toHaveLength(2);
  });

  it('reports a JWT the token endpoint refuses as terminal, quoting neither JWT nor key', async () => {
    const stranger = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
    scan.secret(stranger.privateKey);
    const source = createJwtTokenSource(
      { ...google, privateKey: stranger.privateKey, exchange: { mode: 'assertion', tokenUrl: new URL('/token', server.origin) } },
      { send, clock },
    );
    const error = (await scan.rejects(source.token())) as PatchbayError;
    expect(error.code).toBe('PB_AUTH_TOKEN_REJECTED');
    expect(error.message).toContain('HTTP 400 invalid_grant: "Invalid JWT Signature."');
    const jwt = scan.secret(new URLSearchParams(state.exchanges[0]?.body).get('assertion') ?? '');
    expect(jwt.split('.')).toHaveLength(3);
  });
});

describe('keys', () => {
  it('reads a PEM whose line breaks were escaped as \\n in an environment variable', () => {
    expect(importSigningKey(githubPem.replace(/\n/g, '\\n'), 'RS256').asymmetricKeyType).toBe('rsa');
  });

  it('reads the private_key of a service-account JSON key file', () => {
    const file = JSON.stringify({ type: 'service_account', client_email: 'robot@project.iam.gserviceaccount.com', private_key: rsaPkcs8 });
    scan.secret(file);
    expect(importSigningKey(file, 'RS256').asymmetricKeyType).toBe('rsa');
  });

  const badKeys: [string, () => string, JwtAlgorithm][] = [
    ['a public key', () => github.publicKey, 'RS256'],
    ['an RSA key for ES256', () => githubPem, 'ES256'],
    ['an EC key for RS256', () => ecJwk, 'RS256'],
    ['a public JWK', () => JSON.stringify(publicJwks[1]), 'ES256'],
    ['broken PEM', () => `-----BEGIN PRIVATE KEY-----\n${randomBytes(40).toString('base64')}\n-----END PRIVATE KEY-----`, 'RS256'],
    ['neither PEM nor JSON', () => randomBytes(40).toString('base64'), 'RS256'],
    ['an empty HMAC secret', () => '', 'HS256'],
  ];
  it.each(badKeys)('refuses %s with PB_AUTH_BAD_KEY, without quoting it', async (_name, key, algorithm) => {
    const text = key();
    scan.secret(text);
    const error = (await scan.rejects(Promise.resolve().then(() => createJwtTokenSource({ algorithm, privateKey: text, issuer: 'x' })))) as PatchbayError;
    expect(error.code).toBe('PB_AUTH_BAD_KEY');
  });
});
