import { systemClock, type Clock } from '../lib/clock.js';

/** Where progress is written: standard error, or a fake stream in tests. */
export interface ProgressStream {
  write(text: string): unknown;
  /** A terminal gets a bar redrawn in place; anything else gets plain lines. */
  readonly isTTY?: boolean | undefined;
  /** Terminal width in characters, when known. */
  readonly columns?: number | undefined;
}

export interface ProgressOptions {
  readonly stream: ProgressStream;
  /** How many items there are in all (may be raised later with `update(done, total)`). */
  readonly total: number;
  /** The past-tense verb of a line: `replayed` gives `replayed 500 of 1200`. */
  readonly verb: string;
  /** @default systemClock */
  readonly clock?: Clock;
  /**
   * Plain-line mode writes at most one line per this interval while work goes on, and none before
   * the first interval has passed (a quick job prints only its final line). @default 1000
   */
  readonly lineIntervalMs?: number;
  /** Bar mode redraws at most this often. @default 100 */
  readonly redrawIntervalMs?: number;
  /** Overrides `stream.isTTY` (bar when true, lines when false). */
  readonly tty?: boolean;
}

/** Terminal control: carriage return, then erase to the end of the line. */
const clearLine = '\r\x1b[K';
const maxBarWidth = 40;

/**
 * Reports how far a long job has come, on a terminal as a bar redrawn in place
 * (`replayed [=========>          ] 500/1200  41%`), elsewhere as plain lines
 * (`replayed 500 of 1200`) rate-limited so that logs of a long job stay short.
 *
 * `update(done)` records progress (never goes backwards; a `done` above `total` raises the total);
 * `finish()` always writes the final state (a line, or the bar followed by a newline) and makes
 * later calls no-ops. Writes nothing but progress to the stream.
 */
export class Progress {
  private readonly stream: ProgressStream;
  private readonly clock: Clock;
  private readonly verb: string;
  private readonly tty: boolean;
  private readonly lineIntervalMs: number;
  private readonly redrawIntervalMs: number;
  private readonly startedAt: number;
  private total: number;
  private done = 0;
  private lastWriteAt: number | undefined;
  private lastLine: string | undefined;
  private finished = false;

  constructor(options: ProgressOptions) {
    this.stream = options.stream;
    this.clock = options.clock ?? systemClock;
    this.verb = options.verb;
    this.tty = options.tty ?? options.stream.isTTY === true;
    this.lineIntervalMs = options.lineIntervalMs ?? 1000;
    this.redrawIntervalMs = options.redrawIntervalMs ?? 100;
    this.total = Math.max(0, options.total);
    this.startedAt = this.clock.now();
    if (this.tty) this.draw();
  }

  /** Records that `done` items are finished (of `total`, when the total changed). */
  update(done: number, total?: number): void {
    if (this.finished) return;
    if (total !== undefined) this.total = Math.max(0, total);
    this.done = Math.max(this.done, done);
    if (this.done > this.total) this.total = this.done;
    const now = this.clock.now();
    if (this.tty) {
      if (this.lastWriteAt === undefined || now - this.lastWriteAt >= this.redrawIntervalMs) this.draw();
      return;
    }
    const since = this.lastWriteAt ?? this.startedAt;
    if (now - since >= this.lineIntervalMs) this.writeLine();
  }

  /** Writes the final state; further calls do nothing. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.tty) {
      this.draw();
      this.stream.write('\n');
      return;
    }
    if (this.lastLine !== this.line()) this.writeLine();
  }

  private line(): string {
    return `${this.verb} ${this.done} of ${this.total}`;
  }

  private writeLine(): void {
    const line = this.line();
    this.stream.write(`${line}\n`);
    this.lastLine = line;
    this.lastWriteAt = this.clock.now();
  }

  private draw(): void {
    // Padded to the total's width so the bar does not shift as the count grows.
    const counts = `${this.done}/${this.total}`.padStart(String(this.total).length * 2 + 1);
    const percent = `${this.total === 0 ? 100 : Math.floor((this.done / this.total) * 100)}%`.padStart(4);
    const fixed = this.verb.length + counts.length + percent.length + 6;
    const width = Math.max(0, Math.min(maxBarWidth, (this.stream.columns ?? 80) - 1 - fixed));
    const filled = this.total === 0 ? width : Math.floor((this.done / this.total) * width);
    const bar = width === 0 ? '' : ` [${'='.repeat(filled)}${filled < width ? '>' + ' '.repeat(width - filled - 1) : ''}]`;
    this.stream.write(`${clearLine}${this.verb}${bar} ${counts} ${percent}`);
    this.lastWriteAt = this.clock.now();
  }
}
