import { createHmac, timingSafeEqual } from 'node:crypto';

/** HMAC digests the provider schema allows. */
export type HmacAlgorithm = 'sha1' | 'sha256' | 'sha512';
/** How a signature is written in its header. */
export type SignatureEncoding = 'hex' | 'base64';

const digestBytes: Record<HmacAlgorithm, number> = { sha1: 20, sha256: 32, sha512: 64 };

/** The length in bytes of an `algorithm` digest. */
export function digestLengthOf(algorithm: HmacAlgorithm): number {
  return digestBytes[algorithm];
}

const lowerHex = /^(?:[0-9a-f]{2})+$/;
const base64Text = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Decodes a presented signature strictly: `hex` must be lower-case with an even length, `base64`
 * must be the standard alphabet in canonical form (padding and trailing bits as an encoder writes
 * them). Anything else returns undefined, so a malformed signature is a refusal and never a crash.
 * Strict decoding keeps the set of accepted texts exactly the providers' own SDKs' (they compare the
 * encoded strings): `ABCD…` and `abcd…` are not both accepted.
 */
export function decodeSignature(text: string, encoding: SignatureEncoding): Buffer | undefined {
  if (encoding === 'hex') return lowerHex.test(text) ? Buffer.from(text, 'hex') : undefined;
  if (text.length % 4 !== 0 || !base64Text.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}

/**
 * True when some `key` signs some candidate `message` into one of `signatures`, each comparison in
 * constant time over equal-length buffers (a length difference is public: it follows from the
 * algorithm, not from the secret). Several keys are active during a rotation; several messages are
 * the few spellings of one request a provider may have signed (Twilio's URL with and without its
 * port); several signatures are what a sender lists while it rotates on its side (Stripe, Standard
 * Webhooks). The work is bounded by keys × messages HMACs.
 */
export function anyHmacMatches(
  algorithm: HmacAlgorithm,
  keys: readonly Buffer[],
  messages: readonly Buffer[],
  signatures: readonly Buffer[],
): boolean {
  const length = digestBytes[algorithm];
  const candidates = signatures.filter((signature) => signature.length === length);
  if (candidates.length === 0) return false;
  let matched = false;
  for (const key of keys) {
    for (const message of messages) {
      const digest = createHmac(algorithm, key).update(message).digest();
      for (const signature of candidates) {
        // No early return inside the comparisons: each one runs in full, and `|=` keeps the
        // loop free of a data-dependent branch on the secret digest.
        matched = timingSafeEqual(digest, signature) || matched;
      }
    }
  }
  return matched;
}

/** One part of a compiled `signedPayload` template. */
export type PayloadPart = { readonly text: string } | { readonly field: 'body' | 'timestamp' | 'id' | 'url' };

/**
 * Compiles a `signedPayload` template (`{timestamp}.{body}`) into parts. Returns the unknown
 * placeholder's name instead when there is one, so the caller can refuse the configuration.
 */
export function compileSignedPayload(template: string): readonly PayloadPart[] | { readonly unknown: string } {
  const parts: PayloadPart[] = [];
  const pattern = /\{([^{}]*)\}/g;
  let last = 0;
  for (let match = pattern.exec(template); match !== null; match = pattern.exec(template)) {
    if (match.index > last) parts.push({ text: template.slice(last, match.index) });
    const name = match[1] ?? '';
    if (name !== 'body' && name !== 'timestamp' && name !== 'id' && name !== 'url') return { unknown: name };
    parts.push({ field: name });
    last = match.index + match[0].length;
  }
  if (last < template.length) parts.push({ text: template.slice(last) });
  return parts;
}

/** The values a signed payload is built from; `body` is the raw bytes as received. */
export interface PayloadValues {
  readonly body: Buffer;
  readonly timestamp?: string | undefined;
  readonly id?: string | undefined;
  readonly url?: string | undefined;
}

/**
 * Builds the exact bytes a sender signed from compiled `parts`: text and header values as UTF-8,
 * the body as its raw bytes (never re-serialised). Returns the name of a field the parts need
 * but `values` lacks, so the caller reports the missing header instead.
 */
export function buildSignedPayload(parts: readonly PayloadPart[], values: PayloadValues): Buffer | { readonly missing: 'timestamp' | 'id' | 'url' } {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    if ('text' in part) {
      chunks.push(Buffer.from(part.text, 'utf8'));
    } else if (part.field === 'body') {
      chunks.push(values.body);
    } else {
      const value = values[part.field];
      if (value === undefined) return { missing: part.field };
      chunks.push(Buffer.from(value, 'utf8'));
    }
  }
  return Buffer.concat(chunks);
}
