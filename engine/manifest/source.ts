import {
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  parseAllDocuments,
  Scalar,
  type Document,
  type Node,
  type YAMLMap,
} from 'yaml';
import { makeDiagnostic, type Diagnostic, type Position } from '../diag/diagnostic.js';

/** Limits that keep a hostile file from exhausting the validator or the daemon. */
export const sourceLimits = {
  /** Largest file read, in bytes. */
  maxFileBytes: 1024 * 1024,
  /** Largest single document, in bytes of source text. */
  maxDocumentBytes: 256 * 1024,
  /** Most documents in one file. */
  maxDocuments: 200,
  /** Most alias expansions in one document (defeats "billion laughs"). */
  maxAliasCount: 100,
  /** Deepest nesting of mappings and sequences. */
  maxDepth: 64,
} as const;

/** One YAML document of a file, with what is needed to point at any of its nodes. */
export interface SourceDocument {
  readonly file: string;
  /** 0-based index of the document in its file. */
  readonly index: number;
  readonly doc: Document.Parsed;
  readonly lineCounter: LineCounter;
  /** The whole file's text (positions are offsets into it). */
  readonly text: string;
  /** The plain JavaScript value of the document; undefined when it could not be built. */
  readonly value: unknown;
}

export interface ParsedFile {
  readonly file: string;
  readonly text: string;
  readonly lineCounter: LineCounter;
  readonly documents: SourceDocument[];
  readonly diagnostics: Diagnostic[];
}

/** Converts a 0-based offset to a 1-based line and column. */
export function positionAt(lineCounter: LineCounter, offset: number): Position {
  const { line, col } = lineCounter.linePos(offset);
  return { line, column: col };
}

// Duplicate keys are not among them: `findDuplicateKeys` reports those (see parseSource).
const yamlCodeMap: Record<string, 'PB_YAML_TAB'> = {
  TAB_AS_INDENT: 'PB_YAML_TAB',
};

/** Returns the first node nested deeper than `limit` levels, or undefined. Iterative: no stack risk. */
function tooDeep(root: unknown, limit: number): Node | undefined {
  const stack: { node: unknown; depth: number }[] = [{ node: root, depth: 1 }];
  while (stack.length > 0) {
    const { node, depth } = stack.pop()!;
    if (!isMap(node) && !isSeq(node)) continue;
    if (depth > limit) return node;
    const children = isMap(node) ? node.items.map((pair) => pair.value) : node.items;
    for (let i = children.length - 1; i >= 0; i--) stack.push({ node: children[i], depth: depth + 1 });
  }
  return undefined;
}

/**
 * Parses a file's bytes into YAML documents with positions, collecting every YAML-level
 * problem (syntax, duplicate keys, tabs, alias bombs, size and depth limits, binary data)
 * as diagnostics instead of throwing. Documents with errors are dropped; the others are kept,
 * so one broken document does not hide problems in its neighbours.
 */
export function parseSource(file: string, bytes: Uint8Array): ParsedFile {
  const lineCounter = new LineCounter();
  const diagnostics: Diagnostic[] = [];
  const origin: Position = { line: 1, column: 1 };
  const empty = (text: string): ParsedFile => ({ file, text, lineCounter, documents: [], diagnostics });

  if (bytes.byteLength > sourceLimits.maxFileBytes) {
    diagnostics.push(
      makeDiagnostic(
        'PB_YAML_TOO_LARGE',
        `file is ${bytes.byteLength} bytes, more than the ${sourceLimits.maxFileBytes}-byte limit; split it into several files`,
        file,
        origin,
      ),
    );
    return empty('');
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    // The decoder's own message says nothing more useful than "invalid data".
    diagnostics.push(makeDiagnostic('PB_YAML_NOT_TEXT', 'file is not UTF-8 text; manifests must be YAML text', file, origin));
    return empty('');
  }
  const nul = text.indexOf('\u0000');
  if (nul >= 0) {
    // Positions need line starts; count them up to the NUL without parsing the rest.
    lineCounter.addNewLine(0);
    for (let i = text.indexOf('\n'); i >= 0 && i < nul; i = text.indexOf('\n', i + 1)) lineCounter.addNewLine(i + 1);
    const at = positionAt(lineCounter, nul);
    diagnostics.push(makeDiagnostic('PB_YAML_NOT_TEXT', 'file contains a NUL byte; manifests must be YAML text', file, at));
    return empty(text);
  }

  let docs: Document.Parsed[];
  try {
    // logLevel 'error': the parser's warnings (collection keys stringified) would go to stderr.
    // Duplicate keys are found by `findDuplicateKeys` (the parser's own check is quadratic in the
    // size of a mapping); merge keys (`<<: *base`) are honoured as in YAML 1.1; logLevel 'error'
    // keeps the parser's warnings off stderr.
    docs = parseAllDocuments(text, {
      lineCounter,
      uniqueKeys: false,
      merge: true,
      prettyErrors: false,
      strict: true,
      logLevel: 'error',
    }) as Document.Parsed[];
  } catch (error) {
    // The parser recurses per nesting level: absurd nesting can overflow the stack.
    if (error instanceof RangeError) {
      diagnostics.push(
        makeDiagnostic('PB_YAML_TOO_DEEP', `values are nested too deeply (limit ${sourceLimits.maxDepth} levels)`, file, origin),
      );
      return empty(text);
    }
    throw error;
  }
  if (!Array.isArray(docs)) docs = [docs as Document.Parsed];

  const documents: SourceDocument[] = [];
  if (docs.length > sourceLimits.maxDocuments) {
    diagnostics.push(
      makeDiagnostic(
        'PB_YAML_TOO_LARGE',
        `file holds ${docs.length} documents, more than the limit of ${sourceLimits.maxDocuments}; split it`,
        file,
        origin,
      ),
    );
    return empty(text);
  }

  docs.forEach((doc, index) => {
    let broken = false;
    let overflowReported = false;
    const unquotedLines = new Set<number>();
    for (const error of doc.errors) {
      broken = true;
      // The parser catches its own stack overflow on absurd flow nesting and reports it as an error.
      const overflow = /call stack/i.test(error.message);
      const code = overflow ? 'PB_YAML_TOO_DEEP' : (yamlCodeMap[error.code] ?? 'PB_YAML_SYNTAX');
      const start = positionAt(lineCounter, error.pos[0]);
      const end = positionAt(lineCounter, error.pos[1]);
      if (overflow && overflowReported) continue;
      overflowReported ||= overflow;
      // `text: {{ $join(a, ', ') }}` is a flow-mapping syntax error to YAML: say what it really is.
      const line = text.slice(text.lastIndexOf('\n', error.pos[0]) + 1, lineEnd(text, error.pos[0]));
      const unquoted = /(^|:\s|^\s*-\s|\[\s*|,\s*)\{\{/.exec(line);
      if (!overflow && unquoted) {
        const lineStart = text.lastIndexOf('\n', error.pos[0]) + 1;
        const at = lineStart + unquoted.index + unquoted[0].indexOf('{{');
        if (!unquotedLines.has(lineStart)) {
          unquotedLines.add(lineStart);
          diagnostics.push(
            makeDiagnostic(
              'PB_YAML_UNQUOTED_EXPRESSION',
              'this {{ }} is not quoted, so YAML reads it as a mapping and fails; put the value in quotes: "{{ … }}"',
              file,
              positionAt(lineCounter, at),
            ),
          );
        }
        continue;
      }
      const message = overflow
        ? `values are nested too deeply (limit ${sourceLimits.maxDepth} levels); flatten this structure`
        : describeYamlError(error.code, error.message);
      diagnostics.push(makeDiagnostic(code, message, file, start, end));
    }
    const startOffset = doc.range[0];
    const docStart = positionAt(lineCounter, startOffset);
    if (doc.range[2] - startOffset > sourceLimits.maxDocumentBytes) {
      diagnostics.push(
        makeDiagnostic(
          'PB_YAML_TOO_LARGE',
          `document is ${doc.range[2] - startOffset} bytes, more than the ${sourceLimits.maxDocumentBytes}-byte limit`,
          file,
          docStart,
        ),
      );
      broken = true;
    }
    if (broken) return;
    // A duplicate key leaves a well-formed document: the first value is kept, and the rest of the
    // document is still checked, so every problem is reported in one pass.
    for (const duplicate of findDuplicateKeys(doc.contents)) {
      diagnostics.push(
        makeDiagnostic(
          'PB_YAML_DUPLICATE_KEY',
          `key "${duplicate.key.slice(0, 80)}" appears twice in the same mapping; YAML would keep only one — remove or rename the other`,
          file,
          positionAt(lineCounter, duplicate.start),
          positionAt(lineCounter, duplicate.end),
        ),
      );
    }
    for (const unquoted of findUnquotedExpressions(doc.contents, text)) {
      diagnostics.push(
        makeDiagnostic(
          'PB_YAML_UNQUOTED_EXPRESSION',
          'this {{ }} is not quoted, so YAML reads it as a mapping; put the value in quotes: "{{ … }}"',
          file,
          positionAt(lineCounter, unquoted.start),
          positionAt(lineCounter, unquoted.end),
        ),
      );
    }
    if (isEmptyDocument(doc)) {
      // An empty document (a trailing `---`, or a file of comments) is harmless.
      return;
    }
    const deep = tooDeep(doc.contents, sourceLimits.maxDepth);
    if (deep) {
      const at = deep.range ? positionAt(lineCounter, deep.range[0]) : docStart;
      diagnostics.push(
        makeDiagnostic('PB_YAML_TOO_DEEP', `values are nested deeper than ${sourceLimits.maxDepth} levels; flatten this structure`, file, at),
      );
      return;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: sourceLimits.maxAliasCount });
    } catch (error) {
      if (error instanceof Error && /merge sources/i.test(error.message)) {
        const merge = firstMergeKey(doc.contents);
        const at = merge?.range ? positionAt(lineCounter, merge.range[0]) : docStart;
        diagnostics.push(
          makeDiagnostic('PB_YAML_SYNTAX', 'a merge key (<<) must refer to a mapping or a list of mappings, such as <<: *defaults', file, at),
        );
        return;
      }
      if (error instanceof ReferenceError || (error instanceof Error && /excessive alias/i.test(error.message))) {
        const alias = firstAlias(doc.contents);
        const at = alias?.range ? positionAt(lineCounter, alias.range[0]) : docStart;
        diagnostics.push(
          makeDiagnostic(
            'PB_YAML_ALIAS_LIMIT',
            `aliases expand to too many nodes (limit ${sourceLimits.maxAliasCount}); this looks like an alias bomb — write the values out`,
            file,
            at,
          ),
        );
        return;
      }
      if (error instanceof RangeError) {
        diagnostics.push(makeDiagnostic('PB_YAML_TOO_DEEP', 'values are nested too deeply', file, docStart));
        return;
      }
      throw error;
    }
    documents.push({ file, index, doc, lineCounter, text, value });
  });

  if (docs.length === 0 || docs.every((d) => isEmptyDocument(d) && d.errors.length === 0)) {
    diagnostics.push(makeDiagnostic('PB_YAML_EMPTY', 'file holds no YAML document', file, origin));
  }
  return { file, text, lineCounter, documents, diagnostics };
}

function lineEnd(text: string, from: number): number {
  const end = text.indexOf('\n', from);
  return end < 0 ? text.length : end;
}

/**
 * Finds keys repeated within one mapping (linear: a Set per mapping) and removes the repeats,
 * keeping the first value as a reader sees it first, so that checking the rest of the document
 * does not cascade from a value the author did not mean to be read.
 */
function findDuplicateKeys(root: unknown): { key: string; start: number; end: number }[] {
  const found: { key: string; start: number; end: number }[] = [];
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isMap(node)) {
      // Keys are compared as the JavaScript object will see them: `1` and "1" are one key.
      const seenKeys = new Set<unknown>();
      node.items = node.items.filter((pair) => {
        const key = isScalar(pair.key) ? String(pair.key.value) : pair.key;
        if (!seenKeys.has(key)) {
          seenKeys.add(key);
          return true;
        }
        const range = (pair.key as { range?: [number, number, number] } | null)?.range;
        if (range) found.push({ key: String(key), start: range[0], end: range[1] });
        return false;
      });
      for (const pair of node.items) stack.push(pair.value);
    } else if (isSeq(node)) {
      stack.push(...node.items);
    }
  }
  return found.sort((a, b) => a.start - b.start);
}

/**
 * Finds `key: {{ expr }}` written without quotes: YAML reads it as a flow mapping whose only key
 * is another flow mapping, and the expression silently disappears.
 */
function findUnquotedExpressions(root: unknown, text: string): { start: number; end: number }[] {
  const found: { start: number; end: number }[] = [];
  const isUnquoted = (node: unknown): node is YAMLMap & { range: [number, number, number] } => {
    if (!isMap(node) || !node.flow || node.items.length !== 1 || !node.range) return false;
    const [first] = node.items;
    return isMap(first?.key) && first.key.flow === true && first.value === null;
  };
  // The mapping is replaced by the string the author meant, so the expression is still checked
  // and nothing else reports the value as a mapping.
  const asString = (node: YAMLMap & { range: [number, number, number] }) => {
    found.push({ start: node.range[0], end: node.range[1] });
    const scalar = new Scalar(text.slice(node.range[0], node.range[1]));
    scalar.type = Scalar.PLAIN;
    scalar.range = [node.range[0], node.range[1], node.range[2]];
    return scalar;
  };
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isMap(node)) {
      for (const pair of node.items) {
        if (isUnquoted(pair.value)) pair.value = asString(pair.value);
        else stack.push(pair.value);
      }
    } else if (isSeq(node)) {
      node.items = node.items.map((item) => (isUnquoted(item) ? asString(item) : item));
      stack.push(...node.items);
    }
  }
  return found.sort((a, b) => a.start - b.start);
}

/** True for a document with no content: nothing at all, or the empty scalar after a bare `---`. */
function isEmptyDocument(doc: Document.Parsed): boolean {
  const contents = doc.contents as unknown;
  return contents === null || (isScalar(contents) && contents.value === null && (contents as { source?: string }).source === '');
}

function firstMergeKey(root: unknown): Node | undefined {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isMap(node)) {
      for (const pair of node.items) {
        if (isScalar(pair.key) && (pair.key.value === '<<' || (pair.key as { source?: string }).source === '<<')) return pair.key;
        stack.push(pair.value);
      }
    } else if (isSeq(node)) {
      stack.push(...node.items);
    }
  }
  return undefined;
}

function firstAlias(node: unknown): Node | undefined {
  if (isAlias(node)) return node;
  if (isMap(node)) {
    for (const item of node.items) {
      const found = firstAlias(item.value);
      if (found) return found;
    }
  } else if (isSeq(node)) {
    for (const item of node.items) {
      const found = firstAlias(item);
      if (found) return found;
    }
  }
  return undefined;
}

function describeYamlError(code: string, message: string): string {
  // The parser's messages end with a source excerpt after a colon and newline; keep the first line.
  const first = message.split('\n')[0]!.replace(/ at line \d+, column \d+$/, '').replace(/:$/, '');
  switch (code) {
    case 'TAB_AS_INDENT':
      return 'tab used for indentation; indent with spaces only';
    default:
      return first;
  }
}

/** What part of a mapping entry a diagnostic points at. */
export type Anchor = 'key' | 'value';

/** A found node and its source range (offsets). */
export interface Located {
  readonly start: number;
  readonly end: number;
}

/**
 * Finds the source range of the value at `path` (keys and indices, as in a JSON pointer) in a
 * document. With `anchor: 'key'` the range is the mapping key's, when the last step is a key.
 * Walks as deep as the path exists and returns the deepest range found, so a diagnostic about a
 * missing child still points at its parent.
 */
export function locate(source: SourceDocument, path: readonly (string | number)[], anchor: Anchor = 'value'): Located {
  let node: unknown = source.doc.contents;
  let best: Located = rangeOf(node) ?? { start: source.doc.range[0], end: source.doc.range[0] };
  for (let i = 0; i < path.length; i++) {
    const segment = path[i]!;
    if (isAlias(node)) node = node.resolve(source.doc);
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((item) => isPair(item) && isScalar(item.key) && String(item.key.value) === String(segment));
      if (!pair) return best;
      const keyRange = rangeOf(pair.key);
      if (last && anchor === 'key' && keyRange) return keyRange;
      const valueRange = rangeOf(pair.value);
      best = valueRange ?? keyRange ?? best;
      node = pair.value;
      if (!valueRange) return keyRange ?? best;
    } else if (isSeq(node)) {
      const item = node.items[Number(segment)];
      const itemRange = rangeOf(item);
      if (!itemRange) return best;
      best = itemRange;
      node = item;
    } else {
      return best;
    }
  }
  return best;
}

function rangeOf(node: unknown): Located | undefined {
  if (node && typeof node === 'object' && 'range' in node) {
    const range = (node as { range?: [number, number, number] | null }).range;
    if (range) return { start: range[0], end: range[1] };
  }
  return undefined;
}

/** The source node at `path`, or undefined (used to read scalar styles and exact offsets). */
export function nodeAt(source: SourceDocument, path: readonly (string | number)[]): unknown {
  let node: unknown = source.doc.contents;
  for (const segment of path) {
    if (isAlias(node)) node = node.resolve(source.doc);
    if (isMap(node)) {
      const pair = node.items.find((item) => isScalar(item.key) && String(item.key.value) === String(segment));
      if (!pair) return undefined;
      node = pair.value;
    } else if (isSeq(node)) {
      node = node.items[Number(segment)];
    } else {
      return undefined;
    }
  }
  return node;
}
