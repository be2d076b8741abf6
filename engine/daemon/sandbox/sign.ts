import { createHash, createHmac } from 'node:crypto';
import { PatchbayError } from '../../diag/errors.js';
import type { WebhookVerification } from '../../types/provider.generated.js';

/**
 * Signs a webhook delivery the way its provider does, for `patchbay send` and tests. Written from
 * the providers' documentation, independently of the daemon's verifiers, so a test that signs
 * here and verifies there checks both against the providers' rules (and the tests check these
 * against the providers' own SDKs).
 */

export interface DeliveryToSign {
  readonly verification: WebhookVerification;
  /** The secret as the integration's connection holds it (`whsec_…`, a hex string, an auth token). */
  readonly secret: string;
  /** The URL the delivery is posted to (Twilio and Mandrill sign it). */
  readonly url: string;
  /** The exact bytes of the body. */
  readonly body: Buffer;
  /** True when the body is `application/x-www-form-urlencoded` (Twilio and Mandrill sign its fields). */
  readonly form: boolean;
  /** The delivery id for schemes that sign or send one (Standard Webhooks `webhook-id`). */
  readonly id: string;
  /** Signing time, seconds since the epoch. */
  readonly timestampSec: number;
}

function hmac(algorithm: string, key: string | Buffer, message: string | Buffer): Buffer {
  return createHmac(algorithm, key).update(message).digest();
}

/** Form fields of a `application/x-www-form-urlencoded` body, sorted by name (then value), as Twilio and Mandrill sign them. */
function sortedFormText(body: Buffer): string {
  const pairs = [...new URLSearchParams(body.toString('utf8'))];
  pairs.sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return pairs.map(([name, value]) => `${name}${value}`).join('');
}

/** `{body}`, `{timestamp}`, `{id}` and `{url}` of a `signedPayload` template filled in, as bytes. */
function fillTemplate(template: string, delivery: DeliveryToSign): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (const match of template.matchAll(/\{(body|timestamp|id|url)\}/g)) {
    parts.push(Buffer.from(template.slice(at, match.index), 'utf8'));
    const field = match[1];
    parts.push(field === 'body' ? delivery.body : Buffer.from(field === 'timestamp' ? String(delivery.timestampSec) : field === 'id' ? delivery.id : delivery.url, 'utf8'));
    at = match.index + match[0].length;
  }
  parts.push(Buffer.from(template.slice(at), 'utf8'));
  return Buffer.concat(parts);
}

/**
 * The headers that sign `delivery` (lower-case names), by the verification's scheme:
 * - `stripe`: `stripe-signature: t=<ts>,v1=<hex HMAC-SHA256 of "<ts>.<body>">`;
 * - `github`: `x-hub-signature-256: sha256=<hex HMAC-SHA256 of the body>`;
 * - `slack`: `x-slack-request-timestamp` and `x-slack-signature: v0=<hex HMAC-SHA256 of "v0:<ts>:<body>">`;
 * - `twilio`: `x-twilio-signature: <base64 HMAC-SHA1 of the URL + sorted form fields>` (a
 *   non-form body: the URL carries `bodySHA256` and only the URL is signed);
 * - `shopify`: `x-shopify-hmac-sha256: <base64 HMAC-SHA256 of the body>`;
 * - `standardWebhooks`: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64
 *   HMAC-SHA256 of "<id>.<ts>.<body>" keyed by the base64 after whsec_>`;
 * - `mailchimp` (Mandrill): `x-mandrill-signature: <base64 HMAC-SHA1 of the URL + sorted form fields>`;
 * - `hmac`: the verification's own fields (header, prefix, algorithm, encoding, signedPayload,
 *   timestampHeader, idHeader); the named schemes' fields override their defaults the same way.
 * `none` adds nothing. Throws PB_SEND_UNSUPPORTED for schemes signed with keys the sandbox does
 * not hold (`sendgrid`, `plaid`, `awsSns`).
 */
export function signDelivery(delivery: DeliveryToSign): Record<string, string> {
  const v = delivery.verification;
  const ts = String(delivery.timestampSec);
  const lower = (name: string | undefined, fallback: string) => (name ?? fallback).toLowerCase();
  switch (v.scheme) {
    case 'none':
      return {};
    case 'stripe': {
      const signature = hmac('sha256', delivery.secret, Buffer.concat([Buffer.from(`${ts}.`, 'utf8'), delivery.body])).toString('hex');
      return { [lower(v.header, 'Stripe-Signature')]: `t=${ts},v1=${signature}` };
    }
    case 'standardWebhooks': {
      const key = Buffer.from(delivery.secret.startsWith('whsec_') ? delivery.secret.slice('whsec_'.length) : delivery.secret, 'base64');
      const signature = hmac('sha256', key, Buffer.concat([Buffer.from(`${delivery.id}.${ts}.`, 'utf8'), delivery.body])).toString('base64');
      return {
        [lower(v.idHeader, 'webhook-id')]: delivery.id,
        [lower(v.timestampHeader, 'webhook-timestamp')]: ts,
        [lower(v.header, 'webhook-signature')]: `v1,${signature}`,
      };
    }
    case 'twilio': {
      if (delivery.form) return { [lower(v.header, 'X-Twilio-Signature')]: hmac('sha1', delivery.secret, `${delivery.url}${sortedFormText(delivery.body)}`).toString('base64') };
      return { [lower(v.header, 'X-Twilio-Signature')]: hmac('sha1', delivery.secret, delivery.url).toString('base64') };
    }
    case 'mailchimp':
      return { [lower(v.header, 'X-Mandrill-Signature')]: hmac('sha1', delivery.secret, `${delivery.url}${sortedFormText(delivery.body)}`).toString('base64') };
    case 'github':
      return signTemplate(delivery, { header: 'X-Hub-Signature-256', prefix: 'sha256=', algorithm: 'sha256', encoding: 'hex', signedPayload: '{body}' });
    case 'slack':
      return signTemplate(delivery, {
        header: 'X-Slack-Signature',
        prefix: 'v0=',
        algorithm: 'sha256',
        encoding: 'hex',
        signedPayload: 'v0:{timestamp}:{body}',
        timestampHeader: 'X-Slack-Request-Timestamp',
      });
    case 'shopify':
      return signTemplate(delivery, { header: 'X-Shopify-Hmac-Sha256', prefix: '', algorithm: 'sha256', encoding: 'base64', signedPayload: '{body}' });
    case 'hmac':
      return signTemplate(delivery, { prefix: '', algorithm: 'sha256', encoding: 'hex', signedPayload: '{body}' });
    default:
      throw new PatchbayError(
        'PB_SEND_UNSUPPORTED',
        `deliveries of scheme "${v.scheme}" are signed with the provider's own private keys, which the sandbox does not hold: they cannot be sent from here`,
      );
  }
}

/** The bodySHA256 query parameter Twilio adds to the URL of a JSON delivery. */
export function twilioBodyHash(body: Buffer): string {
  return createHash('sha256').update(body).digest('hex');
}

type TemplateDefaults = Pick<WebhookVerification, 'header' | 'prefix' | 'algorithm' | 'encoding' | 'signedPayload' | 'timestampHeader' | 'idHeader'>;

function signTemplate(delivery: DeliveryToSign, defaults: TemplateDefaults): Record<string, string> {
  const v = { ...defaults, ...stripUndefined(delivery.verification) };
  if (v.header === undefined) throw new PatchbayError('PB_SEND_UNSUPPORTED', `the provider's "${v.scheme}" verification names no signature header`);
  const signature = hmac(v.algorithm ?? 'sha256', delivery.secret, fillTemplate(v.signedPayload ?? '{body}', delivery)).toString(v.encoding ?? 'hex');
  const headers: Record<string, string> = { [v.header.toLowerCase()]: `${v.prefix ?? ''}${signature}` };
  if (v.timestampHeader !== undefined) headers[v.timestampHeader.toLowerCase()] = String(delivery.timestampSec);
  if (v.idHeader !== undefined) headers[v.idHeader.toLowerCase()] = delivery.id;
  return headers;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, inner]) => inner !== undefined)) as Partial<T>;
}
