import { readFileSync } from 'node:fs';
import { packageRoot } from '../lib/package-root.js';
import { join } from 'node:path';

/** Exit codes of every command: 0 ok, 1 problems in the user's input, 2 usage or environment error. */
export const ExitCode = { ok: 0, problems: 1, usage: 2 } as const;

const usage = `Usage: patchbay <command> [options]

Commands:
  validate [paths…]   Check manifests (schema, references, secrets, expressions, schedules)
  list [paths…]       Validate, then list the integrations found
  call <provider.operation> [--with JSON] [--dry-run]
                      Call one provider operation through an integration's connection
  provider import <openapi-file> --name <name>
                      Create a provider definition from an OpenAPI 3.x / Swagger 2.0 description
  enqueue <integration> --event FILE
                      Accept events into the state file as runs to execute
  work [paths…]       Execute queued runs (retries, rate limits, idempotency, crash recovery)
  runs list|show|retry|purge
                      Look into runs in the state file; replay dead letters; delete old runs
  serve [paths…]      Run the daemon: webhooks, pollers, schedules, admin API, metrics
  send <integration>  Sign a sample event, deliver it to the sandbox daemon and print its run
  status              The daemon's (--server) or the state file's integrations and run counts
  version             Print the version (also --version)
  help                Show this help (also --help)

Run "patchbay <command> --help" for a command's options.
`;

/** Writes to stdout/stderr; injectable so tests can capture output in-process. */
export interface CliIO {
  readonly stdout: { write(text: string): unknown; isTTY?: boolean };
  readonly stderr: { write(text: string): unknown };
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/**
 * Runs the CLI with `argv` (without node and script) and returns the exit code. Commands are
 * imported on demand so that `patchbay --version` loads nothing but this file.
 */
export async function main(argv: readonly string[], io: CliIO = defaultIO()): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case '--version':
    case '-v':
    case 'version':
      io.stdout.write(`patchbay ${version()}\n`);
      return ExitCode.ok;
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      (command === undefined ? io.stderr : io.stdout).write(usage);
      return command === undefined ? ExitCode.usage : ExitCode.ok;
    case 'validate': {
      const { runValidate } = await import('./validate-command.js');
      return runValidate(rest, io);
    }
    case 'list': {
      const { runList } = await import('./list-command.js');
      return runList(rest, io);
    }
    case 'call': {
      const { runCall } = await import('./call-command.js');
      return runCall(rest, io);
    }
    case 'provider': {
      const { runProvider } = await import('./provider-command.js');
      return runProvider(rest, io);
    }
    case 'enqueue': {
      const { runEnqueue } = await import('./enqueue-command.js');
      return runEnqueue(rest, io);
    }
    case 'serve': {
      const { runServe } = await import('./serve-command.js');
      return runServe(rest, io);
    }
    case 'send': {
      const { runSend } = await import('./send-command.js');
      return runSend(rest, io);
    }
    case 'status': {
      const { runStatus } = await import('./status-command.js');
      return runStatus(rest, io);
    }
    case 'work': {
      const { runWork } = await import('./work-command.js');
      return runWork(rest, io);
    }
    case 'runs': {
      const { runRuns } = await import('./runs-command.js');
      return runRuns(rest, io);
    }
    default: {
      const { didYouMean } = await import('../lib/did-you-mean.js');
      io.stderr.write(
        `patchbay: unknown command "${command}"${didYouMean(command, ['validate', 'list', 'call', 'provider', 'enqueue', 'work', 'runs', 'serve', 'send', 'status', 'version', 'help'])}\n\n${usage}`,
      );
      return ExitCode.usage;
    }
  }
}

function defaultIO(): CliIO {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() };
}
