import type { Logger } from '../../util/logger.js';
import type { Endpoint, SipMessage, TransportProtocol } from '../message.js';
import type { ParseFailure } from './routing.js';
import { createResponse } from '../message.js';
import { parseMessage } from '../parser.js';
import { serializeMessage } from '../serializer.js';
import { firstExternalAddress, hostForSip, isWildcard } from './address.js';
import { noHygiene, type ConnectionHygiene } from './hygiene.js';
import { TcpTransport } from './tcp.js';
import { createTlsTransport, TlsClientTable, type TlsClientOptions, type TlsServerOptions } from './tls.js';
import { UdpTransport } from './udp.js';
import { WsTransport } from './ws.js';

export type { TlsClientOptions, TlsServerOptions } from './tls.js';

export interface ListenSpec {
  protocol: 'udp' | 'tcp' | 'tls' | 'ws' | 'wss';
  address: string;
  /** 0 = ephemeral */
  port: number;
  /** tls and wss: the server certificate and key (PEM) and the client-certificate policy */
  tls?: TlsServerOptions;
  /** ws and wss: HTTP path where the upgrade is accepted; default "/" */
  path?: string;
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
  /** options for outbound TLS connections without a per-destination entry (default: verify against Node's roots) */
  tlsClient?: TlsClientOptions;
  /** WebSocket ping period (dead peers are dropped after one unanswered ping); default 30000, 0 = none */
  wsPingIntervalMs?: number;
  /** connection hygiene of the stream transports (message time, stranger idle, per-source cap); default none */
  hygiene?: ConnectionHygiene;
}

export interface TransportLayerHandlers {
  onMessage(message: SipMessage, source: Endpoint, local: Endpoint, connectionId: string | undefined): void;
  onParseError(failure: ParseFailure, source: Endpoint, local: Endpoint, connectionId: string | undefined): void;
  onConnectionClosed(connectionId: string, error: Error | undefined): void;
  /** When set, every received message goes here first (the stack's ingress queue), which calls deliver() in turn. */
  onReceived?(data: Buffer, source: Endpoint, local: Endpoint, connectionId: string | undefined, stream: boolean): void;
}


/**
 * The transports of one stack: parses what arrives, sends bytes, and knows
 * the address to advertise per protocol.
 */
export class TransportLayer {
  private udp: UdpTransport | undefined;
  private readonly tcp: TcpTransport;
  private readonly tls: TcpTransport;
  private ws: WsTransport | undefined;
  private wss: WsTransport | undefined;
  private readonly tlsClients: TlsClientTable;
  private readonly logger: Logger;
  private readonly maxMessageSize: number;
  private readonly advertised = new Map<TransportProtocol, { host: string; port: number }>();
  readonly hygiene: ConnectionHygiene;

  private constructor(private readonly options: TransportLayerOptions, private readonly handlers: TransportLayerHandlers) {
    this.logger = options.logger;
    this.hygiene = options.hygiene ?? noHygiene();
    this.maxMessageSize = options.maxMessageSize;
    const streamOptions = {
      maxMessageSize: options.maxMessageSize,
      maxConnections: options.maxConnections,
      idleTimeoutMs: options.tcpIdleTimeoutMs,
    };
    const streamHandlers = {
      onMessage: (data: Buffer, source: Endpoint, local: Endpoint, connectionId: string) =>
        this.receive(data, source, local, connectionId, true),
      onFramingError: (connectionId: string, chunk: Buffer | undefined, reason: string, fatal: boolean) =>
        this.framingError(connectionId, chunk, reason, fatal),
      onClose: (connectionId: string, error: Error | undefined) => this.handlers.onConnectionClosed(connectionId, error),
    };
    this.tcp = new TcpTransport(streamOptions, streamHandlers, options.logger, undefined, this.hygiene);
    this.tlsClients = new TlsClientTable(options.tlsClient);
    const tlsListen = options.listen.find((l) => l.protocol === 'tls');
    this.tls = createTlsTransport(streamOptions, streamHandlers, options.logger, tlsListen?.tls, this.tlsClients, this.hygiene);
  }

  private startWs(spec: ListenSpec): Promise<Endpoint> {
    const protocol = spec.protocol === 'wss' ? 'wss' : 'ws';
    if ((protocol === 'ws' ? this.ws : this.wss) !== undefined) throw new Error(`only one ${protocol.toUpperCase()} listener is supported`);
    const transport = new WsTransport(
      {
        protocol,
        maxMessageSize: this.options.maxMessageSize,
        maxConnections: this.options.maxConnections,
        ...(this.options.wsPingIntervalMs !== undefined ? { pingIntervalMs: this.options.wsPingIntervalMs } : {}),
      },
      {
        // RFC 7118 §5: the WebSocket message is the framing; Content-Length is optional as on UDP
        onMessage: (data, source, local, connectionId) => this.receive(data, source, local, connectionId, false),
        onClose: (connectionId, error) => this.handlers.onConnectionClosed(connectionId, error),
      },
      this.logger,
      this.hygiene,
    );
    if (protocol === 'ws') this.ws = transport;
    else this.wss = transport;
    return transport.listen(spec.address, spec.port, spec.path ?? '/', spec.tls);
  }

  /**
   * Under a SIP flood, bound the UDP receive buffer to `bytes` (when smaller than the configured one) so the
   * kernel holds little stale backlog; `undefined` restores the configured size (ingress.ts decides when).
   */
  boundUdpReceiveBuffer(bytes: number | undefined): void {
    const configured = this.options.udpBufferBytes;
    if (this.udp === undefined || configured === undefined) return;
    this.udp.setReceiveBufferBytes(bytes === undefined ? configured : Math.min(bytes, configured));
  }

  /** The UDP receive buffer as the kernel grants it (diagnostics, tests); 0 without a UDP listener. */
  udpReceiveBufferBytes(): number {
    return this.udp?.receiveBufferBytes() ?? 0;
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
        } else if (spec.protocol === 'tls') {
          if (layer.tls.local !== undefined) throw new Error('only one TLS listener is supported');
          if (spec.tls === undefined) throw new Error('a tls listener needs tls: { cert, key }');
          const local = await layer.tls.listen(spec.address, spec.port);
          layer.setAdvertised('tls', local, options.viaHost);
        } else if (spec.protocol === 'ws' || spec.protocol === 'wss') {
          if (spec.protocol === 'wss' && spec.tls === undefined) throw new Error('a wss listener needs tls: { cert, key }');
          const local = await layer.startWs(spec);
          layer.setAdvertised(spec.protocol, local, options.viaHost);
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
    switch (protocol) {
      case 'udp':
        return this.udp?.local;
      case 'tcp':
        return this.tcp.local;
      case 'tls':
        return this.tls.local;
      case 'ws':
        return this.ws?.local;
      case 'wss':
        return this.wss?.local;
    }
  }

  /**
   * Host and port to put in Via sent-by (and Contact) for a protocol. TCP
   * without a listener borrows the UDP address, TLS the TCP one then the UDP
   * one (responses come back on the connection anyway). WS and WSS only with
   * their listener: the gateway opens no WebSocket connections.
   */
  sentBy(protocol: TransportProtocol): { host: string; port: number } | undefined {
    if (protocol === 'tcp') return this.advertised.get('tcp') ?? this.advertised.get('udp');
    if (protocol === 'tls') return this.advertised.get('tls') ?? this.advertised.get('tcp') ?? this.advertised.get('udp');
    return this.advertised.get(protocol);
  }

  /** TLS client options for outbound connections to `destination` ("address:port" or "address"); undefined removes. */
  setTlsClientOptions(destination: string, options: TlsClientOptions | undefined): void {
    this.tlsClients.set(destination, options);
  }

  /** The stream transport owning a connection id (`tcp-N`, `tls-N`, `ws-N`, `wss-N`). */
  private streamOf(connectionId: string): TcpTransport | WsTransport | undefined {
    const c = connectionId.charCodeAt(0);
    if (c === 0x74 /* t */) return connectionId.charCodeAt(1) === 0x63 /* c */ ? this.tcp : this.tls;
    if (c === 0x77 /* w */) return connectionId.charCodeAt(2) === 0x73 /* s */ ? this.wss : this.ws;
    return undefined;
  }

  isOpen(connectionId: string | undefined): boolean {
    if (connectionId === undefined) return false;
    return this.streamOf(connectionId)?.isOpen(connectionId) ?? false;
  }

  ref(connectionId: string): void {
    this.streamOf(connectionId)?.ref(connectionId);
  }

  unref(connectionId: string): void {
    this.streamOf(connectionId)?.unref(connectionId);
  }

  /** A request on this stream connection was let in: it is no stranger's any more. */
  trust(connectionId: string): void {
    this.streamOf(connectionId)?.trust(connectionId);
  }

  get tcpConnectionCount(): number {
    return this.tcp.connectionCount;
  }

  get tlsConnectionCount(): number {
    return this.tls.connectionCount;
  }

  /** WS and WSS connections together. */
  get wsConnectionCount(): number {
    return (this.ws?.connectionCount ?? 0) + (this.wss?.connectionCount ?? 0);
  }

  /**
   * Send bytes. Returns the connection id used for TCP/TLS/WS, undefined for
   * UDP, null when no transport serves the protocol (for WS/WSS: when
   * `connectionId` is not an open connection; none is ever opened). UDP send
   * failures reach `onError`; stream failures arrive as onConnectionClosed
   * for the id.
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
    if (destination.protocol === 'tcp' || destination.protocol === 'tls') {
      const stream = destination.protocol === 'tcp' ? this.tcp : this.tls;
      try {
        return stream.send(data, destination.address, destination.port, connectionId);
      } catch (err) {
        onError?.(err instanceof Error ? err : new Error(String(err)));
        return null;
      }
    }
    const ws = destination.protocol === 'ws' ? this.ws : this.wss;
    // a browser's Via/Contact host is a made-up ".invalid" name: only its connection reaches it
    if (ws !== undefined && connectionId !== undefined && ws.send(data, connectionId)) return connectionId;
    return null;
  }

  private receive(data: Buffer, source: Endpoint, local: Endpoint, connectionId: string | undefined, stream: boolean): void {
    if (this.handlers.onReceived !== undefined) this.handlers.onReceived(data, source, local, connectionId, stream);
    else this.deliver(data, source, local, connectionId, stream);
  }

  /** Parse one received message and hand it on (or its parse failure). */
  deliver(data: Buffer, source: Endpoint, local: Endpoint, connectionId: string | undefined, stream: boolean): void {
    const result = parseMessage(data, { maxSize: this.maxMessageSize, stream });
    if (result.ok) {
      if (connectionId !== undefined) this.streamOf(connectionId)?.noteValid(connectionId);
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
    const stream = connectionId.startsWith('tls-') ? this.tls : this.tcp;
    if (!fatal || head === undefined || !stream.isOpen(connectionId)) return;
    const parsed = parseMessage(head, { maxSize: Number.MAX_SAFE_INTEGER });
    const request = parsed.ok ? (parsed.message.kind === 'request' ? parsed.message : undefined) : parsed.request;
    if (request === undefined || request.method === 'ACK') return;
    const tooLarge = /too large/i.test(reason);
    const response = createResponse(request, tooLarge ? 513 : 400, tooLarge ? 'Message Too Large' : reason);
    stream.send(serializeMessage(response), '', 0, connectionId);
    this.logger.debug({ connectionId, reason }, 'answered before closing stream');
  }

  async close(): Promise<void> {
    const udp = this.udp;
    this.udp = undefined;
    await Promise.all([udp?.close(), this.tcp.close(), this.tls.close(), this.ws?.close(), this.wss?.close()]);
  }
}
