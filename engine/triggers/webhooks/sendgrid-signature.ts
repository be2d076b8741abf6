import { createPublicKey, verify as verifySignature, type KeyObject } from 'node:crypto';
import { buildSignedPayload, decodeSignature } from './hmac-core.js';
import type { HmacSettings } from './hmac-verifier.js';
import { badConfig, badSignature, checkTimestamp, headerValue, missingHeader, noMatch } from './refusals.js';
import type { InboundDelivery, VerifiedDelivery, WebhookVerifier } from './verify.js';

/**
 * SendGrid's signed Event Webhook: ECDSA P-256 with SHA-256 over `{timestamp}{body}`, the
 * signature base64 DER in `X-Twilio-Email-Event-Webhook-Signature`, the timestamp in
 * `X-Twilio-Email-Event-Webhook-Timestamp`. The connection's webhook secret is not secret here:
 * it is the verification key SendGrid shows, a base64 DER (SubjectPublicKeyInfo) P-256 public key.
 */

/**
 * Reads a SendGrid verification key. Raises PB_WEBHOOK_CONFIG (naming the secret's position) when
 * it is not base64 DER of an EC P-256 public key.
 */
export function sendgridPublicKey(secret: string, index: number): KeyObject {
  const der = decodeSignature(secret.trim(), 'base64');
  let key: KeyObject | undefined;
  if (der !== undefined) {
    try {
      key = createPublicKey({ key: der, format: 'der', type: 'spki' });
    } catch (error) {
      // Reported just below with the secret's position; the parser's message says nothing more useful.
      void error;
      key = undefined;
    }
  }
  if (key === undefined || key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw badConfig('sendgrid', `webhook secret #${index + 1} is not a SendGrid verification key (base64 DER of an EC P-256 public key)`);
  }
  return key;
}

/** The verifier for scheme `sendgrid` over normalised settings (header, timestamp header, tolerance). */
export function createSendgridVerifier(settings: HmacSettings, secrets: readonly string[]): WebhookVerifier {
  const keys = secrets.map(sendgridPublicKey);
  const timestampHeader = settings.timestampHeader;
  if (timestampHeader === undefined) throw badConfig('sendgrid', 'no `timestampHeader` names the signing time header');
  return {
    scheme: 'sendgrid',
    verify(delivery: InboundDelivery, nowMs: number): VerifiedDelivery {
      const text = headerValue(delivery, settings.header);
      if (text === undefined) throw missingHeader(settings.header);
      const signature = decodeSignature(text, 'base64');
      if (signature === undefined) throw badSignature(settings.header, 'the value is not a base64-encoded signature');
      const timestamp = headerValue(delivery, timestampHeader);
      if (timestamp === undefined) throw missingHeader(timestampHeader, 'signing time');
      const signedAtMs = checkTimestamp(timestamp, timestampHeader, nowMs, settings.toleranceMs);
      const message = buildSignedPayload(settings.signedPayload, { body: delivery.rawBody, timestamp, url: delivery.url.href });
      if (!Buffer.isBuffer(message)) throw missingHeader(settings.header, 'delivery id');
      let matched = false;
      for (const key of keys) {
        try {
          matched = verifySignature('sha256', message, { key, dsaEncoding: 'der' }, signature) || matched;
        } catch (error) {
          // A signature that is not DER cannot match any key: a refusal below, not a crash.
          void error;
        }
      }
      if (!matched) throw badSignature(settings.header, noMatch);
      return { signedAtMs };
    },
  };
}
