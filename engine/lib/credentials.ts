/** How serious a finding is: a live credential, or a provider's test-mode one. */
export type CredentialKind = 'live' | 'test';

/** A credential format recognised anywhere in a text. */
interface KeyPattern {
  readonly label: string;
  readonly pattern: RegExp;
  readonly kind: CredentialKind;
  /** Only match when the line's key names a secret (for formats too generic to match alone). */
  readonly needsSecretKey?: boolean;
  /** Only match when the text mixes letters and digits, as generated keys do and slugs do not. */
  readonly mixed?: boolean;
}

// Formats published by each provider (or by secret scanners that follow them). The match is
// bounded on both sides so identifiers that merely contain a prefix do not match.
const keyPatterns: readonly KeyPattern[] = [
  { label: 'Stripe live secret key', pattern: /\b(?:sk|rk)_live_[0-9A-Za-z]{10,}/g, kind: 'live' },
  { label: 'Stripe webhook signing secret', pattern: /\bwhsec_[0-9A-Za-z+/=]{20,}/g, kind: 'live' },
  { label: 'Stripe test secret key', pattern: /\b(?:sk|rk)_test_[0-9A-Za-z]{10,}/g, kind: 'test' },
  // AWS's documentation key ends in EXAMPLE (AKIAIOSFODNN7EXAMPLE); real ids never do.
  { label: 'AWS access key id', pattern: /\b(?:AKIA|ASIA|ABIA|ACCA)(?![0-9A-Z]{9}EXAMPLE\b)[0-9A-Z]{16}\b/g, kind: 'live' },
  { label: 'Slack token', pattern: /\bxox[abposr]-[0-9]{5,}-[0-9A-Za-z-]{8,}/g, kind: 'live' },
  { label: 'Slack app token', pattern: /\bxapp-[0-9]-[0-9A-Za-z-]{10,}/g, kind: 'live' },
  { label: 'Slack webhook URL', pattern: /hooks\.slack\.com\/services\/T[0-9A-Z]+\/B[0-9A-Z]+\/[0-9A-Za-z]{16,}/g, kind: 'live' },
  { label: 'GitHub token', pattern: /\bgh[pousr]_[0-9A-Za-z]{36,}/g, kind: 'live' },
  { label: 'GitHub fine-grained token', pattern: /\bgithub_pat_[0-9A-Za-z_]{22,}/g, kind: 'live' },
  { label: 'OpenAI project key', pattern: /\bsk-(?:proj|svcacct|admin)-[0-9A-Za-z_-]{40,}/g, kind: 'live', mixed: true },
  { label: 'OpenAI API key', pattern: /\bsk-[0-9A-Za-z]{32,}(?![0-9A-Za-z_-])/g, kind: 'live', mixed: true },
  { label: 'SendGrid API key', pattern: /\bSG\.[0-9A-Za-z_-]{16,}\.[0-9A-Za-z_-]{16,}/g, kind: 'live' },
  { label: 'Shopify access token', pattern: /\bshp(?:at|ca|pa|ss)_[0-9a-fA-F]{32}\b/g, kind: 'live' },
  { label: 'Google API key', pattern: /\bAIza[0-9A-Za-z_-]{35}\b/g, kind: 'live' },
  { label: 'Mailchimp API key', pattern: /\b[0-9a-f]{32}-us[0-9]{1,2}\b/g, kind: 'live' },
  { label: 'Plaid access token', pattern: /\baccess-(?:sandbox|development|production)-[0-9a-f]{8}-[0-9a-f-]{27}\b/g, kind: 'live' },
  { label: 'private key', pattern: /-----BEGIN (?:[A-Z]+ )*PRIVATE KEY( BLOCK)?-----/g, kind: 'live' },
  // Bounded repetitions: an unbounded scheme or user part would rescan long runs such as
  // `a.a.a.…` from every position (quadratic time on a 1 MiB file).
  { label: 'password in a URL', pattern: /\b[a-z][a-z0-9+.-]{0,19}:\/\/[^\s:/@'"]{1,256}:[^\s/@'"{}]{1,256}@/g, kind: 'live' },
  // Twilio auth tokens (and many others) are 32 hex digits with no prefix: only flag them where
  // the key says it holds a secret, so ids and hashes elsewhere do not trip the check.
  { label: 'auth token (32 hex digits)', pattern: /(?<![0-9A-Za-z])[0-9a-f]{32}(?![0-9A-Za-z-])/g, kind: 'live', needsSecretKey: true },
];

const secretWords = new Set([
  'token', 'secret', 'secrets', 'password', 'passwd', 'pwd', 'passphrase', 'auth', 'credential', 'credentials',
  'private', 'apikey', 'accesskey', 'secretkey', 'privatekey', 'signingkey', 'authtoken', 'bearer',
]);

/** Splits `authToken`, `auth_token`, `x-api-key` into lowercase words. */
function words(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w.toLowerCase());
}

/** A credential-looking string found in a text. Offsets are into that text. */
export interface KeyFinding {
  readonly start: number;
  readonly end: number;
  readonly label: string;
  readonly kind: CredentialKind;
}

/** Marker comment that silences findings on its line, for a false positive reviewed by a person. */
export const allowMarker = 'patchbay:allow-secret';

const mixedCase = (text: string) => /[0-9]/.test(text) && /[A-Za-z]/.test(text);

/**
 * Finds credential-looking strings in a text (values, keys and comments alike). Findings carry
 * only offsets and a label: callers must never print the matched text. Lines holding the
 * `patchbay:allow-secret` marker are skipped. Linear in the text's length.
 */
export function findCredentials(text: string, options: { anywhere?: boolean } = {}): KeyFinding[] {
  const findings: KeyFinding[] = [];
  const claimed: [number, number][] = [];
  for (const { label, pattern, kind, needsSecretKey, mixed } of keyPatterns) {
    pattern.lastIndex = 0;
    for (const match of text.matchAll(pattern)) {
      const start = match.index ?? 0;
      const end = start + match[0].length;
      if (mixed && !mixedCase(match[0])) continue;
      if (claimed.some(([s, e]) => start < e && end > s)) continue;
      const lineStart = text.lastIndexOf('\n', start) + 1;
      if (needsSecretKey && !options.anywhere) {
        // Only the text just before the value can hold its key; a bounded window keeps long
        // lines linear.
        const before = text.slice(Math.max(lineStart, start - 200), start);
        const key = /([A-Za-z0-9_.-]+)["']?\s*:\s*["']?$/.exec(before)?.[1];
        if (key === undefined || !looksSecretName(key)) continue;
      }
      const lineEnd = text.indexOf('\n', end);
      if (text.slice(lineStart, lineEnd < 0 ? text.length : lineEnd).includes(allowMarker)) continue;
      claimed.push([start, end]);
      findings.push({ start, end, label, kind });
    }
  }
  return findings.sort((a, b) => a.start - b.start);
}

// Long runs of key-like characters mixing digits and both cases (a 40-character AWS secret, a
// base64 token) are masked in messages even when no known format matches; paths and names
// rarely mix all three.
const opaqueToken = /[A-Za-z0-9+/_]{32,}={0,2}/g;

/**
 * Replaces every credential-looking part of a message with its first four characters and
 * `…[redacted]`, so a diagnostic quoting a user's value cannot leak a key. Used on every
 * diagnostic message and file name.
 */
export function maskCredentials(text: string): string {
  let out = text;
  for (const finding of findCredentials(text, { anywhere: true }).reverse()) {
    out = `${out.slice(0, finding.start)}${out.slice(finding.start, finding.start + 4)}…[redacted]${out.slice(finding.end)}`;
  }
  return out.replace(opaqueToken, (token) =>
    /[0-9]/.test(token) && /[a-z]/.test(token) && /[A-Z]/.test(token) ? `${token.slice(0, 4)}…[redacted]` : token,
  );
}

/** True when a key name (`authToken`, `api_key`, `clientSecret`) says it holds a secret. */
export function looksSecretName(name: string): boolean {
  const parts = words(name);
  const last = parts.at(-1) ?? '';
  const lastTwo = parts.length >= 2 ? parts.slice(-2).join('') : '';
  // The secret word must be what the key names (its last word): `authToken`, `api_key`,
  // `clientSecret` hold secrets; `tokenUrl`, `secretName`, `passwordPolicy`, `author` do not.
  return (secretWords.has(last) && last !== 'auth') || secretWords.has(lastTwo);
}
