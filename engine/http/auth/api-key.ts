import { PatchbayError } from '../../diag/errors.js';
import type { OutboundRequest } from '../request.js';
import { withHeader, type Signer } from './signer.js';

export interface ApiKeyOptions {
  /** The key itself (resolved). */
  readonly key: string;
  /** @default 'header' */
  readonly in?: 'header' | 'query';
  /** Header or query parameter name (`X-Api-Key`, `api_key`). */
  readonly name: string;
  /** Put before the key in a header (`token `, `Bearer `); ignored for `query`. @default '' */
  readonly prefix?: string;
}

/**
 * Sends an API key in a header (after an optional prefix) or as a query parameter.
 *
 * With `in: 'query'` the key becomes part of the URL: whatever logs, stores or reports a signed
 * request's URL must drop its query string (Patchbay never prints query strings for that reason).
 * An existing parameter of the same name is replaced; other parameters keep their encoding.
 * Throws PB_AUTH_BAD_SETTINGS when `name` is empty.
 */
export function createApiKeySigner(options: ApiKeyOptions): Signer {
  const { key, name, prefix = '' } = options;
  if (name === '') throw new PatchbayError('PB_AUTH_BAD_SETTINGS', 'the apiKey scheme needs the header or query parameter `name`');
  if (options.in === 'query') {
    return {
      sign: async (request: OutboundRequest) => {
        const url = new URL(request.url);
        if (url.searchParams.has(name)) url.searchParams.set(name, key);
        else url.search = `${url.search === '' ? '?' : `${url.search}&`}${encodeURIComponent(name)}=${encodeURIComponent(key)}`;
        return { ...request, url };
      },
    };
  }
  return { sign: async (request: OutboundRequest) => withHeader(request, name, `${prefix}${key}`) };
}
