import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolveSecret, type SecretSources } from '../../lib/secrets.js';
import type { LoadedIntegration } from '../../manifest/validate.js';
import type { ProviderRegistry } from '../../providers/registry.js';
import type { SecretRef } from '../../types/integration.generated.js';
import type { WebhookVerification } from '../../types/provider.generated.js';

/**
 * Secrets for sandbox mode, so the bundled integrations run with no accounts: every `{ env }` (or
 * `{ file }`) reference an integration makes resolves to the real value when it is set, else to a
 * value generated for this start (random, in the shape its use needs: a connection variable gets
 * the provider's example when it fits the variable's pattern, a JWT key a real PEM key, an AWS
 * access key id the `AKIA…` form). Webhook secrets are always generated, in the form the provider's
 * scheme issues them (`whsec_…` for Stripe and Standard Webhooks), since `patchbay send` must sign
 * with them; they are the only values written to `.patchbay/sandbox.json`.
 */

export interface SandboxSecrets {
  /** Sources for the plan's `SecretSet`: real environment first, generated values for the rest. */
  readonly sources: SecretSources;
  /** The generated webhook secrets of each integration's webhook trigger connection, by integration. */
  readonly webhookSecrets: ReadonlyMap<string, readonly string[]>;
  /** Environment variables and files that were given generated values (names only, for the banner). */
  readonly generated: readonly string[];
  /**
   * Resolves a connection's `webhookSecrets` to the generated values (the shape of the daemon's
   * `WebhookSecretResolver`); a reference the sandbox did not see resolves through `sources`.
   */
  resolveWebhookSecrets(integration: string, connection: string, refs: readonly SecretRef[]): Promise<readonly string[]>;
}

export interface SandboxSecretsOptions {
  readonly integrations: readonly LoadedIntegration[];
  readonly registry: ProviderRegistry;
  /** The real environment. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** Reads a `{ file }` secret. @default fs.promises.readFile as UTF-8 */
  readonly readFile?: (path: string) => Promise<string>;
  /** Random bytes (tests pass a seeded source). @default crypto.randomBytes */
  readonly random?: (size: number) => Buffer;
}

/** Priority of a use: the more demanding shape wins when one variable serves several uses. */
const priority = { token: 0, awsKeyId: 1, awsSecret: 1, privateKey: 2, variable: 3, webhook: 4 } as const;
type Use =
  | { kind: 'token' | 'awsKeyId' | 'awsSecret' }
  | { kind: 'privateKey'; algorithm: string }
  | { kind: 'variable'; example: string | undefined }
  | { kind: 'webhook'; scheme: WebhookVerification['scheme'] };

const alphanumeric = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function isRef(value: unknown): value is SecretRef {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 1 && (typeof (value as SecretRef).env === 'string' || typeof (value as SecretRef).file === 'string');
}

function refKey(ref: SecretRef): string {
  return ref.env !== undefined ? `env:${ref.env}` : `file:${ref.file ?? ''}`;
}

/**
 * Collects what each reference of `integrations` is used for and generates a value for each one
 * the environment (or file system) does not provide, plus every webhook secret. Pure apart from
 * `random`: nothing is read until a secret is resolved.
 */
export function createSandboxSecrets(options: SandboxSecretsOptions): SandboxSecrets {
  const env = options.env ?? process.env;
  const random = options.random ?? randomBytes;
  const uses = new Map<string, { ref: SecretRef; use: Use }>();
  const note = (ref: SecretRef, use: Use) => {
    const key = refKey(ref);
    const known = uses.get(key);
    if (known === undefined || priority[use.kind] > priority[known.use.kind]) uses.set(key, { ref, use });
  };
  const webhookRefs = new Map<string, SecretRef[]>();

  for (const integration of options.integrations) {
    const spec = integration.document.spec;
    for (const [name, connection] of Object.entries(spec.connections)) {
      const provider = options.registry.get(connection.provider)?.document;
      walkRefs(connection, (ref) => note(ref, { kind: 'token' }));
      const auth = connection.auth;
      if (auth?.type === 'jwt' && isRef(auth.privateKey)) note(auth.privateKey, { kind: 'privateKey', algorithm: auth.algorithm ?? 'RS256' });
      if (auth?.type === 'awsSigV4') {
        if (isRef(auth.accessKeyId)) note(auth.accessKeyId, { kind: 'awsKeyId' });
        if (isRef(auth.secretAccessKey)) note(auth.secretAccessKey, { kind: 'awsSecret' });
      }
      for (const [variable, value] of Object.entries(connection.variables ?? {})) {
        if (!isRef(value)) continue;
        const declared = provider?.spec.variables?.[variable];
        const example = declared?.examples?.find((candidate) => declared.pattern === undefined || new RegExp(declared.pattern, 'u').test(candidate));
        note(value, { kind: 'variable', example });
      }
      const scheme = provider?.spec.webhooks?.verification.scheme ?? 'hmac';
      for (const ref of connection.webhookSecrets ?? []) {
        note(ref, { kind: 'webhook', scheme });
        if (spec.trigger.webhook?.connection === name) webhookRefs.set(integration.name, [...(webhookRefs.get(integration.name) ?? []), ref]);
      }
    }
    walkRefs(spec.vars, (ref) => note(ref, { kind: 'token' }));
  }

  const values = new Map<string, string>();
  const generated: string[] = [];
  for (const [key, { ref, use }] of uses) {
    const real = ref.env !== undefined ? env[ref.env] : undefined;
    // Webhook secrets are always generated: `patchbay send` signs with them.
    if (use.kind !== 'webhook' && real !== undefined && real !== '') continue;
    // For a `{ file }` reference a readable file still wins: the value is the fallback `readFile` uses.
    values.set(key, generate(use, random));
    generated.push(ref.env !== undefined ? ref.env : `file ${ref.file ?? ''}`);
  }

  const webhookValues = new Map<string, readonly string[]>();
  for (const [integration, refs] of webhookRefs) webhookValues.set(integration, refs.map((ref) => values.get(refKey(ref))!));

  const mergedEnv: NodeJS.ProcessEnv = { ...env };
  const webhookKeys = new Set([...uses].filter(([, entry]) => entry.use.kind === 'webhook').map(([key]) => key));
  for (const [key, value] of values) {
    if (!key.startsWith('env:')) continue;
    const name = key.slice(4);
    if (webhookKeys.has(key) || mergedEnv[name] === undefined || mergedEnv[name] === '') mergedEnv[name] = value;
  }
  const readReal = options.readFile ?? ((path: string) => readFile(path, 'utf8'));
  const sources: SecretSources = {
    env: mergedEnv,
    readFile: async (path) => {
      const key = `file:${path}`;
      const value = values.get(key);
      if (value !== undefined && webhookKeys.has(key)) return value;
      try {
        return await readReal(path);
      } catch (error) {
        if (value !== undefined) return value;
        throw error;
      }
    },
  };
  return {
    sources,
    webhookSecrets: webhookValues,
    generated: [...new Set(generated)].sort(),
    async resolveWebhookSecrets(integration, _connection, refs) {
      const known = webhookValues.get(integration);
      if (known !== undefined && known.length === refs.length) return known;
      return Promise.all(refs.map((ref) => resolveSecret(ref, sources)));
    },
  };
}

/** Calls `visit` for every secret reference inside `value` (any depth). */
function walkRefs(value: unknown, visit: (ref: SecretRef) => void, depth = 0): void {
  if (depth > 20 || value === null || typeof value !== 'object') return;
  if (isRef(value)) {
    visit(value);
    return;
  }
  for (const inner of Array.isArray(value) ? value : Object.values(value)) walkRefs(inner, visit, depth + 1);
}

function randomText(random: (size: number) => Buffer, length: number, alphabet = alphanumeric): string {
  const bytes = random(length);
  let out = '';
  // 256 is not a multiple of 62: the bias is irrelevant for throwaway sandbox values.
  for (let i = 0; i < length; i += 1) out += alphabet[bytes[i]! % alphabet.length];
  return out;
}

function hex(random: (size: number) => Buffer, bytes: number): string {
  return random(bytes).toString('hex');
}

/** A fresh value for `use`. */
function generate(use: Use, random: (size: number) => Buffer): string {
  switch (use.kind) {
    case 'token':
      return `sandbox_${randomText(random, 32)}`;
    case 'awsKeyId':
      return `AKIA${randomText(random, 16, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567')}`;
    case 'awsSecret':
      return randomText(random, 40);
    case 'variable':
      return use.example ?? randomText(random, 16);
    case 'privateKey': {
      if (use.algorithm === 'HS256') return randomText(random, 48);
      const pair =
        use.algorithm === 'ES256'
          ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
          : generateKeyPairSync('rsa', { modulusLength: 2048 });
      return pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    }
    case 'webhook':
      return webhookSecret(use.scheme, random);
  }
}

/**
 * A webhook signing secret in the form `scheme`'s provider issues: Stripe `whsec_` + 32
 * alphanumerics; Standard Webhooks `whsec_` + base64 of 24 bytes (the key is the decoded bytes);
 * GitHub 40 hex digits; Slack, Twilio and Shopify 32 hex digits; Mandrill 22 base64url
 * characters; anything else 64 hex digits.
 */
export function webhookSecret(scheme: WebhookVerification['scheme'], random: (size: number) => Buffer = randomBytes): string {
  switch (scheme) {
    case 'stripe':
      return `whsec_${randomText(random, 32)}`;
    case 'standardWebhooks':
      return `whsec_${random(24).toString('base64')}`;
    case 'github':
      return hex(random, 20);
    case 'slack':
    case 'twilio':
    case 'shopify':
      return hex(random, 16);
    case 'mailchimp':
      return random(16).toString('base64url').slice(0, 22);
    default:
      return hex(random, 32);
  }
}
