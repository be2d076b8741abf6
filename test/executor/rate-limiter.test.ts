import { describe, expect, it } from 'vitest';
import { ConcurrencyGate, RateLimiter, TokenBucket } from '../../engine/executor/rate-limiter.js';

describe('TokenBucket', () => {
  it('grants the burst at once, then one token per refill interval, in reservation order', () => {
    const bucket = new TokenBucket({ requests: 10, perMs: 1_000, burst: 3 }, 0);
    const waits = Array.from({ length: 6 }, () => bucket.reserve(1, 0, 10_000));
    expect(waits).toEqual([
      { granted: true, waitMs: 0 },
      { granted: true, waitMs: 0 },
      { granted: true, waitMs: 0 },
      { granted: true, waitMs: 100 },
      { granted: true, waitMs: 200 },
      { granted: true, waitMs: 300 },
    ]);
  });

  it('refuses a reservation that would wait longer than allowed, without taking tokens', () => {
    const bucket = new TokenBucket({ requests: 1, perMs: 1_000 }, 0);
    expect(bucket.reserve(1, 0, 0)).toEqual({ granted: true, waitMs: 0 });
    expect(bucket.reserve(1, 0, 200)).toEqual({ granted: false, retryAtMs: 800 });
    // Nothing was taken by the refusal: at 1 s the bucket has exactly one token again.
    expect(bucket.reserve(1, 1_000, 0)).toEqual({ granted: true, waitMs: 0 });
  });

  it('holds the rate over time: never more than burst + rate × t in any window', () => {
    const bucket = new TokenBucket({ requests: 20, perMs: 1_000, burst: 5 }, 0);
    const sendTimes: number[] = [];
    for (let now = 0; now < 5_000; now += 7) {
      const reservation = bucket.reserve(1, now, 0);
      if (reservation.granted) sendTimes.push(now + reservation.waitMs);
    }
    for (let start = 0; start < 5_000; start += 50) {
      const inWindow = sendTimes.filter((time) => time >= start && time < start + 1_000).length;
      expect(inWindow).toBeLessThanOrEqual(5 + 20);
    }
    expect(sendTimes.length).toBeGreaterThanOrEqual(100);
  });

  it('spends cost points', () => {
    const bucket = new TokenBucket({ requests: 100, perMs: 1_000 }, 0);
    expect(bucket.reserve(60, 0, 0)).toEqual({ granted: true, waitMs: 0 });
    expect(bucket.reserve(60, 0, 1_000)).toEqual({ granted: true, waitMs: 200 });
  });

  it('gives refunded tokens back', () => {
    const bucket = new TokenBucket({ requests: 1, perMs: 1_000 }, 0);
    bucket.reserve(1, 0, 0);
    bucket.refund(1);
    expect(bucket.reserve(1, 0, 0)).toEqual({ granted: true, waitMs: 0 });
  });
});

describe('ConcurrencyGate', () => {
  it('admits at most `limit` holders and hands slots over in order', async () => {
    const gate = new ConcurrencyGate(2);
    const order: number[] = [];
    const first = await gate.acquire();
    const second = await gate.acquire();
    const third = gate.acquire().then((release) => {
      order.push(3);
      return release;
    });
    const fourth = gate.acquire().then((release) => {
      order.push(4);
      return release;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(gate.inFlight).toBe(2);
    expect(order).toEqual([]);
    first();
    first(); // a second release of the same slot is ignored
    (await third)();
    second();
    (await fourth)();
    expect(order).toEqual([3, 4]);
    expect(gate.inFlight).toBe(0);
  });
});

describe('RateLimiter', () => {
  it('pauses a credential until a reset the provider announced, never shortening a pause', () => {
    const limiter = new RateLimiter();
    expect(limiter.pausedUntil('stripe:abc')).toBe(0);
    limiter.pause('stripe:abc', 5_000);
    limiter.pause('stripe:abc', 4_000);
    expect(limiter.pausedUntil('stripe:abc')).toBe(5_000);
    expect(limiter.pausedUntil('stripe:def')).toBe(0);
  });

  it('returns the same bucket for the same key', () => {
    const limiter = new RateLimiter();
    const spec = { requests: 1, perMs: 1_000 };
    expect(limiter.bucket('stripe:abc|policy', spec, 0)).toBe(limiter.bucket('stripe:abc|policy', spec, 0));
    expect(limiter.bucket('stripe:abc|policy', spec, 0)).not.toBe(limiter.bucket('stripe:def|policy', spec, 0));
  });
});
