import { maskCredentials } from '../lib/credentials.js';
import { codes, type Code, type Severity } from './codes.js';

/** A 1-based position in a source file. `column` counts UTF-16 code units, as editors do. */
export interface Position {
  readonly line: number;
  readonly column: number;
}

/** A problem found in the user's input, with the exact range it concerns. */
export interface Diagnostic {
  readonly code: Code;
  readonly severity: Severity;
  /** What is wrong and what to do, in one or two sentences. Never contains a secret. */
  readonly message: string;
  /** Path of the file as given to the command (relative to the working directory when inside it). */
  readonly file: string;
  readonly start: Position;
  readonly end: Position;
}

/** Builds a diagnostic with the code's default severity unless `severity` is given. */
export function makeDiagnostic(
  code: Code,
  message: string,
  file: string,
  start: Position,
  end: Position = start,
  severity: Severity = codes[code].severity,
): Diagnostic {
  return { code, severity, message: sanitizeText(maskCredentials(message)), file: sanitizeText(maskCredentials(file)), start, end };
}

const maxMessageLength = 1000;

/**
 * Makes text quoted from a manifest safe to print: control characters (newlines, ESC) are shown
 * escaped, so a value cannot forge a diagnostic line or drive the terminal, and overlong text is
 * cut. (Messages are also passed through `maskCredentials` by `makeDiagnostic`.)
 */
export function sanitizeText(text: string): string {
  const escaped = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => JSON.stringify(c).slice(1, -1));
  return escaped.length > maxMessageLength ? `${escaped.slice(0, maxMessageLength - 1)}…` : escaped;
}

/** Orders diagnostics by file, then position, then code, so output is stable. */
export function compareDiagnostics(a: Diagnostic, b: Diagnostic): number {
  if (a.file !== b.file) return a.file < b.file ? -1 : 1;
  if (a.start.line !== b.start.line) return a.start.line - b.start.line;
  if (a.start.column !== b.start.column) return a.start.column - b.start.column;
  return a.code < b.code ? -1 : a.code > b.code ? 1 : 0;
}

/** Counts errors and warnings. */
export function countSeverities(diagnostics: readonly Diagnostic[]): { errors: number; warnings: number } {
  let errors = 0;
  let warnings = 0;
  for (const d of diagnostics) {
    if (d.severity === 'error') errors += 1;
    else warnings += 1;
  }
  return { errors, warnings };
}
