import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../engine/daemon/sandbox/sandbox.js';
import { exampleOutput, synthesizeValue } from '../../engine/daemon/sandbox/synthesize.js';
import { validateManifests } from '../../engine/manifest/validate.js';
import type { ProviderRegistry } from '../../engine/providers/registry.js';
import { parseXml } from '../../engine/providers/response-reader.js';
import { repoRoot } from '../support/cli.js';

// The sandbox routes by what names an operation in each protocol and answers in its format.

let sandbox: Sandbox;
let registry: ProviderRegistry;
beforeAll(async () => {
  registry = (await validateManifests({ paths: [join(repoRoot, 'integrations')], cwd: repoRoot })).registry;
  sandbox = await startSandbox({ registry });
});
afterAll(() => sandbox.close());

async function call(provider: string, path: string, init: RequestInit = {}): Promise<{ status: number; type: string; text: string; operation: string | undefined }> {
  const response = await fetch(`${sandbox.baseUrlFor(provider)}${path}`, init);
  const text = await response.text();
  const last = sandbox.received().at(-1)!;
  return { status: response.status, type: response.headers.get('content-type') ?? '', text, operation: last.operation };
}

describe('sandbox server', () => {
  it('routes REST paths with parameters, preferring literal segments', async () => {
    const created = await call('stripe', '/v1/customers', { method: 'POST', body: 'email=a%40example.com', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'Bearer sk_test_123456789012345' } });
    expect(created).toMatchObject({ status: 200, operation: 'customers.create' });
    expect(sandbox.received().at(-1)!.headers.authorization).toBe('Bearer [redacted]');
    const issue = await call('github', '/repos/octo/widgets/issues/7/labels', { method: 'POST', body: '{"labels":["x"]}', headers: { 'content-type': 'application/json' } });
    expect(issue).toMatchObject({ status: 200, operation: 'issues.addLabels' });
  });

  it('routes AWS JSON by X-Amz-Target and AWS query by Action, and answers XML where the operation does', async () => {
    const sqs = await call('aws', '/', { method: 'POST', body: '{}', headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'AmazonSQS.SendMessage' } });
    expect(sqs.operation).toBe('sqs.sendMessage');
    const sns = await call('aws', '/', { method: 'POST', body: 'Action=Publish&Version=2010-03-31&Message=hi', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(sns).toMatchObject({ status: 200, operation: 'sns.publish', type: 'application/xml' });
    expect(() => parseXml(sns.text)).not.toThrow();
  });

  it('routes GraphQL operations by their document and answers { data }', async () => {
    const provider = registry.get('shopify')!.document;
    const document = provider.spec.operations['orders.search']!.graphql!.document;
    const answer = await call('shopify', '/graphql.json', { method: 'POST', body: JSON.stringify({ query: document, variables: { first: 5 } }), headers: { 'content-type': 'application/json' } });
    expect(answer.operation).toBe('orders.search');
    const body = JSON.parse(answer.text) as { data: { orders: { nodes: unknown[]; pageInfo: { hasNextPage: boolean } } } };
    expect(body.data.orders.nodes).toHaveLength(1);
    expect(body.data.orders.pageInfo.hasNextPage).toBe(false);
  });

  it('answers a SOAP envelope naming the operation element', async () => {
    const envelope = '<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><ns:GetRate xmlns:ns="urn:x"/></soap:Body></soap:Envelope>';
    const answer = await call('soap', '', { method: 'POST', body: envelope, headers: { 'content-type': 'text/xml; charset=utf-8', soapaction: '"urn:x/GetRate"' } });
    expect(answer).toMatchObject({ status: 200, operation: 'call' });
    expect(parseXml(answer.text)).toMatchObject({ Envelope: { Body: { GetRateResponse: { Sandbox: 'true' } } } });
  });

  it('answers 404 for unknown providers and requests no operation fits, and records them', async () => {
    expect((await call('nope', '/x')).status).toBe(404);
    const unmatched = await call('stripe', '/v9/nothing', { method: 'DELETE' });
    expect(unmatched.status).toBe(404);
    expect(JSON.parse(unmatched.text)).toMatchObject({ error: { code: 'sandbox_no_operation' } });
    expect(sandbox.received().at(-1)).toMatchObject({ provider: 'stripe', operation: undefined, status: 404 });
  });

  it('synthesizes deterministic values and sets the provider success signals', () => {
    const schema = { type: 'object', required: ['id', 'when'], properties: { id: { type: 'string' }, when: { type: 'string', format: 'date-time' }, kind: { enum: [null, 'a'] }, n: { type: 'integer', minimum: 3 }, errors: { type: 'array', items: { type: 'object' } } } };
    expect(synthesizeValue(schema)).toEqual({ id: 'sandbox-id', when: '2026-01-15T09:30:00Z', kind: 'a', n: 3, errors: [] });
    const slack = registry.get('slack')!.document;
    expect(exampleOutput(slack, slack.spec.operations['chat.postMessage']!)).toMatchObject({ ok: true });
    // GitHub's listing answers the webhook sample's issue rather than placeholders.
    const github = registry.get('github')!.document;
    const issues = exampleOutput(github, github.spec.operations['issues.listForRepo']!) as { title: string }[];
    expect(issues[0]!.title).not.toMatch(/^sandbox-/);
  });
});
