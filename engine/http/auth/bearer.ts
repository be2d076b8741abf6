import type { OutboundRequest } from '../request.js';
import { withHeader, type Signer, type TokenSource } from './signer.js';

/** Where a token goes. */
export interface TokenHeaderOptions {
  /** @default 'authorization' */
  readonly header?: string;
  /** Text before the token; `''` sends the bare token (Shopify's `X-Shopify-Access-Token`). @default 'Bearer ' */
  readonly prefix?: string;
}

/**
 * Puts the token a `TokenSource` hands out into a header (`Authorization: Bearer <token>` by
 * default). `invalidate(rejected)` reads the token back from the refused request's header and
 * drops it from the source only if it is still the cached one.
 */
export function createTokenSigner(source: TokenSource, options: TokenHeaderOptions = {}): Signer {
  const header = (options.header ?? 'authorization').toLowerCase();
  const prefix = options.prefix ?? 'Bearer ';
  return {
    sign: async (request: OutboundRequest) => withHeader(request, header, `${prefix}${await source.token()}`),
    invalidate: (rejected?: OutboundRequest) => {
      if (rejected === undefined) return source.invalidate();
      const sent = rejected.headers[header];
      // A request that carries no token of ours was not refused because of it.
      if (sent !== undefined && sent.startsWith(prefix)) source.invalidate(sent.slice(prefix.length));
    },
  };
}

/**
 * A static token (`Authorization: Bearer <token>` unless told otherwise). It has no `invalidate`:
 * a refused static token cannot be renewed, so a 401 is final.
 */
export function createBearerSigner(options: { readonly token: string } & TokenHeaderOptions): Signer {
  const header = (options.header ?? 'authorization').toLowerCase();
  const value = `${options.prefix ?? 'Bearer '}${options.token}`;
  return { sign: async (request: OutboundRequest) => withHeader(request, header, value) };
}
