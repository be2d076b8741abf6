import { isIP } from 'node:net';

/**
 * The inbound rate limit's bucket for a sender address: spellings of one address share a bucket
 * (`2001:DB8::1` and `2001:db8:0::1`, `::ffff:203.0.113.5` and `203.0.113.5`, an address with a
 * port from `X-Forwarded-For`), and an IPv6 sender shares one with its whole /64 — the block one
 * host or site is usually given, where picking a new address per request costs nothing.
 * Text that is not an address is its own bucket, lower-cased.
 */
export function senderBucket(address: string): string {
  const plain = withoutPort(address.trim());
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(plain);
  if (mapped !== null) return mapped[1] as string;
  if (isIP(plain) === 4) return plain;
  if (isIP(plain) === 6) return `${expandIpv6(plain).slice(0, 4).join(':')}::/64`;
  return plain.toLowerCase();
}

function withoutPort(address: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(address);
  if (bracketed !== null) return bracketed[1] as string;
  const v4WithPort = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(address);
  return v4WithPort !== null ? (v4WithPort[1] as string) : address;
}

/** The eight hextets of a valid IPv6 address, lower-case without leading zeros. */
function expandIpv6(address: string): string[] {
  let text = address.toLowerCase().replace(/%.*$/, '');
  // An embedded IPv4 tail (`::ffff:1.2.3.4`, `64:ff9b::1.2.3.4`) becomes two hextets.
  const v4 = /(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (v4 !== null) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? (text.split('::') as [string, string]) : [text, undefined];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? [] : Array.from({ length: 8 - left.length - right.length }, () => '0');
  return [...left, ...zeros, ...right].map((part) => Number.parseInt(part, 16).toString(16));
}
