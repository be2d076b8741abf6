import { randomBytes } from 'node:crypto';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { afterAll, describe, expect, it } from 'vitest';
import { createWebhookVerifier } from '../../../engine/triggers/webhooks/verify.js';
import { thrown } from '../../support/errors.js';
import { SecretScan } from '../../support/secret-scan.js';
import { deliveryOf, describeCorpus, outcomeOf, webhooksOf, type SignedRequest } from './corpus.js';

const scan = new SecretScan();
afterAll(() => scan.assertClean());
const url = 'https://hooks.example.test/hooks/generic-orders';
const freshSecret = (): string => scan.secret(`whsec_${randomBytes(24).toString('base64')}`);

function sign(secret: string, body: Buffer, signedAtSec: number, id = `msg_${randomBytes(8).toString('hex')}`): SignedRequest {
  const signature = new Webhook(secret).sign(id, new Date(signedAtSec * 1000), body.toString('utf8'));
  return { headers: { 'webhook-id': id, 'webhook-timestamp': String(signedAtSec), 'webhook-signature': signature }, url, body };
}

/** The SDK's verdict at a given time (it reads Date.now(), so the clock is pinned for the call). */
function sdkAccepts(secret: string, request: SignedRequest, nowSec: number): boolean {
  const realNow = Date.now;
  Date.now = () => nowSec * 1000;
  try {
    new Webhook(secret).verify(request.body.toString('utf8'), request.headers);
    return true;
  } catch (error) {
    if (error instanceof WebhookVerificationError || error instanceof SyntaxError) return false;
    throw error;
  } finally {
    Date.now = realNow;
  }
}

describeCorpus('standardWebhooks', { provider: 'http', freshSecret, sign, sdkAccepts, signatureHeader: 'webhook-signature', toleranceSeconds: 300, scan });

describe('standardWebhooks: signature lists, svix names, secrets', () => {
  const webhooks = webhooksOf('http');
  const body = Buffer.from('{"type":"order.created","data":{"id":1}}');
  const nowSec = Math.floor(Date.now() / 1000);

  it('accepts any v1 entry of a space-separated list and ignores other versions', async () => {
    const secret = freshSecret();
    const other = freshSecret();
    const request = sign(secret, body, nowSec, 'msg_1');
    const good = request.headers['webhook-signature'] ?? '';
    const bad = sign(other, body, nowSec, 'msg_1').headers['webhook-signature'] ?? '';
    const at = nowSec * 1000;
    const withSignature = (value: string): SignedRequest => ({ ...request, headers: { ...request.headers, 'webhook-signature': value } });
    for (const value of [`${bad} ${good}`, `${good} ${bad}`, `v1a,${good.slice(3)} ${good}`, `v2,abc ${good}`]) {
      expect(await outcomeOf(webhooks, [secret], deliveryOf(withSignature(value)), at)).toBe('accepted');
      expect(sdkAccepts(secret, withSignature(value), nowSec)).toBe(true);
    }
    for (const value of [bad, `v1a,${good.slice(3)}`, `v2,${good.slice(3)}`, good.replace('v1,', 'v1 ')]) {
      expect(await outcomeOf(webhooks, [secret], deliveryOf(withSignature(value)), at)).toBe('PB_WEBHOOK_BAD_SIGNATURE');
      expect(sdkAccepts(secret, withSignature(value), nowSec)).toBe(false);
    }
  });

  it('binds the message id: the same signature under another webhook-id is refused', async () => {
    const secret = freshSecret();
    const request = sign(secret, body, nowSec, 'msg_1');
    const moved = { ...request, headers: { ...request.headers, 'webhook-id': 'msg_2' } };
    expect(await outcomeOf(webhooks, [secret], deliveryOf(moved), nowSec * 1000)).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(sdkAccepts(secret, moved, nowSec)).toBe(false);
  });

  it('refuses a delivery without webhook-id or webhook-timestamp (as the SDK does)', async () => {
    const secret = freshSecret();
    const request = sign(secret, body, nowSec, 'msg_1');
    for (const drop of ['webhook-id', 'webhook-timestamp']) {
      const headers = { ...request.headers };
      delete headers[drop];
      expect(await outcomeOf(webhooks, [secret], deliveryOf({ ...request, headers }), nowSec * 1000)).toBe('PB_WEBHOOK_MISSING_SIGNATURE');
      expect(sdkAccepts(secret, { ...request, headers }, nowSec)).toBe(false);
    }
  });

  it('accepts the svix-* header names and returns the message id', async () => {
    const secret = freshSecret();
    const request = sign(secret, body, nowSec, 'msg_svix');
    const svix = { 'Svix-Id': request.headers['webhook-id'] ?? '', 'Svix-Timestamp': request.headers['webhook-timestamp'] ?? '', 'Svix-Signature': request.headers['webhook-signature'] ?? '' };
    const verified = await createWebhookVerifier(webhooks, [secret]).verify(deliveryOf({ ...request, headers: svix }), nowSec * 1000);
    expect(verified).toEqual({ deliveryId: 'msg_svix', signedAtMs: nowSec * 1000 });
    const stale = sign(secret, body, nowSec - 301, 'msg_old');
    const staleSvix = { 'svix-id': 'msg_old', 'svix-timestamp': stale.headers['webhook-timestamp'] ?? '', 'svix-signature': stale.headers['webhook-signature'] ?? '' };
    expect(await outcomeOf(webhooks, [secret], deliveryOf({ ...stale, headers: staleSvix }), nowSec * 1000)).toBe('PB_WEBHOOK_STALE');
  });

  it('uses the base64-decoded secret after whsec_ (the text of the secret as a key does not verify)', async () => {
    const secret = freshSecret();
    const request = sign(secret, body, nowSec, 'msg_1');
    const { createHmac } = await import('node:crypto');
    const wrongKey = createHmac('sha256', secret).update(`msg_1.${nowSec}.`).update(body).digest('base64');
    const forged = { ...request, headers: { ...request.headers, 'webhook-signature': `v1,${wrongKey}` } };
    expect(await outcomeOf(webhooks, [secret], deliveryOf(forged), nowSec * 1000)).toBe('PB_WEBHOOK_BAD_SIGNATURE');
  });

  it('refuses to build a verifier with a secret that is not whsec_<base64>, naming its position only', () => {
    const good = freshSecret();
    const bad = scan.secret('whsec_not*base64*at*all');
    const error = thrown(() => createWebhookVerifier(webhooks, [good, bad]));
    expect(error.code).toBe('PB_WEBHOOK_CONFIG');
    expect(error.message).toContain('#2');
    scan.error('config', error);
  });
});
