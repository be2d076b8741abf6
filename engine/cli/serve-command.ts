import { PatchbayError } from '../diag/errors.js';
import { readServeConfig, type ServeConfig } from '../daemon/config.js';
import { hookUrls, isDaemon, startDaemon, type Daemon } from '../daemon/serve.js';
import { removeSandboxFileNow } from '../daemon/sandbox/state-file.js';
import { maskCredentials } from '../lib/credentials.js';
import { createPinoLogger } from '../lib/pino-logger.js';
import { parseCommandArgs } from './args.js';
import { ExitCode, type CliIO } from './main.js';
import { statePath } from './state-path.js';
import { watchStopSignals } from './stop-signals.js';
import { defaultProviderDirs } from './validate-command.js';

const help = `Usage: patchbay serve [paths…] [options]

Runs the daemon: receives webhooks at POST /hooks/<integration> (verified on the raw body, stored
durably before the answer), runs pollers and cron schedules, executes runs with their retry,
rate-limit and timeout policies, and serves the admin API (/admin/v1), /metrics, /healthz and
/readyz. Integrations with errors are reported and left out; the others are served.

Options (each also read from the environment variable in brackets):
  --dir PATH            Manifests to serve, repeatable (PATCHBAY_DIR; default integrations)
  --port N              Port (PORT; default 8080; 0 picks a free one)
  --host ADDRESS        Address to listen on (PATCHBAY_HOST; default 0.0.0.0, 127.0.0.1 with --sandbox)
  --state PATH          SQLite file or postgres:// URL (PATCHBAY_STATE; default .patchbay/state.db)
  --tls-cert FILE       PEM certificate chain: serve HTTPS (PATCHBAY_TLS_CERT)
  --tls-key FILE        PEM private key (PATCHBAY_TLS_KEY)
  --public-url URL      The base URL providers deliver to, for signatures over the URL such as
                        Twilio's (PATCHBAY_PUBLIC_URL; default from the Host header)
  --trust-proxy         Take the client address, scheme and host from X-Forwarded-* (PATCHBAY_TRUST_PROXY)
  --proxy-hops N        With --trust-proxy: proxies that append to X-Forwarded-For (PATCHBAY_PROXY_HOPS; default 1)
  --max-body SIZE       Largest webhook body (PATCHBAY_MAX_BODY; default 1mb)
  --inbound-rate RATE   Deliveries per sender address (PATCHBAY_INBOUND_RATE; default 100/s,burst=200)
  --retention DURATION  Purge runs finished longer ago, hourly (PATCHBAY_RETENTION; default 30d; "off")
  --drain-timeout DUR   How long SIGTERM waits for steps in flight (PATCHBAY_DRAIN_TIMEOUT; default 10s)
  --log-level LEVEL     debug, info, warn or error (PATCHBAY_LOG_LEVEL; default info)
  --log-format FORMAT   json or pretty (PATCHBAY_LOG_FORMAT; default pretty on a terminal, else json)
  --sandbox             Send every provider call to a built-in local sandbox and use generated
                        secrets: runs with no accounts (then try "patchbay send <integration>")
  --providers DIR       A folder of your own provider definitions (repeatable)
  --no-catalogue        Do not load the bundled provider catalogue
  -h, --help            Show this help

Admin API and metrics: PATCHBAY_ADMIN_TOKEN (read and operate), PATCHBAY_ADMIN_READ_TOKEN (read), or
JWTs verified against PATCHBAY_ADMIN_JWKS_URL with PATCHBAY_ADMIN_JWT_ISSUER and _AUDIENCE.

SIGTERM or SIGINT: deliveries are refused with 503 (senders retry), steps in flight finish within
the drain timeout, unfinished runs resume on the next start; a second signal exits at once.

Exit status: 0 stopped cleanly, 1 no valid integration, 2 usage or environment error.
`;

/** `patchbay serve`: see `help`. */
export async function runServe(argv: readonly string[], io: CliIO): Promise<number> {
  const parsed = parseCommandArgs('serve', argv, {
    dir: { type: 'string', multiple: true },
    port: { type: 'string' },
    host: { type: 'string' },
    state: { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'public-url': { type: 'string' },
    'trust-proxy': { type: 'boolean' },
    'proxy-hops': { type: 'string' },
    'max-body': { type: 'string' },
    'inbound-rate': { type: 'string' },
    retention: { type: 'string' },
    'drain-timeout': { type: 'string' },
    'log-level': { type: 'string' },
    'log-format': { type: 'string' },
    sandbox: { type: 'boolean' },
    providers: { type: 'string', multiple: true },
    'no-catalogue': { type: 'boolean', default: false },
  }, help, io);
  if (typeof parsed === 'number') return parsed;
  let config: ServeConfig;
  try {
    config = readServeConfig(parsed.values, parsed.positionals, io.env, io.cwd);
  } catch (error) {
    if (error instanceof PatchbayError) {
      io.stderr.write(`patchbay serve: ${error.message} [${error.code}]\n`);
      return ExitCode.usage;
    }
    throw error;
  }
  const pretty = config.logFormat === 'pretty' || (config.logFormat === undefined && io.stdout.isTTY === true);
  const baseLogger = createPinoLogger({ level: config.logLevel, pretty });

  let started;
  try {
    started = await startDaemon({
      paths: config.paths,
      providerDirs: parsed.values.providers ?? defaultProviderDirs(io.cwd, config.paths),
      catalogue: parsed.values['no-catalogue'] !== true,
      statePath: statePath(parsed.values.state, io.cwd, io.env),
      cwd: io.cwd,
      env: io.env,
      port: config.port,
      host: config.host,
      tls: config.tls,
      logger: baseLogger,
      maxBodyBytes: config.maxBodyBytes,
      inboundRate: config.inboundRate,
      publicUrl: config.publicUrl,
      trustProxy: config.trustProxy,
      proxyHops: config.proxyHops,
      retentionMs: config.retentionMs,
      sandbox: config.sandbox,
    });
  } catch (error) {
    if (error instanceof PatchbayError) {
      io.stderr.write(`patchbay serve: ${maskCredentials(error.message)} [${error.code}]\n`);
      return ExitCode.usage;
    }
    throw error;
  }
  if (!isDaemon(started)) {
    io.stderr.write('patchbay serve: no valid integration to serve\n');
    return ExitCode.problems;
  }
  const daemon = started;
  // Installed before the "listening" line, so a signal sent as soon as it appears is handled.
  const signals = watchStopSignals(daemon.logger, 'stopping: refusing new deliveries (503), finishing steps in flight', { drainTimeoutMs: config.drainTimeoutMs }, () => {
    // The generated secrets must not outlive the daemon, even when it does not stop cleanly.
    const failure = config.sandbox ? removeSandboxFileNow(io.cwd) : undefined;
    if (failure !== undefined) daemon.logger.log('error', 'could not remove .patchbay/sandbox.json', { code: failure });
  });
  const removeOnExit = (): void => {
    removeSandboxFileNow(io.cwd);
  };
  if (config.sandbox) process.once('exit', removeOnExit);
  // Before the "listening" line, which is what scripts and tests wait for.
  if (config.sandbox) io.stderr.write(sandboxBanner(daemon));
  daemon.logger.log('info', 'listening', {
    url: daemon.url,
    port: daemon.address.port,
    revision: daemon.plan.revision,
    integrations: [...daemon.plan.integrations.keys()],
    broken: [...daemon.plan.broken.keys(), ...daemon.hooks.problems.keys()],
    hooks: hookUrls(daemon).map((hook) => hook.url),
    sandbox: config.sandbox,
  });

  await signals.stopped;
  await daemon.stop(config.drainTimeoutMs);
  signals.dispose();
  process.off('exit', removeOnExit);
  daemon.logger.log('info', 'stopped');
  return ExitCode.ok;
}

/** What a newcomer sees first in sandbox mode: nothing leaves the machine, and what to try. */
function sandboxBanner(daemon: Daemon): string {
  const webhook = daemon.hooks.names[0];
  const lines = [
    '',
    '  SANDBOX MODE: every provider call goes to a local sandbox at ' + (daemon.sandbox?.url ?? '(none)') + ';',
    '  nothing leaves this machine. Secrets missing from the environment and every webhook secret',
    '  are generated for this run (.patchbay/sandbox.json, removed on exit).',
    ...(daemon.generatedSecrets.length === 0 ? [] : [`  Generated values for: ${daemon.generatedSecrets.join(', ')}`]),
    `  Daemon: ${daemon.url}   Webhooks: ${daemon.url}/hooks/<integration>`,
    ...(webhook === undefined ? [] : [`  Try it: npx patchbay send ${daemon.hooks.names.includes('stripe-payment-followup') ? 'stripe-payment-followup' : webhook}`]),
    '',
  ];
  return `${lines.join('\n')}\n`;
}
