/** A parsed mapping, read defensively: checks run on documents that failed the schema too. */
export type Json = Record<string, unknown>;

/** The value as a mapping, or undefined when it is anything else (null, a list, a scalar). */
export function record(value: unknown): Json | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Json) : undefined;
}

/** The value when it is a string, else undefined. */
export function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
