/**
 * The logging seam. Engine code never writes to stdout itself: it is handed a `Logger`, so the
 * daemon can use JSON logs and tests can capture every line (and scan it for secrets).
 * Fields must never hold secret values, auth headers or query strings.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  log(level: LogLevel, message: string, fields?: Readonly<Record<string, unknown>>): void;
}

/** Drops everything (the default where no logger is given). */
export const silentLogger: Logger = { log: () => undefined };

/** Keeps every line in memory (tests). */
export class MemoryLogger implements Logger {
  readonly lines: { level: LogLevel; message: string; fields: Readonly<Record<string, unknown>> }[] = [];

  log(level: LogLevel, message: string, fields: Readonly<Record<string, unknown>> = {}): void {
    this.lines.push({ level, message, fields });
  }

  /** Every line as one JSON text, for scanning. */
  text(): string {
    return this.lines.map((line) => JSON.stringify(line)).join('\n');
  }
}

const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/**
 * Writes one JSON object per line (`{"time":…,"level":…,"msg":…,…fields}`) to a stream, dropping
 * lines below `minLevel`. The format log collectors expect from a twelve-factor service.
 */
export class JsonLineLogger implements Logger {
  constructor(
    private readonly stream: { write(text: string): unknown },
    private readonly minLevel: LogLevel = 'info',
    private readonly clock: () => number = Date.now,
  ) {}

  log(level: LogLevel, message: string, fields: Readonly<Record<string, unknown>> = {}): void {
    if (levelRank[level] < levelRank[this.minLevel]) return;
    this.stream.write(`${JSON.stringify({ time: new Date(this.clock()).toISOString(), level, msg: message, ...fields })}\n`);
  }
}
