import { describe, expect, it } from 'vitest';
import { locate, nodeAt, parseSource, positionAt, sourceLimits, type ParsedFile, type SourceDocument } from '../../engine/manifest/source.js';

const encode = (text: string) => new TextEncoder().encode(text);
const parse = (text: string | Uint8Array) => parseSource('m.yaml', typeof text === 'string' ? encode(text) : text);
const codes = (parsed: ParsedFile) => parsed.diagnostics.map((d) => d.code);

function only(parsed: ParsedFile): SourceDocument {
  expect(parsed.diagnostics).toEqual([]);
  expect(parsed.documents).toHaveLength(1);
  return parsed.documents[0]!;
}

function billionLaughs(levels: number): string {
  const lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  let previous = 'a';
  for (let i = 1; i < levels; i++) {
    const name = String.fromCharCode('a'.charCodeAt(0) + i);
    lines.push(`${name}: &${name} [${Array(9).fill(`*${previous}`).join(',')}]`);
    previous = name;
  }
  return lines.join('\n') + '\n';
}

describe('parseSource: valid input', () => {
  it('parses documents and keeps their plain values', () => {
    const parsed = parse('a: 1\nb: [x, y]\n---\nc: { d: true }\n');
    expect(parsed.diagnostics).toEqual([]);
    expect(parsed.documents.map((d) => d.value)).toEqual([{ a: 1, b: ['x', 'y'] }, { c: { d: true } }]);
    expect(parsed.documents.map((d) => d.index)).toEqual([0, 1]);
  });

  it('expands a few aliases', () => {
    expect(only(parse('base: &b { x: 1 }\ncopy: *b\n')).value).toEqual({ base: { x: 1 }, copy: { x: 1 } });
  });
});

describe('parseSource: YAML hazards', () => {
  it('reports a duplicate key at the second occurrence', () => {
    const parsed = parse('spec:\n  name: a\n  other: 1\n  name: b\n');
    expect(codes(parsed)).toEqual(['PB_YAML_DUPLICATE_KEY']);
    expect(parsed.diagnostics[0]!.start).toEqual({ line: 4, column: 3 });
    expect(parsed.diagnostics[0]!.message).toContain('key "name" appears twice');
    // The document is still checked, with the first value, as a reader sees it.
    expect(parsed.documents.map((d) => d.value)).toEqual([{ spec: { name: 'a', other: 1 } }]);
  });

  it('reports a tab used for indentation', () => {
    const parsed = parse('metadata:\n\tname: x\n');
    expect(codes(parsed)).toContain('PB_YAML_TAB');
    const tab = parsed.diagnostics.find((d) => d.code === 'PB_YAML_TAB')!;
    expect(tab.start.line).toBe(2);
    expect(tab.message).toBe('tab used for indentation; indent with spaces only');
  });

  it('stops a billion-laughs alias bomb (9 levels) quickly, pointing at the first alias', () => {
    const started = Date.now();
    const parsed = parse(billionLaughs(9));
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(codes(parsed)).toEqual(['PB_YAML_ALIAS_LIMIT']);
    expect(parsed.diagnostics[0]!.start).toEqual({ line: 2, column: 8 });
    expect(parsed.documents).toEqual([]);
  });

  it('rejects a file with more documents than the limit, and accepts the limit itself', () => {
    const docs = (n: number) => Array.from({ length: n }, (_, i) => `---\nn: ${i}\n`).join('');
    const over = parse(docs(sourceLimits.maxDocuments + 1));
    expect(codes(over)).toEqual(['PB_YAML_TOO_LARGE']);
    expect(over.documents).toEqual([]);
    const at = parse(docs(sourceLimits.maxDocuments));
    expect(at.diagnostics).toEqual([]);
    expect(at.documents).toHaveLength(sourceLimits.maxDocuments);
  });

  it('rejects a file larger than the byte limit', () => {
    const parsed = parse(`a: "${'x'.repeat(sourceLimits.maxFileBytes)}"\n`);
    expect(codes(parsed)).toEqual(['PB_YAML_TOO_LARGE']);
  });

  it('rejects a document larger than the document limit', () => {
    const parsed = parse(`a: "${'x'.repeat(sourceLimits.maxDocumentBytes)}"\n---\nb: 1\n`);
    expect(codes(parsed)).toEqual(['PB_YAML_TOO_LARGE']);
    expect(parsed.documents.map((d) => d.value)).toEqual([{ b: 1 }]);
  });

  it('rejects a NUL byte', () => {
    const parsed = parse('apiVersion: patchbay/v1\u0000\n');
    expect(codes(parsed)).toEqual(['PB_YAML_NOT_TEXT']);
    expect(parsed.diagnostics[0]!.message).toContain('NUL');
    expect(parsed.diagnostics[0]!.start).toEqual({ line: 1, column: 24 });
    const later = parse('a: 1\nb: 2\nc: x\u0000y\n');
    expect(later.diagnostics[0]!.start).toEqual({ line: 3, column: 5 });
  });

  it('rejects invalid UTF-8', () => {
    for (const bytes of [[0xff], [0xc3, 0x28], [0xe2, 0x82], [0xed, 0xa0, 0x80]]) {
      const parsed = parse(new Uint8Array([...encode('kind: '), ...bytes, 0x0a]));
      expect(codes(parsed)).toEqual(['PB_YAML_NOT_TEXT']);
      expect(parsed.diagnostics[0]!.start).toEqual({ line: 1, column: 1 });
    }
  });

  it('accepts nesting at the depth limit and rejects one level more, pointing at the too-deep value', () => {
    // `n` nested collections: the top-level mapping, then n - 1 flow sequences around a scalar.
    const flow = (n: number) => `a: ${'['.repeat(n - 1)}1${']'.repeat(n - 1)}\n`;
    expect(parse(flow(sourceLimits.maxDepth)).diagnostics).toEqual([]);
    const over = parse(flow(sourceLimits.maxDepth + 1));
    expect(codes(over)).toEqual(['PB_YAML_TOO_DEEP']);
    // The mapping is level 1, so the first `[` is level 2: level 65 is the 64th `[`.
    expect(over.diagnostics[0]!.start).toEqual({ line: 1, column: 4 + sourceLimits.maxDepth - 1 });
  });

  it('rejects 200-level nested block mappings', () => {
    const text = Array.from({ length: 200 }, (_, i) => `${'  '.repeat(i)}k${i}:`).join('\n') + ' v\n';
    expect(codes(parse(text))).toEqual(['PB_YAML_TOO_DEEP']);
  });

  it('reports absurd flow nesting (5,000 levels) as too deep, once', () => {
    for (const text of [`a: ${'['.repeat(5000)}${']'.repeat(5000)}\n`, `a: ${'{a: '.repeat(3000)}1${'}'.repeat(3000)}\n`]) {
      const parsed = parse(text);
      expect(codes(parsed)).toEqual(['PB_YAML_TOO_DEEP']);
      expect(parsed.diagnostics[0]!.message).not.toContain('call stack');
    }
  });

  it('warns about a file without documents', () => {
    for (const text of ['', '# only a comment\n', '---\n']) {
      const parsed = parse(text);
      expect(codes(parsed)).toEqual(['PB_YAML_EMPTY']);
      expect(parsed.diagnostics[0]!.severity).toBe('warning');
    }
  });

  it('ignores an empty document, such as a trailing ---', () => {
    for (const text of ['a: 1\n---\n', '---\na: 1\n---\n', 'a: 1\n--- # end\n...\n']) {
      const parsed = parse(text);
      expect(parsed.diagnostics).toEqual([]);
      expect(parsed.documents.map((d) => d.value)).toEqual([{ a: 1 }]);
    }
  });

  it('keeps the good documents next to a broken one', () => {
    const parsed = parse('a: 1\n---\nb: [unclosed\n---\nc: 3\n');
    expect(codes(parsed).every((c) => c === 'PB_YAML_SYNTAX')).toBe(true);
    expect(parsed.diagnostics.length).toBeGreaterThanOrEqual(1);
    expect(parsed.documents.map((d) => d.value)).toEqual([{ a: 1 }, { c: 3 }]);
  });

  it('gives every diagnostic a 1-based position inside the file', () => {
    const inputs = ['a: [1, 2\n', 'a: "x\n', 'a:\n  - b\n c: 1\n', ': : :\n', '{{ }}\n', 'a: *nope\n', '%YAML 9.9\n---\na: 1\n'];
    for (const text of inputs) {
      const parsed = parse(text);
      const lines = text.split('\n').length;
      for (const d of parsed.diagnostics) {
        expect(d.start.line).toBeGreaterThanOrEqual(1);
        expect(d.start.column).toBeGreaterThanOrEqual(1);
        expect(d.start.line).toBeLessThanOrEqual(lines);
        expect(d.code).toMatch(/^PB_YAML_/);
      }
    }
  });
});

describe('locate and positionAt', () => {
  const text = [
    'apiVersion: patchbay/v1', // 1
    'spec:', // 2
    '  steps:', // 3
    '    - id: first', // 4
    '      call: acme.notes.create', // 5
    '      with: { text: "hi" }', // 6
    '  shared: &s { a: 1 }', // 7
    '  copy: *s', // 8
  ].join('\n') + '\n';
  const source = only(parse(text));
  const at = (offset: number) => positionAt(source.lineCounter, offset);

  it('points at the value by default and at the key on request', () => {
    const value = locate(source, ['spec', 'steps', 0, 'call']);
    expect(at(value.start)).toEqual({ line: 5, column: 13 });
    expect(at(value.end)).toEqual({ line: 5, column: 30 });
    expect(text.slice(value.start, value.end)).toBe('acme.notes.create');
    const key = locate(source, ['spec', 'steps', 0, 'call'], 'key');
    expect(at(key.start)).toEqual({ line: 5, column: 7 });
    expect(text.slice(key.start, key.end)).toBe('call');
  });

  it('finds values inside flow mappings and sequence items', () => {
    const inner = locate(source, ['spec', 'steps', 0, 'with', 'text']);
    expect(text.slice(inner.start, inner.end)).toBe('"hi"');
    expect(at(inner.start)).toEqual({ line: 6, column: 21 });
    const item = locate(source, ['spec', 'steps', 0]);
    expect(at(item.start)).toEqual({ line: 4, column: 7 });
  });

  it('falls back to the deepest existing node for a missing path', () => {
    const missing = locate(source, ['spec', 'steps', 0, 'nope', 'deeper']);
    expect(at(missing.start)).toEqual({ line: 4, column: 7 });
    const beyond = locate(source, ['spec', 'steps', 7]);
    expect(at(beyond.start)).toEqual(at(locate(source, ['spec', 'steps']).start));
  });

  it('follows aliases', () => {
    const through = locate(source, ['spec', 'copy', 'a']);
    expect(at(through.start)).toEqual({ line: 7, column: 19 });
    expect(nodeAt(source, ['spec', 'copy', 'a'])).toMatchObject({ value: 1 });
  });

  it('returns undefined from nodeAt for a missing path', () => {
    expect(nodeAt(source, ['spec', 'nothing'])).toBeUndefined();
    expect(nodeAt(source, ['apiVersion', 'deeper'])).toBeUndefined();
  });

  it('counts lines the same with CRLF line ends', () => {
    const crlf = only(parse(text.replaceAll('\n', '\r\n')));
    const value = locate(crlf, ['spec', 'steps', 0, 'call']);
    expect(positionAt(crlf.lineCounter, value.start)).toEqual({ line: 5, column: 13 });
  });
});
