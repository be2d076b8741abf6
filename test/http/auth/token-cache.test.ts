import { describe, expect, it } from 'vitest';
import { TokenCache, type IssuedToken } from '../../../engine/http/auth/token-cache.js';
import { ManualClock } from '../../../engine/lib/clock.js';

/** A fetcher that issues `t1`, `t2`, … with the given lifetime, counting calls. */
function issuer(clock: ManualClock, lifetimeMs: number | undefined) {
  let calls = 0;
  const fetch = async (): Promise<IssuedToken> => {
    calls += 1;
    const value = `t${calls}`;
    return lifetimeMs === undefined ? { value } : { value, expiresAtMs: clock.now() + lifetimeMs };
  };
  return { fetch, calls: () => calls };
}

describe('TokenCache', () => {
  it('does not reuse a token that arrives already expired', async () => {
    const clock = new ManualClock();
    let calls = 0;
    const cache = new TokenCache(async () => ({ value: `t${(calls += 1)}`, expiresAtMs: clock.now() - 1000 }), { clock });
    expect(await cache.token()).toBe('t1');
    expect(await cache.token()).toBe('t2');
  });

  it('does not cache a failure, and shares one in-flight fetch', async () => {
    const clock = new ManualClock();
    let fail = true;
    let calls = 0;
    const cache = new TokenCache(async () => {
      calls += 1;
      await new Promise((resolve) => setTimeout(resolve, 5));
      if (fail) throw new Error('down');
      return { value: 'ok', expiresAtMs: clock.now() + 60_000 };
    }, { clock });
    const results = await Promise.allSettled([cache.token(), cache.token(), cache.token()]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(calls).toBe(1);
    fail = false;
    expect(await cache.token()).toBe('ok');
    expect(calls).toBe(2);
  });

  it('invalidate(rejected) drops only the token that was refused', async () => {
    const clock = new ManualClock();
    const { fetch, calls } = issuer(clock, 3600_000);
    const cache = new TokenCache(fetch, { clock });
    expect(await cache.token()).toBe('t1');
    cache.invalidate('t0');
    expect(await cache.token()).toBe('t1');
    cache.invalidate('t1');
    expect(await cache.token()).toBe('t2');
    cache.invalidate();
    expect(await cache.token()).toBe('t3');
    expect(calls()).toBe(3);
  });

  it('honours the skew options', async () => {
    const clock = new ManualClock();
    const { fetch, calls } = issuer(clock, 1000_000);
    const cache = new TokenCache(fetch, { clock, maxSkewMs: 300_000, skewRatio: 0.5 });
    await cache.token();
    clock.advance(699_000);
    await cache.token();
    expect(calls()).toBe(1);
    clock.advance(2_000);
    await cache.token();
    expect(calls()).toBe(2);
  });
});
