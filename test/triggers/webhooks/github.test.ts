import { randomBytes } from 'node:crypto';
import { sign as octokitSign, verify as octokitVerify } from '@octokit/webhooks-methods';
import { afterAll, describe, expect, it } from 'vitest';
import { createWebhookVerifier } from '../../../engine/triggers/webhooks/verify.js';
import { SecretScan } from '../../support/secret-scan.js';
import { deliveryOf, describeCorpus, outcomeOf, webhooksOf } from './corpus.js';

const scan = new SecretScan();
afterAll(() => scan.assertClean());
const url = 'https://hooks.example.test/hooks/github-issues';
const freshSecret = (): string => scan.secret(randomBytes(20).toString('hex'));

describeCorpus('github', {
  provider: 'github',
  freshSecret,
  sign: async (secret, body) => ({
    headers: { 'X-Hub-Signature-256': await octokitSign(secret, body.toString('utf8')), 'X-GitHub-Delivery': '72d3162e-cc78-11e3-81ab-4c9367dc0958', 'X-GitHub-Event': 'issues' },
    url,
    body,
  }),
  sdkAccepts: async (secret, request) => {
    const signature = request.headers['X-Hub-Signature-256'];
    if (signature === undefined || signature === '') return false;
    return octokitVerify(secret, request.body.toString('utf8'), signature);
  },
  signatureHeader: 'X-Hub-Signature-256',
  scan,
});

describe('github: published example and delivery id', () => {
  const webhooks = webhooksOf('github');

  it("verifies GitHub's documented example (secret \"It's a Secret to Everybody\", payload \"Hello, World!\")", async () => {
    // From GitHub's "Validating webhook deliveries" documentation: a published test vector.
    const delivery = deliveryOf({
      headers: { 'X-Hub-Signature-256': 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17' },
      url,
      body: Buffer.from('Hello, World!'),
    });
    expect(await outcomeOf(webhooks, ["It's a Secret to Everybody"], delivery, Date.now())).toBe('accepted');
    expect(await outcomeOf(webhooks, ["It's a Secret to Everybody!"], delivery, Date.now())).toBe('PB_WEBHOOK_BAD_SIGNATURE');
  });

  it('refuses the SHA-1 header alone, a missing prefix, and upper-case hex', async () => {
    const secret = freshSecret();
    const body = Buffer.from('{"action":"opened"}');
    const signature = await octokitSign(secret, body.toString('utf8'));
    const at = Date.now();
    const outcome = (headers: Record<string, string>) => outcomeOf(webhooks, [secret], deliveryOf({ headers, url, body }), at);
    expect(await outcome({ 'x-hub-signature': signature.replace('sha256=', 'sha1=') })).toBe('PB_WEBHOOK_MISSING_SIGNATURE');
    expect(await outcome({ 'x-hub-signature-256': signature.slice('sha256='.length) })).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(await outcome({ 'x-hub-signature-256': `sha256=${signature.slice(7).toUpperCase()}` })).toBe('PB_WEBHOOK_BAD_SIGNATURE');
    expect(await octokitVerify(secret, body.toString('utf8'), `sha256=${signature.slice(7).toUpperCase()}`)).toBe(false);
  });

  it('returns X-GitHub-Delivery as the delivery id', async () => {
    const secret = freshSecret();
    const body = Buffer.from('{"action":"opened"}');
    const delivery = deliveryOf({ headers: { 'X-Hub-Signature-256': await octokitSign(secret, body.toString('utf8')), 'X-GitHub-Delivery': 'd-123' }, url, body });
    expect(await createWebhookVerifier(webhooks, [secret]).verify(delivery, Date.now())).toEqual({ deliveryId: 'd-123', signedAtMs: undefined });
  });
});
