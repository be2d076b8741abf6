import { createHash, timingSafeEqual } from 'node:crypto';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { PatchbayError } from '../../diag/errors.js';
import { systemClock, type Clock } from '../../lib/clock.js';

/**
 * Authentication of the admin API and `/metrics`: static bearer tokens from the environment, or
 * JWTs signed by an identity provider and verified against its JWKS. Settings are parsed once at
 * start (`parseAdminAuthSettings`) and keep only SHA-256 digests of the tokens, so no token
 * value lives on in the settings, a log line or an error.
 */

/** What a credential may do. `operate` implies `read`. */
export const AdminScope = { read: 'patchbay:read', operate: 'patchbay:operate' } as const;
export type AdminScope = (typeof AdminScope)[keyof typeof AdminScope];

/** Signature algorithms accepted for admin JWTs: asymmetric only (an HMAC key would be the public JWKS). */
export const adminJwtAlgorithms: readonly string[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

/** Shortest accepted static token, in characters: a short token can be guessed online. */
export const minAdminTokenLength = 16;

interface TokenEntry {
  /** SHA-256 of the token: compared in constant time, and the token itself is not kept. */
  readonly digest: Buffer;
  readonly scopes: readonly AdminScope[];
  /** Names the credential in logs: `token:admin` or `token:read`. */
  readonly subject: string;
}

/** Parsed admin authentication settings (see `parseAdminAuthSettings`). */
export interface AdminAuthSettings {
  readonly tokens: readonly TokenEntry[];
  readonly jwt:
    | {
        readonly jwksUrl: URL;
        readonly issuer: string;
        readonly audience: string;
        /** Leeway on `exp` and `nbf`, in seconds. */
        readonly clockToleranceSec: number;
      }
    | undefined;
}

/** Leeway on JWT times. @default 30 s: enough for clock drift, too little to stretch a stolen token. */
const defaultClockToleranceSec = 30;

function digestOf(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** True for `localhost`, `127.0.0.0/8` and `::1`: the hosts where plain http stays on this machine. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function readToken(env: Readonly<Record<string, string | undefined>>, name: string): string | undefined {
  const value = env[name];
  if (value === undefined || value === '') return undefined;
  if (value.trim() !== value || /\s/.test(value)) throw new PatchbayError('PB_ADMIN_CONFIG', `${name} contains white space; a bearer token cannot (check how it was pasted)`);
  if (value.length < minAdminTokenLength) throw new PatchbayError('PB_ADMIN_CONFIG', `${name} is shorter than ${minAdminTokenLength} characters; use a long random value (openssl rand -hex 32)`);
  return value;
}

/**
 * Reads the admin authentication settings from an environment:
 * - `PATCHBAY_ADMIN_TOKEN`: bearer token with read and operate scopes;
 * - `PATCHBAY_ADMIN_READ_TOKEN`: bearer token with the read scope only;
 * - `PATCHBAY_ADMIN_JWKS_URL` with `PATCHBAY_ADMIN_JWT_ISSUER` and `PATCHBAY_ADMIN_JWT_AUDIENCE`
 *   (both required with it): JWTs signed by a key of that JWKS, asymmetric algorithms only, with
 *   the scopes in `scope` (space separated) or `scp` (array or space separated).
 * Nothing set is valid (every request is then refused; see `adminAuthWarning`). Tokens must be at
 * least 16 characters, without white space, and distinct; the JWKS URL must be https unless its
 * host is loopback. Throws PatchbayError PB_ADMIN_CONFIG naming the variable, never its value.
 */
export function parseAdminAuthSettings(env: Readonly<Record<string, string | undefined>>): AdminAuthSettings {
  const tokens: TokenEntry[] = [];
  const admin = readToken(env, 'PATCHBAY_ADMIN_TOKEN');
  const read = readToken(env, 'PATCHBAY_ADMIN_READ_TOKEN');
  if (admin !== undefined && admin === read) {
    throw new PatchbayError('PB_ADMIN_CONFIG', 'PATCHBAY_ADMIN_TOKEN and PATCHBAY_ADMIN_READ_TOKEN are the same; give the read-only token its own value');
  }
  if (admin !== undefined) tokens.push({ digest: digestOf(admin), scopes: [AdminScope.read, AdminScope.operate], subject: 'token:admin' });
  if (read !== undefined) tokens.push({ digest: digestOf(read), scopes: [AdminScope.read], subject: 'token:read' });

  const jwksText = env.PATCHBAY_ADMIN_JWKS_URL || undefined;
  const issuer = env.PATCHBAY_ADMIN_JWT_ISSUER || undefined;
  const audience = env.PATCHBAY_ADMIN_JWT_AUDIENCE || undefined;
  if (jwksText === undefined) {
    if (issuer !== undefined || audience !== undefined) {
      throw new PatchbayError('PB_ADMIN_CONFIG', 'PATCHBAY_ADMIN_JWT_ISSUER or PATCHBAY_ADMIN_JWT_AUDIENCE is set without PATCHBAY_ADMIN_JWKS_URL; set the JWKS URL of the identity provider too');
    }
    return { tokens, jwt: undefined };
  }
  let jwksUrl: URL;
  try {
    jwksUrl = new URL(jwksText);
  } catch (error) {
    throw new PatchbayError('PB_ADMIN_CONFIG', 'PATCHBAY_ADMIN_JWKS_URL is not a URL', { cause: error });
  }
  if (jwksUrl.username !== '' || jwksUrl.password !== '') throw new PatchbayError('PB_ADMIN_CONFIG', 'PATCHBAY_ADMIN_JWKS_URL must not carry a user name or password');
  if (jwksUrl.protocol !== 'https:' && !(jwksUrl.protocol === 'http:' && isLoopbackHost(jwksUrl.hostname))) {
    throw new PatchbayError('PB_ADMIN_CONFIG', `PATCHBAY_ADMIN_JWKS_URL must be https (plain http only to a loopback host), not ${jwksUrl.protocol.replace(':', '')}://${jwksUrl.host}`);
  }
  if (issuer === undefined || audience === undefined) {
    throw new PatchbayError('PB_ADMIN_CONFIG', `PATCHBAY_ADMIN_JWKS_URL is set without ${issuer === undefined ? 'PATCHBAY_ADMIN_JWT_ISSUER' : 'PATCHBAY_ADMIN_JWT_AUDIENCE'}; tokens are only accepted for a named issuer and audience`);
  }
  return { tokens, jwt: { jwksUrl, issuer, audience, clockToleranceSec: defaultClockToleranceSec } };
}

/**
 * The line the daemon should log at start when no admin credential is configured (every admin
 * and metrics request is then answered 401), or undefined when one is.
 */
export function adminAuthWarning(settings: AdminAuthSettings): string | undefined {
  if (settings.tokens.length > 0 || settings.jwt !== undefined) return undefined;
  return 'no admin credential is configured (PATCHBAY_ADMIN_TOKEN, PATCHBAY_ADMIN_READ_TOKEN or PATCHBAY_ADMIN_JWKS_URL): the admin API and /metrics refuse every request';
}

/** Who made an admin request, once authenticated. */
export interface AdminPrincipal {
  /** `token:admin`, `token:read`, or `jwt:<sub>` (for logs; never a credential). */
  readonly subject: string;
  readonly scopes: ReadonlySet<AdminScope>;
}

export interface AdminAuthenticatorOptions {
  /** Time for JWT `exp`/`nbf` checks. @default systemClock */
  readonly clock?: Clock;
  /** Time limit of a JWKS download. @default 5_000 */
  readonly jwksTimeoutMs?: number;
  /** Key source instead of the remote JWKS (tests of the verifier alone). */
  readonly keys?: JWTVerifyGetKey;
}

const jwtShape = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/**
 * Checks the `Authorization` header of admin requests. One per daemon: it caches the JWKS (jose's
 * remote key set: refetched at most every 30 s for an unknown key id, kept 10 min).
 */
export class AdminAuthenticator {
  private readonly clock: Clock;
  private readonly keys: JWTVerifyGetKey | undefined;

  constructor(
    readonly settings: AdminAuthSettings,
    options: AdminAuthenticatorOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.keys =
      options.keys ??
      (settings.jwt === undefined ? undefined : createRemoteJWKSet(settings.jwt.jwksUrl, { timeoutDuration: options.jwksTimeoutMs ?? 5_000, cooldownDuration: 30_000, cacheMaxAge: 600_000 }));
  }

  /**
   * Authenticates a request from its `Authorization` header value (`Bearer <token>`). Resolves
   * with the principal; rejects with PatchbayError PB_ADMIN_UNAUTHENTICATED (no header, not
   * Bearer, unknown token, a JWT that fails any check, nothing configured) or
   * PB_ADMIN_AUTH_UNAVAILABLE (the JWKS could not be fetched). Messages never quote the token.
   */
  async authenticate(authorization: string | undefined): Promise<AdminPrincipal> {
    if (this.settings.tokens.length === 0 && this.settings.jwt === undefined) {
      throw new PatchbayError('PB_ADMIN_UNAUTHENTICATED', 'no admin credential is configured on this daemon (set PATCHBAY_ADMIN_TOKEN or PATCHBAY_ADMIN_JWKS_URL)');
    }
    if (authorization === undefined || authorization === '') throw new PatchbayError('PB_ADMIN_UNAUTHENTICATED', 'send an Authorization: Bearer header');
    const match = /^Bearer +(\S+) *$/i.exec(authorization);
    if (match === null) throw new PatchbayError('PB_ADMIN_UNAUTHENTICATED', 'the Authorization header must be "Bearer <token>"');
    const token = match[1]!;

    // Every configured token is compared (no early exit), over fixed-length digests, in constant time.
    const presented = digestOf(token);
    let found: TokenEntry | undefined;
    for (const entry of this.settings.tokens) {
      if (timingSafeEqual(presented, entry.digest) && found === undefined) found = entry;
    }
    if (found !== undefined) return { subject: found.subject, scopes: new Set(found.scopes) };

    if (this.keys !== undefined && this.settings.jwt !== undefined && jwtShape.test(token)) return this.verifyJwt(token, this.keys, this.settings.jwt);
    throw new PatchbayError('PB_ADMIN_UNAUTHENTICATED', 'the bearer token is not valid');
  }

  private async verifyJwt(token: string, keys: JWTVerifyGetKey, jwt: NonNullable<AdminAuthSettings['jwt']>): Promise<AdminPrincipal> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        issuer: jwt.issuer,
        audience: jwt.audience,
        algorithms: [...adminJwtAlgorithms],
        clockTolerance: jwt.clockToleranceSec,
        currentDate: new Date(this.clock.now()),
        requiredClaims: ['exp'],
      }));
    } catch (error) {
      throw jwtError(error);
    }
    const scopes = new Set<AdminScope>();
    for (const scope of scopesOf(payload)) {
      if (scope === AdminScope.operate) {
        scopes.add(AdminScope.operate);
        scopes.add(AdminScope.read);
      } else if (scope === AdminScope.read) scopes.add(AdminScope.read);
    }
    const sub = typeof payload.sub === 'string' ? payload.sub.replace(/[^\w.@:-]/g, '?').slice(0, 64) : '?';
    return { subject: `jwt:${sub}`, scopes };
  }
}

/** Scope names from `scope` (space separated) and `scp` (an array, or space separated). */
function scopesOf(payload: JWTPayload): string[] {
  const found: string[] = [];
  for (const claim of [payload.scope, payload.scp]) {
    if (typeof claim === 'string') found.push(...claim.split(' ').filter((s) => s !== ''));
    else if (Array.isArray(claim)) found.push(...claim.filter((s): s is string => typeof s === 'string'));
  }
  return found;
}

/** Maps jose's failure to ours: the key set not reachable is transient, everything else a refusal. */
function jwtError(error: unknown): PatchbayError {
  if (error instanceof joseErrors.JWKSTimeout) return new PatchbayError('PB_ADMIN_AUTH_UNAVAILABLE', 'the JWKS endpoint did not answer in time', { cause: error });
  if (error instanceof joseErrors.JWKSInvalid) return new PatchbayError('PB_ADMIN_AUTH_UNAVAILABLE', 'the JWKS endpoint answered something that is not a key set', { cause: error });
  if (!(error instanceof joseErrors.JOSEError)) return new PatchbayError('PB_ADMIN_AUTH_UNAVAILABLE', 'the JWKS endpoint could not be reached', { cause: error });
  // A plain JOSEError with the generic code is jose's fetch failing (a non-200 answer, not JSON).
  if (error.code === 'ERR_JOSE_GENERIC') return new PatchbayError('PB_ADMIN_AUTH_UNAVAILABLE', 'the JWKS endpoint did not answer with a key set', { cause: error });
  let reason = 'its signature or form is not valid';
  if (error instanceof joseErrors.JWTExpired) reason = 'it has expired';
  else if (error instanceof joseErrors.JWTClaimValidationFailed) reason = `its "${error.claim}" claim is not accepted${error.claim === 'nbf' ? ' (not yet valid)' : ''}`;
  else if (error instanceof joseErrors.JOSEAlgNotAllowed) reason = 'its algorithm is not accepted (asymmetric algorithms only)';
  else if (error instanceof joseErrors.JWKSNoMatchingKey) reason = 'no key of the JWKS matches it';
  return new PatchbayError('PB_ADMIN_UNAUTHENTICATED', `the JWT is refused: ${reason}`, { cause: error });
}

/**
 * Throws PatchbayError PB_ADMIN_FORBIDDEN unless `principal` holds `scope` (operate implies read,
 * already expanded in the principal).
 */
export function requireScope(principal: AdminPrincipal, scope: AdminScope): void {
  if (!principal.scopes.has(scope)) {
    throw new PatchbayError('PB_ADMIN_FORBIDDEN', `this request needs the ${scope} scope, which the credential does not have`);
  }
}
