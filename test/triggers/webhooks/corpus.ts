import { describe, expect, it } from 'vitest';
import { PatchbayError } from '../../../engine/diag/errors.js';
import type { ProviderWebhooks } from '../../../engine/types/provider.generated.js';
import { createWebhookVerifier, type InboundDelivery, type VerifiedDelivery } from '../../../engine/triggers/webhooks/verify.js';
import type { SecretScan } from '../../support/secret-scan.js';
import { bundledProvider } from '../../providers/bundled.js';

/**
 * The shared corpus every signature scheme runs: valid, tampered body byte, tampered signature,
 * wrong secret, missing header, stale and future timestamps, rotated secrets, header-case
 * variants, a unicode body whose JSON re-serialisation differs from its raw bytes. Deliveries are
 * signed by the provider's official SDK where one exists (the scheme file's `sign`), and each
 * verdict is cross-checked with that SDK's own verifier (`sdkAccepts`).
 */

/** A signed request: headers (any case), the URL it was sent to, and the raw body. */
export interface SignedRequest {
  readonly headers: Record<string, string>;
  readonly url: string;
  readonly body: Buffer;
}

export interface SchemeUnderTest {
  /** Provider name in providers/*.yaml. */
  readonly provider: string;
  /** A fresh secret in the form the provider issues. */
  readonly freshSecret: () => string;
  /** Signs `body` (JSON unless the scheme signs forms) as the provider would at `signedAtSec`. */
  readonly sign: (secret: string, body: Buffer, signedAtSec: number) => SignedRequest | Promise<SignedRequest>;
  /** The provider SDK's verdict on a request at `nowSec` (undefined: no SDK for this scheme). */
  readonly sdkAccepts?: (secret: string, request: SignedRequest, nowSec: number) => boolean | Promise<boolean>;
  /** The header holding the signature (as the provider spells it). */
  readonly signatureHeader: string;
  /** Seconds of tolerance when the scheme signs a timestamp; undefined when it does not. */
  readonly toleranceSeconds?: number;
  /** A body of the kind the provider sends; JSON by default. */
  readonly body?: (text: string) => Buffer;
  /** The scheme's SDK accepts future timestamps that we refuse (Stripe's SDK checks only age). */
  readonly sdkAcceptsFuture?: boolean;
  readonly scan: SecretScan;
}

/** The provider's `webhooks` from the bundled YAML. */
export function webhooksOf(provider: string): ProviderWebhooks {
  const webhooks = bundledProvider(provider).spec.webhooks;
  if (webhooks === undefined) throw new Error(`provider ${provider} has no webhooks`);
  return webhooks;
}

/** A delivery as the ingress builds it: lower-case header names. */
export function deliveryOf(request: SignedRequest, options: { keepCase?: boolean } = {}): InboundDelivery {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) headers[options.keepCase === true ? name : name.toLowerCase()] = value;
  return { method: 'POST', url: new URL(request.url), headers, rawBody: request.body };
}

/** The outcome of verify(): 'accepted' or the PatchbayError code; other errors fail the test. */
export async function outcomeOf(webhooks: ProviderWebhooks, secrets: readonly string[], delivery: InboundDelivery, nowMs: number, scan?: SecretScan): Promise<string> {
  try {
    const verified: VerifiedDelivery = await createWebhookVerifier(webhooks, secrets).verify(delivery, nowMs);
    expect(verified).toBeTypeOf('object');
    return 'accepted';
  } catch (error) {
    if (!(error instanceof PatchbayError)) throw error;
    scan?.error('verify refusal', error);
    for (const value of Object.values(delivery.headers)) {
      // A signature value (long, high-entropy) never appears in a message.
      if (value !== undefined && value.length >= 16) expect(error.message).not.toContain(value);
    }
    if (delivery.rawBody.length >= 8) expect(error.message).not.toContain(delivery.rawBody.toString('utf8'));
    expect(error.message).not.toContain(delivery.url.search === '' ? '\u0000' : delivery.url.search);
    return error.code;
  }
}

function withHeader(request: SignedRequest, header: string, value: string | undefined): SignedRequest {
  const headers: Record<string, string> = {};
  for (const [name, old] of Object.entries(request.headers)) if (name.toLowerCase() !== header.toLowerCase()) headers[name] = old;
  if (value !== undefined) headers[header] = value;
  return { ...request, headers };
}

function headerOf(request: SignedRequest, header: string): string {
  const entry = Object.entries(request.headers).find(([name]) => name.toLowerCase() === header.toLowerCase());
  if (entry === undefined) throw new Error(`signed request has no ${header}`);
  return entry[1];
}

/** Flips one character of a signature text to another of the same alphabet (so it stays well formed). */
export function flipCharacter(text: string, index: number): string {
  const char = text[index] ?? '';
  const replacement = char === 'a' ? 'b' : char === 'A' ? 'B' : char === '0' ? '1' : /[0-9]/.test(char) ? '0' : /[a-z]/.test(char) ? 'a' : 'A';
  return text.slice(0, index) + replacement + text.slice(index + 1);
}

/** A JSON body whose raw bytes differ from its re-serialisation: escaped unicode, extra whitespace, a raw emoji. */
export const unicodeJson = '{ "name" : "J\\u00e9r\\u00f4me",\n  "city": "Z\u00fcrich", "emoji": "\ud83d\ude00", "amount": 1.50 }\n';

/** Runs the corpus for one scheme. */
export function describeCorpus(name: string, scheme: SchemeUnderTest): void {
  const webhooks = webhooksOf(scheme.provider);
  const bodyOf = scheme.body ?? ((text: string) => Buffer.from(text, 'utf8'));
  const nowSec = Math.floor(Date.now() / 1000);
  const nowMs = nowSec * 1000;
  const plain = bodyOf('{"id":"evt_1","type":"thing.happened","data":{"n":1}}');

  /** Our verdict and the SDK's must agree (`expected` is ours). */
  async function check(secrets: readonly string[], request: SignedRequest, expected: string, sdkSecret: string | undefined, options: { at?: number; sdk?: boolean } = {}): Promise<void> {
    const at = options.at ?? nowSec;
    expect(await outcomeOf(webhooks, secrets, deliveryOf(request), at * 1000, scheme.scan)).toBe(expected);
    if (scheme.sdkAccepts !== undefined && sdkSecret !== undefined && options.sdk !== false) {
      expect(await scheme.sdkAccepts(sdkSecret, request, at)).toBe(expected === 'accepted');
    }
  }

  describe(`${name}: signed corpus`, () => {
    it('accepts a delivery signed by the SDK, and the SDK agrees', async () => {
      const secret = scheme.freshSecret();
      await check([secret], await scheme.sign(secret, plain, nowSec), 'accepted', secret);
    });

    it('verifies the raw bytes: a unicode body with escapes and whitespace, not its re-serialisation', async () => {
      const secret = scheme.freshSecret();
      const raw = bodyOf(unicodeJson);
      const request = await scheme.sign(secret, raw, nowSec);
      await check([secret], request, 'accepted', secret);
      const text = raw.toString('utf8');
      if (text.startsWith('{')) {
        const reserialised = Buffer.from(JSON.stringify(JSON.parse(text)), 'utf8');
        expect(reserialised.equals(raw)).toBe(false);
        await check([secret], { ...request, body: reserialised }, 'PB_WEBHOOK_BAD_SIGNATURE', secret);
      }
    });

    it('refuses a body with one byte changed, at the start, middle and end', async () => {
      const secret = scheme.freshSecret();
      const request = await scheme.sign(secret, plain, nowSec);
      for (const index of [0, Math.floor(plain.length / 2), plain.length - 1]) {
        const body = Buffer.from(plain);
        body[index] = (body[index] ?? 0) ^ 0x01;
        await check([secret], { ...request, body }, 'PB_WEBHOOK_BAD_SIGNATURE', secret);
      }
      await check([secret], { ...request, body: Buffer.concat([plain, Buffer.from(' ')]) }, 'PB_WEBHOOK_BAD_SIGNATURE', secret);
    });

    it('refuses a signature with one character changed', async () => {
      const secret = scheme.freshSecret();
      const request = await scheme.sign(secret, plain, nowSec);
      const value = headerOf(request, scheme.signatureHeader);
      for (const index of [value.length - 5, value.length - 10]) {
        await check([secret], withHeader(request, scheme.signatureHeader, flipCharacter(value, index)), 'PB_WEBHOOK_BAD_SIGNATURE', secret);
      }
    });

    it('refuses a delivery signed with another secret', async () => {
      const secret = scheme.freshSecret();
      const other = scheme.freshSecret();
      await check([secret], await scheme.sign(other, plain, nowSec), 'PB_WEBHOOK_BAD_SIGNATURE', secret);
    });

    it('refuses a delivery without the signature header, or with it empty', async () => {
      const secret = scheme.freshSecret();
      const request = await scheme.sign(secret, plain, nowSec);
      await check([secret], withHeader(request, scheme.signatureHeader, undefined), 'PB_WEBHOOK_MISSING_SIGNATURE', secret);
      expect(await outcomeOf(webhooks, [secret], deliveryOf(withHeader(request, scheme.signatureHeader, '')), nowMs)).toBe('PB_WEBHOOK_MISSING_SIGNATURE');
    });

    it('refuses garbage in the signature header without crashing', async () => {
      const secret = scheme.freshSecret();
      const request = await scheme.sign(secret, plain, nowSec);
      for (const garbage of ['garbage', '=', ',,,', 'v1=', 't=,v1=zz', 'sha256=zz', 'v1,!!!', '\u00e9\u00e9', 'x'.repeat(4000)]) {
        const outcome = await outcomeOf(webhooks, [secret], deliveryOf(withHeader(request, scheme.signatureHeader, garbage)), nowMs);
        expect(['PB_WEBHOOK_BAD_SIGNATURE', 'PB_WEBHOOK_MISSING_SIGNATURE', 'PB_WEBHOOK_STALE']).toContain(outcome);
      }
    });

    it('accepts header names in any case (lower-case from the ingress, or as the provider spells them)', async () => {
      const secret = scheme.freshSecret();
      const request = await scheme.sign(secret, plain, nowSec);
      expect(await outcomeOf(webhooks, [secret], deliveryOf(request), nowMs)).toBe('accepted');
      expect(await outcomeOf(webhooks, [secret], deliveryOf(request, { keepCase: true }), nowMs)).toBe('accepted');
      const upper: Record<string, string> = {};
      for (const [header, value] of Object.entries(request.headers)) upper[header.toUpperCase()] = value;
      expect(await outcomeOf(webhooks, [secret], deliveryOf({ ...request, headers: upper }, { keepCase: true }), nowMs)).toBe('accepted');
    });

    it('accepts any active secret during a rotation, and refuses a removed one', async () => {
      const old = scheme.freshSecret();
      const next = scheme.freshSecret();
      const byOld = await scheme.sign(old, plain, nowSec);
      const byNew = await scheme.sign(next, plain, nowSec);
      expect(await outcomeOf(webhooks, [old, next], deliveryOf(byOld), nowMs)).toBe('accepted');
      expect(await outcomeOf(webhooks, [old, next], deliveryOf(byNew), nowMs)).toBe('accepted');
      expect(await outcomeOf(webhooks, [next, old], deliveryOf(byOld), nowMs)).toBe('accepted');
      expect(await outcomeOf(webhooks, [next], deliveryOf(byOld), nowMs, scheme.scan)).toBe('PB_WEBHOOK_BAD_SIGNATURE');
      expect(await outcomeOf(webhooks, [next], deliveryOf(byNew), nowMs)).toBe('accepted');
    });

    const tolerance = scheme.toleranceSeconds;
    if (tolerance !== undefined) {
      it(`accepts timestamps up to ${tolerance} s away and refuses stale and future ones (PB_WEBHOOK_STALE)`, async () => {
        const secret = scheme.freshSecret();
        await check([secret], await scheme.sign(secret, plain, nowSec - tolerance), 'accepted', secret);
        await check([secret], await scheme.sign(secret, plain, nowSec + tolerance), 'accepted', secret);
        await check([secret], await scheme.sign(secret, plain, nowSec - tolerance - 1), 'PB_WEBHOOK_STALE', secret);
        await check([secret], await scheme.sign(secret, plain, nowSec - 86_400 * 30), 'PB_WEBHOOK_STALE', secret);
        // Future timestamps: refused, deliberately, even where the SDK checks age only.
        const future = await scheme.sign(secret, plain, nowSec + tolerance + 1);
        await check([secret], future, 'PB_WEBHOOK_STALE', secret, { sdk: scheme.sdkAcceptsFuture !== true });
        if (scheme.sdkAcceptsFuture === true && scheme.sdkAccepts !== undefined) expect(await scheme.sdkAccepts(secret, future, nowSec)).toBe(true);
      });

      it('refuses a stale delivery even when it is otherwise valid for every active secret', async () => {
        const old = scheme.freshSecret();
        const next = scheme.freshSecret();
        expect(await outcomeOf(webhooks, [old, next], deliveryOf(await scheme.sign(next, plain, nowSec - tolerance - 60)), nowMs)).toBe('PB_WEBHOOK_STALE');
      });
    }
  });
}
