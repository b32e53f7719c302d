import { isIP, type Socket } from 'node:net';
import { connect, createServer, type ConnectionOptions, type TlsOptions } from 'node:tls';
import type { Logger } from '../../util/logger.js';
import { hostForSocket, peerKey } from './address.js';
import type { ConnectionHygiene } from './hygiene.js';
import { TcpTransport, type StreamSockets, type TcpHandlers, type TcpOptions } from './tcp.js';

/** Server side of a TLS or WSS listener. Certificates and keys are PEM text. */
export interface TlsServerOptions {
  cert: string;
  key: string;
  /** CAs that client certificates must chain to (default: Node's bundled roots) */
  ca?: string | string[];
  /** require and verify a client certificate (mutual TLS); default false */
  requestClientCert?: boolean;
  /** ms a client gets to finish the handshake; default 10000 */
  handshakeTimeoutMs?: number;
}

/** Client side of an outbound TLS connection. PEM text. */
export interface TlsClientOptions {
  /** CAs the server certificate must chain to (default: Node's bundled roots) */
  ca?: string | string[];
  /** client certificate and key: mutual TLS when both are given */
  cert?: string;
  key?: string;
  /** name sent as SNI and checked against the server certificate (default: the address) */
  servername?: string;
  /** verify the server certificate; default true */
  rejectUnauthorized?: boolean;
}

/**
 * TLS client options per destination: an exact "address:port" entry wins,
 * then an "address" entry, then the default.
 */
export class TlsClientTable {
  private readonly byKey = new Map<string, TlsClientOptions>();

  constructor(private fallback: TlsClientOptions = {}) {}

  /** `destination` is "address:port" or "address" (IPv6 with or without brackets); undefined removes. */
  set(destination: string, options: TlsClientOptions | undefined): void {
    const key = normalizeDestination(destination);
    if (options === undefined) this.byKey.delete(key);
    else this.byKey.set(key, options);
  }

  setDefault(options: TlsClientOptions): void {
    this.fallback = options;
  }

  lookup(host: string, port: number): TlsClientOptions {
    if (this.byKey.size === 0) return this.fallback;
    return this.byKey.get(peerKey(host, port)) ?? this.byKey.get(hostForSocket(host).toLowerCase()) ?? this.fallback;
  }
}

/** "[::1]:5061" → "::1:5061", "Host" → "host"; a bare IPv6 address stays an address. */
function normalizeDestination(destination: string): string {
  const d = destination.trim();
  if (d.startsWith('[')) {
    const close = d.indexOf(']');
    if (close > 0) {
      const host = d.slice(1, close);
      const rest = d.slice(close + 1);
      const port = rest.startsWith(':') ? Number(rest.slice(1)) : NaN;
      return Number.isInteger(port) ? peerKey(host, port) : host.toLowerCase();
    }
  }
  if (isIP(d) === 6) return d.toLowerCase();
  const colon = d.lastIndexOf(':');
  if (colon > 0) {
    const port = Number(d.slice(colon + 1));
    if (Number.isInteger(port) && port > 0) return peerKey(d.slice(0, colon), port);
  }
  return d.toLowerCase();
}

/** Node TLS server options for a listener. */
export function tlsServerContext(options: TlsServerOptions): TlsOptions {
  const mutual = options.requestClientCert === true;
  return {
    cert: options.cert,
    key: options.key,
    ...(options.ca !== undefined ? { ca: options.ca } : {}),
    requestCert: mutual,
    rejectUnauthorized: mutual,
    handshakeTimeout: options.handshakeTimeoutMs ?? 10_000,
    minVersion: 'TLSv1.2',
  };
}

/** Node TLS client options for host:port (also used to probe a peer for the reason of a failure). */
export function clientContext(host: string, port: number, options: TlsClientOptions): ConnectionOptions {
  const o: ConnectionOptions = {
    host,
    port,
    rejectUnauthorized: options.rejectUnauthorized ?? true,
    minVersion: 'TLSv1.2',
  };
  if (options.ca !== undefined) o.ca = options.ca;
  if (options.cert !== undefined && options.key !== undefined) {
    o.cert = options.cert;
    o.key = options.key;
  }
  // SNI carries names only (RFC 6066 §3); certificate checks use the name when given
  if (options.servername !== undefined && isIP(options.servername) === 0) o.servername = options.servername;
  return o;
}

function tlsSockets(server: TlsServerOptions | undefined, clients: TlsClientTable, logger: Logger): StreamSockets {
  return {
    protocol: 'tls',
    createServer(accept) {
      if (server === undefined) throw new Error('a tls listener needs a certificate and key');
      const s = createServer(tlsServerContext(server), (socket) => {
        socket.setNoDelay(true);
        accept(socket);
      });
      // a failed handshake (bad certificate, plain text, timeout) only costs that socket
      s.on('tlsClientError', (err, socket) => {
        logger.debug({ err: err.message, from: `${socket.remoteAddress}:${socket.remotePort}` }, 'tls handshake failed');
        socket.destroy();
      });
      return s;
    },
    connect(host, port): Socket {
      const socket = connect(clientContext(host, port, clients.lookup(host, port)));
      socket.setNoDelay(true);
      return socket;
    },
    readyEvent: 'secureConnect',
  };
}

/**
 * SIP over TLS (RFC 3261 §26.2.1, transport "TLS" in Via): the TCP stream
 * transport with TLS sockets. `server` is needed only to listen.
 */
export function createTlsTransport(
  options: TcpOptions,
  handlers: TcpHandlers,
  logger: Logger,
  server: TlsServerOptions | undefined,
  clients: TlsClientTable,
  hygiene?: ConnectionHygiene,
): TcpTransport {
  return new TcpTransport(options, handlers, logger, tlsSockets(server, clients, logger), hygiene);
}
