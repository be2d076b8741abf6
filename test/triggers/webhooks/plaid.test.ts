import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { SignJWT, UnsecuredJWT } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PatchbayError } from '../../../engine/diag/errors.js';
import { validateManifests } from '../../../engine/manifest/validate.js';
import { ProviderConnection } from '../../../engine/providers/connection.js';
import { createPlaidVerifier, plaidKeyFetcher } from '../../../engine/triggers/webhooks/plaid-verification.js';
import { createWebhookVerifier, type InboundDelivery, type WebhookVerifier } from '../../../engine/triggers/webhooks/verify.js';
import type { Connection } from '../../../engine/types/integration.generated.js';
import { HeldAnswers, until } from '../../support/held-answers.js';
import { webhooksOf } from './corpus.js';

/**
 * Plaid's JWT verification against a local server playing /webhook_verification_key/get, reached
 * through a real ProviderConnection of the bundled plaid provider (its new operation, its
 * client-id header and PLAID-SECRET auth), so the production fetcher is what runs.
 */

const root = join(import.meta.dirname, '..', '..', '..');
const clientId = '5f1e0c0ffee0c0ffee0c0ffe';
const plaidSecret = `plaid_test_${createHash('sha256').update(String(Math.random())).digest('hex').slice(0, 24)}`;
const nowMs = 1_800_000_000_000;
const nowSec = nowMs / 1000;
const body = Buffer.from('{"webhook_type":"TRANSACTIONS","webhook_code":"SYNC_UPDATES_AVAILABLE","item_id":"wz666MBjYWTp2PDzzggYhM6oWWmBb","initial_update_complete":true,"historical_update_complete":false,"environment":"sandbox","note":"Z\u00fcrich \ud83d\ude00"}\n');

interface ServedKey {
  readonly publicKey: KeyObject;
  readonly expiredAt: number | null;
}

/** The fake Plaid: keys by kid, what it was asked, and a failure mode. */
const served = new Map<string, ServedKey>();
const asked: { kid: unknown; clientId: string | undefined; secret: string | undefined }[] = [];
let mode: 'ok' | 'error500' | 'hang' = 'ok';
let server: Server;
let origin: string;
let connection: ProviderConnection;
const hanging: ServerResponse[] = [];
const answers = new HeldAnswers();

function answer(res: ServerResponse, status: number, value: unknown): void {
  const text = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  if (req.method !== 'POST' || req.url !== '/webhook_verification_key/get') {
    answer(res, 404, { error_type: 'INVALID_REQUEST', error_code: 'NOT_FOUND', error_message: 'no such endpoint' });
    return;
  }
  const input = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { key_id?: unknown };
  asked.push({ kid: input.key_id, clientId: req.headers['plaid-client-id'] as string | undefined, secret: req.headers['plaid-secret'] as string | undefined });
  if (mode === 'hang') {
    hanging.push(res);
    return;
  }
  answers.answer(() => respondWithKey(res, input.key_id));
}

/** Answers /webhook_verification_key/get for `kid` as Plaid would (or fails as `mode` says). */
function respondWithKey(res: ServerResponse, kid: unknown): void {
  if (mode === 'error500') {
    answer(res, 500, { error_type: 'API_ERROR', error_code: 'INTERNAL_SERVER_ERROR', error_message: 'an unexpected error occurred' });
    return;
  }
  const key = typeof kid === 'string' ? served.get(kid) : undefined;
  if (key === undefined) {
    answer(res, 400, { error_type: 'INVALID_INPUT', error_code: 'INVALID_WEBHOOK_VERIFICATION_KEY_ID', error_message: 'invalid key_id provided' });
    return;
  }
  const jwk = key.publicKey.export({ format: 'jwk' });
  answer(res, 200, {
    key: { alg: 'ES256', crv: jwk.crv, kid, kty: jwk.kty, use: 'sig', x: jwk.x, y: jwk.y, created_at: 1_560_466_143, expired_at: key.expiredAt },
    request_id: 'HvfCtrDLG1ihcp7',
  });
}

beforeAll(async () => {
  server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => res.destroy(error as Error));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const result = await validateManifests({ paths: ['providers/plaid.yaml'], cwd: root, bundledProviders: false, providerDirs: [], catalogueSnapshot: false });
  expect(result.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  const provider = result.registry.get('plaid')!;
  const settings = { provider: 'plaid', variables: { environment: 'sandbox', clientId }, auth: { type: 'apiKey', key: { env: 'PLAID_SECRET' } } } as unknown as Connection;
  connection = await ProviderConnection.open('plaid', settings, provider, {
    secretSources: { env: { PLAID_SECRET: plaidSecret } },
    overrideBaseUrl: origin,
    allowPrivateAddresses: ['127.0.0.1'],
  });
});

afterAll(async () => {
  for (const res of hanging) res.destroy();
  await connection.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  answers.reset();
  served.clear();
  asked.length = 0;
  mode = 'ok';
});

function freshKey(kid: string, expiredAt: number | null = null): KeyObject {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  served.set(kid, { publicKey, expiredAt });
  return privateKey;
}

function sha256Hex(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function signJwt(privateKey: KeyObject, kid: string, options: { iatSec?: number; bodyHash?: string | undefined } = {}): Promise<string> {
  const claims: Record<string, unknown> = {};
  const hash = 'bodyHash' in options ? options.bodyHash : sha256Hex(body);
  if (hash !== undefined) claims.request_body_sha256 = hash;
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' }).setIssuedAt(options.iatSec ?? nowSec - 10).sign(privateKey);
}

function delivery(token: string | undefined, raw: Buffer = body): InboundDelivery {
  return {
    method: 'POST',
    url: new URL('https://hooks.example.test/hooks/plaid-transactions'),
    headers: { 'content-type': 'application/json', ...(token === undefined ? {} : { 'plaid-verification': token }) },
    rawBody: raw,
  };
}

function verifier(timeoutMs?: number): WebhookVerifier {
  return createWebhookVerifier(webhooksOf('plaid'), [], { plaidKeys: plaidKeyFetcher(connection, timeoutMs) });
}

/** 'accepted' or the refusal's code; the message never holds the token, the secret or the body. */
async function outcome(verify: WebhookVerifier, input: InboundDelivery, atMs = nowMs): Promise<string> {
  try {
    await verify.verify(input, atMs);
    return 'accepted';
  } catch (error) {
    if (!(error instanceof PatchbayError)) throw error;
    const token = input.headers['plaid-verification'];
    if (token !== undefined && token.length > 16) expect(error.message).not.toContain(token);
    expect(error.message).not.toContain(plaidSecret);
    expect(error.message).not.toContain(input.rawBody.toString('utf8'));
    return error.code;
  }
}

describe('plaid: Plaid-Verification JWTs', () => {
  it('accepts a delivery signed by the key its kid names, fetched once with the connection\'s credentials', async () => {
    const privateKey = freshKey('kid-current');
    const verify = verifier();
    const token = await signJwt(privateKey, 'kid-current');
    const verified = await verify.verify(delivery(token), nowMs);
    expect(verified.signedAtMs).toBe((nowSec - 10) * 1000);
    expect(await outcome(verify, delivery(await signJwt(privateKey, 'kid-current', { iatSec: nowSec - 20 })))).toBe('accepted');
    expect(asked).toEqual([{ kid: 'kid-current', clientId, secret: plaidSecret }]);
  });

  it('refuses a body changed by one byte (request_body_sha256 no longer matches)', async () => {
    const verify = verifier();
    const token = await signJwt(freshKey('kid-a'), 'kid-a');
    const tampered = Buffer.from(body);
    tampered[10] = tampered[10]! ^ 1;
    expect(await outcome(verify, delivery(token, tampered))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(await outcome(verify, delivery(token))).toBe('accepted');
  });

  it('refuses a correctly signed token whose body hash is another body\'s, or that has none', async () => {
    const privateKey = freshKey('kid-a');
    const verify = verifier();
    expect(await outcome(verify, delivery(await signJwt(privateKey, 'kid-a', { bodyHash: sha256Hex(Buffer.from('{}')) })))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(await outcome(verify, delivery(await signJwt(privateKey, 'kid-a', { bodyHash: undefined })))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    // Upper-case hex of the right hash is the same bytes.
    expect(await outcome(verify, delivery(await signJwt(privateKey, 'kid-a', { bodyHash: sha256Hex(body).toUpperCase() })))).toBe('accepted');
  });

  it('refuses a token signed by another key under a known kid', async () => {
    freshKey('kid-a');
    const { privateKey: attacker } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    expect(await outcome(verifier(), delivery(await signJwt(attacker, 'kid-a')))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
  });

  it('refuses iat older than 5 minutes or as far in the future, and accepts inside the window', async () => {
    const privateKey = freshKey('kid-a');
    const verify = verifier();
    expect(await outcome(verify, delivery(await signJwt(privateKey, 'kid-a', { iatSec: nowSec - 301 })))).toBe('PB_WEBHOOK_STALE');
    expect(await outcome(verify, delivery(await signJwt(privateKey, 'kid-a', { iatSec: nowSec + 301 })))).toBe('PB_WEBHOOK_STALE');
    expect(await outcome(verify, delivery(await signJwt(privateKey, 'kid-a', { iatSec: nowSec - 299 })))).toBe('accepted');
    expect(await outcome(verify, delivery(await signJwt(privateKey, 'kid-a', { iatSec: nowSec + 299 })))).toBe('accepted');
  });

  it('refuses HS256 signed with the public key and alg none before fetching any key', async () => {
    const privateKey = freshKey('kid-a');
    const publicKey = served.get('kid-a')!.publicKey;
    const claims = { request_body_sha256: sha256Hex(body) };
    const secrets = [
      Buffer.from(JSON.stringify(publicKey.export({ format: 'jwk' }))),
      Buffer.from(publicKey.export({ format: 'pem', type: 'spki' }) as string),
    ];
    const verify = verifier();
    for (const secret of secrets) {
      const hs256 = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: 'kid-a', typ: 'JWT' }).setIssuedAt(nowSec - 10).sign(secret);
      expect(await outcome(verify, delivery(hs256))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    }
    const none = new UnsecuredJWT(claims).setIssuedAt(nowSec - 10).encode();
    expect(await outcome(verify, delivery(none))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    const noneWithKid = `${Buffer.from(JSON.stringify({ alg: 'none', kid: 'kid-a' })).toString('base64url')}.${none.split('.')[1]}.`;
    expect(await outcome(verify, delivery(noneWithKid))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(asked).toEqual([]);
    // The same verifier accepts the real ES256 token, so the refusals above are about alg.
    expect(await outcome(verify, delivery(await signJwt(privateKey, 'kid-a')))).toBe('accepted');
  });

  it('refuses a missing header, a header that is not a JWT and a kid that is not a key id', async () => {
    const verify = verifier();
    expect(await outcome(verify, delivery(undefined))).toBe('PB_WEBHOOK_MISSING_SIGNATURE');
    expect(await outcome(verify, delivery('not-a-jwt'))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    const privateKey = freshKey('x');
    const weird = await new SignJWT({ request_body_sha256: sha256Hex(body) }).setProtectedHeader({ alg: 'ES256', kid: '../../etc/passwd' }).setIssuedAt(nowSec).sign(privateKey);
    expect(await outcome(verify, delivery(weird))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(asked).toEqual([]);
  });

  it('asks Plaid about an unknown kid at most once a minute', async () => {
    const verify = verifier();
    const { privateKey: stranger } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const token = await signJwt(stranger, 'kid-unknown');
    expect(await outcome(verify, delivery(token))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    for (let i = 0; i < 5; i++) expect(await outcome(verify, delivery(token), nowMs + 1_000 * i)).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(asked.length).toBe(1);
    // Plaid starts serving the kid (a new key): learned on the first delivery after a minute.
    const privateKey = freshKey('kid-unknown');
    expect(await outcome(verify, delivery(await signJwt(privateKey, 'kid-unknown', { iatSec: nowSec + 30 })), nowMs + 59_000)).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(asked.length).toBe(1);
    expect(await outcome(verify, delivery(await signJwt(privateKey, 'kid-unknown', { iatSec: nowSec + 61 })), nowMs + 61_000)).toBe('accepted');
    expect(asked.length).toBe(2);
  });

  it('refuses a key Plaid reports as expired, without asking again', async () => {
    const privateKey = freshKey('kid-old', 1_700_000_000);
    const verify = verifier();
    const token = await signJwt(privateKey, 'kid-old');
    expect(await outcome(verify, delivery(token))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(await outcome(verify, delivery(await signJwt(privateKey, 'kid-old', { iatSec: nowSec + 120 })), nowMs + 120_000)).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(asked.length).toBe(1);
  });

  it('learns that a cached key expired when it is fetched again after an hour', async () => {
    const privateKey = freshKey('kid-rotating');
    const verify = verifier();
    expect(await outcome(verify, delivery(await signJwt(privateKey, 'kid-rotating')))).toBe('accepted');
    served.set('kid-rotating', { publicKey: served.get('kid-rotating')!.publicKey, expiredAt: nowSec + 1800 });
    const later = nowMs + 3_601_000;
    expect(await outcome(verify, delivery(await signJwt(privateKey, 'kid-rotating', { iatSec: later / 1000 })), later)).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(asked.length).toBe(2);
  });

  it('answers PB_WEBHOOK_KEY_UNAVAILABLE when Plaid fails or does not answer in time (the sender retries)', async () => {
    const privateKey = freshKey('kid-a');
    mode = 'error500';
    expect(await outcome(verifier(), delivery(await signJwt(privateKey, 'kid-a')))).toBe('PB_WEBHOOK_KEY_UNAVAILABLE');
    mode = 'hang';
    const startedAt = Date.now();
    expect(await outcome(verifier(300), delivery(await signJwt(privateKey, 'kid-a')))).toBe('PB_WEBHOOK_KEY_UNAVAILABLE');
    expect(Date.now() - startedAt).toBeLessThan(5_000);
    // Plaid is back: a cached verifier whose fetch failed retries the kid after a minute.
    mode = 'ok';
    const verify = verifier();
    mode = 'error500';
    expect(await outcome(verify, delivery(await signJwt(privateKey, 'kid-a')))).toBe('PB_WEBHOOK_KEY_UNAVAILABLE');
    mode = 'ok';
    expect(await outcome(verify, delivery(await signJwt(privateKey, 'kid-a', { iatSec: nowSec + 61 })), nowMs + 61_000)).toBe('accepted');
  });

  it('verifies a genuine delivery under a rotated kid after 40 forged ones named 40 made-up kids, one call to Plaid each', async () => {
    // The review's scenario: forged tokens with made-up kids (here with claims that pass every
    // check but the signature). A budget of 10 unknown kids a minute was spent by them.
    const verify = verifier();
    const { privateKey: forger } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    for (let i = 0; i < 40; i++) expect(await outcome(verify, delivery(await signJwt(forger, `attacker-${i}`)))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(asked.length).toBe(40);
    const rotated = freshKey('kid-rotated');
    expect(await outcome(verify, delivery(await signJwt(rotated, 'kid-rotated')))).toBe('accepted');
    expect(asked.length).toBe(41);
    // The same 40 again within the minute: each kid is remembered (more than maxKeys of them), Plaid is not asked.
    for (let i = 0; i < 40; i++) expect(await outcome(verify, delivery(await signJwt(forger, `attacker-${i}`)), nowMs + 30_000)).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(asked.length).toBe(41);
  });

  it('asks Plaid about no kid for a token that fails a check needing no key', async () => {
    const verify = verifier();
    const { privateKey: forger } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
    expect(await outcome(verify, delivery(await signJwt(forger, 'made-up-1', { iatSec: nowSec - 301 })))).toBe('PB_WEBHOOK_STALE');
    expect(await outcome(verify, delivery(await signJwt(forger, 'made-up-2', { iatSec: nowSec + 301 })))).toBe('PB_WEBHOOK_STALE');
    expect(await outcome(verify, delivery(await signJwt(forger, 'made-up-3', { bodyHash: sha256Hex(Buffer.from('another body')) })))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(await outcome(verify, delivery(await signJwt(forger, 'made-up-4', { bodyHash: undefined })))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    // The review's forgery: empty claims, a made-up signature.
    expect(await outcome(verify, delivery(`${b64({ alg: 'ES256', kid: 'made-up-5' })}.${b64({})}.${'A'.repeat(86)}`))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    // Good claims, but a signature that is not ES256's 64 bytes, or claims that are not JSON.
    const claims = b64({ iat: nowSec, request_body_sha256: sha256Hex(body) });
    expect(await outcome(verify, delivery(`${b64({ alg: 'ES256', kid: 'made-up-6' })}.${claims}.${'A'.repeat(40)}`))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(await outcome(verify, delivery(`${b64({ alg: 'ES256', kid: 'made-up-7' })}.${Buffer.from('not json').toString('base64url')}.${'A'.repeat(86)}`))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(asked).toEqual([]);
    // The same made-up kid with claims that pass is asked about: the refusals above were the claims'.
    expect(await outcome(verify, delivery(`${b64({ alg: 'ES256', kid: 'made-up-6' })}.${claims}.${'A'.repeat(86)}`))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(asked.map((entry) => entry.kid)).toEqual(['made-up-6']);
  });

  it('runs at most maxFetchesInFlight key fetches at once, queues maxFetchesWaiting, refuses the rest at once without remembering them', async () => {
    const verify = createPlaidVerifier({ fetchKey: plaidKeyFetcher(connection), maxFetchesInFlight: 4, maxFetchesWaiting: 2, maxFetchWaitMs: 10_000 });
    const { privateKey: forger } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const tokens = await Promise.all(Array.from({ length: 10 }, (_, i) => signJwt(forger, `burst-${i}`)));
    answers.holding = true;
    const forged = tokens.map((token) => outcome(verify, delivery(token)));
    await until(() => answers.open === 4);
    expect(await Promise.all(forged.slice(6))).toEqual(Array(4).fill('PB_WEBHOOK_KEY_UNAVAILABLE'));
    answers.release();
    expect(await Promise.all(forged.slice(0, 6))).toEqual(Array(6).fill('PB_WEBHOOK_BAD_SIGNATURE'));
    expect(answers.maxOpen).toBe(4);
    expect(asked.length).toBe(6);
    // A kid refused for want of a slot is asked about on its next delivery.
    expect(await outcome(verify, delivery(tokens[9]!))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(asked.length).toBe(7);
    expect(await outcome(verify, delivery(await signJwt(freshKey('kid-new'), 'kid-new')))).toBe('accepted');
  });

  it('a genuine delivery arriving while forged kids fill every slot waits for one instead of being refused', async () => {
    const verify = createPlaidVerifier({ fetchKey: plaidKeyFetcher(connection), maxFetchesInFlight: 2 });
    const { privateKey: forger } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const tokens = await Promise.all([0, 1].map((i) => signJwt(forger, `slow-${i}`)));
    const genuineToken = await signJwt(freshKey('kid-genuine'), 'kid-genuine');
    answers.holding = true;
    const forged = tokens.map((token) => outcome(verify, delivery(token)));
    await until(() => answers.open === 2);
    const genuine = outcome(verify, delivery(genuineToken));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(answers.open).toBe(2);
    answers.release();
    expect(await genuine).toBe('accepted');
    expect(await Promise.all(forged)).toEqual(['PB_WEBHOOK_BAD_SIGNATURE', 'PB_WEBHOOK_BAD_SIGNATURE']);
    expect(answers.maxOpen).toBe(2);
  });

  it('is refused as unsupported without a key source (the ingress never accepts unverified Plaid deliveries)', () => {
    expect(() => createWebhookVerifier(webhooksOf('plaid'), [])).toThrow(expect.objectContaining({ code: 'PB_WEBHOOK_SCHEME_UNSUPPORTED' }) as Error);
  });
});
