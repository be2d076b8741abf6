import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (where package.json and bin/ are). */
export const repoRoot: string = fileURLToPath(new URL('../../', import.meta.url));

/** The launcher of the built CLI; `npx tsc -p tsconfig.json` must have produced dist/ first. */
export const cliPath: string = join(repoRoot, 'bin', 'patchbay.js');

export interface CliResult {
  /** Exit code; null when the process was ended by a signal (or by the timeout). */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** True when the process was killed after `timeoutMs`. */
  readonly timedOut: boolean;
  /** Wall-clock time from spawn to exit, in milliseconds. */
  readonly durationMs: number;
}

export interface CliOptions {
  /** Working directory (default: the repository root). */
  readonly cwd?: string;
  /** Variables added to (or, with `undefined`, removed from) the inherited environment. */
  readonly env?: Record<string, string | undefined>;
  /** Kill the process after this many milliseconds (default 20 000). */
  readonly timeoutMs?: number;
}

/**
 * Runs `node bin/patchbay.js …args` as a child process with stdout/stderr piped (so never a TTY)
 * and resolves with its exit status and output. Never rejects for a non-zero exit; a process
 * still running after `timeoutMs` (default 20 s) is killed with SIGKILL and reported with
 * `timedOut: true`.
 */
export function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  // Colour and Node's own warnings would make the output depend on the caller's environment.
  delete env.NO_COLOR;
  delete env.FORCE_COLOR;
  env.NODE_NO_WARNINGS = '1';
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  const timeoutMs = options.timeoutMs ?? 20_000;
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], {
      cwd: options.cwd ?? repoRoot,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
        durationMs: Date.now() - started,
      });
    });
  });
}

/** Creates a fresh temporary folder under the OS temp dir (`fs.mkdtempSync`). */
export function makeTempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `patchbay-${prefix}-`));
}

/** Writes `files` (relative path → content) under `root`, creating folders as needed. */
export function writeFiles(root: string, files: Record<string, string | Uint8Array>): void {
  for (const [relative, content] of Object.entries(files)) {
    const full = join(root, relative);
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, content);
  }
}

/**
 * A small provider used by the CLI and fuzz tests instead of the bundled catalogue (which is
 * edited concurrently): bearer auth, HMAC-signed webhooks with one typed event, one operation.
 */
export const fixtureProvider = `apiVersion: patchbay/v1
kind: Provider
metadata:
  name: acme
spec:
  displayName: Acme
  baseUrl: https://api.acme.test
  auth:
    - type: bearer
  webhooks:
    verification:
      scheme: hmac
      header: X-Acme-Signature
    eventType:
      path: type
    events:
      order.created:
        schema:
          type: object
          properties:
            type: { type: string }
            order:
              type: object
              properties:
                id: { type: string }
                total: { type: number }
                items:
                  type: array
                  items:
                    type: object
                    properties:
                      sku: { type: string }
                      qty: { type: integer }
  operations:
    notes.create:
      summary: Create a note
      method: POST
      path: /notes
      input:
        type: object
        properties:
          text: { type: string }
          orderId: { type: string }
        required: [ text ]
        additionalProperties: false
      output:
        type: object
        properties:
          id: { type: string }
`;

/** A valid integration over {@link fixtureProvider}: no errors and no warnings. */
export const fixtureIntegration = `apiVersion: patchbay/v1
kind: Integration
metadata:
  name: acme-notes
  description: Writes a note for each new order.
spec:
  connections:
    acme:
      provider: acme
      auth:
        type: bearer
        token: { env: ACME_TOKEN }
      webhookSecrets:
        - { env: ACME_WEBHOOK_SECRET }
  vars:
    prefix: "Order"
  trigger:
    webhook:
      connection: acme
      events: [ order.created ]
  steps:
    - id: note
      call: acme.notes.create
      with:
        text: "{{ vars.prefix }} {{ event.order.id }}: {{ $count(event.order.items) }} items"
        orderId: "{{ event.order.id }}"
    - id: second
      call: acme.notes.create
      if: "{{ steps.note.output.id != '' }}"
      with:
        text: "{{ steps.note.output.id }}"
  policy:
    retry:
      maxAttempts: 3
      initialDelay: 1s
      maxDelay: 30s
`;
