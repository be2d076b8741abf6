import { codes, type Code, type RetryIntent } from './codes.js';

/**
 * The one error type Patchbay throws. `code` is stable and drives behaviour; `message` is for
 * people and must never contain a secret or a query string. `retryAfterMs` is set when the
 * failure knows how long to wait (intent `after`).
 */
export class PatchbayError extends Error {
  readonly code: Code;
  readonly retry: RetryIntent;
  readonly retryAfterMs: number | undefined;

  constructor(code: Code, message: string, options: { cause?: unknown; retryAfterMs?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PatchbayError';
    this.code = code;
    this.retry = codes[code].retry;
    this.retryAfterMs = options.retryAfterMs;
  }
}
