import { performance } from 'node:perf_hooks';
import { request as undiciRequest, type Dispatcher } from 'undici';
import { PatchbayError } from '../../diag/errors.js';
import type { InboundResponse, OutboundRequest } from '../request.js';
import type { SendFunction } from './signer.js';

export interface UndiciSendOptions {
  /** The undici agent or pool to use. @default undici's global dispatcher */
  readonly dispatcher?: Dispatcher;
  /** Whole-exchange limit. @default 30_000 */
  readonly timeoutMs?: number;
  /** Answers longer than this are cut off and fail. @default 1_048_576 */
  readonly maxBodyBytes?: number;
}

/**
 * A small `SendFunction` on undici's `request`, the default transport of token sources until the
 * engine's HttpClient is plugged in. It follows no redirects (a token endpoint that redirects is
 * misconfigured, and credentials must not follow a redirect) and reads the whole body.
 * Network failures reject with undici's errors (the caller wraps them); an answer over
 * `maxBodyBytes` rejects with PB_AUTH_TOKEN_UNAVAILABLE.
 */
export function createUndiciSend(options: UndiciSendOptions = {}): SendFunction {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const maxBodyBytes = options.maxBodyBytes ?? 1_048_576;
  return async (outbound: OutboundRequest): Promise<InboundResponse> => {
    const startedMs = performance.now();
    const answer = await undiciRequest(outbound.url, {
      method: outbound.method,
      // Some token endpoints (GitHub's API) refuse requests without a user agent.
      headers: { 'user-agent': 'patchbay', ...outbound.headers },
      body: outbound.body ?? null,
      ...(options.dispatcher === undefined ? {} : { dispatcher: options.dispatcher }),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of answer.body) {
      size += (chunk as Buffer).length;
      if (size > maxBodyBytes) {
        answer.body.destroy();
        throw new PatchbayError('PB_AUTH_TOKEN_UNAVAILABLE', `${outbound.url.origin}${outbound.url.pathname} answered more than ${maxBodyBytes} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(answer.headers)) {
      if (value === undefined || name === 'set-cookie') continue;
      headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
    }
    return {
      status: answer.statusCode,
      headers,
      body: new Uint8Array(Buffer.concat(chunks)),
      url: outbound.url,
      durationMs: performance.now() - startedMs,
    };
  };
}
