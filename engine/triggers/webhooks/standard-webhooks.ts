import { decodeSignature } from './hmac-core.js';
import type { HmacSettings, Presented } from './hmac-verifier.js';
import { badConfig, badSignature, headerName, headerValue, missingHeader, type HeaderName } from './refusals.js';
import type { InboundDelivery } from './verify.js';

/**
 * Standard Webhooks (and Svix, its origin): `webhook-id`, `webhook-timestamp` and
 * `webhook-signature` holding space-separated `v1,<base64>` entries, signed over
 * `{id}.{timestamp}.{body}` with the secret's base64-decoded bytes (`whsec_<base64>`). Svix names
 * the same headers `svix-id`, `svix-timestamp`, `svix-signature`; both spellings are accepted, the
 * configured ones first.
 */

const svix = { signature: headerName('svix-signature'), timestamp: headerName('svix-timestamp'), id: headerName('svix-id') };
const maxEntries = 32;

/**
 * The HMAC key of a Standard Webhooks secret: the base64 after an optional `whsec_` prefix, as the
 * `standardwebhooks` SDK decodes it. Raises PB_WEBHOOK_CONFIG (naming the secret's position, not
 * its value) when it is not base64 or decodes to nothing.
 */
export function standardWebhooksKey(secret: string, index: number): Buffer {
  const text = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret;
  const bytes = Buffer.from(text, 'base64');
  const canonical = /^[A-Za-z0-9+/]*={0,2}$/.test(text) && bytes.length > 0 && bytes.toString('base64').replace(/=+$/, '') === text.replace(/=+$/, '');
  if (!canonical) throw badConfig('standardWebhooks', `webhook secret #${index + 1} is not \`whsec_<base64>\` (Standard Webhooks secrets are base64 after the whsec_ prefix)`);
  return bytes;
}

/** Reads the id, timestamp and every `v1,` signature; other versions (`v1a` asymmetric) are ignored. */
export function readStandardWebhooks(delivery: InboundDelivery, settings: HmacSettings): Presented {
  const configured = {
    signature: settings.header,
    timestamp: settings.timestampHeader ?? headerName('webhook-timestamp'),
    id: settings.idHeader ?? headerName('webhook-id'),
  };
  const names = headerValue(delivery, configured.signature) === undefined && headerValue(delivery, svix.signature) !== undefined ? svix : configured;
  const value = (name: HeaderName, what: string): string => {
    const text = headerValue(delivery, name);
    if (text === undefined) throw missingHeader(name, what);
    return text;
  };
  const text = value(names.signature, 'signature');
  const id = value(names.id, 'message id');
  const timestamp = value(names.timestamp, 'signing time');
  const entries = text.split(' ').filter((entry) => entry !== '');
  if (entries.length > maxEntries) throw badSignature(names.signature, `more than ${maxEntries} entries`);
  const signatures: Buffer[] = [];
  for (const entry of entries) {
    const comma = entry.indexOf(',');
    if (comma < 0 || entry.slice(0, comma) !== 'v1') continue;
    const signature = decodeSignature(entry.slice(comma + 1), 'base64');
    if (signature !== undefined) signatures.push(signature);
  }
  if (signatures.length === 0) throw badSignature(names.signature, 'no v1,<base64> signature');
  return { signatures, timestamp, id };
}
