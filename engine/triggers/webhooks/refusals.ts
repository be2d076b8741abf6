import { PatchbayError } from '../../diag/errors.js';
import type { InboundDelivery } from './verify.js';

/**
 * Shared pieces of every scheme: reading headers by name, refusing a delivery with a message
 * that names the header and the reason (never a secret, a signature, a body byte or the URL's
 * query), and the timestamp window.
 */

/** A header a scheme reads: its lower-case lookup name and the name as the provider writes it. */
export interface HeaderName {
  readonly key: string;
  readonly label: string;
}

/** Names a header: `key` is lower-cased for lookup, `label` keeps the provider's spelling for messages. */
export function headerName(name: string): HeaderName {
  return { key: name.toLowerCase(), label: name };
}

/**
 * The value of a header, trimmed, or undefined when absent or empty. Header names are
 * case-insensitive: the ingress passes lower-case names, and a caller that did not is tolerated
 * by a case-insensitive scan.
 */
export function headerValue(delivery: InboundDelivery, name: HeaderName): string | undefined {
  let value = delivery.headers[name.key];
  if (value === undefined) {
    for (const [key, candidate] of Object.entries(delivery.headers)) {
      if (key.toLowerCase() === name.key) {
        value = candidate;
        break;
      }
    }
  }
  const trimmed = value?.trim();
  return trimmed === undefined || trimmed === '' ? undefined : trimmed;
}

/** The refusal for a delivery without its signature (or timestamp, or id) header. */
export function missingHeader(name: HeaderName, what = 'signature'): PatchbayError {
  return new PatchbayError('PB_WEBHOOK_MISSING_SIGNATURE', `the ${name.label} header is missing: the delivery carries no ${what}`);
}

/** The refusal for a delivery whose signature is malformed or matches no active secret. */
export function badSignature(name: HeaderName, reason: string): PatchbayError {
  return new PatchbayError('PB_WEBHOOK_BAD_SIGNATURE', `the ${name.label} header is refused: ${reason}`);
}

/** The usual reason when no signature matches. */
export const noMatch = 'the signature matches none of the connection\'s webhook secrets (a wrong or removed secret, or a body changed on the way)';

const unixSeconds = /^[0-9]{1,12}$/;

/**
 * Parses a Unix time in whole seconds (decimal digits only) and checks it lies within
 * `toleranceMs` of `nowMs`, in the past or the future, comparing whole seconds as the providers'
 * SDKs do (`floor(now / 1000) - t`). Returns the signing time in milliseconds. Raises
 * PB_WEBHOOK_BAD_SIGNATURE for a value that is not a Unix time and PB_WEBHOOK_STALE outside the
 * window (a replay of an old delivery, or a sender's clock far ahead).
 */
export function checkTimestamp(text: string, name: HeaderName, nowMs: number, toleranceMs: number): number {
  if (!unixSeconds.test(text)) throw badSignature(name, 'the timestamp is not a Unix time in seconds');
  const signedAtSeconds = Number(text);
  const skewSeconds = signedAtSeconds - Math.floor(nowMs / 1000);
  const toleranceSeconds = Math.floor(toleranceMs / 1000);
  if (Math.abs(skewSeconds) > toleranceSeconds) {
    const age = skewSeconds < 0 ? `${-skewSeconds} s old` : `${skewSeconds} s in the future`;
    throw new PatchbayError(
      'PB_WEBHOOK_STALE',
      `the ${name.label} timestamp is ${age}, outside the ${toleranceSeconds} s tolerance (a replayed delivery, or a clock that is wrong here or at the sender)`,
    );
  }
  return signedAtSeconds * 1000;
}

/** A configuration problem found when the verifier is built (the integration cannot receive). */
export function badConfig(scheme: string, reason: string): PatchbayError {
  return new PatchbayError('PB_WEBHOOK_CONFIG', `webhook verification "${scheme}": ${reason}`);
}
