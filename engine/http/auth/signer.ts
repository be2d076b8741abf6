import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/log.js';
import type { SecretSet } from '../../lib/secrets.js';
import type { InboundResponse, OutboundRequest } from '../request.js';

/**
 * What every auth scheme is, seen from the HTTP client: a function from an unsigned request to a
 * signed copy. Signers never mutate their argument, so a retry re-signs the original request (a
 * fresh SigV4 date, a refreshed token). Sign last: a header changed after signing breaks SigV4.
 */
export interface Signer {
  /** Returns a signed copy of `request`. Token-based signers may fetch a token first. */
  sign(request: OutboundRequest): Promise<OutboundRequest>;
  /**
   * Present on signers whose credential can be renewed (OAuth 2.0, exchanged or self-signed JWTs).
   * Drops the cached token so the next `sign` fetches a new one; call it once after a 401 and
   * retry once. Pass the signed request that was refused: the token is only dropped when it is
   * still the cached one, so many concurrent 401s for one token cause one refresh, not one each.
   */
  invalidate?(rejected?: OutboundRequest): void;
}

/** Sends one request and reads the whole answer: the HttpClient, or `createUndiciSend`. */
export type SendFunction = (request: OutboundRequest) => Promise<InboundResponse>;

/** Something that hands out a currently valid token (cached and renewed by `TokenCache`). */
export interface TokenSource {
  /** A token valid now. Errors: PB_AUTH_TOKEN_REJECTED (terminal), PB_AUTH_TOKEN_UNAVAILABLE (transient). */
  token(): Promise<string>;
  /** Drops the cached token, or only `rejected` when given and still cached. */
  invalidate(rejected?: string): void;
}

/** What token sources need from the engine; every field has a default. */
export interface TokenSourceContext {
  /** @default systemClock */
  readonly clock?: Clock;
  /** Warnings (an unpersisted rotated token); never given a secret. @default silentLogger */
  readonly logger?: Logger;
  /** Transport to the token endpoint. @default createUndiciSend() */
  readonly send?: SendFunction;
  /** Issued tokens and rotated refresh tokens are added here, for redaction. */
  readonly secrets?: SecretSet;
  /**
   * Stores a rotated refresh token (for `{ file }` references, `writeSecret`). Awaited before the
   * new token is used; if it throws, a warning is logged and the new token is still used.
   */
  readonly persistRefreshToken?: (refreshToken: string) => Promise<void>;
  /** Lifetime assumed when the endpoint gives none. @default 3_600_000 */
  readonly defaultLifetimeMs?: number;
}

/** A copy of `request` with header `name` (lower-cased) set to `value`, replacing any earlier value. */
export function withHeader(request: OutboundRequest, name: string, value: string): OutboundRequest {
  return { ...request, headers: { ...request.headers, [name.toLowerCase()]: value } };
}
