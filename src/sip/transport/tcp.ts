import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../../util/logger.js';
import type { Endpoint } from '../message.js';
import { StreamFramer } from '../parser.js';
import { hostForSocket, listenOn, peerKey } from './address.js';
import { noHygiene, SourceCounts, sweepPeriod, type ConnectionHygiene } from './hygiene.js';

export interface TcpHandlers {
  /** One framed message from a connection. */
  onMessage(data: Buffer, source: Endpoint, local: Endpoint, connectionId: string): void;
  /**
   * The framer rejected the stream. `head` is the header block of the
   * offending message when known (to answer it). When fatal the connection
   * is closed right after.
   */
  onFramingError(connectionId: string, head: Buffer | undefined, reason: string, fatal: boolean): void;
  /** A connection went away; `error` when it failed (refused, reset, write error). */
  onClose(connectionId: string, error: Error | undefined): void;
}

export interface TcpOptions {
  maxMessageSize: number;
  maxConnections: number;
  idleTimeoutMs: number;
  /** queued unsent bytes above which a connection is dropped as too slow */
  maxWriteBuffer?: number;
}

interface Connection {
  readonly id: string;
  readonly socket: Socket;
  readonly framer: StreamFramer;
  readonly remote: Endpoint;
  local: Endpoint;
  readonly key: string;
  connected: boolean;
  lastActivity: number;
  /** live transactions using this connection */
  refs: number;
  error: Error | undefined;
  /** accepted from a peer (not opened by us) */
  readonly inbound: boolean;
  /** an exempt source, or a request on it was let in: not a stranger */
  trusted: boolean;
  readonly openedAt: number;
  /** when the last valid SIP message arrived */
  validAt: number | undefined;
  /** since when part of a message waits for the rest */
  partialSince: number | undefined;
}

/**
 * How a stream transport makes its sockets: plain TCP by default; tls.ts
 * gives the TLS variant. Framing, reuse, limits and idle close are shared.
 */
export interface StreamSockets {
  readonly protocol: 'tcp' | 'tls';
  /** a listening server that calls `accept` with each usable socket */
  createServer(accept: (socket: Socket) => void): Server;
  /** an outbound socket to host:port (writes before it is ready are queued) */
  connect(host: string, port: number): Socket;
  /** event an outbound socket emits once usable */
  readonly readyEvent: 'connect' | 'secureConnect';
}

/** Plain TCP sockets. */
export const plainSockets: StreamSockets = {
  protocol: 'tcp',
  createServer(accept) {
    const server = createServer({ noDelay: true });
    server.on('connection', accept);
    return server;
  },
  connect(host, port) {
    return connect({ host, port, noDelay: true });
  },
  readyEvent: 'connect',
};

const CRLF = Buffer.from('\r\n');
const DEFAULT_MAX_WRITE_BUFFER = 8 * 1024 * 1024;

/**
 * TCP (or TLS, by `sockets`) for SIP: one listener (optional), inbound and
 * outbound connections tracked by id (`tcp-N` / `tls-N`), Content-Length
 * framing, reuse by id or by remote address:port, connection limit and idle
 * sweep (one interval for all).
 */
export class TcpTransport {
  private server: Server | undefined;
  private localEp: Endpoint | undefined;
  private readonly connections = new Map<string, Connection>();
  private readonly byPeer = new Map<string, Connection>();
  private nextId = 1;
  private sweepTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly maxWriteBuffer: number;
  private readonly perSource = new SourceCounts();
  readonly protocol: 'tcp' | 'tls';

  constructor(
    private readonly options: TcpOptions,
    private readonly handlers: TcpHandlers,
    private readonly logger: Logger,
    private readonly sockets: StreamSockets = plainSockets,
    private readonly hygiene: ConnectionHygiene = noHygiene(),
  ) {
    this.protocol = sockets.protocol;
    this.maxWriteBuffer = options.maxWriteBuffer ?? DEFAULT_MAX_WRITE_BUFFER;
    const h = hygiene;
    const period = sweepPeriod([options.idleTimeoutMs, h.messageTimeoutMs, h.strangerIdleMs], h.messageTimeoutMs > 0 || h.strangerIdleMs > 0 ? 1000 : 30_000);
    if (period !== undefined) {
      this.sweepTimer = setInterval(() => this.sweepIdle(), period);
      this.sweepTimer.unref();
    }
  }

  /** A request on this connection was let in: it is no stranger's (no stranger idle limit). */
  trust(connectionId: string): void {
    const c = this.connections.get(connectionId);
    if (c !== undefined) c.trusted = true;
  }

  /** A valid SIP message arrived on this connection. */
  noteValid(connectionId: string): void {
    const c = this.connections.get(connectionId);
    if (c !== undefined) c.validAt = Date.now();
  }

  /** The listener's bound endpoint, when listening. */
  get local(): Endpoint | undefined {
    return this.localEp;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  listen(address: string, port: number): Promise<Endpoint> {
    const server = this.sockets.createServer((socket) => this.accept(socket));
    server.on('error', (err) => this.logger.warn({ err: err.message, protocol: this.protocol }, 'stream listener error'));
    return listenOn(server, this.protocol, address, port).then((ep) => {
      this.server = server;
      this.localEp = ep;
      return ep;
    });
  }

  isOpen(connectionId: string | undefined): boolean {
    if (connectionId === undefined) return false;
    const c = this.connections.get(connectionId);
    return c !== undefined && !c.socket.destroyed;
  }

  ref(connectionId: string): void {
    const c = this.connections.get(connectionId);
    if (c !== undefined) c.refs++;
  }

  unref(connectionId: string): void {
    const c = this.connections.get(connectionId);
    if (c !== undefined && c.refs > 0) {
      c.refs--;
      c.lastActivity = Date.now();
    }
  }

  /**
   * Send on the connection `connectionId` when open, else on an open
   * connection to address:port, else on a new one. Returns the id used;
   * failures are reported through onClose for that id.
   */
  send(data: Buffer, address: string, port: number, connectionId?: string): string {
    if (this.closed) throw new Error(`${this.protocol} transport closed`);
    let conn = connectionId === undefined ? undefined : this.connections.get(connectionId);
    if (conn === undefined || conn.socket.destroyed) conn = this.byPeer.get(peerKey(address, port));
    if (conn === undefined || conn.socket.destroyed) conn = this.open(address, port);
    this.write(conn, data);
    return conn.id;
  }

  private write(conn: Connection, data: Buffer): void {
    if (conn.socket.destroyed || this.closed) return;
    conn.lastActivity = Date.now();
    if (conn.socket.writableLength > this.maxWriteBuffer) {
      this.logger.warn({ connectionId: conn.id, queued: conn.socket.writableLength }, 'stream peer not reading; connection dropped');
      conn.socket.destroy(new Error('write buffer overflow'));
      return;
    }
    conn.socket.write(data);
  }

  /** Close one connection after flushing what was written. */
  end(connectionId: string): void {
    const c = this.connections.get(connectionId);
    if (c === undefined) return;
    c.socket.end();
    // a peer that never closes its side must not keep the socket forever
    setTimeout(() => c.socket.destroy(), 2000).unref();
  }

  private accept(socket: Socket): void {
    const address = socket.remoteAddress;
    const port = socket.remotePort;
    if (this.closed || address === undefined || port === undefined) {
      socket.destroy();
      return;
    }
    const exempt = this.hygiene.exempt(address);
    const full = this.connections.size >= this.options.maxConnections;
    // one stranger must not use up maxConnections (trunks and trusted networks are exempt)
    const capped = !exempt && this.hygiene.maxPerSource > 0 && this.perSource.get(address) >= this.hygiene.maxPerSource;
    if (full || capped) {
      this.logger.debug({ from: `${address}:${port}`, protocol: this.protocol }, 'connection refused: limit reached');
      this.hygiene.security.record('connection_refused', {
        source: address,
        port,
        transport: this.protocol,
        reason: full ? 'max_connections' : 'per_source_limit',
      });
      socket.destroy();
      return;
    }
    const local: Endpoint = { protocol: this.protocol, address: socket.localAddress ?? '', port: socket.localPort ?? 0 };
    const conn = this.track(socket, { protocol: this.protocol, address, port }, local, true);
    conn.trusted = exempt;
    this.perSource.add(address);
    this.logger.debug({ connectionId: conn.id, from: `${address}:${port}` }, 'stream connection accepted');
  }

  private open(address: string, port: number): Connection {
    const host = hostForSocket(address);
    const socket = this.sockets.connect(host, port);
    const conn = this.track(
      socket,
      { protocol: this.protocol, address: host, port },
      this.localEp ?? { protocol: this.protocol, address: '', port: 0 },
      false,
    );
    conn.trusted = true;
    socket.once(this.sockets.readyEvent, () => {
      conn.connected = true;
      conn.local = { protocol: this.protocol, address: socket.localAddress ?? '', port: socket.localPort ?? 0 };
    });
    this.logger.debug({ connectionId: conn.id, to: `${address}:${port}` }, 'stream connection opening');
    return conn;
  }

  private track(socket: Socket, remote: Endpoint, local: Endpoint, connected: boolean): Connection {
    const now = Date.now();
    const conn: Connection = {
      id: `${this.protocol}-${this.nextId++}`,
      socket,
      framer: new StreamFramer({ maxMessageSize: this.options.maxMessageSize }),
      remote,
      local,
      key: peerKey(remote.address, remote.port),
      connected,
      lastActivity: now,
      refs: 0,
      error: undefined,
      inbound: connected,
      trusted: false,
      openedAt: now,
      validAt: undefined,
      partialSince: undefined,
    };
    this.connections.set(conn.id, conn);
    this.byPeer.set(conn.key, conn);
    socket.on('data', (chunk: Buffer) => this.receive(conn, chunk));
    socket.on('error', (err) => {
      conn.error = err;
      this.logger.debug({ connectionId: conn.id, err: err.message }, 'stream connection error');
    });
    socket.on('close', () => this.forget(conn));
    return conn;
  }

  private receive(conn: Connection, chunk: Buffer): void {
    conn.lastActivity = Date.now();
    let events;
    try {
      events = conn.framer.push(chunk);
    } catch (err) {
      this.failFraming(conn, undefined, err instanceof Error ? err.message : String(err), true);
      return;
    }
    if (!conn.framer.partial) conn.partialSince = undefined;
    else if (conn.partialSince === undefined) conn.partialSince = conn.lastActivity;
    for (const ev of events) {
      if (conn.socket.destroyed) return;
      if (ev.type === 'message') {
        try {
          this.handlers.onMessage(ev.data, conn.remote, conn.local, conn.id);
        } catch (err) {
          this.logger.error({ err: err instanceof Error ? err.message : String(err) }, 'tcp message handler failed');
        }
      } else if (ev.type === 'keepalive') {
        // RFC 5626 §4.4.1: a double-CRLF ping is answered with a single CRLF pong
        conn.socket.write(CRLF);
      } else {
        this.failFraming(conn, ev.head, ev.reason, ev.fatal);
        if (ev.fatal) return;
      }
    }
  }

  private failFraming(conn: Connection, head: Buffer | undefined, reason: string, fatal: boolean): void {
    this.logger.debug({ connectionId: conn.id, reason, fatal }, 'tcp framing error');
    try {
      this.handlers.onFramingError(conn.id, head, reason, fatal);
    } catch (err) {
      this.logger.error({ err: err instanceof Error ? err.message : String(err) }, 'tcp framing error handler failed');
    }
    if (fatal) this.end(conn.id);
  }

  private forget(conn: Connection): void {
    if (this.connections.get(conn.id) !== conn) return;
    this.connections.delete(conn.id);
    if (conn.inbound) this.perSource.remove(conn.remote.address);
    if (this.byPeer.get(conn.key) === conn) this.byPeer.delete(conn.key);
    // a connection that never connected failed, even when no error event came
    const error = conn.error ?? (conn.connected ? undefined : new Error('connection failed'));
    this.logger.debug({ connectionId: conn.id, err: error?.message }, 'tcp connection closed');
    try {
      this.handlers.onClose(conn.id, error);
    } catch (err) {
      this.logger.error({ err: err instanceof Error ? err.message : String(err) }, 'tcp close handler failed');
    }
  }

  private sweepIdle(): void {
    const now = Date.now();
    const idle = this.options.idleTimeoutMs;
    const limit = idle > 0 && Number.isFinite(idle) ? now - idle : -Infinity;
    for (const conn of this.connections.values()) {
      if (conn.socket.destroyed) continue;
      const why = this.hygieneVerdict(conn, now);
      if (why !== undefined) {
        this.hygiene.security.record('connection_closed', {
          source: conn.remote.address,
          port: conn.remote.port,
          transport: this.protocol,
          reason: why,
          connectionId: conn.id,
        });
        conn.socket.destroy();
      } else if (conn.refs === 0 && conn.lastActivity < limit) {
        this.logger.debug({ connectionId: conn.id }, 'tcp connection idle; closing');
        conn.socket.destroy();
      }
    }
  }

  /** Why an inbound connection must go now under the hygiene limits, if it must. */
  private hygieneVerdict(conn: Connection, now: number): string | undefined {
    if (!conn.inbound) return undefined;
    const h = this.hygiene;
    const exempt = conn.trusted && h.exempt(conn.remote.address);
    if (h.messageTimeoutMs > 0 && !exempt) {
      // half a header block, a body announced but never sent, junk without an end
      if (conn.partialSince !== undefined && now - conn.partialSince > h.messageTimeoutMs) return 'incomplete_message';
      if (conn.validAt === undefined && now - conn.openedAt > h.messageTimeoutMs) return 'no_valid_message';
    }
    if (h.strangerIdleMs > 0 && !conn.trusted && conn.refs === 0 && now - conn.lastActivity > h.strangerIdleMs) return 'idle_stranger';
    return undefined;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    const server = this.server;
    const serverClosed =
      server === undefined ? Promise.resolve() : new Promise<void>((resolve) => server.close(() => resolve()));
    for (const conn of this.connections.values()) conn.socket.destroy();
    await serverClosed;
  }
}
