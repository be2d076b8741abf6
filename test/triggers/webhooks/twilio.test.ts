import { createHash, randomBytes } from 'node:crypto';
import { parse as parseQuery } from 'node:querystring';
import twilio from 'twilio';
import { afterAll, describe, expect, it } from 'vitest';
import { parseDelivery } from '../../../engine/triggers/webhooks/delivery.js';
import { twilioUrlCandidates } from '../../../engine/triggers/webhooks/twilio-signature.js';
import { SecretScan } from '../../support/secret-scan.js';
import { deliveryOf, describeCorpus, outcomeOf, webhooksOf, type SignedRequest } from './corpus.js';

const scan = new SecretScan();
afterAll(() => scan.assertClean());
const base = 'https://hooks.example.test/hooks/twilio-sms';
const freshSecret = (): string => scan.secret(randomBytes(16).toString('hex'));
const formType = 'application/x-www-form-urlencoded; charset=UTF-8';

/** Form parameters as Twilio posts an inbound SMS, with `text` as the message body. */
function smsForm(text: string): Buffer {
  const form = new URLSearchParams();
  form.append('ToCountry', 'US');
  form.append('SmsMessageSid', 'SM1f0e8ae6ade43cb3c0ce4525424e404f');
  form.append('Body', text);
  form.append('From', '+15555550123');
  form.append('MessageSid', 'SM1f0e8ae6ade43cb3c0ce4525424e404f');
  form.append('SmsStatus', 'received');
  return Buffer.from(form.toString(), 'utf8');
}

function signForm(secret: string, body: Buffer, url = base): SignedRequest {
  const params = parseQuery(body.toString('utf8'));
  return { headers: { 'X-Twilio-Signature': twilio.getExpectedTwilioSignature(secret, url, params as Record<string, string>), 'Content-Type': formType }, url, body };
}

function signJson(secret: string, body: Buffer): SignedRequest {
  const url = `${base}?bodySHA256=${createHash('sha256').update(body).digest('hex')}`;
  return { headers: { 'X-Twilio-Signature': twilio.getExpectedTwilioSignature(secret, url, {}), 'Content-Type': 'application/json' }, url, body };
}

function sdkAcceptsForm(secret: string, request: SignedRequest): boolean {
  const params = parseQuery(request.body.toString('utf8'));
  return twilio.validateRequest(secret, request.headers['X-Twilio-Signature'] ?? '', request.url, params as Record<string, string>);
}

describeCorpus('twilio (form)', {
  provider: 'twilio',
  freshSecret,
  sign: (secret, body) => signForm(secret, body),
  sdkAccepts: (secret, request) => sdkAcceptsForm(secret, request),
  signatureHeader: 'X-Twilio-Signature',
  body: smsForm,
  scan,
});

describeCorpus('twilio (bodySHA256)', {
  provider: 'twilio',
  freshSecret,
  sign: (secret, body) => signJson(secret, body),
  sdkAccepts: (secret, request) => twilio.validateRequestWithBody(secret, request.headers['X-Twilio-Signature'] ?? '', request.url, request.body.toString('utf8')),
  signatureHeader: 'X-Twilio-Signature',
  scan,
});

describe('twilio: URL spellings, parameters, body hash', () => {
  const webhooks = webhooksOf('twilio');
  const at = Date.now();
  const body = smsForm('Hello \u00e9\u00e8 \ud83d\ude00');

  it('tries the URL without and with its port, as the SDK does', async () => {
    const secret = freshSecret();
    for (const [signedUrl, receivedUrl] of [
      ['https://hooks.example.test:443/hooks/twilio-sms', 'https://hooks.example.test/hooks/twilio-sms'],
      ['https://hooks.example.test/hooks/twilio-sms', 'https://hooks.example.test:8443/hooks/twilio-sms'],
      ['http://hooks.example.test:80/hooks/twilio-sms?a=1', 'http://hooks.example.test/hooks/twilio-sms?a=1'],
    ] as const) {
      const request = { ...signForm(secret, body, signedUrl), url: receivedUrl };
      expect(await outcomeOf(webhooks, [secret], deliveryOf(request), at)).toBe('accepted');
      expect(sdkAcceptsForm(secret, request)).toBe(true);
    }
    const otherHost = { ...signForm(secret, body, 'https://other.example.test/hooks/twilio-sms'), url: base };
    expect(await outcomeOf(webhooks, [secret], deliveryOf(otherHost), at)).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(sdkAcceptsForm(secret, otherHost)).toBe(false);
    const otherPath = { ...signForm(secret, body, `${base}-2`), url: base };
    expect(await outcomeOf(webhooks, [secret], deliveryOf(otherPath), at)).toBe('PB_WEBHOOK_BAD_SIGNATURE');
  });

  it("accepts a query Twilio signed with characters the URL parser escapes (O'Brien), as the SDK does", async () => {
    const secret = freshSecret();
    const signedUrl = "https://hooks.example.test/hooks/twilio-sms?name=O'Brien";
    const request = signForm(secret, body, signedUrl);
    expect(new URL(signedUrl).href).not.toBe(signedUrl);
    expect(await outcomeOf(webhooks, [secret], deliveryOf(request), at)).toBe('accepted');
    expect(sdkAcceptsForm(secret, request)).toBe(true);
    expect(twilioUrlCandidates(new URL(signedUrl))).toContain(signedUrl);
  });

  it('covers every parameter: a changed value, an added or dropped parameter is refused', async () => {
    const secret = freshSecret();
    const request = signForm(secret, body);
    for (const changed of [body.toString().replace('received', 'delivered'), `${body.toString()}&Extra=1`, body.toString().replace(/&SmsStatus=received/, '')]) {
      const tampered = { ...request, body: Buffer.from(changed) };
      expect(await outcomeOf(webhooks, [secret], deliveryOf(tampered), at)).toBe('PB_WEBHOOK_BAD_SIGNATURE');
      expect(sdkAcceptsForm(secret, tampered)).toBe(false);
    }
  });

  it('signs repeated names with each distinct value, sorted (the SDK rule), and is insensitive to body order', async () => {
    const secret = freshSecret();
    const repeated = Buffer.from('MediaUrl=https%3A%2F%2Fb.test&Body=x&MediaUrl=https%3A%2F%2Fa.test&MediaUrl=https%3A%2F%2Fa.test');
    const request = signForm(secret, repeated);
    expect(await outcomeOf(webhooks, [secret], deliveryOf(request), at)).toBe('accepted');
    expect(sdkAcceptsForm(secret, request)).toBe(true);
    const reordered = { ...request, body: Buffer.from('Body=x&MediaUrl=https%3A%2F%2Fa.test&MediaUrl=https%3A%2F%2Fb.test') };
    expect(await outcomeOf(webhooks, [secret], deliveryOf(reordered), at)).toBe('accepted');
    expect(sdkAcceptsForm(secret, reordered)).toBe(true);
  });

  it('bodySHA256: refuses a body that does not hash to the signed value, and a forged hash in the URL', async () => {
    const secret = freshSecret();
    const json = Buffer.from('{"EventType":"x","n":1}');
    const request = signJson(secret, json);
    const otherBody = { ...request, body: Buffer.from('{"EventType":"y","n":1}') };
    expect(await outcomeOf(webhooks, [secret], deliveryOf(otherBody), at)).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    const reHashed = { ...otherBody, url: `${base}?bodySHA256=${createHash('sha256').update(otherBody.body).digest('hex')}` };
    expect(await outcomeOf(webhooks, [secret], deliveryOf(reHashed), at)).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(twilio.validateRequestWithBody(secret, reHashed.headers['X-Twilio-Signature'] ?? '', reHashed.url, reHashed.body.toString())).toBe(false);
  });

  it('parses the form flat and reads SmsStatus and the idempotency token', () => {
    const delivery = deliveryOf({ headers: { 'Content-Type': formType, 'I-Twilio-Idempotency-Token': 'tok-1' }, url: base, body });
    const parsed = parseDelivery(webhooks, delivery);
    expect(parsed.eventType).toBe('received');
    expect(parsed.eventId).toBe('tok-1');
    expect((parsed.payload as Record<string, string>)['Body']).toBe('Hello \u00e9\u00e8 \ud83d\ude00');
    const json = parseDelivery(webhooks, deliveryOf({ headers: { 'content-type': 'application/json' }, url: `${base}?bodySHA256=00`, body: Buffer.from('{"SmsStatus":"sent"}') }));
    expect(json.eventType).toBe('sent');
  });
});
