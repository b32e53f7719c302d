import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { lookup as dnsLookup, type LookupOneOptions } from 'node:dns';
import { isIP } from 'node:net';
import type { Logger } from '../../util/logger.js';
import type { Endpoint } from '../message.js';
import { hostForSocket } from './address.js';

export interface UdpHandlers {
  /** One datagram that may be a SIP message (keep-alives already dropped). */
  onDatagram(data: Buffer, source: Endpoint, local: Endpoint): void;
}

/** A bound UDP socket: one datagram is one message (RFC 3261 §18.3). */
export class UdpTransport {
  private closed = false;

  private constructor(
    private readonly socket: Socket,
    readonly local: Endpoint,
    private readonly maxMessageSize: number,
    private readonly handlers: UdpHandlers,
    private readonly logger: Logger,
  ) {
    socket.on('message', (msg, rinfo) => this.receive(msg, rinfo));
    socket.on('error', (err) => this.logger.warn({ err: err.message, local: `${local.address}:${local.port}` }, 'udp socket error'));
  }

  static bind(
    address: string,
    port: number,
    maxMessageSize: number,
    bufferBytes: number | undefined,
    handlers: UdpHandlers,
    logger: Logger,
  ): Promise<UdpTransport> {
    const host = hostForSocket(address);
    // A burst of answers to a large fan-out must fit in the socket buffer; the default (~200 KB) drops them.
    const socket = createSocket({
      type: host.includes(':') ? 'udp6' : 'udp4',
      lookup: literalFirstLookup,
      ...(bufferBytes !== undefined ? { recvBufferSize: bufferBytes, sendBufferSize: bufferBytes } : {}),
    });
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        socket.close();
        reject(err);
      };
      socket.once('error', onError);
      socket.bind(port, host, () => {
        socket.off('error', onError);
        const bound = socket.address();
        if (bufferBytes !== undefined) {
          // Linux reports twice the size it grants; less than asked means the kernel capped it.
          const granted = Math.floor(socket.getRecvBufferSize() / 2);
          const log = { requested: bufferBytes, granted, local: `${bound.address}:${bound.port}` };
          if (granted < bufferBytes) {
            logger.warn(log, 'udp receive buffer capped by the kernel; raise net.core.rmem_max (and wmem_max) for high load');
          } else logger.debug(log, 'udp buffers set');
        }
        resolve(
          new UdpTransport(socket, { protocol: 'udp', address: bound.address, port: bound.port }, maxMessageSize, handlers, logger),
        );
      });
    });
  }

  private receive(msg: Buffer, rinfo: RemoteInfo): void {
    if (msg.length > this.maxMessageSize) {
      this.logger.debug({ size: msg.length, from: `${rinfo.address}:${rinfo.port}` }, 'udp datagram over size limit dropped');
      return;
    }
    if (isKeepAlive(msg)) return;
    const source: Endpoint = { protocol: 'udp', address: rinfo.address, port: rinfo.port };
    try {
      this.handlers.onDatagram(msg, source, this.local);
    } catch (err) {
      this.logger.error({ err: errorText(err) }, 'udp message handler failed');
    }
  }

  /** The kernel's receive buffer: `bytes` asked for (Linux grants twice that, within net.core.rmem_max). */
  setReceiveBufferBytes(bytes: number): void {
    if (this.closed) return;
    try {
      this.socket.setRecvBufferSize(bytes);
    } catch (err) {
      this.logger.debug({ err: errorText(err), bytes }, 'udp receive buffer not resized');
    }
  }

  /** The kernel's receive buffer as granted (Linux reports twice the size asked for). */
  receiveBufferBytes(): number {
    return this.socket.getRecvBufferSize();
  }

  /** Send a datagram; `onError` gets a send failure. */
  send(data: Buffer, address: string, port: number, onError?: (err: Error) => void): void {
    if (this.closed) {
      onError?.(new Error('udp transport closed'));
      return;
    }
    try {
      const host = hostForSocket(address);
      // A send callback costs a closure and a process.nextTick per datagram even when the send completed at
      // once (dgram reports it on the next tick): only when someone listens for the failure.
      if (onError === undefined && !this.logger.isLevelEnabled('debug')) this.socket.send(data, port, host);
      else {
        this.socket.send(data, port, host, (err) => {
          if (err) {
            this.logger.debug({ err: err.message, to: `${address}:${port}` }, 'udp send failed');
            onError?.(err);
          }
        });
      }
    } catch (err) {
      // synchronous failures: bad port, socket closed underneath
      onError?.(err instanceof Error ? err : new Error(String(err)));
    }
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }
}

/**
 * dgram resolves the destination of every send, even an IP literal, through
 * dns.lookup, which answers a literal on the next tick: one extra tick and
 * closure per datagram on the hot path (every destination the stack sends to
 * is an address already). A literal is answered at once; a name still goes to
 * dns.lookup.
 */
function literalFirstLookup(
  hostname: string,
  options: LookupOneOptions,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  const family = isIP(hostname);
  if (family !== 0) {
    callback(null, hostname, family);
    return;
  }
  // dgram passes the socket's family as a bare number (4 or 6)
  const o = options as LookupOneOptions | number;
  dnsLookup(hostname, typeof o === 'number' ? { family: o } : o, callback);
}

/** Bare CRLFs some UAs send as UDP keep-alives, and STUN-looking datagrams. */
function isKeepAlive(msg: Buffer): boolean {
  if (msg.length === 0) return true;
  const first = msg[0]!;
  if (first === 0 || first === 1) return true; // STUN message types start 0x00/0x01 (RFC 5389 §6); SIP starts with a letter or CRLF
  for (let i = 0; i < msg.length; i++) {
    const c = msg[i]!;
    if (c !== 0x0d && c !== 0x0a && c !== 0x20 && c !== 0x09) return false;
  }
  return true;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
