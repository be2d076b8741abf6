import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { PatchbayError } from '../diag/errors.js';
import { Executor, type SubmittedEvent } from '../executor/executor.js';
import { maskCredentials } from '../lib/credentials.js';
import { didYouMean } from '../lib/did-you-mean.js';
import { silentLogger } from '../lib/log.js';
import { readPath } from '../providers/paths.js';
import type { IntegrationPlan } from '../executor/plan.js';
import { engineFlags, loadEngineFor } from './load-engine.js';
import { parseCommandArgs } from './args.js';
import { ExitCode, type CliIO } from './main.js';

const help = `Usage: patchbay enqueue <integration> [paths…] --event FILE|- [options]

Accepts events for an integration into the state file, as a verified webhook would be accepted:
each is redacted, committed durably and queued as a run for "patchbay work" (or the daemon) to
execute. FILE holds one JSON event, or one JSON event per line; "-" reads standard input.

Each event's key (duplicates are not run twice) is --key when given (one event only), else the
event id where the trigger's provider puts it (Stripe "id"), else a hash of the event's JSON: the
same event enqueued twice runs once.

Options:
  --event FILE|-        The event(s) to accept (required)
  --key KEY             The event key of a single event
  --type TYPE           The event type (default: where the provider puts it)
  --state PATH          State file (default .patchbay/state.db, or the PATCHBAY_STATE variable)
  --format text|json    Output format (default text)
  --providers DIR       A folder of your own provider definitions (repeatable)
  --no-catalogue        Do not load the bundled provider catalogue
  -h, --help            Show this help

Exit status: 0 accepted (duplicates included), 1 the integration or an event is invalid,
2 usage or environment error.
`;

/** The most events one command accepts in one transaction; more go in several. */
const batchSize = 500;

/** `patchbay enqueue`: see `help`. */
export async function runEnqueue(argv: readonly string[], io: CliIO): Promise<number> {
  const parsed = parseCommandArgs('enqueue', argv, {
    event: { type: 'string' },
    key: { type: 'string' },
    type: { type: 'string' },
    ...engineFlags,
    format: { type: 'string', default: 'text' },
  }, help, io);
  if (typeof parsed === 'number') return parsed;
  const [integrationName, ...rest] = parsed.positionals;
  if (integrationName === undefined) return usage(io, 'name the integration');
  if (parsed.values.event === undefined) return usage(io, '--event FILE|- is required');
  const format = parsed.values.format;
  if (format !== 'text' && format !== 'json') return usage(io, `--format must be text or json, not "${format}"`);

  let events: unknown[];
  try {
    events = readEvents(parsed.values.event === '-' ? readFileSync(0, 'utf8') : readFileSync(resolve(io.cwd, parsed.values.event), 'utf8'));
  } catch (error) {
    if (error instanceof SyntaxError) {
      io.stderr.write(`patchbay enqueue: ${error.message}\n`);
      return ExitCode.problems;
    }
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    io.stderr.write(`patchbay enqueue: cannot read the event file ${parsed.values.event} (${code}) [PB_IO]\n`);
    return ExitCode.usage;
  }
  if (parsed.values.key !== undefined && events.length !== 1) return usage(io, '--key names the key of a single event; the file holds several');

  const engine = await loadEngineFor('enqueue', parsed.values, rest, silentLogger, io);
  if (typeof engine === 'number') return engine;
  try {
    const plan = engine.plan.integrations.get(integrationName);
    if (plan === undefined) {
      const broken = engine.plan.broken.get(integrationName);
      const known = [...engine.plan.integrations.keys(), ...engine.plan.broken.keys()];
      io.stderr.write(
        broken !== undefined
          ? `patchbay enqueue: integration "${integrationName}" cannot run: ${maskCredentials(broken.message)} [${broken.code}]\n`
          : `patchbay enqueue: no valid integration "${integrationName}"${didYouMean(integrationName, known)}\n`,
      );
      return ExitCode.problems;
    }
    const executor = new Executor({ store: engine.store, plan: engine.plan });
    const submitted = events.map((payload) => toSubmitted(plan, payload, parsed.values.key, parsed.values.type));
    let accepted = 0;
    const runs: { runId: string; accepted: boolean }[] = [];
    try {
      for (let start = 0; start < submitted.length; start += batchSize) {
        for (const result of await executor.submit(submitted.slice(start, start + batchSize))) {
          runs.push({ runId: result.runId, accepted: result.accepted });
          if (result.accepted) accepted += 1;
        }
      }
    } catch (error) {
      if (!(error instanceof PatchbayError)) throw error;
      // Batches before the failing one stay accepted; say how far it got.
      io.stderr.write(`patchbay enqueue: ${maskCredentials(error.message)} [${error.code}] (${accepted} event(s) accepted before this)\n`);
      return error.code === 'PB_INTEGRATION_DISABLED' ? ExitCode.problems : ExitCode.usage;
    }
    if (format === 'json') {
      io.stdout.write(`${JSON.stringify({ integration: integrationName, accepted, duplicates: runs.length - accepted, runs }, null, 2)}\n`);
    } else {
      io.stdout.write(`${accepted} event(s) queued for ${integrationName}${runs.length > accepted ? `, ${runs.length - accepted} already accepted before` : ''}`);
      io.stdout.write(runs.length === 1 ? `: run ${runs[0]!.runId}\n` : '\n');
    }
    return ExitCode.ok;
  } finally {
    await engine.close();
  }
}

function usage(io: CliIO, message: string): number {
  io.stderr.write(`patchbay enqueue: ${message}\n\n${help}`);
  return ExitCode.usage;
}

/**
 * One JSON value, or JSON lines. Throws SyntaxError naming the line (and column) of the problem:
 * when the first line is not JSON on its own, the text is taken as one (pretty-printed) value.
 */
function readEvents(text: string): unknown[] {
  if (text.trim() === '') throw new SyntaxError('the event file is empty');
  let wholeError: Error;
  try {
    return [JSON.parse(text) as unknown];
  } catch (error) {
    wholeError = error as Error;
  }
  const lines = text.split('\n');
  const events: unknown[] = [];
  for (let index = 0; index < lines.length; index += 1) {
    const line = lines[index]!.trim();
    if (line === '') continue;
    try {
      events.push(JSON.parse(line) as unknown);
    } catch (error) {
      if (events.length === 0) throw new SyntaxError(`the event is not JSON: ${describeJsonError(text, wholeError)}`);
      throw new SyntaxError(`line ${index + 1} is not JSON: ${(error as Error).message}`);
    }
  }
  return events;
}

/** A JSON.parse error with its position turned into line and column, when the message has one. */
function describeJsonError(text: string, error: Error): string {
  const position = /position (\d+)/.exec(error.message);
  if (position === null) return error.message;
  const offset = Number(position[1]);
  const before = text.slice(0, offset).split('\n');
  return `${error.message} (line ${before.length}, column ${before.at(-1)!.length + 1})`;
}

function toSubmitted(plan: IntegrationPlan, payload: unknown, key: string | undefined, type: string | undefined): SubmittedEvent {
  const trigger = plan.document.spec.trigger;
  const connection = trigger.webhook === undefined ? undefined : plan.connections.get(trigger.webhook.connection);
  const webhooks = connection?.provider.document.spec.webhooks;
  const located = (path: string | undefined): string | undefined => {
    if (path === undefined) return undefined;
    const value = readPath(payload, path);
    return typeof value === 'string' || typeof value === 'number' ? String(value) : undefined;
  };
  return {
    integration: plan.name,
    eventKey: key ?? located(webhooks?.eventId?.path) ?? `sha256:${createHash('sha256').update(JSON.stringify(payload)).digest('hex')}`,
    type: type ?? located(webhooks?.eventType.path),
    source: 'manual',
    payload,
  };
}
