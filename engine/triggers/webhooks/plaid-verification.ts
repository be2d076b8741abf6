import { createHash, createPublicKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { compactVerify, decodeProtectedHeader } from 'jose';
import { PatchbayError } from '../../diag/errors.js';
import type { ProviderConnection } from '../../providers/connection.js';
import { badSignature, headerName, headerValue, missingHeader, type HeaderName } from './refusals.js';
import { FetchSlots } from './fetch-slots.js';
import type { InboundDelivery, VerifiedDelivery, WebhookVerifier } from './verify.js';

/**
 * Plaid's signed webhooks (scheme `plaid`): the `Plaid-Verification` header is a JWT signed with
 * ES256. Its header's `kid` names a public key fetched from Plaid with
 * POST /webhook_verification_key/get (the connection's client id and secret: the operation
 * `webhookVerificationKey.get` of providers/plaid.yaml); its claims are `iat` (the signing time,
 * at most 5 minutes old) and `request_body_sha256` (hex SHA-256 of the raw body, compared in
 * constant time). Only ES256 is accepted: `none`, HS256 (a classic confusion that signs with the
 * public key as an HMAC secret) and every other `alg` are refused before any key is fetched.
 *
 * Keys are cached by kid. A key Plaid reports with `expired_at` set verifies nothing (it stays
 * cached, so it is not fetched again). Cached keys are fetched again after `keyTtlMs` to learn
 * whether they expired; when that refresh fails the cached key keeps verifying (Plaid's outage
 * must not refuse every delivery).
 *
 * The kid comes from an unverified header, so anyone can make the daemon ask Plaid for keys
 * (with the operator's secret). Before a key is fetched the token must pass every check that
 * needs no key — alg ES256, a kid of the usual form, a signature of ES256's length, an `iat`
 * within the tolerance and a `request_body_sha256` equal to the body's hash (the claims are read
 * unverified here and checked again once the signature covers them). That refuses junk and
 * replays for free, but a deliberate forger controls body and claims alike, so fetches are also
 * bounded:
 * - per kid: a kid Plaid gave no key for (or whose fetch failed) is not asked about again for
 *   `retryUnknownKidAfterMs` (up to `maxUnknownKids` remembered). A forger costs one Plaid call
 *   per kid it invents — at most one per forged request, which the ingress's per-sender rate
 *   limit bounds — and cannot spend a shared budget: the daemon-wide "10 unknown kids a minute"
 *   this replaces was spent by ten forged requests, after which Plaid's genuine key rotation was
 *   refused for as long as the forger kept going.
 * - all kids together (per connection): at most `maxFetchesInFlight` calls at once, with up to
 *   `maxFetchesWaiting` more waiting at most `maxFetchWaitMs` (FIFO); beyond that
 *   PB_WEBHOOK_KEY_UNAVAILABLE (503, Plaid delivers again). Slots come back as soon as Plaid
 *   answers, so this caps concurrency, not rate. The default 32 is sized so that one sender at
 *   the ingress's default limit (100 requests/s, burst 200) cannot keep every slot busy while
 *   Plaid answers within 300 ms (32 / 0.3 s ≈ 107 calls/s); a genuine delivery waits for the
 *   queue to drain (under a second after a burst) rather than being refused.
 * Residual risk: forgers sending from many addresses, together faster than the slots drain, can
 * keep them full and have a delivery signed with a key not yet cached refused 503 while they keep
 * it up (cached keys keep verifying); and each forged kid is one call to Plaid with the
 * operator's credentials, so a forger at the inbound limit can make up to that many calls a
 * second, which may meet Plaid's own rate limit for the endpoint (answered 503 here too).
 */

/** A JWK as /webhook_verification_key/get returns it under `key`. */
export interface PlaidVerificationKey {
  readonly kid: string;
  readonly kty: string;
  readonly crv: string;
  readonly x: string;
  readonly y: string;
  readonly alg?: string;
  /** Unix seconds when Plaid retired the key, or null while it is current. */
  readonly expired_at: number | null;
}

/**
 * Fetches the key named `kid`. Rejects with PB_WEBHOOK_KEY_UNAVAILABLE when Plaid cannot be asked
 * (the sender should retry) and PB_WEBHOOK_BAD_SIGNATURE when Plaid knows no such key.
 */
export type PlaidKeyFetcher = (kid: string) => Promise<PlaidVerificationKey>;

/** Options of `createPlaidVerifier`. */
export interface PlaidVerifierOptions {
  readonly fetchKey: PlaidKeyFetcher;
  /** The JWT header. @default Plaid-Verification */
  readonly header?: string;
  /** Largest age (and future skew) of `iat`. @default 300_000 (5 minutes) */
  readonly toleranceMs?: number;
  /** Keys kept; the least recently used is dropped beyond it. @default 16 */
  readonly maxKeys?: number;
  /** How long a cached key is used before it is fetched again. @default 1 hour */
  readonly keyTtlMs?: number;
  /** How long a kid Plaid did not give a key for is refused without asking again. @default 60_000 */
  readonly retryUnknownKidAfterMs?: number;
  /** Kids Plaid gave no key for remembered; the oldest is forgotten beyond it. @default 4096 */
  readonly maxUnknownKids?: number;
  /** Key fetches under way at once, all kids together. @default 32 */
  readonly maxFetchesInFlight?: number;
  /** Fetches that may wait for a free slot; beyond it PB_WEBHOOK_KEY_UNAVAILABLE at once. @default 64 */
  readonly maxFetchesWaiting?: number;
  /** Longest wait for a free slot before PB_WEBHOOK_KEY_UNAVAILABLE. @default 2_000 */
  readonly maxFetchWaitMs?: number;
}

interface CachedKey {
  /** Undefined for a retired key (`expired_at` set). */
  readonly key: KeyObject | undefined;
  readonly fetchedAtMs: number;
}

const minuteMs = 60_000;
const kidPattern = /^[A-Za-z0-9._:-]{1,128}$/;
const sha256Hex = /^[0-9a-fA-F]{64}$/;
/** An ES256 JWS signature: 64 bytes (r ‖ s), 86 base64url characters. */
const es256Signature = /^[A-Za-z0-9_-]{86}$/;

/**
 * Reads a `webhookVerificationKey.get` output into a key. Raises PB_WEBHOOK_KEY_UNAVAILABLE when
 * the answer is not an EC P-256 JWK for `kid` (Plaid answered something this code does not know:
 * retrying later is the best the sender can do).
 */
export function readPlaidVerificationKey(output: unknown, kid: string): PlaidVerificationKey {
  const key = typeof output === 'object' && output !== null && Object.hasOwn(output, 'key') ? (output as { key: unknown }).key : undefined;
  const jwk = typeof key === 'object' && key !== null ? (key as Record<string, unknown>) : undefined;
  const text = (name: string) => (jwk !== undefined && typeof jwk[name] === 'string' ? (jwk[name] as string) : undefined);
  const expired = jwk?.expired_at;
  const alg = text('alg');
  if (
    jwk === undefined ||
    text('kid') !== kid ||
    text('kty') !== 'EC' ||
    text('crv') !== 'P-256' ||
    text('x') === undefined ||
    text('y') === undefined ||
    (alg !== undefined && alg !== 'ES256') ||
    !(expired === null || expired === undefined || typeof expired === 'number')
  ) {
    throw new PatchbayError('PB_WEBHOOK_KEY_UNAVAILABLE', 'Plaid\'s /webhook_verification_key/get answered something that is not the EC P-256 key asked for');
  }
  return { kid, kty: 'EC', crv: 'P-256', x: text('x')!, y: text('y')!, ...(alg === undefined ? {} : { alg }), expired_at: expired ?? null };
}

/** Error codes a provider call rejects with that mean "Plaid could not be asked now". */
function isUnavailable(error: PatchbayError): boolean {
  if (error.retry !== 'terminal') return true;
  const cause = error.cause as { status?: unknown; providerCode?: unknown } | undefined;
  // A refused credential is the operator's to fix; until then the sender should keep retrying.
  if (cause?.status === 401 || cause?.status === 403 || cause?.providerCode === 'INVALID_API_KEYS') return true;
  return !(error.code === 'PB_HTTP_CLIENT_ERROR' || error.code === 'PB_PROVIDER_ERROR');
}

/**
 * The production fetcher: calls `webhookVerificationKey.get` on the integration's Plaid
 * `connection` (its client id and secret, its environment's host, the guarded client) with a
 * `timeoutMs` deadline (default 5 s) and a 64 KiB answer limit. Plaid refusing the kid (a 4xx
 * other than a credential problem) is PB_WEBHOOK_BAD_SIGNATURE; everything else that fails is
 * PB_WEBHOOK_KEY_UNAVAILABLE.
 */
export function plaidKeyFetcher(connection: ProviderConnection, timeoutMs = 5_000): PlaidKeyFetcher {
  return async (kid) => {
    let output: unknown;
    try {
      ({ output } = await connection.call(
        'webhookVerificationKey.get',
        { key_id: kid },
        { connectTimeoutMs: timeoutMs, headersTimeoutMs: timeoutMs, totalTimeoutMs: timeoutMs, maxResponseBytes: 64 * 1024 },
      ));
    } catch (error) {
      if (error instanceof PatchbayError && !isUnavailable(error)) {
        throw new PatchbayError('PB_WEBHOOK_BAD_SIGNATURE', `the Plaid-Verification header is refused: Plaid gave no key for its kid (${error.code})`, { cause: error });
      }
      const code = error instanceof PatchbayError ? error.code : 'an unexpected error';
      throw new PatchbayError('PB_WEBHOOK_KEY_UNAVAILABLE', `Plaid's webhook verification key could not be fetched (${code}); the delivery should be retried`, { cause: error });
    }
    return readPlaidVerificationKey(output, kid);
  };
}

/**
 * The verifier for scheme `plaid`. Its `verify` rejects with PB_WEBHOOK_MISSING_SIGNATURE (no
 * header), PB_WEBHOOK_BAD_SIGNATURE (not a JWT, `alg` other than ES256, no usable `kid`, a kid
 * Plaid gave no key for, a retired key, a signature that does not verify, claims missing, or a
 * `request_body_sha256` that is not the body's), PB_WEBHOOK_STALE (`iat` older than the
 * tolerance, or as far in the future) and PB_WEBHOOK_KEY_UNAVAILABLE (Plaid could not be asked,
 * failed for that kid less than `retryUnknownKidAfterMs` ago, or no fetch slot came free in time).
 * Everything but the key and the signature is checked before a key is fetched. Raises
 * PB_WEBHOOK_CONFIG when a fetch limit is not a whole number. Resolves with `iat` as the signing
 * time.
 */
export function createPlaidVerifier(options: PlaidVerifierOptions): WebhookVerifier {
  const header: HeaderName = headerName(options.header ?? 'Plaid-Verification');
  const toleranceMs = options.toleranceMs ?? 5 * minuteMs;
  const maxKeys = options.maxKeys ?? 16;
  const keyTtlMs = options.keyTtlMs ?? 60 * minuteMs;
  const retryUnknownKidAfterMs = options.retryUnknownKidAfterMs ?? minuteMs;
  const maxUnknownKids = options.maxUnknownKids ?? 4096;
  const slots = new FetchSlots(
    { inFlight: options.maxFetchesInFlight ?? 32, waiting: options.maxFetchesWaiting ?? 64, waitMs: options.maxFetchWaitMs ?? 2_000 },
    'Plaid webhook verification keys',
  );
  const keys = new Map<string, CachedKey>();
  const unknownKids = new Map<string, { untilMs: number; error: PatchbayError }>();
  const inFlight = new Map<string, Promise<CachedKey>>();

  const remember = <V>(map: Map<string, V>, kid: string, value: V, limit = maxKeys): void => {
    map.delete(kid);
    map.set(kid, value);
    while (map.size > limit) {
      const oldest = map.keys().next().value;
      if (oldest === undefined) break;
      map.delete(oldest);
    }
  };

  const fetchKey = (kid: string, nowMs: number): Promise<CachedKey> => {
    let pending = inFlight.get(kid);
    if (pending !== undefined) return pending;
    pending = slots.run(async () => {
      const jwk = await options.fetchKey(kid);
      const key = jwk.expired_at === null ? createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y }, format: 'jwk' }) : undefined;
      const entry: CachedKey = { key, fetchedAtMs: nowMs };
      remember(keys, kid, entry);
      unknownKids.delete(kid);
      return entry;
    });
    inFlight.set(kid, pending);
    const settle = (): void => {
      inFlight.delete(kid);
    };
    pending.then(settle, settle);
    return pending;
  };

  const keyFor = async (kid: string, nowMs: number): Promise<CachedKey> => {
    const cached = keys.get(kid);
    if (cached !== undefined) {
      remember(keys, kid, cached);
      if (cached.key === undefined || nowMs - cached.fetchedAtMs < keyTtlMs) return cached;
      try {
        return await fetchKey(kid, nowMs);
      } catch (error) {
        // Plaid could not be asked whether the key expired meanwhile: the cached key, current
        // at its last fetch, keeps verifying rather than every delivery being refused.
        void error;
        return cached;
      }
    }
    const unknown = unknownKids.get(kid);
    if (unknown !== undefined && unknown.untilMs > nowMs) throw unknown.error;
    try {
      return await fetchKey(kid, nowMs);
    } catch (error) {
      // No free slot is the daemon's limit, not an answer about the kid: the next delivery tries again.
      if (slots.refused(error)) throw error;
      const refusal =
        error instanceof PatchbayError && (error.code === 'PB_WEBHOOK_BAD_SIGNATURE' || error.code === 'PB_WEBHOOK_KEY_UNAVAILABLE')
          ? error
          : new PatchbayError('PB_WEBHOOK_KEY_UNAVAILABLE', 'Plaid\'s webhook verification key could not be fetched', { cause: error });
      remember(unknownKids, kid, { untilMs: nowMs + retryUnknownKidAfterMs, error: refusal }, maxUnknownKids);
      throw refusal;
    }
  };

  /** The JWT's claims set from its payload bytes; PB_WEBHOOK_BAD_SIGNATURE when they are not JSON. */
  const readClaims = (payload: Uint8Array): unknown => {
    try {
      return JSON.parse(Buffer.from(payload).toString('utf8'));
    } catch (error) {
      throw new PatchbayError('PB_WEBHOOK_BAD_SIGNATURE', `the ${header.label} header is refused: its claims are not JSON`, { cause: error });
    }
  };

  /**
   * Checks `iat` (within the tolerance of `nowMs`) and `request_body_sha256` (the body's hash,
   * compared in constant time); returns the signing time in Unix milliseconds.
   */
  const checkClaims = (claims: unknown, delivery: InboundDelivery, nowMs: number): number => {
    const claim = (name: string): unknown => (typeof claims === 'object' && claims !== null && Object.hasOwn(claims, name) ? (claims as Record<string, unknown>)[name] : undefined);
    const iat = claim('iat');
    if (typeof iat !== 'number' || !Number.isFinite(iat)) throw badSignature(header, 'it has no iat claim');
    const signedAtMs = Math.floor(iat) * 1000;
    if (Math.abs(nowMs - signedAtMs) > toleranceMs) {
      const skewSeconds = Math.round((signedAtMs - nowMs) / 1000);
      const age = skewSeconds < 0 ? `${-skewSeconds} s old` : `${skewSeconds} s in the future`;
      throw new PatchbayError('PB_WEBHOOK_STALE', `the ${header.label} iat is ${age}, outside the ${Math.floor(toleranceMs / 1000)} s tolerance (a replayed delivery, or a clock that is wrong here)`);
    }
    const claimed = claim('request_body_sha256');
    if (typeof claimed !== 'string' || !sha256Hex.test(claimed)) throw badSignature(header, 'it has no request_body_sha256 claim');
    const actual = createHash('sha256').update(delivery.rawBody).digest();
    if (!timingSafeEqual(actual, Buffer.from(claimed, 'hex'))) {
      throw badSignature(header, 'its request_body_sha256 is not the SHA-256 of the body (a body changed on the way)');
    }
    return signedAtMs;
  };

  return {
    scheme: 'plaid',
    async verify(delivery: InboundDelivery, nowMs: number): Promise<VerifiedDelivery> {
      const token = headerValue(delivery, header);
      if (token === undefined) throw missingHeader(header);
      let protectedHeader: ReturnType<typeof decodeProtectedHeader>;
      try {
        protectedHeader = decodeProtectedHeader(token);
      } catch (error) {
        throw new PatchbayError('PB_WEBHOOK_BAD_SIGNATURE', `the ${header.label} header is refused: it is not a JWT`, { cause: error });
      }
      const parts = token.split('.');
      if (parts.length !== 3) throw badSignature(header, 'it is not a signed JWT (compact JWS)');
      if (protectedHeader.alg !== 'ES256') throw badSignature(header, 'its alg is not ES256, the only algorithm Plaid signs with');
      const kid = protectedHeader.kid;
      if (typeof kid !== 'string' || !kidPattern.test(kid)) throw badSignature(header, 'it names no usable key id (kid)');
      if (!es256Signature.test(parts[2]!)) throw badSignature(header, 'its signature is not an ES256 signature (64 bytes)');
      // The claims, unverified: checked now so that a stale or replayed token, or one made for
      // another body, is refused without asking Plaid for a key. They count only once the
      // signature (which covers these very bytes) verifies, and are checked again then.
      checkClaims(readClaims(Buffer.from(parts[1]!, 'base64url')), delivery, nowMs);
      const { key } = await keyFor(kid, nowMs);
      if (key === undefined) throw badSignature(header, 'its key was retired by Plaid (expired_at is set)');
      let payload: Uint8Array;
      try {
        ({ payload } = await compactVerify(token, key, { algorithms: ['ES256'] }));
      } catch (error) {
        throw new PatchbayError('PB_WEBHOOK_BAD_SIGNATURE', `the ${header.label} header is refused: its signature does not verify with Plaid's key ${kid}`, { cause: error });
      }
      const signedAtMs = checkClaims(readClaims(payload), delivery, nowMs);
      return { signedAtMs };
    },
  };
}
