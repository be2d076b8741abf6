/**
 * The one catalogue of Patchbay error codes. Callers branch on `code`, never on message text.
 * Each entry says how bad the problem is by default, whether retrying can help
 * (`terminal`: no; `after`: after a delay the failure names; `transient`: yes, with backoff),
 * and a one-line summary used by the README's error-code table (kept in sync by a test).
 */
export const RetryIntent = { terminal: 'terminal', after: 'after', transient: 'transient' } as const;
export type RetryIntent = (typeof RetryIntent)[keyof typeof RetryIntent];

export const Severity = { error: 'error', warning: 'warning' } as const;
export type Severity = (typeof Severity)[keyof typeof Severity];

interface CodeEntry {
  readonly severity: Severity;
  readonly retry: RetryIntent;
  readonly summary: string;
}

function entry(severity: Severity, summary: string, retry: RetryIntent = 'terminal'): CodeEntry {
  return { severity, retry, summary };
}

export const codes = {
  // Usage and environment (exit code 2).
  PB_USAGE: entry('error', 'The command line is wrong: unknown command, flag or value.'),
  PB_IO: entry('error', 'A file or folder named on the command line cannot be read.'),

  // YAML hazards.
  PB_YAML_SYNTAX: entry('error', 'The file is not valid YAML.'),
  PB_YAML_DUPLICATE_KEY: entry('error', 'A mapping has the same key twice; YAML would silently keep one.'),
  PB_YAML_TAB: entry('error', 'A tab is used for indentation; YAML allows only spaces.'),
  PB_YAML_ALIAS_LIMIT: entry('error', 'Too many alias expansions (a "billion laughs" alias bomb).'),
  PB_YAML_TOO_LARGE: entry('error', 'The file or a document is larger than the size limit.'),
  PB_YAML_TOO_DEEP: entry('error', 'Values are nested deeper than the limit.'),
  PB_YAML_NOT_TEXT: entry('error', 'The file is not UTF-8 text (binary data, NUL bytes).'),
  PB_YAML_EMPTY: entry('warning', 'The file holds no document.'),
  PB_YAML_UNQUOTED_EXPRESSION: entry('error', 'A `{{ }}` expression is not quoted, so YAML reads it as a mapping.'),

  // Manifest shape (schema).
  PB_MANIFEST_NOT_OBJECT: entry('error', 'A document is not a mapping.'),
  PB_MANIFEST_API_VERSION: entry('error', '`apiVersion` is missing or is not `patchbay/v1`.'),
  PB_MANIFEST_UNKNOWN_KIND: entry('error', '`kind` is missing or is neither `Integration` nor `Provider`.'),
  PB_MANIFEST_UNKNOWN_FIELD: entry('error', 'A field the schema does not define (often a typo).'),
  PB_MANIFEST_MISSING_FIELD: entry('error', 'A required field is missing.'),
  PB_MANIFEST_WRONG_TYPE: entry('error', 'A value has the wrong type.'),
  PB_MANIFEST_BAD_VALUE: entry('error', 'A value is not one of the allowed values or does not have the allowed form.'),
  PB_MANIFEST_OUT_OF_RANGE: entry('error', 'A number, length or count is outside its allowed range.'),
  PB_MANIFEST_BAD_NAME: entry('error', 'A name is not a DNS label (lowercase letters, digits, hyphens).'),
  PB_MANIFEST_BAD_KEY: entry('error', 'A map key does not have the allowed form.'),
  PB_MANIFEST_DUPLICATE_NAME: entry('error', 'Two documents of the same kind share a name.'),

  // References between documents and within an integration.
  PB_REF_UNKNOWN_PROVIDER: entry('error', 'A connection or step names a provider that does not exist.'),
  PB_REF_UNKNOWN_CONNECTION: entry('error', 'A trigger or step names a connection the integration does not define.'),
  PB_REF_UNKNOWN_OPERATION: entry('error', 'A step or poll trigger names an operation the provider does not have.'),
  PB_REF_NO_CONNECTION: entry('error', "A step calls a provider for which the integration has no connection."),
  PB_REF_AMBIGUOUS_CONNECTION: entry('error', 'Several connections use the step\'s provider and the step does not say which.'),
  PB_REF_CONNECTION_MISMATCH: entry('error', "A step's connection belongs to another provider than the one it calls."),

  // Steps.
  PB_STEP_DUPLICATE_ID: entry('error', 'Two steps of an integration share an id.'),
  PB_STEP_MISSING_INPUT: entry('error', 'A required input of the operation is not given.'),
  PB_STEP_UNKNOWN_INPUT: entry('error', 'An input the operation does not declare.'),
  PB_STEP_INPUT_TYPE: entry('error', "A literal input value does not match the operation's input schema (type, allowed values, form or range)."),

  // Connections and auth.
  PB_AUTH_MISSING: entry('error', 'The provider needs credentials and the connection has no `auth`.'),
  PB_AUTH_UNSUPPORTED: entry('error', "The connection's auth type is not one the provider accepts."),
  PB_AUTH_UNKNOWN_SCOPE: entry('warning', 'A requested OAuth scope is not one the provider declares.'),
  PB_AUTH_TOKEN_URL: entry('error', "An OAuth token URL points at a host that is neither the provider's token endpoint nor one the connection may call."),
  PB_AUTH_MISSING_SCOPE: entry('warning', 'A step needs an OAuth scope the connection does not request.'),
  PB_CONNECTION_MISSING_VARIABLE: entry('error', 'A provider variable without default is not set by the connection.'),
  PB_CONNECTION_UNKNOWN_VARIABLE: entry('error', 'A connection sets a variable the provider does not declare.'),
  PB_CONNECTION_API_VERSION: entry('error', 'The pinned API version is not valid for the provider.'),
  PB_CONNECTION_UNKNOWN_API_VERSION: entry('warning', 'The pinned API version is not among the versions known to work.'),
  PB_CONNECTION_BASE_URL: entry('error', 'A generic provider connection lacks `baseUrl` or `allowedHosts`, or they disagree.'),
  PB_CONNECTION_PRIVATE_ADDRESS: entry('error', "A base URL points at a loopback, private or link-local address that the connection's `allowPrivateAddresses` does not allow."),
  PB_CONNECTION_INSECURE_URL: entry('error', 'A base URL uses plain http to a host that is not loopback.'),
  PB_CONNECTION_UNUSED: entry('warning', 'A connection is used by neither the trigger nor any step.'),

  // Secrets hygiene.
  PB_SECRET_LITERAL: entry('error', 'A literal value where a secret reference (`{ env }` or `{ file }`) belongs.'),
  PB_SECRET_LIVE_KEY: entry('error', 'Something that looks like a real credential is written in the manifest.'),
  PB_SECRET_TEST_KEY: entry('warning', 'A provider test-mode key is written in the manifest.'),
  PB_SECRET_IN_VARS: entry('error', 'A secret-looking value is put in `vars`, which are stored and logged in clear.'),

  // Expressions.
  PB_EXPR_SYNTAX: entry('error', 'A `{{ }}` expression is not valid JSONata.'),
  PB_EXPR_UNTERMINATED: entry('error', 'A `{{` has no matching `}}`.'),
  PB_EXPR_TOO_LONG: entry('error', 'An expression is longer than 10,000 characters.'),
  PB_EXPR_UNKNOWN_ROOT: entry('error', 'An expression reads a name that is none of `event`, `steps`, `vars`, `trigger`.'),
  PB_EXPR_UNKNOWN_STEP: entry('error', 'An expression reads `steps.<id>` of a step that does not exist.'),
  PB_EXPR_FORWARD_STEP: entry('error', 'An expression reads the output of the same or a later step.'),
  PB_EXPR_UNKNOWN_VAR: entry('error', 'An expression reads `vars.<name>` that `spec.vars` does not define.'),
  PB_EXPR_UNKNOWN_EVENT_PATH: entry('warning', "An expression reads an `event` path that is not in the event's payload schema."),

  // Triggers and schedules.
  PB_TRIGGER_NO_WEBHOOKS: entry('error', 'A webhook trigger uses a provider that sends no webhooks.'),
  PB_TRIGGER_UNKNOWN_EVENT: entry('error', 'A webhook trigger subscribes to an event type the provider does not send.'),
  PB_TRIGGER_NO_SECRET: entry('error', 'A webhook trigger has no `webhookSecrets` to verify deliveries.'),
  PB_TRIGGER_BAD_CURSOR: entry('error', "A poll trigger's cursor parameter is not an input of the operation."),
  PB_TRIGGER_NOT_LISTING: entry('error', 'A poll trigger calls an operation that does not list items (it would repeat a side effect).'),
  PB_TRIGGER_UNKNOWN_ITEM_FIELD: entry('warning', "A poll trigger's itemId or cursor field is not in the listed items' schema."),
  PB_SCHEDULE_BAD_CRON: entry('error', 'A cron expression does not parse or never fires.'),
  PB_SCHEDULE_BAD_TIMEZONE: entry('error', 'A time zone is not a known IANA zone.'),
  PB_SCHEDULE_TOO_FREQUENT: entry('warning', 'A schedule fires more than once a minute.'),

  // Policy.
  PB_POLICY_INCONSISTENT: entry('error', 'Policy values contradict each other (a delay above its maximum, a part above the total).'),
  PB_POLICY_UNREASONABLE: entry('warning', 'A policy value is legal but almost certainly a mistake.'),
  PB_DURATION_OUT_OF_RANGE: entry('error', 'A duration is zero or longer than its limit.'),

  // Provider definitions.
  PB_PROVIDER_BAD_SCHEMA: entry('error', "An operation's input or an event's payload schema is not a valid JSON Schema."),
  PB_PROVIDER_BAD_REFERENCE: entry('error', 'A provider definition refers to a variable, input or tier it does not declare.'),
  PB_PROVIDER_BAD_EXAMPLE: entry('error', "An operation's `example` does not match its input schema."),

  // Auth at call time.
  PB_SECRET_UNRESOLVED: entry('error', 'A secret reference names an environment variable that is unset or empty, or a file that cannot be read.'),
  PB_SECRET_NOT_WRITABLE: entry('error', 'A rotated secret cannot be written back (an `env` reference, or the file cannot be written); it is kept in memory only.'),
  PB_AUTH_BAD_SETTINGS: entry('error', 'The auth settings cannot work: a missing token URL, header or region, a user name with a colon, an unknown variable.'),
  PB_AUTH_BAD_KEY: entry('error', 'A private key or signing secret cannot be read as PEM, JWK or a key of the algorithm.'),
  PB_AUTH_TOKEN_REJECTED: entry('error', 'The token endpoint refused the credentials or grant (`invalid_grant`, `invalid_client`): fix the connection.'),
  PB_AUTH_TOKEN_UNAVAILABLE: entry('error', 'The token endpoint could not be reached, failed (5xx, 429) or answered without a token.', 'transient'),

  // Outbound HTTP.
  PB_HTTP_NETWORK: entry('error', 'The connection failed: refused, reset, DNS failure, or closed in the middle of the answer.', 'transient'),
  PB_HTTP_TIMEOUT: entry('error', 'The call timed out (the message names the phase: connect, headers or body), or the server answered 408.', 'transient'),
  PB_HTTP_RATE_LIMITED: entry('error', 'The server answered 429 Too Many Requests; retry after its `Retry-After` when it gives one.', 'after'),
  PB_HTTP_UNAVAILABLE: entry('error', 'The server answered 503 with a `Retry-After`; retry after that delay.', 'after'),
  PB_HTTP_SERVER_ERROR: entry('error', 'The server answered 5xx (503 without `Retry-After` included).', 'transient'),
  PB_HTTP_CLIENT_ERROR: entry('error', 'The server refused the request with a 4xx status (other than 408 and 429): fix the request or credentials.'),
  PB_HTTP_RESPONSE_TOO_LARGE: entry('error', 'The answer, raw or decompressed, is larger than the size limit; it was not read further.'),
  PB_HTTP_MALFORMED_BODY: entry('error', 'A successful answer does not parse as its declared format (JSON, or its content encoding).'),
  PB_HTTP_INSECURE: entry('error', 'The URL is not https, and its host is not in the plain-http allowance (local development only).'),
  PB_HTTP_HOST_NOT_ALLOWED: entry('error', "The URL's host is not among the connection's allowed hosts."),
  PB_HTTP_PRIVATE_ADDRESS: entry('error', 'The host is or resolves to a loopback, private, link-local (cloud metadata) or reserved address (SSRF guard).'),
  PB_HTTP_REDIRECT: entry('error', 'A redirect was not followed: following is off, there were too many, or it led to another origin not allowed.'),

  // OpenAPI import.
  PB_IMPORT_NOT_OPENAPI: entry('error', 'The file given to `provider import` is not an OpenAPI 3.x or Swagger 2.0 document (a Smithy model, a GraphQL schema, …).'),
  PB_IMPORT_SYNTAX: entry('error', 'The OpenAPI document is not valid JSON or YAML.'),
  PB_IMPORT_INPUT_TOO_LARGE: entry('error', 'The OpenAPI document is larger than the import limit (64 MiB).'),
  PB_IMPORT_BAD_REF: entry('error', 'A `$ref` in the OpenAPI document points outside the document or to nothing, or takes part in a cycle of references with no schema in it.'),
  PB_IMPORT_TOO_DEEP: entry('error', 'The OpenAPI document nests objects and lists deeper than the importer reads (256 levels, `$ref`s followed).'),
  PB_IMPORT_NO_BASE_URL: entry('error', 'The OpenAPI document gives no absolute server URL; pass `--base-url`.'),
  PB_IMPORT_NO_OPERATIONS: entry('error', 'No operation of the OpenAPI document could be imported (or `--include` matched none).'),
  PB_IMPORT_OUTPUT_TOO_LARGE: entry('error', 'The imported provider does not fit the manifest size limit even with minimal schemas; narrow it with `--include`.'),
  PB_IMPORT_INVALID_OUTPUT: entry('error', 'The imported provider does not pass `patchbay validate`; nothing was written.'),

  // Provider calls.
  PB_CALL_BAD_INPUT: entry('error', 'An input cannot be put into the request: a required path, query or header value is missing, a value has the wrong shape, holds a `..` path segment or a line break, or has no place in the request.'),
  PB_CALL_BAD_TARGET: entry('error', 'The request URL cannot be built: no base URL, a variable not set or not matching its pattern, or a value that would change the host.'),
  PB_PROVIDER_ERROR: entry('error', 'The provider reported an error retrying will not fix: an error inside a 2xx answer (Slack `ok: false`, GraphQL `errors`, a SOAP Fault, a Google Maps status), a status it does not retry, or an error code excluded from retry (OpenAI `insufficient_quota`).'),
  PB_PROVIDER_ERROR_RETRYABLE: entry('error', 'The provider reported an error its definition retries: a listed error code (Slack `ratelimited`, Shopify `THROTTLED`, Stripe `lock_timeout`) or a listed 4xx status (Stripe 409).', 'transient'),
  PB_PROVIDER_BAD_PAGE: entry('error', 'A page of a listing cannot be followed: the next link leads to another origin, or the cursor, page or link did not move.'),

  // Execution.
  PB_INTEGRATION_BROKEN: entry('error', 'An integration cannot be prepared to run (a connection does not open, an expression does not compile); its events wait in the queue and the others run.'),
  PB_STEP_INPUT_INVALID: entry('error', "A step's mapped inputs do not match the operation's input schema at run time (a required input came out empty, a number came out as text); the run is a dead letter."),
  PB_RUN_EXPIRED: entry('error', "The run's event is older than the retry policy's `maxAge`: no further attempt is made."),
  PB_INTEGRATION_DISABLED: entry('error', 'The integration has `enabled: false`: it receives no events until it is enabled again.'),
  PB_RUN_REVISION_CHANGED: entry('error', "The integration's steps changed (added, removed, renamed or reordered) since the run started, so it cannot resume safely; restore the steps and replay it, or enqueue the event again under a new key."),
  PB_INTERNAL: entry('error', 'An unexpected error inside Patchbay (a bug): the run is a dead letter with the error; please report it.'),
  PB_RUN_INTERRUPTED: entry('error', 'The engine stopped (crash, kill, power loss) while an attempt was in flight; the attempt counts and the step is retried with the same idempotency key.', 'transient'),

  // State store.
  PB_STATE_UNREADABLE: entry('error', 'The state store cannot be opened: not a SQLite file, another program\'s database or schema, no permission, a file system without write-ahead logging, or a PostgreSQL server that cannot be reached or refuses the login.'),
  PB_STATE_TOO_NEW: entry('error', 'The state database was migrated by a newer Patchbay than this one: upgrade patchbay.'),
  PB_STATE_BUSY: entry('error', 'Another process held the state database\'s write lock for longer than the busy timeout.', 'transient'),
  PB_STATE_FULL: entry('error', 'The state database reached its size limit or the disk is full: purge old runs or free space.', 'transient'),
  PB_STATE_IO: entry('error', 'The state database cannot be read or written: an I/O error or a damaged file (restore it from a backup).'),
  PB_STATE_CLOSED: entry('error', 'The state store was closed (Patchbay is shutting down); try again once it runs.', 'transient'),

  // Operators' commands.
  PB_STATE_MISSING: entry('error', 'There is no state file where `patchbay runs` looked (`--state`, `PATCHBAY_STATE`, `.patchbay/state.db`): start the engine first or pass `--state`.'),
  PB_RUN_NOT_FOUND: entry('error', 'No run has the id given to `patchbay runs show` or `runs retry`.'),
  PB_RUN_NOT_DEAD: entry('error', '`patchbay runs retry` was asked to replay a run that is not a dead letter; it was left alone.'),

  // Mappings at run time.
  PB_MAPPING_TIMEOUT: entry('error', 'A mapping or condition took longer than its time limit (an endless recursion or a loop over too much data).'),
  PB_MAPPING_TOO_DEEP: entry('error', 'A mapping or condition nested deeper than its depth limit (a recursive function that does not end).'),
  PB_MAPPING_TOO_LARGE: entry('error', 'A mapping or condition built a string, array or value larger than its size limits.'),
  PB_MAPPING_ERROR: entry('error', 'A mapping or condition failed while evaluating: a JSONata run-time error (its code, such as T2001, and position are given).'),
  PB_MAPPING_UNSAFE_REGEX: entry('error', 'A regular expression in a mapping repeats a group that itself repeats (`(a+)+`), which can take exponential time.'),

  // PostgreSQL store.
  PB_STATE_UNAVAILABLE: entry('error', 'The PostgreSQL state database could not be reached, or dropped the connection during an operation (which may or may not have been committed): check the server; it is retried.', 'transient'),

  // Admin API and its clients (issue 5, helper D).
  PB_ADMIN_CONFIG: entry('error', 'The admin API\'s authentication settings are invalid: a token too short, a JWKS URL that is not https (loopback excepted), or a JWKS URL without its issuer and audience.'),
  PB_ADMIN_UNAUTHENTICATED: entry('error', 'The admin API or /metrics was called without a valid bearer token or JWT (missing, unknown, expired, not yet valid, wrong issuer, audience or algorithm), or no admin credential is configured: send `Authorization: Bearer …`.'),
  PB_ADMIN_FORBIDDEN: entry('error', 'The credential is valid but lacks the scope: reading needs `patchbay:read`, retrying dead letters needs `patchbay:operate` (PATCHBAY_ADMIN_TOKEN, not the read token).'),
  PB_ADMIN_AUTH_UNAVAILABLE: entry('error', 'The JWT could not be checked because the JWKS endpoint did not answer in time or answered garbage; try again.', 'transient'),
  PB_ADMIN_BAD_REQUEST: entry('error', 'An admin API request has a bad query parameter or body (an unknown status, a limit out of range, malformed JSON).'),
  PB_ADMIN_NOT_FOUND: entry('error', 'No admin API route or integration has this path or name.'),
  PB_ADMIN_METHOD: entry('error', 'The admin API route does not answer this HTTP method; the `Allow` header lists the ones it does.'),
  PB_ADMIN_STORE_TIMEOUT: entry('error', 'The state store did not answer the admin API or metrics in time (a long transaction holds it); try again.', 'transient'),
  PB_ADMIN_BAD_SERVER: entry('error', 'The `--server` URL (or PATCHBAY_SERVER) is not an http(s) URL, carries credentials or a query, or uses plain http to a host that is not loopback.'),
  PB_ADMIN_UNREACHABLE: entry('error', 'The daemon\'s admin API could not be reached at the `--server` URL (refused, timed out, not a Patchbay daemon).', 'transient'),
  // The daemon: webhook ingress refusals (each with its HTTP status) and the serve command.
  PB_WEBHOOK_UNKNOWN_INTEGRATION: entry('error', 'No integration with a webhook trigger has the name in `/hooks/<name>` (answered 404).'),
  PB_WEBHOOK_METHOD_NOT_ALLOWED: entry('error', 'Webhooks are delivered with POST; other methods are answered 405 with `Allow: POST`.'),
  PB_WEBHOOK_TOO_LARGE: entry('error', 'The delivery\'s body is over the size limit (`--max-body`, default 1 MiB); answered 413 and the connection closed.'),
  PB_WEBHOOK_RATE_LIMITED: entry('error', 'Too many deliveries from one address (`--inbound-rate`); answered 429 with `Retry-After`.', 'after'),
  PB_WEBHOOK_ABORTED: entry('error', 'The sender closed the connection before the whole body arrived; nothing was stored (answered 400 if the socket still takes it).', 'transient'),
  PB_ADMIN_BODY_TOO_LARGE: entry('error', 'An admin API request body is over 64 KiB (answered 413); retry dead letters by integration, or in several requests of at most 1,000 ids.'),
  PB_DAEMON_DRAINING: entry('error', 'The daemon is shutting down: deliveries are answered 503 with `Retry-After` so the sender delivers them again.', 'after'),
  PB_DAEMON_BAD_CONFIG: entry('error', 'A `patchbay serve` option or environment variable has a value it cannot use (a port, a duration, a URL, a TLS file).'),
  PB_DAEMON_LISTEN: entry('error', 'The daemon could not listen on its port (in use, or not allowed).'),

  // Poll and schedule triggers (issue 5, helper C).
  PB_POLL_FAILED: entry('error', 'A poll of a listing operation failed (the provider answered an error, the network failed, or the events could not be stored): the cursor did not move and the poll is tried again at the next tick; the error\'s own code is in the log.', 'transient'),
  PB_POLL_NOT_A_LIST: entry('error', "A poll's listing answer holds no list of items where the provider's pagination says (`itemsPath`): fix the provider's pagination or poll a listing operation."),
  PB_POLL_ITEM_WITHOUT_ID: entry('warning', "A polled item has no usable id at the trigger's `itemId` path (missing, or not a string or number): it cannot be deduplicated and is skipped."),
  PB_TRIGGER_STATE_UNREADABLE: entry('warning', "A poll or schedule trigger's stored cursor cannot be read (written by another version or damaged): it starts again from `cursor.initial` or now, and deduplication by id prevents repeated runs."),
  // Webhook verification and delivery parsing (issue 5, helper A). Ingress statuses in parentheses.
  PB_WEBHOOK_MISSING_SIGNATURE: entry('error', 'A webhook delivery lacks its signature header (or the timestamp or id header its scheme signs); answered 401.'),
  PB_WEBHOOK_BAD_SIGNATURE: entry('error', "A webhook delivery's signature is malformed or matches none of the connection's webhook secrets (a wrong or removed secret, or a body changed on the way); answered 401."),
  PB_WEBHOOK_STALE: entry('error', "A webhook delivery's signed timestamp is further from now than the scheme's tolerance, in the past (a replay) or the future (a clock far ahead); answered 401."),
  PB_WEBHOOK_BAD_BODY: entry('error', 'A verified webhook body cannot be read: not UTF-8, JSON that does not parse, a malformed form body (the error gives the position, never the content); answered 400.'),
  PB_WEBHOOK_UNSUPPORTED_MEDIA: entry('error', "A webhook delivery's Content-Type is missing, is not the provider's (JSON or form), or names a charset other than UTF-8; answered 415."),
  PB_WEBHOOK_CONFIG: entry('error', "A connection's webhook verification cannot work: no webhook secret, a secret in the wrong form (Standard Webhooks `whsec_<base64>`, SendGrid's base64 public key), or contradictory verification fields; the integration is reported broken."),
  PB_WEBHOOK_SCHEME_UNSUPPORTED: entry('error', "The provider's webhook signature scheme needs keys fetched from the provider (`plaid`, `awsSns`) and no key source was given (a verifier built outside the daemon); the integration is reported broken."),
  // The sandbox and `patchbay send` (issue 5, helper E).
  PB_SANDBOX_NOT_RUNNING: entry('error', 'No sandbox daemon runs for this project: `.patchbay/sandbox.json` is missing. Start one with `patchbay serve --sandbox` (or `npm start`), or pass `--dir` to the project it serves.'),
  PB_SANDBOX_FILE_INVALID: entry('error', '`.patchbay/sandbox.json` cannot be read or is not what `patchbay serve --sandbox` writes (a leftover of another version?): restart the sandbox daemon.'),
  PB_SEND_NO_EVENT: entry('error', '`patchbay send` has no event to send: the named event type has no sample in the provider, or the `--event` file is missing or not JSON.'),
  PB_SEND_UNSUPPORTED: entry('error', 'The integration cannot be triggered by `patchbay send`: its trigger is a schedule or a poll, or its provider signs deliveries with keys only the provider holds (SendGrid, Plaid, AWS SNS).'),
  PB_SEND_UNREACHABLE: entry('error', 'The daemon named in `.patchbay/sandbox.json` (or `--server`) did not answer: it stopped, or the URL is wrong.', 'transient'),
  PB_SEND_REFUSED: entry('error', 'The daemon refused the delivery `patchbay send` posted (its error code and message are shown), or ignored it as an event type the integration does not subscribe to.'),
  PB_SEND_TIMEOUT: entry('error', 'The run did not finish within `--timeout`; it goes on in the daemon: follow it with `patchbay runs show <run-id>`.', 'transient'),
  // Webhook schemes that fetch their keys: Plaid, Amazon SNS (issue 5, helper H).
  PB_WEBHOOK_KEY_UNAVAILABLE: entry('error', "A webhook delivery's verification key could not be fetched (Plaid's `/webhook_verification_key/get` or an SNS signing certificate: network failure, timeout, a 5xx, or fetches throttled); answered 503 so the sender delivers it again.", 'transient'),
  // Trigger leases: several daemons sharing one state store (issue 5, helper L).
  PB_TRIGGER_LEASE_LOST: entry('error', "A poll ran past its trigger lease and another daemon took the integration over: this daemon stopped before saving its cursor, and the new holder continues from the last saved one (items are deduplicated by id). Raise the scheduler's `leaseMs` if a page takes longer than the lease.", 'transient'),
} as const satisfies Record<string, CodeEntry>;

export type Code = keyof typeof codes;
