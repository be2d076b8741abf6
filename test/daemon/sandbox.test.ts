import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sandboxConnectionContext, startSandbox, type Sandbox } from '../../engine/daemon/sandbox/sandbox.js';
import { createSandboxSecrets } from '../../engine/daemon/sandbox/secrets.js';
import { exampleOutput } from '../../engine/daemon/sandbox/synthesize.js';
import { Executor, type SubmittedEvent } from '../../engine/executor/executor.js';
import { buildExecutionPlan } from '../../engine/executor/plan.js';
import { SecretSet } from '../../engine/lib/secrets.js';
import { validateManifests, type LoadedIntegration } from '../../engine/manifest/validate.js';
import { pageItems, paginationOf } from '../../engine/providers/request-builder.js';
import type { ProviderRegistry } from '../../engine/providers/registry.js';
import { openSqliteStore } from '../../engine/store/sqlite/sqlite-store.js';
import { makeTempDir, repoRoot } from '../support/cli.js';

// Every bundled integration runs to success against the sandbox, with no account and no
// environment: the plan's connections go to the sandbox, secrets are generated, and each
// integration gets the event its trigger would produce.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function bundled(): Promise<{ integrations: readonly LoadedIntegration[]; registry: ProviderRegistry }> {
  const validation = await validateManifests({ paths: [join(repoRoot, 'integrations')], cwd: repoRoot });
  const errors = validation.diagnostics.filter((diagnostic) => diagnostic.severity === 'error');
  expect(errors).toEqual([]);
  return { integrations: validation.integrations, registry: validation.registry };
}

/** The event each trigger kind produces: a provider sample, a polled item, a schedule tick. */
function eventFor(integration: LoadedIntegration, registry: ProviderRegistry): SubmittedEvent {
  const trigger = integration.document.spec.trigger;
  const connections = integration.document.spec.connections;
  if (trigger.webhook !== undefined) {
    const provider = registry.get(connections[trigger.webhook.connection]!.provider)!;
    const type = trigger.webhook.events[0]!;
    const sample = provider.document.spec.webhooks!.events![type]!.sample;
    expect(sample, `${provider.name} has a sample of ${type}`).toBeDefined();
    return { integration: integration.name, eventKey: `evt_${integration.name}`, type, source: 'webhook', payload: sample };
  }
  if (trigger.poll !== undefined) {
    const provider = registry.get(connections[trigger.poll.connection]!.provider)!;
    const operation = provider.document.spec.operations[trigger.poll.operation]!;
    const items = pageItems(paginationOf(provider.document, operation), exampleOutput(provider.document, operation)) ?? [];
    expect(items.length).toBeGreaterThan(0);
    return { integration: integration.name, eventKey: `item_${integration.name}`, source: 'poll', payload: items[0] };
  }
  return { integration: integration.name, eventKey: `tick_${integration.name}`, source: 'schedule', payload: { scheduledAt: '2026-01-15T08:00:00.000Z' } };
}

async function sandboxEngine(env: NodeJS.ProcessEnv = {}) {
  const { integrations, registry } = await bundled();
  const sandboxSecrets = createSandboxSecrets({ integrations, registry, env });
  const secrets = new SecretSet(sandboxSecrets.sources);
  const sandbox: Sandbox = await startSandbox({ registry, secrets });
  cleanups.push(() => sandbox.close());
  const plan = await buildExecutionPlan({
    integrations,
    registry,
    secrets,
    connectionContext: sandboxConnectionContext(sandbox),
  });
  cleanups.push(() => plan.close());
  const store = await openSqliteStore(join(makeTempDir('patchbay-sandbox-'), 'state.db'));
  cleanups.push(() => store.close());
  const executor = new Executor({ store, plan });
  return { integrations, registry, sandboxSecrets, secrets, sandbox, plan, store, executor };
}

describe('sandbox', () => {
  it('runs every bundled integration to success with no environment at all', async () => {
    const engine = await sandboxEngine();
    expect([...engine.plan.broken].map(([name, error]) => `${name}: ${error.code} ${error.message}`)).toEqual([]);
    expect(engine.integrations.length).toBeGreaterThanOrEqual(6);
    const accepted = await engine.executor.submit(engine.integrations.map((integration) => eventFor(integration, engine.registry)));
    await engine.executor.drain();

    const called: Record<string, string[]> = {};
    for (const [index, integration] of engine.integrations.entries()) {
      const runId = accepted[index]!.runId;
      const run = await engine.store.getRun(runId);
      const attempts = await engine.store.getAttempts(runId);
      expect({ integration: integration.name, status: run?.status, error: run?.errorMessage }).toEqual({ integration: integration.name, status: 'succeeded', error: undefined });
      const steps = await engine.store.getSteps(runId);
      expect(steps.map((step) => step.status).every((status) => status === 'succeeded' || status === 'skipped')).toBe(true);
      called[integration.name] = attempts.filter((attempt) => attempt.outcome === 'succeeded').map((attempt) => attempt.stepId);
    }
    // Steps that ran (their condition held on the sample) reached the sandbox and were answered.
    expect(called['stripe-payment-followup']).toEqual(['sendSms', 'subscribe']);
    expect(called['github-issue-to-slack']).toEqual(['notify']);
    expect(called['soap-example']).toEqual(['createCreditNote']);
    expect(called['shopify-orders-to-sendgrid']).toEqual(['sendConfirmation']);
    expect(called['weekday-openai-summary']).toEqual(['listIssues', 'summarise', 'postDigest']);
    expect(called['graphql-example']).toEqual(['lowStock']);

    const received = engine.sandbox.received();
    const seen = received.map((record) => `${record.provider}.${record.operation ?? '?'} ${record.status}`);
    expect(seen).toEqual(
      expect.arrayContaining([
        'twilio.messages.create 200',
        'mailchimp.lists.members.createOrUpdate 200',
        'slack.chat.postMessage 200',
        'soap.call 200',
        'sendgrid.mail.send 200',
        'github.issues.listForRepo 200',
        'openai.chat.completions.create 200',
        'graphql.query 200',
      ]),
    );
    expect(received.every((record) => record.status === 200)).toBe(true);
    // What was recorded holds no generated secret, and credentials are masked.
    const recorded = JSON.stringify(received);
    for (const value of engine.secrets.values()) expect(recorded).not.toContain(value);
    const twilio = received.find((record) => record.operation === 'messages.create')!;
    expect(twilio.headers.authorization).toBe('Basic [redacted]');
    // The account SID is also the basic-auth user name, a resolved secret: hidden in the path too.
    expect(twilio.path).toBe('/2010-04-01/Accounts/[redacted]/Messages.json');
    expect(twilio.body).toContain('To=%2B15555550123');
  });

  it('uses real environment values where set, and always generates webhook secrets', async () => {
    const env = { SLACK_BOT_TOKEN: 'xoxb-real-looking-but-fake', STRIPE_WEBHOOK_SECRET: 'whsec_from_the_environment' };
    const engine = await sandboxEngine(env);
    expect(engine.sandboxSecrets.sources.env?.SLACK_BOT_TOKEN).toBe(env.SLACK_BOT_TOKEN);
    const stripe = engine.sandboxSecrets.webhookSecrets.get('stripe-payment-followup')!;
    expect(stripe).toHaveLength(1);
    expect(stripe[0]).toMatch(/^whsec_[0-9A-Za-z]{32}$/);
    expect(stripe[0]).not.toBe(env.STRIPE_WEBHOOK_SECRET);
    expect(engine.sandboxSecrets.webhookSecrets.get('github-issue-to-slack')![0]).toMatch(/^[0-9a-f]{40}$/);
    expect(await engine.sandboxSecrets.resolveWebhookSecrets('stripe-payment-followup', 'stripe', [{ env: 'STRIPE_WEBHOOK_SECRET' }])).toEqual(stripe);
    expect(engine.sandboxSecrets.generated).toContain('GITHUB_TOKEN');
    expect(engine.sandboxSecrets.generated).not.toContain('SLACK_BOT_TOKEN');
    // A second start generates other values.
    const again = createSandboxSecrets({ integrations: engine.integrations, registry: engine.registry, env });
    expect(again.webhookSecrets.get('stripe-payment-followup')![0]).not.toBe(stripe[0]);
  });
});
