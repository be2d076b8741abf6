import { PatchbayError } from '../../diag/errors.js';
import { systemClock } from '../../lib/clock.js';
import { silentLogger } from '../../lib/log.js';
import type { OutboundRequest } from '../request.js';
import type { TokenSource, TokenSourceContext } from './signer.js';
import { TokenCache } from './token-cache.js';
import { formEncode, requestToken, type TokenAnswerShape } from './token-endpoint.js';
import { createUndiciSend } from './undici-send.js';

/** An OAuth 2.0 credential, secrets resolved. */
export interface OAuth2Options extends TokenAnswerShape {
  /** Placeholders already filled in (`parseTokenUrl`). */
  readonly tokenUrl: URL;
  readonly grant: 'clientCredentials' | 'refreshToken';
  readonly clientId: string;
  readonly clientSecret: string;
  /** Required with `grant: 'refreshToken'`. */
  readonly refreshToken?: string;
  /** Sent space-separated as `scope`. */
  readonly scopes?: readonly string[];
  /** Sent as `audience` (Auth0 and others). */
  readonly audience?: string;
  /** HTTP basic (RFC 6749 §2.3.1) or `client_id`/`client_secret` form fields. @default 'basic' */
  readonly clientAuth?: 'basic' | 'body';
}

// RFC 6749 §2.3.1 and Appendix B: id and secret are form-encoded before they are joined and
// base64-encoded, so a secret holding `:` or `+` survives.
const formComponent = (text: string): string => new URLSearchParams({ x: text }).toString().slice(2);

/**
 * An OAuth 2.0 token source for the client-credentials and refresh-token grants. Tokens are
 * cached and renewed ahead of expiry with one request at a time (see `TokenCache`). When the
 * endpoint rotates the refresh token, the new one is persisted (`persistRefreshToken`) and used
 * from then on. Errors: PB_AUTH_BAD_SETTINGS at creation (refresh grant without a refresh token);
 * at `token()` time PB_AUTH_TOKEN_REJECTED (terminal) or PB_AUTH_TOKEN_UNAVAILABLE (transient),
 * whose messages never hold the client secret, the refresh token or an access token.
 */
export function createOAuth2TokenSource(options: OAuth2Options, context: TokenSourceContext = {}): TokenSource {
  const clock = context.clock ?? systemClock;
  const logger = context.logger ?? silentLogger;
  const send = context.send ?? createUndiciSend();
  if (options.grant === 'refreshToken' && (options.refreshToken === undefined || options.refreshToken === '')) {
    throw new PatchbayError('PB_AUTH_BAD_SETTINGS', 'the refreshToken grant needs a `refreshToken`');
  }
  let refreshToken = options.refreshToken;
  const clientAuth = options.clientAuth ?? 'basic';

  const fetchToken = async () => {
    const params: Record<string, string | undefined> =
      options.grant === 'refreshToken'
        ? { grant_type: 'refresh_token', refresh_token: refreshToken }
        : { grant_type: 'client_credentials' };
    if (options.scopes !== undefined && options.scopes.length > 0) params.scope = options.scopes.join(' ');
    params.audience = options.audience;
    const headers: Record<string, string> = {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    };
    if (clientAuth === 'basic') {
      const pair = `${formComponent(options.clientId)}:${formComponent(options.clientSecret)}`;
      headers.authorization = `Basic ${Buffer.from(pair, 'utf8').toString('base64')}`;
    } else {
      params.client_id = options.clientId;
      params.client_secret = options.clientSecret;
    }
    const request: OutboundRequest = { method: 'POST', url: options.tokenUrl, headers, body: formEncode(params) };
    const secrets = [options.clientSecret, ...(refreshToken === undefined ? [] : [refreshToken])];
    const { token, fields } = await requestToken({ request, send, clock, shape: options, secrets });
    context.secrets?.add(token.value);
    const rotated = fields.refresh_token;
    if (options.grant === 'refreshToken' && typeof rotated === 'string' && rotated !== '' && rotated !== refreshToken) {
      context.secrets?.add(rotated);
      await persistRotated(rotated);
      refreshToken = rotated;
    }
    return token;
  };

  const persistRotated = async (rotated: string) => {
    if (context.persistRefreshToken === undefined) {
      logger.log('warn', 'the token endpoint rotated the refresh token and nothing persists it: it is kept in memory until restart', {
        code: 'PB_SECRET_NOT_WRITABLE',
        tokenUrl: `${options.tokenUrl.origin}${options.tokenUrl.pathname}`,
      });
      return;
    }
    try {
      await context.persistRefreshToken(rotated);
    } catch (error) {
      // The old refresh token is already spent: keep going with the new one in memory.
      logger.log('warn', 'a rotated refresh token could not be persisted: it is kept in memory until restart', {
        code: error instanceof PatchbayError ? error.code : 'PB_SECRET_NOT_WRITABLE',
        reason: error instanceof PatchbayError ? error.message : ((error as NodeJS.ErrnoException).code ?? 'unknown'),
        tokenUrl: `${options.tokenUrl.origin}${options.tokenUrl.pathname}`,
      });
    }
  };

  return new TokenCache(fetchToken, { clock, defaultLifetimeMs: context.defaultLifetimeMs });
}
