import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { setPath } from '../daemon/sandbox/synthesize.js';
import { signDelivery, twilioBodyHash } from '../daemon/sandbox/sign.js';
import { readSandboxFile, type SandboxInfo } from '../daemon/sandbox/state-file.js';
import { sanitizeText } from '../diag/diagnostic.js';
import { PatchbayError } from '../diag/errors.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { didYouMean } from '../lib/did-you-mean.js';
import { formatDurationMs, parseDurationMs } from '../lib/duration.js';
import { validateManifests, type LoadedIntegration } from '../manifest/validate.js';
import { flattenInput, joinPairs } from '../providers/encode.js';
import { readPath } from '../providers/paths.js';
import type { ProviderRegistry } from '../providers/registry.js';
import type { AttemptRow, RunRow, StepRow } from '../store/state-store.js';
import type { ProviderWebhooks } from '../types/provider.generated.js';
import { parseCommandArgs } from './args.js';
import { ExitCode, type CliIO } from './main.js';
import { formatRun, outputJson } from './runs-command.js';
import { defaultProviderDirs } from './validate-command.js';

const help = `Usage: patchbay send <integration> [options]

Sends one webhook delivery to a running sandbox daemon ("patchbay serve --sandbox", or
"npm start") exactly as the integration's provider would: one of the provider's sample events
(or your own JSON), with a fresh event id so sending twice runs twice, signed with the secret
the sandbox generated for the integration. Then follows the run through the daemon's admin API
until it finishes and prints its trace: each step with its attempts, request, response and
outcome, as stored (redacted).

Options:
  --event NAME|FILE    The event type to send (its sample in the provider definition), or a
                       JSON file holding the payload (default: the first event type the
                       integration subscribes to that has a sample)
  --dir PATH           The project folder the sandbox serves (default: the current folder);
                       its .patchbay/sandbox.json says where the daemon listens
  --server URL         The daemon's URL, when it is not the one in sandbox.json
  --timeout DURATION   How long to wait for the run to finish (default 30s)
  --json               Print { sent, run, steps, attempts, payload } as JSON
  -h, --help           Show this help

Integrations triggered by a schedule or a poll receive nothing from "send": it says how to
run them instead.

Exit status: 0 the run succeeded, 1 the run died (or was refused, or did not finish in time),
2 usage error, no sandbox daemon, or the daemon cannot be reached.
`;

export interface SendOptions {
  /** @default systemClock */
  readonly clock?: Clock;
  /** Time between two looks at the run. @default 200 */
  readonly pollIntervalMs?: number;
}

/** What was posted, for the report. */
interface Sent {
  readonly integration: string;
  readonly url: string;
  readonly eventType: string | undefined;
  readonly eventId: string;
  readonly status: number;
  readonly answer: unknown;
}

interface RunDetail {
  readonly run: RunRow;
  readonly steps: readonly StepRow[];
  readonly attempts: readonly AttemptRow[];
  readonly payload: unknown;
}

/**
 * `patchbay send`: see `help`. Returns the exit code: 0 the run succeeded; 1 it died, the daemon
 * refused or ignored the delivery (PB_SEND_REFUSED), or it did not finish within `--timeout`
 * (PB_SEND_TIMEOUT); 2 usage error, no sandbox (PB_SANDBOX_NOT_RUNNING, PB_SANDBOX_FILE_INVALID),
 * an unreachable daemon (PB_SEND_UNREACHABLE), no event to send (PB_SEND_NO_EVENT) or an
 * integration `send` cannot trigger (PB_SEND_UNSUPPORTED).
 */
export async function runSend(argv: readonly string[], io: CliIO, options: SendOptions = {}): Promise<number> {
  const clock = options.clock ?? systemClock;
  const parsed = parseCommandArgs('send', argv, {
    event: { type: 'string' },
    dir: { type: 'string' },
    server: { type: 'string' },
    timeout: { type: 'string', default: '30s' },
    json: { type: 'boolean', default: false },
  }, help, io);
  if (typeof parsed === 'number') return parsed;
  const values = parsed.values;
  if (parsed.positionals.length !== 1) return usage(io, parsed.positionals.length === 0 ? 'name the integration to send an event to' : 'name one integration');
  const name = parsed.positionals[0]!;
  const timeoutMs = parseDurationMs(values.timeout);
  if (timeoutMs === undefined || timeoutMs <= 0) return usage(io, `--timeout must be a duration such as 30s or 2m, not "${sanitizeText(values.timeout)}"`);
  const json = values.json === true;
  const dir = resolve(io.cwd, values.dir ?? '.');

  try {
    const info = await readSandboxFile(dir);
    const server = serverUrl(values.server ?? info.daemonUrl);
    const { integration, registry } = await loadIntegration(dir, info, name);
    const webhook = integration.document.spec.trigger.webhook;
    if (webhook === undefined) throw notWebhook(integration);
    const connection = integration.document.spec.connections[webhook.connection];
    const provider = connection === undefined ? undefined : registry.get(connection.provider);
    const webhooks = provider?.document.spec.webhooks;
    if (provider === undefined || webhooks === undefined) throw new PatchbayError('PB_SEND_UNSUPPORTED', `integration "${name}": its trigger connection's provider declares no webhooks`);
    const secrets = info.integrations[name]?.webhookSecrets ?? [];
    if (webhooks.verification.scheme !== 'none' && secrets.length === 0) {
      throw new PatchbayError('PB_SANDBOX_FILE_INVALID', `the sandbox file holds no webhook secret for "${name}": restart the sandbox daemon so it serves this integration`);
    }
    const event = chooseEvent(webhooks, webhook.events, values.event, io.cwd);
    const delivery = buildDelivery(webhooks, event, server, name, secrets[0] ?? '', clock);
    const sent = await post(delivery, name, event.type, timeoutMs);
    const answer = sent.answer as { accepted?: unknown; runId?: unknown; duplicate?: unknown; ignored?: unknown; error?: { code?: unknown; message?: unknown } } | null;
    if (sent.status >= 400 || answer === null || typeof answer.runId !== 'string') {
      const said = answer?.error !== undefined ? `${String(answer.error.code)}: ${String(answer.error.message)}` : answer?.ignored === true ? 'the event type is not one the integration subscribes to' : `status ${sent.status}`;
      if (json) io.stdout.write(`${outputJson({ sent, run: null, steps: [], attempts: [], payload: null })}\n`);
      throw new PatchbayError('PB_SEND_REFUSED', `the daemon did not accept the delivery: ${said}`);
    }
    if (!json) {
      const what = answer.duplicate === true ? 'a duplicate of an earlier event (not run again)' : 'accepted';
      io.stdout.write(`Sent ${sanitizeText(event.type ?? 'an event')} (${sanitizeText(delivery.eventId)}) to ${sanitizeText(name)}: ${sent.status} ${what}, run ${sanitizeText(answer.runId)}\n`);
    }
    const detail = await follow(server, info.adminToken, answer.runId, timeoutMs, options.pollIntervalMs ?? 200, clock);
    if (json) io.stdout.write(`${outputJson({ sent: { ...sent, eventId: delivery.eventId }, ...detail })}\n`);
    else io.stdout.write(`\n${formatRun(detail.run, detail.steps, detail.attempts, detail.payload)}`);
    if (detail.run.status === 'succeeded') {
      if (!json) io.stdout.write(`\nRun ${detail.run.id} succeeded.\n`);
      return ExitCode.ok;
    }
    if (detail.run.status === 'dead') {
      if (!json) io.stdout.write(`\nRun ${detail.run.id} died: ${sanitizeText(detail.run.errorCode ?? 'error')}${detail.run.errorStep === undefined ? '' : ` in step "${sanitizeText(detail.run.errorStep)}"`}.\n`);
      return ExitCode.problems;
    }
    throw new PatchbayError('PB_SEND_TIMEOUT', `run ${detail.run.id} is still ${detail.run.status} after ${formatDurationMs(timeoutMs)}; it goes on in the daemon: follow it with "patchbay runs show ${detail.run.id}"`);
  } catch (error) {
    if (!(error instanceof PatchbayError)) throw error;
    const exit = error.code === 'PB_SEND_REFUSED' || error.code === 'PB_SEND_TIMEOUT' ? ExitCode.problems : ExitCode.usage;
    io.stderr.write(json ? `${outputJson({ error: { code: error.code, message: sanitizeText(error.message) } }, 0)}\n` : `patchbay send: ${error.code}: ${sanitizeText(error.message)}\n`);
    return exit;
  }
}

function usage(io: CliIO, message: string): number {
  io.stderr.write(`patchbay send: ${sanitizeText(message)}\n\n${help}`);
  return ExitCode.usage;
}

function serverUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch (error) {
    throw new PatchbayError('PB_USAGE', `the daemon URL "${sanitizeText(text)}" is not a URL`, { cause: error });
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== '' || url.search !== '') {
    throw new PatchbayError('PB_USAGE', 'the daemon URL must be an http(s) URL without credentials or query');
  }
  return url;
}

/** Validates the manifests the daemon serves and returns the named integration with the providers. */
async function loadIntegration(dir: string, info: SandboxInfo, name: string): Promise<{ integration: LoadedIntegration; registry: ProviderRegistry }> {
  const paths = (info.paths ?? ['integrations']).map((path) => (isAbsolute(path) ? path : resolve(dir, path)));
  let validation;
  try {
    validation = await validateManifests({ paths, providerDirs: defaultProviderDirs(dir, paths), cwd: dir });
  } catch (error) {
    if (error instanceof PatchbayError) throw error;
    throw new PatchbayError('PB_IO', `cannot read the manifests under ${paths.join(', ')}`, { cause: error });
  }
  const integration = validation.integrations.find((candidate) => candidate.name === name);
  if (integration === undefined) {
    const names = validation.integrations.map((candidate) => candidate.name);
    throw new PatchbayError('PB_USAGE', `no valid integration "${sanitizeText(name)}" in ${paths.join(', ')}${didYouMean(name, names)}`);
  }
  return { integration, registry: validation.registry };
}

function notWebhook(integration: LoadedIntegration): PatchbayError {
  const trigger = integration.document.spec.trigger;
  const enqueue = `to run it now, give it an event by hand: patchbay enqueue ${integration.name} --event FILE (in the project folder; the running daemon executes it)`;
  if (trigger.schedule !== undefined) {
    const zone = trigger.schedule.timezone === undefined ? '' : ` (${trigger.schedule.timezone})`;
    return new PatchbayError('PB_SEND_UNSUPPORTED', `integration "${integration.name}" runs on a schedule, "${trigger.schedule.cron}"${zone}, not on webhooks: the daemon fires it at each tick; ${enqueue}`);
  }
  if (trigger.poll !== undefined) {
    return new PatchbayError(
      'PB_SEND_UNSUPPORTED',
      `integration "${integration.name}" polls ${trigger.poll.operation} on "${trigger.poll.schedule}", not webhooks: in the sandbox each poll answers the operation's example items; ${enqueue}`,
    );
  }
  return new PatchbayError('PB_SEND_UNSUPPORTED', `integration "${integration.name}" has no webhook trigger`);
}

interface ChosenEvent {
  readonly type: string | undefined;
  readonly payload: unknown;
}

/**
 * The event to send: `--event` naming an event type of the provider (its sample), or a JSON file;
 * by default the first subscribed type with a sample, else the provider's first sample.
 */
function chooseEvent(webhooks: ProviderWebhooks, subscribed: readonly string[], wanted: string | undefined, cwd: string): ChosenEvent {
  const events = webhooks.events ?? {};
  const withSample = Object.keys(events).filter((type) => events[type]?.sample !== undefined);
  if (wanted !== undefined) {
    if (Object.hasOwn(events, wanted)) {
      const sample = events[wanted]?.sample;
      if (sample === undefined) throw new PatchbayError('PB_SEND_NO_EVENT', `the provider has no sample of "${sanitizeText(wanted)}"; pass a JSON file with --event`);
      return { type: wanted, payload: structuredClone(sample) };
    }
    const file = resolve(cwd, wanted);
    if (!existsSync(file)) {
      throw new PatchbayError('PB_SEND_NO_EVENT', `--event "${sanitizeText(wanted)}" is neither an event type of the provider nor a file${didYouMean(wanted, withSample)}`);
    }
    let payload: unknown;
    try {
      payload = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      throw new PatchbayError('PB_SEND_NO_EVENT', `--event ${sanitizeText(wanted)} is not a JSON file: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    return { type: typeOf(webhooks, payload), payload };
  }
  const type = subscribed.find((candidate) => withSample.includes(candidate)) ?? withSample[0];
  if (type === undefined) throw new PatchbayError('PB_SEND_NO_EVENT', 'the provider has no sample event; pass a JSON payload with --event FILE');
  return { type, payload: structuredClone(events[type]!.sample) };
}

/** The event type of a payload from a file, where the provider reads it from the body; else undefined. */
function typeOf(webhooks: ProviderWebhooks, payload: unknown): string | undefined {
  const path = webhooks.eventType.path;
  if (path === undefined || webhooks.eventType.header !== undefined) return undefined;
  const value = readPath(payload, path);
  return typeof value === 'string' ? value : undefined;
}

interface Delivery {
  readonly url: URL;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
  readonly eventId: string;
}

/** A fresh id shaped like `previous`: the same `prefix_` (Stripe `evt_`), a number, or a UUID. */
function freshId(previous: unknown): string | number {
  if (typeof previous === 'number') return Date.now() * 1000 + (randomBytes(2).readUInt16BE(0) % 1000);
  const prefix = typeof previous === 'string' ? /^([A-Za-z]+_)/.exec(previous)?.[1] : undefined;
  if (prefix !== undefined) return `${prefix}sandbox${randomBytes(12).toString('hex')}`;
  return randomUUID();
}

/** The request to post: body encoded as the provider sends it, event type and id placed, signed. */
function buildDelivery(webhooks: ProviderWebhooks, event: ChosenEvent, server: URL, integration: string, secret: string, clock: Clock): Delivery {
  const payload = event.payload !== null && typeof event.payload === 'object' ? event.payload : { value: event.payload };
  const headers: Record<string, string> = { 'user-agent': 'patchbay-send' };
  let eventId: string | undefined;
  const idLocator = webhooks.eventId;
  if (idLocator?.path !== undefined) {
    const id = freshId(readPath(payload, idLocator.path));
    if (setPath(payload, idLocator.path, id)) eventId = String(id);
  }
  if (idLocator?.header !== undefined) {
    eventId ??= webhooks.verification.scheme === 'standardWebhooks' ? `msg_${randomBytes(12).toString('hex')}` : randomUUID();
    headers[idLocator.header.toLowerCase()] = eventId;
  }
  eventId ??= randomUUID();
  const typeLocator = webhooks.eventType;
  if (typeLocator.header !== undefined && event.type !== undefined) {
    // GitHub: the header carries `issues`, the body's `action` carries `opened`.
    const dot = typeLocator.path === undefined ? -1 : event.type.indexOf('.');
    headers[typeLocator.header.toLowerCase()] = dot < 0 ? event.type : event.type.slice(0, dot);
    if (dot >= 0 && typeLocator.path !== undefined && readPath(payload, typeLocator.path) === undefined) setPath(payload, typeLocator.path, event.type.slice(dot + 1));
  }
  const form = webhooks.contentType === 'form';
  const body = Buffer.from(
    form ? joinPairs(Object.entries(payload as Record<string, unknown>).flatMap(([key, value]) => flattenInput(key, value, {}, 'form'))) : JSON.stringify(payload),
    'utf8',
  );
  headers['content-type'] = form ? 'application/x-www-form-urlencoded' : 'application/json';
  const url = new URL(`hooks/${encodeURIComponent(integration)}`, server.href.endsWith('/') ? server.href : `${server.href}/`);
  if (webhooks.verification.scheme === 'twilio' && !form) url.searchParams.set('bodySHA256', twilioBodyHash(body));
  Object.assign(
    headers,
    signDelivery({ verification: webhooks.verification, secret, url: url.href, body, form, id: eventId, timestampSec: Math.floor(clock.now() / 1000) }),
  );
  return { url, headers, body, eventId };
}

async function post(delivery: Delivery, integration: string, eventType: string | undefined, timeoutMs: number): Promise<Sent> {
  let response: Response;
  try {
    response = await fetch(delivery.url, { method: 'POST', headers: delivery.headers, body: delivery.body, signal: AbortSignal.timeout(Math.min(timeoutMs, 30_000)) });
  } catch (error) {
    throw unreachable(delivery.url, error);
  }
  const text = await response.text();
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    // Not JSON: not the Patchbay ingress (a proxy's page); reported by status.
    answer = null;
  }
  return { integration, url: delivery.url.href, eventType, eventId: delivery.eventId, status: response.status, answer };
}

function unreachable(url: URL, error: unknown): PatchbayError {
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : error instanceof Error ? error.message : String(error);
  return new PatchbayError('PB_SEND_UNREACHABLE', `the daemon at ${url.origin} did not answer (${sanitizeText(cause)}): is "patchbay serve --sandbox" still running?`, { cause: error });
}

/** Looks at the run until it is succeeded or dead, or `timeoutMs` passed; returns the last look. */
async function follow(server: URL, token: string, runId: string, timeoutMs: number, intervalMs: number, clock: Clock): Promise<RunDetail> {
  const url = new URL(`admin/v1/runs/${encodeURIComponent(runId)}`, server.href.endsWith('/') ? server.href : `${server.href}/`);
  const deadline = clock.now() + timeoutMs;
  for (;;) {
    let response: Response;
    try {
      response = await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: 'application/json' }, signal: AbortSignal.timeout(10_000) });
    } catch (error) {
      throw unreachable(url, error);
    }
    const text = await response.text();
    if (!response.ok) {
      let said = `status ${response.status}`;
      try {
        const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
        if (body.error !== undefined) said = `${body.error.code ?? response.status}: ${body.error.message ?? ''}`;
      } catch {
        // Not JSON: the status says enough.
      }
      throw new PatchbayError('PB_SEND_UNREACHABLE', `the daemon's admin API refused to show run ${runId} (${sanitizeText(said)})`);
    }
    const detail = readDetail(text);
    if (detail.run.status === 'succeeded' || detail.run.status === 'dead' || clock.now() >= deadline) return detail;
    await new Promise((done) => setTimeout(done, intervalMs));
  }
}

/** The admin API's run detail, absent values (null on the wire) back to undefined for the renderer. */
function readDetail(text: string): RunDetail {
  let body: { run?: unknown; steps?: unknown; attempts?: unknown; payload?: unknown };
  try {
    body = JSON.parse(text) as typeof body;
  } catch (error) {
    throw new PatchbayError('PB_SEND_UNREACHABLE', 'the admin API answered something that is not JSON: is --server a Patchbay daemon?', { cause: error });
  }
  if (body.run === null || typeof body.run !== 'object' || !Array.isArray(body.steps) || !Array.isArray(body.attempts)) {
    throw new PatchbayError('PB_SEND_UNREACHABLE', 'the admin API answered a run in a shape this version does not know');
  }
  const fields = <T>(row: unknown): T => Object.fromEntries(Object.entries(row as Record<string, unknown>).map(([key, value]) => [key, value === null ? undefined : value])) as T;
  return {
    run: fields<RunRow>(body.run),
    steps: body.steps.map((row) => fields<StepRow>(row)),
    attempts: body.attempts.map((row) => fields<AttemptRow>(row)),
    payload: body.payload,
  };
}
