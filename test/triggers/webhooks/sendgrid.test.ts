import { generateKeyPairSync, sign as signData, type KeyObject } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createWebhookVerifier } from '../../../engine/triggers/webhooks/verify.js';
import { thrown } from '../../support/errors.js';
import { SecretScan } from '../../support/secret-scan.js';
import { deliveryOf, describeCorpus, outcomeOf, webhooksOf, type SignedRequest } from './corpus.js';

const scan = new SecretScan();
afterAll(() => scan.assertClean());
const url = 'https://hooks.example.test/hooks/sendgrid-events';

/**
 * Key pairs made in the test: the "secret" a connection holds is the public key (base64 DER), so
 * the private key is kept beside it to sign.
 */
const privateKeys = new Map<string, KeyObject>();
function freshSecret(): string {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const text = publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
  privateKeys.set(text, privateKey);
  return text;
}

function sign(publicKey: string, body: Buffer, signedAtSec: number): SignedRequest {
  const privateKey = privateKeys.get(publicKey);
  if (privateKey === undefined) throw new Error('unknown test key');
  const signature = signData('sha256', Buffer.concat([Buffer.from(String(signedAtSec)), body]), privateKey).toString('base64');
  return { headers: { 'X-Twilio-Email-Event-Webhook-Signature': signature, 'X-Twilio-Email-Event-Webhook-Timestamp': String(signedAtSec) }, url, body };
}

describeCorpus('sendgrid', { provider: 'sendgrid', freshSecret, sign, signatureHeader: 'X-Twilio-Email-Event-Webhook-Signature', toleranceSeconds: 300, scan });

describe('sendgrid: the SDK test vector and keys', () => {
  const webhooks = webhooksOf('sendgrid');
  // The vector of SendGrid's own SDK tests (@sendgrid/eventwebhook): public key, signature,
  // timestamp and the payload JSON.stringify({ category, event, message_id }).
  const publicKey = 'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==';
  const signature = 'MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0=';
  const timestamp = '1588788367';
  const payload = JSON.stringify({ category: 'example_payload', event: 'test_event', message_id: 'message_id' });
  const at = Number(timestamp) * 1000;
  const delivery = (overrides: { key?: string; body?: string; signature?: string; timestamp?: string } = {}) =>
    deliveryOf({
      headers: { 'X-Twilio-Email-Event-Webhook-Signature': overrides.signature ?? signature, 'X-Twilio-Email-Event-Webhook-Timestamp': overrides.timestamp ?? timestamp },
      url,
      body: Buffer.from(overrides.body ?? payload),
    });

  it('accepts the published vector and refuses each of its published negative cases', async () => {
    expect(await outcomeOf(webhooks, [publicKey], delivery(), at)).toBe('accepted');
    const otherKey = 'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWHw8REntlo7aNDthvj+y7GjUuFDb/R1NGe1OPzpA==';
    expect(await outcomeOf(webhooks, [otherKey], delivery(), at)).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(await outcomeOf(webhooks, [otherKey, publicKey], delivery(), at)).toBe('accepted');
    expect(await outcomeOf(webhooks, [publicKey], delivery({ body: 'payload' }), at)).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    const badSignature = 'MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH3j/0=';
    expect(await outcomeOf(webhooks, [publicKey], delivery({ signature: badSignature }), at)).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(await outcomeOf(webhooks, [publicKey], delivery({ timestamp: 'timestamp' }), at)).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(await outcomeOf(webhooks, [publicKey], delivery(), at + 301_000)).toBe('PB_WEBHOOK_STALE');
  });

  it('refuses signatures that are not DER, without crashing', async () => {
    for (const value of ['AAAA', Buffer.alloc(70, 1).toString('base64'), Buffer.alloc(64, 7).toString('base64')]) {
      expect(await outcomeOf(webhooks, [publicKey], delivery({ signature: value }), at)).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    }
  });

  it('refuses to build a verifier with a key that is not a P-256 public key', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
    for (const key of ['not-base64!', rsa, Buffer.from('short').toString('base64')]) {
      expect(thrown(() => createWebhookVerifier(webhooks, [key])).code).toBe('PB_WEBHOOK_CONFIG');
    }
  });
});
