import { describe, expect, it } from 'vitest';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, Scalar } from 'yaml';
import { mapValueOffset } from '../../engine/manifest/scalar-offsets.js';
import { mulberry32 } from '../support/random.js';

const marker = 'evnt';

/** Parses `text` and returns the scalar under key `v` (or the root scalar); fails on any YAML error. */
function scalarIn(text: string): Scalar {
  const doc = parseDocument(text, { lineCounter: new LineCounter(), strict: true, uniqueKeys: true });
  expect(doc.errors.map((e) => e.message)).toEqual([]);
  const node = isMap(doc.contents) ? doc.get('v', true) : doc.contents;
  if (!isScalar(node)) throw new Error(`no scalar in ${JSON.stringify(text)}`);
  return node;
}

function occurrences(haystack: string, needle: string, from = 0, to = haystack.length): number[] {
  const found: number[] = [];
  for (let i = haystack.indexOf(needle, from); i >= 0 && i + needle.length <= to; i = haystack.indexOf(needle, i + 1)) found.push(i);
  return found;
}

/**
 * Maps every marker in the scalar's value and expects the k-th to land on the k-th marker of
 * the scalar's source (after `skip` markers that are not part of the value, as in a header comment).
 */
function expectMarkersMapped(text: string, scalar: Scalar, expectedCount: number, skip = 0): void {
  const value = String(scalar.value);
  const inValue = occurrences(value, marker);
  expect(inValue).toHaveLength(expectedCount);
  const mapped = inValue.map((offset) => mapValueOffset(text, scalar, value, offset));
  for (const offset of mapped) expect(text.slice(offset, offset + marker.length)).toBe(marker);
  const inSource = occurrences(text, marker, scalar.range![0], scalar.range![1]).slice(skip);
  expect(mapped).toEqual(inSource);
}

function check(text: string, expectedCount: number, skip = 0): Scalar {
  const scalar = scalarIn(text);
  expectMarkersMapped(text, scalar, expectedCount, skip);
  return scalar;
}

const crlf = (text: string): string => text.replace(/\n/g, '\r\n');

describe.each([
  ['LF', (text: string) => text],
  ['CRLF', crlf],
])('mapValueOffset with %s line breaks', (_name, eol) => {
  it('maps plain scalars, on one line and folded over several', () => {
    expect(check(eol('v: call evnt and evnt again\n'), 2).type).toBe(Scalar.PLAIN);
    const folded = check(
      eol(['v: first evnt', '  second evnt line   ', '', '  after blank evnt', '     more evnt', '', '', '  last evnt', 'w: 1', ''].join('\n')),
      5,
    );
    expect(folded.value).toBe('first evnt second evnt line\nafter blank evnt more evnt\n\nlast evnt');
    check(eol('v:\n  evnt x\n  evnt\n  y evnt # evnt\n'), 3);
  });

  it('maps plain scalars in sequences and flow collections', () => {
    const text = eol('v: [ "a evnt", \'b evnt\', c evnt ]\n');
    const doc = parseDocument(text);
    const seq = doc.get('v', true);
    if (!isSeq(seq)) throw new Error('no sequence');
    for (const item of seq.items) {
      if (!isScalar(item)) throw new Error('no scalar');
      expectMarkersMapped(text, item, 1);
    }
  });

  it("maps single-quoted scalars with '' escapes, folded lines and leading blanks", () => {
    expect(check(eol("v: 'it''s evnt, ''evnt'' and it''s evnt'\n"), 3).type).toBe(Scalar.QUOTE_SINGLE);
    const folded = check(eol("v: '  two ''evnt''\n    lines evnt  \n\n    it''s evnt'\n"), 3);
    expect(folded.value).toBe("  two 'evnt' lines evnt\nit's evnt");
  });

  it('maps double-quoted scalars across escapes, folds and escaped line breaks', () => {
    const escapes = check(eol('v: "a \\"evnt\\" \\\\ evnt \\u00e9 evnt\\nevnt \\t\\x41evnt \\U0001F600evnt\\/evnt"\n'), 7);
    expect(escapes.type).toBe(Scalar.QUOTE_DOUBLE);
    expect(escapes.value).toBe('a "evnt" \\ evnt é evnt\nevnt \tAevnt 😀evnt/evnt');
    const folded = check(eol('v: "first evnt \\\n    joined evnt\n  folded evnt   \n\n  para evnt \\\n  evnt"\n'), 5);
    expect(folded.value).toBe('first evnt joined evnt folded evnt\npara evnt evnt');
  });

  it('maps literal blocks, landing on the right one of several identical lines', () => {
    const text = eol('v: |\n  evnt\n  evnt\n  x evnt\n  evnt\nw: 1\n');
    expect(check(text, 4).type).toBe(Scalar.BLOCK_LITERAL);
    check(eol('v: |\n\n  evnt\n\n  evnt\n     evnt indented\n'), 3);
  });

  it('maps literal blocks with indentation and chomping indicators and a header comment', () => {
    const stripped = check(eol('v: |2- # evnt in a comment\n     evnt more-indented\n    evnt\n  evnt\n\n'), 3, 1);
    expect(stripped.value).toBe('   evnt more-indented\n  evnt\nevnt');
    const kept = check(eol('v: |+2\n    evnt\n  evnt\n\n\nw: evnt\n'), 2);
    expect(kept.value).toBe('  evnt\nevnt\n\n\n');
    // The parent's indentation is not on the node: a nested block with an indicator still maps.
    const nested = eol('list:\n  - key: |1-\n       evnt\n      evnt\n    other: |2\n        evnt\n       evnt\n');
    const doc = parseDocument(nested);
    for (const path of [['list', 0, 'key'], ['list', 0, 'other']]) {
      const node = doc.getIn(path, true);
      if (!isScalar(node)) throw new Error('no scalar');
      expectMarkersMapped(nested, node, 2);
    }
    // A root block scalar.
    check(eol('--- |2\n   evnt\n  evnt\n'), 2);
  });

  it('maps folded blocks, with more-indented lines, empty lines and chomping', () => {
    const folded = check(
      eol('v: >+ # evnt\n  folded evnt\n  line evnt\n\n    more indented evnt\n    evnt\n  back evnt\n  evnt\n\n\nw: 1\n'),
      6,
      1,
    );
    expect(folded.type).toBe(Scalar.BLOCK_FOLDED);
    expect(folded.value).toBe('folded evnt line evnt\n\n  more indented evnt\n  evnt\nback evnt evnt\n\n\n');
    check(eol('v: >-\n  evnt\n  evnt\n\n  evnt\n'), 3);
    check(eol('v: >2\n    evnt\n  evnt\n  evnt\n'), 3);
  });

  it('maps scalars after unicode: emoji and accented letters', () => {
    check(eol('v: 😀 é naïve evnt 🎉 evnt\n'), 2);
    check(eol('v: "😀 é \\u00e9 evnt 🎉\\n evnt"\n'), 2);
    check(eol("v: '😀 é evnt'\n"), 1);
    check(eol('v: |\n  😀 é\n  evnt 🎉 evnt\n'), 2);
    check(eol('v: >\n  😀 é\n  evnt 🎉 evnt\n'), 2);
  });

  it('maps scalars with a tag or an anchor', () => {
    check(eol('v: !!str &name "x evnt"\n'), 1);
    check(eol('v: &name |\n  evnt\n'), 1);
  });
});

describe('mapValueOffset at the edges', () => {
  it('maps the end of the value to just after its last character', () => {
    const plain = 'v: ab evnt # c\n';
    expect(mapValueOffset(plain, scalarIn(plain), 'ab evnt', 7)).toBe(plain.indexOf(' #'));
    const quoted = 'v: "ab\\tevnt"\n';
    expect(mapValueOffset(quoted, scalarIn(quoted), 'ab\tevnt', 7)).toBe(quoted.lastIndexOf('"'));
    const stripped = 'v: |-\n  evnt\n\nw: 1\n';
    expect(mapValueOffset(stripped, scalarIn(stripped), 'evnt', 4)).toBe(stripped.indexOf('evnt') + 4);
    const clipped = 'v: |\n  evnt\nw: 1\n';
    expect(mapValueOffset(clipped, scalarIn(clipped), 'evnt\n', 5)).toBe(clipped.indexOf('w:'));
  });

  it('maps characters made by folds and escapes to the line break or backslash that made them', () => {
    const plain = 'v: a\n  b\n';
    expect(mapValueOffset(plain, scalarIn(plain), 'a b', 1)).toBe(plain.indexOf('\n'));
    const quoted = 'v: "a\\nb"\n';
    expect(mapValueOffset(quoted, scalarIn(quoted), 'a\nb', 1)).toBe(quoted.indexOf('\\'));
    const literal = 'v: |\n  a\n  b\n';
    expect(mapValueOffset(literal, scalarIn(literal), 'a\nb\n', 1)).toBe(literal.indexOf('a') + 1);
  });

  it('clamps offsets outside the value and never throws', () => {
    const text = 'v: "x evnt"\n';
    const scalar = scalarIn(text);
    const [start, end] = scalar.range!;
    for (const offset of [-5, Number.NaN, Number.POSITIVE_INFINITY, 1e9, 2.5]) {
      const mapped = mapValueOffset(text, scalar, 'x evnt', offset);
      expect(mapped).toBeGreaterThanOrEqual(start);
      expect(mapped).toBeLessThanOrEqual(end);
    }
    expect(mapValueOffset(text, scalar, 'x evnt', -5)).toBe(start + 1);
    // A text shorter than the node's range (a caller bug) still gives an offset in range.
    const short = mapValueOffset(text.slice(0, 6), scalar, 'x evnt', 3);
    expect(short).toBeGreaterThanOrEqual(start);
    expect(short).toBeLessThanOrEqual(end);
    const detached = new Scalar('x');
    expect(mapValueOffset(text, detached, 'x', 0)).toBe(0);
  });

  it('falls back to the surrounding text when the value is not what the source decodes to', () => {
    const text = 'v: |\n  evnt\n  evnt\n  x evnt\n';
    const scalar = scalarIn(text);
    const expected = occurrences(text, marker);
    // A value that differs before the point (as from a document with errors) is located by occurrence.
    const changed = 'z' + String(scalar.value);
    const mapped = occurrences(changed, marker).map((offset) => mapValueOffset(text, scalar, changed, offset));
    expect(mapped).toEqual(expected);
    // An unknown style: the same.
    const unknown = scalarIn(text);
    unknown.type = 'UNKNOWN' as Scalar['type'];
    const value = String(unknown.value);
    expect(occurrences(value, marker).map((offset) => mapValueOffset(text, unknown, value, offset))).toEqual(expected);
    // Nothing to find: the scalar's start.
    expect(mapValueOffset(text, unknown, 'nothing like it', 3)).toBe(scalar.range![0]);
  });
});


describe('mapValueOffset on random strings', () => {
  const random = mulberry32(20240611);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const fragments = ['a', 'b', 'z', '0', '9', ' ', '  ', '.', ',', '(', ')', '$', '{', '}', '-', '_', '/', 'é', '😀', "'", '"', '\\', ':', '#', marker];
  const randomValue = (): string => {
    let value = '';
    const length = 1 + Math.floor(random() * 12);
    for (let i = 0; i < length; i++) value += pick(fragments);
    return value.includes(marker) ? value : value + marker;
  };

  /** Writes a value as a double-quoted scalar, escaping characters at random (never the marker's). */
  const doubleQuoted = (value: string): string => {
    let out = '';
    for (let i = 0; i < value.length; i++) {
      if (value.startsWith(marker, i)) {
        out += marker;
        i += marker.length - 1;
        continue;
      }
      const c = value[i]!;
      const code = c.codePointAt(0)!;
      if (c === '"' || c === '\\') out += '\\' + c;
      else if (code > 0xffff) {
        out += random() < 0.5 ? String.fromCodePoint(code) : `\\U${code.toString(16).padStart(8, '0')}`;
        i++;
      } else if (random() < 0.3) {
        const hex = code.toString(16);
        out += code < 256 && random() < 0.5 ? `\\x${hex.padStart(2, '0')}` : `\\u${hex.padStart(4, '0')}`;
      }
      else if (c === ' ' && random() < 0.2) out += '\\ ';
      else if (c === '/' && random() < 0.5) out += '\\/';
      else out += c;
    }
    return `"${out}"`;
  };

  const styles: Record<string, (value: string) => string> = {
    plain: (value) => value,
    single: (value) => `'${value.replace(/'/g, "''")}'`,
    double: doubleQuoted,
  };

  it.each(Object.keys(styles))('hits every marker of %s single-line strings', (style) => {
    let checked = 0;
    for (let round = 0; round < 400; round++) {
      const value = randomValue();
      const text = `v: ${styles[style]!(value)}\n`;
      const doc = parseDocument(text, { strict: true });
      const node = isMap(doc.contents) ? doc.get('v', true) : undefined;
      // Plain scalars cannot hold every string: skip those YAML reads differently.
      if (doc.errors.length > 0 || !isScalar(node) || node.value !== value) {
        expect(style).toBe('plain');
        continue;
      }
      checked++;
      for (const offset of occurrences(value, marker)) {
        const mapped = mapValueOffset(text, node, value, offset);
        expect(text.slice(mapped, mapped + marker.length), JSON.stringify({ text, offset })).toBe(marker);
      }
      // Every character that is written as itself maps onto itself; an escaped one onto its backslash.
      for (let i = 0; i < value.length; i++) {
        const mapped = mapValueOffset(text, node, value, i);
        expect([value[i], '\\'], JSON.stringify({ text, i })).toContain(text[mapped]);
      }
    }
    expect(checked).toBeGreaterThan(100);
  });

  it('hits every marker of random multi-line plain, double-quoted and block scalars', () => {
    const words = ['a', 'bb', 'x.y', '$v', '(1)', 'é', '😀', marker, marker];
    for (let round = 0; round < 300; round++) {
      const lines: string[] = [];
      const lineCount = 1 + Math.floor(random() * 5);
      for (let l = 0; l < lineCount; l++) {
        const count = 1 + Math.floor(random() * 4);
        const line: string[] = [];
        for (let w = 0; w < count; w++) line.push(pick(words));
        lines.push(random() < 0.15 ? '' : line.join(' '));
      }
      if (!lines.some((line) => line.includes(marker))) lines.push(marker);
      if (lines[0] === '') lines[0] = 'a';
      const indent = () => ' '.repeat(2 + Math.floor(random() * 3));
      const header = pick(['|', '|-', '|+', '>', '>-', '>+', '|2', '>2-']);
      const variants = [
        `v: ${lines.map((line, i) => (i === 0 ? line : line === '' ? '' : indent() + line)).join('\n')}\n`,
        `v: "${lines.map((line, i) => (i === 0 ? line : indent() + line)).join(random() < 0.5 ? '\n' : ' \\\n')}"\n`,
        `v: ${header}\n${lines.map((line) => (line === '' ? '' : '  ' + (random() < 0.2 ? ' ' : '') + line)).join('\n')}\n`,
      ];
      for (const variant of variants) {
        for (const text of [variant, crlf(variant)]) {
          const doc = parseDocument(text, { strict: true });
          const node = isMap(doc.contents) ? doc.get('v', true) : undefined;
          if (doc.errors.length > 0 || !isScalar(node) || typeof node.value !== 'string') continue;
          const value = node.value;
          const inValue = occurrences(value, marker);
          const mapped = inValue.map((offset) => mapValueOffset(text, node, value, offset));
          const inSource = occurrences(text, marker, node.range![0], node.range![1]);
          expect(mapped, JSON.stringify(text)).toEqual(inSource.slice(inSource.length - inValue.length));
        }
      }
    }
  });
});
