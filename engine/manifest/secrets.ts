import type { Code } from '../diag/codes.js';

/** A credential format recognised anywhere in a manifest's text. */
interface KeyPattern {
  readonly label: string;
  readonly pattern: RegExp;
  readonly code: Extract<Code, 'PB_SECRET_LIVE_KEY' | 'PB_SECRET_TEST_KEY'>;
  /** Only match when the line's key names a secret (for formats too generic to match alone). */
  readonly needsSecretKey?: boolean;
}

// Formats published by each provider (or by secret scanners that follow them). The match is
// bounded on both sides so identifiers that merely contain a prefix do not match.
const keyPatterns: readonly KeyPattern[] = [
  { label: 'Stripe live secret key', pattern: /\b(?:sk|rk)_live_[0-9A-Za-z]{10,}/g, code: 'PB_SECRET_LIVE_KEY' },
  { label: 'Stripe webhook signing secret', pattern: /\bwhsec_[0-9A-Za-z+/=]{20,}/g, code: 'PB_SECRET_LIVE_KEY' },
  { label: 'Stripe test secret key', pattern: /\b(?:sk|rk)_test_[0-9A-Za-z]{10,}/g, code: 'PB_SECRET_TEST_KEY' },
  { label: 'AWS access key id', pattern: /\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b/g, code: 'PB_SECRET_LIVE_KEY' },
  { label: 'Slack token', pattern: /\bxox[abposr]-[0-9A-Za-z-]{10,}/g, code: 'PB_SECRET_LIVE_KEY' },
  { label: 'Slack app token', pattern: /\bxapp-[0-9]-[0-9A-Za-z-]{10,}/g, code: 'PB_SECRET_LIVE_KEY' },
  { label: 'Slack webhook URL', pattern: /hooks\.slack\.com\/services\/T[0-9A-Z]+\/B[0-9A-Z]+\/[0-9A-Za-z]{16,}/g, code: 'PB_SECRET_LIVE_KEY' },
  { label: 'GitHub token', pattern: /\bgh[pousr]_[0-9A-Za-z]{36,}/g, code: 'PB_SECRET_LIVE_KEY' },
  { label: 'GitHub fine-grained token', pattern: /\bgithub_pat_[0-9A-Za-z_]{22,}/g, code: 'PB_SECRET_LIVE_KEY' },
  { label: 'OpenAI API key', pattern: /\bsk-(?:proj-|svcacct-|admin-)?[0-9A-Za-z_-]{20,}/g, code: 'PB_SECRET_LIVE_KEY' },
  { label: 'SendGrid API key', pattern: /\bSG\.[0-9A-Za-z_-]{16,}\.[0-9A-Za-z_-]{16,}/g, code: 'PB_SECRET_LIVE_KEY' },
  { label: 'Shopify access token', pattern: /\bshp(?:at|ca|pa|ss)_[0-9a-fA-F]{32}\b/g, code: 'PB_SECRET_LIVE_KEY' },
  { label: 'Google API key', pattern: /\bAIza[0-9A-Za-z_-]{35}\b/g, code: 'PB_SECRET_LIVE_KEY' },
  { label: 'Mailchimp API key', pattern: /\b[0-9a-f]{32}-us[0-9]{1,2}\b/g, code: 'PB_SECRET_LIVE_KEY' },
  { label: 'Plaid access token', pattern: /\baccess-(?:sandbox|development|production)-[0-9a-f]{8}-[0-9a-f-]{27}\b/g, code: 'PB_SECRET_LIVE_KEY' },
  { label: 'private key', pattern: /-----BEGIN (?:[A-Z]+ )*PRIVATE KEY( BLOCK)?-----/g, code: 'PB_SECRET_LIVE_KEY' },
  // Twilio auth tokens (and many others) are 32 hex digits with no prefix: only flag them where
  // the key says it holds a secret, so ids and hashes elsewhere do not trip the check.
  { label: 'auth token (32 hex digits)', pattern: /(?<![0-9A-Za-z])[0-9a-f]{32}(?![0-9A-Za-z-])/g, code: 'PB_SECRET_LIVE_KEY', needsSecretKey: true },
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
  readonly code: Extract<Code, 'PB_SECRET_LIVE_KEY' | 'PB_SECRET_TEST_KEY'>;
}

/**
 * Finds credential-looking strings in a manifest's raw text (values, keys and comments alike).
 * Findings carry only offsets and a label: callers must never print the matched text.
 */
export function findCredentials(text: string): KeyFinding[] {
  const findings: KeyFinding[] = [];
  const claimed: [number, number][] = [];
  for (const { label, pattern, code, needsSecretKey } of keyPatterns) {
    pattern.lastIndex = 0;
    for (const match of text.matchAll(pattern)) {
      const start = match.index ?? 0;
      const end = start + match[0].length;
      if (claimed.some(([s, e]) => start < e && end > s)) continue;
      if (needsSecretKey) {
        const lineStart = text.lastIndexOf('\n', start) + 1;
        const key = /([A-Za-z0-9_.-]+)["']?\s*:\s*["']?$/.exec(text.slice(lineStart, start))?.[1];
        if (key === undefined || !looksSecretName(key)) continue;
      }
      claimed.push([start, end]);
      findings.push({ start, end, label, code });
    }
  }
  return findings.sort((a, b) => a.start - b.start);
}

/** True when a `vars` key or value looks like it holds a secret. */
export function looksSecretName(name: string): boolean {
  const parts = words(name);
  // Whole words only, so `author` or `authorityId` are not secrets; adjacent pairs catch `api_key`.
  return parts.some((w, i) => secretWords.has(w) || secretWords.has(w + (parts[i + 1] ?? '')));
}
