import { join } from 'node:path';
import { parse, type OperationDefinitionNode } from 'graphql';
import { beforeAll, describe, expect, it } from 'vitest';
import { validateManifests } from '../../engine/manifest/validate.js';
import { buildRequest } from '../../engine/providers/request-builder.js';
import type { ProviderDocument, ProviderOperation } from '../../engine/types/provider.generated.js';

// What the issue asks of the curated catalogue, read from providers/*.yaml as the engine loads
// them: every named provider, at least five operations each with an example, rate limits,
// retries, error extraction, webhooks with verification, event type and id and sample events,
// pinned API versions, and the provider-specific points it lists (Shopify's cost budget,
// Slack's tiers, the four AWS operations, …).

const root = join(import.meta.dirname, '..', '..');

const curatedNames = ['stripe', 'twilio', 'slack', 'github', 'shopify', 'mailchimp', 'sendgrid', 'openai', 'googlemaps', 'plaid', 'aws'];
const genericNames = ['http', 'graphql', 'soap'];

let providers: Map<string, ProviderDocument>;
let diagnostics: string[];

beforeAll(async () => {
  const result = await validateManifests({ paths: ['providers'], cwd: root, bundledProviders: false, providerDirs: [], catalogueSnapshot: false });
  diagnostics = result.diagnostics.map((d) => `${d.file}:${d.start.line}:${d.start.column} ${d.code} ${d.message}`);
  providers = new Map([...result.registry.values()].map((provider) => [provider.name, provider.document]));
});

function provider(name: string): ProviderDocument {
  const found = providers.get(name);
  if (found === undefined) throw new Error(`no provider ${name} in the catalogue`);
  return found;
}

function operation(providerName: string, name: string): ProviderOperation {
  const found = provider(providerName).spec.operations[name];
  if (found === undefined) throw new Error(`no operation ${providerName}.${name}`);
  return found;
}

/** Connection variables for a call: each variable's first example, else its default. */
function exampleVariables(document: ProviderDocument): Record<string, string> {
  const variables: Record<string, string> = {};
  for (const [name, variable] of Object.entries(document.spec.variables ?? {})) {
    const value = variable.examples?.[0] ?? variable.default;
    if (value !== undefined) variables[name] = value;
  }
  return variables;
}

/** Whether `host` is one of the provider's hosts (`*.` wildcards, `{variables}` filled). */
function hostAllowed(document: ProviderDocument, host: string, variables: Record<string, string>): boolean {
  const fill = (template: string) => template.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_whole, name: string) => variables[name] ?? `{${name}}`);
  const hosts = document.spec.hosts ?? (document.spec.baseUrl === undefined ? [] : [new URL(fill(document.spec.baseUrl)).host]);
  return hosts.map(fill).some((pattern) => (pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) : host === pattern));
}

describe('the provider catalogue', () => {
  it('validates without a single finding', () => {
    expect(diagnostics).toEqual([]);
  });

  it('has every provider the issue names, curated and generic', () => {
    expect([...providers.keys()].sort()).toEqual(expect.arrayContaining([...curatedNames, ...genericNames].sort()));
    for (const name of curatedNames) expect(provider(name).spec.generic ?? false, name).toBe(false);
    for (const name of genericNames) expect(provider(name).spec.generic, name).toBe(true);
  });

  it.each(curatedNames)('%s has at least five operations, each with an example, and declares rate limit, retries and errors', (name) => {
    const spec = provider(name).spec;
    const operations = Object.entries(spec.operations);
    expect(operations.length).toBeGreaterThanOrEqual(5);
    for (const [opName, op] of operations) {
      expect(op.example, `${name}.${opName} example`).toBeTypeOf('object');
      expect(op.docsUrl, `${name}.${opName} docsUrl`).toMatch(/^https:\/\//);
    }
    expect(spec.rateLimit, 'rateLimit').toBeDefined();
    expect(spec.retry, 'retry').toBeDefined();
    expect(spec.errors, 'errors').toBeDefined();
    expect(spec.auth.length).toBeGreaterThan(0);
  });

  it.each(genericNames)('generic %s reads the request parts its inputs hold and has an example', (name) => {
    const operations = Object.values(provider(name).spec.operations);
    expect(operations).toHaveLength(1);
    const op = operations[0]!;
    expect(op.example).toBeTypeOf('object');
    expect(op.requestFromInputs?.headers).toBe('headers');
  });

  it('builds every example into a request to a host the provider allows', () => {
    let built = 0;
    for (const [name, document] of providers) {
      const variables = exampleVariables(document);
      const target = { variables, ...(document.spec.generic ? { baseUrl: 'https://api.example.com' } : {}) };
      for (const [opName, op] of Object.entries(document.spec.operations)) {
        const request = buildRequest(document, opName, op.example as Record<string, unknown>, target);
        expect(request.url.protocol, `${name}.${opName}`).toBe('https:');
        if (!document.spec.generic) expect(hostAllowed(document, request.url.host, variables), `${name}.${opName} → ${request.url.host}`).toBe(true);
        built += 1;
      }
    }
    expect(built).toBeGreaterThanOrEqual(100);
  });
});

describe('webhooks', () => {
  // Provider → scheme, where the event type and the delivery id are (undefined: none exists).
  const expected: Record<string, { scheme: string; eventType: object; eventId: object | undefined; events: string[] }> = {
    stripe: { scheme: 'stripe', eventType: { path: 'type' }, eventId: { path: 'id' }, events: ['payment_intent.succeeded', 'payment_intent.payment_failed', 'charge.refunded', 'customer.created', 'invoice.paid', 'checkout.session.completed'] },
    twilio: { scheme: 'twilio', eventType: { path: 'SmsStatus' }, eventId: { header: 'I-Twilio-Idempotency-Token' }, events: ['received', 'delivered', 'failed'] },
    slack: { scheme: 'slack', eventType: { path: 'event.type' }, eventId: { path: 'event_id' }, events: ['message', 'app_mention'] },
    github: { scheme: 'github', eventType: { header: 'X-GitHub-Event', path: 'action' }, eventId: { header: 'X-GitHub-Delivery' }, events: ['issues.opened', 'push'] },
    shopify: { scheme: 'shopify', eventType: { header: 'X-Shopify-Topic' }, eventId: { header: 'X-Shopify-Webhook-Id' }, events: ['orders/create', 'orders/paid'] },
    // Mailchimp's audience webhooks carry no delivery id.
    mailchimp: { scheme: 'mailchimp', eventType: { path: 'type' }, eventId: undefined, events: ['subscribe', 'unsubscribe'] },
    sendgrid: { scheme: 'sendgrid', eventType: { path: 'event' }, eventId: { path: 'sg_event_id' }, events: ['delivered', 'bounce', 'open', 'click'] },
    // Plaid's deliveries carry no id either.
    plaid: { scheme: 'plaid', eventType: { path: 'webhook_code' }, eventId: undefined, events: ['SYNC_UPDATES_AVAILABLE', 'ERROR', 'DEFAULT_UPDATE'] },
    aws: { scheme: 'awsSns', eventType: { header: 'x-amz-sns-message-type' }, eventId: { path: 'MessageId' }, events: ['Notification', 'SubscriptionConfirmation'] },
  };

  it.each(Object.keys(expected))('%s verifies deliveries and locates their type and id', (name) => {
    const want = expected[name]!;
    const webhooks = provider(name).spec.webhooks;
    expect(webhooks?.verification.scheme).toBe(want.scheme);
    expect(webhooks?.eventType).toEqual(want.eventType);
    expect(webhooks?.eventId).toEqual(want.eventId);
    for (const event of want.events) {
      const definition = webhooks?.events?.[event];
      expect(definition?.schema, `${name} ${event} schema`).toBeTypeOf('object');
      expect(definition?.sample, `${name} ${event} sample`).toBeTypeOf('object');
    }
  });

  it('every curated API without webhooks says so by having none', () => {
    const without = curatedNames.filter((name) => provider(name).spec.webhooks === undefined);
    expect(without.sort()).toEqual(['googlemaps', 'openai']);
  });

  it('signature schemes name the headers they read', () => {
    expect(provider('sendgrid').spec.webhooks?.verification).toMatchObject({
      header: 'X-Twilio-Email-Event-Webhook-Signature',
      timestampHeader: 'X-Twilio-Email-Event-Webhook-Timestamp',
      signedPayload: '{timestamp}{body}',
    });
    expect(provider('plaid').spec.webhooks?.verification).toMatchObject({ header: 'Plaid-Verification' });
    expect(provider('stripe').spec.webhooks?.verification).toMatchObject({ header: 'Stripe-Signature', signedPayload: '{timestamp}.{body}' });
  });
});

describe('API versions pinned by default', () => {
  it.each([
    ['stripe', { in: 'header', name: 'Stripe-Version', default: '2023-08-16' }],
    ['github', { in: 'header', name: 'X-GitHub-Api-Version', default: '2022-11-28' }],
    ['shopify', { in: 'path', default: '2026-07' }],
    ['plaid', { in: 'header', name: 'Plaid-Version', default: '2020-09-14' }],
  ])('%s', (name, pin) => {
    const spec = provider(name).spec;
    expect(spec.apiVersion).toMatchObject(pin);
    expect(new RegExp(spec.apiVersion!.pattern!, 'u').test(spec.apiVersion!.default)).toBe(true);
  });

  it('Shopify puts its dated version in the base URL', () => {
    expect(provider('shopify').spec.baseUrl).toContain('/admin/api/{apiVersion}');
  });
});

describe('AWS', () => {
  it('has the four operations the issue names, each on its own service host and signing name', () => {
    const ses = operation('aws', 'ses.sendEmail');
    expect(ses).toMatchObject({ method: 'POST', baseUrl: 'https://email.{region}.amazonaws.com', path: '/v2/email/outbound-emails', body: 'json', awsService: 'ses' });
    expect((ses.input as { required?: string[] }).required).toContain('Content');

    const sns = operation('aws', 'sns.publish');
    expect(sns).toMatchObject({ baseUrl: 'https://sns.{region}.amazonaws.com', path: '/', body: 'form', awsService: 'sns', responseFormat: 'xml' });
    expect(sns.fixed?.body).toEqual({ Action: 'Publish', Version: '2010-03-31' });

    const sqs = operation('aws', 'sqs.sendMessage');
    expect(sqs).toMatchObject({ baseUrl: 'https://sqs.{region}.amazonaws.com', path: '/', contentType: 'application/x-amz-json-1.0', awsService: 'sqs' });
    expect(sqs.fixed?.headers).toEqual({ 'X-Amz-Target': 'AmazonSQS.SendMessage' });

    const s3 = operation('aws', 's3.putObject');
    expect(s3).toMatchObject({ method: 'PUT', baseUrl: 'https://s3.{region}.amazonaws.com', path: '/{Bucket}/{Key+}', body: 'raw', rawBody: 'Body', responseFormat: 'empty', awsService: 's3' });
    expect(s3.headers?.ContentType).toBe('Content-Type');
  });

  it('reads the XML errors of S3 and SNS where the rest of AWS answers JSON', () => {
    expect(provider('aws').spec.errors).toMatchObject({ codePath: '__type', messagePath: 'message' });
    for (const name of ['s3.putObject', 's3.getObject']) expect(operation('aws', name).errors, name).toEqual({ codePath: 'Error.Code', messagePath: 'Error.Message' });
    expect(operation('aws', 'sns.publish').errors).toEqual({ codePath: 'ErrorResponse.Error.Code', messagePath: 'ErrorResponse.Error.Message' });
  });

  it('signs every operation with SigV4 for its region, and reaches only the declared regional hosts', () => {
    const spec = provider('aws').spec;
    expect(spec.auth.map((scheme) => scheme.type)).toEqual(['awsSigV4']);
    expect(spec.variables?.region?.pattern).toBeDefined();
    for (const [name, op] of Object.entries(spec.operations)) {
      expect(op.awsService, name).toBeTypeOf('string');
      expect(op.baseUrl, name).toMatch(/^https:\/\/[a-z0-9]+\.\{region\}\.amazonaws\.com$/);
    }
    expect(spec.hosts?.every((host) => host.endsWith('.{region}.amazonaws.com'))).toBe(true);
  });

  it('builds S3 object keys with their slashes and SNS calls as query-protocol forms', () => {
    const aws = provider('aws');
    const target = { variables: { region: 'eu-west-1' } };
    const put = buildRequest(aws, 's3.putObject', { Bucket: 'reports', Key: 'daily/2026-07-14/orders.csv', Body: 'a,b\n', ContentType: 'text/csv' }, target);
    expect(put.url.href).toBe('https://s3.eu-west-1.amazonaws.com/reports/daily/2026-07-14/orders.csv?x-id=PutObject');
    expect(put.headers['content-type']).toBe('text/csv');
    expect(put.body).toBe('a,b\n');
    const publish = buildRequest(aws, 'sns.publish', { TopicArn: 'arn:aws:sns:eu-west-1:123456789012:orders', Message: 'hi' }, target);
    expect(String(publish.body)).toMatch(/^Action=Publish&Version=2010-03-31&TopicArn=/);
  });
});

describe('what the issue asks of each curated provider', () => {
  it('Shopify spends GraphQL calls by cost in their own tier and REST calls by request', () => {
    const spec = provider('shopify').spec;
    expect(spec.rateLimit?.strategy ?? 'requests').toBe('requests');
    expect(spec.rateLimit?.tiers?.graphql?.strategy).toBe('cost');
    for (const [name, op] of Object.entries(spec.operations)) {
      if (op.body !== 'graphql') continue;
      expect(op.rateLimitTier, name).toBe('graphql');
      expect(op.cost, name).toBeGreaterThan(0);
    }
    expect(spec.errors?.graphqlErrors).toBe(true);
    expect(spec.auth.find((scheme) => scheme.type === 'bearer')).toMatchObject({ header: 'X-Shopify-Access-Token', prefix: '' });
    expect(spec.baseUrl).toContain('{shop}');
  });

  it("Shopify's GraphQL documents parse and their variables are exactly the operation's inputs", () => {
    for (const [name, op] of Object.entries(provider('shopify').spec.operations)) {
      if (op.graphql === undefined) continue;
      const definition = parse(op.graphql.document).definitions[0] as OperationDefinitionNode;
      const variables = (definition.variableDefinitions ?? []).map((v) => v.variable.name.value).sort();
      expect(variables, name).toEqual(Object.keys((op.input as { properties: object }).properties).sort());
    }
  });

  it('Slack limits methods by tier, chat.postMessage per channel, and sends form bodies', () => {
    const spec = provider('slack').spec;
    const tiers = spec.rateLimit?.tiers ?? {};
    expect(Object.fromEntries(['tier1', 'tier2', 'tier3', 'tier4'].map((tier) => [tier, [tiers[tier]?.requests, tiers[tier]?.per]]))).toEqual({
      tier1: [1, '1m'],
      tier2: [20, '1m'],
      tier3: [50, '1m'],
      tier4: [100, '1m'],
    });
    expect(tiers.special).toMatchObject({ requests: 1, per: '1s', keyInput: 'channel' });
    expect(operation('slack', 'chat.postMessage').rateLimitTier).toBe('special');
    expect(spec.retry?.errorCodes).toContain('ratelimited');
    expect(spec.errors?.okPath).toBe('ok');
    for (const [name, op] of Object.entries(spec.operations)) if (op.method === 'POST') expect(op.body, name).toBe('form');
  });

  it('Mailchimp caps connections at ten and puts the data centre in the host', () => {
    const spec = provider('mailchimp').spec;
    expect(spec.rateLimit?.concurrency).toBe(10);
    expect(spec.baseUrl).toBe('https://{dc}.api.mailchimp.com/3.0');
    expect(Object.keys(spec.operations)).toEqual(expect.arrayContaining(['lists.members.createOrUpdate', 'lists.members.create', 'lists.members.tags.update', 'campaigns.list', 'ping']));
    expect(operation('mailchimp', 'lists.members.createOrUpdate')).toMatchObject({ method: 'PUT', path: '/lists/{list_id}/members/{subscriber_hash}' });
  });

  it('OpenAI never retries a spent quota', () => {
    expect(provider('openai').spec.retry?.excludeErrorCodes).toContain('insufficient_quota');
  });

  it('GitHub exchanges an App JWT for an installation token beside personal tokens', () => {
    const spec = provider('github').spec;
    expect(spec.auth.map((scheme) => scheme.type)).toEqual(expect.arrayContaining(['bearer', 'jwt']));
    expect(spec.auth.find((scheme) => scheme.type === 'jwt')).toMatchObject({
      tokenExchange: true,
      exchange: 'bearer',
      tokenUrl: 'https://api.github.com/app/installations/{installationId}/access_tokens',
      tokenPath: 'token',
      expiresAtPath: 'expires_at',
    });
    expect(spec.variables?.installationId).toBeDefined();
  });

  it('Twilio follows next_page_uri', () => {
    expect(provider('twilio').spec.pagination).toMatchObject({ style: 'nextUrl', nextUrlPath: 'next_page_uri' });
  });

  it('Stripe declares its idempotency header and error object, and sends form bodies', () => {
    const spec = provider('stripe').spec;
    expect(spec.idempotency?.header).toBe('Idempotency-Key');
    expect(spec.errors).toMatchObject({ messagePath: 'error.message', codePath: 'error.code' });
    for (const name of ['customers.create', 'customers.retrieve', 'customers.list', 'customers.update', 'paymentIntents.create', 'paymentIntents.retrieve', 'paymentIntents.list', 'refunds.create', 'charges.list']) {
      expect(spec.operations[name], name).toBeDefined();
    }
    for (const [name, op] of Object.entries(spec.operations)) if (op.method === 'POST') expect(op.body, name).toBe('form');
  });

  it('Google Maps sends the key in the query and reads failures from the status string', () => {
    const spec = provider('googlemaps').spec;
    expect(spec.auth).toEqual([expect.objectContaining({ type: 'apiKey', in: 'query', name: 'key' })]);
    expect(spec.errors).toMatchObject({ statusPath: 'status', okStatuses: ['OK', 'ZERO_RESULTS'], messagePath: 'error_message' });
    expect(spec.retry?.errorCodes).toEqual(expect.arrayContaining(['OVER_QUERY_LIMIT', 'UNKNOWN_ERROR']));
    expect(operation('googlemaps', 'roads.snapToRoads').baseUrl).toBe('https://roads.googleapis.com');
  });

  it('Plaid picks its environment host, sends the client id header and the secret, and pages transactions by cursor', () => {
    const spec = provider('plaid').spec;
    expect(spec.baseUrl).toBe('https://{environment}.plaid.com');
    expect(spec.headers).toEqual({ 'PLAID-CLIENT-ID': '{clientId}' });
    expect(spec.auth).toEqual([expect.objectContaining({ type: 'apiKey', in: 'header', name: 'PLAID-SECRET' })]);
    expect(spec.errors).toMatchObject({ codePath: 'error_code', messagePath: 'error_message' });
    expect(operation('plaid', 'transactions.sync').pagination).toMatchObject({ style: 'cursor', cursorParam: 'cursor', cursorPath: 'next_cursor', hasMorePath: 'has_more' });
    const request = buildRequest(provider('plaid'), 'accounts.get', { access_token: 'access-sandbox-fake' }, { variables: { environment: 'sandbox', clientId: '5f1e0c0ffee0c0ffee0c0ffe' } });
    expect(request.url.href).toBe('https://sandbox.plaid.com/accounts/get');
    expect(request.headers).toMatchObject({ 'plaid-client-id': '5f1e0c0ffee0c0ffee0c0ffe', 'plaid-version': '2020-09-14' });
  });
});
