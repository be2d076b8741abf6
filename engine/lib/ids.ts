import { randomFillSync } from 'node:crypto';

/**
 * Crockford's base32 alphabet in lower case: no I, L, O or U, so an id read aloud or typed from a
 * screenshot cannot be confused, and the digits sort before the letters in ASCII, so the encoded
 * time sorts like the number.
 */
const alphabet = '0123456789abcdefghjkmnpqrstvwxyz';

/** 10 base32 characters hold 50 bits: enough for every millisecond until the year 10889. */
const timeChars = 10;
/** 16 base32 characters: 80 random bits, as in a ULID. */
const randomChars = 16;
const maxTimeMs = 2 ** 48 - 1;
const prefixPattern = /^[a-z][a-z0-9]*$/;

// Random bytes are drawn from the operating system in blocks, not per id: one getrandom call
// per 256 ids instead of one each (ids are made for every accepted event).
const pool = Buffer.alloc(randomChars * 256);
let poolOffset = pool.length;

/**
 * Makes a new identifier such as `run_01jh5x3k2m7q4w9e8r6t5y3v2n`: `prefix`, an underscore, the
 * time `nowMs` as 10 Crockford base32 characters (most significant first, zero-padded), then 16
 * random base32 characters from the operating system's generator (80 bits).
 *
 * Ids with the same prefix sort lexicographically (plain string comparison, any locale-free
 * collation such as SQLite's BINARY) by the time they were made, to the millisecond; ids made in
 * the same millisecond are in random order among themselves. Lower case only.
 *
 * `prefix` is a lower-case word (`[a-z][a-z0-9]*`); `nowMs` is an integer number of milliseconds
 * since the Unix epoch in [0, 2^48). Throws a RangeError otherwise (a programming error).
 */
export function newId(prefix: string, nowMs: number): string {
  if (!prefixPattern.test(prefix)) throw new RangeError(`id prefix ${JSON.stringify(prefix)} is not a lower-case word`);
  if (!Number.isInteger(nowMs) || nowMs < 0 || nowMs > maxTimeMs) {
    throw new RangeError(`id time ${nowMs} is not an integer number of milliseconds in [0, 2^48)`);
  }
  let time = '';
  let rest = nowMs;
  for (let index = 0; index < timeChars; index += 1) {
    // Division rather than bit operations: the time has 48 bits, more than JavaScript's 32-bit
    // bitwise operators keep.
    time = alphabet[rest % 32] + time;
    rest = Math.floor(rest / 32);
  }
  if (poolOffset + randomChars > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  let random = '';
  for (let index = 0; index < randomChars; index += 1) {
    // 256 is a multiple of 32, so the low five bits of a uniform byte are uniform.
    random += alphabet[pool[poolOffset + index]! & 31];
  }
  poolOffset += randomChars;
  return `${prefix}_${time}${random}`;
}

/**
 * The time encoded in an id made by `newId`, in milliseconds since the Unix epoch, or undefined
 * when `id` does not have that form.
 */
export function idTimeMs(id: string): number | undefined {
  const match = /^[a-z][a-z0-9]*_([0-9a-hjkmnp-tv-z]{26})$/.exec(id);
  if (match === null) return undefined;
  let time = 0;
  for (const char of match[1]!.slice(0, timeChars)) time = time * 32 + alphabet.indexOf(char);
  return time <= maxTimeMs ? time : undefined;
}
