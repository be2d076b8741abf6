import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { json, startServer, type LocalServer } from './http/auth/local-server.js';
import { makeTempDir, runCli, writeFiles } from './support/cli.js';
import { SecretScan } from './support/secret-scan.js';

// `patchbay call` as a user runs it: a real child process, a manifest on disk, the token in the
// environment, and a real server on 127.0.0.1 playing the API.

const scan = new SecretScan();
afterAll(() => scan.assertClean());

const servers: LocalServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

function project(origin: string, allowPrivate: boolean): string {
  const port = new URL(origin).port;
  const dir = makeTempDir('patchbay-call-');
  writeFiles(dir, {
    'integrations/orders.yaml': `apiVersion: patchbay/v1
kind: Integration
metadata:
  name: orders
spec:
  connections:
    shop:
      provider: http
      baseUrl: ${origin}/api
      allowedHosts: [ "127.0.0.1:${port}" ]
${allowPrivate ? '      allowPrivateAddresses: [ 127.0.0.1/32 ]\n' : ''}      auth: { type: bearer, token: { env: SHOP_TOKEN } }
  trigger:
    schedule: { cron: "0 8 * * 1-5" }
  steps:
    - id: fetch
      call: http.request
      with: { method: GET, path: /orders }
`,
  });
  return dir;
}

describe('patchbay call', () => {
  it('calls the operation with the connection, prints the output, and never prints the token', async () => {
    const token = scan.secret(`shp_${randomBytes(16).toString('hex')}`);
    const local = await startServer((request, res) => json(res, 200, { orders: [{ id: 42 }], seen: request.headers.authorization }));
    servers.push(local);
    const dir = project(local.origin, true);
    const result = await runCli(['call', 'http.request', '--with', '{"method":"GET","path":"/orders/recent","query":{"limit":2}}'], {
      cwd: dir,
      env: { SHOP_TOKEN: token },
    });
    scan.text('stdout', result.stdout);
    scan.text('stderr', result.stderr);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(local.received).toHaveLength(1);
    expect(local.received[0]!.target).toBe('/api/orders/recent?limit=2');
    expect(local.received[0]!.headers.authorization).toBe(`Bearer ${token}`);
    const output = JSON.parse(result.stdout) as { status: number; body: { orders: unknown[]; seen: string } };
    expect(output.status).toBe(200);
    expect(output.body.orders).toEqual([{ id: 42 }]);
    // The server echoed the token back; the command replaced it before printing.
    expect(output.body.seen).toBe('Bearer [redacted]');
  });

  it('refuses a loopback server the connection does not allow, and the server sees nothing', async () => {
    const local = await startServer((_request, res) => json(res, 200, {}));
    servers.push(local);
    const dir = project(local.origin, false);
    // Validation reports the base URL, so the integration is not usable at all.
    const result = await runCli(['call', 'http.request', '--with', '{"method":"GET","path":"/"}'], { cwd: dir, env: { SHOP_TOKEN: 'not-used-here' } });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('PB_CONNECTION_PRIVATE_ADDRESS');
    expect(local.received).toHaveLength(0);
  });

  it('prints the unsigned request on --dry-run without needing the secret', async () => {
    const local = await startServer((_request, res) => json(res, 200, {}));
    servers.push(local);
    const dir = project(local.origin, true);
    const result = await runCli(['call', 'http.request', '--dry-run', '--with', '{"method":"POST","path":"/orders","body":{"note":"hi"}}'], {
      cwd: dir,
      env: { SHOP_TOKEN: undefined },
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`POST ${local.origin}/api/orders`);
    expect(result.stdout).toContain('{"note":"hi"}');
    expect(result.stdout).not.toContain('authorization');
    expect(local.received).toHaveLength(0);
  });

  it('reports a missing secret as an environment error naming the variable, and a failing call with its code and retry intent', async () => {
    const local = await startServer((_request, res) => json(res, 503, { message: 'down' }, { 'retry-after': '7' }));
    servers.push(local);
    const dir = project(local.origin, true);
    const missing = await runCli(['call', 'http.request', '--with', '{"method":"GET","path":"/"}'], { cwd: dir, env: { SHOP_TOKEN: undefined } });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('PB_SECRET_UNRESOLVED');
    expect(missing.stderr).toContain('SHOP_TOKEN');

    const token = scan.secret(`shp_${randomBytes(16).toString('hex')}`);
    const failing = await runCli(['call', 'http.request', '--format', 'json', '--with', '{"method":"GET","path":"/"}'], { cwd: dir, env: { SHOP_TOKEN: token } });
    scan.text('failing stderr', failing.stderr);
    expect(failing.code).toBe(1);
    const error = (JSON.parse(failing.stderr) as { error: { code: string; retry: string } }).error;
    expect(error).toMatchObject({ code: 'PB_HTTP_UNAVAILABLE', retry: 'after' });
  });

  it('explains a usage mistake with a did-you-mean', async () => {
    const dir = project('http://127.0.0.1:9', true);
    const result = await runCli(['call', 'http.requets'], { cwd: dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('did you mean "request"');
  });
});
