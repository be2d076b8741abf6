import { createHmac, randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import type { ProviderWebhooks, WebhookVerification } from '../../../engine/types/provider.generated.js';
import { createWebhookVerifier } from '../../../engine/triggers/webhooks/verify.js';
import { thrown } from '../../support/errors.js';
import { SecretScan } from '../../support/secret-scan.js';
import { deliveryOf, outcomeOf } from './corpus.js';

const scan = new SecretScan();
afterAll(() => scan.assertClean());
const url = 'https://hooks.example.test/hooks/custom?tenant=7';
const fresh = (): string => scan.secret(randomBytes(18).toString('hex'));
const hooks = (verification: Partial<WebhookVerification>): ProviderWebhooks => ({ verification: { scheme: 'hmac', ...verification }, eventType: { path: 'type' } });

describe('generic hmac: the YAML fields drive the check', () => {
  const body = Buffer.from('{"type":"a","n":"\\u00e9"}');
  const nowSec = Math.floor(Date.now() / 1000);

  it('signs {body} by default with sha256 hex, and honours prefix, algorithm and encoding', async () => {
    const secret = fresh();
    for (const [algorithm, encoding, prefix] of [['sha256', 'hex', ''], ['sha1', 'base64', 'sha1='], ['sha512', 'hex', 'v1:']] as const) {
      const signature = prefix + createHmac(algorithm, secret).update(body).digest(encoding);
      const webhooks = hooks({ header: 'X-Signature', algorithm, encoding, prefix });
      expect(await outcomeOf(webhooks, [secret], deliveryOf({ headers: { 'x-signature': signature }, url, body }), Date.now(), scan)).toBe('accepted');
      const otherAlgorithm = algorithm === 'sha256' ? 'sha512' : 'sha256';
      expect(await outcomeOf(hooks({ header: 'X-Signature', algorithm: otherAlgorithm, encoding, prefix }), [secret], deliveryOf({ headers: { 'x-signature': signature }, url, body }), Date.now())).toBe('PB_WEBHOOK_BAD_SIGNATURE');
      if (prefix !== '') {
        expect(await outcomeOf(webhooks, [secret], deliveryOf({ headers: { 'x-signature': signature.slice(prefix.length) }, url, body }), Date.now())).toBe('PB_WEBHOOK_BAD_SIGNATURE');
      }
    }
  });

  it('builds {timestamp}, {id} and {url} into the signed payload and checks the tolerance both ways', async () => {
    const secret = fresh();
    const webhooks = hooks({ header: 'X-Sig', timestampHeader: 'X-Time', idHeader: 'X-Id', signedPayload: '{id}|{timestamp}|{url}|{body}', toleranceSeconds: 60 });
    const signed = (at: number, id = 'd-1', target = url) => ({
      headers: { 'X-Sig': createHmac('sha256', secret).update(`${id}|${at}|${target}|`).update(body).digest('hex'), 'X-Time': String(at), 'X-Id': id },
      url: target,
      body,
    });
    const verified = await createWebhookVerifier(webhooks, [secret]).verify(deliveryOf(signed(nowSec)), nowSec * 1000);
    expect(verified).toEqual({ deliveryId: 'd-1', signedAtMs: nowSec * 1000 });
    expect(await outcomeOf(webhooks, [secret], deliveryOf(signed(nowSec - 60)), nowSec * 1000)).toBe('accepted');
    expect(await outcomeOf(webhooks, [secret], deliveryOf(signed(nowSec - 61)), nowSec * 1000)).toBe('PB_WEBHOOK_STALE');
    expect(await outcomeOf(webhooks, [secret], deliveryOf(signed(nowSec + 61)), nowSec * 1000)).toBe('PB_WEBHOOK_STALE');
    const moved = { ...signed(nowSec), url: 'https://hooks.example.test/hooks/custom?tenant=8' };
    expect(await outcomeOf(webhooks, [secret], deliveryOf(moved), nowSec * 1000, scan)).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    const otherId = { ...signed(nowSec), headers: { ...signed(nowSec).headers, 'X-Id': 'd-2' } };
    expect(await outcomeOf(webhooks, [secret], deliveryOf(otherId), nowSec * 1000)).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    const noId = signed(nowSec);
    delete (noId.headers as Record<string, string>)['X-Id'];
    expect(await outcomeOf(webhooks, [secret], deliveryOf(noId), nowSec * 1000)).toBe('PB_WEBHOOK_MISSING_SIGNATURE');
    const noTime = signed(nowSec);
    delete (noTime.headers as Record<string, string>)['X-Time'];
    expect(await outcomeOf(webhooks, [secret], deliveryOf(noTime), nowSec * 1000)).toBe('PB_WEBHOOK_MISSING_SIGNATURE');
  });

  it('compares digests, never strings: a signature of the wrong length or alphabet is refused, not thrown', async () => {
    const secret = fresh();
    const webhooks = hooks({ header: 'X-Signature' });
    const good = createHmac('sha256', secret).update(body).digest('hex');
    for (const value of [good.slice(0, 40), `${good}ab`, good.replace(/[0-9a-f]/, 'g'), `${good.slice(0, 63)}`, ' '.repeat(64)]) {
      expect(await outcomeOf(webhooks, [secret], deliveryOf({ headers: { 'x-signature': value }, url, body }), Date.now())).toMatch(/^PB_WEBHOOK_(BAD|MISSING)_SIGNATURE$/);
    }
  });

  it('refuses configurations that cannot verify, naming the problem and no secret', () => {
    const secret = fresh();
    const cases: [ProviderWebhooks, readonly string[]][] = [
      [hooks({}), [secret]],
      [hooks({ header: 'X-S', signedPayload: '{timestamp}.{body}' }), [secret]],
      [hooks({ header: 'X-S', signedPayload: '{id}.{body}' }), [secret]],
      [hooks({ header: 'X-S', signedPayload: '{bodyy}' }), [secret]],
      [hooks({ header: 'X-S', toleranceSeconds: 0 }), [secret]],
      [hooks({ header: 'X-S' }), []],
      [hooks({ header: 'X-S' }), [secret, '']],
    ];
    for (const [webhooks, secrets] of cases) {
      const error = thrown(() => createWebhookVerifier(webhooks, secrets));
      expect(error.code).toBe('PB_WEBHOOK_CONFIG');
      scan.error('config', error);
    }
  });

  it('refuses plaid and awsSns with PB_WEBHOOK_SCHEME_UNSUPPORTED, and lets scheme none through', async () => {
    for (const scheme of ['plaid', 'awsSns'] as const) {
      const error = thrown(() => createWebhookVerifier({ verification: { scheme }, eventType: { path: 'type' } }, [fresh()]));
      expect(error.code).toBe('PB_WEBHOOK_SCHEME_UNSUPPORTED');
      expect(error.message).toContain(scheme);
    }
    const none = createWebhookVerifier({ verification: { scheme: 'none' }, eventType: { path: 'type' } }, []);
    expect(await none.verify(deliveryOf({ headers: {}, url, body }), Date.now())).toEqual({});
  });

  it('does constant work per secret: many active secrets, the last one signing, still verify', async () => {
    const secrets = Array.from({ length: 20 }, fresh);
    const last = secrets[secrets.length - 1] ?? '';
    const signature = createHmac('sha256', last).update(body).digest('hex');
    expect(await outcomeOf(hooks({ header: 'X-Signature' }), secrets, deliveryOf({ headers: { 'x-signature': signature }, url, body }), Date.now())).toBe('accepted');
  });
});
