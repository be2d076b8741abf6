import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PatchbayError } from '../diag/errors.js';
import type { SubmittedEvent } from '../executor/executor.js';
import { TokenBucket, type BucketSpec } from '../executor/rate-limiter.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { readBodyWithin, sendJson } from '../lib/http-server.js';
import { silentLogger, type Logger } from '../lib/log.js';
import type { AcceptedEvent } from '../store/state-store.js';
import type { ProviderWebhooks } from '../types/provider.generated.js';
import { senderBucket } from './sender-key.js';
import { handshakeOf, ignoredNotice, parseDelivery, probeAnswerOf } from './webhooks/delivery.js';
import type { InboundDelivery, WebhookVerifier } from './webhooks/verify.js';

/**
 * Webhook ingress: `POST /hooks/<integration>`. The order of work is the contract:
 *
 * 1. cheap refusals first (method, unknown integration, draining, the sender's rate, declared
 *    length), so a flood costs little;
 * 2. the raw body is read up to the size limit and verified, byte for byte, before anything parses it;
 * 3. it is parsed, its event type and id located, and the event committed to the store;
 * 4. only then is the 2xx sent. No mapping runs and no outbound call is made before the answer:
 *    redaction is the only transformation, and ordering keys are computed after the commit.
 *
 * Every refusal is a JSON `{ "error": { "code", "message" } }` with a stable code and the status
 * the table below gives; it is logged with the code, the integration and the sender's address,
 * never the body or a header value.
 */

/** One integration's webhook endpoint, prepared for a revision. */
export interface HookRoute {
  readonly integration: string;
  readonly enabled: boolean;
  readonly webhooks: ProviderWebhooks;
  readonly verifier: WebhookVerifier;
  /** Subscribed event types, or `any` (`*`, or a provider whose types are user-defined). */
  readonly events: ReadonlySet<string> | 'any';
  /**
   * Whether the event id is covered by the signature. When it is not (GitHub's delivery header),
   * the body's hash is the deduplication key, so a replayed delivery with a new id is a duplicate.
   */
  readonly idSigned: boolean;
}

/** What the ingress reads from the daemon at each request (so a new revision applies at once). */
export interface HookTable {
  route(integration: string): HookRoute | undefined;
  /** Why an integration with a webhook trigger cannot receive now (unresolved secret, …). */
  broken(integration: string): PatchbayError | undefined;
}

/** Counts for metrics; must not throw. */
export interface IngressObserver {
  /** A delivery was committed as a new run (not a duplicate, not an ignored event type). */
  received?(integration: string): void;
  rejected?(integration: string, code: string): void;
}

export interface IngressOptions {
  readonly table: HookTable;
  /** Commits events durably (the executor's `submit`). */
  readonly submit: (events: readonly SubmittedEvent[]) => Promise<readonly AcceptedEvent[]>;
  /** True once the daemon is stopping: deliveries are refused with 503 so the sender retries. */
  readonly draining?: () => boolean;
  /** @default 1 MiB */
  readonly maxBodyBytes?: number;
  /** Deliveries per sender address (all integrations together). @default 100 per second, burst 200 */
  readonly inboundRate?: BucketSpec;
  /** The external base URL senders use (`https://hooks.example.com`), for schemes that sign the URL. */
  readonly publicUrl?: URL | undefined;
  /** Take the sender's address and the URL's scheme and host from `X-Forwarded-*` (behind a proxy). @default false */
  readonly trustProxy?: boolean;
  /** With `trustProxy`: how many proxies append to X-Forwarded-For (a CDN and a load balancer: 2). @default 1 */
  readonly proxyHops?: number;
  /** Whether the server itself speaks TLS (the URL's scheme when there is no public URL). @default false */
  readonly tls?: boolean;
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly observer?: IngressObserver;
}

/** HTTP status of each refusal code. */
export const ingressStatus: Readonly<Record<string, number>> = {
  PB_WEBHOOK_BAD_BODY: 400,
  PB_WEBHOOK_ABORTED: 400,
  PB_WEBHOOK_MISSING_SIGNATURE: 401,
  PB_WEBHOOK_BAD_SIGNATURE: 401,
  PB_WEBHOOK_STALE: 401,
  PB_WEBHOOK_UNKNOWN_INTEGRATION: 404,
  PB_INTEGRATION_DISABLED: 404,
  PB_WEBHOOK_METHOD_NOT_ALLOWED: 405,
  PB_WEBHOOK_TOO_LARGE: 413,
  PB_WEBHOOK_UNSUPPORTED_MEDIA: 415,
  PB_WEBHOOK_RATE_LIMITED: 429,
  PB_DAEMON_DRAINING: 503,
  PB_WEBHOOK_KEY_UNAVAILABLE: 503,
  PB_INTEGRATION_BROKEN: 503,
};

/** Most sender addresses whose buckets are kept; the least recently seen are dropped beyond it. */
const maxTrackedSources = 10_000;

/** A handler for `/hooks/<integration>` requests; `handle` never rejects. */
export class WebhookIngress {
  private readonly options: IngressOptions;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly maxBodyBytes: number;
  private readonly inboundRate: BucketSpec;
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(options: IngressOptions) {
    this.options = options;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
    this.inboundRate = options.inboundRate ?? { requests: 100, perMs: 1000, burst: 200 };
  }

  /** Answers one delivery for `integration` (the path segment after `/hooks/`, still encoded). */
  async handle(req: IncomingMessage, res: ServerResponse, integrationSegment: string): Promise<void> {
    const requestId = randomUUID();
    res.setHeader('x-request-id', requestId);
    let integration = '(unknown)';
    const source = this.sourceOf(req);
    try {
      integration = decodeSegment(integrationSegment);
      const route = this.options.table.route(integration);
      const method = req.method ?? 'GET';
      // Mailchimp checks a new webhook URL with a GET before it sends anything.
      const probe = route === undefined ? undefined : probeAnswerOf(route.webhooks, { method });
      if (method !== 'POST' && probe === undefined) {
        res.setHeader('allow', 'POST');
        throw new PatchbayError('PB_WEBHOOK_METHOD_NOT_ALLOWED', `${method} is not allowed on /hooks/…: webhooks are delivered with POST`);
      }
      if (route === undefined) {
        const broken = this.options.table.broken(integration);
        if (broken !== undefined) {
          throw new PatchbayError('PB_INTEGRATION_BROKEN', `integration "${integration}" cannot receive webhooks until it is fixed (${broken.code}); the sender will retry`);
        }
        integration = '(unknown)';
        throw new PatchbayError('PB_WEBHOOK_UNKNOWN_INTEGRATION', 'no integration with a webhook trigger has this name');
      }
      if (this.options.draining?.() === true) {
        throw new PatchbayError('PB_DAEMON_DRAINING', 'the daemon is shutting down; deliver again shortly');
      }
      if (!route.enabled) throw new PatchbayError('PB_INTEGRATION_DISABLED', `integration "${integration}" is disabled (enabled: false): it receives no events`);
      const waitMs = this.admit(source);
      if (waitMs > 0) {
        res.setHeader('retry-after', String(Math.max(1, Math.ceil(waitMs / 1000))));
        throw new PatchbayError('PB_WEBHOOK_RATE_LIMITED', 'too many deliveries from this address; slow down');
      }
      if (probe !== undefined) {
        writeAnswer(res, probe);
        return;
      }
      const rawBody = await this.readBody(req, res);
      const delivery: InboundDelivery = { method, url: this.urlOf(req), headers: headersOf(req), rawBody };
      const verified = await route.verifier.verify(delivery, this.clock.now());
      const parsed = parseDelivery(route.webhooks, delivery, verified);
      const handshake = handshakeOf(route.webhooks, delivery, parsed.payload);
      if (handshake !== undefined) {
        writeAnswer(res, handshake);
        this.logger.log('info', 'webhook handshake answered', { integration, requestId });
        return;
      }
      if (route.events !== 'any' && (parsed.eventType === undefined || !route.events.has(parsed.eventType))) {
        // A 2xx, or the sender would deliver it again and again.
        sendJson(res, 200, { accepted: false, ignored: true, reason: 'event type not subscribed' });
        const notice = ignoredNotice(route.webhooks, parsed);
        if (notice !== undefined) {
          this.logger.log('warn', notice.message, { integration, requestId, ...notice.fields });
        } else {
          this.logger.log('debug', 'webhook ignored: event type not subscribed', { integration, requestId, eventType: parsed.eventType });
        }
        return;
      }
      const signedId = route.idSigned ? (parsed.eventId ?? verified.deliveryId) : undefined;
      // Without a signed id: the body's hash, with the signed time when the scheme signs one. A
      // replay within the tolerance is then a duplicate, and a provider that sends the same bytes
      // again later (Plaid's SYNC_UPDATES_AVAILABLE) is a new event.
      const eventKey = signedId ?? bodyKeyOf(rawBody, verified.signedAtMs);
      const [accepted] = await this.options.submit([
        { integration, eventKey, type: parsed.eventType, source: 'webhook', payload: parsed.payload, receivedAt: this.clock.now() },
      ]);
      if (accepted === undefined) throw new Error('the store accepted no event');
      if (accepted.accepted) {
        this.options.observer?.received?.(integration);
        sendJson(res, 202, { accepted: true, runId: accepted.runId });
        this.logger.log('debug', 'webhook accepted', { integration, requestId, run: accepted.runId, eventType: parsed.eventType });
      } else {
        sendJson(res, 200, { accepted: false, duplicate: true, runId: accepted.runId });
        this.logger.log('info', 'webhook duplicate: already accepted, not run again', { integration, requestId, run: accepted.runId });
      }
    } catch (error) {
      this.refuse(res, error, { integration, requestId, source });
    }
  }

  private refuse(res: ServerResponse, error: unknown, context: { integration: string; requestId: string; source: string }): void {
    const known = error instanceof PatchbayError ? error : undefined;
    let status = known === undefined ? 500 : (ingressStatus[known.code] ?? 500);
    let code = known?.code ?? 'PB_INTERNAL';
    let message = known?.message ?? 'the delivery could not be accepted';
    if (known !== undefined && status === 500) {
      if (known.code.startsWith('PB_STATE_')) {
        // The store refused the commit: nothing was accepted, so the sender must deliver again.
        status = 503;
        message = 'the event could not be stored; deliver it again';
      } else {
        code = 'PB_INTERNAL';
        message = 'the delivery could not be accepted';
      }
    }
    if (status === 503) res.setHeader('retry-after', '5');
    this.options.observer?.rejected?.(context.integration, code);
    // A sender that hung up is its own problem: no alarm, and nobody reads the answer.
    const level = status >= 500 ? 'error' : code === 'PB_WEBHOOK_ABORTED' ? 'info' : 'warn';
    this.logger.log(level, 'webhook refused', {
      integration: context.integration,
      requestId: context.requestId,
      source: context.source,
      status,
      code,
      ...(status >= 500 ? { error: error instanceof Error ? error.message : String(error) } : { reason: message }),
    });
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // An oversized body was left unread: readBodyWithin has set `Connection: close`.
    sendJson(res, status, { error: { code, message } });
  }

  /** 0 when the sender may deliver now, else how long until it may. */
  private admit(address: string): number {
    const now = this.clock.now();
    const source = senderBucket(address);
    let bucket = this.buckets.get(source);
    if (bucket === undefined) {
      bucket = new TokenBucket(this.inboundRate, now);
      if (this.buckets.size >= maxTrackedSources) {
        const oldest = this.buckets.keys().next().value;
        if (oldest !== undefined) this.buckets.delete(oldest);
      }
    } else {
      // Re-inserted so the map's order is least recently seen first.
      this.buckets.delete(source);
    }
    this.buckets.set(source, bucket);
    const reservation = bucket.reserve(1, now, 0);
    return reservation.granted ? 0 : Math.max(1, reservation.retryAtMs - now);
  }

  private async readBody(req: IncomingMessage, res: ServerResponse): Promise<Buffer> {
    const encoding = req.headers['content-encoding'];
    if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
      throw new PatchbayError('PB_WEBHOOK_UNSUPPORTED_MEDIA', `Content-Encoding "${encoding.slice(0, 40)}" is not accepted; send the body uncompressed`);
    }
    const read = await readBodyWithin(req, res, this.maxBodyBytes);
    if (read.kind === 'body') return read.body;
    if (read.kind === 'tooLarge') throw new PatchbayError('PB_WEBHOOK_TOO_LARGE', `the body is larger than the limit of ${this.maxBodyBytes} bytes`);
    throw new PatchbayError('PB_WEBHOOK_ABORTED', 'the sender closed the connection before the body was complete', { cause: read.cause });
  }

  private sourceOf(req: IncomingMessage): string {
    if (this.options.trustProxy === true) {
      // The proxy appends the address it saw on the right; anything left of it is the client's
      // own claim, and a client choosing its address would choose a fresh rate-limit bucket.
      const forwarded = forwardedByHop(req.headers['x-forwarded-for'], this.options.proxyHops ?? 1);
      if (forwarded !== undefined) return forwarded;
    }
    return req.socket.remoteAddress ?? 'unknown';
  }

  /** The URL the sender addressed, as schemes that sign it (Twilio, Mandrill) computed it. */
  private urlOf(req: IncomingMessage): URL {
    const path = req.url ?? '/';
    const base = this.options.publicUrl;
    if (base !== undefined) {
      const prefix = base.pathname.endsWith('/') ? base.pathname.slice(0, -1) : base.pathname;
      return new URL(`${base.protocol}//${base.host}${prefix}${path}`);
    }
    const trust = this.options.trustProxy === true;
    const proto = (trust ? lastForwarded(req.headers['x-forwarded-proto']) : undefined) ?? (this.options.tls === true ? 'https' : 'http');
    const host = (trust ? lastForwarded(req.headers['x-forwarded-host']) : undefined) ?? req.headers.host ?? 'localhost';
    try {
      return new URL(`${proto}://${host}${path}`);
    } catch (error) {
      throw new PatchbayError('PB_WEBHOOK_BAD_BODY', 'the request URL or Host header is not valid', { cause: error });
    }
  }
}

/** The key of a delivery without a signed id: the body's SHA-256, with the signed time when there is one. */
function bodyKeyOf(rawBody: Buffer, signedAtMs: number | undefined): string {
  const hash = `sha256:${createHash('sha256').update(rawBody).digest('hex')}`;
  return signedAtMs === undefined ? hash : `${hash}@${signedAtMs}`;
}

/** A handshake or probe answer (Slack's challenge, Mailchimp's URL check): nothing is stored. */
function writeAnswer(res: ServerResponse, answer: { status: number; contentType: string; body: string }): void {
  res.writeHead(answer.status, { 'content-type': answer.contentType, 'content-length': Buffer.byteLength(answer.body), 'cache-control': 'no-store' });
  res.end(answer.body);
}

/** The integration's name from its path segment; malformed percent-encoding names no integration. */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch (error) {
    throw new PatchbayError('PB_WEBHOOK_UNKNOWN_INTEGRATION', 'no integration with a webhook trigger has this name (the path is not valid percent-encoding)', { cause: error });
  }
}

/** The value the nearest proxy added to an `X-Forwarded-*` header: the last of its list. */
function lastForwarded(value: string | string[] | undefined): string | undefined {
  return forwardedByHop(value, 1);
}

/**
 * The entry `hops` from the right of an `X-Forwarded-*` list: what the outermost of `hops`
 * trusted proxies saw. Undefined when the list is shorter (a request that bypassed a proxy).
 */
function forwardedByHop(value: string | string[] | undefined, hops: number): string | undefined {
  const joined = Array.isArray(value) ? value.join(',') : value;
  if (joined === undefined) return undefined;
  const entries = joined.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  return entries.length < hops ? undefined : entries[entries.length - hops];
}

/** Lower-case header names; a repeated header's values joined with ", " (raw headers keep repeats apart). */
function headersOf(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = Object.create(null) as Record<string, string>;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    const value = raw[i + 1] as string;
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  return headers;
}
