import type { Logger } from '../../util/logger.js';
import type { Endpoint, SipMessage, TransportProtocol } from '../message.js';
import type { ParseFailure } from './routing.js';
import { createResponse } from '../message.js';
import { parseMessage } from '../parser.js';
import { serializeMessage } from '../serializer.js';
import { firstExternalAddress, hostForSip, isWildcard } from './address.js';
import { TcpTransport } from './tcp.js';
import { UdpTransport } from './udp.js';

export interface ListenSpec {
  protocol: 'udp' | 'tcp';
  address: string;
  /** 0 = ephemeral */
  port: number;
}

export interface TransportLayerOptions {
  listen: ListenSpec[];
  logger: Logger;
  maxMessageSize: number;
  maxConnections: number;
  tcpIdleTimeoutMs: number;
  /** UDP socket receive and send buffer size in bytes (the kernel may cap it: net.core.rmem_max / wmem_max). */
  udpBufferBytes?: number;
  /** host written in Via sent-by; default the bound address, or an interface address when bound to a wildcard */
  viaHost?: string;
}

export interface TransportLayerHandlers {
  onMessage(message: SipMessage, source: Endpoint, local: Endpoint, connectionId: string | undefined): void;
  onParseError(failure: ParseFailure, source: Endpoint, local: Endpoint, connectionId: string | undefined): void;
  onConnectionClosed(connectionId: string, error: Error | undefined): void;
}


/**
 * The transports of one stack: parses what arrives, sends bytes, and knows
 * the address to advertise per protocol.
 */
export class TransportLayer {
  private udp: UdpTransport | undefined;
  private readonly tcp: TcpTransport;
  private readonly logger: Logger;
  private readonly maxMessageSize: number;
  private readonly advertised = new Map<TransportProtocol, { host: string; port: number }>();

  private constructor(options: TransportLayerOptions, private readonly handlers: TransportLayerHandlers) {
    this.logger = options.logger;
    this.maxMessageSize = options.maxMessageSize;
    this.tcp = new TcpTransport(
      {
        maxMessageSize: options.maxMessageSize,
        maxConnections: options.maxConnections,
        idleTimeoutMs: options.tcpIdleTimeoutMs,
      },
      {
        onMessage: (data, source, local, connectionId) => this.receive(data, source, local, connectionId, true),
        onFramingError: (connectionId, chunk, reason, fatal) => this.framingError(connectionId, chunk, reason, fatal),
        onClose: (connectionId, error) => this.handlers.onConnectionClosed(connectionId, error),
      },
      options.logger,
    );
  }

  static async start(options: TransportLayerOptions, handlers: TransportLayerHandlers): Promise<TransportLayer> {
    const layer = new TransportLayer(options, handlers);
    try {
      for (const spec of options.listen) {
        if (spec.protocol === 'udp') {
          if (layer.udp !== undefined) throw new Error('only one UDP listener is supported');
          layer.udp = await UdpTransport.bind(
            spec.address,
            spec.port,
            options.maxMessageSize,
            options.udpBufferBytes,
            { onDatagram: (data, source, local) => layer.receive(data, source, local, undefined, false) },
            options.logger,
          );
          layer.setAdvertised('udp', layer.udp.local, options.viaHost);
        } else if (spec.protocol === 'tcp') {
          if (layer.tcp.local !== undefined) throw new Error('only one TCP listener is supported');
          const local = await layer.tcp.listen(spec.address, spec.port);
          layer.setAdvertised('tcp', local, options.viaHost);
        } else {
          throw new Error(`unsupported listen protocol ${String((spec as { protocol: unknown }).protocol)}`);
        }
      }
    } catch (err) {
      await layer.close();
      throw err;
    }
    return layer;
  }

  private setAdvertised(protocol: TransportProtocol, local: Endpoint, viaHost: string | undefined): void {
    const host = viaHost ?? (isWildcard(local.address) ? firstExternalAddress(local.address.includes(':')) : local.address);
    this.advertised.set(protocol, { host: hostForSip(host), port: local.port });
  }

  localEndpoint(protocol: TransportProtocol): Endpoint | undefined {
    if (protocol === 'udp') return this.udp?.local;
    if (protocol === 'tcp') return this.tcp.local;
    return undefined;
  }

  /**
   * Host and port to put in Via sent-by (and Contact) for a protocol. TCP
   * without a listener borrows the UDP address (responses come back on the
   * connection anyway).
   */
  sentBy(protocol: TransportProtocol): { host: string; port: number } | undefined {
    if (protocol === 'tcp') return this.advertised.get('tcp') ?? this.advertised.get('udp');
    return this.advertised.get(protocol);
  }

  isOpen(connectionId: string | undefined): boolean {
    return this.tcp.isOpen(connectionId);
  }

  ref(connectionId: string): void {
    this.tcp.ref(connectionId);
  }

  unref(connectionId: string): void {
    this.tcp.unref(connectionId);
  }

  get tcpConnectionCount(): number {
    return this.tcp.connectionCount;
  }

  /**
   * Send bytes. Returns the connection id used for TCP, undefined for UDP,
   * null when no transport serves the protocol. UDP send failures reach
   * `onError`; TCP failures arrive as onConnectionClosed for the id.
   */
  send(
    data: Buffer,
    destination: Endpoint,
    connectionId?: string,
    onError?: (err: Error) => void,
  ): string | undefined | null {
    if (destination.protocol === 'udp') {
      if (this.udp === undefined) return null;
      this.udp.send(data, destination.address, destination.port, onError);
      return undefined;
    }
    if (destination.protocol === 'tcp') {
      try {
        return this.tcp.send(data, destination.address, destination.port, connectionId);
      } catch (err) {
        onError?.(err instanceof Error ? err : new Error(String(err)));
        return null;
      }
    }
    return null;
  }

  private receive(data: Buffer, source: Endpoint, local: Endpoint, connectionId: string | undefined, stream: boolean): void {
    const result = parseMessage(data, { maxSize: this.maxMessageSize, stream });
    if (result.ok) {
      this.handlers.onMessage(result.message, source, local, connectionId);
      return;
    }
    this.logger.debug({ status: result.status, reason: result.reason, from: `${source.address}:${source.port}` }, 'unparseable message');
    const failure: ParseFailure = { status: result.status, reason: result.reason };
    if (result.request !== undefined) failure.request = result.request;
    this.handlers.onParseError(failure, source, local, connectionId);
  }

  /**
   * The framer gave up on a stream. When it could give the header block of
   * the offending request, answer it (513 for size) on the connection before
   * it closes.
   */
  private framingError(connectionId: string, head: Buffer | undefined, reason: string, fatal: boolean): void {
    if (!fatal || head === undefined || !this.tcp.isOpen(connectionId)) return;
    const parsed = parseMessage(head, { maxSize: Number.MAX_SAFE_INTEGER });
    const request = parsed.ok ? (parsed.message.kind === 'request' ? parsed.message : undefined) : parsed.request;
    if (request === undefined || request.method === 'ACK') return;
    const tooLarge = /too large/i.test(reason);
    const response = createResponse(request, tooLarge ? 513 : 400, tooLarge ? 'Message Too Large' : reason);
    this.tcp.send(serializeMessage(response), '', 0, connectionId);
    this.logger.debug({ connectionId, reason }, 'answered before closing stream');
  }

  async close(): Promise<void> {
    const udp = this.udp;
    this.udp = undefined;
    await Promise.all([udp?.close(), this.tcp.close()]);
  }
}
