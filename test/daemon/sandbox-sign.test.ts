import { createHash, createHmac, randomBytes } from 'node:crypto';
import { verify as verifyGithub } from '@octokit/webhooks-methods';
import { Webhook } from 'standardwebhooks';
import Stripe from 'stripe';
import twilio from 'twilio';
import { describe, expect, it } from 'vitest';
import { webhookSecret } from '../../engine/daemon/sandbox/secrets.js';
import { signDelivery, type DeliveryToSign } from '../../engine/daemon/sandbox/sign.js';
import type { WebhookVerification } from '../../engine/types/provider.generated.js';

// `send` signs as each provider does: checked with the providers' own SDKs where they publish
// one, and with the documented recipe (recomputed here) where they do not.

const stripe = new Stripe('sk_test_fake_not_used_for_calls');
const url = 'http://127.0.0.1:8080/hooks/orders';
const nowSec = Math.floor(Date.now() / 1000);
const json = Buffer.from(JSON.stringify({ id: 'evt_1', type: 'payment_intent.succeeded', note: 'Grüße ✓' }), 'utf8');

function delivery(verification: WebhookVerification, secret: string, body: Buffer = json, form = false): DeliveryToSign {
  return { verification, secret, url, body, form, id: 'msg_2a1b3c', timestampSec: nowSec };
}

describe('signDelivery', () => {
  it('stripe: accepted by stripe.webhooks.constructEvent', () => {
    const secret = webhookSecret('stripe');
    const headers = signDelivery(delivery({ scheme: 'stripe', header: 'Stripe-Signature' }, secret));
    expect(() => stripe.webhooks.constructEvent(json, headers['stripe-signature']!, secret, 300)).not.toThrow();
    expect(() => stripe.webhooks.constructEvent(json, headers['stripe-signature']!, webhookSecret('stripe'), 300)).toThrow();
  });

  it('github: accepted by @octokit/webhooks-methods', async () => {
    const secret = webhookSecret('github');
    const headers = signDelivery(delivery({ scheme: 'github', header: 'X-Hub-Signature-256', prefix: 'sha256=' }, secret));
    expect(await verifyGithub(secret, json.toString('utf8'), headers['x-hub-signature-256']!)).toBe(true);
  });

  it('standardWebhooks: accepted by the standardwebhooks library', () => {
    const secret = webhookSecret('standardWebhooks');
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    const headers = signDelivery(delivery({ scheme: 'standardWebhooks', header: 'webhook-signature', timestampHeader: 'webhook-timestamp', idHeader: 'webhook-id' }, secret));
    expect(new Webhook(secret).verify(json.toString('utf8'), headers)).toMatchObject({ id: 'evt_1' });
  });

  it('twilio: accepted by twilio.validateRequest (form) and its bodySHA256 variant (JSON)', () => {
    const secret = webhookSecret('twilio');
    const form = Buffer.from('To=%2B15555550100&From=%2B15555550123&Body=Hello+%E2%9C%93&MessageSid=SM1', 'utf8');
    const headers = signDelivery(delivery({ scheme: 'twilio', header: 'X-Twilio-Signature' }, secret, form, true));
    const params = Object.fromEntries(new URLSearchParams(form.toString('utf8')));
    expect(twilio.validateRequest(secret, headers['x-twilio-signature']!, url, params)).toBe(true);
    const withHash = new URL(url);
    withHash.searchParams.set('bodySHA256', createHash('sha256').update(json).digest('hex'));
    const jsonHeaders = signDelivery({ ...delivery({ scheme: 'twilio' }, secret), url: withHash.href });
    expect(twilio.validateRequestWithBody(secret, jsonHeaders['x-twilio-signature']!, withHash.href, json.toString('utf8'))).toBe(true);
  });

  it('slack, shopify, mailchimp (Mandrill) and generic hmac: the documented recipes', () => {
    const slackSecret = webhookSecret('slack');
    const slack = signDelivery(delivery({ scheme: 'slack', header: 'X-Slack-Signature', prefix: 'v0=', timestampHeader: 'X-Slack-Request-Timestamp', signedPayload: 'v0:{timestamp}:{body}' }, slackSecret));
    expect(slack['x-slack-request-timestamp']).toBe(String(nowSec));
    expect(slack['x-slack-signature']).toBe(`v0=${createHmac('sha256', slackSecret).update(`v0:${nowSec}:`).update(json).digest('hex')}`);

    const shopifySecret = webhookSecret('shopify');
    const shopify = signDelivery(delivery({ scheme: 'shopify', header: 'X-Shopify-Hmac-Sha256', encoding: 'base64' }, shopifySecret));
    expect(shopify['x-shopify-hmac-sha256']).toBe(createHmac('sha256', shopifySecret).update(json).digest('base64'));

    const mandrillKey = webhookSecret('mailchimp');
    const form = Buffer.from('type=subscribe&data%5Bemail%5D=jane%40example.com&fired_at=2026-01-15+09%3A30%3A00', 'utf8');
    const mandrill = signDelivery(delivery({ scheme: 'mailchimp' }, mandrillKey, form, true));
    const signed = `${url}data[email]jane@example.comfired_at2026-01-15 09:30:00typesubscribe`;
    expect(mandrill['x-mandrill-signature']).toBe(createHmac('sha1', mandrillKey).update(signed).digest('base64'));

    const hmacSecret = randomBytes(16).toString('hex');
    const generic = signDelivery(
      delivery({ scheme: 'hmac', header: 'X-Signature', prefix: 'sha512=', algorithm: 'sha512', encoding: 'base64', signedPayload: '{id}:{timestamp}:{body}', timestampHeader: 'X-Time', idHeader: 'X-Id' }, hmacSecret),
    );
    expect(generic).toEqual({
      'x-signature': `sha512=${createHmac('sha512', hmacSecret).update(`msg_2a1b3c:${nowSec}:`).update(json).digest('base64')}`,
      'x-time': String(nowSec),
      'x-id': 'msg_2a1b3c',
    });
  });

  it('refuses schemes signed with the provider\'s own keys', () => {
    for (const scheme of ['sendgrid', 'plaid', 'awsSns'] as const) {
      expect(() => signDelivery(delivery({ scheme }, 'x'))).toThrow(expect.objectContaining({ code: 'PB_SEND_UNSUPPORTED' }));
    }
    expect(signDelivery(delivery({ scheme: 'none' }, ''))).toEqual({});
  });
});
