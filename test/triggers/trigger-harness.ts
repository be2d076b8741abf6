import { PatchbayError } from '../../engine/diag/errors.js';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Executor } from '../../engine/executor/executor.js';
import { buildExecutionPlan, type ExecutionPlan } from '../../engine/executor/plan.js';
import type { Clock } from '../../engine/lib/clock.js';
import { MemoryLogger } from '../../engine/lib/log.js';
import { SecretSet } from '../../engine/lib/secrets.js';
import { validateManifests } from '../../engine/manifest/validate.js';
import { openSqliteStore } from '../../engine/store/sqlite/sqlite-store.js';
import type { RunRow, StateStore } from '../../engine/store/state-store.js';
import { startTriggers, type PollReport, type TickReport, type TriggerScheduler, type TriggerSchedulerOptions } from '../../engine/triggers/scheduler.js';
import { makeTempDir, repoRoot, writeFiles } from '../support/cli.js';
import { keepForSuiteScan } from '../support/suite-record.js';

/** The fixture provider of the trigger tests (`tickets`). */
export const triggerProviders = join(repoRoot, 'test', 'fixtures', 'triggers', 'providers');

export interface Ticket {
  readonly id: string;
  readonly updated_at: string;
  readonly title: string;
}

/** One request the ticket API received. */
export interface ListingRequest {
  readonly query: Readonly<Record<string, string>>;
  readonly authorization: string | undefined;
}

/**
 * A ticket API on 127.0.0.1: `GET /tickets` lists tickets with `updated_at >= updated_since`,
 * sorted by `updated_at` (`order=asc|desc`), `limit` per page, the page token being the offset
 * into that listing. It can fail a chosen request, answer slowly, and counts concurrent requests.
 */
export class TicketApi {
  readonly tickets: Ticket[] = [];
  readonly requests: ListingRequest[] = [];
  /** Answers 500 to requests this returns true for (called before answering). */
  failWhen: ((query: Readonly<Record<string, string>>, index: number) => boolean) | undefined;
  /** Delay before answering, in ms (real time). */
  delayMs = 0;
  /** Ignore `updated_since` (an API whose filter is coarser than the cursor). */
  ignoreSince = false;
  maxConcurrent = 0;
  private concurrent = 0;
  private server: Server | undefined;
  origin = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.answer(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.origin = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  add(...tickets: Ticket[]): void {
    this.tickets.push(...tickets);
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server === undefined ? resolve() : this.server.close(() => resolve())));
  }

  private async answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const query = Object.fromEntries(url.searchParams.entries());
    const index = this.requests.length;
    this.requests.push({ query, authorization: req.headers.authorization });
    this.concurrent += 1;
    this.maxConcurrent = Math.max(this.maxConcurrent, this.concurrent);
    try {
      if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
      if (url.pathname === '/notes') return send(res, 200, { id: 'note_1' });
      if (url.pathname !== '/tickets') return send(res, 404, { error: 'no such path' });
      if (this.failWhen?.(query, index) === true) return send(res, 500, { error: 'scripted failure' });
      const since = query.updated_since;
      let listed = this.tickets.filter((ticket) => this.ignoreSince || since === undefined || Date.parse(ticket.updated_at) >= Date.parse(since));
      listed = [...listed].sort((a, b) => Date.parse(a.updated_at) - Date.parse(b.updated_at) || a.id.localeCompare(b.id));
      if (query.order === 'desc') listed.reverse();
      const limit = Number(query.limit ?? 100);
      const offset = Number(query.page_token ?? 0);
      const data = listed.slice(offset, offset + limit);
      const more = offset + limit < listed.length;
      send(res, 200, { data, next_page_token: more ? String(offset + limit) : null });
    } finally {
      this.concurrent -= 1;
    }
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** A ticket updated at `iso`. */
export function ticket(id: string, iso: string): Ticket {
  return { id, updated_at: iso, title: `Ticket ${id}` };
}

export const token = `tkt_test_${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;

/** The start of an integration whose `tickets` connection reaches `origin` on loopback, up to its connections. */
function ticketsIntegrationHead(name: string, origin: string): string {
  return `apiVersion: patchbay/v1
kind: Integration
metadata:
  name: ${name}
spec:
  connections:
    tickets:
      provider: tickets
      baseUrl: ${origin}
      allowedHosts: [ "${new URL(origin).host}" ]
      allowPrivateAddresses: [ 127.0.0.1/32 ]
      auth: { type: bearer, token: { env: TICKETS_TOKEN } }
`;
}

/** An integration polling the ticket API at `origin`; `poll` is the YAML of `trigger.poll`'s fields, indented by six spaces. */
export function pollIntegration(name: string, origin: string, poll: string, extra = ''): string {
  return `${ticketsIntegrationHead(name, origin)}  vars:
    order: desc
  trigger:
    poll:
      connection: tickets
      operation: tickets.list
${poll}
  steps:
    - id: note
      call: tickets.notes.create
      with: { text: "{{ event.title }}" }
${extra}`;
}

/** An integration on a cron schedule; its step would write a note (never executed here). */
export function scheduleIntegration(name: string, schedule: string, extra = ''): string {
  return `${ticketsIntegrationHead(name, 'http://127.0.0.1:9')}  trigger:
    schedule:
${schedule}
  steps:
    - id: note
      call: tickets.notes.create
      with: { text: "{{ event.scheduledAt }}" }
${extra}`;
}

/**
 * A project on disk (integrations validated, planned) with a SQLite store and the trigger
 * scheduler on a `ManualClock` without timers. `restart` stops the scheduler and closes the
 * store, then opens both again from the same files: what a daemon restart does. A world made
 * with `shareWith` is a second daemon on the first one's folder and state file.
 */
export class TriggerWorld {
  readonly logger = new MemoryLogger();
  readonly polls: PollReport[] = [];
  readonly ticks: TickReport[] = [];
  readonly dir: string;
  store!: StateStore;
  plan!: ExecutionPlan;
  scheduler!: TriggerScheduler;
  private executor!: Executor;
  /** The next this-many submits fail with PB_STATE_BUSY, as a locked store would. */
  failingSubmits = 0;

  constructor(
    private readonly integrations: Record<string, string>,
    private readonly clock: Clock,
    private readonly options: Partial<TriggerSchedulerOptions> = {},
    shareWith?: TriggerWorld,
  ) {
    this.dir = shareWith?.dir ?? makeTempDir('triggers');
  }

  get stateFile(): string {
    return join(this.dir, 'state.db');
  }

  async start(): Promise<this> {
    writeFiles(this.dir, Object.fromEntries(Object.entries(this.integrations).map(([name, text]) => [`integrations/${name}.yaml`, text])));
    const validation = await validateManifests({ paths: [join(this.dir, 'integrations')], providerDirs: [triggerProviders], bundledProviders: false, cwd: this.dir });
    const errors = validation.diagnostics.filter((diagnostic) => diagnostic.severity === 'error');
    if (errors.length > 0) throw new Error(`test integrations do not validate:\n${errors.map((e) => `${e.code} ${e.message}`).join('\n')}`);
    this.plan = await buildExecutionPlan({ integrations: validation.integrations, registry: validation.registry, secrets: new SecretSet({ env: { TICKETS_TOKEN: token } }), clock: this.clock, logger: this.logger });
    this.store = await openSqliteStore(this.stateFile);
    // A real executor's submit (redaction, ordering keys, durable acceptance); it is not started,
    // so runs stay queued and the tests see exactly what the triggers submitted.
    this.executor = new Executor({ store: this.store, plan: this.plan, clock: this.clock, logger: this.logger });
    this.scheduler = await startTriggers({
      plan: this.plan,
      store: this.store,
      submit: (events) => {
        if (this.failingSubmits > 0) {
          this.failingSubmits -= 1;
          return Promise.reject(new PatchbayError('PB_STATE_BUSY', 'the state store is locked'));
        }
        return this.executor.submit(events);
      },
      clock: this.clock,
      random: () => 0,
      logger: this.logger,
      timers: false,
      onPoll: (report) => this.polls.push(report),
      onTick: (report) => this.ticks.push(report),
      ...this.options,
    });
    return this;
  }

  async stop(): Promise<void> {
    await this.scheduler.stop();
    await this.plan.close();
    await this.store.close();
    keepForSuiteScan({ label: 'triggers', files: [this.stateFile], logs: [this.logger.text()], secrets: [token] });
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Runs of `integration`, oldest first. */
  async runs(integration: string): Promise<RunRow[]> {
    return [...(await this.store.listRuns({ integration, limit: 1000 }))].reverse();
  }

  async keys(integration: string): Promise<string[]> {
    return (await this.runs(integration)).map((run) => run.eventKey);
  }

  async cursor(integration: string): Promise<Record<string, unknown> | undefined> {
    const text = await this.store.getCursor(integration);
    return text === undefined ? undefined : (JSON.parse(text) as Record<string, unknown>);
  }
}
