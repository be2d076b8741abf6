import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { PatchbayError } from '../diag/errors.js';

/**
 * The SSRF guard: outbound connections may not reach loopback, private, link-local (cloud
 * metadata), shared, multicast or reserved addresses unless an allow-list names them.
 *
 * The check runs on the address the socket is about to connect to, inside the connector, so
 * there is no window between a check and the connect for a DNS answer to change (rebinding).
 */

/** Which private addresses may be reached on purpose. */
export interface AddressPolicy {
  /**
   * CIDRs (`10.1.0.0/16`, `fd00::/8`) or exact addresses (`127.0.0.1`, `::1`) that may be
   * reached even though they are in a refused range. An IPv4 entry also allows its IPv4-mapped
   * IPv6 form. @default []
   */
  readonly allow?: readonly string[];
}

/** One resolved address, as `dns.lookup(name, { all: true })` returns them. */
export interface ResolvedAddress {
  readonly address: string;
  readonly family: number;
}

/**
 * Resolves a host name to all its addresses. Injectable so tests can make a name resolve to a
 * private address without touching DNS. Rejects with the resolver's error (`ENOTFOUND`, …).
 */
export type LookupAddresses = (hostname: string) => Promise<readonly ResolvedAddress[]>;

/** The default resolver: the system's (`dns.lookup` with `all: true`). */
export const systemLookup: LookupAddresses = (hostname) =>
  new Promise((resolve, reject) => {
    dnsLookup(hostname, { all: true }, (error, addresses) => {
      if (error) reject(error);
      else resolve(addresses);
    });
  });

// Names of cloud metadata services: refused by name whatever they resolve to.
const refusedNames = new Set([
  'metadata.google.internal',
  'metadata.goog',
  'metadata',
  'instance-data',
  'instance-data.ec2.internal',
]);

// IANA special-purpose registries (RFC 6890 and updates). Order matters only for the label a
// refusal names: the most specific range comes first.
const refusedRanges: readonly (readonly [label: string, ranges: readonly string[]])[] = [
  ['unspecified', ['0.0.0.0/8', '::/128']],
  ['loopback', ['127.0.0.0/8', '::1/128']],
  ['private', ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7']],
  ['link-local (cloud metadata)', ['169.254.0.0/16', 'fe80::/10']],
  ['shared (carrier-grade NAT)', ['100.64.0.0/10']],
  ['multicast', ['224.0.0.0/4', 'ff00::/8']],
  [
    'reserved',
    [
      '192.0.0.0/24', '192.0.2.0/24', '192.88.99.0/24', '198.18.0.0/15', '198.51.100.0/24',
      '203.0.113.0/24', '240.0.0.0/4',
      '::/96', '100::/64', '2001::/23', '2001:db8::/32', '3fff::/20', 'fec0::/10', '64:ff9b:1::/48',
    ],
  ],
];

function addRange(list: BlockList, cidr: string, where: string): void {
  const slash = cidr.indexOf('/');
  const address = slash < 0 ? cidr : cidr.slice(0, slash);
  const family = isIP(address);
  if (family === 0) throw new RangeError(`${where}: "${cidr}" is neither an IP address nor a CIDR`);
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (slash < 0) {
    list.addAddress(address, type);
    return;
  }
  const prefixText = cidr.slice(slash + 1);
  const prefix = Number(prefixText);
  if (!/^[0-9]{1,3}$/.test(prefixText) || prefix > (family === 4 ? 32 : 128)) {
    throw new RangeError(`${where}: "${cidr}" has an invalid prefix length`);
  }
  list.addSubnet(address, prefix, type);
}

const refusedLists = refusedRanges.map(([label, ranges]) => {
  const list = new BlockList();
  for (const range of ranges) addRange(list, range, 'refused ranges');
  return [label, list] as const;
});

/** The eight 16-bit groups of an IPv6 address, or undefined when it does not parse. */
function ipv6Groups(address: string): number[] | undefined {
  const zone = address.indexOf('%');
  let text = zone < 0 ? address : address.slice(0, zone);
  const lastColon = text.lastIndexOf(':');
  const last = text.slice(lastColon + 1);
  if (last.includes('.')) {
    // A trailing dotted quad (`::ffff:127.0.0.1`) stands for the last two groups.
    const octets = last.split('.').map(Number);
    if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) return undefined;
    const hi = ((octets[0]! << 8) | octets[1]!).toString(16);
    const lo = ((octets[2]! << 8) | octets[3]!).toString(16);
    text = `${text.slice(0, lastColon + 1)}${hi}:${lo}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((g) => (/^[0-9a-fA-F]{1,4}$/.test(g) ? Number.parseInt(g, 16) : Number.NaN)));
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  const known = head.length + rest.length;
  if (known > 8 || (halves.length === 1 && known !== 8)) return undefined;
  const groups = [...head, ...new Array<number>(8 - known).fill(0), ...rest];
  return groups.some((g) => Number.isNaN(g)) ? undefined : groups;
}

/**
 * The IPv4 address embedded in an IPv6 one that translates to it (IPv4-mapped `::ffff:a.b.c.d`,
 * NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:AABB:CCDD::`), or undefined.
 */
export function embeddedIpv4(address: string): string | undefined {
  const g = ipv6Groups(address);
  if (g === undefined) return undefined;
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) return v4(g[6]!, g[7]!);
  if (g[0] === 0x64 && g[1] === 0xff9b && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0) return v4(g[6]!, g[7]!);
  if (g[0] === 0x2002) return v4(g[1]!, g[2]!);
  return undefined;
}

export function normaliseName(hostname: string): string {
  let name = hostname.toLowerCase();
  while (name.endsWith('.')) name = name.slice(0, -1);
  return name.startsWith('[') && name.endsWith(']') ? name.slice(1, -1) : name;
}

/**
 * Decides which addresses outbound connections may reach. Build one per client from an
 * `AddressPolicy`; it holds no state beyond the compiled lists.
 */
export class AddressGuard {
  private readonly allowList = new BlockList();
  private readonly allowsAny: boolean;
  private readonly resolveName: LookupAddresses;

  /**
   * @param policy the allow-list; an entry that is neither an address nor a CIDR throws a
   *   `RangeError` naming it.
   * @param lookup the resolver for host names. @default systemLookup
   */
  constructor(policy: AddressPolicy = {}, lookup: LookupAddresses = systemLookup) {
    const allow = policy.allow ?? [];
    allow.forEach((entry, index) => addRange(this.allowList, entry.trim(), `addressPolicy.allow[${index}]`));
    this.allowsAny = allow.length > 0;
    this.resolveName = lookup;
  }

  /**
   * Why an IP address is refused (`"loopback"`, `"private"`, …), or undefined when it may be
   * reached: it is public, or the allow-list names it. A string that is not an IP address is
   * refused as `"not an IP address"`.
   */
  refusal(address: string): string | undefined {
    const family = isIP(address);
    if (family === 0) return 'not an IP address';
    const type = family === 4 ? 'ipv4' : 'ipv6';
    const embedded = family === 6 ? embeddedIpv4(address) : undefined;
    if (this.allowsAny && (this.allowList.check(address, type) || (embedded !== undefined && this.allowList.check(embedded, 'ipv4')))) {
      return undefined;
    }
    if (embedded !== undefined) {
      const inner = this.refusal(embedded);
      return inner === undefined ? undefined : `${inner} (embedded in an IPv6 address)`;
    }
    for (const [label, list] of refusedLists) {
      if (list.check(address, type)) return label;
    }
    return undefined;
  }

  /**
   * Throws `PB_HTTP_PRIVATE_ADDRESS` when `address` (what `host` resolved to, or `host` itself
   * when it is a literal IP) is refused; returns otherwise.
   */
  assertAddress(host: string, address: string): void {
    const reason = this.refusal(address);
    if (reason === undefined) return;
    const what = host === address ? `${address} is a ${reason} address` : `${host} resolves to ${address}, a ${reason} address`;
    throw new PatchbayError(
      'PB_HTTP_PRIVATE_ADDRESS',
      `refused to connect: ${what}; list it in the connection's allowPrivateAddresses to reach it on purpose`,
    );
  }

  /** Throws `PB_HTTP_PRIVATE_ADDRESS` for a cloud metadata service's name (refused whatever it resolves to). */
  assertName(hostname: string): void {
    const name = normaliseName(hostname);
    if (refusedNames.has(name)) {
      throw new PatchbayError('PB_HTTP_PRIVATE_ADDRESS', `refused to connect: ${name} is a cloud metadata service`);
    }
  }

  /**
   * Resolves `hostname` and checks every address it resolves to; one refused address refuses
   * the name (a name mixing public and private answers is a rebinding attempt or a
   * misconfiguration). A literal IP is checked without resolving. Rejects with
   * `PB_HTTP_PRIVATE_ADDRESS`, or with the resolver's own error (`ENOTFOUND`, …).
   */
  async resolve(hostname: string): Promise<readonly ResolvedAddress[]> {
    const name = normaliseName(hostname);
    const family = isIP(name);
    if (family !== 0) {
      this.assertAddress(name, name);
      return [{ address: name, family }];
    }
    this.assertName(name);
    const addresses = await this.resolveName(name);
    if (addresses.length === 0) {
      throw Object.assign(new Error(`no address found for ${name}`), { code: 'ENOTFOUND', hostname: name });
    }
    for (const { address } of addresses) this.assertAddress(name, address);
    return addresses;
  }

  /**
   * A `lookup` for `net.connect` / `tls.connect` (same contract as `dns.lookup`) that hands the
   * socket only addresses this guard accepts.
   */
  readonly netLookup = (
    hostname: string,
    options: LookupOptions,
    callback: (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    this.resolve(hostname).then(
      (resolved) => {
        const wanted = options.family === 4 || options.family === 6 ? resolved.filter((a) => a.family === options.family) : resolved;
        const addresses = wanted.length > 0 ? wanted : resolved;
        if (options.all) callback(null, addresses.map((a) => ({ address: a.address, family: a.family })));
        else callback(null, addresses[0]!.address, addresses[0]!.family);
      },
      (error: NodeJS.ErrnoException) => callback(error, ''),
    );
  };
}
