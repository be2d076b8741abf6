import { PatchbayError } from '../../diag/errors.js';
import type { OutboundRequest } from '../request.js';
import { createApiKeySigner } from './api-key.js';
import { createBasicSigner } from './basic.js';
import { createBearerSigner, createTokenSigner } from './bearer.js';
import { createJwtTokenSource, type JwtOptions } from './jwt.js';
import { createOAuth2TokenSource } from './oauth2.js';
import type { Signer, TokenSourceContext } from './signer.js';
import { createSigV4Signer } from './sigv4.js';
import { parseTokenUrl } from './token-endpoint.js';

/**
 * The provider's declared scheme, as `schemas/provider.schema.json` `$defs.authScheme` has it
 * (a `ProviderAuthScheme` is assignable to it); only the fields signing needs.
 */
export interface AuthSchemeSettings {
  readonly type: 'none' | 'apiKey' | 'bearer' | 'basic' | 'oauth2' | 'jwt' | 'awsSigV4';
  /** apiKey: @default 'header' */
  readonly in?: 'header' | 'query';
  /** apiKey: header or query parameter name. */
  readonly name?: string;
  /** apiKey: before the key (default ''); bearer/oauth2/jwt: before the token (default 'Bearer '). */
  readonly prefix?: string;
  /** bearer/oauth2/jwt: the header carrying the token. @default 'Authorization' */
  readonly header?: string;
  /** oauth2 and jwt exchanges; may hold `{variables}`. */
  readonly tokenUrl?: string;
  /** jwt: default `aud`. */
  readonly audience?: string;
  /** jwt: trade the JWT at `tokenUrl` instead of sending it. @default false */
  readonly tokenExchange?: boolean;
  /** jwt exchanges. @default 'assertion' */
  readonly exchange?: 'assertion' | 'bearer';
  readonly tokenPath?: string;
  readonly expiresInPath?: string;
  readonly expiresAtPath?: string;
  /** oauth2. @default 'basic' */
  readonly clientAuth?: 'basic' | 'body';
  /** awsSigV4: the signing name. */
  readonly service?: string;
}

/** A connection's `auth` with every secret reference resolved to its value. */
export type ResolvedAuth =
  | { readonly type: 'none' }
  | { readonly type: 'apiKey'; readonly key: string; readonly in?: 'header' | 'query'; readonly name?: string }
  | { readonly type: 'bearer'; readonly token: string }
  | { readonly type: 'basic'; readonly username: string; readonly password: string }
  | {
      readonly type: 'oauth2';
      readonly grant: 'clientCredentials' | 'refreshToken';
      readonly clientId: string;
      readonly clientSecret: string;
      readonly refreshToken?: string;
      /** Overrides the scheme's. */
      readonly tokenUrl?: string;
      readonly scopes?: readonly string[];
      readonly audience?: string;
    }
  | ({ readonly type: 'jwt' } & JwtOptions)
  | {
      readonly type: 'awsSigV4';
      readonly accessKeyId: string;
      readonly secretAccessKey: string;
      readonly sessionToken?: string;
      /** @default context.variables.region */
      readonly region?: string;
    };

export interface SignerContext extends TokenSourceContext {
  /** The connection's variables: fill `{name}` in token URLs; `region` for SigV4. */
  readonly variables?: Readonly<Record<string, string>>;
}

const unsigned: Signer = { sign: async (request: OutboundRequest) => request };

/**
 * Builds the signer for one connection from the provider's scheme and the connection's resolved
 * auth. Nothing is fetched here (tokens come at the first `sign`), but settings and keys are
 * checked: PB_AUTH_UNSUPPORTED when the types differ; PB_AUTH_BAD_SETTINGS for a missing
 * apiKey name, token URL, SigV4 service or region, an unknown `{variable}` or plain-http token
 * URL, a basic user name with a colon; PB_AUTH_BAD_KEY for an unreadable JWT key.
 */
export function createSigner(scheme: AuthSchemeSettings, auth: ResolvedAuth, context: SignerContext = {}): Signer {
  if (scheme.type !== auth.type) {
    throw new PatchbayError('PB_AUTH_UNSUPPORTED', `the connection uses ${auth.type} auth but the provider scheme is ${scheme.type}`);
  }
  const variables = context.variables ?? {};
  const tokenHeader = { header: scheme.header ?? 'authorization', prefix: scheme.prefix ?? 'Bearer ' };
  const tokenUrl = (text: string | undefined) => {
    if (text === undefined) throw new PatchbayError('PB_AUTH_BAD_SETTINGS', `${auth.type} auth needs a token URL and neither the connection nor the provider gives one`);
    return parseTokenUrl(text, variables);
  };
  switch (auth.type) {
    case 'none':
      return unsigned;
    case 'apiKey': {
      const name = auth.name ?? scheme.name;
      if (name === undefined) throw new PatchbayError('PB_AUTH_BAD_SETTINGS', 'apiKey auth needs the header or query parameter `name`');
      return createApiKeySigner({ key: auth.key, name, in: auth.in ?? scheme.in ?? 'header', prefix: scheme.prefix ?? '' });
    }
    case 'bearer':
      return createBearerSigner({ token: auth.token, ...tokenHeader });
    case 'basic':
      return createBasicSigner(auth);
    case 'oauth2': {
      const source = createOAuth2TokenSource(
        {
          ...pickShape(scheme),
          tokenUrl: tokenUrl(auth.tokenUrl ?? scheme.tokenUrl),
          grant: auth.grant,
          clientId: auth.clientId,
          clientSecret: auth.clientSecret,
          refreshToken: auth.refreshToken,
          scopes: auth.scopes,
          audience: auth.audience,
          clientAuth: scheme.clientAuth ?? 'basic',
        },
        context,
      );
      return createTokenSigner(source, tokenHeader);
    }
    case 'jwt': {
      const { type: _type, ...jwt } = auth;
      const audience = jwt.audience ?? scheme.audience;
      const exchange = scheme.tokenExchange === true ? { ...pickShape(scheme), mode: scheme.exchange ?? 'assertion', tokenUrl: tokenUrl(scheme.tokenUrl) } : undefined;
      const source = createJwtTokenSource({ ...jwt, audience, exchange }, context);
      return createTokenSigner(source, tokenHeader);
    }
    case 'awsSigV4': {
      const service = scheme.service;
      const region = auth.region ?? variables.region;
      if (service === undefined) throw new PatchbayError('PB_AUTH_BAD_SETTINGS', "the provider's awsSigV4 scheme names no `service`");
      if (region === undefined) throw new PatchbayError('PB_AUTH_BAD_SETTINGS', 'AWS SigV4 needs a region: set the connection variable `region`');
      return createSigV4Signer({
        accessKeyId: auth.accessKeyId,
        secretAccessKey: auth.secretAccessKey,
        sessionToken: auth.sessionToken,
        region,
        service,
        clock: context.clock,
      });
    }
  }
}

function pickShape(scheme: AuthSchemeSettings) {
  return { tokenPath: scheme.tokenPath, expiresInPath: scheme.expiresInPath, expiresAtPath: scheme.expiresAtPath };
}
