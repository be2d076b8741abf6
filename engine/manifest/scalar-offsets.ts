import { Scalar } from 'yaml';

/**
 * A scalar's value decoded from its source, with where each character came from: `at[i]` is
 * the file offset of value character `i`, and `at[text.length]` the offset just past the last
 * source character used (the end of the value).
 */
interface DecodedScalar {
  readonly text: string;
  readonly at: readonly number[];
}

/** Collects decoded characters and their file offsets, in order. */
class DecodedBuilder {
  text = '';
  readonly at: number[] = [];
  /** Offset just past the source of the last character pushed. */
  next: number;

  constructor(start: number) {
    this.next = start;
  }

  /** Every character of `chars` stands for the source at `at`, which ends before `next`. */
  push(chars: string, at: number, next: number = at + 1): void {
    if (chars.length === 0) return;
    for (let i = 0; i < chars.length; i++) this.at.push(at);
    this.text += chars;
    this.next = next;
  }

  /** Copies `source[from, to)` verbatim. */
  copy(source: string, from: number, to: number): void {
    for (let i = from; i < to; i++) this.at.push(i);
    this.text += source.slice(from, to);
    if (to > from) this.next = to;
  }

  finish(): DecodedScalar {
    return { text: this.text, at: [...this.at, this.next] };
  }
}

/**
 * Maps an offset in a scalar's parsed value to an offset in the file's text.
 *
 * `text` is the whole file the scalar was parsed from, `scalar` a node from the `yaml` package
 * with its `range` ([start, valueEnd, nodeEnd]) and `type`, and `value` its string value.
 * `offsetInValue` counts UTF-16 code units, as JavaScript strings do; it is clamped to
 * [0, value.length], and `value.length` maps to the end of the value (after the last character
 * that made it: for a quoted scalar, the closing quote).
 *
 * Exact for every scalar style (plain, single- and double-quoted, literal and folded blocks,
 * with escapes, line folding, CRLF line breaks, indentation and chomping indicators): the
 * source is decoded with the same rules as the `yaml` package while recording where each
 * character came from, and the result is used when it equals `value`. Characters that a fold
 * or an escape produced map to the line break or the backslash that produced them. When the
 * decoding does not reproduce `value` (a document with errors, a value from elsewhere), the
 * point is located by the text around it and the count of its earlier occurrences, and as a
 * last resort the scalar's start is returned.
 *
 * Never throws. The result is within [scalar.range[0], scalar.range[1]]; a scalar without a
 * range yields 0.
 */
export function mapValueOffset(text: string, scalar: Scalar, value: string, offsetInValue: number): number {
  const range = scalar.range;
  if (!range) return 0;
  const start = Math.max(0, Math.min(range[0], text.length));
  const end = Math.max(start, Math.min(range[1], text.length));
  const point = Number.isFinite(offsetInValue) ? Math.max(0, Math.min(Math.trunc(offsetInValue), value.length)) : 0;
  const clamp = (offset: number): number => Math.max(start, Math.min(offset, end));
  try {
    const contentStart = contentStartOf(text, start, end, scalar.type);
    const candidates = decodeScalar(text, start, end, scalar.type);
    const exact = candidates.find((decoded) => decoded.text === value);
    if (exact) return clamp(exact.at[point]!);
    const partial = candidates[0] && mapByPrefixOrSuffix(candidates[0], value, point);
    if (partial !== undefined) return clamp(partial);
    return clamp(mapByOccurrence(text, contentStart, end, value, point) ?? start);
  } catch {
    // A position is only an aid for a diagnostic: a decoding bug must not stop validation.
    return start;
  }
}

/** Where the value's own characters begin: after an opening quote or a block header line. */
function contentStartOf(text: string, start: number, end: number, type: Scalar['type']): number {
  if (type === Scalar.QUOTE_DOUBLE || type === Scalar.QUOTE_SINGLE) return Math.min(start + 1, end);
  if (type === Scalar.BLOCK_LITERAL || type === Scalar.BLOCK_FOLDED) {
    const newline = text.indexOf('\n', start);
    return newline < 0 || newline >= end ? end : newline + 1;
  }
  return start;
}

/** Decodings of the source to try, most likely first; empty for an unknown style. */
function decodeScalar(text: string, start: number, end: number, type: Scalar['type']): DecodedScalar[] {
  switch (type) {
    case Scalar.PLAIN:
      return [decodePlain(text, start, end)];
    case Scalar.QUOTE_SINGLE:
      return [decodeSingleQuoted(text, start, end)];
    case Scalar.QUOTE_DOUBLE:
      return [decodeDoubleQuoted(text, start, end)];
    case Scalar.BLOCK_LITERAL:
    case Scalar.BLOCK_FOLDED:
      return decodeBlock(text, start, end);
    default:
      return [];
  }
}

const isBlank = (c: string | undefined): boolean => c === ' ' || c === '\t';

/**
 * Folds the lines of a plain or single-quoted scalar into `out`: each line is trimmed, a single
 * line break becomes a space and n > 1 become n - 1 newlines. Mirrors `unfoldLines` in yaml's
 * compose/resolve-flow-scalar.js.
 */
function unfoldLines(text: string, from: number, to: number, out: DecodedBuilder): void {
  // Lines as [start, end) without their `\r?\n`, as yaml's /(.*?)\r?\n/ splits them.
  const lines: [number, number][] = [];
  let lineStart = from;
  for (let i = from; i < to; i++) {
    if (text[i] !== '\n') continue;
    lines.push([lineStart, i > lineStart && text[i - 1] === '\r' ? i - 1 : i]);
    lineStart = i + 1;
  }
  if (lines.length === 0) {
    out.copy(text, from, to);
    return;
  }
  const trimEnd = (a: number, b: number): number => {
    while (b > a && isBlank(text[b - 1])) b--;
    return b;
  };
  const trimStart = (a: number, b: number): number => {
    while (a < b && isBlank(text[a])) a++;
    return a;
  };
  const [firstStart, firstEnd] = lines[0]!;
  const firstContentEnd = trimEnd(firstStart, firstEnd);
  out.copy(text, firstStart, firstContentEnd);
  let sep = ' ';
  // The fold still to be written stands for the line break at `sepAt`.
  let sepAt = firstContentEnd;
  for (let l = 1; l < lines.length; l++) {
    const [a, b] = lines[l]!;
    const contentStart = trimStart(a, b);
    const contentEnd = trimEnd(contentStart, b);
    if (contentStart === contentEnd) {
      if (sep === '\n') {
        out.push('\n', sepAt);
        sepAt = a;
      } else {
        sep = '\n';
      }
    } else {
      out.push(sep, sepAt);
      out.copy(text, contentStart, contentEnd);
      sep = ' ';
      sepAt = contentEnd;
    }
  }
  out.push(sep, sepAt);
  out.copy(text, trimStart(lineStart, to), to);
}

function decodePlain(text: string, start: number, end: number): DecodedScalar {
  const out = new DecodedBuilder(start);
  unfoldLines(text, start, end, out);
  return out.finish();
}

function decodeSingleQuoted(text: string, start: number, end: number): DecodedScalar {
  const unfolded = new DecodedBuilder(start + 1);
  unfoldLines(text, start + 1, Math.max(start + 1, end - 1), unfolded);
  const folded = unfolded.finish();
  // yaml replaces `''` after unfolding, left to right: do the same on the decoded text.
  const out = new DecodedBuilder(start + 1);
  for (let i = 0; i < folded.text.length; i++) {
    const at = folded.at[i]!;
    if (folded.text[i] === "'" && folded.text[i + 1] === "'") {
      out.push("'", at, folded.at[i + 1]! + 1);
      i++;
    } else {
      out.push(folded.text[i]!, at);
    }
  }
  // The end of the value is the closing quote.
  out.next = Math.max(start + 1, end - 1);
  return out.finish();
}

/** yaml's escapeCodes in compose/resolve-flow-scalar.js. */
const doubleQuotedEscapes: Readonly<Record<string, string>> = {
  '0': '\0',
  a: '\x07',
  b: '\b',
  e: '\x1b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  N: '\u0085',
  _: '\u00a0',
  L: '\u2028',
  P: '\u2029',
  ' ': ' ',
  '"': '"',
  '/': '/',
  '\\': '\\',
  '\t': '\t',
};

/** Mirrors `doubleQuotedValue` in yaml's compose/resolve-flow-scalar.js, with offsets. */
function decodeDoubleQuoted(text: string, start: number, end: number): DecodedScalar {
  const out = new DecodedBuilder(start + 1);
  for (let i = start + 1; i < end - 1; i++) {
    const ch = text[i]!;
    if (ch === '\r' && text[i + 1] === '\n') continue;
    if (ch === '\n') {
      // A line break folds to a space, or to n - 1 newlines when followed by empty lines.
      let fold = '';
      let j = i;
      let c = text[j + 1];
      while (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
        if (c === '\r' && text[j + 2] !== '\n') break;
        if (c === '\n') fold += '\n';
        j++;
        c = text[j + 1];
      }
      out.push(fold || ' ', i, j + 1);
      i = j;
    } else if (ch === '\\') {
      const escape = i;
      let next = text[++i];
      const code = next === undefined ? undefined : doubleQuotedEscapes[next];
      if (code) {
        out.push(code, escape, i + 1);
      } else if (next === '\n') {
        // An escaped line break joins the lines; the next line's indentation is dropped.
        next = text[i + 1];
        while (next === ' ' || next === '\t') next = text[++i + 1];
      } else if (next === '\r' && text[i + 1] === '\n') {
        next = text[++i + 1];
        while (next === ' ' || next === '\t') next = text[++i + 1];
      } else if (next === 'x' || next === 'u' || next === 'U') {
        const length = next === 'x' ? 2 : next === 'u' ? 4 : 8;
        const digits = text.substr(i + 1, length);
        const codePoint = digits.length === length && /^[0-9a-fA-F]+$/.test(digits) ? parseInt(digits, 16) : NaN;
        const decoded = codePoint <= 0x10ffff ? String.fromCodePoint(codePoint) : text.substr(i - 1, length + 2);
        out.push(decoded, escape, i + 1 + length);
        i += length;
      } else {
        // An invalid escape is kept as written (yaml reports it as an error).
        out.push('\\', escape);
        if (next !== undefined) out.push(next, i);
      }
    } else if (ch === ' ' || ch === '\t') {
      // Blanks before a line break are dropped; others are kept.
      const blankStart = i;
      let next = text[i + 1];
      while (next === ' ' || next === '\t') next = text[++i + 1];
      if (next !== '\n' && !(next === '\r' && text[i + 2] === '\n')) out.copy(text, blankStart, i + 1);
    } else {
      out.push(ch, i);
    }
  }
  out.next = Math.max(start + 1, end - 1);
  return out.finish();
}

/** One line of a block scalar's body: where it starts, its leading spaces and the rest. */
interface BlockLine {
  readonly start: number;
  readonly indent: number;
  /** The text after the leading spaces, without the `\n` (a `\r` is kept, as yaml does). */
  readonly content: string;
}

/**
 * Decodes a literal or folded block. An explicit indentation indicator is relative to the
 * parent's indentation, which the node does not record, so every plausible base is tried.
 */
function decodeBlock(text: string, start: number, end: number): DecodedScalar[] {
  const mode = text[start];
  let i = start + 1;
  let chomp = '';
  let indicatedIndent = 0;
  // The header token runs to the first blank or `#` (yaml's lexer); then come blanks, a comment, the line break.
  for (; i < end && !isBlank(text[i]) && text[i] !== '#' && text[i] !== '\n' && text[i] !== '\r'; i++) {
    const ch = text[i]!;
    if (!chomp && (ch === '-' || ch === '+')) chomp = ch;
    else if (!indicatedIndent && Number(ch)) indicatedIndent = Number(ch);
  }
  const newline = text.indexOf('\n', i);
  const bodyStart = newline < 0 || newline >= end ? end : newline + 1;
  const lines: BlockLine[] = [];
  let lineStart = bodyStart;
  // An empty body has no lines at all, as in yaml (not one empty line).
  for (let j = bodyStart; j <= end && bodyStart < end; j++) {
    if (j < end && text[j] !== '\n') continue;
    let indent = 0;
    while (lineStart + indent < j && text[lineStart + indent] === ' ') indent++;
    lines.push({ start: lineStart, indent, content: text.slice(lineStart + indent, j) });
    lineStart = j + 1;
  }
  const folded = mode === '>';
  if (indicatedIndent === 0) return [decodeBlockBody(lines, folded, chomp, 0, false, bodyStart, end)];
  const firstContent = lines.find((line) => line.content !== '' && line.content !== '\r');
  const widest = Math.max(indicatedIndent, firstContent?.indent ?? 0, ...lines.map((line) => line.indent));
  const lineOf = text.lastIndexOf('\n', start - 1) + 1;
  let headerLineIndent = 0;
  while (text[lineOf + headerLineIndent] === ' ') headerLineIndent++;
  const bases = [headerLineIndent + indicatedIndent, indicatedIndent];
  for (let base = 0; base <= widest; base++) bases.push(base);
  return [...new Set(bases)].map((base) => decodeBlockBody(lines, folded, chomp, base, true, bodyStart, end));
}

/** Mirrors `resolveBlockScalar` in yaml's compose/resolve-block-scalar.js, with offsets. */
function decodeBlockBody(
  lines: readonly BlockLine[],
  folded: boolean,
  chomp: string,
  baseIndent: number,
  explicitIndent: boolean,
  bodyStart: number,
  end: number,
): DecodedScalar {
  const out = new DecodedBuilder(bodyStart);
  const isEmpty = (line: BlockLine): boolean => line.content === '' || line.content === '\r';
  // Offset of a line's break (or of the body's end, for a last line without one).
  const breakOf = (line: BlockLine): number => Math.min(end, line.start + line.indent + line.content.length - (line.content.endsWith('\r') ? 1 : 0));
  const nextLineOf = (line: BlockLine): number => Math.min(end, line.start + line.indent + line.content.length + 1);
  let chompStart = lines.length;
  for (let i = lines.length - 1; i >= 0; i--) {
    if (isEmpty(lines[i]!)) chompStart = i;
    else break;
  }
  if (chompStart === 0) {
    if (chomp === '+' && lines.length > 0) {
      const count = Math.max(1, lines.length - 1);
      for (let i = 0; i < count; i++) out.push('\n', breakOf(lines[Math.min(i, lines.length - 1)]!), nextLineOf(lines[Math.min(i, lines.length - 1)]!));
    }
    return out.finish();
  }
  let trimIndent = baseIndent;
  let contentStart = 0;
  for (let i = 0; i < chompStart; i++) {
    const line = lines[i]!;
    if (isEmpty(line)) {
      if (!explicitIndent && line.indent > trimIndent) trimIndent = line.indent;
    } else {
      if (!explicitIndent) trimIndent = line.indent;
      contentStart = i;
      break;
    }
  }
  for (let i = lines.length - 1; i >= chompStart; i--) {
    if (lines[i]!.indent > trimIndent) chompStart = i + 1;
  }
  // Writes the spaces of a line's indentation beyond `trimIndent`.
  const copyExtraIndent = (line: BlockLine, indent: number): void => {
    for (let k = trimIndent; k < indent; k++) out.push(' ', line.start + k);
  };
  for (let i = 0; i < contentStart; i++) {
    const line = lines[i]!;
    copyExtraIndent(line, line.indent);
    out.push('\n', breakOf(line), nextLineOf(line));
  }
  let sep = '';
  // The separator still to be written stands for the line break at `sepAt`, which ends before `sepNext`.
  let sepAt = bodyStart;
  let sepNext = bodyStart;
  let prevMoreIndented = false;
  for (let i = contentStart; i < chompStart; i++) {
    const line = lines[i]!;
    let content = line.content;
    if (content.endsWith('\r')) content = content.slice(0, -1);
    // yaml drops the indentation of a less-indented line (after reporting it).
    const indent = content && line.indent < trimIndent ? 0 : line.indent;
    const contentAt = line.start + line.indent;
    const copyLine = (): void => {
      copyExtraIndent(line, indent);
      for (let k = 0; k < content.length; k++) out.push(content[k]!, contentAt + k);
    };
    if (!folded) {
      out.push(sep, sepAt, sepNext);
      copyLine();
      sep = '\n';
    } else if (indent > trimIndent || content[0] === '\t') {
      if (sep === ' ') sep = '\n';
      else if (!prevMoreIndented && sep === '\n') sep = '\n\n';
      out.push(sep, sepAt, sepNext);
      copyLine();
      sep = '\n';
      prevMoreIndented = true;
    } else if (content === '') {
      if (sep === '\n') out.push('\n', sepAt, sepNext);
      else sep = '\n';
    } else {
      out.push(sep, sepAt, sepNext);
      copyLine();
      sep = ' ';
      prevMoreIndented = false;
    }
    sepAt = breakOf(line);
    sepNext = nextLineOf(line);
  }
  if (chomp === '+') {
    for (let i = chompStart; i < lines.length; i++) {
      const line = lines[i]!;
      out.push('\n', sepAt, sepNext);
      copyExtraIndent(line, line.indent);
      sepAt = breakOf(line);
      sepNext = nextLineOf(line);
    }
    if (!out.text.endsWith('\n')) out.push('\n', sepAt, sepNext);
  } else if (chomp !== '-') {
    out.push('\n', sepAt, sepNext);
  }
  return out.finish();
}

/**
 * Uses a decoding that differs from `value` only after the point (or only before it): the
 * shared prefix (or suffix) is mapped character by character.
 */
function mapByPrefixOrSuffix(decoded: DecodedScalar, value: string, point: number): number | undefined {
  let prefix = 0;
  while (prefix < value.length && prefix < decoded.text.length && value[prefix] === decoded.text[prefix]) prefix++;
  if (point < prefix) return decoded.at[point];
  let suffix = 0;
  while (
    suffix < value.length &&
    suffix < decoded.text.length &&
    value[value.length - 1 - suffix] === decoded.text[decoded.text.length - 1 - suffix]
  ) {
    suffix++;
  }
  if (point >= value.length - suffix) return decoded.at[decoded.text.length - (value.length - point)];
  return undefined;
}

/** Characters that appear in the source as they are in the value, in every style but escapes. */
const tokenCharacter = /[^\s\\'"]/u;
const wordCharacter = /[A-Za-z0-9_$]/;

/**
 * Finds the point by the run of characters around it: the run's earlier occurrences in the
 * value are counted, and the same occurrence is taken in the source. Returns undefined when
 * nothing around the point can be found.
 */
function mapByOccurrence(text: string, from: number, to: number, value: string, point: number): number | undefined {
  const source = text.slice(from, to);
  for (const pattern of [tokenCharacter, wordCharacter]) {
    const isToken = (c: string | undefined): boolean => c !== undefined && pattern.test(c);
    // The point itself, or the nearest token character after it, then before it.
    let anchor = point;
    if (!isToken(value[anchor])) {
      let after = point;
      while (after < value.length && !isToken(value[after])) after++;
      let before = point - 1;
      while (before >= 0 && !isToken(value[before])) before--;
      if (after < value.length) anchor = after;
      else if (before >= 0) anchor = before;
      else continue;
    }
    let runStart = anchor;
    while (runStart > 0 && isToken(value[runStart - 1])) runStart--;
    let runEnd = anchor + 1;
    while (runEnd < value.length && isToken(value[runEnd])) runEnd++;
    const run = value.slice(runStart, runEnd);
    let occurrence = 0;
    for (let i = value.indexOf(run); i >= 0 && i < runStart; i = value.indexOf(run, i + 1)) occurrence++;
    let found = -1;
    for (let i = source.indexOf(run), seen = 0; i >= 0; i = source.indexOf(run, i + 1), seen++) {
      found = i;
      if (seen === occurrence) break;
    }
    if (found < 0) continue;
    return from + found + (anchor - runStart) + (point - anchor);
  }
  return undefined;
}
