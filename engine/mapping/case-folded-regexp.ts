/**
 * Case-insensitive regular expressions rewritten without the `i` flag, so that V8's linear-time
 * engine, which cannot run `i`, can run them (see the regular-expression defences in
 * evaluate.ts): `/^(a|aa)+$/i` becomes `^([aA]|[aA][aA])+$`.
 *
 * The rewrite follows the language's definition of `i` without the `u` flag (JSONata regular
 * expressions never have `u`): two characters match when their canonical forms are equal, the
 * canonical form of a UTF-16 code unit being its upper case when that is a single code unit and
 * does not turn a non-ASCII character into an ASCII one (so `ſ` does not match `s`, nor the
 * Kelvin sign `k`). A literal letter becomes the class of its case variants (`µ` → `[µΜμ]`); a
 * character class gets the variants of its members added (`[a-c]` → `[ABCa-c]`, `[^x]` →
 * `[^Xx]`); `\w`, `\d`, `\s`, `\b` and `.` mean the same with or without `i` here. A pattern
 * the rewrite is not sure of (a backreference, whose text is compared ignoring case; `\c`
 * outside its control-letter form; an octal escape outside a class) is left alone: it keeps its
 * `i` and runs on the backtracking engine.
 */

/** Code units grouped by canonical form, for the code units whose group has more than one member. */
interface CaseGroups {
  /** Each code unit with case variants, to its group (itself included), in code-unit order. */
  readonly groupOf: ReadonlyMap<number, readonly number[]>;
}

let caseGroups: CaseGroups | undefined;

/** The canonical form of a code unit under `i` without `u` (ECMA-262 Canonicalize, non-Unicode mode). */
export function canonicalize(unit: number): number {
  const upper = String.fromCharCode(unit).toUpperCase();
  if (upper.length !== 1) return unit;
  const canonical = upper.charCodeAt(0);
  return unit >= 128 && canonical < 128 ? unit : canonical;
}

/**
 * Built on first use and kept: it depends on nothing but the runtime. Only the code units that
 * change under some case mapping (Unicode's Changes_When_Casemapped, about 2,800 of 65,536) can
 * share a canonical form with another, so only they, and the forms they map to, are looked at.
 */
function groups(): CaseGroups {
  if (caseGroups !== undefined) return caseGroups;
  // Surrogates are left out: a lone one has no case, and two in a row would read as one code point.
  let units = '';
  for (let unit = 0; unit <= 0xffff; unit++) if (unit < 0xd800 || unit > 0xdfff) units += String.fromCharCode(unit);
  const byCanonical = new Map<number, Set<number>>();
  const place = (unit: number, canonical: number) => {
    const members = byCanonical.get(canonical);
    if (members === undefined) byCanonical.set(canonical, new Set([unit]));
    else members.add(unit);
  };
  for (const match of units.matchAll(/\p{Changes_When_Casemapped}/gu)) {
    const unit = match[0].charCodeAt(0);
    const canonical = canonicalize(unit);
    place(unit, canonical);
    if (canonicalize(canonical) === canonical) place(canonical, canonical);
  }
  const groupOf = new Map<number, readonly number[]>();
  for (const members of byCanonical.values()) {
    const group = [...members].sort((a, b) => a - b);
    if (group.length > 1) for (const unit of group) groupOf.set(unit, group);
  }
  caseGroups = { groupOf };
  return caseGroups;
}

/** Every code unit that has case variants, and its group: what `caseFoldedSource` relies on (tests check it against V8). */
export function caseVariantGroups(): readonly (readonly number[])[] {
  return [...new Set(groups().groupOf.values())];
}

/**
 * The source of a regular expression without `i` that matches, at the same places and with the
 * same groups, what `source` matches with `i` (and without `u`); undefined when the pattern has a
 * construct the rewrite does not handle (then keep the original). `source` must be a valid
 * pattern (`RegExp.prototype.source`). Cost: one pass, plus a test of each code unit with case
 * variants (about 2,800) against each character class.
 */
export function caseFoldedSource(source: string): string | undefined {
  const { groupOf } = groups();
  let out = '';
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    if (c === '\\') {
      const escape = readEscape(source, i);
      if (escape === undefined) return undefined;
      out += escape.unit === undefined ? escape.text : literal(escape.unit, escape.text, groupOf);
      i += escape.text.length;
    } else if (c === '[') {
      const end = classEnd(source, i);
      if (end === undefined) return undefined;
      const folded = foldedClass(source.slice(i, end), groupOf);
      if (folded === undefined) return undefined;
      out += folded;
      i = end;
    } else if (source.startsWith('(?<', i) && source[i + 3] !== '=' && source[i + 3] !== '!') {
      // A group name is not matched against anything: copied as written.
      const close = source.indexOf('>', i);
      if (close < 0) return undefined;
      out += source.slice(i, close + 1);
      i = close + 1;
    } else {
      out += literal(c.charCodeAt(0), c, groupOf);
      i += 1;
    }
  }
  return out;
}

/** An atom for one code unit: itself, or the class of its case variants. */
function literal(unit: number, text: string, groupOf: ReadonlyMap<number, readonly number[]>): string {
  const group = groupOf.get(unit);
  return group === undefined ? text : `[${group.map(escapeUnit).join('')}]`;
}

function escapeUnit(unit: number): string {
  return `\\u${unit.toString(16).padStart(4, '0')}`;
}

const hex = /^[0-9A-Fa-f]+$/;
/** Escapes whose meaning `i` does not change (without `u`): classes, assertions, controls. */
const unchangedEscapes = new Set(['b', 'B', 'd', 'D', 'w', 'W', 's', 'S', 'f', 'n', 'r', 't', 'v']);

/**
 * The escape at `at` (a backslash): its text, and the code unit it stands for when it is a
 * literal character (`\x41`, `\u0041`, `\.`, `\e` as `e`), or no unit when its meaning does not
 * depend on case. Undefined for what the rewrite leaves alone: backreferences (`\1`, `\k<n>`),
 * octal escapes and `\c` without a letter.
 */
function readEscape(source: string, at: number): { text: string; unit?: number } | undefined {
  const c = source[at + 1];
  if (c === undefined) return undefined;
  if (unchangedEscapes.has(c)) return { text: `\\${c}` };
  if (c >= '1' && c <= '9') return undefined;
  if (c === '0') return /[0-9]/.test(source[at + 2] ?? '') ? undefined : { text: '\\0' };
  if (c === 'k') return undefined;
  if (c === 'c') return /[A-Za-z]/.test(source[at + 2] ?? '') ? { text: source.slice(at, at + 3) } : undefined;
  const digits = c === 'x' ? 2 : c === 'u' ? 4 : 0;
  const code = source.slice(at + 2, at + 2 + digits);
  if (digits > 0 && code.length === digits && hex.test(code)) return { text: source.slice(at, at + 2 + digits), unit: parseInt(code, 16) };
  // Any other escaped character stands for itself (`\.`, and without `u` also `\e`, `\x`, `\p`).
  return { text: `\\${c}`, unit: c.charCodeAt(0) };
}

/** The index just past the class that opens at `at`; without `u`, `[` inside a class is literal and `[]` is a whole class. */
function classEnd(source: string, at: number): number | undefined {
  let i = at + 1;
  if (source[i] === '^') i++;
  for (; i < source.length; i++) {
    if (source[i] === '\\') i++;
    else if (source[i] === ']') return i + 1;
  }
  return undefined;
}

/**
 * The class with the case variants of its members added. Membership is asked of V8 itself
 * (the class compiled without `i`), so ranges, escapes and Annex B forms (`[\1]` is octal in a
 * class) mean what V8 says: a class means the same wherever it stands in a pattern.
 * A negated class gets the variants of the characters it excludes, which it then excludes too.
 */
function foldedClass(text: string, groupOf: ReadonlyMap<number, readonly number[]>): string | undefined {
  const negated = text[1] === '^';
  const inner = text.slice(negated ? 2 : 1, -1);
  let members: RegExp;
  try {
    members = new RegExp(`^[${inner}]$`);
  } catch {
    // Not a class V8 reads the same way on its own: leave the pattern as it is.
    return undefined;
  }
  const added: number[] = [];
  for (const [unit, group] of groupOf) {
    if (group[0] !== unit) continue;
    const inside = group.filter((member) => members.test(String.fromCharCode(member)));
    if (inside.length > 0 && inside.length < group.length) added.push(...group.filter((member) => !inside.includes(member)));
  }
  if (added.length === 0) return text;
  added.sort((a, b) => a - b);
  // A leading `-` of the original would join the last added unit into a range: escape it.
  const rest = inner.startsWith('-') ? `\\${inner}` : inner;
  return `[${negated ? '^' : ''}${added.map(escapeUnit).join('')}${rest}]`;
}
