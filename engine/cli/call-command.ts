import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { codes } from '../diag/codes.js';
import { PatchbayError } from '../diag/errors.js';
import { renderText } from '../diag/render.js';
import { maskCredentials } from '../lib/credentials.js';
import { didYouMean } from '../lib/did-you-mean.js';
import { parseDurationMs } from '../lib/duration.js';
import { SecretSet } from '../lib/secrets.js';
import { validateManifests, type LoadedIntegration } from '../manifest/validate.js';
import { maxTimeoutMs } from '../http/client.js';
import { ProviderConnection } from '../providers/connection.js';
import { splitCall, type LoadedProvider } from '../providers/registry.js';
import type { OutboundRequest } from '../http/request.js';
import { ExitCode, type CliIO } from './main.js';
import { defaultProviderDirs } from './validate-command.js';

const help = `Usage: patchbay call <provider.operation> [paths…] [options]

Calls one provider operation through a connection of one of your integrations: the same request
building, auth, host and address checks, timeouts and error reading the engine uses. Secrets are
read from the environment or files the connection names, and never printed.

Options:
  --integration NAME      The integration whose connection to use (default: the only one that
                          has a connection to the provider)
  --connection NAME       The connection (default: the integration's only one to the provider)
  --with JSON|@FILE       The operation's inputs as a JSON object, or a file holding one
  --idempotency-key KEY   Sent in the provider's idempotency header where the operation has one
  --timeout DURATION      Total time allowed for the call (default 30s)
  --dry-run               Print the request that would be sent (unsigned) and send nothing
  --format text|json      Output format (default text)
  --providers DIR         A folder of your own provider definitions (repeatable)
  --no-catalogue          Do not load the bundled provider catalogue
  -h, --help              Show this help

Exit status: 0 the call succeeded, 1 the call or the manifests failed, 2 usage or environment
error (unknown operation, unresolved secret).
`;

interface CallFlags {
  readonly call: string;
  readonly paths: string[];
  readonly integration?: string;
  readonly connection?: string;
  readonly inputs: Record<string, unknown>;
  readonly idempotencyKey?: string;
  readonly totalTimeoutMs: number;
  readonly dryRun: boolean;
  readonly format: 'text' | 'json';
  readonly providerDirs: string[];
  readonly catalogue: boolean;
}

/** `patchbay call`: one operation through one connection; see `help`. */
export async function runCall(argv: readonly string[], io: CliIO): Promise<number> {
  const flags = parseCallFlags(argv, io);
  if ('help' in flags) {
    io.stdout.write(help);
    return ExitCode.ok;
  }
  if ('error' in flags) {
    io.stderr.write(`patchbay call: ${flags.error}\n\n${help}`);
    return ExitCode.usage;
  }

  let result;
  try {
    result = await validateManifests({ paths: flags.paths, providerDirs: flags.providerDirs, bundledProviders: flags.catalogue, cwd: io.cwd });
  } catch (error) {
    if (error instanceof PatchbayError && error.code === 'PB_IO') {
      io.stderr.write(`patchbay: ${maskCredentials(error.message)}\n`);
      return ExitCode.usage;
    }
    throw error;
  }

  const { provider: providerName, operation } = splitCall(flags.call);
  const provider = result.registry.get(providerName);
  if (provider === undefined) {
    return usage(io, `unknown provider "${providerName}"${didYouMean(providerName, result.registry.names())}`);
  }
  const operations = Object.keys(provider.document.spec.operations);
  if (!operations.includes(operation)) {
    return usage(io, `provider "${providerName}" has no operation "${operation}"${didYouMean(operation, operations)}`);
  }

  const chosen = chooseConnection(result.integrations, providerName, flags);
  if ('error' in chosen) {
    const errors = result.diagnostics.filter((d) => d.severity === 'error');
    if (errors.length > 0) io.stderr.write(renderText(errors, { files: result.files, documents: result.documents }, false));
    io.stderr.write(`patchbay call: ${chosen.error}\n`);
    return errors.length > 0 ? ExitCode.problems : ExitCode.usage;
  }
  const { integration, connectionName } = chosen;
  const connection = integration.document.spec.connections[connectionName]!;

  const secrets = new SecretSet({ env: io.env });
  const redact = (text: string) => maskCredentials(secrets.redact(text));
  let opened: ProviderConnection | undefined;
  try {
    if (flags.dryRun) {
      // Built without auth, so a dry run needs no credential; a variable read from an unset
      // environment variable shows as `${NAME}`.
      const env = new Proxy(io.env, { get: (target, name) => (typeof name === 'string' ? (target[name] ?? '${' + name + '}') : undefined) });
      const placeholders = new SecretSet({ env });
      opened = await ProviderConnection.open(connectionName, { ...connection, auth: undefined }, withoutAuth(provider), { secrets: placeholders });
      for (const value of placeholders.values()) if (!value.startsWith('${')) secrets.add(value);
      const request = opened.build(operation, flags.inputs, { idempotencyKey: flags.idempotencyKey });
      io.stdout.write(flags.format === 'json' ? `${JSON.stringify(describeRequest(request), null, 2)}\n` : formatRequest(request, redact));
      return ExitCode.ok;
    }
    opened = await ProviderConnection.open(connectionName, connection, provider, { secrets });
    const called = await opened.call(operation, flags.inputs, { idempotencyKey: flags.idempotencyKey, totalTimeoutMs: flags.totalTimeoutMs });
    if (flags.format === 'json') {
      io.stdout.write(`${redact(JSON.stringify({ status: called.status, durationMs: called.durationMs, output: called.output }, null, 2))}\n`);
    } else {
      io.stdout.write(`${redact(JSON.stringify(called.output, null, 2) ?? 'null')}\n`);
    }
    return ExitCode.ok;
  } catch (error) {
    if (!(error instanceof PatchbayError)) throw error;
    const unset = flags.dryRun ? unsetVariables(connection, io.env) : [];
    const hint = unset.length > 0 ? ` (a dry run fills unset ${unset.join(', ')} with \${NAME} placeholders; set them to see the real request)` : '';
    const line = `${error.code}: ${redact(error.message)}${hint}`;
    io.stderr.write(flags.format === 'json' ? `${JSON.stringify({ error: { code: error.code, retry: error.retry, ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }), message: redact(error.message) } })}\n` : `patchbay call: ${line} (retry: ${error.retry})\n`);
    return environmentCodes.has(error.code) ? ExitCode.usage : ExitCode.problems;
  } finally {
    await opened?.close();
  }
}

// Failures of the machine the command runs on, not of the call or the manifests.
const environmentCodes = new Set<keyof typeof codes>(['PB_SECRET_UNRESOLVED', 'PB_USAGE', 'PB_IO']);

/** Environment variables the connection's variables read that are not set. */
function unsetVariables(connection: { variables?: Record<string, unknown> }, env: NodeJS.ProcessEnv): string[] {
  return Object.values(connection.variables ?? {})
    .map((value) => (typeof value === 'object' && value !== null ? (value as { env?: unknown }).env : undefined))
    .filter((name): name is string => typeof name === 'string' && env[name] === undefined);
}

function usage(io: CliIO, message: string): number {
  io.stderr.write(`patchbay call: ${message}\n`);
  return ExitCode.usage;
}

function parseCallFlags(argv: readonly string[], io: CliIO): CallFlags | { error: string } | { help: true } {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        integration: { type: 'string' },
        connection: { type: 'string' },
        with: { type: 'string' },
        'idempotency-key': { type: 'string' },
        timeout: { type: 'string', default: '30s' },
        'dry-run': { type: 'boolean', default: false },
        format: { type: 'string', default: 'text' },
        providers: { type: 'string', multiple: true },
        'no-catalogue': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
  if (parsed.values.help) return { help: true };
  const [call, ...paths] = parsed.positionals;
  if (call === undefined || !call.includes('.')) return { error: 'name the operation to call as <provider>.<operation> (twilio.messages.create)' };
  const format = parsed.values.format as string;
  if (format !== 'text' && format !== 'json') return { error: `--format must be text or json, not "${format}"` };
  const timeout = parseDurationMs(parsed.values.timeout as string);
  if (timeout === undefined || timeout <= 0 || timeout > maxTimeoutMs) {
    return { error: `--timeout must be a duration from 1ms to 15m, such as 30s or 2m, not "${parsed.values.timeout as string}"` };
  }
  const totalTimeoutMs = Math.ceil(timeout);
  const inputs = readInputs(parsed.values.with as string | undefined, io.cwd);
  if ('error' in inputs) return inputs;
  return {
    call,
    paths: paths.length > 0 ? paths : ['integrations'],
    integration: parsed.values.integration as string | undefined,
    connection: parsed.values.connection as string | undefined,
    inputs: inputs.value,
    idempotencyKey: parsed.values['idempotency-key'] as string | undefined,
    totalTimeoutMs,
    dryRun: parsed.values['dry-run'] as boolean,
    format,
    providerDirs: (parsed.values.providers as string[] | undefined) ?? defaultProviderDirs(io.cwd, paths.length > 0 ? paths : ['integrations']),
    catalogue: !parsed.values['no-catalogue'],
  };
}

function readInputs(text: string | undefined, cwd: string): { value: Record<string, unknown> } | { error: string } {
  if (text === undefined) return { value: {} };
  let json = text;
  if (text.startsWith('@')) {
    try {
      json = readFileSync(resolve(cwd, text.slice(1)), 'utf8');
    } catch (error) {
      return { error: `--with ${text}: ${(error as NodeJS.ErrnoException).code ?? 'cannot read the file'}` };
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (error) {
    return { error: `--with is not valid JSON: ${(error as Error).message}` };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { error: '--with must be a JSON object of inputs' };
  return { value: value as Record<string, unknown> };
}

function chooseConnection(
  integrations: readonly LoadedIntegration[],
  provider: string,
  flags: CallFlags,
): { integration: LoadedIntegration; connectionName: string } | { error: string } {
  const candidates = integrations.filter((i) => Object.values(i.document.spec.connections).some((c) => c.provider === provider));
  let integration: LoadedIntegration | undefined;
  if (flags.integration !== undefined) {
    integration = integrations.find((i) => i.name === flags.integration);
    if (integration === undefined) {
      return { error: `no valid integration "${flags.integration}"${didYouMean(flags.integration, integrations.map((i) => i.name))} under ${flags.paths.join(', ')}` };
    }
  } else if (candidates.length === 1) {
    integration = candidates[0];
  } else {
    return {
      error: candidates.length === 0
        ? `no valid integration under ${flags.paths.join(', ')} has a connection to "${provider}"`
        : `several integrations connect to "${provider}" (${candidates.map((i) => i.name).join(', ')}): choose one with --integration`,
    };
  }
  const names = Object.entries(integration!.document.spec.connections).filter(([, c]) => c.provider === provider).map(([name]) => name);
  if (flags.connection !== undefined) {
    if (!names.includes(flags.connection)) {
      return { error: `integration "${integration!.name}" has no connection "${flags.connection}" to ${provider}${didYouMean(flags.connection, names)}` };
    }
    return { integration: integration!, connectionName: flags.connection };
  }
  if (names.length !== 1) {
    return { error: names.length === 0 ? `integration "${integration!.name}" has no connection to "${provider}"` : `integration "${integration!.name}" has several connections to "${provider}" (${names.join(', ')}): choose one with --connection` };
  }
  return { integration: integration!, connectionName: names[0]! };
}

function withoutAuth(provider: LoadedProvider): LoadedProvider {
  return { ...provider, document: { ...provider.document, spec: { ...provider.document.spec, auth: [{ type: 'none' }] } } };
}

function bodyText(body: OutboundRequest['body']): string | undefined {
  if (body === undefined) return undefined;
  return typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
}

function describeRequest(request: OutboundRequest): { method: string; url: string; headers: Record<string, string>; body?: string } {
  const body = bodyText(request.body);
  return { method: request.method, url: request.url.href, headers: { ...request.headers }, ...(body === undefined ? {} : { body }) };
}

function formatRequest(request: OutboundRequest, redact: (text: string) => string): string {
  const lines = [`${request.method} ${request.url.href}`];
  for (const [name, value] of Object.entries(request.headers)) lines.push(`${name}: ${value}`);
  const body = bodyText(request.body);
  if (body !== undefined) lines.push('', body);
  lines.push('', '(dry run: unsigned, nothing sent)');
  return `${redact(lines.join('\n'))}\n`;
}
