import { createHmac, randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { handshakeOf, isProbe, parseDelivery, probeAnswerOf } from '../../../engine/triggers/webhooks/delivery.js';
import { createWebhookVerifier } from '../../../engine/triggers/webhooks/verify.js';
import { SecretScan } from '../../support/secret-scan.js';
import { deliveryOf, describeCorpus, outcomeOf, webhooksOf, type SignedRequest } from './corpus.js';

const scan = new SecretScan();
afterAll(() => scan.assertClean());
const url = 'https://hooks.example.test/hooks/mandrill-events';
const formType = 'application/x-www-form-urlencoded';
const freshSecret = (): string => scan.secret(randomBytes(16).toString('base64url'));

/**
 * Mandrill's documented algorithm ("Authenticating webhook requests"): the webhook URL, then each
 * POST parameter's name and value sorted by name, HMAC-SHA1 with the webhook key, base64.
 * Written here from the description, independently of the engine.
 */
function mandrillSign(key: string, webhookUrl: string, params: Record<string, string>): string {
  let signed = webhookUrl;
  for (const name of Object.keys(params).sort()) signed += name + params[name];
  return createHmac('sha1', key).update(signed, 'utf8').digest('base64');
}

function mandrillForm(text: string): Buffer {
  return Buffer.from(new URLSearchParams({ mandrill_events: `[{"event":"send","_id":"abc","msg":${JSON.stringify(text)}}]` }).toString());
}

function sign(key: string, body: Buffer): SignedRequest {
  const params = Object.fromEntries(new URLSearchParams(body.toString()));
  return { headers: { 'X-Mandrill-Signature': mandrillSign(key, url, params), 'Content-Type': formType }, url, body };
}

describeCorpus('mailchimp (Mandrill signature)', { provider: 'mailchimp', freshSecret, sign, signatureHeader: 'X-Mandrill-Signature', body: mandrillForm, scan });

describe('mailchimp: audience webhooks keyed by ?key=, and probes', () => {
  const webhooks = webhooksOf('mailchimp');
  const body = Buffer.from('type=subscribe&fired_at=2009-03-26+21%3A35%3A57&data%5Bid%5D=8a25ff1d98&data%5Blist_id%5D=a6b5da1054&data%5Bemail%5D=api%40mailchimp.com&data%5Bmerges%5D%5BFNAME%5D=Jane&data%5Bmerges%5D%5BINTERESTS%5D=Group1%2CGroup2');
  const post = (query: string): ReturnType<typeof deliveryOf> => deliveryOf({ headers: { 'content-type': formType }, url: `https://hooks.example.test/hooks/mc-audience${query}`, body });

  it('accepts a delivery whose ?key= equals an active secret, refuses a wrong or missing key, and never repeats the query', async () => {
    const secret = freshSecret();
    const old = freshSecret();
    expect(await outcomeOf(webhooks, [secret], post(`?key=${encodeURIComponent(secret)}`), Date.now(), scan)).toBe('accepted');
    expect(await outcomeOf(webhooks, [old, secret], post(`?key=${encodeURIComponent(secret)}`), Date.now(), scan)).toBe('accepted');
    expect(await outcomeOf(webhooks, [secret], post(`?key=${encodeURIComponent(old)}`), Date.now(), scan)).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(await outcomeOf(webhooks, [secret], post(`?key=${encodeURIComponent(secret.slice(0, -1))}`), Date.now(), scan)).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(await outcomeOf(webhooks, [secret], post(`?key=${encodeURIComponent(secret)}x`), Date.now(), scan)).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(await outcomeOf(webhooks, [secret], post(''), Date.now(), scan)).toBe('PB_WEBHOOK_MISSING_SIGNATURE');
    expect(await outcomeOf(webhooks, [secret], post('?key='), Date.now(), scan)).toBe('PB_WEBHOOK_MISSING_SIGNATURE');
    expect(await outcomeOf(webhooks, [secret], post('?other=1'), Date.now(), scan)).toBe('PB_WEBHOOK_MISSING_SIGNATURE');
  });

  it('does not let a bad Mandrill signature fall back to the key', async () => {
    const secret = freshSecret();
    const delivery = deliveryOf({ headers: { 'content-type': formType, 'x-mandrill-signature': 'AAAA' }, url: `https://hooks.example.test/hooks/mc?key=${secret}`, body });
    expect(await outcomeOf(webhooks, [secret], delivery, Date.now(), scan)).toBe('PB_WEBHOOK_BAD_SIGNATURE');
  });

  it('signs the URL exactly: a Mandrill signature for another URL or query is refused', async () => {
    const key = freshSecret();
    const request = sign(key, mandrillForm('hi'));
    expect(await outcomeOf(webhooks, [key], deliveryOf({ ...request, url: `${url}?x=1` }), Date.now())).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(await outcomeOf(webhooks, [key], deliveryOf({ ...request, url: url.replace('https:', 'http:') }), Date.now())).toBe('PB_WEBHOOK_BAD_SIGNATURE');
  });

  it('nests the bracketed form fields as Mailchimp means them', () => {
    const parsed = parseDelivery(webhooks, post(''));
    expect(parsed.eventType).toBe('subscribe');
    expect(parsed.payload).toEqual({
      type: 'subscribe',
      fired_at: '2009-03-26 21:35:57',
      data: { id: '8a25ff1d98', list_id: 'a6b5da1054', email: 'api@mailchimp.com', merges: { FNAME: 'Jane', INTERESTS: 'Group1,Group2' } },
    });
  });

  it("answers Mailchimp's GET and Mandrill's HEAD probes with 200 and nothing else; POSTs are not probes", () => {
    const secret = freshSecret();
    for (const method of ['GET', 'HEAD', 'get']) {
      const probe = { method, url: new URL('https://hooks.example.test/hooks/mc'), headers: {}, rawBody: Buffer.alloc(0) };
      expect(isProbe(webhooks, probe)).toBe(true);
      expect(probeAnswerOf(webhooks, probe)).toEqual({ status: 200, contentType: 'text/plain; charset=utf-8', body: '' });
      expect(handshakeOf(webhooks, probe, undefined)).toEqual({ status: 200, contentType: 'text/plain; charset=utf-8', body: '' });
    }
    expect(isProbe(webhooks, post(''))).toBe(false);
    expect(handshakeOf(webhooks, post(''), {})).toBeUndefined();
    expect(isProbe(webhooksOf('stripe'), { method: 'GET' })).toBe(false);
    expect(createWebhookVerifier(webhooks, [secret]).scheme).toBe('mailchimp');
  });
});
