import type { Code, Severity } from '../diag/codes.js';
import { makeDiagnostic, type Diagnostic } from '../diag/diagnostic.js';
import { locate, positionAt, type Anchor, type SourceDocument } from './source.js';

/** A path into a document: mapping keys and sequence indices. */
export type DocPath = readonly (string | number)[];

/**
 * Collects diagnostics for one document, turning document paths into exact source ranges.
 * Checks call `at` and never throw for problems in the input.
 */
export class DocumentReporter {
  readonly source: SourceDocument;
  private readonly sink: Diagnostic[];
  private readonly suppressed = new Set<Code>();

  constructor(source: SourceDocument, sink: Diagnostic[]) {
    this.source = source;
    this.sink = sink;
  }

  /** Reports `code` at the value (or key) found at `path`. */
  at(path: DocPath, code: Code, message: string, options: { anchor?: Anchor; severity?: Severity } = {}): void {
    const range = locate(this.source, path, options.anchor ?? 'value');
    this.atOffsets(range.start, range.end, code, message, options.severity);
  }

  /** True when the source line of the node at `path` contains `marker` (an allow comment). */
  lineHas(path: DocPath, marker: string): boolean {
    const { start } = locate(this.source, path, 'key');
    const text = this.source.text;
    const lineStart = text.lastIndexOf('\n', start) + 1;
    const lineEnd = text.indexOf('\n', start);
    return text.slice(lineStart, lineEnd < 0 ? text.length : lineEnd).includes(marker);
  }

  /**
   * Stops reporting `codes` for this document: used when an earlier finding (a missing section)
   * makes them follow-on noise from the same mistake.
   */
  suppress(...codes: Code[]): void {
    for (const code of codes) this.suppressed.add(code);
  }

  /** Reports `code` at explicit offsets into the file's text. */
  atOffsets(start: number, end: number, code: Code, message: string, severity?: Severity): void {
    if (this.suppressed.has(code)) return;
    const lc = this.source.lineCounter;
    this.sink.push(makeDiagnostic(code, message, this.source.file, positionAt(lc, start), positionAt(lc, end), severity));
  }
}

/** Renders a document path for messages: `spec.steps[1].with.To`. */
export function formatPath(path: DocPath): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(segment)) out += out ? `.${segment}` : segment;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out || '(document)';
}
