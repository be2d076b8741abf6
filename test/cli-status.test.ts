import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseAdminAuthSettings } from '../engine/daemon/admin/auth.js';
import type { CliIO } from '../engine/cli/main.js';
import { runStatus, type StatusView } from '../engine/cli/status-command.js';
import { openSqliteStore } from '../engine/store/sqlite/sqlite-store.js';
import { buildRunsFixture, fixtureStatus, startAdminServer, type AdminServer, type RunsFixture } from './daemon/admin-fixture.js';
import { makeTempDir } from './support/cli.js';

// `patchbay status` against a state file and against a running daemon's admin API (a real
// node:http server mounting the admin handler over the same state file).

const adminToken = `adm_${randomBytes(24).toString('hex')}`;
const readToken = `rd_${randomBytes(24).toString('hex')}`;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function status(argv: readonly string[], env: NodeJS.ProcessEnv = {}) {
  let stdout = '';
  let stderr = '';
  const io: CliIO = { stdout: { write: (text: string) => (stdout += text) }, stderr: { write: (text: string) => (stderr += text) }, env, cwd: makeTempDir('status-cwd') };
  const code = await runStatus(argv, io);
  return { code, stdout, stderr };
}

async function daemon(): Promise<{ fixture: RunsFixture; server: AdminServer }> {
  const fixture = await buildRunsFixture();
  const store = await openSqliteStore(fixture.path);
  const server = await startAdminServer({ store, auth: parseAdminAuthSettings({ PATCHBAY_ADMIN_TOKEN: adminToken, PATCHBAY_ADMIN_READ_TOKEN: readToken }), status: () => fixtureStatus(fixture.base) });
  cleanups.push(() => store.close(), () => server.close());
  return { fixture, server };
}

/** The runs table: from the RUNS header to the end. */
function runsTable(stdout: string): string {
  return stdout.slice(stdout.indexOf('RUNS'));
}

describe('patchbay status', () => {
  it('shows the daemon, each integration with trigger, state and error, and exits 1 for a broken integration', async () => {
    const { fixture, server } = await daemon();
    const result = await status(['--server', server.url], { PATCHBAY_ADMIN_TOKEN: adminToken });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(1);
    const lines = result.stdout.split('\n');
    expect(lines[0]).toBe(`Daemon    ${server.url} (patchbay 0.1.0)`);
    expect(lines[1]).toBe(`Started   ${new Date(fixture.base - 5 * 60_000).toISOString()}`);
    expect(lines[2]).toBe('Revision  rev-1');
    const row = (name: string) => lines.find((line) => line.startsWith(`${name} `))!.split(/\s{2,}/);
    expect(row('billing')).toEqual(['billing', 'webhook', 'broken', 'PB_INTEGRATION_BROKEN: connection "stripe" does not open: STRIPE_KEY is not set']);
    expect(row('mail')).toEqual(['mail', 'schedule', 'disabled']);
    expect(row('orders')).toEqual(['orders', 'poll', 'running']);
    expect(runsTable(result.stdout).split('\n')).toEqual([
      expect.stringMatching(/^RUNS\s+QUEUED\s+RUNNING\s+RETRYING\s+SUCCEEDED\s+DEAD$/),
      expect.stringMatching(/^billing\s+1\s+0\s+0\s+1\s+1$/),
      expect.stringMatching(/^orders\s+0\s+0\s+1\s+1\s+1$/),
      expect.stringMatching(/^\(total\)\s+1\s+0\s+1\s+2\s+2$/),
      '',
    ]);
  });

  it('prints the same runs table from the state file as from the daemon, in text and in JSON', async () => {
    const { fixture, server } = await daemon();
    const remote = await status(['--server', server.url], { PATCHBAY_ADMIN_READ_TOKEN: readToken });
    const local = await status(['--state', fixture.path]);
    expect(local.code).toBe(0);
    expect(local.stdout.startsWith('Revision  rev-1\n\n')).toBe(true);
    expect(runsTable(local.stdout)).toBe(runsTable(remote.stdout));

    const remoteJson = JSON.parse((await status(['--server', server.url, '--json'], { PATCHBAY_ADMIN_TOKEN: adminToken })).stdout) as StatusView;
    const localJson = JSON.parse((await status(['--state', fixture.path, '--format', 'json'])).stdout) as StatusView;
    expect(remoteJson.source).toBe('daemon');
    expect(localJson).toMatchObject({ source: 'state-file', revision: 'rev-1', daemon: null });
    expect(localJson.runs).toEqual(remoteJson.runs);
    const runsOf = (view: StatusView) => Object.fromEntries(view.integrations.filter((i) => Object.values(i.runs).some((n) => n > 0)).map((i) => [i.name, i.runs]));
    expect(runsOf(localJson)).toEqual(runsOf(remoteJson));
    expect(remoteJson.daemon).toMatchObject({ server: server.url, draining: false, version: '0.1.0' });
    expect(remoteJson.integrations.find((i) => i.name === 'billing')?.error?.code).toBe('PB_INTEGRATION_BROKEN');
  });

  it('finds the daemon through PATCHBAY_SERVER unless --state names a file', async () => {
    const { fixture, server } = await daemon();
    const viaEnv = await status([], { PATCHBAY_SERVER: server.url, PATCHBAY_ADMIN_TOKEN: adminToken });
    expect(viaEnv.stdout).toContain('Daemon ');
    const viaState = await status(['--state', fixture.path], { PATCHBAY_SERVER: server.url, PATCHBAY_ADMIN_TOKEN: adminToken });
    expect(viaState.stdout).not.toContain('Daemon ');
    expect(viaState.code).toBe(0);
  });

  it('exits 2 with a clear error for no token, a wrong token, an unreachable daemon, a bad URL, both flags, or no state file', async () => {
    const { fixture, server } = await daemon();
    const noToken = await status(['--server', server.url]);
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toMatch(/^patchbay status: PB_ADMIN_UNAUTHENTICATED: .*\(set PATCHBAY_ADMIN_TOKEN\)\n$/);
    const wrong = await status(['--server', server.url], { PATCHBAY_ADMIN_TOKEN: `${adminToken}0` });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('PB_ADMIN_UNAUTHENTICATED');
    expect(wrong.stderr).not.toContain(adminToken);

    const closedPort = await new Promise<number>((resolve) => {
      const probe = createServer();
      probe.listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const unreachable = await status(['--server', `http://127.0.0.1:${closedPort}`], { PATCHBAY_ADMIN_TOKEN: adminToken });
    expect(unreachable.code).toBe(2);
    expect(unreachable.stderr).toContain('PB_ADMIN_UNREACHABLE');
    expect(unreachable.stderr).toContain('ECONNREFUSED');

    const notDaemon = createServer((_req, res) => res.end('<html>hello</html>'));
    await new Promise<void>((resolve) => notDaemon.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => notDaemon.close(() => resolve())));
    const html = await status(['--server', `http://127.0.0.1:${(notDaemon.address() as AddressInfo).port}`], { PATCHBAY_ADMIN_TOKEN: adminToken });
    expect(html.code).toBe(2);
    expect(html.stderr).toContain('is it a Patchbay daemon?');

    const plain = await status(['--server', 'http://daemon.example.com:8080'], { PATCHBAY_ADMIN_TOKEN: adminToken });
    expect(plain.code).toBe(2);
    expect(plain.stderr).toContain('PB_ADMIN_BAD_SERVER');
    expect((await status(['--server', `${server.url}?x=1`])).stderr).toContain('PB_ADMIN_BAD_SERVER');
    const both = await status(['--server', server.url, '--state', fixture.path]);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('give --server or --state, not both');
    const missing = await status(['--state', join(makeTempDir('status-none'), 'state.db')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('PB_STATE_MISSING');
    expect((await status(['--bogus'])).code).toBe(2);
  });
});
