import { PatchbayError } from '../diag/errors.js';
import type { ExecutionPlan } from '../executor/plan.js';
import type { HttpClient } from '../http/client.js';
import type { SecretSet } from '../lib/secrets.js';
import type { ProviderConnection } from '../providers/connection.js';
import type { SecretRef } from '../types/integration.generated.js';
import type { ProviderWebhooks } from '../types/provider.generated.js';
import type { HookRoute, HookTable } from './ingress.js';
import { plaidKeyFetcher, type PlaidKeyFetcher } from './webhooks/plaid-verification.js';
import { createSnsCertificateClient, createSnsCertificateFetcher, SnsCertificateCache } from './webhooks/sns-signature.js';
import { createWebhookVerifier, type WebhookKeySources } from './webhooks/verify.js';

/** Resolves a connection's `webhookSecrets` (the sandbox substitutes generated ones). */
export type WebhookSecretResolver = (integration: string, connection: string, refs: readonly SecretRef[]) => Promise<readonly string[]>;

/** The webhook endpoints of one revision. */
export interface HookRoutes extends HookTable {
  /** Integrations whose endpoint could not be prepared, with why (also in `broken`). */
  readonly problems: ReadonlyMap<string, PatchbayError>;
  readonly names: readonly string[];
  /** Closes what the routes opened themselves (the SNS certificate client); the plan's connections are the plan's. */
  close(): Promise<void>;
}

/** How the routes fetch the keys of schemes that verify with published keys. */
export interface HookRoutesOptions {
  /**
   * SNS signing certificates, shared by every `awsSns` connection. @default a cache over
   * `createSnsCertificateClient()` (https to sns.<region>.amazonaws.com only, 5 s, 64 KiB),
   * created on first need and closed by `close()`
   */
  readonly snsCertificates?: SnsCertificateCache;
  /** Plaid's key fetcher of a connection. @default plaidKeyFetcher (the connection's `webhookVerificationKey.get`) */
  readonly plaidKeys?: (connection: ProviderConnection) => PlaidKeyFetcher;
}

/**
 * Prepares the webhook endpoint of every integration of `plan` whose trigger is a webhook: its
 * provider's verification and locators, its subscribed events, and a verifier holding the
 * connection's resolved secrets (all of them: a delivery signed with any is accepted, for
 * rotation). Never rejects for one integration's sake: an integration whose secrets do not
 * resolve, or whose provider's scheme cannot be verified, is answered 503 until it is fixed, so
 * the sender keeps its deliveries and retries them. Integrations already broken in the plan are
 * answered the same way.
 *
 * Scheme `plaid` resolves no webhook secret: it verifies with keys fetched by the connection's
 * own API credentials, so its connection must have `auth` (PB_WEBHOOK_CONFIG otherwise). Scheme
 * `awsSns` reads its `webhookSecrets` as the accepted TopicArns. Call `close()` when the routes
 * are replaced or the daemon stops.
 */
export async function buildHookRoutes(plan: ExecutionPlan, secrets: SecretSet, resolveSecrets?: WebhookSecretResolver, options: HookRoutesOptions = {}): Promise<HookRoutes> {
  const routes = new Map<string, HookRoute>();
  const problems = new Map<string, PatchbayError>();
  const resolve: WebhookSecretResolver = resolveSecrets ?? (async (_integration, _connection, refs) => Promise.all(refs.map((ref) => secrets.resolve(ref))));
  let snsClient: HttpClient | undefined;
  let snsCertificates = options.snsCertificates;
  const certificates = (): SnsCertificateCache => {
    if (snsCertificates === undefined) {
      snsClient = createSnsCertificateClient();
      snsCertificates = new SnsCertificateCache({ fetch: createSnsCertificateFetcher(snsClient) });
    }
    return snsCertificates;
  };
  for (const integration of plan.integrations.values()) {
    const trigger = integration.document.spec.trigger.webhook;
    if (trigger === undefined) continue;
    try {
      const connection = integration.connections.get(trigger.connection);
      const settings = integration.document.spec.connections[trigger.connection];
      const webhooks = connection?.provider.document.spec.webhooks;
      if (connection === undefined || settings === undefined || webhooks === undefined) {
        throw new PatchbayError('PB_TRIGGER_NO_WEBHOOKS', `connection "${trigger.connection}" does not receive webhooks`);
      }
      const scheme = webhooks.verification.scheme;
      let keySources: WebhookKeySources = {};
      if (scheme === 'plaid') {
        if (settings.auth === undefined) {
          throw new PatchbayError(
            'PB_WEBHOOK_CONFIG',
            `webhook verification "plaid": connection "${trigger.connection}" needs auth (its Plaid secret) and the clientId variable: Plaid's webhook verification keys are fetched with them`,
          );
        }
        keySources = { plaidKeys: (options.plaidKeys ?? plaidKeyFetcher)(connection) };
      } else if (scheme === 'awsSns') {
        keySources = { snsCertificates: certificates() };
      }
      const values = scheme === 'none' || scheme === 'plaid' ? [] : await resolve(integration.name, trigger.connection, (settings.webhookSecrets ?? []) as readonly SecretRef[]);
      const any = webhooks.anyEvent === true || trigger.events.includes('*');
      routes.set(integration.name, {
        integration: integration.name,
        enabled: integration.enabled,
        webhooks,
        verifier: createWebhookVerifier(webhooks, values, keySources),
        events: any ? 'any' : new Set(trigger.events),
        idSigned: eventIdSigned(webhooks),
      });
    } catch (error) {
      problems.set(integration.name, error instanceof PatchbayError ? error : new PatchbayError('PB_INTEGRATION_BROKEN', error instanceof Error ? error.message : String(error), { cause: error }));
    }
  }
  return {
    problems,
    names: [...routes.keys()],
    route: (name) => routes.get(name),
    broken: (name) => problems.get(name) ?? plan.broken.get(name),
    close: async () => {
      await snsClient?.close();
    },
  };
}

/**
 * Whether the provider's event id is covered by its signature: an id in the body is (the body is
 * signed); an id in a header is only when the scheme signs that header (`{id}` in what is signed,
 * as Standard Webhooks does). GitHub's `X-GitHub-Delivery`, Shopify's `X-Shopify-Webhook-Id` and
 * Twilio's idempotency token are not: a captured delivery sent again with a new id would pass the
 * signature, so their deliveries are deduplicated by the hash of the body instead.
 */
export function eventIdSigned(webhooks: ProviderWebhooks): boolean {
  const locator = webhooks.eventId;
  const verification = webhooks.verification;
  if (locator === undefined) {
    // The verifier's delivery id comes from `idHeader`.
    return verification.idHeader !== undefined && (verification.signedPayload ?? '').includes('{id}');
  }
  if (locator.header === undefined) return locator.path !== undefined;
  return locator.path === undefined && (verification.signedPayload ?? '').includes('{id}') && verification.idHeader?.toLowerCase() === locator.header.toLowerCase();
}
