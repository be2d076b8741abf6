import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { PatchbayError } from '../../diag/errors.js';
import { systemClock, type Clock } from '../../lib/clock.js';
import type { OutboundRequest } from '../request.js';
import type { Signer } from './signer.js';

/** An AWS access key pair, resolved, and where it is used. */
export interface SigV4Options {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** For temporary credentials (STS); sent and signed as `x-amz-security-token`. */
  readonly sessionToken?: string;
  /** `us-east-1`. */
  readonly region: string;
  /** The service's signing name (`s3`, `sqs`, `ses`, `execute-api`). */
  readonly service: string;
  /** The signing date comes from it. @default systemClock */
  readonly clock?: Clock;
}

// S3 signs the path as sent (encoded once, not twice) and requires `x-amz-content-sha256`.
const s3Services = new Set(['s3', 's3-object-lambda', 's3express']);

// RFC 3986 unreserved characters stay; everything else is percent-encoded, as SigV4 wants.
const escapeUri = (text: string): string =>
  encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** Percent-decodes, leaving text with a malformed escape as it is (it is then encoded as text). */
function decodeLeniently(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    // A stray `%` is data, not an escape: encoding it as `%25` keeps sent and signed text equal.
    return text;
  }
}

/** The query's parameters, decoded (`+` read as a space); `bare` when written without `=` (`?acl`). */
function queryPairs(search: string): { name: string; value: string; bare: boolean }[] {
  return search
    .slice(1)
    .split('&')
    .filter((part) => part !== '')
    .map((part) => {
      const equals = part.indexOf('=');
      const decode = (text: string) => decodeLeniently(text.replace(/\+/g, ' '));
      return equals < 0
        ? { name: decode(part), value: '', bare: true }
        : { name: decode(part.slice(0, equals)), value: decode(part.slice(equals + 1)), bare: false };
    });
}

/**
 * AWS Signature Version 4 (header form) with @smithy/signature-v4, the signer of the AWS SDK.
 * Adds `x-amz-date` (from the clock), `x-amz-security-token` when there is a session token,
 * `x-amz-content-sha256` for S3 (the hex SHA-256 of the body), and `authorization`. Every header
 * present is signed except those AWS never signs (`user-agent`, `authorization`, …) and `date`
 * (dropped: `x-amz-date` replaces it), so sign after every other header is set. The path and the
 * query are re-encoded strictly (RFC 3986: every character but `A-Z a-z 0-9 - . _ ~` escaped, a
 * `+` in the query read as a space, `?acl` kept bare) and sent that way, so what is sent is what
 * is signed; the path is then URI-encoded once more in the signature for every service but S3, as
 * AWS requires.
 * Throws PB_AUTH_BAD_SETTINGS when region or service is empty.
 */
export function createSigV4Signer(options: SigV4Options): Signer {
  const { region, service } = options;
  if (region === '') throw new PatchbayError('PB_AUTH_BAD_SETTINGS', 'AWS SigV4 needs a region (set the connection variable `region`)');
  if (service === '') throw new PatchbayError('PB_AUTH_BAD_SETTINGS', "AWS SigV4 needs the service's signing name (the provider's `service`)");
  const clock = options.clock ?? systemClock;
  const s3 = s3Services.has(service);
  const signer = new SignatureV4({
    service,
    region,
    credentials: {
      accessKeyId: options.accessKeyId,
      secretAccessKey: options.secretAccessKey,
      sessionToken: options.sessionToken,
    },
    sha256: Hash.bind(null, 'sha256'),
    uriEscapePath: !s3,
    applyChecksum: s3,
  });
  return {
    sign: async (request: OutboundRequest) => {
      const pairs = queryPairs(request.url.search);
      const query: Record<string, string | string[]> = {};
      for (const { name, value } of pairs) {
        const earlier = query[name];
        query[name] = earlier === undefined ? value : [...(Array.isArray(earlier) ? earlier : [earlier]), value];
      }
      const url = new URL(request.url);
      url.pathname = url.pathname.split('/').map((segment) => escapeUri(decodeLeniently(segment))).join('/');
      if (pairs.length > 0) url.search = pairs.map(({ name, value, bare }) => (bare ? escapeUri(name) : `${escapeUri(name)}=${escapeUri(value)}`)).join('&');
      const signed = await signer.sign(
        {
          method: request.method,
          protocol: url.protocol,
          hostname: url.hostname,
          ...(url.port === '' ? {} : { port: Number(url.port) }),
          path: url.pathname,
          query,
          // The host is always signed; the transport sends `url.host`, the same value.
          headers: { ...request.headers, host: request.headers.host ?? request.url.host },
          ...(request.body === undefined ? {} : { body: request.body }),
        },
        { signingDate: new Date(clock.now()) },
      );
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(signed.headers)) headers[name.toLowerCase()] = value;
      if (request.headers.host === undefined) delete headers.host;
      return { ...request, url, headers };
    },
  };
}
