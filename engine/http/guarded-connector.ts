import { isIP, type Socket } from 'node:net';
import { buildConnector } from 'undici';
import { PatchbayError } from '../diag/errors.js';
import { normaliseName, type AddressGuard } from './address-guard.js';

// Kept apart from address-guard.ts so code that only classifies addresses (manifest
// validation) does not load undici.

/** How the guarded connector opens sockets. */
export interface GuardedConnectorOptions {
  /** Milliseconds to establish TCP (and TLS) before giving up. */
  readonly connectTimeoutMs: number;
}

/**
 * An undici connector (pass as the `connect` option of an `Agent`) that refuses addresses the
 * guard refuses: a literal IP before any socket is opened, a name inside the socket's own
 * `lookup` (so the address checked is the address connected to), and, as a second line, the
 * socket's remote address once connected. Refusals reach the request as
 * `PB_HTTP_PRIVATE_ADDRESS`.
 */
export function buildGuardedConnector(guard: AddressGuard, options: GuardedConnectorOptions): buildConnector.connector {
  const connect = buildConnector({ timeout: options.connectTimeoutMs, lookup: guard.netLookup });
  return (target, callback) => {
    try {
      const hostname = normaliseName(target.hostname);
      if (isIP(hostname) !== 0) guard.assertAddress(hostname, hostname);
      else guard.assertName(hostname);
    } catch (error) {
      callback(error as Error, null);
      return;
    }
    connect(target, (error, socket) => {
      if (error !== null) {
        callback(error, null);
        return;
      }
      const remote = (socket as Socket).remoteAddress;
      try {
        if (remote === undefined) throw new PatchbayError('PB_HTTP_NETWORK', `the connection to ${target.hostname} has no remote address`);
        guard.assertAddress(target.hostname, remote);
      } catch (refused) {
        socket.destroy();
        callback(refused as Error, null);
        return;
      }
      callback(null, socket);
    });
  };
}
