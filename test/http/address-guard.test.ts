import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AddressGuard, embeddedIpv4, type ResolvedAddress } from '../../engine/http/address-guard.js';
import { HttpClient, type HttpClientOptions } from '../../engine/http/client.js';
import { rejection } from '../support/errors.js';

// A fake resolver: names map to fixed answers, and every question is recorded.
const answers: Readonly<Record<string, readonly ResolvedAddress[]>> = {
  'internal.test': [{ address: '10.0.0.5', family: 4 }],
  'meta.test': [{ address: '169.254.169.254', family: 4 }],
  'loop.test': [{ address: '127.0.0.1', family: 4 }],
  'v6.test': [{ address: '::1', family: 6 }],
  'mapped.test': [{ address: '::ffff:127.0.0.1', family: 6 }],
  'mixed.test': [
    { address: '93.184.215.14', family: 4 },
    { address: '192.168.1.20', family: 4 },
  ],
};
const asked: string[] = [];
async function fakeLookup(name: string): Promise<readonly ResolvedAddress[]> {
  asked.push(name);
  const found = answers[name];
  if (found === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
  return found;
}

describe('AddressGuard.refusal', () => {
  const guard = new AddressGuard();
  const refused: [string, string][] = [
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['::1', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['fc00::1', 'private'],
    ['fd00:ec2::254', 'private'],
    ['169.254.169.254', 'link-local'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['100.64.0.1', 'carrier-grade NAT'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['240.0.0.1', 'reserved'],
    ['192.0.2.10', 'reserved'],
    ['2001:db8::1', 'reserved'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:169.254.169.254', 'link-local'],
    ['0:0:0:0:0:ffff:a00:1', 'private'],
    ['64:ff9b::a00:1', 'private'],
    ['64:ff9b::127.0.0.1', 'loopback'],
    ['2002:a00:1::1', 'private'],
    ['example.com', 'not an IP address'],
  ];
  for (const [address, label] of refused) {
    it(`refuses ${address} as ${label}`, () => {
      expect(guard.refusal(address)).toContain(label);
    });
  }

  it('lets public addresses through, including NAT64 and 6to4 forms of public IPv4', () => {
    for (const address of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '64:ff9b::808:808', '2002:808:808::1']) {
      expect(guard.refusal(address), address).toBeUndefined();
    }
  });

  it('honours the allow-list for exact addresses and CIDRs, including the IPv4-mapped form', () => {
    const allowing = new AddressGuard({ allow: ['127.0.0.1/32', '10.20.0.0/16', '::1'] });
    expect(allowing.refusal('127.0.0.1')).toBeUndefined();
    expect(allowing.refusal('::ffff:127.0.0.1')).toBeUndefined();
    expect(allowing.refusal('10.20.3.4')).toBeUndefined();
    expect(allowing.refusal('::1')).toBeUndefined();
    expect(allowing.refusal('127.0.0.2')).toBe('loopback');
    expect(allowing.refusal('10.21.0.1')).toBe('private');
    expect(allowing.refusal('169.254.169.254')).toContain('link-local');
  });

  it('refuses an allow-list entry that is not an address or CIDR, naming it', () => {
    expect(() => new AddressGuard({ allow: ['127.0.0.1', 'localhost'] })).toThrow(/addressPolicy\.allow\[1\].*localhost/);
    expect(() => new AddressGuard({ allow: ['10.0.0.0/33'] })).toThrow(/prefix length/);
  });

  it('extracts embedded IPv4 addresses', () => {
    expect(embeddedIpv4('::ffff:1.2.3.4')).toBe('1.2.3.4');
    expect(embeddedIpv4('::ffff:102:304')).toBe('1.2.3.4');
    expect(embeddedIpv4('64:ff9b::102:304')).toBe('1.2.3.4');
    expect(embeddedIpv4('2002:102:304::')).toBe('1.2.3.4');
    expect(embeddedIpv4('2606:4700::1')).toBeUndefined();
    expect(embeddedIpv4('1:2:3:4:5:6:7:8:9')).toBeUndefined();
  });
});

describe('AddressGuard.resolve', () => {
  it('refuses a name if any of its addresses is refused, and a metadata name without asking DNS', async () => {
    asked.length = 0;
    const guard = new AddressGuard({}, fakeLookup);
    expect((await rejection(guard.resolve('mixed.test'))).message).toContain('192.168.1.20');
    expect((await rejection(guard.resolve('metadata.google.internal.'))).code).toBe('PB_HTTP_PRIVATE_ADDRESS');
    expect(asked).toEqual(['mixed.test']);
  });
});

// ---------------------------------------------------------------------------------------------
// Through the real client: a real server on 127.0.0.1 counts connections, so a refusal can be
// shown to have sent nothing.

describe('HttpClient with the SSRF guard', () => {
  let server: Server;
  let port = 0;
  let connections = 0;
  let requests = 0;
  let tlsPort = 0;
  let tlsConnections = 0;
  let tlsServer: NetServer;
  const clients: HttpClient[] = [];
  const client = (options: HttpClientOptions = {}) => {
    const made = new HttpClient({ allowHttpHosts: ['*.test', 'localhost', '127.0.0.1', '::ffff:127.0.0.1', '::1'], lookup: fakeLookup, ...options });
    clients.push(made);
    return made;
  };
  const get = (href: string) => ({ method: 'GET' as const, url: new URL(href), headers: {} });

  beforeAll(async () => {
    server = createHttpServer((req, res) => {
      requests += 1;
      if (req.url === '/close') res.setHeader('connection', 'close');
      res.end('reached');
    });
    server.on('connection', () => (connections += 1));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    // Stands in for a TLS server: it only needs to count connection attempts.
    tlsServer = createNetServer((socket) => {
      tlsConnections += 1;
      socket.destroy();
    });
    await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
    tlsPort = (tlsServer.address() as AddressInfo).port;
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    connections = 0;
    requests = 0;
    tlsConnections = 0;
    asked.length = 0;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await new Promise<void>((resolve) => tlsServer.close(() => resolve()));
  });

  const refusedNames: [string, string][] = [
    ['internal.test', '10.0.0.5'],
    ['meta.test', '169.254.169.254'],
    ['loop.test', '127.0.0.1'],
    ['v6.test', '::1'],
    ['mapped.test', '::ffff:127.0.0.1'],
  ];
  for (const [name, address] of refusedNames) {
    it(`refuses ${name} (resolves to ${address}) without connecting`, async () => {
      const error = await rejection(client().send(get(`http://${name}:${port}/`)));
      expect(error.code).toBe('PB_HTTP_PRIVATE_ADDRESS');
      expect(error.retry).toBe('terminal');
      expect(error.message).toContain(address);
      expect(error.message).toContain(`GET http://${name}:${port}/`);
      expect(asked).toContain(name);
      expect(connections).toBe(0);
    });
  }

  it('checks at connect time over TLS too (the socket resolves through the guard)', async () => {
    const error = await rejection(client().send(get(`https://loop.test:${tlsPort}/`)));
    expect(error.code).toBe('PB_HTTP_PRIVATE_ADDRESS');
    expect(asked).toEqual(['loop.test']);
    expect(tlsConnections).toBe(0);
  });

  it('refuses localhost through the system resolver', async () => {
    const error = await rejection(new HttpClient({ allowHttpHosts: ['localhost'] }).send(get(`http://localhost:${port}/`)));
    expect(error.code).toBe('PB_HTTP_PRIVATE_ADDRESS');
    expect(error.message).toMatch(/localhost resolves to (127\.0\.0\.1|::1)/);
    expect(connections).toBe(0);
  });

  it('refuses literal addresses, IPv4-mapped IPv6 included', async () => {
    for (const href of [`http://127.0.0.1:${port}/`, `http://[::ffff:127.0.0.1]:${port}/`, `http://[::1]:${port}/`]) {
      const error = await rejection(client().send(get(href)));
      expect(error.code, href).toBe('PB_HTTP_PRIVATE_ADDRESS');
    }
    expect(asked).toEqual([]);
    expect(connections).toBe(0);
  });

  it('refuses a metadata service by name', async () => {
    const error = await rejection(client({ allowHttpHosts: ['metadata.google.internal'] }).send(get('http://metadata.google.internal/computeMetadata/v1/')));
    expect(error.code).toBe('PB_HTTP_PRIVATE_ADDRESS');
    expect(asked).toEqual([]);
  });

  it('reaches the same local server once the allow-list names its address', async () => {
    const allowed = client({ addressPolicy: { allow: ['127.0.0.1/32', '::1/128'] } });
    for (const href of [`http://127.0.0.1:${port}/`, `http://loop.test:${port}/`, `http://[::ffff:127.0.0.1]:${port}/`]) {
      const response = await allowed.send(get(href));
      expect(Buffer.from(response.body).toString(), href).toBe('reached');
    }
    expect(requests).toBe(3);
    // The allow-list is exact: another private address stays refused.
    expect((await rejection(allowed.send(get(`http://internal.test:${port}/`)))).code).toBe('PB_HTTP_PRIVATE_ADDRESS');
  });

  it('checks every new connection at its own resolution, so a name cannot rebind after a first check', async () => {
    let calls = 0;
    const rebinding = async (name: string): Promise<readonly ResolvedAddress[]> => {
      asked.push(name);
      calls += 1;
      return [{ address: calls === 1 ? '127.0.0.1' : '10.0.0.7', family: 4 }];
    };
    const c = client({ lookup: rebinding, addressPolicy: { allow: ['127.0.0.1/32'] } });
    // The server closes this connection after answering, so the next call must connect again.
    const first = await c.send(get(`http://flip.test:${port}/close`));
    expect(Buffer.from(first.body).toString()).toBe('reached');
    const error = await rejection(c.send(get(`http://flip.test:${port}/again`)));
    expect(error.code).toBe('PB_HTTP_PRIVATE_ADDRESS');
    expect(error.message).toContain('10.0.0.7');
    expect(calls).toBe(2);
    expect(requests).toBe(1);
  });
});
