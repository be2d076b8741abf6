import { describe, expect, it } from 'vitest';
import { formatDurationMs, parseDurationMs } from '../../engine/lib/duration.js';

describe('parseDurationMs', () => {
  it('parses each unit', () => {
    expect(parseDurationMs('250ms')).toBe(250);
    expect(parseDurationMs('30s')).toBe(30_000);
    expect(parseDurationMs('5m')).toBe(300_000);
    expect(parseDurationMs('2h')).toBe(7_200_000);
    expect(parseDurationMs('1d')).toBe(86_400_000);
    expect(parseDurationMs('0s')).toBe(0);
  });

  it('adds up compound durations and decimals', () => {
    expect(parseDurationMs('1m30s')).toBe(90_000);
    expect(parseDurationMs('1h30m')).toBe(5_400_000);
    expect(parseDurationMs('1.5h')).toBe(5_400_000);
    expect(parseDurationMs('1s500ms')).toBe(1_500);
    expect(parseDurationMs('0.25s')).toBe(250);
  });

  it('reads "ms" as milliseconds, not minutes then a stray s', () => {
    expect(parseDurationMs('5ms')).toBe(5);
    expect(parseDurationMs('5m5s')).toBe(305_000);
  });

  it('returns undefined for text that is not a duration', () => {
    for (const text of ['', '10', 's', '5x', ' 5s', '5s ', '1m 30s', '5S', '-5s', '1.s', '.5s', '5sec', '1,5h', 'P1D']) {
      expect(parseDurationMs(text), JSON.stringify(text)).toBeUndefined();
    }
  });
});

describe('formatDurationMs', () => {
  it('formats the shortest readable duration', () => {
    expect(formatDurationMs(0)).toBe('0s');
    expect(formatDurationMs(250)).toBe('250ms');
    expect(formatDurationMs(1_000)).toBe('1s');
    expect(formatDurationMs(1_500)).toBe('1s500ms');
    expect(formatDurationMs(90_000)).toBe('1m30s');
    expect(formatDurationMs(3_600_000)).toBe('1h');
    expect(formatDurationMs(86_400_000 + 60_000)).toBe('1d1m');
    expect(formatDurationMs(365 * 86_400_000)).toBe('365d');
  });

  it('round-trips through parseDurationMs for whole milliseconds', () => {
    // A fixed, spread-out set of values: units alone, combinations and odd remainders.
    const values = [1, 999, 1_001, 59_999, 60_000, 61_001, 3_599_999, 3_600_001, 86_399_999, 90_061_001, 31_536_000_000];
    for (const ms of values) expect(parseDurationMs(formatDurationMs(ms))).toBe(ms);
  });
});
