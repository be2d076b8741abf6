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
 * Braces inside JSONata string literals are respected, so `{{ "}}" }}` is one expression.
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

function findClose(text: string, from: number): number {
  let quote: string | undefined;
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = undefined;
      continue;
    }
    if (c === '"' || c === "'" || c === '`') quote = c;
    else if (c === '}' && text[i + 1] === '}') {
      // `}}}` closes an object constructor first: take the last brace pair of the run.
      let end = i;
      while (text[end + 2] === '}') end++;
      return end;
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
