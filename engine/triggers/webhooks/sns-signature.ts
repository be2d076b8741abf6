import { X509Certificate, verify as verifySignature, type KeyObject } from 'node:crypto';
import { PatchbayError } from '../../diag/errors.js';
import { HttpClient } from '../../http/client.js';
import { decodeSignature } from './hmac-core.js';
import { badConfig, badSignature, headerName, headerValue, type HeaderName } from './refusals.js';
import { FetchSlots } from './fetch-slots.js';
import type { InboundDelivery, VerifiedDelivery, WebhookVerifier } from './verify.js';

/**
 * Amazon SNS HTTP(S) subscriptions (scheme `awsSns`). SNS signs no header: the JSON body carries
 * `Signature` (base64 RSA, SHA1withRSA for `SignatureVersion` 1, SHA256withRSA for 2) over a
 * canonical string of some of its fields, and `SigningCertURL` names the X.509 certificate whose
 * key signed it. Anyone can put any URL there, so the URL is checked before anything is fetched:
 * https, on `sns.<region>.amazonaws.com` (or `.amazonaws.com.cn`), default port, one path segment
 * of AWS's form `SimpleNotificationService-<hex>.pem`, no query or fragment (not even an empty
 * `?` or `#`, so one certificate has one URL). The certificate is then fetched through the
 * guarded HTTP client (short timeouts, a size limit, no private addresses) and cached by URL.
 *
 * A valid signature only proves the message came from SNS — any AWS account can subscribe this
 * endpoint to its own topic and get genuinely signed messages sent here. So the connection's
 * `webhookSecrets` are not secrets for this scheme: they list the TopicArns the connection
 * accepts (`arn:aws:sns:us-east-1:123456789012:order-events`), compared exactly, and a message
 * from any other topic is refused like a bad signature. At least one is required.
 *
 * `SubscriptionConfirmation` and `UnsubscribeConfirmation` messages are verified the same way
 * (with their own field list); nothing here visits `SubscribeURL`: confirming a subscription is
 * an outbound call the ingress must not make before answering (see the README).
 */

/** Fetches the PEM text of a signing certificate whose URL `isSnsCertificateUrl` accepted. */
export type SnsCertificateFetcher = (url: URL) => Promise<string>;

/** Options of `SnsCertificateCache`. */
export interface SnsCertificateCacheOptions {
  readonly fetch: SnsCertificateFetcher;
  /** Certificates kept; the least recently used is dropped beyond it. @default 32 */
  readonly maxEntries?: number;
  /** How long a fetched certificate is used before it is fetched again (never past its notAfter). @default 24 hours */
  readonly ttlMs?: number;
  /** How long a URL whose fetch failed is refused without fetching again. @default 60_000 */
  readonly retryFailedAfterMs?: number;
  /** Failed URLs remembered; the oldest is forgotten beyond it. @default 4096 */
  readonly maxFailedUrls?: number;
  /** Certificate fetches under way at once, all URLs together. @default 32 */
  readonly maxFetchesInFlight?: number;
  /** Fetches that may wait for a free slot; beyond it PB_WEBHOOK_KEY_UNAVAILABLE at once. @default 64 */
  readonly maxFetchesWaiting?: number;
  /** Longest wait for a free slot before PB_WEBHOOK_KEY_UNAVAILABLE. @default 2_000 */
  readonly maxFetchWaitMs?: number;
}

const certUrlHost = /^sns\.([a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-[0-9]+)\.amazonaws\.com(?:\.cn)?$/;
const certUrlPath = /^\/SimpleNotificationService-[0-9a-f]{1,64}\.pem$/;
const isoTimestamp = /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]{1,9})?Z$/;
const topicArnPattern = /^arn:aws(?:-[a-z]+)*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]{1,256}$/;
const minuteMs = 60_000;

/**
 * Whether `url` may be fetched as an SNS signing certificate: https, host
 * `sns.<region>.amazonaws.com` or `sns.<region>.amazonaws.com.cn` (a region such as `us-east-1`,
 * `us-gov-west-1`), no port, user or password, a single path segment of AWS's form
 * `SimpleNotificationService-<lower-case hex>.pem`, no query and no fragment — not even an empty
 * `?` or `#`, which `URL` reports as an empty search and hash but keeps in `href`. Everything
 * else — `http:`, `sns.evil.com`, `sns.us-east-1.amazonaws.com.evil.com`, a path without `.pem`,
 * another file name — is the classic SNS forgery, or a second name for one certificate.
 */
export function isSnsCertificateUrl(url: URL): boolean {
  return (
    url.protocol === 'https:' &&
    url.username === '' &&
    url.password === '' &&
    url.port === '' &&
    certUrlHost.test(url.hostname) &&
    certUrlPath.test(url.pathname) &&
    url.href === snsCertificateKey(url)
  );
}

/** `https://<host><path>` of `url`: the one name of a certificate, used as its cache key. */
function snsCertificateKey(url: URL): string {
  return `https://${url.hostname}${url.pathname}`;
}

interface CachedCertificate {
  readonly key: KeyObject;
  readonly expiresAtMs: number;
}

interface FailedFetch {
  readonly untilMs: number;
  readonly error: PatchbayError;
}

/**
 * Signing certificates by URL: bounded (LRU), each kept `ttlMs` (24 h) and never past its
 * validity, fetched once however many deliveries wait for it (single flight). Share one cache
 * across connections: certificates are SNS's, not a connection's.
 *
 * The certificate is fetched before the signature can be checked, so forged deliveries choose
 * what is fetched. Two bounds keep that from becoming either an amplifier or a way to block
 * genuine deliveries:
 * - per URL: a URL whose fetch failed (a made-up file name answers 404) is not fetched again for
 *   `retryFailedAfterMs` (up to `maxFailedUrls` URLs remembered). A forger therefore costs one GET
 *   per distinct URL it invents — one per forged request at most, which the ingress's per-sender
 *   rate limit already bounds — and never blocks another URL: there is no shared budget to spend.
 *   (A daemon-wide "10 new URLs a minute" budget was spent by ten forged requests, after which a
 *   genuine certificate, new after a restart or an AWS rotation, was refused for as long as the
 *   forger kept going.)
 * - all URLs together: at most `maxFetchesInFlight` fetches at once, with up to
 *   `maxFetchesWaiting` more waiting at most `maxFetchWaitMs` for a slot (FIFO); beyond that
 *   PB_WEBHOOK_KEY_UNAVAILABLE (503, the sender retries). Slots come back as soon as SNS answers,
 *   so this caps concurrency, not rate. The default 32 is sized so that one sender at the
 *   ingress's default limit (100 requests/s, burst 200) cannot keep every slot busy while SNS
 *   answers a 404 in under 300 ms (32 / 0.3 s ≈ 107 fetches/s): a genuine delivery then waits at
 *   most the time the queue takes to drain (well under a second after a burst) instead of being
 *   refused. Forgers sending from many addresses at once, together faster than
 *   `maxFetchesInFlight` / SNS's answer time, can still keep the slots full and have uncached
 *   genuine certificates refused 503 while they keep it up; the outbound side stays bounded.
 * A failure for lack of a slot is not remembered against the URL: the next delivery tries again.
 */
export class SnsCertificateCache {
  private readonly fetchCertificate: SnsCertificateFetcher;
  private readonly maxEntries: number;
  private readonly ttlMs: number;
  private readonly retryFailedAfterMs: number;
  private readonly maxFailedUrls: number;
  private readonly slots: FetchSlots;
  private readonly entries = new Map<string, CachedCertificate>();
  private readonly failures = new Map<string, FailedFetch>();
  private readonly inFlight = new Map<string, Promise<CachedCertificate>>();

  /** Raises PB_WEBHOOK_CONFIG when a fetch limit is not a whole number (or `maxFetchesInFlight` is below 1). */
  constructor(options: SnsCertificateCacheOptions) {
    this.fetchCertificate = options.fetch;
    this.maxEntries = options.maxEntries ?? 32;
    this.ttlMs = options.ttlMs ?? 24 * 60 * minuteMs;
    this.retryFailedAfterMs = options.retryFailedAfterMs ?? minuteMs;
    this.maxFailedUrls = options.maxFailedUrls ?? 4096;
    this.slots = new FetchSlots(
      { inFlight: options.maxFetchesInFlight ?? 32, waiting: options.maxFetchesWaiting ?? 64, waitMs: options.maxFetchWaitMs ?? 2_000 },
      'SNS signing certificates',
    );
  }

  /** Certificate fetches under way now. */
  get fetchesInFlight(): number {
    return this.slots.inFlight;
  }

  /**
   * The RSA public key of the certificate at `url` (which the caller checked with
   * `isSnsCertificateUrl`; it is cached under `https://<host><path>`), at `nowMs` (Unix
   * milliseconds). Rejects with PB_WEBHOOK_KEY_UNAVAILABLE (the fetch failed, failed less than
   * `retryFailedAfterMs` ago, or found no free slot: the sender should retry) or
   * PB_WEBHOOK_BAD_SIGNATURE (not a PEM X.509 certificate with an RSA key, or outside its
   * validity).
   */
  async publicKey(url: URL, nowMs: number): Promise<KeyObject> {
    const href = snsCertificateKey(url);
    const cached = this.entries.get(href);
    if (cached !== undefined && cached.expiresAtMs > nowMs) {
      // Refresh its place in the LRU order.
      this.entries.delete(href);
      this.entries.set(href, cached);
      return cached.key;
    }
    if (cached !== undefined) this.entries.delete(href);
    const failed = this.failures.get(href);
    if (failed !== undefined && failed.untilMs > nowMs) throw failed.error;
    let pending = this.inFlight.get(href);
    if (pending === undefined) {
      // No slot within the wait rejects before `load` runs: not remembered against the URL.
      pending = this.slots.run(() => this.load(url, href, nowMs));
      this.inFlight.set(href, pending);
      const settle = (): void => {
        this.inFlight.delete(href);
      };
      pending.then(settle, settle);
    }
    return (await pending).key;
  }

  private async load(url: URL, href: string, nowMs: number): Promise<CachedCertificate> {
    try {
      const pem = await this.fetchCertificate(new URL(href));
      const entry = this.readCertificate(pem, url, nowMs);
      this.failures.delete(href);
      this.entries.set(href, entry);
      while (this.entries.size > this.maxEntries) {
        const oldest = this.entries.keys().next().value;
        if (oldest === undefined) break;
        this.entries.delete(oldest);
      }
      return entry;
    } catch (error) {
      const refusal =
        error instanceof PatchbayError && (error.code === 'PB_WEBHOOK_KEY_UNAVAILABLE' || error.code === 'PB_WEBHOOK_BAD_SIGNATURE')
          ? error
          : new PatchbayError('PB_WEBHOOK_KEY_UNAVAILABLE', `the SNS signing certificate could not be fetched from ${url.host}`, { cause: error });
      this.failures.delete(href);
      this.failures.set(href, { untilMs: nowMs + this.retryFailedAfterMs, error: refusal });
      while (this.failures.size > this.maxFailedUrls) {
        const oldest = this.failures.keys().next().value;
        if (oldest === undefined) break;
        this.failures.delete(oldest);
      }
      throw refusal;
    }
  }

  private readCertificate(pem: string, url: URL, nowMs: number): CachedCertificate {
    let certificate: X509Certificate;
    try {
      certificate = new X509Certificate(pem);
    } catch (error) {
      throw new PatchbayError('PB_WEBHOOK_BAD_SIGNATURE', `SigningCertURL (${url.host}) did not serve a PEM X.509 certificate`, { cause: error });
    }
    const key = certificate.publicKey;
    if (key.asymmetricKeyType !== 'rsa') {
      throw new PatchbayError('PB_WEBHOOK_BAD_SIGNATURE', `the SNS signing certificate at ${url.host} does not hold an RSA key`);
    }
    const validFromMs = Date.parse(certificate.validFrom);
    const validToMs = Date.parse(certificate.validTo);
    if (!(validFromMs <= nowMs && nowMs < validToMs)) {
      throw new PatchbayError('PB_WEBHOOK_BAD_SIGNATURE', `the SNS signing certificate at ${url.host} is not valid now (valid ${certificate.validFrom} to ${certificate.validTo})`);
    }
    return { key, expiresAtMs: Math.min(nowMs + this.ttlMs, validToMs) };
  }
}

/** Limits of the production certificate fetcher. */
export interface SnsFetchLimits {
  /** Milliseconds for the whole fetch (connect, headers, body). @default 5_000 */
  readonly timeoutMs?: number;
  /** Largest certificate accepted, in bytes. @default 64 KiB */
  readonly maxBytes?: number;
}

/**
 * The HTTP client certificates are fetched with in production: https only, only URLs
 * `isSnsCertificateUrl` accepts (checked again by the client before anything is sent), no
 * redirects, no private addresses, 5 s timeouts. `close()` it with the daemon.
 */
export function createSnsCertificateClient(limits: SnsFetchLimits = {}): HttpClient {
  const timeoutMs = limits.timeoutMs ?? 5_000;
  return new HttpClient({
    connectTimeoutMs: timeoutMs,
    headersTimeoutMs: timeoutMs,
    totalTimeoutMs: timeoutMs,
    maxResponseBytes: limits.maxBytes ?? 64 * 1024,
    maxRedirects: 0,
    // As many as SnsCertificateCache's default maxFetchesInFlight, so its slots are not queued
    // again behind fewer connections here (the cache bounds what is under way in all).
    connectionsPerOrigin: 32,
    isHostAllowed: isSnsCertificateUrl,
  });
}

/**
 * A fetcher over `client` (`createSnsCertificateClient()` in production): GET the URL, at most
 * `timeoutMs` and `maxBytes`. Rejects with PB_WEBHOOK_BAD_SIGNATURE when SNS answers 403, 404 or
 * 410 (no such certificate: a forged URL on a real SNS host) and PB_WEBHOOK_KEY_UNAVAILABLE for
 * every other failure (network, timeout, too large, refused address, another status), so the
 * sender delivers again.
 */
export function createSnsCertificateFetcher(client: HttpClient, limits: SnsFetchLimits = {}): SnsCertificateFetcher {
  const timeoutMs = limits.timeoutMs ?? 5_000;
  const maxBytes = limits.maxBytes ?? 64 * 1024;
  return async (url) => {
    let response;
    try {
      response = await client.send(
        { method: 'GET', url, headers: { accept: 'application/x-pem-file, */*' } },
        { connectTimeoutMs: timeoutMs, headersTimeoutMs: timeoutMs, totalTimeoutMs: timeoutMs, maxResponseBytes: maxBytes },
      );
    } catch (error) {
      const code = error instanceof PatchbayError ? error.code : 'an unexpected error';
      throw new PatchbayError('PB_WEBHOOK_KEY_UNAVAILABLE', `the SNS signing certificate could not be fetched from ${url.host} (${code})`, { cause: error });
    }
    if (response.status === 403 || response.status === 404 || response.status === 410) {
      throw new PatchbayError('PB_WEBHOOK_BAD_SIGNATURE', `SigningCertURL names no certificate on ${url.host} (answered ${response.status})`);
    }
    if (response.status !== 200) {
      throw new PatchbayError('PB_WEBHOOK_KEY_UNAVAILABLE', `the SNS signing certificate could not be fetched from ${url.host} (answered ${response.status})`);
    }
    return Buffer.from(response.body).toString('utf8');
  };
}

/** The message fields each type signs, in the order of the canonical string. */
const signedFields: Readonly<Record<string, readonly string[]>> = {
  Notification: ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type'],
  SubscriptionConfirmation: ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'],
  UnsubscribeConfirmation: ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'],
};

/** Fields that may be absent from the canonical string (then left out with their name). */
const optionalFields = new Set(['Subject']);

const digestOf: Readonly<Record<string, 'sha1' | 'sha256'>> = { '1': 'sha1', '2': 'sha256' };

/**
 * The canonical string SNS signs for `message`: for each field of its type, in order, the name,
 * a newline, the value, a newline (`Subject` left out when absent or null). Returns the missing
 * or non-string field's name instead, or `Type` for an unknown type.
 */
export function snsStringToSign(message: Readonly<Record<string, unknown>>): string | { readonly bad: string } {
  const type = message.Type;
  const fields = typeof type === 'string' && Object.hasOwn(signedFields, type) ? signedFields[type] : undefined;
  if (fields === undefined) return { bad: 'Type' };
  let text = '';
  for (const field of fields) {
    const value = Object.hasOwn(message, field) ? message[field] : undefined;
    if ((value === undefined || value === null) && optionalFields.has(field)) continue;
    if (typeof value !== 'string') return { bad: field };
    text += `${field}\n${value}\n`;
  }
  return text;
}

const bodyName: HeaderName = { key: '(body)', label: 'SNS message' };
const typeHeader = headerName('x-amz-sns-message-type');
const topicHeader = headerName('x-amz-sns-topic-arn');

/**
 * Parses an SNS `Timestamp` (ISO 8601 UTC, `2026-07-14T14:21:09.471Z`) and checks it lies within
 * `toleranceMs` of `nowMs`, past or future. Returns Unix milliseconds. Raises
 * PB_WEBHOOK_BAD_SIGNATURE for another form and PB_WEBHOOK_STALE outside the window.
 */
export function checkSnsTimestamp(text: string, nowMs: number, toleranceMs: number): number {
  const parts = isoTimestamp.exec(text);
  const signedAtMs = parts === null ? Number.NaN : Date.parse(text);
  if (parts === null || Number.isNaN(signedAtMs) || new Date(signedAtMs).toISOString().slice(0, 19) !== text.slice(0, 19)) {
    throw badSignature(bodyName, 'its Timestamp is not an ISO 8601 UTC time');
  }
  const skewSeconds = Math.round((signedAtMs - nowMs) / 1000);
  if (Math.abs(signedAtMs - nowMs) > toleranceMs) {
    const age = skewSeconds < 0 ? `${-skewSeconds} s old` : `${skewSeconds} s in the future`;
    throw new PatchbayError(
      'PB_WEBHOOK_STALE',
      `the SNS message Timestamp is ${age}, outside the ${Math.floor(toleranceMs / 1000)} s tolerance (a replayed message, or a clock that is wrong here)`,
    );
  }
  return signedAtMs;
}

/** What an SNS verifier needs besides the message. */
export interface SnsVerifierOptions {
  /** The TopicArns accepted (the connection's `webhookSecrets`). */
  readonly topicArns: readonly string[];
  readonly certificates: SnsCertificateCache;
  /** @default 3600 s (aws.yaml's `toleranceSeconds`) */
  readonly toleranceMs?: number;
}

/**
 * The verifier for scheme `awsSns`. Raises PB_WEBHOOK_CONFIG when `topicArns` is empty or holds
 * something that is not an SNS topic ARN (named by position). Its `verify` rejects with
 * PB_WEBHOOK_BAD_BODY (the body is not a JSON object), PB_WEBHOOK_MISSING_SIGNATURE (no
 * `Signature` or `SigningCertURL`), PB_WEBHOOK_BAD_SIGNATURE (unknown Type or SignatureVersion,
 * a field missing, a SigningCertURL not on an SNS host — refused before any fetch —, a TopicArn
 * not listed, an `x-amz-sns-message-type` or `x-amz-sns-topic-arn` header contradicting the
 * signed body, or a signature that does not verify), PB_WEBHOOK_STALE (Timestamp outside the
 * tolerance) and PB_WEBHOOK_KEY_UNAVAILABLE (the certificate could not be fetched). Resolves with
 * the MessageId as delivery id and the Timestamp as signing time.
 */
export function createSnsVerifier(options: SnsVerifierOptions): WebhookVerifier {
  if (options.topicArns.length === 0) {
    throw badConfig('awsSns', 'list the TopicArns this connection accepts in webhookSecrets (SNS has no shared secret: any AWS account could otherwise subscribe this endpoint to its own topic)');
  }
  options.topicArns.forEach((arn, index) => {
    if (!topicArnPattern.test(arn.trim())) {
      throw badConfig('awsSns', `webhook secret #${index + 1} is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<topic>); for this scheme webhookSecrets list the accepted TopicArns`);
    }
  });
  const topics = new Set(options.topicArns.map((arn) => arn.trim()));
  const toleranceMs = options.toleranceMs ?? 3600 * 1000;
  const certificates = options.certificates;
  return {
    scheme: 'awsSns',
    async verify(delivery: InboundDelivery, nowMs: number): Promise<VerifiedDelivery> {
      let message: unknown;
      try {
        message = JSON.parse(delivery.rawBody.toString('utf8'));
      } catch (error) {
        throw new PatchbayError('PB_WEBHOOK_BAD_BODY', 'the SNS message is not JSON: its signature cannot be read', { cause: error });
      }
      if (typeof message !== 'object' || message === null || Array.isArray(message)) {
        throw new PatchbayError('PB_WEBHOOK_BAD_BODY', 'the SNS message is not a JSON object: its signature cannot be read');
      }
      const fields = message as Readonly<Record<string, unknown>>;
      const own = (name: string): unknown => (Object.hasOwn(fields, name) ? fields[name] : undefined);
      const signatureText = own('Signature');
      const certText = own('SigningCertURL');
      if (typeof signatureText !== 'string' || signatureText === '' || typeof certText !== 'string' || certText === '') {
        throw new PatchbayError('PB_WEBHOOK_MISSING_SIGNATURE', 'the SNS message has no Signature or no SigningCertURL: it is not signed');
      }
      const digest = digestOf[String(own('SignatureVersion'))];
      if (digest === undefined) throw badSignature(bodyName, 'its SignatureVersion is neither 1 nor 2');
      const stringToSign = snsStringToSign(fields);
      if (typeof stringToSign !== 'string') throw badSignature(bodyName, `its ${stringToSign.bad} is missing or not a string`);
      const type = own('Type') as string;
      const topicArn = own('TopicArn') as string;
      // The event type is read from this header, which SNS does not sign: it must say what the
      // signed body says, or a confirmation could be replayed as a notification.
      const headerType = headerValue(delivery, typeHeader);
      if (headerType !== undefined && headerType !== type) throw badSignature(typeHeader, 'it contradicts the signed Type of the message');
      const headerTopic = headerValue(delivery, topicHeader);
      if (headerTopic !== undefined && headerTopic !== topicArn) throw badSignature(topicHeader, 'it contradicts the signed TopicArn of the message');
      if (!topics.has(topicArn)) throw badSignature(bodyName, 'its TopicArn is not one the connection accepts (webhookSecrets list the accepted TopicArns)');
      let certUrl: URL | undefined;
      try {
        certUrl = new URL(certText);
      } catch (error) {
        // A SigningCertURL that is not a URL is refused just below like any other forged one.
        void error;
      }
      if (certUrl === undefined || !isSnsCertificateUrl(certUrl)) {
        throw badSignature(bodyName, 'its SigningCertURL is not an https .pem URL on an sns.<region>.amazonaws.com host');
      }
      const signature = decodeSignature(signatureText, 'base64');
      if (signature === undefined) throw badSignature(bodyName, 'its Signature is not base64');
      const signedAtMs = checkSnsTimestamp(own('Timestamp') as string, nowMs, toleranceMs);
      const key = await certificates.publicKey(certUrl, nowMs);
      let valid = false;
      try {
        valid = verifySignature(digest, Buffer.from(stringToSign, 'utf8'), key, signature);
      } catch (error) {
        // A signature of the wrong length for the key cannot verify: a refusal below, not a crash.
        void error;
      }
      if (!valid) throw badSignature(bodyName, 'its Signature does not verify with the certificate at SigningCertURL (a message changed on the way, or not signed by SNS)');
      return { deliveryId: own('MessageId') as string, signedAtMs };
    },
  };
}
