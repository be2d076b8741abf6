import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { PatchbayError } from '../../engine/diag/errors.js';
import { MemoryLogger } from '../../engine/lib/log.js';
import { validateManifests, type ValidationResult } from '../../engine/manifest/validate.js';
import { ProviderConnection, type ConnectionContext } from '../../engine/providers/connection.js';
import { json, startServer, type LocalServer } from '../http/auth/local-server.js';
import { makeTempDir, writeFiles } from '../support/cli.js';
import { SecretScan } from '../support/secret-scan.js';

// The whole outbound path as the engine runs it: a manifest's connection opened against the
// bundled catalogue, secrets read from an environment, the request built, signed and sent through
// the guarded client to a real server on 127.0.0.1, and the answer read back.

const scan = new SecretScan();
const logger = new MemoryLogger();
scan.logger(logger);
afterAll(() => scan.assertClean());

const servers: LocalServer[] = [];
const connections: ProviderConnection[] = [];
afterEach(async () => {
  await Promise.all(connections.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function server(handle: Parameters<typeof startServer>[0]): Promise<LocalServer> {
  const started = await startServer(handle);
  servers.push(started);
  return started;
}

function integration(connections: string, steps = ''): string {
  return `apiVersion: patchbay/v1
kind: Integration
metadata:
  name: outbound
spec:
  connections:
${connections}
  trigger:
    schedule: { cron: "0 8 * * 1-5" }
  steps:
${steps}`;
}

/**
 * The `api` connection of the generic `http` provider to the server at `origin` (allowed as its
 * only host), with `auth` as flow YAML and the private ranges it may reach (none: no
 * `allowPrivateAddresses` line).
 */
function httpConnection(origin: string, auth: string, privateAddresses: readonly string[] = ['127.0.0.1/32']): string {
  const lines = ['    api:', '      provider: http', `      baseUrl: ${origin}`, `      allowedHosts: [ "${new URL(origin).host}" ]`];
  if (privateAddresses.length > 0) lines.push(`      allowPrivateAddresses: [ ${privateAddresses.join(', ')} ]`);
  lines.push(`      auth: ${auth}`);
  return lines.join('\n');
}

async function load(yaml: string): Promise<ValidationResult> {
  const dir = makeTempDir('patchbay-connection-');
  writeFiles(dir, { 'integrations/outbound.yaml': yaml });
  return validateManifests({ paths: ['integrations'], cwd: dir });
}

async function open(result: ValidationResult, name: string, env: Record<string, string>, context: ConnectionContext = {}): Promise<ProviderConnection> {
  const errors = result.diagnostics.filter((d) => d.severity === 'error');
  expect(errors.map((d) => `${d.code}: ${d.message}`)).toEqual([]);
  const loaded = result.integrations[0]!;
  const connection = loaded.document.spec.connections[name]!;
  const provider = result.registry.get(connection.provider)!;
  const opened = await ProviderConnection.open(name, connection, provider, { secretSources: { env }, logger, ...context });
  connections.push(opened);
  return opened;
}

async function failure(promise: Promise<unknown>): Promise<PatchbayError> {
  const error = await scan.rejects(promise);
  expect(error).toBeInstanceOf(PatchbayError);
  return error as PatchbayError;
}

describe('a generic http connection', () => {
  const steps = `    - id: ping
      call: http.request
      with: { method: POST, path: /ping, body: { hello: world } }
`;

  it('calls an allowed private server with the token from the environment and parses the answer', async () => {
    const token = scan.secret(`tok_${randomBytes(16).toString('hex')}`);
    const local = await server((_request, res) => json(res, 200, { pong: true }));
    const result = await load(integration(httpConnection(local.origin, '{ type: bearer, token: { env: API_TOKEN } }'), steps));
    const api = await open(result, 'api', { API_TOKEN: token });
    const called = await api.call('request', { method: 'POST', path: '/ping', body: { hello: 'world' } });
    expect(called.status).toBe(200);
    expect(called.output).toMatchObject({ status: 200, body: { pong: true } });
    expect(local.received).toHaveLength(1);
    expect(local.received[0]!.headers.authorization).toBe(`Bearer ${token}`);
    expect(JSON.parse(local.received[0]!.body)).toEqual({ hello: 'world' });
    // The request handed back is the unsigned one: nothing secret in it.
    expect(JSON.stringify(called.request.headers)).not.toContain(token);
  });

  it('refuses a loopback server the connection does not allow, before anything is sent', async () => {
    const local = await server((_request, res) => json(res, 200, {}));
    const yaml = integration(httpConnection(local.origin, '{ type: none }', []), steps);
    const result = await load(yaml);
    // Validation already says so ...
    expect(result.diagnostics.map((d) => d.code)).toContain('PB_CONNECTION_PRIVATE_ADDRESS');
    // ... and a connection opened anyway is refused at the socket.
    const connection = result.registry.get('http')!;
    const document = (await import('yaml')).parse(yaml) as { spec: { connections: Record<string, never> } };
    const api = await ProviderConnection.open('api', document.spec.connections.api!, connection, { logger });
    connections.push(api);
    const error = await failure(api.call('request', { method: 'GET', path: '/' }));
    expect(error.code).toBe('PB_HTTP_PRIVATE_ADDRESS');
    expect(error.retry).toBe('terminal');
    expect(local.received).toHaveLength(0);
  });

  // Low-entropy words on purpose: credential-shape masking would not catch these, only the
  // connection's own knowledge of its secrets does.
  it.each([
    ['a 400 echoing the Authorization header', 'bearer', (auth: string) => ({ status: 400, body: JSON.stringify({ message: `bad auth ${auth}` }) })],
    ['a malformed 200 echoing it', 'bearer', (auth: string) => ({ status: 200, body: `{"token":"${auth}", oops` })],
    ['a 500 echoing a basic-auth header', 'basic', (auth: string) => ({ status: 500, body: JSON.stringify({ message: `bad auth ${auth}` }) })],
  ] as const)('never shows the credential when %s', async (_label, kind, answer) => {
    const password = scan.secret(`plain-fake-password-${randomBytes(2).toString('hex')}`);
    const local = await server((request, res) => {
      const { status, body } = answer(String(request.headers.authorization));
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(body);
    });
    const auth = kind === 'bearer' ? '{ type: bearer, token: { env: API_TOKEN } }' : '{ type: basic, username: ops, password: { env: API_TOKEN } }';
    const result = await load(integration(httpConnection(local.origin, auth), steps));
    const api = await open(result, 'api', { API_TOKEN: password });
    const error = await failure(api.call('request', { method: 'GET', path: '/' }));
    expect(error.message).toContain('[redacted]');
    expect(error.message).not.toContain(password);
    expect(error.message).not.toContain(Buffer.from(`ops:${password}`).toString('base64'));
    expect(JSON.stringify(error.cause ?? {})).not.toContain(password);
  });

  it('renews the token once when 20 concurrent calls are refused with 401, and never sends the secret to another token host', async () => {
    const clientSecret = scan.secret(`cs_${randomBytes(12).toString('hex')}`);
    let issued = 0;
    const valid = new Set<string>();
    const local = await server((request, res) => {
      if (request.target === '/oauth/token') {
        issued += 1;
        const token = `at_${issued}_${randomBytes(8).toString('hex')}`;
        scan.secret(token);
        // The first token is revoked at once: every call made with it is refused.
        if (issued > 1) valid.add(token);
        return json(res, 200, { access_token: token, token_type: 'Bearer', expires_in: 3600 });
      }
      const token = String(request.headers.authorization).replace(/^Bearer /, '');
      if (!valid.has(token)) return json(res, 401, { message: 'token revoked' });
      return json(res, 200, { ok: true });
    });
    const port = new URL(local.origin).port;
    const oauth = (tokenUrl: string) => `{ type: oauth2, grant: clientCredentials, clientId: app, clientSecret: { env: CLIENT_SECRET }, tokenUrl: "${tokenUrl}" }`;
    const result = await load(integration(httpConnection(local.origin, oauth(`${local.origin}/oauth/token`)), steps));
    const api = await open(result, 'api', { CLIENT_SECRET: clientSecret });
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => api.call('request', { method: 'GET', path: '/data' })));
    expect(outcomes.every((o) => o.status === 200)).toBe(true);
    expect(issued).toBe(2);

    // A token URL elsewhere is refused before the secret leaves (validation reports it too).
    const elsewhereConnection = httpConnection(local.origin, oauth(`https://127.0.0.2:${port}/oauth/token`), ['127.0.0.1/32', '127.0.0.2/32']);
    const elsewhere = await load(integration(elsewhereConnection, steps));
    expect(elsewhere.diagnostics.map((d) => d.code)).toContain('PB_AUTH_TOKEN_URL');
    const document = (await import('yaml')).parse(integration(elsewhereConnection)) as { spec: { connections: Record<string, never> } };
    const before = local.received.length;
    const stray = await ProviderConnection.open('api', document.spec.connections.api!, elsewhere.registry.get('http')!, { secretSources: { env: { CLIENT_SECRET: clientSecret } }, logger });
    connections.push(stray);
    const refused = await failure(stray.call('request', { method: 'GET', path: '/data' }));
    expect(refused.code).toBe('PB_HTTP_HOST_NOT_ALLOWED');
    expect(local.received.length).toBe(before);
  });

  it('persists a rotated refresh token to its file secret, and only warns (without the value) for an env one', async () => {
    const clientSecret = scan.secret(`cs_${randomBytes(12).toString('hex')}`);
    const first = scan.secret(`rt_first_${randomBytes(8).toString('hex')}`);
    const rotated: string[] = [];
    const local = await server((request, res) => {
      if (request.target === '/oauth/token') {
        const sent = new URLSearchParams(request.body).get('refresh_token') ?? '';
        const next = scan.secret(`rt_next_${randomBytes(8).toString('hex')}`);
        rotated.push(next);
        return json(res, 200, { access_token: scan.secret(`at_${sent.slice(0, 8)}_${randomBytes(8).toString('hex')}`), expires_in: 3600, refresh_token: next });
      }
      return json(res, 200, { ok: true });
    });
    const dir = makeTempDir('patchbay-refresh-');
    const file = `${dir}/refresh_token`;
    writeFiles(dir, { refresh_token: `${first}\n` });
    const oauth = (ref: string) =>
      `{ type: oauth2, grant: refreshToken, clientId: app, clientSecret: { env: CLIENT_SECRET }, refreshToken: ${ref}, tokenUrl: "${local.origin}/oauth/token" }`;

    const fromFile = await open(await load(integration(httpConnection(local.origin, oauth(`{ file: "${file}" }`)), steps)), 'api', { CLIENT_SECRET: clientSecret });
    await fromFile.call('request', { method: 'GET', path: '/data' });
    expect(new URLSearchParams(local.received[0]!.body).get('refresh_token')).toBe(first);
    expect(readFileSync(file, 'utf8')).toBe(rotated[0]);

    const fromEnv = await open(await load(integration(httpConnection(local.origin, oauth('{ env: REFRESH_TOKEN }')), steps)), 'api', { CLIENT_SECRET: clientSecret, REFRESH_TOKEN: first });
    await fromEnv.call('request', { method: 'GET', path: '/data' });
    const warning = logger.lines.find((line) => line.level === 'warn' && line.message.includes('refresh token'));
    expect(warning).toBeDefined();
    expect(JSON.stringify(warning)).not.toContain(rotated[1]!);
  });
});

describe('a curated provider reached through an override base URL', () => {
  it('sends Stripe the pinned version, a form body and the idempotency key, and reads its error object', async () => {
    const key = scan.secret(`sk_test_${randomBytes(12).toString('hex')}`);
    const local = await server((request, res) => {
      if (request.target === '/v1/customers') return json(res, 200, { id: 'cus_123', object: 'customer' });
      return json(res, 402, { error: { type: 'card_error', code: 'card_declined', message: 'Your card was declined.' } });
    });
    const result = await load(
      integration(
        `    stripe:
      provider: stripe
      apiVersion: "2023-08-16"
      auth: { type: bearer, token: { env: STRIPE_KEY } }`,
        `    - id: customer
      call: stripe.customers.create
      with: { email: "{{ 'a@example.com' }}" }
`,
      ),
    );
    const sandbox: ConnectionContext = { overrideBaseUrl: local.origin, allowPrivateAddresses: ['127.0.0.1'], http: { allowHttpHosts: ['127.0.0.1'] } };
    const stripe = await open(result, 'stripe', { STRIPE_KEY: key }, sandbox);
    expect(stripe.allowedHosts).toEqual([new URL(local.origin).host]);

    const created = await stripe.call('customers.create', { email: 'a@example.com', metadata: { plan: 'pro' } }, { idempotencyKey: 'evt_1:customer' });
    expect(created.output).toEqual({ id: 'cus_123', object: 'customer' });
    const sent = local.received[0]!;
    expect(sent.method).toBe('POST');
    expect(sent.headers['stripe-version']).toBe('2023-08-16');
    expect(sent.headers['idempotency-key']).toBe('evt_1:customer');
    expect(sent.headers['content-type']).toMatch(/^application\/x-www-form-urlencoded/);
    expect(sent.body).toBe('email=a%40example.com&metadata[plan]=pro');
    expect(sent.headers.authorization).toBe(`Bearer ${key}`);

    const error = await failure(stripe.call('customers.retrieve', { customer: 'cus_404' }));
    expect(error.code).toBe('PB_HTTP_CLIENT_ERROR');
    expect(error.retry).toBe('terminal');
    expect(error.message).toContain('card_declined');
    expect(error.message).toContain('Your card was declined.');
  });

  it('signs each AWS operation for its own service and region', async () => {
    const accessKeyId = scan.secret(`AKIDTEST${randomBytes(6).toString('hex').toUpperCase()}`);
    const secretAccessKey = scan.secret(randomBytes(30).toString('base64'));
    const local = await server((request, res) => {
      if (request.headers['x-amz-target'] !== undefined) return json(res, 200, { MessageId: 'm-1', MD5OfMessageBody: 'x' });
      res.writeHead(200, { 'content-type': 'text/xml' });
      res.end('<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>abc-123</MessageId></PublishResult></PublishResponse>');
    });
    const result = await load(
      integration(
        `    aws:
      provider: aws
      variables: { region: eu-west-1 }
      auth: { type: awsSigV4, accessKeyId: { env: AWS_KEY_ID }, secretAccessKey: { env: AWS_SECRET } }`,
        `    - id: publish
      call: aws.sns.publish
      with: { TopicArn: "arn:aws:sns:eu-west-1:123456789012:orders", Message: hello }
`,
      ),
    );
    const sandbox: ConnectionContext = { overrideBaseUrl: local.origin, allowPrivateAddresses: ['127.0.0.1'], http: { allowHttpHosts: ['127.0.0.1'] } };
    const aws = await open(result, 'aws', { AWS_KEY_ID: accessKeyId, AWS_SECRET: secretAccessKey }, sandbox);
    const published = await aws.call('sns.publish', { TopicArn: 'arn:aws:sns:eu-west-1:123456789012:orders', Message: 'hello' });
    expect(JSON.stringify(published.output)).toContain('abc-123');
    await aws.call('sqs.sendMessage', { QueueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/orders', MessageBody: 'hello' });
    const [sns, sqs] = local.received;
    expect(sns!.headers.authorization).toMatch(new RegExp(`^AWS4-HMAC-SHA256 Credential=${accessKeyId}/\\d{8}/eu-west-1/sns/aws4_request, `));
    expect(sns!.body).toContain('Action=Publish');
    expect(sqs!.headers.authorization).toMatch(/\/eu-west-1\/sqs\/aws4_request, /);
    expect(sqs!.headers['x-amz-target']).toBe('AmazonSQS.SendMessage');
  });
});
