import { PatchbayError } from '../diag/errors.js';

/**
 * What a poll or schedule trigger remembers between ticks and across restarts, stored as the
 * integration's cursor (`StateStore.getCursor`, one per integration: an integration has one
 * trigger). Kept as small JSON so operators can read it.
 */
export interface TriggerState {
  /**
   * The last tick handled (fired, polled or deliberately skipped), as an instant in ms; on first
   * start, the time the trigger was first seen, so ticks before it do not count as missed.
   */
  readonly lastTickMs: number;
  /** Poll: the cursor value sent in `cursor.param` (the greatest `cursor.field` of a finished listing). */
  readonly value?: string | number | undefined;
  /** Poll, mid-listing: the greatest `cursor.field` value seen so far in the unfinished listing. */
  readonly high?: string | number | undefined;
  /**
   * Poll, mid-listing: the pagination inputs of the next page (`{ cursor: "c2" }`), to resume the
   * listing where it stopped. Absent for link-style pagination, whose listing restarts instead.
   */
  readonly page?: Readonly<Record<string, unknown>> | undefined;
}

interface StoredState {
  v: 1;
  last: string;
  value?: string | number;
  high?: string | number;
  page?: Record<string, unknown>;
}

/** The stored text of a state. */
export function serializeTriggerState(state: TriggerState): string {
  const stored: StoredState = { v: 1, last: new Date(state.lastTickMs).toISOString() };
  if (state.value !== undefined) stored.value = state.value;
  if (state.high !== undefined) stored.high = state.high;
  if (state.page !== undefined) stored.page = { ...state.page };
  return JSON.stringify(stored);
}

/** Reads a stored state. Throws PB_TRIGGER_STATE_UNREADABLE when the text is not one. */
export function parseTriggerState(text: string): TriggerState {
  let stored: unknown;
  try {
    stored = JSON.parse(text);
  } catch (error) {
    throw new PatchbayError('PB_TRIGGER_STATE_UNREADABLE', 'the stored trigger cursor is not JSON', { cause: error });
  }
  if (stored === null || typeof stored !== 'object' || (stored as StoredState).v !== 1) {
    throw new PatchbayError('PB_TRIGGER_STATE_UNREADABLE', 'the stored trigger cursor is not a version 1 trigger state');
  }
  const { last, value, high, page } = stored as Partial<StoredState>;
  const lastTickMs = typeof last === 'string' ? Date.parse(last) : Number.NaN;
  if (!Number.isFinite(lastTickMs)) throw new PatchbayError('PB_TRIGGER_STATE_UNREADABLE', 'the stored trigger cursor has no valid last tick');
  return {
    lastTickMs,
    value: isCursorValue(value) ? value : undefined,
    high: isCursorValue(high) ? high : undefined,
    page: page !== null && typeof page === 'object' && !Array.isArray(page) ? page : undefined,
  };
}

/** A value usable as a poll cursor: a string or a finite number. */
export function isCursorValue(value: unknown): value is string | number {
  return typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value));
}

const isoDate = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * Orders two cursor values: numbers by value; ISO 8601 dates by instant (so `…Z` and `…+00:00`
 * compare equal); numeric strings by value; other strings by code units (ULIDs, zero-padded ids).
 * Undefined when they are not comparable (a number and a date, say): callers then neither skip
 * an item nor move the cursor on its account.
 */
export function compareCursorValues(a: string | number, b: string | number): number | undefined {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') {
    if (isoDate.test(a) && isoDate.test(b)) {
      const left = Date.parse(a);
      const right = Date.parse(b);
      if (Number.isFinite(left) && Number.isFinite(right)) return left - right;
    }
    const numeric = /^-?\d+(\.\d+)?$/;
    if (numeric.test(a) && numeric.test(b)) return Number(a) - Number(b);
    return a < b ? -1 : a > b ? 1 : 0;
  }
  return undefined;
}
