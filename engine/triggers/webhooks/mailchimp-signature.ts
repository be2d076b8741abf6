import { createHash, timingSafeEqual } from 'node:crypto';
import { PatchbayError } from '../../diag/errors.js';
import { parse as parseQuery } from 'node:querystring';
import { formLimits } from './form-body.js';
import { compileHmacSettings, createHmacVerifier } from './hmac-verifier.js';
import { headerName, headerValue } from './refusals.js';
import type { InboundDelivery, VerifiedDelivery, WebhookVerifier } from './verify.js';

/**
 * Mailchimp's two kinds of webhook:
 *
 * - Mandrill (Mailchimp Transactional) signs: `X-Mandrill-Signature` is the base64 HMAC-SHA1,
 *   keyed with the webhook's key, of the webhook URL exactly as configured followed by each POST
 *   parameter's name and value, sorted by name (in practice one: `mandrill_events`).
 * - Mailchimp Marketing audience webhooks are not signed at all. The only proof of origin they
 *   allow is a secret in the URL Mailchimp is given: `https://…/hooks/<name>?key=<secret>`. The
 *   verifier compares `key` with each webhook secret in constant time. The URL then holds a
 *   secret: the ingress must not log the query, and no message here repeats it.
 *
 * A delivery with a Mandrill signature is checked as Mandrill; one without, by its `key`.
 */

const mandrillHeader = 'X-Mandrill-Signature';

const contentType = headerName('Content-Type');

function isFormBody(delivery: InboundDelivery): boolean {
  return headerValue(delivery, contentType)?.split(';')[0]?.trim().toLowerCase() === 'application/x-www-form-urlencoded';
}

/**
 * The bytes Mandrill signs: the URL (`url.href`) then, for each POST parameter sorted by name, its
 * name and value (a repeated name keeps its last value, as PHP's `$_POST` reading Mandrill's
 * example does). Parameters are decoded leniently (Node's `querystring`), so a malformed escape
 * makes a signature that does not match rather than an error.
 */
export function mandrillSignedText(delivery: InboundDelivery): string {
  let signed = delivery.url.href;
  if (!isFormBody(delivery)) return signed;
  const parameters = parseQuery(delivery.rawBody.toString('utf8'), '&', '=', { maxKeys: formLimits.maxFields });
  for (const name of Object.keys(parameters).sort()) {
    const value = parameters[name];
    signed += name + (Array.isArray(value) ? (value[value.length - 1] ?? '') : (value ?? ''));
  }
  return signed;
}

/**
 * The verifier for scheme `mailchimp` (see the file comment). Secrets are Mandrill webhook keys or
 * the audience webhook's URL key; any active one is accepted. Raises, from verify():
 * PB_WEBHOOK_MISSING_SIGNATURE when neither a signature nor a `key` is present,
 * PB_WEBHOOK_BAD_SIGNATURE when the one present matches no secret.
 */
export function createMailchimpVerifier(secrets: readonly string[]): WebhookVerifier {
  const mandrill = createHmacVerifier(
    compileHmacSettings('mailchimp', {}, { header: mandrillHeader, algorithm: 'sha1', encoding: 'base64' }),
    secrets,
    { messages: (delivery) => [Buffer.from(mandrillSignedText(delivery), 'utf8')] },
  );
  // Digests, so the comparison is over equal-length buffers whatever the lengths of key and secret.
  const digestOf = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();
  const secretDigests = secrets.map(digestOf);
  const signature = headerName(mandrillHeader);
  return {
    scheme: 'mailchimp',
    verify(delivery: InboundDelivery, nowMs: number): VerifiedDelivery | Promise<VerifiedDelivery> {
      if (headerValue(delivery, signature) !== undefined) return mandrill.verify(delivery, nowMs);
      const key = delivery.url.searchParams.get('key');
      if (key === null || key === '') {
        throw new PatchbayError(
          'PB_WEBHOOK_MISSING_SIGNATURE',
          `the delivery has no ${mandrillHeader} header (Mandrill) and its URL no key query parameter (Mailchimp audience webhooks are unsigned: give Mailchimp the webhook URL with a key query parameter holding the webhook secret)`,
        );
      }
      const presented = digestOf(key);
      let matched = false;
      for (const digest of secretDigests) matched = timingSafeEqual(digest, presented) || matched;
      if (!matched) throw new PatchbayError('PB_WEBHOOK_BAD_SIGNATURE', 'the URL\'s key query parameter matches none of the connection\'s webhook secrets');
      return {};
    },
  };
}
