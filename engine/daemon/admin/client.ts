import { request } from 'undici';
import { codes, type Code } from '../../diag/codes.js';
import { PatchbayError } from '../../diag/errors.js';
import type { RunStatus } from '../../store/state-store.js';
import { adminBasePath, type RetryBody, type RunDetailBody, type RunsPageBody, type StatusBody } from './api.js';
import { isLoopbackHost } from './auth.js';

/**
 * A client of the admin API, for the CLI's `status` and `runs` against a running daemon. Rows come
 * back with `null` for absent values turned into `undefined` again, so the CLI's renderers see the
 * same values as when they read a state file.
 */

/** Largest admin answer read (a run with many large attempts). */
const maxAnswerBytes = 64 * 1024 * 1024;

/**
 * Checks the daemon's URL (`--server`, `PATCHBAY_SERVER`): http(s), no user name, password, query
 * or fragment, and plain http only to a loopback host (a token must not cross a network in clear).
 * A path is kept as a prefix (a daemon behind a proxy at `/patchbay`). Throws PatchbayError
 * PB_ADMIN_BAD_SERVER.
 */
export function parseServerUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch (error) {
    throw new PatchbayError('PB_ADMIN_BAD_SERVER', 'the server is not a URL; give the daemon\'s address, e.g. http://127.0.0.1:8080', { cause: error });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new PatchbayError('PB_ADMIN_BAD_SERVER', `the server URL must be http or https, not ${url.protocol.replace(':', '')}`);
  if (url.username !== '' || url.password !== '') throw new PatchbayError('PB_ADMIN_BAD_SERVER', 'the server URL must not carry a user name or password; the token comes from PATCHBAY_ADMIN_TOKEN');
  if (url.search !== '' || url.hash !== '') throw new PatchbayError('PB_ADMIN_BAD_SERVER', 'the server URL must not have a query or fragment');
  if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
    throw new PatchbayError('PB_ADMIN_BAD_SERVER', `plain http is only allowed to this machine (127.0.0.1, localhost, ::1); use https for ${url.host}`);
  }
  return url;
}

export interface AdminClientOptions {
  /** Bearer token (PATCHBAY_ADMIN_TOKEN); without one, the daemon answers 401. */
  readonly token: string | undefined;
  /** Time limit of each request (connect, headers and body). @default 30_000 */
  readonly timeoutMs?: number;
}

/** Query of `listRuns`. */
export interface RunsQuery {
  readonly integration?: string | undefined;
  readonly status?: RunStatus | undefined;
  /** Received at or after, ms since the epoch. */
  readonly since?: number | undefined;
  readonly before?: number | undefined;
  /** 1–1000. */
  readonly limit?: number | undefined;
}

/** Turns top-level nulls of a row back into undefined (the stored shapes use undefined). */
function row<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, item === null ? undefined : item])) as T;
}

export class AdminClient {
  private readonly timeoutMs: number;

  constructor(
    readonly server: URL,
    private readonly options: AdminClientOptions,
  ) {
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** `GET /admin/v1/status`. */
  status(): Promise<StatusBody> {
    return this.call<StatusBody>('GET', '/status');
  }

  /** One page of `GET /admin/v1/runs`. */
  async listRuns(query: RunsQuery): Promise<RunsPageBody> {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
    const page = await this.call<RunsPageBody>('GET', `/runs${params.size === 0 ? '' : `?${params}`}`);
    return { runs: page.runs.map((item) => ({ run: row(item.run), progress: item.progress })), nextBefore: page.nextBefore };
  }

  /** `GET /admin/v1/runs/:id`; rejects with PB_RUN_NOT_FOUND for an unknown id. */
  async getRun(id: string): Promise<RunDetailBody> {
    const detail = await this.call<RunDetailBody>('GET', `/runs/${encodeURIComponent(id)}`);
    return { run: row(detail.run), steps: detail.steps.map(row), attempts: detail.attempts.map(row), payload: detail.payload };
  }

  /** `POST /admin/v1/runs/retry` with named ids (at most 1000) or every dead run of an integration (or all). */
  async retry(body: { readonly ids: readonly string[] } | { readonly integration?: string | undefined }): Promise<RetryBody> {
    const result = await this.call<RetryBody>('POST', '/runs/retry', body);
    return { ...result, skipped: result.skipped.map(row) };
  }

  /**
   * Sends one request and parses the JSON answer. Rejects with PatchbayError: the daemon's own
   * error code and message for an error answer (PB_ADMIN_UNAUTHENTICATED, PB_RUN_NOT_FOUND, …);
   * PB_ADMIN_UNREACHABLE when no answer came in time, or it is not a Patchbay JSON answer.
   */
  private async call<T>(method: 'GET' | 'POST', route: string, body?: unknown): Promise<T> {
    const url = new URL(`${this.server.pathname.replace(/\/+$/, '')}${adminBasePath}${route}`, this.server);
    const where = `${this.server.protocol}//${this.server.host}`;
    let response;
    try {
      response = await request(url, {
        method,
        headers: {
          accept: 'application/json',
          ...(this.options.token === undefined ? {} : { authorization: `Bearer ${this.options.token}` }),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code ?? (error instanceof Error ? error.name : 'error');
      throw new PatchbayError('PB_ADMIN_UNREACHABLE', `cannot reach the daemon at ${where}: ${reason}; is "patchbay serve" running there?`, { cause: error });
    }
    let text: string;
    try {
      const length = Number(response.headers['content-length'] ?? 0);
      if (length > maxAnswerBytes) throw new Error(`answer of ${length} bytes`);
      text = await response.body.text();
    } catch (error) {
      throw new PatchbayError('PB_ADMIN_UNREACHABLE', `the daemon at ${where} stopped answering: ${error instanceof Error ? error.name : 'error'}`, { cause: error });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new PatchbayError('PB_ADMIN_UNREACHABLE', `${where} answered ${response.statusCode} with something that is not JSON: is it a Patchbay daemon?`, { cause: error });
    }
    if (response.statusCode >= 200 && response.statusCode < 300) return parsed as T;
    const failure = (parsed as { error?: { code?: unknown; message?: unknown } }).error;
    if (typeof failure?.code === 'string' && Object.hasOwn(codes, failure.code) && typeof failure.message === 'string') {
      const code = failure.code as Code;
      const hint = code === 'PB_ADMIN_UNAUTHENTICATED' && this.options.token === undefined ? ' (set PATCHBAY_ADMIN_TOKEN)' : '';
      throw new PatchbayError(code, `${failure.message}${hint}`);
    }
    throw new PatchbayError('PB_ADMIN_UNREACHABLE', `${where} answered ${response.statusCode} without a Patchbay error: is it a Patchbay daemon?`);
  }
}
