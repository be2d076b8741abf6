import { parseArgs } from 'node:util';
import { sanitizeText } from '../diag/diagnostic.js';
import { PatchbayError } from '../diag/errors.js';
import { countsByStatus, type IntegrationBody, type RunCountsByStatus } from '../daemon/admin/api.js';
import { formatTable } from './list-command.js';
import { ExitCode, type CliIO } from './main.js';
import { adminClientFor, openExistingState, outputJson, serverOf } from './runs-command.js';

const help = `Usage: patchbay status [options]

Shows how Patchbay is doing. Against a running daemon (--server): its revision, when it started,
whether it is draining, each integration with its trigger and state (running, broken with the
reason, disabled); then, in both modes, the runs of each integration by status.

Options:
  --server URL         Ask a running daemon's admin API (default: $PATCHBAY_SERVER when --state is
                       not given), with the token in $PATCHBAY_ADMIN_TOKEN (or
                       $PATCHBAY_ADMIN_READ_TOKEN); plain http only to this machine
  --state PATH         Read the state file instead (default: $PATCHBAY_STATE, else .patchbay/state.db)
  --json               Print JSON (same as --format json): { source, revision, daemon,
                       integrations, runs }, absent values as null
  --format text|json   Output format (default text)
  -h, --help           Show this help

Exit status: 0 nothing broken, 1 the daemon reports a broken integration, 2 usage error, no state
file, or the daemon unreachable or refusing the token.
`;

/** What `status` shows, from either source. */
export interface StatusView {
  /** `daemon` (through the admin API) or `state-file`. */
  readonly source: 'daemon' | 'state-file';
  readonly revision: string | null;
  /** Only from a daemon. */
  readonly daemon: { readonly server: string; readonly startedAt: string; readonly draining: boolean; readonly version: string | null } | null;
  /** From a daemon: the plan's integrations and any other with runs; from a state file: those with runs (trigger and state null). */
  readonly integrations: readonly IntegrationBody[];
  readonly runs: RunCountsByStatus;
}

const statusColumns = ['queued', 'running', 'retrying', 'succeeded', 'dead'] as const;

/**
 * Renders a status view as text: the daemon block (daemon source only), then the runs table,
 * which reads the same from a daemon and from its state file.
 */
export function formatStatus(view: StatusView): string {
  let text = '';
  if (view.daemon !== null) {
    const integrations = view.integrations.filter((integration) => integration.state !== null);
    text += `Daemon    ${sanitizeText(view.daemon.server)}${view.daemon.version === null ? '' : ` (patchbay ${sanitizeText(view.daemon.version)})`}${view.daemon.draining ? ', DRAINING (shutting down)' : ''}\n`;
    text += `Started   ${view.daemon.startedAt}\n`;
    text += `Revision  ${view.revision === null ? '(none applied)' : sanitizeText(view.revision)}\n\n`;
    if (integrations.length === 0) text += 'No integration in the applied revision.\n';
    else {
      text += formatTable(
        ['INTEGRATION', 'TRIGGER', 'STATE', 'ERROR'],
        integrations.map((integration) => [
          sanitizeText(integration.name),
          sanitizeText(integration.trigger ?? ''),
          integration.state ?? '',
          integration.error === null ? '' : sanitizeText(`${integration.error.code}: ${integration.error.message}`),
        ]),
      );
    }
    text += '\n';
  } else {
    text += `Revision  ${view.revision === null ? '(none applied)' : sanitizeText(view.revision)}\n\n`;
  }
  const withRuns = view.integrations.filter((integration) => statusColumns.some((status) => integration.runs[status] > 0)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (withRuns.length === 0) return `${text}No runs.\n`;
  const rows = withRuns.map((integration) => [sanitizeText(integration.name), ...statusColumns.map((status) => String(integration.runs[status]))]);
  rows.push(['(total)', ...statusColumns.map((status) => String(view.runs[status]))]);
  return text + formatTable(['RUNS', ...statusColumns.map((status) => status.toUpperCase())], rows);
}

/**
 * `patchbay status`: see the help above. Reads a running daemon's `/admin/v1/status` or the state
 * file (never creating one). Returns the exit code: 0, 1 when the daemon reports a broken
 * integration, 2 for a usage error, a missing state file, an unreachable daemon or a refused token.
 */
export async function runStatus(argv: readonly string[], io: CliIO): Promise<number> {
  let values: Record<string, unknown>;
  try {
    const parsed = parseArgs({
      args: [...argv],
      allowPositionals: false,
      strict: true,
      options: {
        server: { type: 'string' },
        state: { type: 'string' },
        json: { type: 'boolean', default: false },
        format: { type: 'string', default: 'text' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    values = parsed.values as Record<string, unknown>;
  } catch (error) {
    io.stderr.write(`patchbay status: ${error instanceof Error ? error.message : String(error)}\n\n${help}`);
    return ExitCode.usage;
  }
  if (values.help === true) {
    io.stdout.write(help);
    return ExitCode.ok;
  }
  if (values.format !== 'text' && values.format !== 'json') {
    io.stderr.write(`patchbay status: --format must be text or json, not "${sanitizeText(String(values.format))}"\n\n${help}`);
    return ExitCode.usage;
  }
  const json = values.json === true || values.format === 'json';

  let view: StatusView;
  try {
    const server = serverOf(values, io.env);
    view = server === undefined ? await fromStateFile(io, values.state) : await fromDaemon(server, io.env);
  } catch (error) {
    if (!(error instanceof PatchbayError)) throw error;
    const message = sanitizeText(error.message);
    if (error.code === 'PB_USAGE') {
      io.stderr.write(`patchbay status: ${message}\n\n${help}`);
      return ExitCode.usage;
    }
    io.stderr.write(json ? `${JSON.stringify({ error: { code: error.code, message } })}\n` : `patchbay status: ${error.code}: ${message}\n`);
    return ExitCode.usage;
  }
  io.stdout.write(json ? `${outputJson(view)}\n` : formatStatus(view));
  return view.integrations.some((integration) => integration.state === 'broken') ? ExitCode.problems : ExitCode.ok;
}

async function fromDaemon(server: URL, env: NodeJS.ProcessEnv): Promise<StatusView> {
  const body = await adminClientFor(server, env).status();
  return {
    source: 'daemon',
    revision: body.revision,
    daemon: { server: `${server.protocol}//${server.host}${server.pathname.replace(/\/+$/, '')}`, startedAt: body.startedAt, draining: body.draining, version: body.version },
    integrations: body.integrations,
    runs: body.runs,
  };
}

async function fromStateFile(io: CliIO, flag: unknown): Promise<StatusView> {
  const store = await openExistingState(io, flag);
  try {
    const [revision, counts] = await Promise.all([store.latestRevision(), store.countRuns()]);
    const names = [...new Set(counts.map((row) => row.integration))].sort();
    return {
      source: 'state-file',
      revision: revision?.id ?? null,
      daemon: null,
      integrations: names.map((name) => ({ name, trigger: null, enabled: null, state: null, error: null, runs: countsByStatus(counts, name) })),
      runs: countsByStatus(counts),
    };
  } finally {
    await store.close();
  }
}
