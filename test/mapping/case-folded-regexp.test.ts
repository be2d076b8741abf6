import { describe, expect, it } from 'vitest';
import { canonicalize, caseFoldedSource, caseVariantGroups } from '../../engine/mapping/case-folded-regexp.js';

const escapeUnit = (unit: number) => `\\u${unit.toString(16).padStart(4, '0')}`;

/** Every match of `pattern` in `subject`, as JSONata walks them: index, text and groups. */
function matches(pattern: RegExp, subject: string): unknown[] {
  const found: unknown[] = [];
  pattern.lastIndex = 0;
  for (let match = pattern.exec(subject); match !== null && found.length < 200; match = pattern.exec(subject)) {
    found.push([match.index, ...match]);
    if (match[0] === '') pattern.lastIndex++;
  }
  return found;
}

/** Deterministic subjects over characters whose case behaves specially without `u`. */
function subjects(count: number): string[] {
  const pool = [...'aAbBcCkKxXzZsSſµΜμσΣςİıiI\u212a\u00df\u1e9e\u01c4\u01c5\u01c6éÉ-_[] 0.\n'];
  let seed = 12345;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648);
  return Array.from({ length: count }, () => Array.from({ length: 1 + (next() % 12) }, () => pool[next() % pool.length]).join(''));
}

describe('caseFoldedSource', () => {
  it('groups code units exactly as V8 matches them under i without u', () => {
    const all = Array.from({ length: 0x10000 }, (_, unit) => String.fromCharCode(unit)).join('');
    const grouped = new Set<number>();
    for (const group of caseVariantGroups()) {
      for (const unit of group) grouped.add(unit);
      const found = [...all.matchAll(new RegExp(`[${group.map(escapeUnit).join('')}]`, 'gi'))].map((match) => match.index);
      expect(found).toEqual([...group].sort((a, b) => a - b));
    }
    // Every other code unit matches only itself: one class of all of them matches no more.
    const others = Array.from({ length: 0x10000 }, (_, unit) => unit).filter((unit) => !grouped.has(unit));
    const ranges: string[] = [];
    for (let k = 0; k < others.length; ) {
      let j = k;
      while (j + 1 < others.length && others[j + 1] === others[j]! + 1) j++;
      ranges.push(j > k ? `${escapeUnit(others[k]!)}-${escapeUnit(others[j]!)}` : escapeUnit(others[k]!));
      k = j + 1;
    }
    expect([...all.matchAll(new RegExp(`[${ranges.join('')}]`, 'gi'))].length).toBe(others.length);
    expect(grouped.size).toBeGreaterThan(2_000);
    // The two the rule exists for: no non-ASCII character folds onto an ASCII one.
    expect(canonicalize(0x017f)).toBe(0x017f);
    expect(canonicalize(0x212a)).toBe(0x212a);
  });

  it.each([
    '^(a|aa)+$',
    '\\s*x\\s*$',
    'abc',
    '[a-c]+',
    '[^x]+',
    '[^a-z0-9]',
    '[-k]',
    '[k-]',
    '[\\w-z]',
    '[\\W]',
    '[^]',
    '[]',
    '\\x41\\u00b5+',
    '\\e\\p',
    'a{2}|b{1,}|c{,}',
    '(?<name>a|b)c',
    '(?<=k)s',
    '(?!s)\\w',
    '^i.$',
    'σ|ς',
    '[σ]',
    '\u00df|\u1e9e',
    '[\\u0100-\\u017f]+',
    '\\bk\\B',
    '[\\cJ\\1]|\\0',
    '\\cJ|\\cj',
  ])('matches what /%s/i matches, at the same places with the same groups', (source) => {
    const folded = caseFoldedSource(source);
    expect(folded).toBeDefined();
    for (const flags of ['g', 'gm']) {
      const original = new RegExp(source, `${flags}i`);
      const rewritten = new RegExp(folded!, flags);
      for (const subject of subjects(400)) expect([subject, matches(rewritten, subject)]).toEqual([subject, matches(original, subject)]);
    }
  });

  it('leaves alone what it cannot rewrite exactly: backreferences, octal escapes, a bare \\c', () => {
    for (const source of ['(a)\\1', '(?<n>a)\\k<n>', '\\01', '\\c1']) expect(caseFoldedSource(source)).toBeUndefined();
  });
});
