import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { PatchbayError } from '../diag/errors.js';
import type { BucketSpec } from '../executor/rate-limiter.js';
import { parseDurationMs } from '../lib/duration.js';
import type { LogLevel } from '../lib/log.js';

/**
 * `patchbay serve` settings, from flags first and then environment variables (twelve-factor: a
 * container sets `PORT`, `PATCHBAY_STATE`, … and passes no flag). Every value is checked here, so
 * a bad one stops the start with PB_DAEMON_BAD_CONFIG naming the flag and the variable, before
 * anything is opened.
 */

/** What the flags gave (undefined: not given). */
export interface ServeFlags {
  readonly dir?: readonly string[] | undefined;
  readonly port?: string | undefined;
  readonly host?: string | undefined;
  readonly 'tls-cert'?: string | undefined;
  readonly 'tls-key'?: string | undefined;
  readonly 'public-url'?: string | undefined;
  readonly 'trust-proxy'?: boolean | undefined;
  readonly 'proxy-hops'?: string | undefined;
  readonly 'max-body'?: string | undefined;
  readonly 'inbound-rate'?: string | undefined;
  readonly retention?: string | undefined;
  readonly 'log-level'?: string | undefined;
  readonly 'log-format'?: string | undefined;
  readonly 'drain-timeout'?: string | undefined;
  readonly sandbox?: boolean | undefined;
}

export interface ServeConfig {
  readonly paths: readonly string[];
  readonly port: number;
  readonly host: string;
  readonly tls: { readonly cert: Buffer; readonly key: Buffer } | undefined;
  readonly publicUrl: URL | undefined;
  readonly trustProxy: boolean;
  /** Proxies in front of the daemon that append to X-Forwarded-For (the sender is that many entries from the right). */
  readonly proxyHops: number;
  readonly maxBodyBytes: number;
  readonly inboundRate: BucketSpec;
  readonly retentionMs: number | undefined;
  readonly logLevel: LogLevel;
  /** undefined: pretty on a terminal, JSON otherwise. */
  readonly logFormat: 'json' | 'pretty' | undefined;
  readonly drainTimeoutMs: number;
  readonly sandbox: boolean;
}

const levels: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

function bad(message: string): PatchbayError {
  return new PatchbayError('PB_DAEMON_BAD_CONFIG', message);
}

/** Reads a flag, else its environment variable; `label` names both for messages. */
function pick(flag: string | undefined, env: NodeJS.ProcessEnv, variable: string): { value: string | undefined; label: string } {
  if (flag !== undefined) return { value: flag, label: `--${variable === 'PORT' ? 'port' : variable.replace(/^PATCHBAY_/, '').toLowerCase().replace(/_/g, '-')}` };
  const value = env[variable];
  return { value: value === '' ? undefined : value, label: variable };
}

/** Parses `1048576`, `512kb`, `1mb`, `2MiB` into bytes; undefined when it is not a size. */
export function parseSizeBytes(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$/i.exec(text);
  if (match === null) return undefined;
  const unit = (match[2] ?? 'b').toLowerCase();
  const factor = unit === 'b' ? 1 : unit.startsWith('k') ? 1024 : unit.startsWith('m') ? 1024 ** 2 : 1024 ** 3;
  const value = Math.floor(Number(match[1]) * factor);
  return Number.isFinite(value) ? value : undefined;
}

/** Parses `100/s`, `100/1s`, `6000/1m`, with an optional `,burst=200`; undefined when malformed. */
export function parseRate(text: string): BucketSpec | undefined {
  const match = /^\s*(\d+)\s*\/\s*(\d*\s*[a-z]+)\s*(?:,\s*burst\s*=\s*(\d+)\s*)?$/i.exec(text);
  if (match === null) return undefined;
  const requests = Number(match[1]);
  const period = (match[2] as string).replace(/\s+/g, '');
  const perMs = parseDurationMs(/^\d/.test(period) ? period : `1${period}`);
  const burst = match[3] === undefined ? requests * 2 : Number(match[3]);
  if (perMs === undefined || perMs <= 0 || requests < 1 || burst < 1) return undefined;
  return { requests, perMs, burst };
}

/**
 * Settings for `patchbay serve` from `flags` and `env` (see the command's help for each one).
 * Throws PB_DAEMON_BAD_CONFIG for a value it cannot use, and for TLS files that cannot be read.
 */
export function readServeConfig(flags: ServeFlags, positionals: readonly string[], env: NodeJS.ProcessEnv, cwd: string): ServeConfig {
  const sandbox = flags.sandbox === true || env.PATCHBAY_SANDBOX === '1' || env.PATCHBAY_SANDBOX === 'true';
  const dirs = [...positionals, ...(flags.dir ?? [])];
  const envDir = env.PATCHBAY_DIR;
  const paths = dirs.length > 0 ? dirs : envDir !== undefined && envDir !== '' ? [envDir] : ['integrations'];

  const port = pick(flags.port, env, 'PORT');
  const portNumber = port.value === undefined ? 8080 : Number(port.value);
  if (!Number.isInteger(portNumber) || portNumber < 0 || portNumber > 65_535) throw bad(`${port.label} must be a port number from 0 to 65535, not "${port.value}"`);

  // The sandbox listens on loopback only: its secrets are generated and printed for `send`.
  const host = pick(flags.host, env, 'PATCHBAY_HOST').value ?? (sandbox ? '127.0.0.1' : '0.0.0.0');

  const certPath = pick(flags['tls-cert'], env, 'PATCHBAY_TLS_CERT');
  const keyPath = pick(flags['tls-key'], env, 'PATCHBAY_TLS_KEY');
  let tls: ServeConfig['tls'];
  if ((certPath.value === undefined) !== (keyPath.value === undefined)) throw bad('--tls-cert and --tls-key (PATCHBAY_TLS_CERT, PATCHBAY_TLS_KEY) go together: give both or neither');
  if (certPath.value !== undefined && keyPath.value !== undefined) {
    tls = { cert: readPem(certPath.value, certPath.label, cwd), key: readPem(keyPath.value, keyPath.label, cwd) };
  }

  const publicText = pick(flags['public-url'], env, 'PATCHBAY_PUBLIC_URL');
  let publicUrl: URL | undefined;
  if (publicText.value !== undefined) {
    try {
      publicUrl = new URL(publicText.value);
    } catch (error) {
      throw new PatchbayError('PB_DAEMON_BAD_CONFIG', `${publicText.label} is not a URL`, { cause: error });
    }
    if ((publicUrl.protocol !== 'https:' && publicUrl.protocol !== 'http:') || publicUrl.search !== '' || publicUrl.username !== '' || publicUrl.password !== '') {
      throw bad(`${publicText.label} must be an http(s) base URL without credentials or query (the address providers deliver to)`);
    }
  }
  const trustProxyEnv = env.PATCHBAY_TRUST_PROXY;
  const trustProxy = flags['trust-proxy'] === true || trustProxyEnv === '1' || trustProxyEnv === 'true';

  const hops = pick(flags['proxy-hops'], env, 'PATCHBAY_PROXY_HOPS');
  const proxyHops = hops.value === undefined ? 1 : Number(hops.value);
  if (!Number.isInteger(proxyHops) || proxyHops < 1 || proxyHops > 10) throw bad(`${hops.label} must be a number of proxies from 1 to 10, not "${hops.value}"`);

  const body = pick(flags['max-body'], env, 'PATCHBAY_MAX_BODY');
  const maxBodyBytes = body.value === undefined ? 1024 * 1024 : parseSizeBytes(body.value);
  if (maxBodyBytes === undefined || maxBodyBytes < 1024 || maxBodyBytes > 64 * 1024 * 1024) throw bad(`${body.label} must be a size from 1kb to 64mb (such as 1mb), not "${body.value}"`);

  const rate = pick(flags['inbound-rate'], env, 'PATCHBAY_INBOUND_RATE');
  const inboundRate = rate.value === undefined ? { requests: 100, perMs: 1000, burst: 200 } : parseRate(rate.value);
  if (inboundRate === undefined) throw bad(`${rate.label} must be a rate such as 100/s or 6000/1m,burst=500, not "${rate.value}"`);

  const retention = pick(flags.retention, env, 'PATCHBAY_RETENTION');
  const retentionText = retention.value ?? '30d';
  const retentionMs = retentionText === 'off' ? undefined : parseDurationMs(retentionText);
  if (retentionText !== 'off' && (retentionMs === undefined || retentionMs < 60_000)) throw bad(`${retention.label} must be a duration of at least 1m (such as 30d) or "off", not "${retentionText}"`);

  const level = pick(flags['log-level'], env, 'PATCHBAY_LOG_LEVEL');
  const logLevel = (level.value ?? 'info') as LogLevel;
  if (!levels.includes(logLevel)) throw bad(`${level.label} must be one of ${levels.join(', ')}, not "${level.value}"`);
  const format = pick(flags['log-format'], env, 'PATCHBAY_LOG_FORMAT');
  if (format.value !== undefined && format.value !== 'json' && format.value !== 'pretty') throw bad(`${format.label} must be json or pretty, not "${format.value}"`);

  const drain = pick(flags['drain-timeout'], env, 'PATCHBAY_DRAIN_TIMEOUT');
  const drainTimeoutMs = drain.value === undefined ? 10_000 : parseDurationMs(drain.value);
  if (drainTimeoutMs === undefined || drainTimeoutMs > 10 * 60_000) throw bad(`${drain.label} must be a duration up to 10m (such as 10s), not "${drain.value}"`);

  return {
    paths,
    port: portNumber,
    host,
    tls,
    publicUrl,
    trustProxy,
    proxyHops,
    maxBodyBytes,
    inboundRate,
    retentionMs,
    logLevel,
    logFormat: format.value as ServeConfig['logFormat'],
    drainTimeoutMs,
    sandbox,
  };
}

function readPem(path: string, label: string, cwd: string): Buffer {
  try {
    return readFileSync(isAbsolute(path) ? path : resolve(cwd, path));
  } catch (error) {
    throw new PatchbayError('PB_DAEMON_BAD_CONFIG', `${label}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`, { cause: error });
  }
}
