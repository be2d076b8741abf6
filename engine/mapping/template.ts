/** One `{{ expr }}` found in a template string. Offsets are into the template. */
export interface TemplatePart {
  /** The JSONata source between the braces, untrimmed. */
  readonly expression: string;
  /** Offset of the first character of `expression` in the template. */
  readonly offset: number;
}

export interface ParsedTemplate {
  readonly parts: readonly TemplatePart[];
  /** True when the whole template is exactly one `{{ expr }}` (surrounding spaces allowed): the value keeps the expression's type. */
  readonly whole: boolean;
  /** Offset of a `{{` that is never closed, if any. */
  readonly unterminatedAt: number | undefined;
}

/**
 * Splits a mapping string into its `{{ }}` expressions. A string without braces has no parts.
 *
 * A `{{` opens an expression; the expression ends at the first `}}` met at brace depth 0, where
 * depth counts the expression's own `{` and `}`. Braces inside JSONata string literals
 * (`'…'`, `"…"`, with backslash escapes), backtick names, `/* … *\/` comments and regular
 * expressions do not count, so `{{ "}}" }}`, `{{ {'a': {'b': 1}} }}` and
 * `{{ $map(x, function($v){ {'a': $v}}) }}` are each one expression. A literal `{{` in output
 * text is written as a JSONata string: `{{ '{{' }}`. Never throws: an expression that is never
 * closed is reported through `unterminatedAt`, and scanning stops there.
 */
export function parseTemplate(template: string): ParsedTemplate {
  const parts: TemplatePart[] = [];
  let index = 0;
  let unterminatedAt: number | undefined;
  while (index < template.length) {
    const open = template.indexOf('{{', index);
    if (open < 0) break;
    const close = findClose(template, open + 2);
    if (close < 0) {
      unterminatedAt = open;
      break;
    }
    parts.push({ expression: template.slice(open + 2, close), offset: open + 2 });
    index = close + 2;
  }
  const trimmed = template.trim();
  const whole =
    parts.length === 1 && unterminatedAt === undefined && trimmed.startsWith('{{') && trimmed.endsWith('}}') &&
    trimmed.length === parts[0]!.expression.length + 4;
  return { parts, whole, unterminatedAt };
}

/**
 * Offset of the `}}` that closes an expression starting at `from`, or -1. Mirrors the lexical
 * rules of the JSONata tokenizer (jsonata.js `next`) for what hides a brace.
 */
function findClose(text: string, from: number): number {
  let depth = 0;
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (c === '"' || c === "'") {
      i = stringEnd(text, i);
      if (i < 0) return -1;
    } else if (c === '`') {
      // JSONata backtick names have no escapes: the name ends at the next backtick.
      i = text.indexOf('`', i + 1);
      if (i < 0) return -1;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      if (end < 0) return -1;
      i = end + 1;
    } else if (c === '/' && startsOperand(text, from, i)) {
      // A regex literal (`/\{/`) may hold unbalanced braces. One never closed is read as a
      // division, so a misjudged slash cannot swallow the rest of the template.
      const end = regexEnd(text, i);
      if (end >= 0) i = end;
    } else if (c === '{') {
      depth++;
    } else if (c === '}') {
      if (depth === 0) {
        if (text[i + 1] === '}') return i;
        // A stray `}` is a JSONata syntax error, reported when the expression is compiled.
      } else {
        depth--;
      }
    }
  }
  return -1;
}

/** Offset of the quote closing the string literal opened at `open`, or -1. */
function stringEnd(text: string, open: number): number {
  const quote = text[open];
  for (let i = open + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === quote) return i;
  }
  return -1;
}

/**
 * True when a `/` at `at` stands where JSONata expects an operand, which makes it a regex.
 * Only characters that can never end an operand count, so keywords (`and`, `in`) and the
 * wildcard `*` keep the slash a division: the safe reading for brace counting.
 */
function startsOperand(text: string, from: number, at: number): boolean {
  for (let i = at - 1; i >= from; i--) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\v') continue;
    return '([{,:;?=<>!+-&|~'.includes(c);
  }
  return true;
}

/** Offset of the `/` closing the regex opened at `open`, or -1. Same rules as jsonata.js `scanRegex`. */
function regexEnd(text: string, open: number): number {
  let depth = 0;
  for (let i = open + 1; i < text.length; i++) {
    const c = text[i];
    if (c === '/' && depth === 0) {
      let backslashes = 0;
      while (text[i - backslashes - 1] === '\\') backslashes++;
      if (backslashes % 2 === 0) return i === open + 1 ? -1 : i;
    }
    if (text[i - 1] !== '\\') {
      if (c === '(' || c === '[' || c === '{') depth++;
      else if (c === ')' || c === ']' || c === '}') depth--;
    }
  }
  return -1;
}

/**
 * The expression of a condition field (`if`, `orderBy`): either `{{ expr }}` or a bare JSONata
 * expression, as in GitHub Actions' `if:`. Returns the JSONata source and its offset.
 */
export function conditionExpression(text: string): TemplatePart {
  const parsed = parseTemplate(text);
  if (parsed.whole) return parsed.parts[0]!;
  return { expression: text, offset: 0 };
}
