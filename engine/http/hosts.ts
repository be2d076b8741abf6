// Host rules shared by validation and the client. Kept free of undici so that validating
// manifests does not load the HTTP stack.

/**
 * True when `url`'s host matches an allowed-host pattern: exact (`api.example.com`), a
 * wildcard over subdomains (`*.example.com`, not the apex), an IP (`127.0.0.1`, `::1` or
 * `[::1]`), each optionally with `:port` (then the port must match too). Case-insensitive.
 */
export function hostMatches(pattern: string, url: URL): boolean {
  const p = pattern.toLowerCase();
  const firstColon = p.indexOf(':');
  const bracketed = p.startsWith('[');
  // A bare IPv6 pattern has several colons and no port.
  const hasPort = bracketed ? /\]:[0-9]+$/.test(p) : firstColon > 0 && firstColon === p.lastIndexOf(':');
  const host = hasPort ? url.host : url.hostname;
  if (p.startsWith('*.')) return host.endsWith(p.slice(1)) && host.length > p.length - 1;
  if (p === host) return true;
  // IPv6 is compared in the URL's normal form (`[::ffff:127.0.0.1]` is `[::ffff:7f00:1]`).
  if (firstColon < 0 || (!bracketed && hasPort)) return false;
  try {
    return new URL(`http://${bracketed ? p : `[${p}]`}/`).host === host;
  } catch {
    // Not an IPv6 literal after all: it matched nothing above, so it matches nothing.
    return false;
  }
}

/** True for `localhost`, `127.x.y.z` and `::1` (with or without brackets or a root dot): hosts plain http may reach in tests. */
export function isLoopbackHost(host: string): boolean {
  const name = host.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
  return name === 'localhost' || name === '::1' || /^127\.\d+\.\d+\.\d+$/.test(name);
}
