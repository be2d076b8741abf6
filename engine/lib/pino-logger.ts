import { pino } from 'pino';
import pinoPretty from 'pino-pretty';
import type { Logger, LogLevel } from './log.js';
// pino lives in its own module so that the short commands (validate, list) do not load it.

/** Options of `createPinoLogger`. */
export interface PinoLoggerOptions {
  /** @default 'info' */
  readonly level?: LogLevel;
  /** Human-readable, coloured lines (for a terminal) instead of JSON. @default false */
  readonly pretty?: boolean;
  /** File descriptor written to. @default 1 (stdout, as a twelve-factor service logs) */
  readonly fd?: number;
  /** Fields on every line (`service`, `pid` are added by pino). */
  readonly base?: Readonly<Record<string, unknown>>;
}

/**
 * The daemon's logger: pino, one JSON object per line (`level` as a label, `time` in ISO 8601,
 * `msg`), or pino-pretty's coloured lines when `pretty` (a terminal). Writes synchronously, so
 * the last lines before a crash or a `process.exit` are not lost. Callers still redact: wrap the
 * result with `redactingLogger`.
 */
export function createPinoLogger(options: PinoLoggerOptions = {}): Logger {
  const fd = options.fd ?? 1;
  const settings: pino.LoggerOptions = {
    level: options.level ?? 'info',
    base: { pid: process.pid, ...options.base },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  const destination = options.pretty === true
    ? pinoPretty({ colorize: true, destination: fd, sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' })
    : pino.destination({ dest: fd, sync: true });
  const target = pino(settings, destination);
  return {
    log(level, message, fields) {
      if (fields === undefined) target[level](message);
      else target[level](fields, message);
    },
  };
}
