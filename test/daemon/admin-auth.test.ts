import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, UnsecuredJWT, type CryptoKey, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminAuthWarning, AdminAuthenticator, parseAdminAuthSettings } from '../../engine/daemon/admin/auth.js';
import { PatchbayError } from '../../engine/diag/errors.js';
import { ManualClock } from '../../engine/lib/clock.js';
import { MemoryLogger } from '../../engine/lib/log.js';
import { openSqliteStore } from '../../engine/store/sqlite/sqlite-store.js';
import type { StateStore } from '../../engine/store/state-store.js';
import { DaemonMetrics } from '../../engine/daemon/metrics.js';
import { buildRunsFixture, fixtureStatus, startAdminServer, type AdminServer, type RunsFixture } from './admin-fixture.js';

// Authentication of the admin API through a real node:http server, with a real JWKS served by
// another local server and keys generated here by jose.

const issuer = 'https://id.test.example/';
const audience = 'patchbay-admin';

interface Jwks {
  readonly url: string;
  readonly rsa: { privateKey: CryptoKey; publicKey: CryptoKey };
  readonly ec: { privateKey: CryptoKey; publicKey: CryptoKey };
  /** Requests the JWKS server received. */
  hits: number;
  close(): Promise<void>;
}

async function startJwks(): Promise<Jwks> {
  const rsa = await generateKeyPair('RS256', { extractable: true });
  const ec = await generateKeyPair('ES256', { extractable: true });
  const keys = [
    { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
    { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' },
  ];
  const jwks = { url: '', rsa, ec, hits: 0, close: async () => undefined } as Jwks;
  const server: Server = createServer((req, res) => {
    jwks.hits++;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(jwks, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}

function sign(key: CryptoKey, claims: JWTPayload, options: { alg?: string; kid?: string; iat?: number; exp?: number | string; nbf?: number; iss?: string; aud?: string } = {}): Promise<string> {
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: options.alg ?? 'RS256', kid: options.kid ?? 'rsa-1' })
    .setIssuer(options.iss ?? issuer)
    .setAudience(options.aud ?? audience)
    .setSubject('ops@example.test')
    .setIssuedAt(options.iat)
    .setExpirationTime(options.exp ?? '5m');
  if (options.nbf !== undefined) jwt.setNotBefore(options.nbf);
  return jwt.sign(key);
}

async function call(server: AdminServer, method: string, path: string, token?: string, body?: unknown) {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: () => JSON.parse(text) as { error: { code: string; message: string } } & Record<string, unknown> };
}

const adminToken = `adm_${randomBytes(24).toString('hex')}`;
const readToken = `rd_${randomBytes(24).toString('hex')}`;

describe('parseAdminAuthSettings', () => {
  const error = (env: Record<string, string>) => {
    try {
      parseAdminAuthSettings(env);
    } catch (caught) {
      expect(caught).toBeInstanceOf(PatchbayError);
      return caught as PatchbayError;
    }
    throw new Error('expected a PB_ADMIN_CONFIG error');
  };

  it('keeps digests only: the token value appears nowhere in the settings', () => {
    const settings = parseAdminAuthSettings({ PATCHBAY_ADMIN_TOKEN: adminToken, PATCHBAY_ADMIN_READ_TOKEN: readToken });
    expect(settings.tokens.map((t) => [t.subject, t.scopes])).toEqual([
      ['token:admin', ['patchbay:read', 'patchbay:operate']],
      ['token:read', ['patchbay:read']],
    ]);
    const dump = JSON.stringify(settings, (_k, v: unknown) => (Buffer.isBuffer(v) ? v.toString('hex') : v)) + JSON.stringify(settings.tokens.map((t) => t.digest.toString('utf8')));
    expect(dump).not.toContain(adminToken);
    expect(dump).not.toContain(readToken);
    expect(adminAuthWarning(settings)).toBeUndefined();
  });

  it('refuses bad configuration with PB_ADMIN_CONFIG, naming the variable and never the value', () => {
    const short = error({ PATCHBAY_ADMIN_TOKEN: 'tooshort' });
    expect(short.code).toBe('PB_ADMIN_CONFIG');
    expect(short.message).toContain('PATCHBAY_ADMIN_TOKEN');
    expect(short.message).not.toContain('tooshort');
    expect(error({ PATCHBAY_ADMIN_TOKEN: adminToken, PATCHBAY_ADMIN_READ_TOKEN: adminToken }).message).toContain('the same');
    expect(error({ PATCHBAY_ADMIN_TOKEN: `${adminToken} x` }).message).toContain('white space');
    const http = error({ PATCHBAY_ADMIN_JWKS_URL: 'http://id.example.com/jwks', PATCHBAY_ADMIN_JWT_ISSUER: issuer, PATCHBAY_ADMIN_JWT_AUDIENCE: audience });
    expect(http.code).toBe('PB_ADMIN_CONFIG');
    expect(http.message).toContain('https');
    expect(error({ PATCHBAY_ADMIN_JWKS_URL: 'https://id.example.com/jwks', PATCHBAY_ADMIN_JWT_AUDIENCE: audience }).message).toContain('PATCHBAY_ADMIN_JWT_ISSUER');
    expect(error({ PATCHBAY_ADMIN_JWKS_URL: 'https://id.example.com/jwks', PATCHBAY_ADMIN_JWT_ISSUER: issuer }).message).toContain('PATCHBAY_ADMIN_JWT_AUDIENCE');
    expect(error({ PATCHBAY_ADMIN_JWT_ISSUER: issuer }).message).toContain('without PATCHBAY_ADMIN_JWKS_URL');
    expect(error({ PATCHBAY_ADMIN_JWKS_URL: 'not a url', PATCHBAY_ADMIN_JWT_ISSUER: issuer, PATCHBAY_ADMIN_JWT_AUDIENCE: audience }).message).toContain('not a URL');
    expect(error({ PATCHBAY_ADMIN_JWKS_URL: 'https://u:p@id.example.com/jwks', PATCHBAY_ADMIN_JWT_ISSUER: issuer, PATCHBAY_ADMIN_JWT_AUDIENCE: audience }).message).not.toContain('u:p');
  });

  it('accepts https, and plain http only to a loopback host; nothing configured gives a start-up warning', () => {
    for (const url of ['https://id.example.com/jwks', 'http://127.0.0.1:9/jwks', 'http://localhost/jwks', 'http://[::1]:8/jwks']) {
      expect(parseAdminAuthSettings({ PATCHBAY_ADMIN_JWKS_URL: url, PATCHBAY_ADMIN_JWT_ISSUER: issuer, PATCHBAY_ADMIN_JWT_AUDIENCE: audience }).jwt?.jwksUrl.href).toBe(new URL(url).href);
    }
    const none = parseAdminAuthSettings({ PATCHBAY_ADMIN_TOKEN: '' });
    expect(adminAuthWarning(none)).toContain('refuse every request');
  });
});

describe('the admin API refuses what it must', () => {
  let fixture: RunsFixture;
  let store: StateStore;
  let jwks: Jwks;
  let server: AdminServer;
  let unconfigured: AdminServer;
  const logger = new MemoryLogger();
  const clock = new ManualClock(Date.now());

  beforeAll(async () => {
    fixture = await buildRunsFixture();
    store = await openSqliteStore(fixture.path);
    jwks = await startJwks();
    const auth = parseAdminAuthSettings({
      PATCHBAY_ADMIN_TOKEN: adminToken,
      PATCHBAY_ADMIN_READ_TOKEN: readToken,
      PATCHBAY_ADMIN_JWKS_URL: jwks.url,
      PATCHBAY_ADMIN_JWT_ISSUER: issuer,
      PATCHBAY_ADMIN_JWT_AUDIENCE: audience,
    });
    const metrics = new DaemonMetrics({ processMetrics: false });
    server = await startAdminServer({ store, auth, metrics, status: () => fixtureStatus(fixture.base), clock, logger });
    unconfigured = await startAdminServer({ store, auth: parseAdminAuthSettings({}), metrics, status: () => fixtureStatus(fixture.base) });
  });

  afterAll(async () => {
    await server?.close();
    await unconfigured?.close();
    await jwks?.close();
    await store?.close();
  });

  const readRoutes = ['/admin/v1/status', '/admin/v1/integrations', '/admin/v1/integrations/orders', '/admin/v1/runs', '/metrics'];

  it('answers 401 with WWW-Authenticate: Bearer for a missing, malformed or wrong token, on every route and on unknown paths', async () => {
    for (const path of [...readRoutes, '/admin/v1/nope', '/admin/v1/runs/run_x']) {
      const variants: Record<string, string>[] = [{}, { authorization: 'Basic dXNlcjpwYXNz' }, { authorization: `Bearer ${adminToken}x` }, { authorization: 'Bearer' }];
      for (const headers of variants) {
        const response = await fetch(`${server.url}${path}`, { headers });
        expect(response.status, `${path} ${JSON.stringify(headers)}`).toBe(401);
        expect(response.headers.get('www-authenticate')).toMatch(/^Bearer /);
        const body = (await response.json()) as { error: { code: string; message: string } };
        expect(body.error.code).toBe('PB_ADMIN_UNAUTHENTICATED');
        expect(JSON.stringify(body)).not.toContain(adminToken);
      }
    }
    const invalid = await call(server, 'GET', '/admin/v1/status', `${adminToken}x`);
    expect(invalid.headers.get('www-authenticate')).toBe('Bearer realm="patchbay", error="invalid_token"');
    expect((await call(server, 'GET', '/admin/v1/status')).headers.get('www-authenticate')).toBe('Bearer realm="patchbay"');
    for (const path of ['/admin/v1/runs/retry', `/admin/v1/runs/${fixture.dead}/retry`]) {
      expect((await call(server, 'POST', path)).status).toBe(401);
    }
    // Health is the daemon's own and needs nothing.
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });

  it('with no credential configured, refuses every admin and metrics request, even one carrying a token', async () => {
    for (const path of readRoutes) {
      const result = await call(unconfigured, 'GET', path, adminToken);
      expect(result.status).toBe(401);
      expect(result.json().error.message).toContain('no admin credential is configured');
    }
    expect((await call(unconfigured, 'POST', '/admin/v1/runs/retry', adminToken)).status).toBe(401);
  });

  it('lets the read token read but not retry (403 insufficient_scope), and the admin token do both', async () => {
    for (const path of readRoutes) expect((await call(server, 'GET', path, readToken)).status, path).toBe(200);
    const forbidden = await call(server, 'POST', `/admin/v1/runs/${fixture.deadBilling}/retry`, readToken);
    expect(forbidden.status).toBe(403);
    expect(forbidden.json().error.code).toBe('PB_ADMIN_FORBIDDEN');
    expect(forbidden.headers.get('www-authenticate')).toContain('insufficient_scope');
    expect((await call(server, 'POST', '/admin/v1/runs/retry', readToken, { integration: 'billing' })).status).toBe(403);
    expect((await store.getRun(fixture.deadBilling))?.status).toBe('dead');
    // Token scheme names are case-insensitive (RFC 7235).
    const lower = await fetch(`${server.url}/admin/v1/status`, { headers: { authorization: `bearer ${adminToken}` } });
    expect(lower.status).toBe(200);
    expect((await call(server, 'POST', `/admin/v1/runs/${fixture.deadBilling}/retry`, adminToken)).status).toBe(200);
    expect((await store.getRun(fixture.deadBilling))?.status).toBe('queued');
    const logged = logger.lines.find((line) => line.message.includes('replayed'));
    expect(logged?.fields).toMatchObject({ subject: 'token:admin', runId: fixture.deadBilling });
    expect(logger.text()).not.toContain(adminToken);
    expect(logger.text()).not.toContain(readToken);
  });

  it('accepts a JWT from the JWKS with scope (space separated) or scp (array); operate implies read', async () => {
    const reader = await sign(jwks.rsa.privateKey, { scope: 'openid patchbay:read' });
    expect((await call(server, 'GET', '/admin/v1/runs', reader)).status).toBe(200);
    expect((await call(server, 'GET', '/metrics', reader)).status).toBe(200);
    expect((await call(server, 'POST', `/admin/v1/runs/${fixture.dead}/retry`, reader)).json().error.code).toBe('PB_ADMIN_FORBIDDEN');
    const operator = await sign(jwks.ec.privateKey, { scp: ['patchbay:operate'] }, { alg: 'ES256', kid: 'ec-1' });
    expect((await call(server, 'GET', '/admin/v1/status', operator)).status).toBe(200);
    const retried = await call(server, 'POST', `/admin/v1/runs/${fixture.dead}/retry`, operator);
    expect(retried.status).toBe(200);
    expect(retried.json()).toMatchObject({ queued: 1, replayed: [fixture.dead] });
    const logged = logger.lines.filter((line) => line.message.includes('replayed')).at(-1);
    expect(logged?.fields.subject).toBe('jwt:ops@example.test');
  });

  it('refuses expired, not-yet-valid, wrong-issuer, wrong-audience, unsigned, HS256-with-the-public-key, foreign-key and unscoped JWTs', async () => {
    const nowSec = Math.floor(clock.now() / 1000);
    const read = { scope: 'patchbay:read' };
    const otherKey = await generateKeyPair('RS256');
    const publicPem = await exportSPKI(jwks.rsa.publicKey);
    const cases: [string, string, number, string][] = [
      ['expired', await sign(jwks.rsa.privateKey, read, { iat: nowSec - 3600, exp: nowSec - 120 }), 401, 'expired'],
      ['not yet valid', await sign(jwks.rsa.privateKey, read, { nbf: nowSec + 600, exp: nowSec + 1200 }), 401, 'nbf'],
      ['wrong issuer', await sign(jwks.rsa.privateKey, read, { iss: 'https://evil.example/' }), 401, 'iss'],
      ['wrong audience', await sign(jwks.rsa.privateKey, read, { aud: 'someone-else' }), 401, 'aud'],
      ['alg none', new UnsecuredJWT(read).setIssuer(issuer).setAudience(audience).setExpirationTime('5m').encode(), 401, 'refused'],
      ['HS256 with the public key', await sign(new TextEncoder().encode(publicPem) as unknown as CryptoKey, read, { alg: 'HS256' }), 401, 'algorithm'],
      ['signed by a key not in the JWKS', await sign(otherKey.privateKey, read), 401, 'signature'],
      ['no exp', await new SignJWT(read).setProtectedHeader({ alg: 'RS256', kid: 'rsa-1' }).setIssuer(issuer).setAudience(audience).sign(jwks.rsa.privateKey), 401, 'exp'],
      ['under-scoped', await sign(jwks.rsa.privateKey, { scope: 'openid profile patchbay:admin' }), 403, 'patchbay:read'],
    ];
    for (const [label, token, status, reason] of cases) {
      const result = await call(server, 'GET', '/admin/v1/status', token);
      expect(result.status, label).toBe(status);
      expect(result.json().error.message, label).toContain(reason);
      expect(result.text, label).not.toContain(token);
    }
    // A small clock tolerance: expired 10 s ago still passes, 2 minutes ago does not (above).
    const justExpired = await sign(jwks.rsa.privateKey, read, { iat: nowSec - 600, exp: nowSec - 10 });
    expect((await call(server, 'GET', '/admin/v1/status', justExpired)).status).toBe(200);
  });

  it('answers 503 PB_ADMIN_AUTH_UNAVAILABLE (not 401) when the JWKS cannot be fetched', async () => {
    const deadUrl = await new Promise<string>((resolve) => {
      const probe = createServer();
      probe.listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(`http://127.0.0.1:${port}/jwks`));
      });
    });
    const authenticator = new AdminAuthenticator(parseAdminAuthSettings({ PATCHBAY_ADMIN_JWKS_URL: deadUrl, PATCHBAY_ADMIN_JWT_ISSUER: issuer, PATCHBAY_ADMIN_JWT_AUDIENCE: audience }), { jwksTimeoutMs: 2_000 });
    const offline = await startAdminServer({ store, auth: authenticator, status: () => fixtureStatus(fixture.base) });
    try {
      const result = await call(offline, 'GET', '/admin/v1/status', await sign(jwks.rsa.privateKey, { scope: 'patchbay:read' }));
      expect(result.status).toBe(503);
      expect(result.json().error.code).toBe('PB_ADMIN_AUTH_UNAVAILABLE');
      // A static-token-shaped value never reaches the JWKS: it is just wrong.
      expect((await call(offline, 'GET', '/admin/v1/status', 'not-a-jwt-at-all-0123456789')).status).toBe(401);
    } finally {
      await offline.close();
    }
  });
});
