import { describe, expect, it } from 'vitest';
import { senderBucket } from '../../engine/triggers/sender-key.js';

describe('inbound rate-limit buckets', () => {
  it('gives every spelling of one address the same bucket', () => {
    expect(senderBucket('2001:DB8::1')).toBe(senderBucket('2001:db8:0:0::1'));
    expect(senderBucket('::ffff:203.0.113.5')).toBe('203.0.113.5');
    expect(senderBucket('203.0.113.5:1111')).toBe('203.0.113.5');
    expect(senderBucket('[2001:db8::1]:443')).toBe(senderBucket('2001:db8::1'));
    expect(senderBucket(' 203.0.113.5 ')).toBe('203.0.113.5');
  });

  it('groups an IPv6 sender with its /64, and keeps other /64s and IPv4 addresses apart', () => {
    expect(senderBucket('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(senderBucket('2001:db8:1:2:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
    expect(senderBucket('2001:db8:1:3::1')).not.toBe(senderBucket('2001:db8:1:2::1'));
    expect(senderBucket('::1')).toBe('0:0:0:0::/64');
    expect(senderBucket('64:ff9b::203.0.113.5')).toBe('64:ff9b:0:0::/64');
    expect(senderBucket('203.0.113.5')).not.toBe(senderBucket('203.0.113.6'));
  });

  it('keeps text that is not an address as its own bucket', () => {
    expect(senderBucket('Unknown')).toBe('unknown');
    expect(senderBucket('not an address')).toBe('not an address');
  });
});
