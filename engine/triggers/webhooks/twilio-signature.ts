import { createHash, timingSafeEqual } from 'node:crypto';
import { parse as parseQuery, stringify as stringifyQuery } from 'node:querystring';
import { PatchbayError } from '../../diag/errors.js';
import { formLimits } from './form-body.js';
import type { HmacSettings, Presented } from './hmac-verifier.js';
import { headerName, headerValue } from './refusals.js';
import type { InboundDelivery } from './verify.js';

/**
 * Twilio's `X-Twilio-Signature`: base64 HMAC-SHA1, keyed with the auth token, over the full URL
 * Twilio requested followed, for form bodies, by every POST parameter sorted by name with its name
 * and value appended (a repeated name: each distinct value, sorted). JSON bodies use the
 * `bodySHA256` variant instead: the URL carries `?bodySHA256=<hex sha256 of the body>`, the
 * signature covers the URL alone, and the body must hash to that value.
 *
 * The URL is tried as Twilio's SDK tries it: without and with the port (Twilio may sign either),
 * then with the query re-encoded the way Node's legacy `querystring` writes it (back ends that
 * signed `'` rather than `%27`). The ingress gives the URL as a WHATWG URL, already normalised, so
 * that is the SDK's second round; its first round (the raw URL) differs only for characters the
 * WHATWG parser escapes, which the legacy re-encoding restores.
 */

/** The candidate URL spellings Twilio may have signed, most likely first, without repeats. */
export function twilioUrlCandidates(url: URL): string[] {
  const href = url.href;
  const withoutPort = removePort(href);
  const withPort = addPort(href);
  return [...new Set([withoutPort, withPort, legacyQuery(withoutPort), legacyQuery(withPort)])];
}

interface UrlParts {
  readonly scheme: string;
  readonly userInfo: string;
  readonly host: string;
  readonly port: string;
  readonly rest: string;
}

function splitUrl(url: string): UrlParts | undefined {
  const match = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)/i.exec(url);
  if (match === null) return undefined;
  const scheme = match[1] ?? '';
  const authority = match[2] ?? '';
  const userInfoEnd = authority.lastIndexOf('@');
  const hostAndPort = authority.slice(userInfoEnd + 1);
  // A colon starts the port only after an IPv6 literal's closing bracket.
  const portStart = hostAndPort.indexOf(':', hostAndPort.lastIndexOf(']') + 1);
  return {
    scheme,
    userInfo: authority.slice(0, userInfoEnd + 1),
    host: portStart < 0 ? hostAndPort : hostAndPort.slice(0, portStart),
    port: portStart < 0 ? '' : hostAndPort.slice(portStart),
    rest: url.slice(match[0].length),
  };
}

function removePort(url: string): string {
  const parts = splitUrl(url);
  return parts === undefined ? url : parts.scheme + parts.userInfo + parts.host + parts.rest;
}

function addPort(url: string): string {
  const parts = splitUrl(url);
  if (parts === undefined || parts.port !== '') return url;
  const port = parts.scheme.toLowerCase() === 'https://' ? ':443' : ':80';
  return parts.scheme + parts.userInfo + parts.host + port + parts.rest;
}

function legacyQuery(url: string): string {
  const queryStart = url.indexOf('?');
  if (queryStart < 0 || queryStart === url.length - 1) return url;
  return `${url.slice(0, queryStart)}?${stringifyQuery(parseQuery(url.slice(queryStart + 1)))}`;
}

const contentType = headerName('Content-Type');

function isFormBody(delivery: InboundDelivery): boolean {
  return headerValue(delivery, contentType)?.split(';')[0]?.trim().toLowerCase() === 'application/x-www-form-urlencoded';
}

/**
 * The text Twilio appends to the URL: POST parameters sorted by name (JavaScript's code-unit order,
 * as Twilio's SDK sorts), each as name + value; a repeated name contributes each distinct value,
 * sorted. Empty for the `bodySHA256` variant and for bodies that are not forms. The parameters are
 * decoded leniently (Node's `querystring`, as the Express body parser in front of Twilio's SDK
 * does), so a malformed escape makes a signature that does not match rather than an error.
 */
export function twilioParameterText(delivery: InboundDelivery): string {
  if (delivery.url.searchParams.has('bodySHA256') || !isFormBody(delivery)) return '';
  const parameters = parseQuery(delivery.rawBody.toString('utf8'), '&', '=', { maxKeys: formLimits.maxFields });
  let appended = '';
  for (const name of Object.keys(parameters).sort()) {
    const value = parameters[name];
    const values = Array.isArray(value) ? [...new Set(value)].sort() : [value ?? ''];
    for (const one of values) appended += name + one;
  }
  return appended;
}

/** The candidate signed messages: each URL spelling followed by the parameter text. */
export function twilioMessages(delivery: InboundDelivery, _presented: Presented, _settings: HmacSettings): Buffer[] {
  const parameters = twilioParameterText(delivery);
  return twilioUrlCandidates(delivery.url).map((url) => Buffer.from(url + parameters, 'utf8'));
}

/**
 * After the URL signature matched, the `bodySHA256` variant's body check: the lower-case hex
 * SHA-256 of the raw body must equal the URL's `bodySHA256` (compared in constant time). Raises
 * PB_WEBHOOK_BAD_SIGNATURE otherwise; the message does not repeat the URL's query.
 */
export function checkTwilioBodyHash(delivery: InboundDelivery): void {
  const presented = delivery.url.searchParams.get('bodySHA256');
  if (presented === null) return;
  const expected = Buffer.from(createHash('sha256').update(delivery.rawBody).digest('hex'), 'utf8');
  const given = Buffer.from(presented, 'utf8');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new PatchbayError('PB_WEBHOOK_BAD_SIGNATURE', 'the body does not hash to the bodySHA256 the signed URL carries (the body changed on the way)');
  }
}
