import { decodeSignature } from './hmac-core.js';
import type { HmacSettings, Presented } from './hmac-verifier.js';
import { badSignature, headerValue, missingHeader } from './refusals.js';
import type { InboundDelivery } from './verify.js';

/** Stripe lists at most a few signatures; more is not a Stripe header. */
const maxEntries = 32;

/**
 * Reads `Stripe-Signature: t=<unix seconds>,v1=<hex>,v1=<hex>,v0=…`: the timestamp and every `v1`
 * signature (Stripe sends several while an endpoint secret is being rolled). Other schemes (`v0`,
 * test-mode extras) are ignored, as Stripe's SDK ignores them. A header with no `t` or no `v1` is
 * refused (PB_WEBHOOK_BAD_SIGNATURE); a malformed `v1` entry is skipped, since another may match.
 */
export function readStripeSignature(delivery: InboundDelivery, settings: HmacSettings): Presented {
  const text = headerValue(delivery, settings.header);
  if (text === undefined) throw missingHeader(settings.header);
  const items = text.split(',');
  if (items.length > maxEntries) throw badSignature(settings.header, `more than ${maxEntries} entries`);
  let timestamp: string | undefined;
  const signatures: Buffer[] = [];
  let v1Count = 0;
  for (const item of items) {
    const equals = item.indexOf('=');
    if (equals < 0) continue;
    const key = item.slice(0, equals).trim();
    const value = item.slice(equals + 1).trim();
    if (key === 't') {
      if (timestamp !== undefined) throw badSignature(settings.header, 'more than one t= timestamp');
      timestamp = value;
    } else if (key === 'v1') {
      v1Count += 1;
      const signature = decodeSignature(value, settings.encoding);
      if (signature !== undefined) signatures.push(signature);
    }
  }
  if (timestamp === undefined) throw badSignature(settings.header, 'no t= timestamp');
  if (v1Count === 0) throw badSignature(settings.header, 'no v1= signature (only the v1 scheme is accepted)');
  if (signatures.length === 0) throw badSignature(settings.header, 'no v1= value is a hex-encoded signature');
  return { signatures, timestamp };
}
