import { PatchbayError } from '../diag/errors.js';
import { looksSecretName } from './credentials.js';
import type { Logger } from './log.js';
import type { SecretSet } from './secrets.js';

/**
 * Redaction at write time: what goes to the database or a log passes through a `Redactor` first.
 * Four kinds of rule, all producing copies (inputs are never modified):
 *
 * - **secrets**: every value in the `SecretSet` (resolved secrets, issued tokens), found as is,
 *   percent-encoded, form-encoded and inside base64 or base64url at any byte alignment, becomes
 *   `[redacted]`;
 * - **paths** from the manifest's `redact` list replace whole values with `[redacted]`;
 * - **names**: fields whose names say they hold credentials (`authorization`, `x-api-key`,
 *   `client_secret`, `?access_token=`) become `[redacted]`: HTTP headers, query parameters and
 *   body fields of recorded requests and responses, and the fields of events, step inputs and
 *   step outputs alike (a provider's answer carrying an `access_token`, or a webhook body with
 *   a `password`, is stored as the attempt's response record shows it). Only text values are
 *   replaced by name (`private: false` and `token_count: 12` stay), and pagination cursors and
 *   public handles named `…Token` (`NextToken`, `next_page_token`, `public_token`) are not
 *   credentials. Inside an HTTP answer envelope `{ status, headers, body }` (the `http.request`
 *   output) the object under `headers` has its names read as headers (`x-hub-signature-256`,
 *   `x-session-id`); elsewhere a `headers` key is ordinary data;
 * - **detectors** find personal data by its form anywhere in strings (and card numbers stored as
 *   JSON numbers), replacing it with `[redacted:<kind>]` so an operator sees why a value is gone:
 *   `card`, `ssn`, `nino`, `iban`, `sin`, `dni`, `email`, `phone`.
 *
 * ## Redaction paths
 *
 * A path is dot-separated. It starts at a root, then names keys:
 *
 *     event.<key>...                    the event payload (`redactEvent`)
 *     steps.<step id>.output.<key>...   a step's output (`redactStepOutput`)
 *     steps.<step id>.input.<key>...    a step's mapped inputs (`redactStepInput`)
 *
 * - `*` matches any one key of an object or any one element of an array (also in the step id
 *   position: `steps.*.output.to`);
 * - a decimal segment (`items.0.card`) matches that array element (or an object key `"0"`);
 * - a name met on an array applies to every element, as in JSONata: `event.items.card` redacts
 *   the `card` of each item;
 * - a path that ends on an object or array replaces it whole; a path that matches nothing does
 *   nothing. Keys containing a dot cannot be named: match them with `*`.
 * - paths under `trigger` and `steps.<id>.error` are accepted (the manifest allows them) but
 *   have no structured data to apply to here: error texts go through `redactText`.
 *
 * ## Detectors and their trade-offs
 *
 * - **cards** (on by default): 13 to 19 digits, possibly grouped by single spaces or dashes,
 *   that start like a card scheme's issuer numbers (Visa 4; Mastercard 51–55, 2221–2720; Amex
 *   34, 37; Discover, UnionPay, Maestro, RuPay 5x and 6x; Diners 30, 36, 38, 39; JCB 35; Mir
 *   2200–2204; RuPay 81, 82) and pass the Luhn check. Luhn lets one random digit string in ten
 *   through, so one in ten order ids or other long numbers that start like a card is redacted
 *   too: the price of never storing a card. Runs starting with 0, 1, 7 or 9 (millisecond
 *   timestamps, most database ids) are never taken for cards. A digit run inside a longer run
 *   or word (`ch_4242…`, `12345678901234567890`) is not a card.
 * - **nationalIds** (on by default): US Social Security numbers written `123-45-6789` or
 *   `123 45 6789`, without the never-issued areas 000, 666 and 900–999, group 00 or serial 0000
 *   (or the two numbers famously printed in advertising); UK National Insurance numbers
 *   (`AB 12 34 56 C`, with the letters HMRC never issues); IBANs with their country's length
 *   and a valid mod-97 check; Canadian Social Insurance Numbers written `123-456-782` that pass
 *   Luhn; Spanish DNI and NIE numbers with a correct check letter. Unseparated 9-digit SSNs and
 *   SINs are not detected: too many other numbers have that form.
 * - **emails** (off by default): `local@domain.tld`.
 * - **phones** (off by default): E.164 (`+44 20 7946 0958`) and North American numbers written
 *   with separators (`(212) 555-0123`, `212.555.0123`, `+1 212 555 0123`).
 *
 * Object keys are not scanned; numbers are only checked for cards.
 *
 * Cost: one pass of one combined regular expression over each string that holds a digit (or
 * `@` when emails are on); strings without either are not scanned at all.
 */

/** Which personal-data detectors run. */
export interface RedactDetectorOptions {
  /** @default true */
  readonly cards?: boolean | undefined;
  /** @default true */
  readonly nationalIds?: boolean | undefined;
  /** @default false */
  readonly emails?: boolean | undefined;
  /** @default false */
  readonly phones?: boolean | undefined;
}

export interface RedactorOptions {
  /** Values to scrub wherever they appear; read again on every call, so tokens added later count. */
  readonly secrets?: SecretSet | undefined;
  /** The manifest's `redact` paths (see the module comment for the grammar). @default [] */
  readonly paths?: readonly string[] | undefined;
  readonly detectors?: RedactDetectorOptions | undefined;
}

/**
 * The parts of a request that are recorded. `OutboundRequest` (engine/http/request.ts) has this
 * shape; it is restated here because lib sits below http and must not import it.
 */
export interface RequestToRedact {
  readonly method: string;
  readonly url: URL;
  /** Header names in lower case. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Uint8Array | string | undefined;
}

/** A request as stored: JSON-safe, with credentials and personal data replaced. */
export interface RedactedRequest {
  readonly method: string;
  /** The URL with sensitive query values replaced (readable: `[redacted]` is not percent-encoded). */
  readonly url: string;
  readonly headers: Record<string, string>;
  /** JSON bodies as values, form bodies and other text as strings, binary bodies as `<N bytes>`; absent without a body. */
  readonly body?: unknown;
}

/** A response as stored: JSON-safe, with credentials and personal data replaced. */
export interface RedactedResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body?: unknown;
}

/** What replaces a value found by a secret, a path or a name. */
export const redactedMarker = '[redacted]';

const alwaysSecretHeaders = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key', 'api-key', 'x-auth-token']);
/** Header names holding one of these are secret: `x-shopify-access-token`, `stripe-signature`, `x-hub-signature-256`. */
const secretHeaderWords = ['token', 'secret', 'signature', 'key', 'password', 'passwd', 'hmac', 'credential', 'auth', 'session', 'cookie'];
/** Headers whose names contain such a word but whose values operators need and which are not secret. */
const publicHeaders = new Set(['idempotency-key', 'x-idempotency-key']);

/** Query parameter and form field names that carry credentials besides those `looksSecretName` knows. */
const secretParameterNames = new Set(['key', 'sig', 'signature', 'code', 'x-amz-signature', 'x-amz-credential', 'x-amz-security-token', 'hmac', 'jwt', 'assertion']);

/** Nesting beyond this is replaced rather than walked (it also stops a cyclic log field). */
const maxDepth = 256;

interface CompiledPath {
  /** `event`, or the step id (`*` for any step) and its part. */
  readonly root: 'event' | 'ignored' | { readonly step: string; readonly part: 'input' | 'output' };
  readonly segments: readonly string[];
}

/** A position in one path while walking a value: the next segment to match is `path[index]`. */
interface Cursor {
  readonly path: readonly string[];
  readonly index: number;
}

/** What one public call needs while it walks: built once per call. */
interface Scan {
  readonly secrets: RegExp | undefined;
  /** Redact fields by name (recorded requests and responses, log fields). */
  readonly names: boolean;
  readonly ancestors: Set<object>;
}

/**
 * Scrubs values before they are stored or logged. Build one per integration revision (its paths
 * and detectors come from the manifest) and share it: it keeps no state besides a cache of its
 * secret patterns.
 */
export class Redactor {
  private readonly secrets: SecretSet | undefined;
  private readonly eventPaths: (readonly string[])[] = [];
  private readonly stepPaths: { step: string; part: 'input' | 'output'; segments: readonly string[] }[] = [];
  private readonly detector: RegExp | undefined;
  private readonly detectCardNumbers: boolean;
  private readonly prefilter: RegExp;
  private secretsKey = '';
  private secretPattern: RegExp | undefined;

  /**
   * Throws PB_MANIFEST_BAD_VALUE (terminal) for a path that does not start at `event`,
   * `trigger` or `steps.<id>.output|input|error`, or that has an empty segment.
   */
  constructor(options: RedactorOptions = {}) {
    this.secrets = options.secrets;
    for (const text of options.paths ?? []) {
      const path = compilePath(text);
      if (path.root === 'event') this.eventPaths.push(path.segments);
      else if (path.root !== 'ignored') this.stepPaths.push({ ...path.root, segments: path.segments });
    }
    const detectors = options.detectors ?? {};
    this.detectCardNumbers = detectors.cards ?? true;
    const enabled = {
      cards: this.detectCardNumbers,
      nationalIds: detectors.nationalIds ?? true,
      emails: detectors.emails ?? false,
      phones: detectors.phones ?? false,
    };
    this.detector = detectorPattern(enabled);
    this.prefilter = enabled.emails ? /[0-9@]/ : /[0-9]/;
  }

  /**
   * A copy of an event payload with `event…` paths, credential field names, detectors and
   * secrets applied. Providers' events are not meant to carry credentials, but webhook bodies
   * can (a `password` in a form post, Stripe's `client_secret`, Slack's verification `token`),
   * and what is stored here is also what mappings read: a mapping that reads such a field gets
   * `[redacted]`.
   */
  redactEvent(payload: unknown): unknown {
    return this.walk(payload, rootCursors(this.eventPaths), this.scan(true), 0);
  }

  /** A copy of a step's mapped inputs with `steps.<id>.input…` paths, credential field names, detectors and secrets applied. */
  redactStepInput(stepId: string, inputs: unknown): unknown {
    return this.walk(inputs, this.stepCursors(stepId, 'input'), this.scan(true), 0);
  }

  /**
   * A copy of a step's output with `steps.<id>.output…` paths, credential field names (as
   * `redactResponse` applies them to the same output), detectors and secrets applied.
   */
  redactStepOutput(stepId: string, output: unknown): unknown {
    return this.walk(output, this.stepCursors(stepId, 'output'), this.scan(true), 0);
  }

  /** `text` with secrets and detected personal data replaced (error messages, log lines, provider messages). */
  redactText(text: string): string {
    return this.text(text, this.scan(false));
  }

  /**
   * A copy of HTTP headers: credential headers (`authorization`, `proxy-authorization`,
   * `cookie`, `set-cookie`, `x-api-key`, `api-key`, `x-auth-token`, any name containing token,
   * secret, signature, key, password, hmac, credential, auth or session, except
   * `idempotency-key`) and the names in `extraSecretHeaders` (any case) become `[redacted]`;
   * other values go through `redactText`.
   */
  redactHeaders(headers: Readonly<Record<string, string>>, extraSecretHeaders: readonly string[] = []): Record<string, string> {
    return this.headers(headers, extraSecretHeaders, this.scan(true));
  }

  /**
   * The URL as text with credentials removed: user and password, query values whose names hold
   * credentials (`access_token`, `api_key`, `key`, `sig`, `X-Amz-Signature`, `code`), and secrets
   * or personal data anywhere in the path, query or fragment. The rest is kept as it was
   * written, and `[redacted]` is left unencoded so the URL stays readable.
   */
  redactUrl(url: URL | string): string {
    return this.url(url, this.scan(true));
  }

  /**
   * A JSON-safe record of an outbound request: the URL as `redactUrl`, headers as
   * `redactHeaders`, and the body decoded by its content type: JSON parsed and redacted
   * structurally (field names that hold credentials too), form bodies field by field, other
   * UTF-8 text through `redactText`, anything else as `<N bytes>`.
   */
  redactRequest(request: RequestToRedact): RedactedRequest {
    const scan = this.scan(true);
    const record: { method: string; url: string; headers: Record<string, string>; body?: unknown } = {
      method: request.method,
      url: this.url(request.url, scan),
      headers: this.headers(request.headers, [], scan),
    };
    if (request.body !== undefined) record.body = this.body(request.body, request.headers['content-type'], scan);
    return record;
  }

  /**
   * A JSON-safe record of a response: headers as `redactHeaders`, and its parsed output (or raw
   * body, as `redactRequest` reads it) redacted structurally with credential field names,
   * detectors and secrets. Step paths are not applied here: pass an output already through
   * `redactStepOutput`.
   */
  redactResponse(status: number, headers: Readonly<Record<string, string>>, output: unknown): RedactedResponse {
    const scan = this.scan(true);
    const record: { status: number; headers: Record<string, string>; body?: unknown } = { status, headers: this.headers(headers, [], scan) };
    if (output !== undefined) {
      record.body = typeof output === 'string' || output instanceof Uint8Array ? this.body(output, headers['content-type'], scan) : this.walk(output, [], scan, 0);
    }
    return record;
  }

  /** A copy of log fields: as a response body, plus errors as `{ name, message, code }` and URLs as `redactUrl`. */
  redactFields(fields: Readonly<Record<string, unknown>>): Record<string, unknown> {
    return this.walk(fields, [], this.scan(true), 0) as Record<string, unknown>;
  }

  // -------------------------------------------------------------------------------------------

  private scan(names: boolean): Scan {
    return { secrets: this.currentSecrets(), names, ancestors: new Set() };
  }

  /** The secret pattern, rebuilt when the set has changed since the last call. */
  private currentSecrets(): RegExp | undefined {
    if (this.secrets === undefined) return undefined;
    const values = this.secrets.values();
    const key = values.join('\u0000');
    if (key !== this.secretsKey) {
      this.secretsKey = key;
      this.secretPattern = secretPattern(values);
    }
    return this.secretPattern;
  }

  private stepCursors(stepId: string, part: 'input' | 'output'): Cursor[] | typeof matched {
    return rootCursors(this.stepPaths.filter((path) => path.part === part && (path.step === stepId || path.step === '*')).map((path) => path.segments));
  }

  private text(text: string, scan: Scan): string {
    let out = text;
    if (scan.secrets !== undefined) {
      scan.secrets.lastIndex = 0;
      if (scan.secrets.test(out)) out = out.replace(scan.secrets, redactedMarker);
    }
    if (this.detector !== undefined && this.prefilter.test(out)) out = detect(out, this.detector);
    return out;
  }

  private number(value: number): unknown {
    // A card number stored as a JSON number: 13 to 19 digits as printed (below 1e21, no exponent).
    if (this.detectCardNumbers && Number.isInteger(value) && Math.abs(value) >= 1e12 && Math.abs(value) < 1e19) {
      const digits = String(Math.abs(value));
      if (isCardNumber(digits)) return '[redacted:card]';
    }
    return value;
  }

  /** `headerNames`: the value's own keys are header names (it sits under a `headers` key), of an HTTP envelope or not. */
  private walk(value: unknown, cursors: readonly Cursor[] | typeof matched, scan: Scan, depth: number, headerNames: HeaderContext = false): unknown {
    if (cursors === matched) return redactedMarker;
    if (typeof value === 'string') return this.text(value, scan);
    if (typeof value === 'number') return this.number(value);
    if (value === null || typeof value !== 'object') return value;
    if (depth >= maxDepth) return '[redacted:too deep]';
    if (value instanceof Uint8Array) return `<${value.byteLength} bytes>`;
    if (value instanceof URL) return this.url(value, scan);
    if (value instanceof Date) return Number.isNaN(value.getTime()) ? String(value) : value.toISOString();
    if (scan.ancestors.has(value)) return '[circular]';
    scan.ancestors.add(value);
    try {
      if (Array.isArray(value)) {
        const out: unknown[] = new Array(value.length);
        for (let i = 0; i < value.length; i++) {
          const next = advance(cursors, String(i), true);
          out[i] = this.walk(value[i], next, scan, depth + 1);
        }
        return out;
      }
      const source: Record<string, unknown> =
        value instanceof Error ? errorFields(value) : (value as Record<string, unknown>);
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(source)) {
        const child = source[key];
        const next = advance(cursors, key, false);
        // Names decide only for text: a credential is a string, while `private: false` or
        // `token_count: 12` are data that conditions and mappings read.
        const secret =
          scan.names && typeof child === 'string' && child !== '' && (isSecretField(key) || (headerNames !== false && isSecretHeaderIn(key.toLowerCase(), headerNames)));
        // Under a `headers` key the names are header names. The substring rules (`key`, `auth`,
        // `token` anywhere in the name) apply only inside an HTTP answer envelope `{ status,
        // headers, body }`; elsewhere (an e-mail webhook's `Keywords`, `Author`) only the
        // unambiguous credential headers do.
        const childHeaders: HeaderContext = scan.names && key.toLowerCase() === 'headers' && !Array.isArray(child) ? (typeof source.status === 'number' ? 'envelope' : 'plain') : false;
        const copy = secret ? redactedMarker : this.walk(child, next, scan, depth + 1, childHeaders);
        if (key === '__proto__') Object.defineProperty(out, key, { value: copy, enumerable: true, writable: true, configurable: true });
        else out[key] = copy;
      }
      return out;
    } finally {
      scan.ancestors.delete(value);
    }
  }

  private headers(headers: Readonly<Record<string, string>>, extra: readonly string[], scan: Scan): Record<string, string> {
    const extraNames = extra.map((name) => name.toLowerCase());
    const out: Record<string, string> = {};
    for (const name of Object.keys(headers)) {
      const value = headers[name]!;
      const lower = name.toLowerCase();
      const secret = extraNames.includes(lower) || isSecretHeader(lower);
      const copy = secret ? redactedMarker : this.text(String(value), scan);
      if (name === '__proto__') Object.defineProperty(out, name, { value: copy, enumerable: true, writable: true, configurable: true });
      else out[name] = copy;
    }
    return out;
  }

  private url(url: URL | string, scan: Scan): string {
    let parsed: URL;
    try {
      parsed = typeof url === 'string' ? new URL(url) : url;
    } catch {
      // Not a URL: it can still hold a secret or a token-looking query, so treat it as text.
      return this.text(String(url), scan).replace(/([?&][^=&#\s]*=)[^&#\s]*/g, (whole, name: string) =>
        isSecretParameter(safeDecode(name.slice(1, -1))) ? `${name}${redactedMarker}` : whole,
      );
    }
    const credentials = parsed.username !== '' || parsed.password !== '' ? `${redactedMarker}@` : '';
    const host = `${parsed.protocol}//${credentials}${parsed.host}`;
    const path = this.text(parsed.pathname, scan);
    const query = parsed.search === '' ? '' : `?${this.pairs(parsed.search.slice(1), scan)}`;
    const fragment = parsed.hash === '' ? '' : this.text(parsed.hash, scan);
    return `${host}${path}${query}${fragment}`;
  }

  /** `a=1&b=2` (a query or a form body) with each value redacted by its name, secrets and detectors. */
  private pairs(text: string, scan: Scan): string {
    return text
      .split('&')
      .map((pair) => {
        const equals = pair.indexOf('=');
        const rawName = equals < 0 ? pair : pair.slice(0, equals);
        const name = this.text(rawName, scan);
        if (equals < 0) return name;
        if (isSecretParameter(safeDecode(rawName))) return `${name}=${redactedMarker}`;
        const raw = pair.slice(equals + 1);
        const decoded = safeDecode(raw);
        const redacted = this.text(decoded, scan);
        // Unchanged values keep their original encoding; changed ones are shown decoded.
        return `${name}=${redacted === decoded ? this.text(raw, scan) : redacted}`;
      })
      .join('&');
  }

  private body(body: Uint8Array | string, contentType: string | undefined, scan: Scan): unknown {
    const type = (contentType ?? '').toLowerCase();
    let text: string;
    if (typeof body === 'string') {
      text = body;
    } else {
      const textual = type === '' || /json|text\/|xml|x-www-form-urlencoded|graphql|javascript/.test(type);
      const decoded = textual ? decodeUtf8(body) : undefined;
      if (decoded === undefined) return `<${body.byteLength} bytes>`;
      text = decoded;
    }
    if (type.includes('x-www-form-urlencoded')) return this.pairs(text, scan);
    if (type.includes('json') || ((type === '' || type.startsWith('text/plain')) && /^\s*[[{]/.test(text))) {
      try {
        return this.walk(JSON.parse(text), [], scan, 0);
      } catch {
        // Declared JSON that does not parse is stored as text, redacted as text.
      }
    }
    return this.text(text, scan);
  }
}

/**
 * A logger that passes every line through a redactor first: the message through `redactText`,
 * the fields through `redactFields` (credential field names, detectors, secrets, errors and URLs
 * made safe). Use it wherever a logger is handed to engine code.
 */
export function redactingLogger(logger: Logger, redactor: Redactor): Logger {
  return {
    log(level, message, fields) {
      logger.log(level, redactor.redactText(message), fields === undefined ? undefined : redactor.redactFields(fields));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Paths

function compilePath(text: string): CompiledPath {
  const parts = text.split('.');
  const bad = (why: string) =>
    new PatchbayError('PB_MANIFEST_BAD_VALUE', `redact path "${text}" ${why}: write event.<key>…, steps.<id>.output.<key>… or steps.<id>.input.<key>… (\`*\` matches any one key or element)`);
  if (parts.some((part) => part === '')) throw bad('has an empty segment');
  if (parts[0] === 'event') return { root: 'event', segments: parts.slice(1) };
  if (parts[0] === 'trigger') return { root: 'ignored', segments: parts.slice(1) };
  if (parts[0] === 'steps' && parts.length >= 3) {
    const part = parts[2];
    if (part === 'output' || part === 'input') return { root: { step: parts[1]!, part }, segments: parts.slice(3) };
    if (part === 'error') return { root: 'ignored', segments: parts.slice(3) };
  }
  throw bad('does not start at event, trigger or steps.<id>.output|input|error');
}

const matched = Symbol('matched');

function rootCursors(paths: readonly (readonly string[])[]): Cursor[] | typeof matched {
  if (paths.some((path) => path.length === 0)) return matched;
  return paths.map((path) => ({ path, index: 0 }));
}

/**
 * The cursors for a child named `key`: each cursor whose next segment is `*` or `key` moves on;
 * on an array, a cursor whose next segment is a name stays where it is (the name applies to
 * every element). `matched` when some path ends at this child.
 */
function advance(cursors: readonly Cursor[] | typeof matched, key: string, inArray: boolean): Cursor[] | typeof matched {
  if (cursors === matched) return matched;
  if (cursors.length === 0) return none;
  const next: Cursor[] = [];
  for (const cursor of cursors) {
    const segment = cursor.path[cursor.index];
    if (segment === '*' || segment === key) {
      if (cursor.index + 1 === cursor.path.length) return matched;
      next.push({ path: cursor.path, index: cursor.index + 1 });
    } else if (inArray && !/^\d+$/.test(segment!)) {
      next.push(cursor);
    }
  }
  return next;
}

const none: Cursor[] = [];

// ---------------------------------------------------------------------------------------------
// Names

/** Whether a value's keys are header names: of an HTTP answer envelope, of something else, or not headers. */
type HeaderContext = 'envelope' | 'plain' | false;

function isSecretHeaderIn(lower: string, context: 'envelope' | 'plain'): boolean {
  return context === 'envelope' ? isSecretHeader(lower) : alwaysSecretHeaders.has(lower);
}

function isSecretHeader(lower: string): boolean {
  if (alwaysSecretHeaders.has(lower)) return true;
  if (publicHeaders.has(lower)) return false;
  return secretHeaderWords.some((word) => lower.includes(word));
}

/** Query parameters and form fields: `access_token`, `api_key`, `key`, `sig`, `X-Amz-Signature`, `oauth_signature`, `code`. */
function isSecretParameter(name: string): boolean {
  return secretParameterNames.has(name.toLowerCase()) || isSecretField(name);
}

/** Body and log fields: `client_secret`, `refreshToken`, `password`, `apiKey`, `authorization`, `webhook_signature`. */
// Field names repeat from one payload to the next (`id`, `amount`, `customer`), and deciding costs
// a few regular expressions: the answers are remembered, up to a bound (names are attacker-chosen).
const secretFieldAnswers = new Map<string, boolean>();
const maxRememberedFieldNames = 10_000;

function isSecretField(name: string): boolean {
  const known = secretFieldAnswers.get(name);
  if (known !== undefined) return known;
  const answer = decideSecretField(name);
  if (secretFieldAnswers.size >= maxRememberedFieldNames) secretFieldAnswers.clear();
  secretFieldAnswers.set(name, answer);
  return answer;
}

function decideSecretField(name: string): boolean {
  const words = name.replace(/([a-z0-9])([A-Z])/g, '$1 $2').split(/[^A-Za-z0-9]+/).filter(Boolean).map((word) => word.toLowerCase());
  const last = words.at(-1);
  const before = words.at(-2);
  // Pagination cursors and public handles are called tokens too (AWS `NextToken`, Google
  // `nextPageToken`, Plaid `public_token`); mappings pass them on, and they open nothing alone.
  if (last === 'token' && before !== undefined && publicTokenWords.has(before)) return false;
  // `private` alone is a flag (GitHub's `repository.private`), not a private key.
  if (words.length === 1 && last === 'private') return false;
  if (looksSecretName(name)) return true;
  return last === 'authorization' || last === 'signature' || last === 'hmac' || last === 'cookie';
}

const publicTokenWords = new Set(['next', 'page', 'prev', 'previous', 'sync', 'continuation', 'cursor', 'pagination', 'start', 'resume', 'device', 'push', 'public', 'link']);

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    // Malformed percent-encoding: check the text as written.
    return text;
  }
}

function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    // Not UTF-8: the caller stores its size only.
    return undefined;
  }
}

function errorFields(error: Error): Record<string, unknown> {
  const fields: Record<string, unknown> = { name: error.name, message: error.message };
  const code = (error as { code?: unknown }).code;
  if (code !== undefined) fields.code = code;
  return fields;
}

// ---------------------------------------------------------------------------------------------
// Secrets

/**
 * One pattern for every form each secret travels in: as is, percent-encoded, form-encoded, and
 * the base64 and base64url of it at each byte alignment (trimmed to the characters that depend
 * on the secret alone, as `SecretSet.redact` does), longest first so a longer form wins.
 */
function secretPattern(values: readonly string[]): RegExp | undefined {
  const forms = new Set<string>();
  for (const value of values) {
    forms.add(value);
    forms.add(encodeURIComponent(value));
    forms.add(new URLSearchParams({ v: value }).toString().slice(2));
    const bytes = Buffer.from(value, 'utf8');
    for (let shift = 0; shift < 3; shift += 1) {
      const encoded = Buffer.concat([Buffer.alloc(shift), bytes]).toString('base64');
      const start = shift === 0 ? 0 : shift === 1 ? 2 : 3;
      const tail = (bytes.length + shift) % 3;
      const core = encoded.slice(start, encoded.length - (tail === 0 ? 0 : 4));
      if (core.length >= 8) {
        forms.add(core);
        forms.add(core.replace(/\+/g, '-').replace(/\//g, '_'));
      }
    }
  }
  forms.delete('');
  if (forms.size === 0) return undefined;
  const sorted = [...forms].sort((a, b) => b.length - a.length);
  return new RegExp(sorted.map((form) => form.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|'), 'g');
}

// ---------------------------------------------------------------------------------------------
// Detectors

interface EnabledDetectors {
  readonly cards: boolean;
  readonly nationalIds: boolean;
  readonly emails: boolean;
  readonly phones: boolean;
}

// Each alternative is a named group; `detect` validates what it matched. Bounded repetitions
// only, so no alternative can backtrack more than a constant amount per position.
const detectorSources = {
  iban: '(?<iban>(?<![A-Za-z0-9])[A-Z]{2}\\d{2}(?: ?[A-Z0-9]){11,30}(?![a-z0-9]))',
  nino: '(?<nino>(?<![A-Za-z0-9])[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\\d{2} ?\\d{2} ?\\d{2} ?[A-D](?![A-Za-z0-9]))',
  dni: '(?<dni>(?<![A-Za-z0-9-])(?:\\d{8}|[XYZ]-?\\d{7})-?[A-Z](?![A-Za-z0-9]))',
  email: '(?<email>(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\\.){1,8}[A-Za-z]{2,24}(?![A-Za-z0-9-]))',
  e164: '(?<e164>(?<![\\w+])\\+[1-9](?:[ -]?\\d){6,14}(?![\\w])(?![ -]\\d))',
  ssn: '(?<ssn>(?<![\\w-])\\d{3}(?:-\\d{2}-|\\x20\\d{2}\\x20)\\d{4}(?![\\w-]))',
  sin: '(?<sin>(?<![\\w-])\\d{3}(?:-\\d{3}-|\\x20\\d{3}\\x20)\\d{3}(?![\\w-]))',
  nanp: '(?<nanp>(?<![\\w+])(?<!\\w[.-])(?:\\+?1[ .-]?)?(?:\\(\\d{3}\\) ?|\\d{3}[ .-])\\d{3}[ .-]\\d{4}(?![\\w])(?![.-]\\d))',
  card: '(?<card>(?<![\\w+])(?<!\\d[.,-])\\d(?:[ -]?\\d){12,18}(?![\\w])(?![.,]\\d))',
} as const;

function detectorPattern(enabled: EnabledDetectors): RegExp | undefined {
  const parts: string[] = [];
  if (enabled.nationalIds) parts.push(detectorSources.iban, detectorSources.nino, detectorSources.dni);
  if (enabled.emails) parts.push(detectorSources.email);
  if (enabled.phones) parts.push(detectorSources.e164);
  if (enabled.nationalIds) parts.push(detectorSources.ssn, detectorSources.sin);
  if (enabled.phones) parts.push(detectorSources.nanp);
  if (enabled.cards) parts.push(detectorSources.card);
  return parts.length === 0 ? undefined : new RegExp(parts.join('|'), 'g');
}

/** `text` with every validated match replaced by `[redacted:<kind>]`. */
function detect(text: string, pattern: RegExp): string {
  let out = '';
  let copied = 0;
  pattern.lastIndex = 0;
  for (let match = pattern.exec(text); match !== null; match = pattern.exec(text)) {
    const found = validate(match);
    if (found === undefined) {
      // Not valid as matched: look again from the next character (another kind may start there).
      pattern.lastIndex = match.index + 1;
      continue;
    }
    out += `${text.slice(copied, match.index)}[redacted:${found.kind}]`;
    copied = match.index + found.length;
    pattern.lastIndex = copied;
  }
  return copied === 0 ? text : out + text.slice(copied);
}

function validate(match: RegExpExecArray): { kind: string; length: number } | undefined {
  const groups = match.groups!;
  const whole = match[0];
  if (groups.card !== undefined) {
    const length = cardLength(whole);
    return length === undefined ? undefined : { kind: 'card', length };
  }
  if (groups.iban !== undefined) {
    const length = ibanLength(whole);
    return length === undefined ? undefined : { kind: 'iban', length };
  }
  const digits = whole.replace(/\D/g, '');
  if (groups.ssn !== undefined) return isSsn(digits) ? { kind: 'ssn', length: whole.length } : undefined;
  if (groups.nino !== undefined) return isNino(whole.replace(/ /g, '')) ? { kind: 'nino', length: whole.length } : undefined;
  if (groups.sin !== undefined) return digits[0] !== '0' && digits[0] !== '8' && luhn(digits) ? { kind: 'sin', length: whole.length } : undefined;
  if (groups.dni !== undefined) return isDni(whole.replace(/-/g, '')) ? { kind: 'dni', length: whole.length } : undefined;
  if (groups.email !== undefined) return { kind: 'email', length: whole.length };
  if (groups.e164 !== undefined) return { kind: 'phone', length: whole.length };
  if (groups.nanp !== undefined) {
    const national = digits.length === 11 ? digits.slice(1) : digits;
    return /^[2-9]\d{2}[2-9]/.test(national) ? { kind: 'phone', length: whole.length } : undefined;
  }
  return undefined;
}

/**
 * Length of the card number at the start of a matched digit run, or undefined. A run with
 * separators may go on past the card (`4242 4242 4242 4242 12/25` reads one more group): its
 * prefixes of whole groups are tried, longest first.
 */
function cardLength(run: string): number | undefined {
  const digits = run.replace(/[ -]/g, '');
  if (digits.length === run.length) return isCardNumber(digits) ? run.length : undefined;
  for (let end = run.length; end > 0; end = run.slice(0, end).search(/[ -]\d*$/)) {
    const candidate = run.slice(0, end).replace(/[ -]/g, '');
    if (candidate.length < 13) return undefined;
    if (candidate.length <= 19 && isCardNumber(candidate)) return end;
  }
  return undefined;
}

/** Whether 13 to 19 digits start like a card scheme's issuer numbers and pass Luhn. */
export function isCardNumber(digits: string): boolean {
  return digits.length >= 13 && digits.length <= 19 && hasIssuerPrefix(digits) && luhn(digits);
}

function hasIssuerPrefix(digits: string): boolean {
  const first = digits[0];
  if (first === '4' || first === '5' || first === '6') return true;
  const two = Number(digits.slice(0, 2));
  const four = Number(digits.slice(0, 4));
  if (first === '3') return two === 30 || two === 34 || two === 35 || two === 36 || two === 37 || two === 38 || two === 39;
  if (first === '2') return (four >= 2221 && four <= 2720) || (four >= 2200 && four <= 2204);
  if (first === '8') return two === 81 || two === 82;
  return false;
}

/** The Luhn (mod 10) check used by card numbers and Canadian SINs. */
export function luhn(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

function isSsn(digits: string): boolean {
  const area = digits.slice(0, 3);
  if (area === '000' || area === '666' || area[0] === '9') return false;
  if (digits.slice(3, 5) === '00' || digits.slice(5) === '0000') return false;
  // Printed on a wallet insert (1938) and in an advertisement (1962); never anyone's.
  return digits !== '078051120' && digits !== '219099999';
}

const invalidNinoPrefixes = new Set(['BG', 'GB', 'KN', 'NK', 'NT', 'TN', 'ZZ']);

function isNino(compact: string): boolean {
  return !invalidNinoPrefixes.has(compact.slice(0, 2));
}

const dniLetters = 'TRWAGMYFPDXBNJZSQVHLCKE';

function isDni(compact: string): boolean {
  const number = compact.slice(0, -1).replace(/^X/, '0').replace(/^Y/, '1').replace(/^Z/, '2');
  return dniLetters[Number(number) % 23] === compact.at(-1);
}

/** IBAN lengths by country (the SWIFT registry). */
const ibanLengths: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BI: 27, BR: 29, BY: 28, CH: 21, CR: 22, CY: 28,
  CZ: 24, DE: 22, DJ: 27, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18, FK: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23,
  GL: 18, GR: 27, GT: 28, HN: 28, HR: 21, HU: 28, IE: 22, IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28,
  LC: 32, LI: 21, LT: 20, LU: 20, LV: 21, LY: 25, MC: 27, MD: 24, ME: 22, MK: 19, MN: 20, MR: 27, MT: 31, MU: 30, NI: 28,
  NL: 18, NO: 15, OM: 23, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, RU: 33, SA: 24, SC: 31, SD: 18, SE: 24,
  SI: 19, SK: 24, SM: 27, SO: 23, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26, UA: 29, VA: 22, VG: 24, XK: 20, YE: 30,
};

/**
 * Length of the IBAN at the start of a matched run, or undefined: exactly the country's number
 * of characters (spaces between groups allowed, ending at a group boundary) with a valid mod-97
 * check. The run may go on past the IBAN (`GB82 WEST … 32 EUR`).
 */
function ibanLength(run: string): number | undefined {
  const expected = ibanLengths[run.slice(0, 2)];
  if (expected === undefined) return undefined;
  let count = 0;
  let end = 0;
  while (end < run.length && count < expected) {
    if (run[end] !== ' ') count++;
    end++;
  }
  if (count !== expected || (end < run.length && run[end] !== ' ')) return undefined;
  return ibanChecksumValid(run.slice(0, end).replace(/ /g, '')) ? end : undefined;
}

/** ISO 13616 mod-97: the country and check digits moved to the end, letters as 10–35, remainder 1. */
function ibanChecksumValid(iban: string): boolean {
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let remainder = 0;
  for (const c of rearranged) {
    const code = c.charCodeAt(0);
    const value = code >= 65 ? code - 55 : code - 48;
    remainder = value >= 10 ? (remainder * 100 + value) % 97 : (remainder * 10 + value) % 97;
  }
  return remainder === 1;
}
