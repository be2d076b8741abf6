import { createHmac, randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { handshakeOf, parseDelivery } from '../../../engine/triggers/webhooks/delivery.js';
import { createWebhookVerifier } from '../../../engine/triggers/webhooks/verify.js';
import { SecretScan } from '../../support/secret-scan.js';
import { deliveryOf, describeCorpus, outcomeOf, webhooksOf } from './corpus.js';

const scan = new SecretScan();
afterAll(() => scan.assertClean());
const url = 'https://hooks.example.test/hooks/slack-messages';
const freshSecret = (): string => scan.secret(randomBytes(16).toString('hex'));

/** Slack's documented algorithm: `v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{raw body}` (no Slack SDK is installed). */
function slackSign(secret: string, body: Buffer, timestamp: number): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:`).update(body).digest('hex')}`;
}

describeCorpus('slack', {
  provider: 'slack',
  freshSecret,
  sign: (secret, body, signedAtSec) => ({
    headers: { 'X-Slack-Signature': slackSign(secret, body, signedAtSec), 'X-Slack-Request-Timestamp': String(signedAtSec), 'Content-Type': 'application/json' },
    url,
    body,
  }),
  signatureHeader: 'X-Slack-Signature',
  toleranceSeconds: 300,
  scan,
});

describe("slack: the documented example and the url_verification handshake", () => {
  const webhooks = webhooksOf('slack');
  // Slack's "Verifying requests from Slack" walk-through: signing secret, timestamp, body and the
  // resulting signature, published as an example.
  const exampleSecret = '8f742231b10e8888abcd99yyyzzz85a5';
  const exampleTimestamp = 1531420618;
  const exampleBody =
    'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c';
  const exampleSignature = 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503';
  const example = deliveryOf({ headers: { 'X-Slack-Signature': exampleSignature, 'X-Slack-Request-Timestamp': String(exampleTimestamp) }, url, body: Buffer.from(exampleBody) });

  it("verifies Slack's published example at its own time, and refuses it five minutes and one second later", async () => {
    expect(slackSign(exampleSecret, Buffer.from(exampleBody), exampleTimestamp)).toBe(exampleSignature);
    expect(await outcomeOf(webhooks, [exampleSecret], example, exampleTimestamp * 1000)).toBe('accepted');
    expect(await outcomeOf(webhooks, [exampleSecret], example, (exampleTimestamp + 300) * 1000)).toBe('accepted');
    expect(await outcomeOf(webhooks, [exampleSecret], example, (exampleTimestamp + 301) * 1000)).toBe('PB_WEBHOOK_STALE');
    expect(await outcomeOf(webhooks, [exampleSecret], example, (exampleTimestamp - 301) * 1000)).toBe('PB_WEBHOOK_STALE');
  });

  it('refuses a signature moved to another timestamp, and a missing timestamp header', async () => {
    const moved = deliveryOf({ headers: { 'X-Slack-Signature': exampleSignature, 'X-Slack-Request-Timestamp': String(exampleTimestamp + 1) }, url, body: Buffer.from(exampleBody) });
    expect(await outcomeOf(webhooks, [exampleSecret], moved, exampleTimestamp * 1000)).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    const noTime = deliveryOf({ headers: { 'X-Slack-Signature': exampleSignature }, url, body: Buffer.from(exampleBody) });
    expect(await outcomeOf(webhooks, [exampleSecret], noTime, exampleTimestamp * 1000)).toBe('PB_WEBHOOK_MISSING_SIGNATURE');
    const badTime = deliveryOf({ headers: { 'X-Slack-Signature': exampleSignature, 'X-Slack-Request-Timestamp': '1531420618.5' }, url, body: Buffer.from(exampleBody) });
    expect(await outcomeOf(webhooks, [exampleSecret], badTime, exampleTimestamp * 1000)).toBe('PB_WEBHOOK_BAD_SIGNATURE');
  });

  it('answers a verified url_verification with its challenge, and ordinary events with nothing', async () => {
    const secret = freshSecret();
    const nowSec = Math.floor(Date.now() / 1000);
    const body = Buffer.from('{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}');
    const delivery = deliveryOf({ headers: { 'x-slack-signature': slackSign(secret, body, nowSec), 'x-slack-request-timestamp': String(nowSec), 'content-type': 'application/json' }, url, body });
    const verified = await createWebhookVerifier(webhooks, [secret]).verify(delivery, Date.now());
    const parsed = parseDelivery(webhooks, delivery, verified);
    expect(handshakeOf(webhooks, delivery, parsed.payload)).toEqual({ status: 200, contentType: 'text/plain; charset=utf-8', body: '3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P' });
    const event = Buffer.from('{"type":"event_callback","event_id":"Ev1","event":{"type":"message","text":"hi"}}');
    const eventDelivery = deliveryOf({ headers: { 'content-type': 'application/json; charset=utf-8' }, url, body: event });
    const eventParsed = parseDelivery(webhooks, eventDelivery);
    expect(eventParsed.eventType).toBe('message');
    expect(eventParsed.eventId).toBe('Ev1');
    expect(handshakeOf(webhooks, eventDelivery, eventParsed.payload)).toBeUndefined();
  });

  it('refuses a url_verification without a usable challenge', () => {
    const delivery = deliveryOf({ headers: { 'content-type': 'application/json' }, url, body: Buffer.from('{}') });
    for (const payload of [{ type: 'url_verification' }, { type: 'url_verification', challenge: 5 }, { type: 'url_verification', challenge: 'x'.repeat(5000) }]) {
      expect(() => handshakeOf(webhooks, delivery, payload)).toThrow(expect.objectContaining({ code: 'PB_WEBHOOK_BAD_BODY' }));
    }
  });
});
