import { execFileSync } from 'node:child_process';
import { createPrivateKey, sign as signData, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, get as httpsGet, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PatchbayError } from '../../../engine/diag/errors.js';
import { HttpClient } from '../../../engine/http/client.js';
import {
  createSnsCertificateClient,
  createSnsCertificateFetcher,
  isSnsCertificateUrl,
  SnsCertificateCache,
  type SnsCertificateFetcher,
} from '../../../engine/triggers/webhooks/sns-signature.js';
import { createWebhookVerifier, type InboundDelivery, type WebhookVerifier } from '../../../engine/triggers/webhooks/verify.js';
import { HeldAnswers, until } from '../../support/held-answers.js';
import { webhooksOf } from './corpus.js';

/**
 * Amazon SNS signatures with certificates made by openssl (node:crypto cannot make X.509), served
 * over real https on 127.0.0.1. The test fetcher maps an accepted SigningCertURL onto that
 * server by its path, and the server serves the signing certificate for any `.pem` path: a
 * forged URL that slipped past the host check would therefore verify, so each forged-URL case
 * fails if the check is removed.
 */

const dir = mkdtempSync(join(tmpdir(), 'patchbay-sns-'));
const topic = 'arn:aws:sns:us-east-1:123456789012:order-events';
const certUrl = 'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem';
// Real time, a minute ahead: the openssl certificates made below are valid from their making on.
const nowMs = Math.floor(Date.now() / 1000) * 1000 + 60_000;
const sentAt = new Date(nowMs - 29_529).toISOString();

interface Pair {
  readonly key: KeyObject;
  readonly certificate: string;
}

/** An RSA key and a self-signed certificate for it, valid from yesterday for `days`. */
function makePair(name: string, days = 30, extra: string[] = []): Pair {
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.pem`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', String(days), '-subj', `/CN=${name}`, ...extra], { stdio: 'ignore' });
  return { key: createPrivateKey(readFileSync(keyFile)), certificate: readFileSync(certFile, 'utf8') };
}

let signing: Pair;
let other: Pair;
let tls: Pair;
let server: HttpsServer;
let port: number;
/** Paths the certificate server was asked for. */
const fetched: string[] = [];
const answers = new HeldAnswers();
/** Status per path (default 200 with the signing certificate; 404 for made-up `…-dead<hex>.pem` names). */
const statusOf = new Map<string, number>();
/** The path served the other certificate. */
const otherPath = '/SimpleNotificationService-0ff1ce.pem';

/** A made-up certificate URL on the real SNS host, which SNS answers 404. */
function forgedCertUrl(index: number): string {
  return `https://sns.us-east-1.amazonaws.com/SimpleNotificationService-dead${index.toString(16).padStart(4, '0')}.pem`;
}

beforeAll(async () => {
  signing = makePair('sns.amazonaws.com');
  other = makePair('other.example');
  tls = makePair('127.0.0.1', 2, ['-addext', 'subjectAltName=IP:127.0.0.1']);
  server = createHttpsServer({ key: tls.key.export({ format: 'pem', type: 'pkcs8' }), cert: tls.certificate }, (req, res) => {
    const path = req.url ?? '/';
    fetched.push(path);
    answers.answer(() => {
      const status = statusOf.get(path) ?? (path.startsWith('/SimpleNotificationService-dead') ? 404 : 200);
      res.writeHead(status, { 'content-type': 'application/x-pem-file' });
      res.end(status === 200 ? (path === otherPath ? other.certificate : signing.certificate) : 'no');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  answers.reset();
  fetched.length = 0;
  statusOf.clear();
});

/**
 * Fetches the accepted URL's path from the local https server (trusting its certificate only),
 * mapping answers as the production fetcher does.
 */
const localFetch: SnsCertificateFetcher = (url) =>
  new Promise((resolve, reject) => {
    const request = httpsGet({ host: '127.0.0.1', port, path: url.pathname, ca: tls.certificate, timeout: 5_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        if (res.statusCode === 200) resolve(Buffer.concat(chunks).toString('utf8'));
        else if (res.statusCode === 404) reject(new PatchbayError('PB_WEBHOOK_BAD_SIGNATURE', 'answered 404'));
        else reject(new PatchbayError('PB_WEBHOOK_KEY_UNAVAILABLE', `answered ${res.statusCode}`));
      });
      res.on('error', reject);
    });
    request.on('error', reject);
  });

function verifierWith(topics: readonly string[] = [topic], cache = new SnsCertificateCache({ fetch: localFetch })): WebhookVerifier {
  return createWebhookVerifier(webhooksOf('aws'), topics, { snsCertificates: cache });
}

/** The canonical string, written out here independently of the engine's. */
function stringToSign(message: Record<string, string>): string {
  const fields =
    message.Type === 'Notification'
      ? ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type']
      : ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'];
  return fields.filter((field) => message[field] !== undefined).map((field) => `${field}\n${message[field]}\n`).join('');
}

function signed(message: Record<string, string>, options: { version?: '1' | '2'; key?: KeyObject } = {}): Record<string, string> {
  const version = options.version ?? '2';
  const signature = signData(version === '1' ? 'sha1' : 'sha256', Buffer.from(stringToSign(message)), options.key ?? signing.key).toString('base64');
  return { ...message, SignatureVersion: version, Signature: signature, SigningCertURL: message.SigningCertURL ?? certUrl };
}

function notification(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    Type: 'Notification',
    MessageId: '22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324',
    TopicArn: topic,
    Subject: 'Order 1042 paid',
    Message: '{"orderId":"1042","status":"paid","city":"Z\u00fcrich"}',
    Timestamp: sentAt,
    UnsubscribeURL: 'https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x',
    ...overrides,
  };
}

function confirmation(type: 'SubscriptionConfirmation' | 'UnsubscribeConfirmation'): Record<string, string> {
  return {
    Type: type,
    MessageId: '165545c9-2a5c-472c-8df2-7ff2be2b3b1b',
    Token: '2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92',
    TopicArn: topic,
    Message: 'You have chosen to subscribe to the topic.\nTo confirm the subscription, visit the SubscribeURL included in this message.',
    SubscribeURL: 'https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=x&Token=y',
    Timestamp: new Date(nowMs - 38_877).toISOString(),
  };
}

function delivery(message: unknown, headers: Record<string, string> = {}): InboundDelivery {
  const type = typeof message === 'object' && message !== null ? (message as Record<string, string>).Type : undefined;
  return {
    method: 'POST',
    url: new URL('https://hooks.example.test/hooks/sns-orders'),
    headers: { 'content-type': 'text/plain; charset=UTF-8', ...(type === undefined ? {} : { 'x-amz-sns-message-type': type }), ...headers },
    rawBody: Buffer.from(typeof message === 'string' ? message : JSON.stringify(message)),
  };
}

async function outcome(verify: WebhookVerifier, input: InboundDelivery, atMs = nowMs): Promise<string> {
  try {
    await verify.verify(input, atMs);
    return 'accepted';
  } catch (error) {
    if (!(error instanceof PatchbayError)) throw error;
    expect(error.message).not.toContain('Token=');
    expect(error.message).not.toContain(input.rawBody.toString('utf8'));
    return error.code;
  }
}

describe('awsSns: message signatures', () => {
  it('accepts a SignatureVersion 2 notification, with the MessageId as delivery id, fetching the certificate once', async () => {
    const verify = verifierWith();
    const verified = await verify.verify(delivery(signed(notification())), nowMs);
    expect(verified).toEqual({ deliveryId: '22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324', signedAtMs: nowMs - 29_529 });
    expect(await outcome(verify, delivery(signed(notification({ MessageId: 'second' }))))).toBe('accepted');
    expect(fetched).toEqual(['/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem']);
  });

  it('accepts SignatureVersion 1 (SHA1withRSA) and refuses a version 1 signature presented as version 2, or an unknown version', async () => {
    const verify = verifierWith();
    const v1 = signed(notification(), { version: '1' });
    expect(await outcome(verify, delivery(v1))).toBe('accepted');
    expect(await outcome(verify, delivery({ ...v1, SignatureVersion: '2' }))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    const v2 = signed(notification());
    expect(await outcome(verify, delivery({ ...v2, SignatureVersion: '1' }))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(await outcome(verify, delivery({ ...v2, SignatureVersion: '3' }))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
  });

  it('accepts a notification without Subject, and subscription and unsubscribe confirmations with their own fields', async () => {
    const verify = verifierWith();
    const { Subject: _subject, ...withoutSubject } = notification();
    expect(await outcome(verify, delivery(signed(withoutSubject)))).toBe('accepted');
    for (const type of ['SubscriptionConfirmation', 'UnsubscribeConfirmation'] as const) {
      const message = signed(confirmation(type));
      expect(await outcome(verify, delivery(message))).toBe('accepted');
      expect(await outcome(verify, delivery({ ...message, Token: `${message.Token!.slice(0, -1)}0` }))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
      expect(await outcome(verify, delivery({ ...message, SubscribeURL: 'https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=z' }))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    }
  });

  it('refuses a changed Message, Subject, TopicArn-preserving MessageId or Timestamp', async () => {
    const verify = verifierWith();
    const message = signed(notification());
    for (const [field, value] of [
      ['Message', message.Message!.replace('1042', '1043')],
      ['Subject', 'Order 1043 paid'],
      ['MessageId', 'another-id'],
      ['Timestamp', new Date(nowMs - 28_529).toISOString()],
    ] as const) {
      expect(await outcome(verify, delivery({ ...message, [field]: value }))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    }
    expect(await outcome(verify, delivery(message))).toBe('accepted');
  });

  it('refuses a message signed by another key than the certificate\'s', async () => {
    expect(await outcome(verifierWith(), delivery(signed(notification(), { key: other.key })))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    // The other certificate verifies it: the refusal above is about the key.
    const otherUrl = `https://sns.us-east-1.amazonaws.com${otherPath}`;
    expect(await outcome(verifierWith(), delivery(signed(notification({ SigningCertURL: otherUrl }), { key: other.key })))).toBe('accepted');
  });

  it('refuses a Timestamp further than an hour from now, past or future', async () => {
    const verify = verifierWith();
    const at = (offsetMs: number) => new Date(nowMs + offsetMs).toISOString();
    expect(await outcome(verify, delivery(signed(notification({ Timestamp: at(-3_601_000) }))))).toBe('PB_WEBHOOK_STALE');
    expect(await outcome(verify, delivery(signed(notification({ Timestamp: at(3_601_000) }))))).toBe('PB_WEBHOOK_STALE');
    expect(await outcome(verify, delivery(signed(notification({ Timestamp: at(-3_599_000) }))))).toBe('accepted');
    expect(await outcome(verify, delivery(signed(notification({ Timestamp: at(3_599_000) }))))).toBe('accepted');
    expect(await outcome(verify, delivery(signed(notification({ Timestamp: '1784038869' }))))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
  });

  it('refuses forged SigningCertURLs before any fetch', async () => {
    const forged = [
      'http://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem',
      'https://sns.evil.com/SimpleNotificationService-1.pem',
      'https://sns.us-east-1.amazonaws.com.evil.com/SimpleNotificationService-1.pem',
      'https://evil.com/sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem',
      'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-1',
      'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem.txt',
      'https://sns.us-east-1.amazonaws.com/a/b.pem',
      'https://sns.us-east-1.amazonaws.com/x.pem?redirect=https://evil.com/x.pem',
      `${certUrl}?`,
      `${certUrl}#`,
      `${certUrl}?x=1`,
      `${certUrl}#x`,
      'https://sns.us-east-1.amazonaws.com/other.pem',
      'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-9C6465FA.pem',
      'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-xyz.pem',
      'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-.pem',
      'https://sns.us-east-1.amazonaws.com/%53impleNotificationService-1.pem',
      'https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-1.pem',
      'https://user@sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem',
      'https://s3.us-east-1.amazonaws.com/SimpleNotificationService-1.pem',
      'https://sns.amazonaws.com/SimpleNotificationService-1.pem',
      'https://127.0.0.1/SimpleNotificationService-1.pem',
      'not a url',
    ];
    const verify = verifierWith();
    for (const url of forged) {
      expect(await outcome(verify, delivery(signed(notification({ SigningCertURL: url }))))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    }
    expect(fetched).toEqual([]);
  });

  it('recognises the SNS certificate hosts of every partition', () => {
    for (const url of [
      'https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-a.pem',
      'https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-a.pem',
      'https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-a.pem',
      'https://SNS.US-EAST-1.AMAZONAWS.COM/SimpleNotificationService-a.pem',
    ]) {
      expect(isSnsCertificateUrl(new URL(url)), url).toBe(true);
    }
  });

  it('accepts only the TopicArns the connection lists, and requires at least one valid ARN', async () => {
    const stranger = signed(notification({ TopicArn: 'arn:aws:sns:us-east-1:999999999999:their-topic' }));
    expect(await outcome(verifierWith(), delivery(stranger))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(await outcome(verifierWith([topic, 'arn:aws:sns:us-east-1:999999999999:their-topic']), delivery(stranger))).toBe('accepted');
    expect(() => verifierWith([])).toThrow(expect.objectContaining({ code: 'PB_WEBHOOK_CONFIG' }) as Error);
    expect(() => verifierWith(['whsec_not_an_arn'])).toThrow(expect.objectContaining({ code: 'PB_WEBHOOK_CONFIG', message: expect.stringContaining('#1') as string }) as Error);
  });

  it('refuses headers that contradict the signed body (the event type is read from the header)', async () => {
    const verify = verifierWith();
    const message = signed(confirmation('SubscriptionConfirmation'));
    expect(await outcome(verify, delivery(message, { 'x-amz-sns-message-type': 'Notification' }))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(await outcome(verify, delivery(message, { 'x-amz-sns-topic-arn': 'arn:aws:sns:us-east-1:123456789012:other' }))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(await outcome(verify, delivery(message, { 'x-amz-sns-topic-arn': topic }))).toBe('accepted');
  });

  it('refuses bodies that are not SNS messages', async () => {
    const verify = verifierWith();
    expect(await outcome(verify, delivery('not json'))).toBe('PB_WEBHOOK_BAD_BODY');
    expect(await outcome(verify, delivery('[1,2]'))).toBe('PB_WEBHOOK_BAD_BODY');
    const { Signature: _signature, ...unsigned } = signed(notification());
    expect(await outcome(verify, delivery(unsigned))).toBe('PB_WEBHOOK_MISSING_SIGNATURE');
    expect(await outcome(verify, delivery({ ...signed(notification()), Signature: 'not base64!' }))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(await outcome(verify, delivery(signed(notification({ Type: 'Other' }))))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(fetched).toEqual([]);
  });
});

describe('awsSns: the certificate cache', () => {
  it('answers PB_WEBHOOK_KEY_UNAVAILABLE when the fetch fails, and fetches that URL again only after a minute', async () => {
    const path = '/SimpleNotificationService-f1a4e.pem';
    statusOf.set(path, 503);
    const verify = verifierWith();
    const message = signed(notification({ SigningCertURL: `https://sns.us-east-1.amazonaws.com${path}` }));
    expect(await outcome(verify, delivery(message))).toBe('PB_WEBHOOK_KEY_UNAVAILABLE');
    statusOf.delete(path);
    expect(await outcome(verify, delivery(message), nowMs + 59_000)).toBe('PB_WEBHOOK_KEY_UNAVAILABLE');
    expect(fetched.length).toBe(1);
    expect(await outcome(verify, delivery(message), nowMs + 61_000)).toBe('accepted');
    expect(fetched.length).toBe(2);
  });

  it('fetches once for concurrent deliveries, keeps at most maxEntries and fetches again after ttlMs', async () => {
    const cache = new SnsCertificateCache({ fetch: localFetch, maxEntries: 2, ttlMs: 10_000 });
    const verify = verifierWith([topic], cache);
    const message = signed(notification());
    expect(await Promise.all([1, 2, 3].map(() => outcome(verify, delivery(message))))).toEqual(['accepted', 'accepted', 'accepted']);
    expect(fetched.length).toBe(1);
    expect(await outcome(verify, delivery(message), nowMs + 9_000)).toBe('accepted');
    expect(fetched.length).toBe(1);
    expect(await outcome(verify, delivery(message), nowMs + 10_001)).toBe('accepted');
    expect(fetched.length).toBe(2);
    for (const name of ['a', 'b']) await outcome(verify, delivery(signed(notification({ SigningCertURL: `https://sns.us-east-1.amazonaws.com/SimpleNotificationService-${name}.pem` }))), nowMs + 10_001);
    expect(await outcome(verify, delivery(message), nowMs + 10_001)).toBe('accepted');
    expect(fetched.length).toBe(5);
  });

  it('refuses a certificate outside its validity and a body that is not a certificate', async () => {
    const expiring = makePair('sns.amazonaws.com-short', 1);
    const fetchExpiring: SnsCertificateFetcher = async () => expiring.certificate;
    const later = nowMs + 3 * 24 * 3_600_000;
    const message = signed(notification({ Timestamp: new Date(Date.now() + 3 * 24 * 3_600_000).toISOString() }), { key: expiring.key });
    const verify = verifierWith([topic], new SnsCertificateCache({ fetch: fetchExpiring }));
    expect(await outcome(verify, delivery(message), Date.now() + 3 * 24 * 3_600_000)).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    const fresh = signed(notification({ Timestamp: new Date(Date.now()).toISOString() }), { key: expiring.key });
    expect(await outcome(verifierWith([topic], new SnsCertificateCache({ fetch: fetchExpiring })), delivery(fresh), Date.now())).toBe('accepted');
    const garbage = verifierWith([topic], new SnsCertificateCache({ fetch: async () => '-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n' }));
    expect(await outcome(garbage, delivery(signed(notification())), later - 3 * 24 * 3_600_000)).toBe('PB_WEBHOOK_BAD_SIGNATURE');
  });
});

describe('awsSns: forged certificate URLs cannot block genuine ones', () => {
  it('verifies a genuine message with an uncached certificate after 40 forged ones named 40 made-up files, one fetch each', async () => {
    // The review's scenario: forged messages name the listed (public) TopicArn and made-up .pem
    // files on the real SNS host. A daemon-wide budget of 10 fetches a minute was spent by them.
    const verify = verifierWith();
    for (let i = 0; i < 40; i++) {
      expect(await outcome(verify, delivery(signed(notification({ SigningCertURL: forgedCertUrl(i) }), { key: other.key })))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    }
    expect(fetched.length).toBe(40);
    expect(await outcome(verify, delivery(signed(notification())))).toBe('accepted');
    expect(fetched.length).toBe(41);
    // The same 40 again within the minute: each URL is remembered as failed, nothing is fetched.
    for (let i = 0; i < 40; i++) {
      expect(await outcome(verify, delivery(signed(notification({ SigningCertURL: forgedCertUrl(i) }), { key: other.key })), nowMs + 30_000)).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    }
    expect(fetched.length).toBe(41);
  });

  it('runs at most maxFetchesInFlight fetches at once, queues maxFetchesWaiting, refuses the rest at once without remembering them', async () => {
    const cache = new SnsCertificateCache({ fetch: localFetch, maxFetchesInFlight: 4, maxFetchesWaiting: 2, maxFetchWaitMs: 10_000 });
    const verify = verifierWith([topic], cache);
    answers.holding = true;
    const forged = Array.from({ length: 10 }, (_, i) => outcome(verify, delivery(signed(notification({ SigningCertURL: forgedCertUrl(100 + i) }), { key: other.key }))));
    await until(() => answers.open === 4);
    expect(cache.fetchesInFlight).toBe(4);
    // The four beyond the queue are refused before anything is sent for them.
    const settled = await Promise.all(forged.slice(6));
    expect(settled).toEqual(Array(4).fill('PB_WEBHOOK_KEY_UNAVAILABLE'));
    answers.release();
    expect(await Promise.all(forged.slice(0, 6))).toEqual(Array(6).fill('PB_WEBHOOK_BAD_SIGNATURE'));
    expect(answers.maxOpen).toBe(4);
    expect(fetched.length).toBe(6);
    // A URL refused for want of a slot is fetched on its next delivery.
    expect(await outcome(verify, delivery(signed(notification({ SigningCertURL: forgedCertUrl(109) }), { key: other.key })))).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(fetched.length).toBe(7);
    expect(await outcome(verify, delivery(signed(notification())))).toBe('accepted');
  });

  it('a genuine message arriving while forged fetches fill every slot waits for one instead of being refused', async () => {
    const cache = new SnsCertificateCache({ fetch: localFetch, maxFetchesInFlight: 2 });
    const verify = verifierWith([topic], cache);
    answers.holding = true;
    const forged = [0, 1].map((i) => outcome(verify, delivery(signed(notification({ SigningCertURL: forgedCertUrl(200 + i) }), { key: other.key }))));
    await until(() => answers.open === 2);
    const genuine = outcome(verify, delivery(signed(notification())));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(answers.open).toBe(2);
    answers.release();
    expect(await genuine).toBe('accepted');
    expect(await Promise.all(forged)).toEqual(['PB_WEBHOOK_BAD_SIGNATURE', 'PB_WEBHOOK_BAD_SIGNATURE']);
    expect(answers.maxOpen).toBe(2);
  });
});

describe('awsSns: the production fetcher', () => {
  let plain: HttpServer;
  let plainPort: number;
  let behaviour: 'ok' | 'missing' | 'error' | 'huge' | 'slow' = 'ok';

  beforeAll(async () => {
    plain = createHttpServer((_req, res) => {
      if (behaviour === 'slow') return; // never answers; the fetcher's deadline ends it
      const status = behaviour === 'missing' ? 404 : behaviour === 'error' ? 500 : 200;
      res.writeHead(status, { 'content-type': 'application/x-pem-file' });
      res.end(behaviour === 'huge' ? 'x'.repeat(200 * 1024) : signing.certificate);
    });
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    plainPort = (plain.address() as AddressInfo).port;
  });

  afterAll(async () => {
    plain.closeAllConnections();
    await new Promise<void>((resolve) => plain.close(() => resolve()));
  });

  it('maps answers: 200 is the certificate, 404 a forged URL, 5xx, oversize and timeouts retryable', async () => {
    // Plain http to a name resolved to loopback: only this test's client allows both.
    const client = new HttpClient({
      allowHttpHosts: [`sns.us-east-1.amazonaws.com:${plainPort}`],
      lookup: async () => [{ address: '127.0.0.1', family: 4 }],
      addressPolicy: { allow: ['127.0.0.1'] },
    });
    try {
      const fetch = createSnsCertificateFetcher(client, { timeoutMs: 300, maxBytes: 64 * 1024 });
      const url = new URL(`http://sns.us-east-1.amazonaws.com:${plainPort}/SimpleNotificationService-a.pem`);
      const codeOf = async (): Promise<string> => fetch(url).then(
        (pem) => (pem === signing.certificate ? 'certificate' : 'other'),
        (error: unknown) => (error instanceof PatchbayError ? error.code : 'unexpected'),
      );
      behaviour = 'ok';
      expect(await codeOf()).toBe('certificate');
      behaviour = 'missing';
      expect(await codeOf()).toBe('PB_WEBHOOK_BAD_SIGNATURE');
      behaviour = 'error';
      expect(await codeOf()).toBe('PB_WEBHOOK_KEY_UNAVAILABLE');
      behaviour = 'huge';
      expect(await codeOf()).toBe('PB_WEBHOOK_KEY_UNAVAILABLE');
      behaviour = 'slow';
      const startedAt = Date.now();
      expect(await codeOf()).toBe('PB_WEBHOOK_KEY_UNAVAILABLE');
      expect(Date.now() - startedAt).toBeLessThan(5_000);
    } finally {
      await client.close();
    }
  });

  it('the production client sends nothing to a URL that is not an SNS certificate URL', async () => {
    const client = createSnsCertificateClient();
    try {
      const fetch = createSnsCertificateFetcher(client);
      for (const url of [`http://127.0.0.1:${plainPort}/x.pem`, 'https://sns.evil.com/x.pem', `https://127.0.0.1:${port}/x.pem`]) {
        const error = await fetch(new URL(url)).then(
          () => undefined,
          (failure: unknown) => failure,
        );
        expect(error).toBeInstanceOf(PatchbayError);
        expect((error as PatchbayError).code).toBe('PB_WEBHOOK_KEY_UNAVAILABLE');
        expect(((error as PatchbayError).cause as PatchbayError).code).toMatch(/^PB_HTTP_(INSECURE|HOST_NOT_ALLOWED)$/);
      }
      expect(fetched).toEqual([]);
    } finally {
      await client.close();
    }
  });
});
