import { PatchbayError } from '../diag/errors.js';
import type { ExecutionPlan } from '../executor/plan.js';
import type { SecretSet } from '../lib/secrets.js';
import type { SecretRef } from '../types/integration.generated.js';
import type { ProviderWebhooks } from '../types/provider.generated.js';
import type { HookRoute, HookTable } from './ingress.js';
import { createWebhookVerifier } from './webhooks/verify.js';

/** Resolves a connection's `webhookSecrets` (the sandbox substitutes generated ones). */
export type WebhookSecretResolver = (integration: string, connection: string, refs: readonly SecretRef[]) => Promise<readonly string[]>;

/** The webhook endpoints of one revision. */
export interface HookRoutes extends HookTable {
  /** Integrations whose endpoint could not be prepared, with why (also in `broken`). */
  readonly problems: ReadonlyMap<string, PatchbayError>;
  readonly names: readonly string[];
}

/**
 * Prepares the webhook endpoint of every integration of `plan` whose trigger is a webhook: its
 * provider's verification and locators, its subscribed events, and a verifier holding the
 * connection's resolved secrets (all of them: a delivery signed with any is accepted, for
 * rotation). Never rejects for one integration's sake: an integration whose secrets do not
 * resolve, or whose provider's scheme cannot be verified, is answered 503 until it is fixed, so
 * the sender keeps its deliveries and retries them. Integrations already broken in the plan are
 * answered the same way.
 */
export async function buildHookRoutes(plan: ExecutionPlan, secrets: SecretSet, resolveSecrets?: WebhookSecretResolver): Promise<HookRoutes> {
  const routes = new Map<string, HookRoute>();
  const problems = new Map<string, PatchbayError>();
  const resolve: WebhookSecretResolver = resolveSecrets ?? (async (_integration, _connection, refs) => Promise.all(refs.map((ref) => secrets.resolve(ref))));
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
      const values = webhooks.verification.scheme === 'none' ? [] : await resolve(integration.name, trigger.connection, (settings.webhookSecrets ?? []) as readonly SecretRef[]);
      const any = webhooks.anyEvent === true || trigger.events.includes('*');
      routes.set(integration.name, {
        integration: integration.name,
        enabled: integration.enabled,
        webhooks,
        verifier: createWebhookVerifier(webhooks, values),
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
