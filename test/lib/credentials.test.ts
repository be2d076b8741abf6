import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateManifests } from '../../engine/manifest/validate.js';
import { findCredentials, looksSecretName } from '../../engine/lib/credentials.js';
import { makeTempDir, writeFiles } from '../support/cli.js';

// Every key below is FAKE, assembled at run time from repeated characters so that no
// credential-shaped literal exists in the repository (and secret scanners stay quiet).
const r = (c: string, n: number) => c.repeat(n);
const fake = {
  stripeLive: 'sk_' + 'live_' + r('A', 24),
  stripeRestricted: 'rk_' + 'live_' + r('b', 24),
  stripeWebhook: 'whsec_' + r('C', 32),
  stripeTest: 'sk_' + 'test_' + r('D', 24),
  aws: 'AKIA' + r('E', 16),
  slackBot: 'xoxb-' + r('1', 12) + '-' + r('f', 24),
  slackApp: 'xapp-' + '1-' + r('G', 12),
  slackWebhook: 'https://hooks.slack.com/services/T' + r('H', 8) + '/B' + r('I', 8) + '/' + r('j', 24),
  github: 'ghp_' + r('K', 36),
  githubFineGrained: 'github_' + 'pat_' + r('L', 30),
  openai: 'sk-' + 'proj-' + r('M1', 24),
  openaiLegacy: 'sk-' + r('Q7', 24),
  sendgrid: 'SG.' + r('n', 22) + '.' + r('O', 43),
  shopify: 'shpat_' + r('a', 32),
  google: 'AIza' + r('P', 35),
  mailchimp: r('b', 32) + '-us' + '21',
  plaid: 'access-' + 'sandbox-' + r('c', 8) + '-' + r('d', 4) + '-' + r('e', 4) + '-' + r('f', 4) + '-' + r('0', 12),
  privateKey: '-----BEGIN ' + 'RSA PRIVATE' + ' KEY-----',
  hex32: r('0a', 16),
};

const families: [keyof typeof fake, string, 'live' | 'test'][] = [
  ['stripeLive', 'Stripe live secret key', 'live'],
  ['stripeRestricted', 'Stripe live secret key', 'live'],
  ['stripeWebhook', 'Stripe webhook signing secret', 'live'],
  ['stripeTest', 'Stripe test secret key', 'test'],
  ['aws', 'AWS access key id', 'live'],
  ['slackBot', 'Slack token', 'live'],
  ['slackApp', 'Slack app token', 'live'],
  ['slackWebhook', 'Slack webhook URL', 'live'],
  ['github', 'GitHub token', 'live'],
  ['githubFineGrained', 'GitHub fine-grained token', 'live'],
  ['openai', 'OpenAI project key', 'live'],
  ['openaiLegacy', 'OpenAI API key', 'live'],
  ['sendgrid', 'SendGrid API key', 'live'],
  ['shopify', 'Shopify access token', 'live'],
  ['google', 'Google API key', 'live'],
  ['mailchimp', 'Mailchimp API key', 'live'],
  ['plaid', 'Plaid access token', 'live'],
  ['privateKey', 'private key', 'live'],
];

describe('findCredentials: key families', () => {
  it.each(families)('detects %s under a neutral key, with exact offsets', (name, label, kind) => {
    const prefix = 'spec:\n  vars:\n    value: "';
    const text = `${prefix}${fake[name]}"\n`;
    // A Slack webhook is matched from its host on; every other key from its first character.
    const skip = name === 'slackWebhook' ? 'https://'.length : 0;
    const findings = findCredentials(text);
    expect(findings).toEqual([{ start: prefix.length + skip, end: prefix.length + fake[name].length, label, kind }]);
  });

  it('finds a key in a comment and several keys in one text, in order', () => {
    const text = `# old: ${fake.github}\na: ${fake.aws}\nb: ${fake.stripeTest}\n`;
    expect(findCredentials(text).map((f) => f.label)).toEqual(['GitHub token', 'AWS access key id', 'Stripe test secret key']);
  });

  it('does not match identifiers that merely contain a prefix', () => {
    const text = ['id: task_live_' + r('a', 20), 'ref: mask-' + r('b', 30), 'name: xoxbox-not-a-token', 'sha: AKIAx'].join('\n');
    expect(findCredentials(text)).toEqual([]);
  });

  it('reports a key once even when several patterns overlap it', () => {
    // A Mailchimp key starts with 32 hex digits: the generic hex pattern must not report it again.
    const findings = findCredentials(`apiKey: ${fake.mailchimp}\n`);
    expect(findings.map((f) => f.label)).toEqual(['Mailchimp API key']);
  });
});

describe('findCredentials: 32 hex digits', () => {
  it('flags 32 hex digits under a secret-named key', () => {
    for (const key of ['authToken', 'token', 'password', 'api_key', 'apiKey', 'clientSecret', 'credential', 'private']) {
      const text = `${key}: ${fake.hex32}\n`;
      const findings = findCredentials(text);
      expect(findings, key).toEqual([
        { start: key.length + 2, end: key.length + 2 + 32, label: 'auth token (32 hex digits)', kind: 'live' },
      ]);
    }
  });

  it('does not flag 32 hex digits under other keys (ids, hashes)', () => {
    for (const key of ['id', 'hash', 'messageSid', 'checksum', 'traceId']) {
      expect(findCredentials(`${key}: ${fake.hex32}\n`), key).toEqual([]);
    }
  });

  it('does not flag a Twilio Account SID (AC + 32 hex digits) under accountSid', () => {
    const sid = 'AC' + fake.hex32;
    expect(findCredentials(`accountSid: ${sid}\n`)).toEqual([]);
    expect(findCredentials(`variables:\n  AccountSid: ${sid}\n`)).toEqual([]);
    // …nor as the basic-auth user name next to the password reference.
    expect(findCredentials(`auth: { type: basic, username: ${sid}, password: { env: TWILIO_AUTH_TOKEN } }\n`)).toEqual([]);
  });

  it('does not treat a key name that merely contains "auth" as a secret name', () => {
    expect(findCredentials(`authorId: ${fake.hex32}\n`)).toEqual([]);
    expect(looksSecretName('authorId')).toBe(false);
    expect(looksSecretName('author')).toBe(false);
    expect(looksSecretName('authority')).toBe(false);
    expect(looksSecretName('authToken')).toBe(true);
  });

  it('only looks at the key on the same line', () => {
    expect(findCredentials(`token:\n  id: ${fake.hex32}\n`)).toEqual([]);
  });
});

describe('credentials in manifests (validateManifests)', () => {
  it('reports each key at its position and never prints the key text', async () => {
    const dir = makeTempDir('secrets');
    try {
      const keys = [fake.stripeLive, fake.stripeTest, fake.slackWebhook, fake.privateKey];
      const text = [
        'apiVersion: patchbay/v1',
        'kind: Integration',
        'metadata:',
        '  name: leaky',
        `  description: "${keys[0]}"`,
        'spec:',
        '  vars:',
        `    test: "${keys[1]}"`,
        `    hook: ${keys[2]}`,
        `# ${keys[3]}`,
        '',
      ].join('\n');
      writeFiles(dir, { 'leaky.yaml': text });
      const result = await validateManifests({ paths: [join(dir, 'leaky.yaml')], bundledProviders: false, cwd: dir });
      const secrets = result.diagnostics.filter((d) => d.code.startsWith('PB_SECRET_'));
      expect(secrets.map((d) => [d.code, d.start.line, d.start.column])).toEqual([
        ['PB_SECRET_LIVE_KEY', 5, 17],
        ['PB_SECRET_TEST_KEY', 8, 12],
        ['PB_SECRET_LIVE_KEY', 9, 19],
        ['PB_SECRET_LIVE_KEY', 10, 3],
      ]);
      expect(secrets.find((d) => d.code === 'PB_SECRET_TEST_KEY')!.severity).toBe('warning');
      const everything = JSON.stringify(result.diagnostics);
      for (const key of keys) {
        expect(everything).not.toContain(key);
        expect(everything).not.toContain(key.slice(0, 16));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports a credential header written literally in a step\'s inputs', async () => {
    const dir = makeTempDir('secrets');
    try {
      const provider = [
        'apiVersion: patchbay/v1',
        'kind: Provider',
        'metadata: { name: web }',
        'spec:',
        '  displayName: Web',
        '  baseUrl: https://api.web.test',
        '  auth: [ { type: none } ]',
        '  operations:',
        '    get:',
        '      summary: GET a path',
        '      input:',
        '        type: object',
        '        properties:',
        '          path: { type: string }',
        '          headers: { type: object, additionalProperties: { type: string } }',
        '        additionalProperties: false',
        '',
      ].join('\n');
      const integration = [
        'apiVersion: patchbay/v1',
        'kind: Integration',
        'metadata: { name: headers }',
        'spec:',
        '  connections:',
        '    web: { provider: web }',
        '  trigger:',
        '    schedule: { cron: "0 8 * * 1-5" }',
        '  steps:',
        '    - id: fetch',
        '      call: web.get',
        '      with:',
        '        path: /things',
        '        headers:',
        '          Accept: application/json',
        '          Authorization: "Bearer not-a-real-token"',
        '',
      ].join('\n');
      writeFiles(dir, { 'providers/web.yaml': provider, 'headers.yaml': integration });
      const result = await validateManifests({
        paths: [join(dir, 'headers.yaml')],
        providerDirs: [join(dir, 'providers')],
        bundledProviders: false,
        cwd: dir,
      });
      expect(result.diagnostics.map((d) => [d.code, d.start.line, d.start.column])).toEqual([['PB_SECRET_LITERAL', 16, 26]]);
      expect(JSON.stringify(result.diagnostics)).not.toContain('not-a-real-token');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('findCredentials: what is not a credential', () => {
  it('needs letters and digits mixed, as generated keys have, before calling sk-… an OpenAI key', () => {
    expect(findCredentials(`a: sk-${'abcdefghij'.repeat(4)}\n`)).toEqual([]);
    expect(findCredentials(`a: sk-${'abcde12345'.repeat(4)}\n`).map((f) => f.label)).toEqual(['OpenAI API key']);
  });

  it('leaves slugs that merely start like keys alone', () => {
    const text = [
      'metadata: { name: sk-customer-success-announcements }',
      'vars: { channel: "#sk-customer-success-emea", sku: sk-2024-winter-collection-large, hug: xoxo-hugs-and-kisses }',
    ].join('\n');
    expect(findCredentials(text)).toEqual([]);
  });

  it('honours the allow marker on the same line only', () => {
    const key = 'sk_' + 'live_' + r('Z', 24);
    const text = `a: ${key} # patchbay:allow-secret (a documented example)\nb: ${key}\n`;
    const findings = findCredentials(text);
    expect(findings).toHaveLength(1);
    expect(text.slice(findings[0]!.start, findings[0]!.end)).toBe(key);
    expect(findings[0]!.start).toBeGreaterThan(text.indexOf('\n'));
  });

  it('stays linear on a very long line of hex ids under a secret-named key', () => {
    const ids = Array.from({ length: 6000 }, (_, i) => i.toString(16).padStart(32, 'a')).join(', ');
    const text = `vars:\n  allowedTokens: [${ids}]\n`;
    const started = process.hrtime.bigint();
    const findings = findCredentials(text);
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    // List items are not values of the key: at most the first could be taken for its value.
    expect(findings.length).toBeLessThanOrEqual(1);
    // A bound two orders of magnitude above the linear cost: it only fails on quadratic behaviour.
    expect(elapsedMs).toBeLessThan(5000);
  });
});

describe('maskCredentials', () => {
  it('masks known formats, hex tokens and mixed-case opaque tokens, and keeps ordinary text', async () => {
    const { maskCredentials } = await import('../../engine/lib/credentials.js');
    const live = 'sk_' + 'live_' + r('A1', 12);
    const hex = r('9f', 16);
    const opaque = 'wJalr' + r('Xu7', 12);
    const message = `unknown field "${live}" near ${hex} and ${opaque} in test/golden/cases/41-live-key.yaml`;
    const masked = maskCredentials(message);
    for (const secret of [live, hex, opaque]) expect(masked).not.toContain(secret);
    expect(masked).toContain('test/golden/cases/41-live-key.yaml');
    expect(masked).toContain('sk_l…[redacted]');
    expect(maskCredentials('stripe-payment-followup calls twilio.messages.create')).toBe(
      'stripe-payment-followup calls twilio.messages.create',
    );
  });
});

describe('looksSecretName: the key must name the secret', () => {
  it.each(['password', 'apiToken', 'api_key', 'clientSecret', 'authToken', 'X-Auth-Token', 'privateKey', 'jwtSecret'])(
    '%s names a secret',
    (name) => expect(looksSecretName(name)).toBe(true),
  );
  it.each(['tokenUrl', 'authDomain', 'tokenType', 'passwordPolicy', 'secretName', 'authMode', 'tokenId', 'author', 'auth'])(
    '%s only mentions one',
    (name) => expect(looksSecretName(name)).toBe(false),
  );
});
