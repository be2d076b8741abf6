import { expect } from 'vitest';
import { PatchbayError } from '../../engine/diag/errors.js';

/** Awaits `promise`, expects it to reject with a PatchbayError, and returns that error. */
export async function rejection(promise: Promise<unknown>): Promise<PatchbayError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(PatchbayError);
    return error as PatchbayError;
  }
  throw new Error('expected the promise to reject');
}

/** Calls `fn`, expects it to throw a PatchbayError, and returns that error (other errors are rethrown). */
export function thrown(fn: () => unknown): PatchbayError {
  try {
    fn();
  } catch (error) {
    if (error instanceof PatchbayError) return error;
    throw error;
  }
  throw new Error('expected a PatchbayError');
}
