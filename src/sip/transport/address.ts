import type { Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Endpoint, TransportProtocol } from '../message.js';

/** An address as sockets want it: IPv6 without brackets. */
export function hostForSocket(address: string): string {
  return address.length > 1 && address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
}

/** An address as SIP writes it in Via/Contact host: IPv6 in brackets (RFC 3261 §25.1). */
export function hostForSip(address: string): string {
  return address.includes(':') && !address.startsWith('[') ? `[${address}]` : address;
}

/** Key for a remote stream peer: address without brackets, lower-case, and port. */
export function peerKey(address: string, port: number): string {
  return `${hostForSocket(address).toLowerCase()}:${port}`;
}

export function isWildcard(address: string): boolean {
  const a = hostForSocket(address);
  return a === '0.0.0.0' || a === '::' || a === '';
}

/**
 * The address to advertise when bound to a wildcard: the first non-internal
 * address of the same family, else loopback.
 */
export function firstExternalAddress(ipv6: boolean): string {
  const nets = networkInterfaces();
  for (const list of Object.values(nets)) {
    for (const n of list ?? []) {
      if (n.internal) continue;
      if (ipv6 ? n.family === 'IPv6' : n.family === 'IPv4') return n.address;
    }
  }
  return ipv6 ? '::1' : '127.0.0.1';
}

/** Bind a stream listener (TCP, TLS, HTTP for WebSocket) and resolve with its endpoint; a bind error rejects and closes it. */
export function listenOn(server: Server, protocol: TransportProtocol, address: string, port: number): Promise<Endpoint> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      server.close();
      reject(err);
    };
    server.once('error', onError);
    server.listen(port, hostForSocket(address), () => {
      server.off('error', onError);
      const a = server.address();
      if (a === null || typeof a === 'string') {
        reject(new Error(`${protocol} listener has no address`));
        return;
      }
      resolve({ protocol, address: a.address, port: a.port });
    });
  });
}
