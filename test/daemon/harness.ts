import { createHmac, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { request } from 'undici';
import { startDaemon, isDaemon, type Daemon, type DaemonOptions } from '../../engine/daemon/serve.js';
import { MemoryLogger } from '../../engine/lib/log.js';
import { makeTempDir, writeFiles } from '../support/cli.js';
import { keepForSuiteScan } from '../support/suite-record.js';
import { fixtureProviders } from '../executor/harness.js';

export { fixtureProviders };

/** A fresh webhook secret in Stripe's format. */
export function newWebhookSecret(): string {
  return `whsec_test_${randomBytes(18).toString('hex')}`;
}

/** `Ledger-Signature` for `body` (the ledger fixture signs like Stripe: `t=…,v1=hex(HMAC-SHA256(t.body))`). */
export function ledgerSignature(body: string | Buffer, secret: string, timestampS = Math.floor(Date.now() / 1000)): string {
  const mac = createHmac('sha256', secret).update(`${timestampS}.`).update(body).digest('hex');
  return `t=${timestampS},v1=${mac}`;
}

export interface TestDaemon {
  readonly daemon: Daemon;
  readonly dir: string;
  readonly stateFile: string;
  readonly logger: MemoryLogger;
  readonly url: string;
  close(): Promise<void>;
}

/**
 * A whole daemon in this process on port 0 of 127.0.0.1: the integrations written to a temporary
 * project, the ledger fixture providers, a SQLite state file in the project. Everything written
 * (state file, logs) is scanned for `env`'s secrets after the suite.
 */
export async function startTestDaemon(options: {
  readonly integrations: Record<string, string>;
  readonly env: Record<string, string>;
  readonly daemon?: Partial<DaemonOptions>;
}): Promise<TestDaemon> {
  const dir = makeTempDir('patchbay-daemon-');
  writeFiles(dir, Object.fromEntries(Object.entries(options.integrations).map(([name, text]) => [`integrations/${name}.yaml`, text])));
  const stateFile = join(dir, 'state.db');
  const logger = new MemoryLogger();
  const started = await startDaemon({
    paths: [join(dir, 'integrations')],
    providerDirs: [fixtureProviders],
    catalogue: true,
    statePath: stateFile,
    cwd: dir,
    env: options.env,
    port: 0,
    host: '127.0.0.1',
    logger,
    executor: { pollIntervalMs: 20 },
    ...options.daemon,
  });
  if (!isDaemon(started)) throw new Error(`no valid integration: ${logger.text()}`);
  let closed = false;
  return {
    daemon: started,
    dir,
    stateFile,
    logger,
    url: started.url,
    close: async () => {
      if (closed) return;
      closed = true;
      await started.stop(1_000);
      keepForSuiteScan({ label: 'daemon', files: [stateFile], logs: [logger.text()], secrets: Object.values(options.env) });
    },
  };
}

/** POSTs `body` to `/hooks/<integration>` with `headers`; resolves with the status, headers and parsed JSON. */
export async function postHook(url: string, integration: string, body: string | Buffer, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; json: any }> {
  const response = await request(`${url}/hooks/${integration}`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
  const text = await response.body.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // Not JSON (a bare status line from the server): the text is what the test looks at.
    json = text;
  }
  return { status: response.statusCode, headers: response.headers, json };
}

/** A daemon running as a child process (`patchbay serve`). */
export interface ChildDaemon {
  readonly child: import('node:child_process').ChildProcess;
  readonly url: string;
  readonly port: number;
  readonly exited: Promise<number | null>;
  /** Everything written to stdout and stderr so far. */
  output(): string;
}

/**
 * Starts `patchbay serve <args>` in `dir` on port 0 of 127.0.0.1 and resolves once it logs that
 * it listens (rejects with its output if it exits first or takes over `timeoutMs`).
 */
export async function spawnDaemon(dir: string, args: readonly string[], env: Record<string, string>, timeoutMs = 20_000): Promise<ChildDaemon> {
  const { spawn } = await import('node:child_process');
  const { cliPath } = await import('../support/cli.js');
  const child = spawn(process.execPath, [cliPath, 'serve', '--port', '0', '--host', '127.0.0.1', '--log-format', 'json', ...args], {
    cwd: dir,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const listening = new Promise<{ url: string; port: number }>((resolve, reject) => {
    const timer = setTimeout(() => {
      // A daemon that never said it listens must not outlive the test.
      child.kill('SIGKILL');
      reject(new Error(`the daemon did not start in ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      for (const line of output.split('\n')) {
        if (!line.includes('"msg":"listening"')) continue;
        const parsed = JSON.parse(line) as { url: string; port: number };
        clearTimeout(timer);
        resolve({ url: parsed.url, port: parsed.port });
        return;
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the daemon exited with ${code} before listening:\n${output}`));
    });
  });
  const { url, port } = await listening;
  return { child, url, port, exited, output: () => output };
}
