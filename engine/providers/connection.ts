import { createHash } from 'node:crypto';
import { PatchbayError } from '../diag/errors.js';
import { createSigner, type AuthSchemeSettings, type ResolvedAuth } from '../http/auth/create-signer.js';
import type { Signer } from '../http/auth/signer.js';
import { HttpClient, type HttpClientOptions, type SendOptions } from '../http/client.js';
import { isLoopbackHost } from '../http/hosts.js';
import type { InboundResponse, OutboundRequest } from '../http/request.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { parseDurationMs } from '../lib/duration.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { SecretSet, writeSecret, type SecretRef, type SecretSources } from '../lib/secrets.js';
import type { Connection } from '../types/integration.generated.js';
import type { ProviderAuthScheme, ProviderOperation, ProviderPagination } from '../types/provider.generated.js';
import type { LoadedProvider } from './registry.js';
import { readPath } from './paths.js';
import { buildRequest, findOperation, nextPageRequest, pageItems, paginationOf, type CallTarget } from './request-builder.js';
import { readResponse } from './response-reader.js';

/**
 * A connection made usable: its secrets resolved (held in memory only), its signer built once
 * (so token caches and single-flight refreshes are shared by every call), and the hosts it may
 * call fixed. `call` runs one provider operation: build the request, sign it, send it through the
 * guarded client, and read the answer into an output or a `PatchbayError` with retry intent.
 * Retries, rate limits and idempotency across attempts belong to the executor, not here.
 */

/** What opening a connection needs from its surroundings. */
export interface ConnectionContext {
  /** Where `{ env }` and `{ file }` secrets are read. @default process.env and the file system */
  readonly secretSources?: SecretSources;
  /** Collects every resolved secret value, for redaction by whoever logs or stores. @default a new set */
  readonly secrets?: SecretSet;
  /** @default systemClock */
  readonly clock?: Clock;
  /** @default silentLogger */
  readonly logger?: Logger;
  /**
   * Options for the HTTP client the connection creates (timeouts, size limit, a test resolver).
   * The connection adds its own `allowPrivateAddresses` as the address policy.
   */
  readonly http?: Omit<HttpClientOptions, 'addressPolicy' | 'clock' | 'logger'>;
  /**
   * Private addresses allowed besides the connection's own `allowPrivateAddresses` (a sandbox or
   * emulator on loopback).
   */
  readonly allowPrivateAddresses?: readonly string[];
  /**
   * Sends every call of this connection to one base URL instead of the provider's (a sandbox or
   * an emulator such as LocalStack). Host checks then apply to this URL's host.
   */
  readonly overrideBaseUrl?: string;
}

/** Per-call options. */
export interface CallOptions extends Pick<SendOptions, 'connectTimeoutMs' | 'headersTimeoutMs' | 'totalTimeoutMs' | 'maxResponseBytes' | 'signal'> {
  /** Sent in the provider's idempotency header where the operation honours one; keep it across retries. */
  readonly idempotencyKey?: string;
}

/** One call's result. */
export interface CallResult {
  /** The parsed answer, as the operation's `output` schema describes it. */
  readonly output: unknown;
  readonly status: number;
  readonly durationMs: number;
  /** The request as built, before signing (no credentials): safe to show or store after redaction. */
  readonly request: OutboundRequest;
}

/** Options of `pages`. */
export interface PagesOptions extends CallOptions {
  /** Pages read at most in one listing. @default 1000 */
  readonly maxPages?: number;
}

/** One page of a listing, as `pages` yields it. */
export interface ListingPage {
  /** The parsed answer. */
  readonly output: unknown;
  /** The page's items (at the pagination's `itemsPath`; the body itself when it is a list), or undefined when there is no list there. */
  readonly items: readonly unknown[] | undefined;
  readonly status: number;
  readonly durationMs: number;
  /** The request as built, unsigned. */
  readonly request: OutboundRequest;
  /** 0 for the first page of this listing. */
  readonly index: number;
  /**
   * The inputs that address the next page, for input-based pagination (`cursor`, `page`,
   * `offset`): pass them to `pages` to resume the listing there later. Undefined on the last page
   * and for `link`/`nextUrl` pagination, whose next page is a URL that is not resumable.
   */
  readonly nextInputs: Readonly<Record<string, unknown>> | undefined;
  /** True when the provider said this is the last page. */
  readonly last: boolean;
}

/**
 * The inputs of the page after this one, for input-based styles (the same arithmetic as
 * `nextPageRequest`, which builds the request but does not return the inputs).
 */
function nextPageInputs(
  pagination: ProviderPagination,
  inputs: Readonly<Record<string, unknown>>,
  body: unknown,
  items: readonly unknown[] | undefined,
): Readonly<Record<string, unknown>> | undefined {
  switch (pagination.style) {
    case 'cursor':
      if (pagination.cursorParam === undefined || pagination.cursorPath === undefined) return undefined;
      return { ...inputs, [pagination.cursorParam]: readPath(body, pagination.cursorPath) };
    case 'page':
    case 'offset': {
      if (pagination.pageParam === undefined) return undefined;
      const current = Number(inputs[pagination.pageParam] ?? (pagination.style === 'page' ? 1 : 0));
      return { ...inputs, [pagination.pageParam]: pagination.style === 'page' ? current + 1 : current + (items?.length ?? 0) };
    }
    default:
      return undefined;
  }
}

export class ProviderConnection {
  readonly name: string;
  readonly provider: LoadedProvider;
  /** The hosts calls may go to (`api.stripe.com`, `*.myshopify.com`). */
  readonly allowedHosts: readonly string[];
  /**
   * Identifies the credential this connection calls with, so rate limits can be shared by every
   * connection (of any integration) that uses the same one: the provider's name and a truncated
   * SHA-256 of the resolved auth settings. Kept in memory only; never logged or stored.
   */
  readonly credentialId: string;
  private readonly target: CallTarget;
  private readonly client: HttpClient;
  private readonly clock: Clock;
  private readonly signers = new Map<string, Signer>();
  private readonly makeSigner: (service: string | undefined) => Signer;
  private readonly secrets: SecretSet;

  private constructor(init: {
    name: string;
    provider: LoadedProvider;
    allowedHosts: readonly string[];
    credentialId: string;
    target: CallTarget;
    client: HttpClient;
    clock: Clock;
    makeSigner: (service: string | undefined) => Signer;
    secrets: SecretSet;
  }) {
    this.name = init.name;
    this.provider = init.provider;
    this.allowedHosts = init.allowedHosts;
    this.credentialId = init.credentialId;
    this.target = init.target;
    this.client = init.client;
    this.clock = init.clock;
    this.makeSigner = init.makeSigner;
    this.secrets = init.secrets;
  }

  /**
   * Opens connection `name` of an integration to `provider`: resolves its secrets and
   * variables, picks the provider's auth scheme of the connection's type, and builds its signer
   * and client. Rejects with PB_SECRET_UNRESOLVED (a missing env var or file),
   * PB_AUTH_MISSING / PB_AUTH_UNSUPPORTED (no scheme of that type), PB_AUTH_BAD_SETTINGS or
   * PB_AUTH_BAD_KEY (unusable settings or keys). Nothing is sent: tokens are fetched on the
   * first call.
   */
  static async open(name: string, connection: Connection, provider: LoadedProvider, context: ConnectionContext = {}): Promise<ProviderConnection> {
    const clock = context.clock ?? systemClock;
    const logger = context.logger ?? silentLogger;
    const secrets = context.secrets ?? new SecretSet(context.secretSources);
    const spec = provider.document.spec;

    const variables: Record<string, string> = {};
    for (const [key, value] of Object.entries(spec.variables ?? {})) {
      if (value.default !== undefined) variables[key] = value.default;
    }
    for (const [key, value] of Object.entries(connection.variables ?? {})) {
      variables[key] = await secrets.resolvePlain(value as string | SecretRef);
    }

    const authType = connection.auth?.type ?? 'none';
    const scheme = spec.auth.find((candidate) => candidate.type === authType);
    if (scheme === undefined) {
      const offered = spec.auth.map((candidate) => candidate.type).join(', ');
      throw new PatchbayError(
        connection.auth === undefined ? 'PB_AUTH_MISSING' : 'PB_AUTH_UNSUPPORTED',
        `connection "${name}": provider "${provider.name}" takes ${offered} auth, not ${authType}`,
      );
    }
    const auth = await resolveAuth(connection, secrets, variables);
    const refreshRef = connection.auth?.type === 'oauth2' ? connection.auth.refreshToken : undefined;

    const target: CallTarget = {
      baseUrl: connection.baseUrl,
      overrideBaseUrl: context.overrideBaseUrl,
      variables,
      apiVersion: connection.apiVersion,
    };
    const allowedHosts = hostsOf(provider, connection, variables, context.overrideBaseUrl);
    const client = new HttpClient({
      ...context.http,
      allowHttpHosts: [...(context.http?.allowHttpHosts ?? []), ...loopbackHttpHosts(connection.baseUrl, context.overrideBaseUrl)],
      clock,
      logger,
      addressPolicy: { allow: [...(connection.allowPrivateAddresses ?? []), ...(context.allowPrivateAddresses ?? [])] },
    });

    const tokenHosts = [...allowedHosts, ...hostOfTemplate(scheme.tokenUrl, variables)];
    const makeSigner = (service: string | undefined): Signer =>
      createSigner(schemeSettings(scheme, service), auth, {
        clock,
        logger,
        secrets,
        variables,
        // Token endpoints may live on other hosts than the API (oauth2.googleapis.com): the
        // provider's declared token URL host is allowed besides the connection's hosts, nothing
        // else, so a connection cannot send its client secret to an arbitrary server.
        send: (request) => client.send(request, { allowedHosts: tokenHosts }),
        persistRefreshToken:
          refreshRef === undefined
            ? undefined
            : async (token) => {
                secrets.add(token);
                if (refreshRef.file !== undefined) await writeSecret(refreshRef, token);
                else logger.log('warn', 'the token endpoint rotated the refresh token; it is kept in memory only because it comes from an environment variable', { connection: name, provider: provider.name });
              },
      });
    const credentialId = `${provider.name}:${createHash('sha256').update(JSON.stringify([auth, auth.type === 'none' ? allowedHosts : []])).digest('hex').slice(0, 16)}`;
    const opened = new ProviderConnection({ name, provider, allowedHosts, credentialId, target, client, clock, makeSigner, secrets });
    // Build the default signer now so bad settings and keys fail at open, not at the first call.
    opened.signerFor(undefined);
    return opened;
  }

  /** The request `operation` would send with `inputs`, unsigned (nothing sent). Throws as `buildRequest`. */
  build(operation: string, inputs: Readonly<Record<string, unknown>>, options: CallOptions = {}): OutboundRequest {
    return buildRequest(this.provider.document, operation, inputs, this.target, { idempotencyKey: options.idempotencyKey });
  }

  /**
   * Calls `operation` with `inputs`. A 401 from a token-based scheme drops the cached token and
   * tries once more with a fresh one. Rejects with the builder's PB_CALL_* errors, the client's
   * PB_HTTP_* errors (network, timeouts, refused hosts or addresses) and the reader's provider
   * errors, each with its retry intent.
   */
  async call(operation: string, inputs: Readonly<Record<string, unknown>>, options: CallOptions = {}): Promise<CallResult> {
    try {
      const definition = findOperation(this.provider.document, operation);
      const request = this.build(operation, inputs, options);
      const { output, response } = await this.exchange(operation, definition, request, options);
      return { output, status: response.status, durationMs: response.durationMs, request };
    } catch (error) {
      throw redactError(error, this.secrets);
    }
  }

  /**
   * Lists `operation` page by page, following its pagination (`nextPageRequest`): yields each
   * page as soon as it is read, and asks for the next one only when the consumer pulls again, so
   * a consumer can commit a page's work before the next request goes out. Stops after the last
   * page, or after `maxPages` pages (the last yielded page then still carries `nextInputs` where
   * the pagination allows resuming). Rejects, when a page is requested, with the errors of `call`
   * and PB_PROVIDER_BAD_PAGE (a next link to another origin, a cursor that does not move).
   */
  async *pages(operation: string, inputs: Readonly<Record<string, unknown>>, options: PagesOptions = {}): AsyncGenerator<ListingPage, void, undefined> {
    const maxPages = options.maxPages ?? 1_000;
    const document = this.provider.document;
    let definition: ProviderOperation;
    let request: OutboundRequest;
    try {
      definition = findOperation(document, operation);
      request = this.build(operation, inputs, options);
    } catch (error) {
      throw redactError(error, this.secrets);
    }
    const pagination = paginationOf(document, definition);
    let pageInputs = inputs;
    for (let index = 0; index < maxPages; index++) {
      let page: ListingPage;
      let next: OutboundRequest | undefined;
      try {
        const { output, response } = await this.exchange(operation, definition, request, options);
        next = nextPageRequest({ provider: document, operationName: operation, inputs: pageInputs, target: this.target, request, response, body: output });
        const items = pageItems(pagination, output);
        page = {
          output,
          items,
          status: response.status,
          durationMs: response.durationMs,
          request,
          index,
          nextInputs: next === undefined || pagination === undefined ? undefined : nextPageInputs(pagination, pageInputs, output, items),
          last: next === undefined,
        };
      } catch (error) {
        throw redactError(error, this.secrets);
      }
      yield page;
      if (next === undefined) return;
      request = next;
      pageInputs = page.nextInputs ?? pageInputs;
    }
  }

  /** Signs and sends a built request (again with a fresh token after a 401) and reads the answer. */
  private async exchange(operation: string, definition: ProviderOperation, request: OutboundRequest, options: CallOptions): Promise<{ output: unknown; response: InboundResponse }> {
    const signer = this.signerFor(definition);
    let signed = await signer.sign(request);
    let response: InboundResponse = await this.client.send(signed, { ...options, allowedHosts: this.allowedHosts });
    if (response.status === 401 && signer.invalidate !== undefined) {
      // Only the token this request carried is dropped: concurrent 401s cause one renewal.
      signer.invalidate(signed);
      signed = await signer.sign(request);
      response = await this.client.send(signed, { ...options, allowedHosts: this.allowedHosts });
    }
    return { output: readResponse(this.provider.document, operation, response, this.clock), response };
  }

  /** Closes the connection's keep-alive sockets. */
  async close(): Promise<void> {
    await this.client.close();
  }

  // AWS operations are signed for their own service (`sns`, `s3`); one signer per service.
  private signerFor(operation: ProviderOperation | undefined): Signer {
    const service = operation?.awsService;
    const key = service ?? '';
    let signer = this.signers.get(key);
    if (signer === undefined) {
      signer = this.makeSigner(service);
      this.signers.set(key, signer);
    }
    return signer;
  }
}

/**
 * Plain http is accepted only to loopback hosts a base URL names (test servers, a local
 * sandbox); whether the address may be reached is still the address guard's decision.
 */
function loopbackHttpHosts(...urls: (string | undefined)[]): string[] {
  const hosts: string[] = [];
  for (const text of urls) {
    if (text === undefined || !text.startsWith('http:')) continue;
    const host = new URL(text).hostname;
    if (isLoopbackHost(host)) hosts.push(host);
  }
  return hosts;
}

/** `template` with each `{name}` that `variables` defines replaced; others are left as written. */
function fillTemplate(template: string, variables: Readonly<Record<string, string>>): string {
  return template.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (whole, name: string) => variables[name] ?? whole);
}

/** The host of a URL template whose `{variables}` are filled in, or nothing when there is none or it does not parse. */
function hostOfTemplate(template: string | undefined, variables: Readonly<Record<string, string>>): string[] {
  if (template === undefined) return [];
  try {
    return [new URL(fillTemplate(template, variables)).host];
  } catch {
    // An unparsable token URL is refused by the signer when it is built, with its own message.
    return [];
  }
}

/**
 * The same failure with every secret the connection knows replaced in its message and causes:
 * providers echo credentials in error bodies, and error messages reach logs and operators.
 */
function redactError(error: unknown, secrets: SecretSet): unknown {
  if (!(error instanceof PatchbayError)) return error;
  const cause = error.cause;
  let redactedCause: unknown = cause;
  if (cause instanceof Error) redactedCause = Object.assign(new Error(secrets.redact(cause.message)), { name: cause.name });
  else if (cause !== null && typeof cause === 'object') redactedCause = JSON.parse(secrets.redact(JSON.stringify(cause))) as unknown;
  return new PatchbayError(error.code, secrets.redact(error.message), { cause: redactedCause, retryAfterMs: error.retryAfterMs });
}

function schemeSettings(scheme: ProviderAuthScheme, service: string | undefined): AuthSchemeSettings {
  return service === undefined ? scheme : { ...scheme, service };
}

async function resolveAuth(connection: Connection, secrets: SecretSet, variables: Readonly<Record<string, string>>): Promise<ResolvedAuth> {
  const auth = connection.auth;
  if (auth === undefined) return { type: 'none' };
  switch (auth.type) {
    case 'none':
      return { type: 'none' };
    case 'apiKey':
      return { type: 'apiKey', key: await secrets.resolve(auth.key), in: auth.in, name: auth.name };
    case 'bearer':
      return { type: 'bearer', token: await secrets.resolve(auth.token) };
    case 'basic': {
      const username = await secrets.resolvePlain(auth.username as string | SecretRef);
      const password = await secrets.resolve(auth.password);
      // The header value as sent, so an answer echoing it is redacted whole.
      secrets.add(Buffer.from(`${username}:${password}`, 'utf8').toString('base64'));
      return { type: 'basic', username, password };
    }
    case 'oauth2':
      return {
        type: 'oauth2',
        grant: auth.grant,
        clientId: await secrets.resolvePlain(auth.clientId as string | SecretRef),
        clientSecret: await secrets.resolve(auth.clientSecret),
        refreshToken: auth.refreshToken === undefined ? undefined : await secrets.resolve(auth.refreshToken),
        tokenUrl: auth.tokenUrl,
        scopes: auth.scopes,
        audience: auth.audience,
      };
    case 'jwt':
      return {
        type: 'jwt',
        algorithm: auth.algorithm,
        privateKey: await secrets.resolve(auth.privateKey),
        issuer: await secrets.resolvePlain(auth.issuer as string | SecretRef),
        subject: auth.subject,
        audience: auth.audience,
        keyId: auth.keyId,
        scopes: auth.scopes,
        expiresInMs: auth.expiresIn === undefined ? undefined : parseDurationMs(auth.expiresIn),
      };
    case 'awsSigV4':
      return {
        type: 'awsSigV4',
        accessKeyId: await secrets.resolve(auth.accessKeyId),
        secretAccessKey: await secrets.resolve(auth.secretAccessKey),
        sessionToken: auth.sessionToken === undefined ? undefined : await secrets.resolve(auth.sessionToken),
        region: variables.region,
      };
  }
}

/**
 * The hosts a connection may call: an override base URL's host when one is given; else the
 * connection's `allowedHosts` (required for generic providers, a narrowing for curated ones —
 * validation checks that); else the provider's `hosts` with `{variables}` filled in; else the
 * provider's base URL host.
 */
function hostsOf(provider: LoadedProvider, connection: Connection, variables: Readonly<Record<string, string>>, overrideBaseUrl: string | undefined): string[] {
  if (overrideBaseUrl !== undefined) return [new URL(overrideBaseUrl).host];
  if (connection.allowedHosts !== undefined) return [...connection.allowedHosts];
  const spec = provider.document.spec;
  if (spec.hosts !== undefined && spec.hosts.length > 0) return spec.hosts.map((host) => fillTemplate(host, variables));
  const base = connection.baseUrl ?? spec.baseUrl;
  if (base === undefined) {
    throw new PatchbayError('PB_CALL_BAD_TARGET', `provider "${provider.name}" declares no base URL or hosts; the connection must give baseUrl and allowedHosts`);
  }
  return [new URL(fillTemplate(base, variables)).host];
}
