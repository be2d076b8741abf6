import { createPrivateKey, createSecretKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import { PatchbayError } from '../../diag/errors.js';
import { systemClock, type Clock } from '../../lib/clock.js';
import type { OutboundRequest } from '../request.js';
import type { TokenSource, TokenSourceContext } from './signer.js';
import { TokenCache, type IssuedToken } from './token-cache.js';
import { formEncode, requestToken, type TokenAnswerShape } from './token-endpoint.js';
import { createUndiciSend } from './undici-send.js';

export type JwtAlgorithm = 'RS256' | 'ES256' | 'HS256';

/** A self-signed JWT credential, secrets resolved. */
export interface JwtOptions {
  /** @default 'RS256' */
  readonly algorithm?: JwtAlgorithm;
  /**
   * RS256/ES256: a PEM private key (PKCS#8, PKCS#1 `RSA PRIVATE KEY` as GitHub App keys come, or
   * SEC1 `EC PRIVATE KEY`), a private JWK as JSON, or a Google service-account JSON key file
   * (its `private_key` is used). HS256: the shared secret, as UTF-8 text.
   */
  readonly privateKey: string;
  /** `iss`: a service-account e-mail, a GitHub App id. */
  readonly issuer: string;
  readonly subject?: string;
  /** `aud`; for `assertion` exchanges it defaults to the token URL (Google's requirement). */
  readonly audience?: string;
  /** `kid` header. */
  readonly keyId?: string;
  /** Sent as the space-separated `scope` claim (Google service accounts). */
  readonly scopes?: readonly string[];
  /** `exp - iat`; GitHub accepts at most 10 minutes, Google one hour. @default 600_000 */
  readonly expiresInMs?: number;
  /** `iat` is set this far in the past, against clock drift (GitHub recommends 60 s). @default 60_000 */
  readonly backdateMs?: number;
}

/** How a signed JWT is traded for an access token. */
export interface JwtExchangeOptions extends TokenAnswerShape {
  /**
   * `assertion`: RFC 7523 — POST form `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`
   * and `assertion=<jwt>`; answer `access_token` + `expires_in` (Google service accounts).
   * `bearer`: POST with `Authorization: Bearer <jwt>`; answer `token` + `expires_at` (GitHub App
   * installation tokens). The answer paths can be overridden.
   */
  readonly mode: 'assertion' | 'bearer';
  /** Placeholders already filled in (`parseTokenUrl`). */
  readonly tokenUrl: URL;
}

const badKey = (message: string, cause?: unknown) => new PatchbayError('PB_AUTH_BAD_KEY', message, cause === undefined ? {} : { cause });

function importPem(pem: string): KeyObject {
  // A PEM pasted into an environment variable often carries `\n` escapes instead of line breaks.
  const text = pem.includes('\n') ? pem : pem.replace(/\\n/g, '\n');
  try {
    return createPrivateKey(text);
  } catch (error) {
    throw badKey('the JWT private key is PEM-armoured but cannot be read as a private key (PKCS#8, PKCS#1 or SEC1)', error);
  }
}

/**
 * Reads the signing key for `algorithm` from text (see `JwtOptions.privateKey`), with
 * node:crypto, which reads PKCS#1 where jose's `importPKCS8` does not; jose signs with the
 * resulting KeyObject. Throws PB_AUTH_BAD_KEY when the text is none of the accepted forms, is a
 * public key, or is the wrong key type for the algorithm (RS256 needs RSA, ES256 a P-256 key).
 * No message quotes the key.
 */
export function importSigningKey(text: string, algorithm: JwtAlgorithm): KeyObject {
  if (algorithm === 'HS256') {
    if (text === '') throw badKey('the HS256 secret is empty');
    return createSecretKey(Buffer.from(text, 'utf8'));
  }
  const trimmed = text.trim();
  let key: KeyObject;
  if (trimmed.startsWith('-----BEGIN')) {
    key = importPem(trimmed);
  } else if (trimmed.startsWith('{')) {
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(trimmed) as Record<string, unknown>;
    } catch (error) {
      throw badKey('the JWT private key starts like JSON but does not parse', error);
    }
    if (typeof parsed.private_key === 'string') {
      key = importPem(parsed.private_key);
    } else {
      try {
        key = createPrivateKey({ key: parsed as JsonWebKey, format: 'jwk' });
      } catch (error) {
        throw badKey('the JWT private key is JSON but not a private JWK (a public JWK has no "d")', error);
      }
    }
  } else {
    throw badKey(`the ${algorithm} private key is neither PEM, a JWK nor a service-account JSON key`);
  }
  const type = key.asymmetricKeyType;
  if (algorithm === 'RS256' && type !== 'rsa') throw badKey(`RS256 needs an RSA private key, not ${type ?? 'this key'}`);
  if (algorithm === 'ES256' && (type !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1')) {
    throw badKey('ES256 needs an EC private key on the P-256 curve');
  }
  return key;
}

/**
 * Returns a function that signs a fresh JWT on each call: `iat` = now − backdate, `exp` = `iat` +
 * expiresIn (whole seconds), `iss`, optional `sub`, `aud`, `scope` and `kid`; header `typ: JWT`.
 * The key is read at once: PB_AUTH_BAD_KEY is thrown here, not at the first call.
 */
export function createJwtMinter(options: JwtOptions, clock: Clock = systemClock, audience = options.audience): () => Promise<IssuedToken> {
  const algorithm = options.algorithm ?? 'RS256';
  const key = importSigningKey(options.privateKey, algorithm);
  const lifetimeSeconds = Math.ceil((options.expiresInMs ?? 600_000) / 1000);
  const backdateMs = options.backdateMs ?? 60_000;
  return async () => {
    const iat = Math.floor((clock.now() - backdateMs) / 1000);
    const exp = iat + lifetimeSeconds;
    const claims: Record<string, unknown> = {};
    if (options.scopes !== undefined && options.scopes.length > 0) claims.scope = options.scopes.join(' ');
    const jwt = new SignJWT(claims)
      .setProtectedHeader({ alg: algorithm, typ: 'JWT', ...(options.keyId === undefined ? {} : { kid: options.keyId }) })
      .setIssuer(options.issuer)
      .setIssuedAt(iat)
      .setExpirationTime(exp);
    if (options.subject !== undefined) jwt.setSubject(options.subject);
    if (audience !== undefined) jwt.setAudience(audience);
    return { value: await jwt.sign(key), expiresAtMs: exp * 1000 };
  };
}

/**
 * A token source from a self-signed JWT. Without `exchange` the JWT itself is the token (GitHub
 * App JWTs), reused until shortly before it expires. With `exchange` it is traded at the token
 * URL (see `JwtExchangeOptions`) and the access token is cached the same way: single-flight,
 * renewed ahead of expiry. Errors: PB_AUTH_BAD_KEY at creation; PB_AUTH_TOKEN_REJECTED or
 * PB_AUTH_TOKEN_UNAVAILABLE from the exchange, never quoting the JWT or the key.
 */
export function createJwtTokenSource(options: JwtOptions & { readonly exchange?: JwtExchangeOptions }, context: TokenSourceContext = {}): TokenSource {
  const clock = context.clock ?? systemClock;
  const exchange = options.exchange;
  const cacheOptions = { clock, defaultLifetimeMs: context.defaultLifetimeMs };
  if (options.algorithm === 'HS256') context.secrets?.add(options.privateKey);
  if (exchange === undefined) {
    const mint = createJwtMinter(options, clock);
    return new TokenCache(async () => {
      const token = await mint();
      context.secrets?.add(token.value);
      return token;
    }, cacheOptions);
  }
  const audience = options.audience ?? (exchange.mode === 'assertion' ? exchange.tokenUrl.href : undefined);
  const mint = createJwtMinter(options, clock, audience);
  const send = context.send ?? createUndiciSend();
  const shape: TokenAnswerShape =
    exchange.mode === 'bearer'
      ? { tokenPath: exchange.tokenPath ?? 'token', expiresAtPath: exchange.expiresAtPath ?? 'expires_at', expiresInPath: exchange.expiresInPath }
      : exchange;
  return new TokenCache(async () => {
    const jwt = (await mint()).value;
    context.secrets?.add(jwt);
    const request: OutboundRequest =
      exchange.mode === 'bearer'
        ? { method: 'POST', url: exchange.tokenUrl, headers: { authorization: `Bearer ${jwt}`, accept: 'application/json' } }
        : {
            method: 'POST',
            url: exchange.tokenUrl,
            headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
            body: formEncode({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: jwt }),
          };
    const { token } = await requestToken({ request, send, clock, shape, secrets: [jwt, options.privateKey] });
    context.secrets?.add(token.value);
    return token;
  }, cacheOptions);
}
