import type { IncomingMessage, ServerResponse } from 'node:http';
import { codes } from '../../diag/codes.js';
import { PatchbayError } from '../../diag/errors.js';
import { systemClock, type Clock } from '../../lib/clock.js';
import { readBodyWithin } from '../../lib/http-server.js';
import { silentLogger, type Logger } from '../../lib/log.js';
import { RunStatus, type RunCounts, type StateStore } from '../../store/state-store.js';
import type { DaemonMetrics } from '../metrics.js';
import {
  adminBasePath,
  countsByStatus,
  maxRunsPageLimit,
  type DaemonStatus,
  type ErrorBody,
  type IntegrationBody,
  type IntegrationsBody,
  type RetryBody,
  type RunDetailBody,
  type RunsPageBody,
  type StatusBody,
} from './api.js';
import { AdminAuthenticator, AdminScope, requireScope, type AdminAuthSettings, type AdminPrincipal } from './auth.js';
import { listNewest, progressOf, replayAllDead, replayRuns, UnknownRuns } from './run-queries.js';

/**
 * The admin API (`/admin/v1/…`) and `/metrics`, as one request handler the daemon's HTTP server
 * calls for those paths. Every request is authenticated first (so an unauthenticated caller
 * learns nothing, not even which paths exist), then routed; reading needs `patchbay:read`,
 * replaying dead letters `patchbay:operate`. Answers are JSON (`/metrics`: Prometheus text);
 * errors are `{ "error": { "code", "message" } }` with the status of their code.
 */

export interface AdminHandlerOptions {
  readonly store: StateStore;
  /** Parsed settings (an authenticator is built from them), or a ready authenticator (shared JWKS cache). */
  readonly auth: AdminAuthSettings | AdminAuthenticator;
  /** Served at `/metrics`; without it `/metrics` is 404. */
  readonly metrics?: DaemonMetrics | undefined;
  /** The daemon's own state, asked at each status request. */
  readonly status: () => DaemonStatus | Promise<DaemonStatus>;
  /** Time of replays and JWT checks. @default systemClock */
  readonly clock?: Clock;
  /** Access refusals (info) and replays (info, with who asked). @default silentLogger */
  readonly logger?: Logger;
  /** Time limit of a read request's store work; past it the answer is 503 PB_ADMIN_STORE_TIMEOUT. @default 10_000 */
  readonly readTimeoutMs?: number;
  /** Time limit of a replay request. @default 60_000 */
  readonly operateTimeoutMs?: number;
  /** Largest accepted request body. @default 65_536 */
  readonly maxBodyBytes?: number;
}

/** The handler the daemon mounts: `path` is the request target (path and query), e.g. `/admin/v1/runs?status=dead`. */
export type AdminHandler = (req: IncomingMessage, res: ServerResponse, path: string) => Promise<void>;

/**
 * True for the request targets the admin handler must receive: `/metrics` and everything under
 * `/admin` (an unknown admin path is answered by the handler, after authentication, as 404).
 * `target` is the request's path, with or without a query.
 */
export function isAdminPath(target: string): boolean {
  const pathname = target.split('?', 1)[0]!;
  return pathname === '/metrics' || pathname === '/admin' || pathname.startsWith('/admin/');
}

/** Most ids one `POST /admin/v1/runs/retry` may name. */
export const maxRetryIds = 1000;

const statusOfCode: Partial<Record<string, number>> = {
  PB_ADMIN_UNAUTHENTICATED: 401,
  PB_ADMIN_FORBIDDEN: 403,
  PB_ADMIN_BAD_REQUEST: 400,
  PB_ADMIN_BODY_TOO_LARGE: 413,
  PB_ADMIN_NOT_FOUND: 404,
  PB_RUN_NOT_FOUND: 404,
  PB_ADMIN_METHOD: 405,
  PB_RUN_NOT_DEAD: 409,
  PB_ADMIN_AUTH_UNAVAILABLE: 503,
  PB_ADMIN_STORE_TIMEOUT: 503,
};

interface Route {
  readonly method: 'GET' | 'POST';
  readonly scope: AdminScope;
  readonly timeoutMs: number;
  readonly run: (context: RouteContext) => Promise<Answer>;
}

interface RouteContext {
  readonly query: URLSearchParams;
  readonly params: readonly string[];
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly principal: AdminPrincipal;
}

type Answer = { readonly status: number; readonly json: unknown } | { readonly status: number; readonly contentType: string; readonly text: string };

/**
 * Builds the admin handler. It never rejects: every failure becomes an error answer (a non-Patchbay
 * error is logged and answered 500 PB_INTERNAL without its message).
 */
export function createAdminHandler(options: AdminHandlerOptions): AdminHandler {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger;
  const authenticator = options.auth instanceof AdminAuthenticator ? options.auth : new AdminAuthenticator(options.auth, { clock });
  const readTimeoutMs = options.readTimeoutMs ?? 10_000;
  const operateTimeoutMs = options.operateTimeoutMs ?? 60_000;
  const maxBodyBytes = options.maxBodyBytes ?? 65_536;
  const { store } = options;
  const now = () => clock.now();

  const read = (run: Route['run']): Route => ({ method: 'GET', scope: AdminScope.read, timeoutMs: readTimeoutMs, run });
  const operate = (run: Route['run']): Route => ({ method: 'POST', scope: AdminScope.operate, timeoutMs: operateTimeoutMs, run });

  async function integrationBodies(): Promise<IntegrationBody[]> {
    const [status, counts] = await Promise.all([options.status(), store.countRuns()]);
    return integrationsOf(status, counts);
  }

  const routes: readonly { readonly pattern: RegExp; readonly routes: readonly Route[] }[] = [
    {
      pattern: /^\/metrics$/,
      routes: [
        read(async () => {
          if (options.metrics === undefined) throw new PatchbayError('PB_ADMIN_NOT_FOUND', 'metrics are not enabled on this daemon');
          const { contentType, body } = await options.metrics.render();
          return { status: 200, contentType, text: body };
        }),
      ],
    },
    {
      pattern: /^\/admin\/v1\/status$/,
      routes: [
        read(async ({ query }) => {
          checkQuery(query, []);
          const [status, counts] = await Promise.all([options.status(), store.countRuns()]);
          const body: StatusBody = {
            revision: status.revision ?? null,
            startedAt: new Date(status.startedAt).toISOString(),
            draining: status.draining,
            version: status.version ?? null,
            integrations: integrationsOf(status, counts),
            runs: countsByStatus(counts),
          };
          return { status: 200, json: body };
        }),
      ],
    },
    {
      pattern: /^\/admin\/v1\/integrations$/,
      routes: [
        read(async ({ query }) => {
          checkQuery(query, []);
          const body: IntegrationsBody = { integrations: await integrationBodies() };
          return { status: 200, json: body };
        }),
      ],
    },
    {
      pattern: /^\/admin\/v1\/integrations\/([^/]+)$/,
      routes: [
        read(async ({ query, params }) => {
          checkQuery(query, []);
          const name = params[0]!;
          const found = (await integrationBodies()).find((integration) => integration.name === name);
          if (found === undefined) throw new PatchbayError('PB_ADMIN_NOT_FOUND', `no integration "${printable(name)}" in the applied revision or the store`);
          return { status: 200, json: found };
        }),
      ],
    },
    {
      pattern: /^\/admin\/v1\/runs$/,
      routes: [
        read(async ({ query }) => {
          const filter = runsQuery(query);
          const runs = await listNewest(store, filter, filter.limit);
          const items = [];
          for (const run of runs) items.push({ run, progress: progressOf(run, await store.getSteps(run.id)) });
          const last = runs[runs.length - 1];
          const body: RunsPageBody = { runs: items, nextBefore: runs.length === filter.limit && last !== undefined ? last.seq : null };
          return { status: 200, json: body };
        }),
      ],
    },
    {
      pattern: /^\/admin\/v1\/runs\/retry$/,
      routes: [
        operate(async ({ query, req, res, principal }) => {
          checkQuery(query, []);
          const request = retryRequest(await readJsonBody(req, res, maxBodyBytes));
          const body: RetryBody = request.ids !== undefined ? await replayRuns(store, request.ids, now) : await replayAllDead(store, request.integration, now);
          logger.log('info', 'dead letters replayed through the admin API', { subject: principal.subject, queued: body.queued, skipped: body.skipped.length, ...(request.integration === undefined ? {} : { integration: request.integration }) });
          return { status: 200, json: body };
        }),
      ],
    },
    {
      pattern: /^\/admin\/v1\/runs\/([^/]+)$/,
      routes: [
        read(async ({ query, params }) => {
          checkQuery(query, []);
          const id = params[0]!;
          const run = await store.getRun(id);
          if (run === undefined) throw await new UnknownRuns(store).error(id);
          const [steps, attempts, payload] = await Promise.all([store.getSteps(id), store.getAttempts(id), store.getPayload(id)]);
          const body: RunDetailBody = { run, steps, attempts, payload };
          return { status: 200, json: body };
        }),
      ],
    },
    {
      pattern: /^\/admin\/v1\/runs\/([^/]+)\/retry$/,
      routes: [
        operate(async ({ query, params, req, res, principal }) => {
          checkQuery(query, []);
          await readJsonBody(req, res, maxBodyBytes);
          const result = await replayRuns(store, [params[0]!], now);
          const skipped = result.skipped[0];
          if (skipped !== undefined) throw new PatchbayError(skipped.code, skipped.message);
          logger.log('info', 'dead letter replayed through the admin API', { subject: principal.subject, runId: params[0] });
          const body: RetryBody = result;
          return { status: 200, json: body };
        }),
      ],
    },
  ];

  return async (req, res, path) => {
    try {
      let url: URL;
      try {
        url = new URL(path, 'http://admin.invalid');
      } catch (error) {
        throw new PatchbayError('PB_ADMIN_BAD_REQUEST', 'the request path is not valid', { cause: error });
      }
      const header = req.headers.authorization;
      let principal: AdminPrincipal;
      try {
        principal = await authenticator.authenticate(typeof header === 'string' ? header : undefined);
      } catch (error) {
        if (error instanceof PatchbayError) logger.log('info', 'admin request refused', { code: error.code, method: req.method, path: url.pathname, remote: req.socket.remoteAddress });
        // RFC 6750: a presented token that fails is "invalid_token"; no token gets the bare challenge.
        if (error instanceof PatchbayError && error.code === 'PB_ADMIN_UNAUTHENTICATED' && typeof header === 'string' && /^Bearer +\S/i.test(header)) {
          res.setHeader('www-authenticate', 'Bearer realm="patchbay", error="invalid_token"');
        }
        throw error;
      }

      const match = routes.map((entry) => ({ entry, groups: entry.pattern.exec(url.pathname) })).find((candidate) => candidate.groups !== null);
      if (match === undefined || match.groups === null) {
        throw new PatchbayError('PB_ADMIN_NOT_FOUND', url.pathname.startsWith(`${adminBasePath}/`) || url.pathname === adminBasePath ? `no admin API route ${printable(url.pathname)}` : 'not found');
      }
      const route = match.entry.routes.find((candidate) => candidate.method === req.method);
      if (route === undefined) {
        const allow = match.entry.routes.map((candidate) => candidate.method).join(', ');
        res.setHeader('allow', allow);
        throw new PatchbayError('PB_ADMIN_METHOD', `${printable(req.method ?? '?')} is not allowed here; use ${allow}`);
      }
      requireScope(principal, route.scope);
      let params: string[];
      try {
        params = match.groups.slice(1).map((segment) => decodeURIComponent(segment));
      } catch (error) {
        throw new PatchbayError('PB_ADMIN_BAD_REQUEST', 'the request path has a malformed percent escape', { cause: error });
      }
      const answer = await withTimeLimit(route.run({ query: url.searchParams, params, req, res, principal }), route.timeoutMs);
      if ('json' in answer) sendJson(res, answer.status, answer.json);
      else send(res, answer.status, answer.contentType, answer.text);
    } catch (error) {
      sendError(res, error, logger);
    }
  };
}

// ---------------------------------------------------------------------------------------------

function integrationsOf(status: DaemonStatus, counts: readonly RunCounts[]): IntegrationBody[] {
  const bodies: IntegrationBody[] = status.integrations.map((integration) => ({
    name: integration.name,
    trigger: integration.trigger,
    enabled: integration.enabled,
    state: integration.state,
    error: integration.error === undefined ? null : { code: integration.error.code, message: integration.error.message },
    runs: countsByStatus(counts, integration.name),
  }));
  const known = new Set(bodies.map((body) => body.name));
  const others = [...new Set(counts.map((row) => row.integration))].filter((name) => !known.has(name)).sort();
  for (const name of others) bodies.push({ name, trigger: null, enabled: null, state: null, error: null, runs: countsByStatus(counts, name) });
  return bodies;
}

/** Control characters and overlong values out of text echoed in a message. */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return clean.length > 200 ? `${clean.slice(0, 200)}…` : clean;
}

/** Refuses query parameters other than `allowed`, and repeated ones (a typo must not widen a query). */
function checkQuery(query: URLSearchParams, allowed: readonly string[]): void {
  const seen = new Set<string>();
  for (const name of query.keys()) {
    if (!allowed.includes(name)) {
      throw new PatchbayError('PB_ADMIN_BAD_REQUEST', `unknown query parameter "${printable(name)}"${allowed.length === 0 ? '; this route takes none' : `; use ${allowed.join(', ')}`}`);
    }
    if (seen.has(name)) throw new PatchbayError('PB_ADMIN_BAD_REQUEST', `query parameter "${name}" is given twice`);
    seen.add(name);
  }
}

interface RunsQuery {
  readonly integration: string | undefined;
  readonly status: RunStatus | undefined;
  readonly since: number | undefined;
  readonly beforeSeq: number | undefined;
  readonly limit: number;
}

function wholeNumber(query: URLSearchParams, name: string, min: number, max: number): number | undefined {
  const text = query.get(name);
  if (text === null) return undefined;
  const value = /^[0-9]{1,16}$/.test(text) ? Number(text) : NaN;
  if (!(value >= min && value <= max)) throw new PatchbayError('PB_ADMIN_BAD_REQUEST', `${name} must be a whole number from ${min} to ${max}, not "${printable(text)}"`);
  return value;
}

/** `GET /admin/v1/runs` parameters: integration, status, since (ms or ISO time), before (a seq cursor), limit (1–1000, default 50). */
function runsQuery(query: URLSearchParams): RunsQuery {
  checkQuery(query, ['integration', 'status', 'since', 'before', 'limit']);
  const statuses = Object.values(RunStatus) as string[];
  const status = query.get('status') ?? undefined;
  if (status !== undefined && !statuses.includes(status)) throw new PatchbayError('PB_ADMIN_BAD_REQUEST', `status must be one of ${statuses.join(', ')}, not "${printable(status)}"`);
  const integration = query.get('integration') ?? undefined;
  if (integration === '') throw new PatchbayError('PB_ADMIN_BAD_REQUEST', 'integration must not be empty');
  let since: number | undefined;
  const sinceText = query.get('since');
  if (sinceText !== null) {
    since = /^[0-9]{1,16}$/.test(sinceText) ? Number(sinceText) : /^\d{4}-\d{2}-\d{2}(T[0-9:.]+(Z|[+-]\d{2}:\d{2}))?$/i.test(sinceText) ? Date.parse(sinceText) : NaN;
    if (Number.isNaN(since)) throw new PatchbayError('PB_ADMIN_BAD_REQUEST', `since must be milliseconds since the epoch or an ISO time with an offset, not "${printable(sinceText)}"`);
  }
  return {
    integration,
    status: status as RunStatus | undefined,
    since,
    beforeSeq: wholeNumber(query, 'before', 1, Number.MAX_SAFE_INTEGER),
    limit: wholeNumber(query, 'limit', 1, maxRunsPageLimit) ?? 50,
  };
}

/** The body of `POST /admin/v1/runs/retry`: `{ "ids": [...] }` or `{ "integration"?: name }` (every dead run). */
function retryRequest(body: unknown): { ids?: readonly string[]; integration?: string } {
  if (body === undefined) return {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new PatchbayError('PB_ADMIN_BAD_REQUEST', 'the body must be a JSON object: { "ids": [...] } or { "integration": "name" }');
  const { ids, integration, ...rest } = body as Record<string, unknown>;
  const extra = Object.keys(rest)[0];
  if (extra !== undefined) throw new PatchbayError('PB_ADMIN_BAD_REQUEST', `unknown field "${printable(extra)}" in the body; use ids or integration`);
  if (ids !== undefined && integration !== undefined) throw new PatchbayError('PB_ADMIN_BAD_REQUEST', 'give ids or integration, not both (named runs are replayed whatever their integration)');
  if (integration !== undefined) {
    if (typeof integration !== 'string' || integration === '') throw new PatchbayError('PB_ADMIN_BAD_REQUEST', 'integration must be a non-empty string');
    return { integration };
  }
  if (ids !== undefined) {
    if (!Array.isArray(ids) || ids.length === 0 || !ids.every((id) => typeof id === 'string' && id !== '')) throw new PatchbayError('PB_ADMIN_BAD_REQUEST', 'ids must be a non-empty array of run ids');
    if (ids.length > maxRetryIds) throw new PatchbayError('PB_ADMIN_BAD_REQUEST', `at most ${maxRetryIds} ids per request, not ${ids.length}`);
    return { ids: ids as string[] };
  }
  return {};
}

/** Reads a JSON request body up to `maxBytes`; an empty body is undefined. */
async function readJsonBody(req: IncomingMessage, res: ServerResponse, maxBytes: number): Promise<unknown> {
  const read = await readBodyWithin(req, res, maxBytes);
  if (read.kind === 'tooLarge') throw new PatchbayError('PB_ADMIN_BODY_TOO_LARGE', `the request body is larger than ${maxBytes} bytes`);
  if (read.kind === 'aborted') throw new PatchbayError('PB_ADMIN_BAD_REQUEST', 'the request body did not arrive whole', { cause: read.cause });
  const text = read.body.toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new PatchbayError('PB_ADMIN_BAD_REQUEST', 'the request body is not valid JSON', { cause: error });
  }
}

async function withTimeLimit<T>(work: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new PatchbayError('PB_ADMIN_STORE_TIMEOUT', `the request took longer than ${timeoutMs} ms; the state store may be busy, try again`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function send(res: ServerResponse, status: number, contentType: string, text: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.statusCode = status;
  res.setHeader('content-type', contentType);
  res.setHeader('cache-control', 'no-store');
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('content-length', Buffer.byteLength(text));
  res.end(text);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  // Absent values as null, so every key is there for clients such as jq.
  send(res, status, 'application/json; charset=utf-8', `${JSON.stringify(value, (_key, item: unknown) => (item === undefined ? null : item))}\n`);
}

function sendError(res: ServerResponse, error: unknown, logger: Logger): void {
  let body: ErrorBody;
  let status: number;
  if (error instanceof PatchbayError) {
    status = statusOfCode[error.code] ?? (codes[error.code].retry === 'transient' ? 503 : 500);
    body = { error: { code: error.code, message: error.message } };
  } else {
    logger.log('error', 'admin request failed unexpectedly', { error: error instanceof Error ? error.name : typeof error });
    status = 500;
    body = { error: { code: 'PB_INTERNAL', message: 'unexpected error; see the daemon log' } };
  }
  if (status === 401) {
    if (!res.hasHeader('www-authenticate')) res.setHeader('www-authenticate', 'Bearer realm="patchbay"');
  } else if (status === 403) {
    res.setHeader('www-authenticate', 'Bearer realm="patchbay", error="insufficient_scope"');
  }
  if (status === 503) res.setHeader('retry-after', '1');
  sendJson(res, status, body);
}
