import { createHmac, randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { parseDelivery } from '../../../engine/triggers/webhooks/delivery.js';
import { createWebhookVerifier } from '../../../engine/triggers/webhooks/verify.js';
import { SecretScan } from '../../support/secret-scan.js';
import { deliveryOf, describeCorpus, outcomeOf, webhooksOf } from './corpus.js';

const scan = new SecretScan();
afterAll(() => scan.assertClean());
const url = 'https://hooks.example.test/hooks/shopify-orders';
const freshSecret = (): string => scan.secret(randomBytes(16).toString('hex'));

/** Shopify's documented algorithm: base64 HMAC-SHA256 of the raw body with the app's client secret. */
const shopifySign = (secret: string, body: Buffer): string => createHmac('sha256', secret).update(body).digest('base64');

describeCorpus('shopify', {
  provider: 'shopify',
  freshSecret,
  sign: (secret, body) => ({
    headers: { 'X-Shopify-Hmac-Sha256': shopifySign(secret, body), 'X-Shopify-Topic': 'orders/create', 'X-Shopify-Webhook-Id': 'b54557e4-bdd9-4b37-8a5f-bf7d70bcd043' },
    url,
    body,
  }),
  signatureHeader: 'X-Shopify-Hmac-Sha256',
  scan,
});

describe('shopify: base64 forms, topic and webhook id', () => {
  const webhooks = webhooksOf('shopify');
  const body = Buffer.from('{"id":820982911946154508,"name":"#1001"}');

  it('refuses base64url, unpadded and hex spellings of a valid digest', async () => {
    const secret = freshSecret();
    const digest = createHmac('sha256', secret).update(body).digest();
    const outcome = (value: string) => outcomeOf(webhooks, [secret], deliveryOf({ headers: { 'x-shopify-hmac-sha256': value }, url, body }), Date.now());
    expect(await outcome(digest.toString('base64'))).toBe('accepted');
    expect(await outcome(digest.toString('base64').replace(/=+$/, ''))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(await outcome(digest.toString('hex'))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    const urlSafe = digest.toString('base64url');
    if (urlSafe !== digest.toString('base64').replace(/=+$/, '')) expect(await outcome(urlSafe)).toBe('PB_WEBHOOK_BAD_SIGNATURE');
  });

  it('reads the topic as event type and X-Shopify-Webhook-Id as event id', async () => {
    const secret = freshSecret();
    const delivery = deliveryOf({
      headers: { 'X-Shopify-Hmac-Sha256': shopifySign(secret, body), 'X-Shopify-Topic': 'orders/create', 'X-Shopify-Webhook-Id': 'wh-1', 'Content-Type': 'application/json' },
      url,
      body,
    });
    const verified = await createWebhookVerifier(webhooks, [secret]).verify(delivery, Date.now());
    expect(verified.deliveryId).toBe('wh-1');
    const parsed = parseDelivery(webhooks, delivery, verified);
    expect(parsed.eventType).toBe('orders/create');
    expect(parsed.eventId).toBe('wh-1');
    // Big integers stay as JSON.parse reads them; the raw bytes were what was verified.
    expect((parsed.payload as { name: string }).name).toBe('#1001');
  });
});
