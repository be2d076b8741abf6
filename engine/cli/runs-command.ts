import { statSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { PatchbayError } from '../diag/errors.js';
import { sanitizeText } from '../diag/diagnostic.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { didYouMean } from '../lib/did-you-mean.js';
import { formatDurationMs, parseDurationMs } from '../lib/duration.js';
import type { RunDetailBody, RunListItem } from '../daemon/admin/api.js';
import { AdminClient, parseServerUrl } from '../daemon/admin/client.js';
import {
  countDead,
  knownIntegrations,
  listNewest,
  progressOf,
  replayAllDead,
  replayBatchSize,
  replayRuns,
  UnknownRuns,
  type ReplayResult,
  type SkippedReplay,
} from '../daemon/admin/run-queries.js';
import { isPostgresLocation, openStateStore } from '../store/open-store.js';
import { RunStatus, type AttemptRow, type RunRow, type StateStore, type StepRow } from '../store/state-store.js';
import { formatTable } from './list-command.js';
import { ExitCode, type CliIO } from './main.js';
import { Progress, type ProgressStream } from './progress.js';
import { statePath } from './state-path.js';

export { replayBatchSize };
/** Most runs `runs list` prints. */
const maxListLimit = 10_000;
/** Most runs one admin API page holds (`runs list --server` pages through them). */
const remotePageLimit = 1000;
const minPurgeAgeMs = 60_000;

const stateOption = `  --state PATH         The state file (default: $PATCHBAY_STATE, else .patchbay/state.db)
  --server URL         Ask a running daemon's admin API instead (default: $PATCHBAY_SERVER when
                       --state is not given), with the token in $PATCHBAY_ADMIN_TOKEN (or
                       $PATCHBAY_ADMIN_READ_TOKEN to read); plain http only to this machine`;
const purgeStateOption = `  --state PATH         The state file (default: $PATCHBAY_STATE, else .patchbay/state.db)`;

const runsHelp = `Usage: patchbay runs <command> [options]

Look into and act on the runs in the state file, or in a running daemon with --server: one run
per accepted event.

Commands:
  list                  List runs, newest first (filter by integration, status, time)
  show <run-id>         A run with every step and attempt: request, response, timing, errors
  retry <run-id…>       Replay dead letters (or every dead run with --dead)
  purge --older-than D  Delete finished runs older than D

Run "patchbay runs <command> --help" for a command's options.
`;

const listHelp = `Usage: patchbay runs list [options]

Lists runs, newest first: id, integration, status, when the event was received (UTC), steps
finished of the integration's steps when the event arrived (1/3: the first done, the second under
way, waiting to retry or dead), attempts made in the current generation (a replay starts a new
one), and the error code of a dead letter with the step that failed.

Options:
  --integration NAME   Only this integration's runs
  --status STATUS      Only runs in this state: queued, running, retrying, succeeded, dead
  --since WHEN         Only runs received in the last DURATION (30m, 1h, 7d) or since an ISO time
                       (2026-01-31, 2026-01-31T12:00:00Z; a time without an offset is UTC)
  --limit N            At most N runs (default 50, at most ${maxListLimit})
${stateOption}
  --format text|json   Output format (default text); json is an array of stored runs, absent
                       values as null
  -h, --help           Show this help

Exit status: 0 listed (none matching is not an error), 2 usage error, no state file, or the daemon
unreachable or refusing the token.
`;

const showHelp = `Usage: patchbay runs show <run-id> [options]

Shows a run (status, integration, event key and type, revision, times, error, replays), its event
payload, then each step and under it each attempt: number, outcome, start (UTC), duration, HTTP
status, error code and message, when the next attempt is due, and the request and response. Every
value is printed as stored: payloads, requests and responses were redacted before they were
written, and nothing else is read.

Options:
${stateOption}
  --format text|json   Output format (default text); json is { run, steps, attempts, payload }
  -h, --help           Show this help

Exit status: 0 shown, 1 no run has this id, 2 usage error, no state file, or the daemon unreachable
or refusing the token.
`;

const retryHelp = `Usage: patchbay runs retry <run-id…> [options]
       patchbay runs retry --dead [--integration NAME] --yes [options]

Replays dead letters: each run goes back to the queue, keeps the steps that succeeded (they are
never repeated) and starts its failed step afresh. This only queues them: a running engine
("patchbay work" or "patchbay serve") on the same state file executes them. A run that is not
dead is reported and left alone.

Options:
  --dead               Replay every dead run (of --integration, if given); needs --yes
  --integration NAME   With --dead: only this integration's dead runs
  --yes                Confirm --dead (without it, the command says how many runs it would replay)
${stateOption}
  --format text|json   Output format (default text); json is { queued, replayed, skipped }
  -h, --help           Show this help

With more than ${replayBatchSize} runs, progress is shown on standard error: a bar on a terminal, else a
"replayed N of M" line at most once a second.

Exit status: 0 queued (or no dead run to replay), 1 none of the named runs could be replayed,
2 usage error (--dead without --yes too) or no state file.
`;

const purgeHelp = `Usage: patchbay runs purge --older-than DURATION [options]

Deletes finished runs (succeeded and dead) that finished more than DURATION ago, with their
steps, attempts and events. Runs still queued, running or retrying are never deleted.

Options:
  --older-than D       Age of the runs to delete: 30d, 12h, 90m (required; at least 1m)
  --force              Allow an age under one minute (which deletes nearly every finished run)
  --integration NAME   Only this integration's runs
${purgeStateOption}
  --format text|json   Output format (default text); json is { deleted, finishedBefore }
  -h, --help           Show this help

Purging works on the state file only (never through --server).

Exit status: 0 purged (even none), 2 usage error or no state file.
`;

type Format = 'text' | 'json';

export interface RunsOptions {
  /** Time for `--since`, replays and purges. @default systemClock */
  readonly clock?: Clock;
}

/**
 * `patchbay runs list|show|retry|purge`: see each command's help. Opens the state file given by
 * `--state`, `PATCHBAY_STATE` or `.patchbay/state.db` (never creating one: a missing file is exit
 * 2 with PB_STATE_MISSING) and closes it before returning. Returns the exit code: 0 done, 1 a run
 * asked for was not found or could not be replayed, 2 usage or environment error.
 */
export async function runRuns(argv: readonly string[], io: CliIO, options: RunsOptions = {}): Promise<number> {
  const clock = options.clock ?? systemClock;
  const [subcommand, ...rest] = argv;
  switch (subcommand) {
    case 'list':
      return runsList(rest, io, clock);
    case 'show':
      return runsShow(rest, io, clock);
    case 'retry':
      return runsRetry(rest, io, clock);
    case 'purge':
      return runsPurge(rest, io, clock);
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      (subcommand === undefined ? io.stderr : io.stdout).write(runsHelp);
      return subcommand === undefined ? ExitCode.usage : ExitCode.ok;
    default:
      io.stderr.write(`patchbay runs: unknown command "${sanitizeText(subcommand)}"${didYouMean(subcommand, ['list', 'show', 'retry', 'purge'])}\n\n${runsHelp}`);
      return ExitCode.usage;
  }
}

// ---------------------------------------------------------------------------------------------
// Shared plumbing.

/** Flags every subcommand takes. */
const commonOptions = {
  state: { type: 'string' },
  server: { type: 'string' },
  format: { type: 'string', default: 'text' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/** Parses `argv` with `parseArgs`; writes help (exit 0) or a usage error (exit 2) itself. */
function parseFlags(
  command: string,
  help: string,
  argv: readonly string[],
  io: CliIO,
  options: NonNullable<ParseArgsConfig['options']>,
): { values: Record<string, unknown>; positionals: string[]; format: Format } | number {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], allowPositionals: true, strict: true, options: { ...commonOptions, ...options } });
  } catch (error) {
    return usageError(io, command, help, error instanceof Error ? error.message : String(error));
  }
  const values = parsed.values as Record<string, unknown>;
  if (values.help === true) {
    io.stdout.write(help);
    return ExitCode.ok;
  }
  const format = values.format as string;
  if (format !== 'text' && format !== 'json') return usageError(io, command, help, `--format must be text or json, not "${sanitizeText(format)}"`);
  return { values, positionals: parsed.positionals, format };
}

function usageError(io: CliIO, command: string, help: string, message: string): number {
  io.stderr.write(`patchbay runs ${command}: ${message}\n\n${help}`);
  return ExitCode.usage;
}

/** Reports a PatchbayError on stderr (a JSON object with --format json) and returns `exit`. */
function report(io: CliIO, command: string, format: Format, error: PatchbayError, exit: number): number {
  const message = sanitizeText(error.message);
  io.stderr.write(format === 'json' ? `${JSON.stringify({ error: { code: error.code, message } })}\n` : `patchbay runs ${command}: ${error.code}: ${message}\n`);
  return exit;
}

/**
 * Opens the state store named by `--state` (`flag`), `PATCHBAY_STATE` or `.patchbay/state.db`,
 * refusing to create one: a missing file means the engine never ran here or `--state` points
 * elsewhere, and an empty new database would only hide that. Rejects with PatchbayError
 * PB_STATE_MISSING (no such file), PB_IO (not a file, unreadable) or the store's own open error.
 */
export async function openExistingState(io: Pick<CliIO, 'cwd' | 'env'>, flag: unknown): Promise<StateStore> {
  const path = statePath(typeof flag === 'string' ? flag : undefined, io.cwd, io.env);
  if (!isPostgresLocation(path)) {
    let isFile: boolean;
    try {
      isFile = statSync(path).isFile();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new PatchbayError('PB_STATE_MISSING', `no state file at ${path}; start the engine first or pass --state`);
      throw new PatchbayError('PB_IO', `cannot read the state file ${path}: ${code ?? String(error)}`, { cause: error });
    }
    if (!isFile) throw new PatchbayError('PB_IO', `the state path ${path} is not a file; pass the database file with --state`);
  }
  try {
    return await openStateStore(path);
  } catch (error) {
    if (error instanceof PatchbayError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    // A non-Patchbay error could quote a URL; say which kind of store only.
    const what = isPostgresLocation(path) ? 'the PostgreSQL state store' : `the state file ${path}`;
    throw new PatchbayError('PB_IO', `cannot open ${what}: ${isPostgresLocation(path) ? 'unexpected error' : reason}`, { cause: error });
  }
}

async function openState(io: CliIO, command: string, format: Format, flag: unknown): Promise<StateStore | number> {
  try {
    return await openExistingState(io, flag);
  } catch (error) {
    if (error instanceof PatchbayError) return report(io, command, format, error, ExitCode.usage);
    throw error;
  }
}

/**
 * Runs `body` with the opened store and closes it afterwards, whatever happens. A store failure
 * (`PB_STATE_BUSY` while the engine holds the write lock, `PB_STATE_IO`) is reported as an
 * environment error, exit 2.
 */
async function withState(io: CliIO, command: string, format: Format, flag: unknown, body: (store: StateStore) => Promise<number>): Promise<number> {
  const store = await openState(io, command, format, flag);
  if (typeof store === 'number') return store;
  try {
    try {
      return await body(store);
    } finally {
      await store.close();
    }
  } catch (error) {
    if (error instanceof PatchbayError) return report(io, command, format, error, ExitCode.usage);
    throw error;
  }
}

/**
 * JSON for output: absent values as `null` (so every key is always there for `jq`), and the
 * characters `JSON.stringify` leaves raw that a terminal may act on (DEL, C1 controls such as
 * the 8-bit CSI, line and paragraph separators) escaped. Still valid JSON.
 */
export function outputJson(value: unknown, indent = 2): string {
  const text = JSON.stringify(value === undefined ? null : value, (_key, item: unknown) => (item === undefined ? null : item), indent);
  return text.replace(/[\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function iso(ms: number | undefined): string {
  return ms === undefined ? '' : new Date(ms).toISOString();
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

function indent(text: string, spaces: number): string {
  const pad = ' '.repeat(spaces);
  return text
    .split('\n')
    .map((line) => pad + line)
    .join('\n');
}

// ---------------------------------------------------------------------------------------------
// Where the runs are: the state file, or a running daemon's admin API. Both answer the same
// questions with the same queries (engine/daemon/admin/run-queries.ts), so output is the same.

interface RunsSource {
  /** Newest runs first, up to `limit`, with how far each got. */
  list(filter: { integration?: string | undefined; status?: RunStatus | undefined; since?: number | undefined }, limit: number): Promise<RunListItem[]>;
  /** Integrations that have runs. */
  integrationNames(): Promise<string[]>;
  /** Everything stored about a run; rejects with PB_RUN_NOT_FOUND (with a hint) for an unknown id. */
  show(id: string): Promise<RunDetailBody>;
  countDead(integration: string | undefined): Promise<number>;
  replayAllDead(integration: string | undefined, onProgress: (done: number) => void): Promise<ReplayResult>;
  replay(ids: readonly string[], onProgress: (done: number) => void): Promise<ReplayResult>;
  /** Who executes replayed runs, for the "Queued …" line. */
  readonly executor: string;
}

function localSource(store: StateStore, clock: Clock): RunsSource {
  const now = () => clock.now();
  return {
    executor: 'a running engine ("patchbay work" or "patchbay serve") on this state file',
    async list(filter, limit) {
      const runs = await listNewest(store, filter, limit);
      const items: RunListItem[] = [];
      for (const run of runs) items.push({ run, progress: progressOf(run, await store.getSteps(run.id)) });
      return items;
    },
    integrationNames: () => knownIntegrations(store),
    async show(id) {
      const run = await store.getRun(id);
      if (run === undefined) throw await new UnknownRuns(store).error(id);
      const [steps, attempts, payload] = await Promise.all([store.getSteps(id), store.getAttempts(id), store.getPayload(id)]);
      return { run, steps, attempts, payload };
    },
    countDead: (integration) => countDead(store, integration),
    replayAllDead: (integration, onProgress) => replayAllDead(store, integration, now, onProgress),
    replay: (ids, onProgress) => replayRuns(store, ids, now, onProgress),
  };
}

function remoteSource(client: AdminClient): RunsSource {
  return {
    executor: 'the daemon',
    async list(filter, limit) {
      const items: RunListItem[] = [];
      let before: number | undefined;
      while (items.length < limit) {
        const page = await client.listRuns({ ...filter, before, limit: Math.min(remotePageLimit, limit - items.length) });
        items.push(...page.runs);
        // A cursor that does not move back would loop forever.
        if (page.nextBefore === null || (before !== undefined && page.nextBefore >= before)) break;
        before = page.nextBefore;
      }
      return items.slice(0, limit);
    },
    async integrationNames() {
      const status = await client.status();
      return status.integrations.filter((integration) => Object.values(integration.runs).some((count) => count > 0)).map((integration) => integration.name);
    },
    show: (id) => client.getRun(id),
    async countDead(integration) {
      const status = await client.status();
      if (integration === undefined) return status.runs.dead;
      return status.integrations.find((candidate) => candidate.name === integration)?.runs.dead ?? 0;
    },
    async replayAllDead(integration) {
      return client.retry({ integration });
    },
    async replay(ids, onProgress) {
      const unique = [...new Set(ids)];
      const replayed: string[] = [];
      const skipped: SkippedReplay[] = [];
      for (let start = 0; start < unique.length; start += remotePageLimit) {
        const result = await client.retry({ ids: unique.slice(start, start + remotePageLimit) });
        replayed.push(...result.replayed);
        skipped.push(...result.skipped);
        onProgress(Math.min(unique.length, start + remotePageLimit));
      }
      return { queued: replayed.length, replayed, skipped };
    },
  };
}

/**
 * The daemon to ask, from `--server`, else `PATCHBAY_SERVER` unless `--state` names a file; or
 * undefined for the state file. Throws PB_USAGE for both flags, PB_ADMIN_BAD_SERVER for a bad URL.
 */
export function serverOf(values: Record<string, unknown>, env: NodeJS.ProcessEnv): URL | undefined {
  const flag = values.server as string | undefined;
  if (flag !== undefined && values.state !== undefined) throw new PatchbayError('PB_USAGE', 'give --server or --state, not both');
  const text = flag ?? (values.state === undefined && env.PATCHBAY_SERVER ? env.PATCHBAY_SERVER : undefined);
  return text === undefined ? undefined : parseServerUrl(text);
}

/** An admin API client with the token from the environment (PATCHBAY_ADMIN_TOKEN, else the read token). */
export function adminClientFor(server: URL, env: NodeJS.ProcessEnv): AdminClient {
  return new AdminClient(server, { token: env.PATCHBAY_ADMIN_TOKEN || env.PATCHBAY_ADMIN_READ_TOKEN || undefined });
}

/**
 * Runs `body` against the daemon (`--server`, `PATCHBAY_SERVER`) or the state file. A
 * PatchbayError (unreachable daemon, refused token, busy store) is reported with exit 2.
 */
async function withSource(io: CliIO, command: string, help: string, format: Format, values: Record<string, unknown>, clock: Clock, body: (source: RunsSource) => Promise<number>): Promise<number> {
  let server: URL | undefined;
  try {
    server = serverOf(values, io.env);
  } catch (error) {
    if (!(error instanceof PatchbayError)) throw error;
    return error.code === 'PB_USAGE' ? usageError(io, command, help, error.message) : report(io, command, format, error, ExitCode.usage);
  }
  if (server === undefined) return withState(io, command, format, values.state, (store) => body(localSource(store, clock)));
  try {
    return await body(remoteSource(adminClientFor(server, io.env)));
  } catch (error) {
    if (error instanceof PatchbayError) return report(io, command, format, error, ExitCode.usage);
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// runs list

/**
 * Parses `--since`: a duration back from `now`, a date (midnight UTC) or an ISO date-time (UTC
 * when it has no offset). Returns milliseconds since the epoch, or undefined when unreadable.
 */
export function parseSince(text: string, now: number): number | undefined {
  const duration = parseDurationMs(text);
  if (duration !== undefined) return now - duration;
  const match = /^(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)(Z|[+-]\d{2}:\d{2})?)?$/i.exec(text);
  if (match === null) return undefined;
  const [, date, time, offset] = match;
  const ms = Date.parse(time === undefined ? `${date}T00:00:00Z` : `${date}T${time}${offset ?? 'Z'}`);
  return Number.isNaN(ms) ? undefined : ms;
}

async function runsList(argv: readonly string[], io: CliIO, clock: Clock): Promise<number> {
  const flags = parseFlags('list', listHelp, argv, io, {
    integration: { type: 'string' },
    status: { type: 'string' },
    since: { type: 'string' },
    limit: { type: 'string', default: '50' },
  });
  if (typeof flags === 'number') return flags;
  const { values, positionals, format } = flags;
  if (positionals.length > 0) return usageError(io, 'list', listHelp, `unexpected argument "${sanitizeText(positionals[0]!)}"`);
  const statuses = Object.values(RunStatus) as string[];
  const status = values.status as string | undefined;
  if (status !== undefined && !statuses.includes(status)) {
    return usageError(io, 'list', listHelp, `--status must be one of ${statuses.join(', ')}, not "${sanitizeText(status)}"${didYouMean(status, statuses)}`);
  }
  let since: number | undefined;
  if (values.since !== undefined) {
    since = parseSince(values.since as string, clock.now());
    if (since === undefined) {
      return usageError(io, 'list', listHelp, `--since must be a duration (30m, 1h, 7d) or an ISO time (2026-01-31T12:00:00Z), not "${sanitizeText(values.since as string)}"`);
    }
  }
  const limitText = values.limit as string;
  const limit = /^[0-9]+$/.test(limitText) ? Number(limitText) : NaN;
  if (!(limit >= 1 && limit <= maxListLimit)) return usageError(io, 'list', listHelp, `--limit must be a whole number from 1 to ${maxListLimit}, not "${sanitizeText(limitText)}"`);
  const integration = values.integration as string | undefined;

  return withSource(io, 'list', listHelp, format, values, clock, async (source) => {
    const items = await source.list({ integration, status: status as RunStatus | undefined, since }, limit);
    const runs = items.map((item) => item.run);
    if (format === 'json') {
      io.stdout.write(`${outputJson(runs)}\n`);
      return ExitCode.ok;
    }
    if (runs.length === 0) {
      const names = integration === undefined ? [] : await source.integrationNames();
      const hint = integration !== undefined && !names.includes(integration) ? `; no run of integration "${sanitizeText(integration)}" at all${didYouMean(integration, names)}` : '';
      io.stdout.write(`No runs match${hint}.\n`);
      return ExitCode.ok;
    }
    const rows: string[][] = [];
    for (const { run, progress } of items) {
      rows.push([
        run.id,
        sanitizeText(run.integration),
        run.status,
        iso(run.receivedAt),
        `${progress.finishedSteps}/${progress.totalSteps}`,
        String(progress.attempts),
        run.errorCode === undefined ? '' : sanitizeText(run.errorStep === undefined ? run.errorCode : `${run.errorCode} (${run.errorStep})`),
      ]);
    }
    io.stdout.write(formatTable(['ID', 'INTEGRATION', 'STATUS', 'RECEIVED', 'STEPS', 'ATTEMPTS', 'ERROR'], rows));
    if (runs.length === limit) io.stdout.write(`(the newest ${limit} shown; narrow with --since or raise --limit for more)\n`);
    return ExitCode.ok;
  });
}

// ---------------------------------------------------------------------------------------------
// runs show

async function runsShow(argv: readonly string[], io: CliIO, clock: Clock): Promise<number> {
  const flags = parseFlags('show', showHelp, argv, io, {});
  if (typeof flags === 'number') return flags;
  const { values, positionals, format } = flags;
  if (positionals.length !== 1) return usageError(io, 'show', showHelp, positionals.length === 0 ? 'name the run to show' : 'name one run to show');
  const id = positionals[0]!;
  return withSource(io, 'show', showHelp, format, values, clock, async (source) => {
    let detail: RunDetailBody;
    try {
      detail = await source.show(id);
    } catch (error) {
      if (error instanceof PatchbayError && error.code === 'PB_RUN_NOT_FOUND') return report(io, 'show', format, error, ExitCode.problems);
      throw error;
    }
    const { run, steps, attempts, payload } = detail;
    if (format === 'json') {
      io.stdout.write(`${outputJson({ run, steps, attempts, payload })}\n`);
      return ExitCode.ok;
    }
    io.stdout.write(formatRun(run, steps, attempts, payload));
    return ExitCode.ok;
  });
}

/** Labelled lines with the values aligned; lines with an empty value are left out. */
function fields(entries: readonly (readonly [string, string])[], spaces: number): string {
  const shown = entries.filter(([, value]) => value !== '');
  const width = Math.max(...shown.map(([label]) => label.length));
  return shown.map(([label, value]) => `${' '.repeat(spaces)}${label.padEnd(width)}  ${value}\n`).join('');
}

/** `runs show` in text: the run, then each step with its attempts. Every value as stored. */
export function formatRun(run: RunRow, steps: readonly StepRow[], attempts: readonly AttemptRow[], payload: unknown): string {
  let text = `Run ${run.id}\n`;
  const event = `${sanitizeText(run.eventKey)}${run.eventType === undefined ? '' : ` (${sanitizeText(run.eventType)})`}, from ${sanitizeText(run.source)}`;
  const waiting = run.status === 'queued' || run.status === 'retrying' ? iso(run.availableAt) : '';
  const lease = run.status === 'running' && run.leaseOwner !== undefined ? `${sanitizeText(run.leaseOwner)} until ${iso(run.leaseExpiresAt)}` : '';
  const error =
    run.errorCode === undefined
      ? ''
      : `${sanitizeText(run.errorCode)}${run.errorStep === undefined ? '' : ` in step "${sanitizeText(run.errorStep)}"`}${run.errorMessage === undefined ? '' : `: ${sanitizeText(run.errorMessage)}`}`;
  text += fields(
    [
      ['status', run.status],
      ['integration', sanitizeText(run.integration)],
      ['event', event],
      ['revision', sanitizeText(run.revision)],
      ['received', iso(run.receivedAt)],
      ['next attempt', waiting],
      ['lease', lease],
      ['finished', iso(run.finishedAt)],
      ['error', error],
      ['replays', String(run.replays)],
    ],
    2,
  );
  text += `  payload\n${indent(outputJson(payload), 4)}\n`;

  // Attempts grouped under their step; an attempt whose step row is gone still shows.
  const indexes = [...new Set([...steps.map((step) => step.index), ...attempts.map((attempt) => attempt.stepIndex)])].sort((a, b) => a - b);
  if (indexes.length === 0) text += '\nNo step has started yet.\n';
  for (const index of indexes) {
    const step = steps.find((row) => row.index === index);
    const own = attempts.filter((attempt) => attempt.stepIndex === index);
    const stepId = step?.stepId ?? own[0]?.stepId ?? '?';
    const state = step === undefined ? 'no step row' : `${step.status}, ${plural(step.attempts, 'attempt')}${run.replays > 0 ? ' in this generation' : ''}`;
    text += `\nStep ${index + 1} "${sanitizeText(stepId)}": ${state}\n`;
    for (const attempt of own) text += formatAttempt(attempt);
  }
  return text;
}

function formatAttempt(attempt: AttemptRow): string {
  const error =
    attempt.errorCode === undefined && attempt.errorMessage === undefined
      ? ''
      : sanitizeText([attempt.errorCode, attempt.errorMessage].filter((part) => part !== undefined).join(': '));
  let text = `  Attempt ${attempt.attempt}: ${attempt.outcome}\n`;
  text += fields(
    [
      ['started', iso(attempt.startedAt)],
      ['duration', `${attempt.durationMs} ms`],
      ['status', attempt.status === undefined ? '' : String(attempt.status)],
      ['error', error],
      ['retry at', iso(attempt.retryAt)],
    ],
    4,
  );
  if (attempt.request !== undefined && attempt.request !== null) text += `    request\n${indent(outputJson(attempt.request), 6)}\n`;
  if (attempt.response !== undefined && attempt.response !== null) text += `    response\n${indent(outputJson(attempt.response), 6)}\n`;
  return text;
}

// ---------------------------------------------------------------------------------------------
// runs retry

async function runsRetry(argv: readonly string[], io: CliIO, clock: Clock): Promise<number> {
  const help = retryHelp;
  const flags = parseFlags('retry', help, argv, io, {
    dead: { type: 'boolean', default: false },
    integration: { type: 'string' },
    yes: { type: 'boolean', default: false },
  });
  if (typeof flags === 'number') return flags;
  const { values, positionals, format } = flags;
  const dead = values.dead === true;
  const integration = values.integration as string | undefined;
  if (dead && positionals.length > 0) return usageError(io, 'retry', help, 'give run ids or --dead, not both');
  if (!dead && positionals.length === 0) return usageError(io, 'retry', help, 'name the runs to replay, or pass --dead for every dead run');
  if (!dead && integration !== undefined) return usageError(io, 'retry', help, '--integration goes with --dead (named runs are replayed whatever their integration)');

  return withSource(io, 'retry', help, format, values, clock, async (source) => {
    const stream: ProgressStream = io.stderr;
    if (dead) {
      const total = await source.countDead(integration);
      const scope = integration === undefined ? '' : ` of integration "${sanitizeText(integration)}"`;
      if (total === 0) {
        const names = integration === undefined ? [] : await source.integrationNames();
        const hint = integration !== undefined && !names.includes(integration) ? `; no run of that integration at all${didYouMean(integration, names)}` : '';
        if (format === 'json') io.stdout.write(`${outputJson({ queued: 0, replayed: [], skipped: [] })}\n`);
        else io.stdout.write(`No dead runs${scope} to replay${hint}.\n`);
        return ExitCode.ok;
      }
      if (values.yes !== true) {
        io.stderr.write(`patchbay runs retry: this would replay ${plural(total, 'dead run')}${scope}; run again with --yes to queue them\n`);
        return ExitCode.usage;
      }
      const progress = total > replayBatchSize ? new Progress({ stream, total, verb: 'replayed', clock }) : undefined;
      const result = await source.replayAllDead(integration, (done) => progress?.update(done));
      progress?.finish();
      writeQueued(io, format, result, source.executor);
      return ExitCode.ok;
    }

    const ids = [...new Set(positionals)];
    const progress = ids.length > replayBatchSize ? new Progress({ stream, total: ids.length, verb: 'replayed', clock }) : undefined;
    const result = await source.replay(ids, (done) => progress?.update(done));
    progress?.finish();
    if (format === 'text') for (const skip of result.skipped) io.stderr.write(`patchbay runs retry: ${skip.code}: ${sanitizeText(skip.message)}\n`);
    writeQueued(io, format, result, source.executor);
    return result.replayed.length === 0 ? ExitCode.problems : ExitCode.ok;
  });
}

function writeQueued(io: CliIO, format: Format, result: ReplayResult, executor: string): void {
  const { replayed, skipped } = result;
  if (format === 'json') {
    io.stdout.write(`${outputJson({ queued: replayed.length, replayed, skipped: skipped.map((s) => ({ ...s, message: sanitizeText(s.message) })) })}\n`);
    return;
  }
  io.stdout.write(
    replayed.length === 0
      ? 'No run was queued.\n'
      : `Queued ${plural(replayed.length, 'run')} for replay. Nothing runs yet: ${executor} picks ${replayed.length === 1 ? 'it' : 'them'} up.\n`,
  );
}

// ---------------------------------------------------------------------------------------------
// runs purge

async function runsPurge(argv: readonly string[], io: CliIO, clock: Clock): Promise<number> {
  const flags = parseFlags('purge', purgeHelp, argv, io, {
    'older-than': { type: 'string' },
    integration: { type: 'string' },
    force: { type: 'boolean', default: false },
  });
  if (typeof flags === 'number') return flags;
  const { values, positionals, format } = flags;
  if (positionals.length > 0) return usageError(io, 'purge', purgeHelp, `unexpected argument "${sanitizeText(positionals[0]!)}"`);
  if (values.server !== undefined) return usageError(io, 'purge', purgeHelp, 'purge works on the state file only; run it where the state file is, with --state');
  const olderThan = values['older-than'] as string | undefined;
  if (olderThan === undefined) return usageError(io, 'purge', purgeHelp, 'say how old the runs to delete must be with --older-than (30d, 12h)');
  const ageMs = parseDurationMs(olderThan);
  if (ageMs === undefined) return usageError(io, 'purge', purgeHelp, `--older-than must be a duration such as 30d, 12h or 90m, not "${sanitizeText(olderThan)}"`);
  if (ageMs < minPurgeAgeMs && values.force !== true) {
    return usageError(io, 'purge', purgeHelp, `--older-than ${sanitizeText(olderThan)} would delete nearly every finished run; use at least 1m, or add --force if that is what you mean`);
  }
  const integration = values.integration as string | undefined;
  return withState(io, 'purge', format, values.state, async (store) => {
    const finishedBefore = clock.now() - ageMs;
    const deleted = await store.purgeRuns(finishedBefore, integration);
    if (format === 'json') {
      io.stdout.write(`${outputJson({ deleted, finishedBefore: iso(finishedBefore) })}\n`);
    } else {
      const scope = integration === undefined ? '' : ` of integration "${sanitizeText(integration)}"`;
      io.stdout.write(`Deleted ${plural(deleted, 'finished run')}${scope} older than ${formatDurationMs(ageMs)} (finished before ${iso(finishedBefore)}).\n`);
    }
    return ExitCode.ok;
  });
}
