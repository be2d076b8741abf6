import { createHash } from 'node:crypto';
import { PatchbayError } from '../diag/errors.js';

/**
 * Encoders for the parts of an outbound request: query strings and form bodies (with the
 * OpenAPI `style`/`explode` rules), multipart bodies, XML elements and SOAP envelopes. Pure and
 * deterministic: the same inputs give the same bytes, so a retried request can be re-signed.
 * Every refusal is a `PB_CALL_BAD_INPUT` naming the input, never quoting its value.
 */

/** The JSON Schema keywords of one input that steer its encoding. */
export interface InputEncoding {
  /**
   * OpenAPI parameter style: `form` (arrays repeat the key: Twilio `MediaUrl=a&MediaUrl=b`),
   * `deepObject` (arrays indexed, objects bracketed: Stripe `expand[0]=a`, `metadata[k]=v`), or
   * `pipeDelimited` / `spaceDelimited` (with `explode: false`, Google Maps `origins=a|b`).
   */
  readonly style?: string;
  /**
   * `false` sends an array as one value: joined with commas for `form` (`labels=a,b`), pipes for
   * `pipeDelimited`, spaces for `spaceDelimited`. @default true (the key repeats)
   */
  readonly explode?: boolean;
  /** `application/json`: a structured value is sent as one JSON text (Slack `blocks` in a form). */
  readonly contentMediaType?: string;
  /** `base64`: the string holds bytes (a multipart file part, a raw body). */
  readonly contentEncoding?: string;
}

/** A `[name, value]` pair of a query string or form body, before percent-encoding. */
export type Pair = readonly [string, string];

/** Where pairs go; the defaults differ (see `flattenInput`). */
export type PairTarget = 'query' | 'form';

function badInput(name: string, why: string): PatchbayError {
  return new PatchbayError('PB_CALL_BAD_INPUT', `input "${name}" ${why}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** A scalar as request text: booleans `true`/`false`, numbers in JavaScript's shortest form. */
export function scalarText(name: string, value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw badInput(name, 'is not a finite number');
    return String(value);
  }
  if (typeof value === 'bigint') return value.toString();
  throw badInput(name, `must be a string, number or boolean here, not ${value === null ? 'null' : Array.isArray(value) ? 'a list' : typeof value}`);
}

/**
 * Flattens one input into name/value pairs. `null` and `undefined` give none, and so do empty
 * lists and objects (a provider that clears a field with an empty value takes an empty string).
 * Objects are always bracketed (`a[b]=`, `a[b][c]=`), arrays inside them indexed (`a[b][0]=`).
 * A top-level array follows `style`: `deepObject` indexes it; `form`, `pipeDelimited` and
 * `spaceDelimited` repeat the key, or join with `,`, `|` or a space when `explode` is false. Without `style`, query arrays repeat the key (the OpenAPI
 * default) and form-body arrays are indexed (Stripe's convention, which Prism also expects for
 * `deepObject` bodies). `contentMediaType: application/json` sends a non-string value as JSON.
 * Throws `PB_CALL_BAD_INPUT` for a list of lists or objects where the style cannot say it.
 */
export function flattenInput(name: string, value: unknown, encoding: InputEncoding, target: PairTarget): Pair[] {
  if (value === null || value === undefined) return [];
  if (encoding.contentMediaType === 'application/json' && typeof value !== 'string') return [[name, JSON.stringify(value)]];
  const pairs: Pair[] = [];
  if (Array.isArray(value)) {
    const style = encoding.style ?? (target === 'query' ? 'form' : 'deepObject');
    if (style === 'deepObject') {
      bracket(name, value, pairs, 0);
      return pairs;
    }
    if (value.some((item) => item !== null && typeof item === 'object')) {
      throw badInput(name, 'is a list of lists or objects, which `style: form` cannot encode; use `style: deepObject`');
    }
    const items = value.filter((item) => item !== null && item !== undefined).map((item) => scalarText(name, item));
    if (encoding.explode === false) {
      const separator = style === 'pipeDelimited' ? '|' : style === 'spaceDelimited' ? ' ' : ',';
      return items.length === 0 ? [] : [[name, items.join(separator)]];
    }
    return items.map((item) => [name, item] as const);
  }
  if (isRecord(value)) {
    bracket(name, value, pairs, 0);
    return pairs;
  }
  return [[name, scalarText(name, value)]];
}

const maxDepth = 32;

function bracket(key: string, value: unknown, pairs: Pair[], depth: number): void {
  if (value === null || value === undefined) return;
  if (depth > maxDepth) throw badInput(key.replace(/\[.*$/, ''), `is nested deeper than ${maxDepth} levels`);
  if (Array.isArray(value)) {
    value.forEach((item, index) => bracket(`${key}[${index}]`, item, pairs, depth + 1));
    return;
  }
  if (isRecord(value)) {
    for (const [field, inner] of Object.entries(value)) bracket(`${key}[${field}]`, inner, pairs, depth + 1);
    return;
  }
  pairs.push([key, scalarText(key.replace(/\[.*$/, ''), value)]);
}

/**
 * Percent-encodes text for a query string, form body or path segment (RFC 3986: everything but
 * `A-Z a-z 0-9 - . _ ~` is escaped, spaces as `%20`). With `keepBrackets`, `[` and `]` stay
 * literal, as Stripe's own libraries send nested keys.
 */
export function percentEncode(text: string, keepBrackets = false): string {
  const encoded = encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return keepBrackets ? encoded.replace(/%5B/g, '[').replace(/%5D/g, ']') : encoded;
}

/** Joins pairs as `a=1&b%5B0%5D=2` (brackets in names kept literal), the form and query syntax. */
export function joinPairs(pairs: readonly Pair[]): string {
  return pairs.map(([name, value]) => `${percentEncode(name, true)}=${percentEncode(value)}`).join('&');
}

/** A file for a multipart part: `data` is base64, as JSON inputs cannot hold bytes. */
export interface FileInput {
  readonly filename: string;
  readonly data: string;
  readonly contentType?: string;
}

function isFileInput(value: unknown): value is FileInput {
  return isRecord(value) && typeof value.filename === 'string' && typeof value.data === 'string';
}

const base64Pattern = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** Decodes base64 (standard or URL-safe) input text; throws `PB_CALL_BAD_INPUT` for anything else. */
export function decodeBase64(name: string, text: string): Uint8Array {
  const compact = text.replace(/\s+/g, '');
  if (!base64Pattern.test(compact) || compact.replace(/=+$/, '').length % 4 === 1) throw badInput(name, 'is not valid base64');
  return new Uint8Array(Buffer.from(compact, compact.includes('-') || compact.includes('_') ? 'base64url' : 'base64'));
}

interface Part {
  readonly name: string;
  readonly filename?: string;
  readonly contentType?: string;
  readonly data: Uint8Array;
}

// WHATWG's multipart/form-data rule for names in Content-Disposition: escape `"` and line breaks.
function dispositionText(text: string): string {
  return text.replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function contentTypeHeader(name: string, contentType: string): string {
  if (/[\r\n]/.test(contentType)) throw badInput(name, 'has a content type with a line break');
  return contentType;
}

/**
 * Encodes fields as `multipart/form-data`. A field is a part per value: a file input
 * (`{ filename, data: base64, contentType? }`) becomes a file part; a string whose schema says
 * `contentEncoding: base64` becomes a file part named after the input; lists repeat the part;
 * objects are sent as JSON; scalars as text; `null` and `undefined` are left out. The boundary
 * is derived from the content, so the same fields always give the same bytes, and is checked not
 * to occur in any part. Returns the body and its `Content-Type` (with the boundary).
 */
export function encodeMultipart(
  fields: Readonly<Record<string, unknown>>,
  encodings: Readonly<Record<string, InputEncoding>> = {},
): { body: Uint8Array; contentType: string } {
  const parts: Part[] = [];
  const add = (name: string, value: unknown) => {
    if (value === null || value === undefined) return;
    if (isFileInput(value)) {
      parts.push({
        name,
        filename: value.filename,
        contentType: contentTypeHeader(name, value.contentType ?? 'application/octet-stream'),
        data: decodeBase64(name, value.data),
      });
    } else if (typeof value === 'string' && encodings[name]?.contentEncoding === 'base64') {
      parts.push({ name, filename: name, contentType: 'application/octet-stream', data: decodeBase64(name, value) });
    } else if (isRecord(value) || Array.isArray(value)) {
      parts.push({ name, contentType: 'application/json', data: Buffer.from(JSON.stringify(value)) });
    } else {
      parts.push({ name, data: Buffer.from(scalarText(name, value)) });
    }
  };
  for (const [name, value] of Object.entries(fields)) {
    if (Array.isArray(value) && !(encodings[name]?.contentMediaType === 'application/json')) value.forEach((item) => add(name, item));
    else add(name, value);
  }
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part.name).update('\0').update(part.data).update('\0');
  let boundary = `patchbay-${hash.digest('hex').slice(0, 40)}`;
  for (let round = 1; parts.some((part) => Buffer.from(part.data).includes(boundary)); round += 1) {
    boundary = `patchbay-${createHash('sha256').update(boundary).update(String(round)).digest('hex').slice(0, 40)}`;
  }
  const chunks: Buffer[] = [];
  for (const part of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${dispositionText(part.name)}"`;
    if (part.filename !== undefined) head += `; filename="${dispositionText(part.filename)}"`;
    head += '\r\n';
    if (part.contentType !== undefined) head += `Content-Type: ${part.contentType}\r\n`;
    chunks.push(Buffer.from(`${head}\r\n`), Buffer.from(part.data), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: new Uint8Array(Buffer.concat(chunks)), contentType: `multipart/form-data; boundary=${boundary}` };
}

// XML 1.0 cannot carry these at all, escaped or not (only tab, LF and CR among C0 controls).
const invalidXmlChars = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/;

/**
 * Escapes text for XML content or a double-quoted attribute (`& < > " '`). Throws
 * `PB_CALL_BAD_INPUT` naming `name` for characters XML 1.0 cannot represent (NUL, most C0
 * controls), rather than silently dropping them.
 */
export function escapeXml(name: string, text: string): string {
  if (invalidXmlChars.test(text)) throw badInput(name, 'holds a control character XML cannot carry');
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

const xmlName = /^[A-Za-z_][A-Za-z0-9._-]*(:[A-Za-z_][A-Za-z0-9._-]*)?$/;

/**
 * One XML element per field: scalars as escaped text, objects as nested elements, lists as the
 * element repeated; `null` and `undefined` are left out. Names must be XML names (an optional
 * `prefix:`), else `PB_CALL_BAD_INPUT`.
 */
export function xmlElements(fields: Readonly<Record<string, unknown>>, depth = 0): string {
  let out = '';
  for (const [name, value] of Object.entries(fields)) {
    if (!xmlName.test(name)) throw badInput(name, 'is not a valid XML element name');
    out += xmlElement(name, value, depth);
  }
  return out;
}

function xmlElement(name: string, value: unknown, depth: number): string {
  if (value === null || value === undefined) return '';
  if (depth > maxDepth) throw badInput(name, `is nested deeper than ${maxDepth} levels`);
  if (Array.isArray(value)) return value.map((item) => xmlElement(name, item, depth + 1)).join('');
  if (isRecord(value)) return `<${name}>${xmlElements(value, depth + 1)}</${name}>`;
  return `<${name}>${escapeXml(name, scalarText(name, value))}</${name}>`;
}

/** SOAP envelope namespaces by version. */
export const soapNamespaces = {
  '1.1': 'http://schemas.xmlsoap.org/soap/envelope/',
  '1.2': 'http://www.w3.org/2003/05/soap-envelope',
} as const;

export type SoapVersion = keyof typeof soapNamespaces;

/**
 * Wraps `bodyXml` (the operation element, already XML) in a SOAP envelope of `version`, with
 * `namespace` (when given) declared as prefix `ns` on the envelope. Returns the document text,
 * with an XML declaration.
 */
export function soapEnvelope(version: SoapVersion, bodyXml: string, namespace?: string): string {
  const ns = namespace === undefined ? '' : ` xmlns:ns="${escapeXml('namespace', namespace)}"`;
  return (
    `<?xml version="1.0" encoding="utf-8"?>` +
    `<soap:Envelope xmlns:soap="${soapNamespaces[version]}"${ns}><soap:Body>${bodyXml}</soap:Body></soap:Envelope>`
  );
}

/**
 * The headers announcing a SOAP call: 1.1 sends `text/xml` and a quoted `SOAPAction` header;
 * 1.2 sends `application/soap+xml` with the action as a media-type parameter. Throws
 * `PB_CALL_BAD_INPUT` for an action holding a quote or a line break.
 */
export function soapHeaders(version: SoapVersion, action: string): Record<string, string> {
  if (/["\r\n\\]/.test(action)) throw badInput('action', 'holds a quote, backslash or line break');
  return version === '1.1'
    ? { 'content-type': 'text/xml; charset=utf-8', soapaction: `"${action}"` }
    : { 'content-type': `application/soap+xml; charset=utf-8; action="${action}"` };
}
