import { anyHmacMatches, buildSignedPayload, compileSignedPayload, decodeSignature, type HmacAlgorithm, type PayloadPart, type SignatureEncoding } from './hmac-core.js';
import { badConfig, badSignature, checkTimestamp, headerName, headerValue, missingHeader, noMatch, type HeaderName } from './refusals.js';
import type { InboundDelivery, VerifiedDelivery, WebhookVerifier } from './verify.js';

/**
 * The generic HMAC verifier every HMAC scheme is an instance of: the provider YAML's fields
 * (header, prefix, algorithm, encoding, signedPayload, timestampHeader, idHeader,
 * toleranceSeconds) drive it, and a scheme adds code only to read headers that are not one plain
 * value (Stripe's `t=…,v1=…`, Standard Webhooks' list) or to build the signed bytes from something
 * other than the template (Twilio's and Mandrill's URL plus sorted form fields).
 */

/** What a delivery presents: its decoded signatures, and the signing time and id when it has them. */
export interface Presented {
  readonly signatures: readonly Buffer[];
  readonly timestamp?: string | undefined;
  readonly id?: string | undefined;
}

/** Settings of one HMAC verifier, normalised from the YAML (header names lower-cased). */
export interface HmacSettings {
  readonly scheme: string;
  readonly header: HeaderName;
  readonly algorithm: HmacAlgorithm;
  readonly encoding: SignatureEncoding;
  readonly prefix: string;
  readonly signedPayload: readonly PayloadPart[];
  readonly timestampHeader?: HeaderName | undefined;
  readonly idHeader?: HeaderName | undefined;
  /** Width of the accepted window around now, each way; used when a timestamp is presented. */
  readonly toleranceMs: number;
}

/** Scheme hooks; each is optional and defaults to the plain single-header reading. */
export interface HmacHooks {
  /** Reads the signatures (and timestamp, id) from the headers; throws a refusal for a missing or malformed header. */
  readonly read?: (delivery: InboundDelivery, settings: HmacSettings) => Presented;
  /** The candidate signed messages; by default the `signedPayload` template over the raw body. */
  readonly messages?: (delivery: InboundDelivery, presented: Presented, settings: HmacSettings) => readonly Buffer[];
  /** Checks after the signature matched (Twilio's body hash); throws a refusal. */
  readonly after?: (delivery: InboundDelivery) => void;
  /** The HMAC key of one configured secret; by default its UTF-8 bytes. Throws PB_WEBHOOK_CONFIG for an unusable secret. */
  readonly keyOf?: (secret: string, index: number) => Buffer;
}

/** The YAML fields an HMAC verifier reads, all optional: schemes supply defaults. */
export interface HmacFields {
  readonly header?: string | undefined;
  readonly algorithm?: HmacAlgorithm | undefined;
  readonly encoding?: SignatureEncoding | undefined;
  readonly prefix?: string | undefined;
  readonly signedPayload?: string | undefined;
  readonly timestampHeader?: string | undefined;
  readonly idHeader?: string | undefined;
  readonly toleranceSeconds?: number | undefined;
}

/**
 * Normalises YAML fields over a scheme's `defaults` (YAML wins). Raises PB_WEBHOOK_CONFIG when no
 * header is known, the template has an unknown placeholder, or it signs a `{timestamp}` / `{id}`
 * no header carries.
 */
export function compileHmacSettings(scheme: string, fields: HmacFields, defaults: HmacFields): HmacSettings {
  const pick = <K extends keyof HmacFields>(key: K): HmacFields[K] => fields[key] ?? defaults[key];
  const header = pick('header');
  if (header === undefined || header.trim() === '') throw badConfig(scheme, 'no `header` names the signature header');
  const template = pick('signedPayload') ?? '{body}';
  const parts = compileSignedPayload(template);
  if (!Array.isArray(parts)) throw badConfig(scheme, `\`signedPayload\` has an unknown placeholder {${(parts as { unknown: string }).unknown}} (use {body}, {timestamp}, {id} or {url})`);
  const compiled = parts as readonly PayloadPart[];
  const timestampHeader = pick('timestampHeader');
  const idHeader = pick('idHeader');
  const uses = (field: string): boolean => compiled.some((part) => 'field' in part && part.field === field);
  if (scheme === 'hmac' && uses('timestamp') && timestampHeader === undefined) {
    throw badConfig(scheme, '`signedPayload` signs {timestamp} but no `timestampHeader` carries it');
  }
  if (scheme === 'hmac' && uses('id') && idHeader === undefined) throw badConfig(scheme, '`signedPayload` signs {id} but no `idHeader` carries it');
  const toleranceSeconds = pick('toleranceSeconds') ?? 300;
  if (!Number.isInteger(toleranceSeconds) || toleranceSeconds < 1 || toleranceSeconds > 86_400) throw badConfig(scheme, '`toleranceSeconds` must be a whole number from 1 to 86400');
  return {
    scheme,
    header: headerName(header.trim()),
    algorithm: pick('algorithm') ?? 'sha256',
    encoding: pick('encoding') ?? 'hex',
    prefix: pick('prefix') ?? '',
    signedPayload: compiled,
    timestampHeader: timestampHeader === undefined ? undefined : headerName(timestampHeader.trim()),
    idHeader: idHeader === undefined ? undefined : headerName(idHeader.trim()),
    toleranceMs: toleranceSeconds * 1000,
  };
}

/** The plain reading: one header holding `prefix` + one encoded signature; timestamp and id from their headers. */
export function readSingleSignature(delivery: InboundDelivery, settings: HmacSettings): Presented {
  const text = headerValue(delivery, settings.header);
  if (text === undefined) throw missingHeader(settings.header);
  if (!text.startsWith(settings.prefix)) throw badSignature(settings.header, `the value does not start with "${settings.prefix}"`);
  const signature = decodeSignature(text.slice(settings.prefix.length), settings.encoding);
  if (signature === undefined) throw badSignature(settings.header, `the value is not a ${settings.encoding}-encoded signature`);
  return {
    signatures: [signature],
    timestamp: settings.timestampHeader === undefined ? undefined : headerValue(delivery, settings.timestampHeader),
    id: settings.idHeader === undefined ? undefined : headerValue(delivery, settings.idHeader),
  };
}

/**
 * Builds a verifier from normalised settings, hooks and the connection's active secrets (a
 * delivery signed by any of them is accepted). Order of checks: signature header present and well
 * formed, timestamp present and within tolerance (cheap, before any HMAC), then the HMACs.
 */
export function createHmacVerifier(settings: HmacSettings, secrets: readonly string[], hooks: HmacHooks = {}): WebhookVerifier {
  const keys = secrets.map((secret, index) => (hooks.keyOf === undefined ? Buffer.from(secret, 'utf8') : hooks.keyOf(secret, index)));
  const read = hooks.read ?? readSingleSignature;
  const timestampLabel = settings.timestampHeader ?? settings.header;
  const signsTimestamp = settings.signedPayload.some((part) => 'field' in part && part.field === 'timestamp');
  return {
    scheme: settings.scheme,
    verify(delivery: InboundDelivery, nowMs: number): VerifiedDelivery {
      const presented = read(delivery, settings);
      let signedAtMs: number | undefined;
      if (presented.timestamp !== undefined) {
        signedAtMs = checkTimestamp(presented.timestamp, timestampLabel, nowMs, settings.toleranceMs);
      } else if (settings.timestampHeader !== undefined || signsTimestamp) {
        throw missingHeader(timestampLabel, 'signing time');
      }
      const messages = hooks.messages?.(delivery, presented, settings) ?? [templateMessage(delivery, presented, settings)];
      if (!anyHmacMatches(settings.algorithm, keys, messages, presented.signatures)) throw badSignature(settings.header, noMatch);
      hooks.after?.(delivery);
      return { deliveryId: presented.id, signedAtMs };
    },
  };
}

function templateMessage(delivery: InboundDelivery, presented: Presented, settings: HmacSettings): Buffer {
  const built = buildSignedPayload(settings.signedPayload, {
    body: delivery.rawBody,
    timestamp: presented.timestamp,
    id: presented.id,
    url: delivery.url.href,
  });
  if (Buffer.isBuffer(built)) return built;
  const missing = (built as { missing: string }).missing;
  if (missing === 'id' && settings.idHeader !== undefined) throw missingHeader(settings.idHeader, 'delivery id');
  throw missingHeader(missing === 'timestamp' ? (settings.timestampHeader ?? settings.header) : settings.header, missing);
}
