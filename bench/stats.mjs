// Statistics and option parsing shared by the benchmarks that sample many rounds and requests.

/** Median of numbers (the mean of the middle two for an even count). */
export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Nearest-rank percentile of sorted values (NaN when there are none). */
export function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** `value` rounded to `digits` decimals, as a number. */
export function round(value, digits) {
  return Number(value.toFixed(digits));
}

/**
 * Reads positive-integer options from `values` (parseArgs output): each entry is a flag name, or
 * `[flag, key]` to store it under another key. Exits with status 2 on a value that is not one.
 */
export function positiveIntegers(values, entries) {
  const options = {};
  for (const entry of entries) {
    const [flag, key] = Array.isArray(entry) ? entry : [entry, entry];
    if (values[flag] === undefined) continue;
    const n = Number(values[flag]);
    if (!Number.isInteger(n) || n < 1) {
      process.stderr.write(`--${flag} must be a positive integer\n`);
      process.exit(2);
    }
    options[key] = n;
  }
  return options;
}
