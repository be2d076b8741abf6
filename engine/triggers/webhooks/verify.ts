import { PatchbayError } from '../../diag/errors.js';
import type { ProviderWebhooks, WebhookVerification } from '../../types/provider.generated.js';
import { compileHmacSettings, createHmacVerifier, type HmacFields } from './hmac-verifier.js';
import { badConfig } from './refusals.js';
import { readStandardWebhooks, standardWebhooksKey } from './standard-webhooks.js';
import { createMailchimpVerifier } from './mailchimp-signature.js';
import { createSendgridVerifier } from './sendgrid-signature.js';
import { createPlaidVerifier, type PlaidKeyFetcher } from './plaid-verification.js';
import { createSnsVerifier, type SnsCertificateCache } from './sns-signature.js';
import { readStripeSignature } from './stripe-signature.js';
import { checkTwilioBodyHash, twilioMessages } from './twilio-signature.js';

/** One inbound webhook request, as the ingress captured it, before anything parsed the body. */
export interface InboundDelivery {
  readonly method: string;
  /** The URL as the sender addressed it (the public URL, with its query): Twilio and Mandrill sign it. */
  readonly url: URL;
  /** Lower-case names; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string | undefined>>;
  /** The body exactly as received: signatures are checked on these bytes. */
  readonly rawBody: Buffer;
}

/** What verification proved beyond authenticity. */
export interface VerifiedDelivery {
  /** The sender's delivery id from a signed or provider header (GitHub's X-GitHub-Delivery, webhook-id, …). */
  readonly deliveryId?: string | undefined;
  /** The signing time the signature covers, in Unix milliseconds. */
  readonly signedAtMs?: number | undefined;
}

/** Verifies deliveries for one connection: its provider's scheme with the connection's active secrets. */
export interface WebhookVerifier {
  /** The `verification.scheme` of the provider. */
  readonly scheme: string;
  /**
   * Accepts `delivery` or throws a PatchbayError: PB_WEBHOOK_MISSING_SIGNATURE (no signature
   * header), PB_WEBHOOK_BAD_SIGNATURE (malformed, or matching no active secret),
   * PB_WEBHOOK_STALE (signing time further than the tolerance from `nowMs`, past or future).
   * `nowMs` is Unix milliseconds from the daemon's clock. May return a promise (schemes that fetch
   * keys); await it. Messages name the header and the reason, never a secret, a signature, body
   * bytes or the URL's query.
   */
  verify(delivery: InboundDelivery, nowMs: number): VerifiedDelivery | Promise<VerifiedDelivery>;
}

/**
 * The outbound fetches the schemes that verify with published keys need. The daemon provides
 * them (engine/triggers/webhook-routes.ts); tests point them at local servers.
 */
export interface WebhookKeySources {
  /** Fetches Plaid's verification keys with the connection's credentials (`plaidKeyFetcher(connection)`). */
  readonly plaidKeys?: PlaidKeyFetcher | undefined;
  /** Amazon SNS signing certificates, shared by every connection. */
  readonly snsCertificates?: SnsCertificateCache | undefined;
}

/** Schemes whose verification needs an outbound fetch: refused when the caller gave no way to fetch. */
const unsupportedSchemes: Partial<Record<WebhookVerification['scheme'], { readonly why: string; readonly needs: keyof WebhookKeySources }>> = {
  plaid: { why: 'Plaid signs with a JWT whose key must be fetched from Plaid\'s API', needs: 'plaidKeys' },
  awsSns: { why: 'Amazon SNS signs with an X.509 certificate that must be fetched from SigningCertURL', needs: 'snsCertificates' },
};

/** Per-scheme defaults under the YAML's fields (the YAML wins where it says something). */
const hmacDefaults: Partial<Record<WebhookVerification['scheme'], HmacFields>> = {
  hmac: {},
  github: { header: 'X-Hub-Signature-256', algorithm: 'sha256', encoding: 'hex', prefix: 'sha256=', idHeader: 'X-GitHub-Delivery' },
  shopify: { header: 'X-Shopify-Hmac-Sha256', algorithm: 'sha256', encoding: 'base64', idHeader: 'X-Shopify-Webhook-Id' },
  slack: {
    header: 'X-Slack-Signature',
    algorithm: 'sha256',
    encoding: 'hex',
    prefix: 'v0=',
    timestampHeader: 'X-Slack-Request-Timestamp',
    signedPayload: 'v0:{timestamp}:{body}',
    toleranceSeconds: 300,
  },
  stripe: { header: 'Stripe-Signature', algorithm: 'sha256', encoding: 'hex', signedPayload: '{timestamp}.{body}', toleranceSeconds: 300 },
  standardWebhooks: {
    header: 'webhook-signature',
    timestampHeader: 'webhook-timestamp',
    idHeader: 'webhook-id',
    signedPayload: '{id}.{timestamp}.{body}',
    algorithm: 'sha256',
    encoding: 'base64',
    toleranceSeconds: 300,
  },
  twilio: { header: 'X-Twilio-Signature', algorithm: 'sha1', encoding: 'base64' },
  sendgrid: {
    header: 'X-Twilio-Email-Event-Webhook-Signature',
    timestampHeader: 'X-Twilio-Email-Event-Webhook-Timestamp',
    signedPayload: '{timestamp}{body}',
    toleranceSeconds: 300,
  },
};

/**
 * Builds the verifier of one connection from its provider's `webhooks` and the connection's
 * resolved webhook secrets, all active at once (a delivery signed with any is accepted, so a
 * secret can be rotated: add the new one, let the provider switch, remove the old one).
 *
 * Two schemes verify with keys the provider publishes, fetched through `keySources`:
 * - `plaid` uses no webhook secret (`secrets` are ignored): the JWT's key is fetched with the
 *   connection's API credentials;
 * - `awsSns` has no shared secret: `secrets` list the TopicArns the connection accepts.
 *
 * Raises PatchbayError when the connection cannot verify at all, so the daemon reports the
 * integration broken instead of accepting unverified events:
 * - PB_WEBHOOK_SCHEME_UNSUPPORTED for `plaid` or `awsSns` without its key source;
 * - PB_WEBHOOK_CONFIG for no secret (except schemes `none` and `plaid`), an unusable secret
 *   (named by position), or verification fields that contradict each other.
 * Scheme `none` accepts every delivery: only for providers that sign nothing.
 */
export function createWebhookVerifier(webhooks: ProviderWebhooks, secrets: readonly string[], keySources: WebhookKeySources = {}): WebhookVerifier {
  const verification = webhooks.verification;
  const scheme = verification.scheme;
  const unsupported = unsupportedSchemes[scheme];
  if (unsupported !== undefined && keySources[unsupported.needs] === undefined) {
    throw new PatchbayError('PB_WEBHOOK_SCHEME_UNSUPPORTED', `webhook verification "${scheme}" needs an outbound key fetch that was not provided: ${unsupported.why}`);
  }
  if (scheme === 'none') return { scheme, verify: () => ({}) };
  const toleranceSeconds = verification.toleranceSeconds;
  if (toleranceSeconds !== undefined && (!Number.isInteger(toleranceSeconds) || toleranceSeconds < 1 || toleranceSeconds > 86_400)) {
    throw badConfig(scheme, '`toleranceSeconds` must be a whole number from 1 to 86400');
  }
  const toleranceMs = toleranceSeconds === undefined ? undefined : toleranceSeconds * 1000;
  if (scheme === 'plaid' && keySources.plaidKeys !== undefined) {
    return createPlaidVerifier({ fetchKey: keySources.plaidKeys, header: verification.header, toleranceMs });
  }
  if (scheme === 'awsSns' && keySources.snsCertificates !== undefined) {
    return createSnsVerifier({ topicArns: secrets, certificates: keySources.snsCertificates, toleranceMs });
  }
  if (secrets.length === 0) throw badConfig(scheme, 'the connection has no webhook secret to verify deliveries with');
  secrets.forEach((secret, index) => {
    if (secret.length === 0) throw badConfig(scheme, `webhook secret #${index + 1} is empty`);
  });
  if (scheme === 'mailchimp') return createMailchimpVerifier(secrets);
  const defaults = hmacDefaults[scheme];
  if (defaults === undefined) throw new PatchbayError('PB_WEBHOOK_SCHEME_UNSUPPORTED', `webhook verification "${scheme}" is not supported by the daemon yet`);
  const settings = compileHmacSettings(scheme, verification, defaults);
  if (scheme === 'stripe') return createHmacVerifier(settings, secrets, { read: readStripeSignature });
  if (scheme === 'twilio') return createHmacVerifier(settings, secrets, { messages: twilioMessages, after: checkTwilioBodyHash });
  if (scheme === 'sendgrid') return createSendgridVerifier(settings, secrets);
  if (scheme === 'standardWebhooks') return createHmacVerifier(settings, secrets, { read: readStandardWebhooks, keyOf: standardWebhooksKey });
  return createHmacVerifier(settings, secrets);
}
