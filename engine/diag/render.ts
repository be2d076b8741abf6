import type { Diagnostic } from './diagnostic.js';
import { countSeverities } from './diagnostic.js';

export const OutputFormat = { text: 'text', json: 'json', github: 'github' } as const;
export type OutputFormat = (typeof OutputFormat)[keyof typeof OutputFormat];

export interface RenderSummary {
  readonly files: number;
  readonly documents: number;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

const ansi = { red: '\u001b[31m', yellow: '\u001b[33m', dim: '\u001b[2m', bold: '\u001b[1m', reset: '\u001b[0m' };

/**
 * Renders diagnostics as `file:line:col: severity CODE: message` lines and a closing count.
 * `color` adds ANSI colours (callers pass true only for a terminal without NO_COLOR).
 */
export function renderText(diagnostics: readonly Diagnostic[], summary: RenderSummary, color: boolean): string {
  const paint = (code: string, text: string) => (color ? `${code}${text}${ansi.reset}` : text);
  const lines = diagnostics.map((d) => {
    const where = `${d.file}:${d.start.line}:${d.start.column}`;
    const severity = d.severity === 'error' ? paint(ansi.red, 'error') : paint(ansi.yellow, 'warning');
    return `${paint(ansi.bold, where)}: ${severity} ${paint(ansi.dim, d.code)}: ${d.message}`;
  });
  const { errors, warnings } = countSeverities(diagnostics);
  lines.push(
    `${plural(summary.files, 'file')}, ${plural(summary.documents, 'document')}: ` +
      `${plural(errors, 'error')}, ${plural(warnings, 'warning')}`,
  );
  return lines.join('\n') + '\n';
}

/** Renders diagnostics as one JSON object: `{ diagnostics: [...], summary: {...} }`. */
export function renderJson(diagnostics: readonly Diagnostic[], summary: RenderSummary): string {
  const { errors, warnings } = countSeverities(diagnostics);
  return (
    JSON.stringify(
      {
        diagnostics: diagnostics.map((d) => ({
          file: d.file,
          line: d.start.line,
          column: d.start.column,
          endLine: d.end.line,
          endColumn: d.end.column,
          severity: d.severity,
          code: d.code,
          message: d.message,
        })),
        summary: { files: summary.files, documents: summary.documents, errors, warnings },
      },
      null,
      2,
    ) + '\n'
  );
}

// GitHub workflow commands: data escapes %, CR, LF; property values also escape : and ,.
function escapeData(text: string): string {
  return text.replaceAll('%', '%25').replaceAll('\r', '%0D').replaceAll('\n', '%0A');
}

function escapeProperty(text: string): string {
  return escapeData(text).replaceAll(':', '%3A').replaceAll(',', '%2C');
}

/** Renders diagnostics as GitHub Actions workflow commands, which annotate the offending lines of a PR. */
export function renderGithub(diagnostics: readonly Diagnostic[], summary: RenderSummary): string {
  const lines = diagnostics.map((d) => {
    const command = d.severity === 'error' ? 'error' : 'warning';
    const properties = [
      `file=${escapeProperty(d.file)}`,
      `line=${d.start.line}`,
      `col=${d.start.column}`,
      `endLine=${d.end.line}`,
      `endColumn=${d.end.column}`,
      `title=${escapeProperty(d.code)}`,
    ].join(',');
    return `::${command} ${properties}::${escapeData(d.message)}`;
  });
  const { errors, warnings } = countSeverities(diagnostics);
  lines.push(
    `patchbay validate: ${plural(summary.files, 'file')}, ${plural(summary.documents, 'document')}, ` +
      `${plural(errors, 'error')}, ${plural(warnings, 'warning')}`,
  );
  return lines.join('\n') + '\n';
}
