import { cpSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeTempDir, repoRoot, runCli } from '../support/cli.js';
import { keepForSuiteScan } from '../support/suite-record.js';
import { spawnDaemon } from './harness.js';

// What `npm ci && npm start` then `npx patchbay send stripe-payment-followup` shows a newcomer:
// the daemon as a child process in sandbox mode on the bundled integrations with no account and
// no secret in the environment, a signed sample delivered to it, and the run's trace printed.

describe('serve --sandbox with send', () => {
  it('runs the bundled integrations end to end with no accounts', { timeout: 60_000 }, async () => {
    const dir = makeTempDir('patchbay-sandbox-e2e-');
    cpSync(join(repoRoot, 'integrations'), join(dir, 'integrations'), { recursive: true });
    // No provider secret in the environment: the sandbox generates them.
    const env = Object.fromEntries(Object.keys(process.env).filter((name) => /(KEY|TOKEN|SECRET|SID|PASSWORD)/.test(name)).map((name) => [name, '']));
    const daemon = await spawnDaemon(dir, ['--sandbox'], env);
    const sandboxFile = join(dir, '.patchbay', 'sandbox.json');
    try {
      expect(daemon.output()).toContain('SANDBOX MODE');
      // The banner names the variables given generated values (the flagship's Stripe key among them).
      expect(daemon.output()).toMatch(/Generated values for: .*STRIPE_API_KEY/);
      expect(existsSync(sandboxFile)).toBe(true);
      const info = JSON.parse(readFileSync(sandboxFile, 'utf8')) as { daemonUrl: string; adminToken: string; integrations: Record<string, { webhookSecrets: string[] }> };
      expect(info.daemonUrl).toBe(daemon.url);

      const stripe = await runCli(['send', 'stripe-payment-followup'], { cwd: dir });
      expect(stripe.stderr).toBe('');
      expect(stripe.code).toBe(0);
      expect(stripe.stdout).toMatch(/202 accepted/);
      expect(stripe.stdout).toMatch(/Step 1 "sendSms": succeeded/);
      expect(stripe.stdout).toMatch(/Step 2 "subscribe": succeeded/);
      expect(stripe.stdout).toMatch(/Run run_\w+ succeeded\./);

      const github = await runCli(['send', 'github-issue-to-slack'], { cwd: dir });
      expect(github.code).toBe(0);

      // The same daemon answers the operator's commands through its admin API.
      const status = await runCli(['status', '--server', daemon.url, '--json'], { cwd: dir, env: { PATCHBAY_ADMIN_TOKEN: info.adminToken } });
      expect(status.code).toBe(0);
      const view = JSON.parse(status.stdout) as { integrations: { name: string; state: string }[] };
      expect(view.integrations.map((integration) => integration.name)).toContain('stripe-payment-followup');
      expect(view.integrations.every((integration) => integration.state === 'running')).toBe(true);

      // Without the token, nothing but health answers.
      const refused = await runCli(['status', '--server', daemon.url], { cwd: dir, env: { PATCHBAY_ADMIN_TOKEN: '' } });
      expect(refused.code).toBe(2);
      keepForSuiteScan({ label: 'sandbox-e2e', files: [join(dir, '.patchbay', 'state.db')], logs: [daemon.output()], secrets: [info.adminToken, ...Object.values(info.integrations).flatMap((entry) => entry.webhookSecrets)] });
    } finally {
      daemon.child.kill('SIGTERM');
      expect(await daemon.exited).toBe(0);
    }
    // The generated secrets do not outlive the daemon.
    expect(existsSync(sandboxFile)).toBe(false);
  });

  it('removes .patchbay/sandbox.json even when a second signal ends the daemon at once', { timeout: 30_000 }, async () => {
    const dir = makeTempDir('patchbay-sandbox-signal-');
    cpSync(join(repoRoot, 'integrations'), join(dir, 'integrations'), { recursive: true });
    const daemon = await spawnDaemon(dir, ['--sandbox'], {});
    const sandboxFile = join(dir, '.patchbay', 'sandbox.json');
    expect(existsSync(sandboxFile)).toBe(true);
    daemon.child.kill('SIGINT');
    daemon.child.kill('SIGINT');
    const code = await daemon.exited;
    expect([0, 2]).toContain(code);
    expect(existsSync(sandboxFile)).toBe(false);
  });
});
