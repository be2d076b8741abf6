import type { SchemaDetail } from './schema-convert.js';

/**
 * Detail levels from richest to leanest. An operation is written at the richest level that keeps
 * the whole provider under the manifest size limit; most documents fit at level 0.
 */
export const detailLevels: readonly SchemaDetail[] = [
  { maxDepth: 6, descriptionChars: 300, nestedDescriptionChars: 160, examples: true, maxNodes: 400, maxEnum: 60, output: true, constraints: true, markTruncated: true, summaryChars: 200 },
  { maxDepth: 5, descriptionChars: 300, nestedDescriptionChars: 120, examples: true, maxNodes: 300, maxEnum: 40, output: false, constraints: true, markTruncated: true, summaryChars: 200 },
  { maxDepth: 4, descriptionChars: 160, nestedDescriptionChars: 0, examples: false, maxNodes: 150, maxEnum: 30, output: false, constraints: true, markTruncated: true, summaryChars: 160 },
  { maxDepth: 3, descriptionChars: 100, nestedDescriptionChars: 0, examples: false, maxNodes: 80, maxEnum: 20, output: false, constraints: true, markTruncated: true, summaryChars: 120 },
  { maxDepth: 2, descriptionChars: 0, nestedDescriptionChars: 0, examples: false, maxNodes: 40, maxEnum: 10, output: false, constraints: false, markTruncated: false, summaryChars: 100 },
  { maxDepth: 1, descriptionChars: 0, nestedDescriptionChars: 0, examples: false, maxNodes: 40, maxEnum: 0, output: false, constraints: false, markTruncated: false, summaryChars: 80 },
  // Input names only (`name: {}`): still enough for `patchbay validate` to check a step's inputs.
  { maxDepth: 0, descriptionChars: 0, nestedDescriptionChars: 0, examples: false, maxNodes: 0, maxEnum: 0, output: false, constraints: false, markTruncated: false, summaryChars: 60 },
];

/**
 * Chooses a detail level per operation so that the summed sizes fit `budgetBytes`, keeping small
 * operations rich and shortening the largest first: every operation gets the richest level whose
 * size is at most a common cap, and the cap is the largest one that fits (found by bisection).
 * `sizes[i][level]` is operation i's size at that level (usually one per {@link detailLevels}
 * entry), non-increasing in level. Returns the
 * chosen level per operation, or undefined when even the leanest level of every operation is
 * over budget.
 */
export function chooseLevels(sizes: readonly (readonly number[])[], budgetBytes: number): number[] | undefined {
  const levelUnder = (row: readonly number[], cap: number) => {
    for (let level = 0; level < row.length; level += 1) if (row[level]! <= cap) return level;
    return row.length - 1;
  };
  const total = (cap: number) => sizes.reduce((sum, row) => sum + row[levelUnder(row, cap)]!, 0);
  const largest = Math.max(0, ...sizes.map((row) => row[0]!));
  if (total(largest) <= budgetBytes) return sizes.map(() => 0);
  if (total(0) > budgetBytes) return undefined;
  let low = 0;
  let high = largest;
  while (high - low > 1) {
    const mid = Math.floor((low + high) / 2);
    if (total(mid) <= budgetBytes) low = mid;
    else high = mid;
  }
  return sizes.map((row) => levelUnder(row, low));
}
