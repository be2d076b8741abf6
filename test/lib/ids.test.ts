import { describe, expect, it } from 'vitest';
import { idTimeMs, newId } from '../../engine/lib/ids.js';

const shape = /^run_[0-9a-hjkmnp-tv-z]{26}$/;

describe('newId', () => {
  it('is the prefix, an underscore, 10 time characters and 16 random ones in lower-case Crockford base32', () => {
    const id = newId('run', Date.UTC(2026, 0, 1));
    expect(id).toMatch(shape);
    expect(id).toHaveLength('run_'.length + 26);
  });

  it('encodes the time most significant first, zero-padded', () => {
    expect(newId('run', 0).slice(4, 14)).toBe('0000000000');
    expect(newId('run', 1).slice(4, 14)).toBe('0000000001');
    expect(newId('run', 31).slice(4, 14)).toBe('000000000z');
    expect(newId('run', 32).slice(4, 14)).toBe('0000000010');
    expect(newId('run', 2 ** 48 - 1).slice(4, 14)).toBe('7zzzzzzzzz');
    // The reference ULID implementation's example: encodeTime(1469918176385) is 01ARYZ6S41.
    expect(newId('run', 1_469_918_176_385).slice(4, 14)).toBe('01aryz6s41');
  });

  it('sorts as strings in the order of the times, across every digit position', () => {
    const times: number[] = [];
    for (let power = 0; power < 48; power += 1) times.push(2 ** power - 1, 2 ** power, 2 ** power + 1);
    times.push(Date.UTC(1970, 0, 1), Date.UTC(2026, 0, 1), Date.UTC(2026, 0, 1) + 1, Date.UTC(9999, 11, 31));
    // Distinct times only: ids of the same millisecond are in random order among themselves.
    const ids = [...new Set(times)].map((time) => newId('run', time));
    const byString = [...ids].sort();
    const byTime = [...ids].sort((a, b) => idTimeMs(a)! - idTimeMs(b)!);
    expect(byString).toEqual(byTime);
    expect(ids.length).toBeGreaterThan(140);
  });

  it('round-trips the time through idTimeMs', () => {
    for (const time of [0, 1, 1_469_922_850_259, Date.UTC(2026, 5, 30, 12, 34, 56, 789), 2 ** 48 - 1]) {
      expect(idTimeMs(newId('evt', time))).toBe(time);
    }
    expect(idTimeMs('run_short')).toBeUndefined();
    expect(idTimeMs('run_0000000000000000000000000u')).toBeUndefined();
    expect(idTimeMs('run_80000000000000000000000000')).toBeUndefined();
  });

  it('draws a different random part for every id, using the whole alphabet', () => {
    const time = Date.UTC(2026, 0, 1);
    const randoms = new Set<string>();
    const seen = new Set<string>();
    for (let index = 0; index < 20_000; index += 1) {
      const random = newId('run', time).slice(14);
      randoms.add(random);
      for (const char of random) seen.add(char);
    }
    expect(randoms.size).toBe(20_000);
    expect(seen.size).toBe(32);
  });

  it('refuses a prefix that is not a lower-case word and a time outside [0, 2^48)', () => {
    for (const prefix of ['', 'Run', 'run_', '1run', 'r-n', 'ru n']) {
      expect(() => newId(prefix, 0), prefix).toThrow(RangeError);
    }
    for (const time of [-1, 1.5, 2 ** 48, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => newId('run', time), String(time)).toThrow(RangeError);
    }
  });
});
