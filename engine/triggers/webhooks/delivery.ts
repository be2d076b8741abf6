import { PatchbayError } from '../../diag/errors.js';
import type { ProviderWebhooks, WebhookLocator } from '../../types/provider.generated.js';
import { decodeUtf8, parseJsonText } from './body-text.js';
import { flatFormObject, nestedFormObject, parseFormFields } from './form-body.js';
import { headerName, headerValue } from './refusals.js';
import type { InboundDelivery, VerifiedDelivery } from './verify.js';

/** A verified delivery's body, parsed, with its event type and id located. */
export interface ParsedDelivery {
  readonly payload: unknown;
  readonly eventType: string | undefined;
  readonly eventId: string | undefined;
}

/** An answer the ingress sends instead of storing the delivery (a provider's handshake). */
export interface HandshakeAnswer {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

type BodyKind = 'json' | 'form';

const contentTypeHeader = headerName('Content-Type');

const mediaTypes: Record<BodyKind, (type: string) => boolean> = {
  json: (type) => type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json')),
  form: (type) => type === 'application/x-www-form-urlencoded',
};

/**
 * Which body kind the Content-Type announces, checked against what the provider sends. Accepts a
 * `charset` parameter naming UTF-8 (or US-ASCII, its subset). Twilio's `bodySHA256` deliveries are
 * JSON although Twilio's webhooks are declared `form`; Amazon SNS posts JSON as `text/plain`.
 * Raises PB_WEBHOOK_UNSUPPORTED_MEDIA otherwise (answered 415).
 */
export function bodyKindOf(webhooks: ProviderWebhooks, delivery: InboundDelivery): BodyKind {
  const declared: BodyKind = webhooks.contentType ?? 'json';
  const header = headerValue(delivery, contentTypeHeader);
  if (header === undefined) {
    throw new PatchbayError('PB_WEBHOOK_UNSUPPORTED_MEDIA', `the Content-Type header is missing: this provider sends ${describe(declared)}`);
  }
  const [typePart = '', ...parameters] = header.split(';');
  const type = typePart.trim().toLowerCase();
  for (const parameter of parameters) {
    const equals = parameter.indexOf('=');
    if (equals < 0) continue;
    if (parameter.slice(0, equals).trim().toLowerCase() !== 'charset') continue;
    const charset = parameter.slice(equals + 1).trim().replace(/^"(.*)"$/, '$1').toLowerCase();
    if (charset !== 'utf-8' && charset !== 'utf8' && charset !== 'us-ascii') {
      throw new PatchbayError('PB_WEBHOOK_UNSUPPORTED_MEDIA', `the Content-Type charset is not UTF-8: bodies are read as UTF-8`);
    }
  }
  if (mediaTypes[declared](type)) return declared;
  const scheme = webhooks.verification.scheme;
  if (scheme === 'twilio' && mediaTypes.json(type)) return 'json';
  if (scheme === 'awsSns' && type === 'text/plain') return 'json';
  throw new PatchbayError('PB_WEBHOOK_UNSUPPORTED_MEDIA', `the Content-Type is ${printableType(type)}, but this provider sends ${describe(declared)}`);
}

function describe(kind: BodyKind): string {
  return kind === 'json' ? 'application/json' : 'application/x-www-form-urlencoded';
}

function printableType(type: string): string {
  return /^[a-z0-9!#$&^_.+-]{1,60}\/[a-z0-9!#$&^_.+-]{1,60}$/.test(type) ? `"${type}"` : 'not a media type this provider sends';
}

/**
 * Parses a verified delivery's raw body per the provider's `contentType` and locates its event
 * type and id.
 *
 * - JSON bodies: strict UTF-8, then JSON.
 * - Form bodies: nested by `a[b][c]` brackets (Mailchimp), except Twilio's, whose names stay flat
 *   (its signature covers them as sent).
 * - Event type: `eventType.header`, `eventType.path`, or both joined by a dot (GitHub's
 *   `issues` + `opened` = `issues.opened`; a delivery with no action keeps the header alone).
 * - Event id: `eventId.header` or `eventId.path`, else the delivery id verification proved
 *   (`verified.deliveryId`).
 *
 * Raises PB_WEBHOOK_UNSUPPORTED_MEDIA (415) when the Content-Type disagrees, PB_WEBHOOK_BAD_BODY
 * (400) for bytes that are not UTF-8 (byte offset), JSON that does not parse (line, column and
 * offset) or a malformed form body (field position). Messages never quote the body.
 */
export function parseDelivery(webhooks: ProviderWebhooks, delivery: InboundDelivery, verified?: VerifiedDelivery): ParsedDelivery {
  const kind = bodyKindOf(webhooks, delivery);
  const text = decodeUtf8(delivery.rawBody);
  let payload: unknown;
  if (kind === 'json') {
    payload = parseJsonText(text);
  } else {
    const fields = parseFormFields(text);
    payload = webhooks.verification.scheme === 'twilio' ? flatFormObject(fields) : nestedFormObject(fields);
  }
  const eventType = locate(webhooks.eventType, delivery, payload);
  const eventId = (webhooks.eventId === undefined ? undefined : locate(webhooks.eventId, delivery, payload)) ?? verified?.deliveryId;
  return { payload, eventType, eventId };
}

/** The value a locator points at, as text; undefined when absent or not a string or number. */
function locate(locator: WebhookLocator, delivery: InboundDelivery, payload: unknown): string | undefined {
  const fromHeader = locator.header === undefined ? undefined : headerText(delivery, locator.header);
  const fromPath = locator.path === undefined ? undefined : pathText(payload, locator.path);
  if (fromHeader !== undefined && fromPath !== undefined) return `${fromHeader}.${fromPath}`;
  return fromHeader ?? fromPath;
}

function headerText(delivery: InboundDelivery, name: string): string | undefined {
  return headerValue(delivery, headerName(name));
}

function pathText(payload: unknown, path: string): string | undefined {
  let node: unknown = payload;
  for (const segment of path.split('.')) {
    if (node === null || typeof node !== 'object' || Array.isArray(node) || !Object.hasOwn(node, segment)) return undefined;
    node = (node as Record<string, unknown>)[segment];
  }
  if (typeof node === 'string') return node === '' ? undefined : node;
  if (typeof node === 'number' && Number.isFinite(node)) return String(node);
  return undefined;
}

/** Longest Slack challenge answered; Slack's are a few dozen characters. */
const maxChallengeLength = 1024;

/**
 * Methods other than POST a provider uses to probe its endpoint: Mailchimp checks a new audience
 * webhook's URL with GET (and Mandrill with HEAD) and expects 200. Returns true for those; the
 * ingress answers them with `probeAnswerOf` and stores nothing.
 */
export function isProbe(webhooks: ProviderWebhooks, delivery: Pick<InboundDelivery, 'method'>): boolean {
  const method = delivery.method.toUpperCase();
  return webhooks.verification.scheme === 'mailchimp' && (method === 'GET' || method === 'HEAD');
}

/**
 * The answer to a probe (see isProbe): 200 with an empty body, or undefined when the request is
 * not one. Answering needs no verification (Mailchimp's GET carries no signature, Mandrill's HEAD
 * neither): it runs nothing, stores nothing and reveals only that the endpoint exists, which the
 * 404 for unknown names reveals anyway.
 */
export function probeAnswerOf(webhooks: ProviderWebhooks, delivery: Pick<InboundDelivery, 'method'>): HandshakeAnswer | undefined {
  return isProbe(webhooks, delivery) ? { status: 200, contentType: 'text/plain; charset=utf-8', body: '' } : undefined;
}

/**
 * The handshake answer for a verified, parsed delivery, or undefined when it is an ordinary event
 * to store. Slack's `url_verification` (`{"type":"url_verification","challenge":"…"}`) is
 * answered 200 with the challenge as plain text; a probe (isProbe) is answered 200 empty. Call it
 * only after verify(): Slack signs its challenge like any event. Raises PB_WEBHOOK_BAD_BODY when a
 * `url_verification` carries no usable challenge.
 */
export function handshakeOf(webhooks: ProviderWebhooks, delivery: InboundDelivery, payload: unknown): HandshakeAnswer | undefined {
  const probe = probeAnswerOf(webhooks, delivery);
  if (probe !== undefined) return probe;
  if (webhooks.verification.scheme !== 'slack') return undefined;
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) return undefined;
  const body = payload as Record<string, unknown>;
  if (body['type'] !== 'url_verification') return undefined;
  const challenge = body['challenge'];
  if (typeof challenge !== 'string' || challenge === '' || challenge.length > maxChallengeLength) {
    throw new PatchbayError('PB_WEBHOOK_BAD_BODY', `a Slack url_verification carries no challenge string of 1 to ${maxChallengeLength} characters`);
  }
  return { status: 200, contentType: 'text/plain; charset=utf-8', body: challenge };
}

/**
 * What an operator must hear about an event the trigger does not subscribe to, beyond a debug
 * line: an SNS SubscriptionConfirmation, without which the topic delivers nothing. Never carries
 * the confirmation token or URL (a capability).
 */
export function ignoredNotice(webhooks: ProviderWebhooks, parsed: { readonly eventType: string | undefined; readonly payload: unknown }): { message: string; fields: Record<string, unknown> } | undefined {
  if (webhooks.verification.scheme !== 'awsSns' || parsed.eventType !== 'SubscriptionConfirmation') return undefined;
  const topic = (parsed.payload as { TopicArn?: unknown } | null)?.TopicArn;
  return {
    message: 'an SNS subscription waits for confirmation: subscribe the integration to SubscriptionConfirmation, or confirm it with the AWS CLI (aws sns confirm-subscription)',
    fields: { topicArn: typeof topic === 'string' ? topic : undefined },
  };
}
