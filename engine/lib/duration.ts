const unitMs = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const partPattern = /([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)/g;
const wholePattern = /^(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h|d))+$/;

/**
 * Parses a duration such as `250ms`, `30s`, `1m30s` or `1.5h` into milliseconds.
 * Returns undefined when the text is not a duration (the schema reports the form).
 */
export function parseDurationMs(text: string): number | undefined {
  if (!wholePattern.test(text)) return undefined;
  let total = 0;
  for (const match of text.matchAll(partPattern)) {
    total += Number(match[1]) * unitMs[match[2] as keyof typeof unitMs];
  }
  return total;
}

/** Formats milliseconds as the shortest readable duration (`90000` → `1m30s`). */
export function formatDurationMs(ms: number): string {
  if (ms === 0) return '0s';
  const parts: string[] = [];
  let rest = ms;
  for (const [unit, size] of [['d', unitMs.d], ['h', unitMs.h], ['m', unitMs.m], ['s', unitMs.s]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  if (rest > 0) parts.push(`${rest}ms`);
  return parts.join('');
}
