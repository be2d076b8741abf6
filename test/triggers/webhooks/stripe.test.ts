import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';
import { afterAll, describe, expect, it } from 'vitest';
import { SecretScan } from '../../support/secret-scan.js';
import { deliveryOf, describeCorpus, outcomeOf, webhooksOf } from './corpus.js';

const scan = new SecretScan();
afterAll(() => scan.assertClean());
const stripe = new Stripe('sk_test_fake_not_used_for_calls');
const url = 'https://hooks.example.test/hooks/stripe-orders';

const freshSecret = (): string => scan.secret(`whsec_test_${randomBytes(24).toString('hex')}`);
const sign = (secret: string, body: Buffer, signedAtSec: number) => ({
  headers: { 'Stripe-Signature': stripe.webhooks.generateTestHeaderString({ payload: body.toString('utf8'), secret, timestamp: signedAtSec }) },
  url,
  body,
});

describeCorpus('stripe', {
  provider: 'stripe',
  freshSecret,
  sign,
  sdkAccepts: (secret, request, nowSec) => {
    try {
      stripe.webhooks.constructEvent(request.body, request.headers['Stripe-Signature'] ?? '', secret, 300, undefined, nowSec * 1000);
      return true;
    } catch (error) {
      if (error instanceof Stripe.errors.StripeSignatureVerificationError || error instanceof SyntaxError) return false;
      throw error;
    }
  },
  signatureHeader: 'Stripe-Signature',
  toleranceSeconds: 300,
  sdkAcceptsFuture: true,
  scan,
});

describe('stripe: header forms', () => {
  const webhooks = webhooksOf('stripe');
  const nowSec = Math.floor(Date.now() / 1000);
  const body = Buffer.from('{"id":"evt_1","object":"event","type":"payment_intent.succeeded"}');

  function header(secret: string, signedAtSec: number): { t: string; v1: string } {
    const text = stripe.webhooks.generateTestHeaderString({ payload: body.toString('utf8'), secret, timestamp: signedAtSec });
    const parts = Object.fromEntries(text.split(',').map((item) => item.split('=') as [string, string]));
    return { t: parts['t'] ?? '', v1: parts['v1'] ?? '' };
  }
  const outcome = (value: string, secrets: string[]) => outcomeOf(webhooks, secrets, deliveryOf({ headers: { 'stripe-signature': value }, url, body }), nowSec * 1000, scan);

  it('accepts several v1 signatures (Stripe rolling a secret): any matching one', async () => {
    const old = freshSecret();
    const next = freshSecret();
    const a = header(old, nowSec);
    const b = header(next, nowSec);
    expect(await outcome(`t=${a.t},v1=${a.v1},v1=${b.v1}`, [next])).toBe('accepted');
    expect(await outcome(`t=${a.t},v1=${b.v1},v1=${a.v1}`, [old])).toBe('accepted');
    expect(await outcome(`t=${a.t},v1=${'0'.repeat(64)},v1=${a.v1}`, [old])).toBe('accepted');
  });

  it('ignores v0 and unknown schemes, and refuses a header with only those', async () => {
    const secret = freshSecret();
    const { t, v1 } = header(secret, nowSec);
    expect(await outcome(`t=${t},v0=${v1},v1=${v1},x9=abc`, [secret])).toBe('accepted');
    expect(await outcome(`t=${t},v0=${v1}`, [secret])).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    // A valid digest under another scheme name must not be accepted.
    expect(await outcome(`t=${t},v2=${v1}`, [secret])).toBe('PB_WEBHOOK_BAD_SIGNATURE');
  });

  it('refuses a header without t=, with two t=, or with a non-numeric t', async () => {
    const secret = freshSecret();
    const { t, v1 } = header(secret, nowSec);
    expect(await outcome(`v1=${v1}`, [secret])).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(await outcome(`t=${t},t=${t},v1=${v1}`, [secret])).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(await outcome(`t=${t}x,v1=${v1}`, [secret])).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(await outcome(`t=-${t},v1=${v1}`, [secret])).toBe('PB_WEBHOOK_BAD_SIGNATURE');
  });

  it('binds the timestamp: a signature moved to another t= is refused', async () => {
    const secret = freshSecret();
    const { t, v1 } = header(secret, nowSec);
    expect(await outcome(`t=${Number(t) + 1},v1=${v1}`, [secret])).toBe('PB_WEBHOOK_BAD_SIGNATURE');
  });

  it('refuses upper-case hex (the SDK compares the exact text) and a truncated signature', async () => {
    const secret = freshSecret();
    const { t, v1 } = header(secret, nowSec);
    expect(await outcome(`t=${t},v1=${v1.toUpperCase()}`, [secret])).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(await outcome(`t=${t},v1=${v1.slice(0, 62)}`, [secret])).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(await outcome(`t=${t},v1=${v1}00`, [secret])).toBe('PB_WEBHOOK_BAD_SIGNATURE');
  });

  it('returns the signing time', async () => {
    const secret = freshSecret();
    const { t, v1 } = header(secret, nowSec - 10);
    const { createWebhookVerifier } = await import('../../../engine/triggers/webhooks/verify.js');
    const verified = await createWebhookVerifier(webhooks, [secret]).verify(deliveryOf({ headers: { 'stripe-signature': `t=${t},v1=${v1}` }, url, body }), nowSec * 1000);
    expect(verified.signedAtMs).toBe((nowSec - 10) * 1000);
  });
});
