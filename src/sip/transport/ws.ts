import { isUtf8 } from 'node:buffer';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Logger } from '../../util/logger.js';
import type { Endpoint } from '../message.js';
import { listenOn } from './address.js';
import { noHygiene, SourceCounts, sweepPeriod, type ConnectionHygiene } from './hygiene.js';
import { tlsServerContext, type TlsServerOptions } from './tls.js';

export interface WsHandlers {
  /** One SIP message (one WebSocket message) from a connection. */
  onMessage(data: Buffer, source: Endpoint, local: Endpoint, connectionId: string): void;
  /** A connection went away; `error` unless it was a clean close. */
  onClose(connectionId: string, error: Error | undefined): void;
}

export interface WsOptions {
  protocol: 'ws' | 'wss';
  maxMessageSize: number;
  maxConnections: number;
  /** ping period; a peer that did not answer the previous ping is dropped. 0 = no pings. Default 30000 */
  pingIntervalMs?: number;
  /** queued unsent bytes above which a connection is dropped as too slow */
  maxWriteBuffer?: number;
}

interface WsConnection {
  readonly id: string;
  readonly ws: WebSocket;
  readonly remote: Endpoint;
  readonly local: Endpoint;
  refs: number;
  alive: boolean;
  error: Error | undefined;
  /** an exempt source, or a request on it was let in */
  trusted: boolean;
  readonly openedAt: number;
  lastActivity: number;
  validAt: number | undefined;
}

const SUBPROTOCOL = 'sip';
const CRLF = Buffer.from('\r\n');
const DEFAULT_PING_MS = 30_000;
const DEFAULT_MAX_WRITE_BUFFER = 8 * 1024 * 1024;

/**
 * SIP over WebSocket (RFC 7118), server side only: an HTTP(S) listener that
 * upgrades requests on `path` offering the "sip" subprotocol. One SIP message
 * per WebSocket message, no Content-Length framing. Connections are tracked by
 * id (`ws-N` / `wss-N`); the gateway never opens one, so everything sent to a
 * WebSocket peer goes over the connection it opened.
 */
export class WsTransport {
  readonly protocol: 'ws' | 'wss';
  private server: HttpServer | HttpsServer | undefined;
  private readonly wss: WebSocketServer;
  private localEp: Endpoint | undefined;
  private path = '/';
  private readonly connections = new Map<string, WsConnection>();
  private nextId = 1;
  private pingTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly maxWriteBuffer: number;
  private readonly perSource = new SourceCounts();
  private hygieneTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly options: WsOptions,
    private readonly handlers: WsHandlers,
    private readonly logger: Logger,
    private readonly hygiene: ConnectionHygiene = noHygiene(),
  ) {
    this.protocol = options.protocol;
    this.maxWriteBuffer = options.maxWriteBuffer ?? DEFAULT_MAX_WRITE_BUFFER;
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: options.maxMessageSize,
      handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    });
    const ping = options.pingIntervalMs ?? DEFAULT_PING_MS;
    if (ping > 0 && Number.isFinite(ping)) {
      this.pingTimer = setInterval(() => this.pingAll(), ping);
      this.pingTimer.unref();
    }
    const period = sweepPeriod([hygiene.messageTimeoutMs, hygiene.strangerIdleMs], 1000);
    if (period !== undefined) {
      this.hygieneTimer = setInterval(() => this.sweep(), period);
      this.hygieneTimer.unref();
    }
  }

  /** A request on this connection was let in: no stranger idle limit. */
  trust(connectionId: string): void {
    const c = this.connections.get(connectionId);
    if (c !== undefined) c.trusted = true;
  }

  /** A valid SIP message arrived on this connection. */
  noteValid(connectionId: string): void {
    const c = this.connections.get(connectionId);
    if (c !== undefined) c.validAt = Date.now();
  }

  /** Close connections that sent no valid SIP message in time, and idle strangers. */
  private sweep(): void {
    const now = Date.now();
    const h = this.hygiene;
    for (const conn of this.connections.values()) {
      if (conn.ws.readyState !== conn.ws.OPEN) continue;
      const exempt = conn.trusted && h.exempt(conn.remote.address);
      let why: string | undefined;
      if (h.messageTimeoutMs > 0 && !exempt && conn.validAt === undefined && now - conn.openedAt > h.messageTimeoutMs) why = 'no_valid_message';
      else if (h.strangerIdleMs > 0 && !conn.trusted && conn.refs === 0 && now - conn.lastActivity > h.strangerIdleMs) why = 'idle_stranger';
      if (why === undefined) continue;
      h.security.record('connection_closed', {
        source: conn.remote.address,
        port: conn.remote.port,
        transport: this.protocol,
        reason: why,
        connectionId: conn.id,
      });
      conn.error = new Error(why);
      conn.ws.terminate();
    }
  }

  get local(): Endpoint | undefined {
    return this.localEp;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Listen on address:port; `tls` is required for wss. */
  listen(address: string, port: number, path = '/', tls?: TlsServerOptions): Promise<Endpoint> {
    if (this.protocol === 'wss' && tls === undefined) return Promise.reject(new Error('a wss listener needs a certificate and key'));
    this.path = path.length === 0 ? '/' : path;
    const onRequest = (_req: IncomingMessage, res: ServerResponse): void => {
      res.writeHead(426, { upgrade: 'websocket', connection: 'close', 'content-length': '0' });
      res.end();
    };
    // a client that never finishes its upgrade request is dropped within the message time too
    const ms = this.hygiene.messageTimeoutMs;
    const timeouts = ms > 0 ? { headersTimeout: ms, requestTimeout: ms, connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(ms / 4))) } : {};
    const server: HttpServer | HttpsServer =
      this.protocol === 'wss' && tls !== undefined
        ? createHttpsServer({ ...tlsServerContext(tls), ...timeouts }, onRequest)
        : createHttpServer(timeouts, onRequest);
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
    server.on('clientError', (err, socket) => {
      this.logger.debug({ err: err.message, protocol: this.protocol }, 'websocket listener: bad client');
      socket.destroy();
    });
    server.on('tlsClientError', (err: Error, socket: Duplex) => {
      this.logger.debug({ err: err.message }, 'wss handshake failed');
      socket.destroy();
    });
    server.on('error', (err) => this.logger.warn({ err: err.message, protocol: this.protocol }, 'websocket listener error'));
    return listenOn(server, this.protocol, address, port).then((ep) => {
      this.server = server;
      this.localEp = ep;
      return ep;
    });
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => undefined);
    if (this.closed) {
      refuse(socket, 503, 'Service Unavailable');
      return;
    }
    const from = req.socket.remoteAddress ?? '';
    const full = this.connections.size >= this.options.maxConnections;
    const capped = this.hygiene.maxPerSource > 0 && this.perSource.get(from) >= this.hygiene.maxPerSource && !this.hygiene.exempt(from);
    if (full || capped) {
      this.hygiene.security.record('connection_refused', {
        source: from,
        ...(req.socket.remotePort !== undefined ? { port: req.socket.remotePort } : {}),
        transport: this.protocol,
        reason: full ? 'max_connections' : 'per_source_limit',
      });
      refuse(socket, 503, 'Service Unavailable');
      return;
    }
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    if ((q < 0 ? url : url.slice(0, q)) !== this.path) {
      refuse(socket, 404, 'Not Found');
      return;
    }
    // RFC 7118 §4.1: the client offers the "sip" subprotocol; without it there is no SIP here
    if (!offersSip(req.headers['sec-websocket-protocol'])) {
      this.logger.debug({ from: `${req.socket.remoteAddress}:${req.socket.remotePort}` }, 'websocket upgrade without sip subprotocol refused');
      refuse(socket, 400, 'Bad Request');
      return;
    }
    const address = req.socket.remoteAddress;
    const port = req.socket.remotePort;
    if (address === undefined || port === undefined) {
      socket.destroy();
      return;
    }
    const local: Endpoint = { protocol: this.protocol, address: req.socket.localAddress ?? '', port: req.socket.localPort ?? 0 };
    try {
      this.wss.handleUpgrade(req, socket, head, (ws) => this.track(ws, { protocol: this.protocol, address, port }, local));
    } catch (err) {
      this.logger.debug({ err: err instanceof Error ? err.message : String(err) }, 'websocket upgrade failed');
      socket.destroy();
    }
  }

  private track(ws: WebSocket, remote: Endpoint, local: Endpoint): void {
    if (this.closed) {
      ws.terminate();
      return;
    }
    const now = Date.now();
    const conn: WsConnection = {
      id: `${this.protocol}-${this.nextId++}`,
      ws,
      remote,
      local,
      refs: 0,
      alive: true,
      error: undefined,
      trusted: this.hygiene.exempt(remote.address),
      openedAt: now,
      lastActivity: now,
      validAt: undefined,
    };
    this.connections.set(conn.id, conn);
    this.perSource.add(remote.address);
    ws.on('message', (data: RawData) => this.receive(conn, data));
    ws.on('pong', () => {
      conn.alive = true;
    });
    ws.on('error', (err) => {
      conn.error = err;
      this.logger.debug({ connectionId: conn.id, err: err.message }, 'websocket connection error');
    });
    ws.on('close', (code: number) => this.forget(conn, code));
    this.logger.debug({ connectionId: conn.id, from: `${remote.address}:${remote.port}` }, 'websocket connection accepted');
  }

  private receive(conn: WsConnection, raw: RawData): void {
    conn.alive = true;
    conn.lastActivity = Date.now();
    const data = Buffer.isBuffer(raw) ? raw : Array.isArray(raw) ? Buffer.concat(raw) : Buffer.from(raw);
    if (isBlank(data)) {
      // CRLF keep-alive as some SIP WebSocket clients send it: a double CRLF gets a single CRLF back
      if (data.length === 4) this.write(conn, CRLF);
      return;
    }
    try {
      this.handlers.onMessage(data, conn.remote, conn.local, conn.id);
    } catch (err) {
      this.logger.error({ err: err instanceof Error ? err.message : String(err) }, 'websocket message handler failed');
    }
  }

  isOpen(connectionId: string | undefined): boolean {
    if (connectionId === undefined) return false;
    const c = this.connections.get(connectionId);
    return c !== undefined && c.ws.readyState === c.ws.OPEN;
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

  /** Send one message on an open connection; false when it is not open. */
  send(data: Buffer, connectionId: string | undefined): boolean {
    if (connectionId === undefined || this.closed) return false;
    const conn = this.connections.get(connectionId);
    if (conn === undefined || conn.ws.readyState !== conn.ws.OPEN) return false;
    return this.write(conn, data);
  }

  private write(conn: WsConnection, data: Buffer): boolean {
    if (conn.ws.bufferedAmount > this.maxWriteBuffer) {
      this.logger.warn({ connectionId: conn.id, queued: conn.ws.bufferedAmount }, 'websocket peer not reading; connection dropped');
      conn.error = new Error('write buffer overflow');
      conn.ws.terminate();
      return false;
    }
    // RFC 7118 §4.2: UTF-8 messages as text frames, anything else as binary
    conn.ws.send(data, { binary: !isUtf8(data) }, (err) => {
      if (err !== undefined && err !== null) this.logger.debug({ connectionId: conn.id, err: err.message }, 'websocket send failed');
    });
    return true;
  }

  /** Close one connection (normal closure). */
  end(connectionId: string): void {
    const c = this.connections.get(connectionId);
    if (c === undefined) return;
    c.ws.close(1000);
    setTimeout(() => c.ws.terminate(), 2000).unref();
  }

  private forget(conn: WsConnection, code: number): void {
    if (this.connections.get(conn.id) !== conn) return;
    this.connections.delete(conn.id);
    this.perSource.remove(conn.remote.address);
    const clean = code === 1000 || code === 1001;
    const error = conn.error ?? (clean ? undefined : new Error(`websocket closed (${code})`));
    this.logger.debug({ connectionId: conn.id, code, err: error?.message }, 'websocket connection closed');
    try {
      this.handlers.onClose(conn.id, error);
    } catch (err) {
      this.logger.error({ err: err instanceof Error ? err.message : String(err) }, 'websocket close handler failed');
    }
  }

  /** One timer for all connections: drop those that did not answer the last ping, ping the rest. */
  private pingAll(): void {
    for (const conn of this.connections.values()) {
      if (conn.ws.readyState !== conn.ws.OPEN) continue;
      if (!conn.alive) {
        this.logger.debug({ connectionId: conn.id }, 'websocket peer did not answer ping; closing');
        conn.error = new Error('ping timeout');
        conn.ws.terminate();
        continue;
      }
      conn.alive = false;
      conn.ws.ping();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.pingTimer !== undefined) clearInterval(this.pingTimer);
    if (this.hygieneTimer !== undefined) clearInterval(this.hygieneTimer);
    for (const conn of this.connections.values()) conn.ws.terminate();
    const server = this.server;
    this.wss.close();
    if (server !== undefined) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    }
  }
}

function offersSip(header: string | string[] | undefined): boolean {
  if (header === undefined) return false;
  const values = Array.isArray(header) ? header : [header];
  for (const v of values) {
    for (const p of v.split(',')) if (p.trim() === SUBPROTOCOL) return true;
  }
  return false;
}

function refuse(socket: Duplex, status: number, reason: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  setTimeout(() => socket.destroy(), 1000).unref();
}

function isBlank(data: Buffer): boolean {
  for (let i = 0; i < data.length; i++) {
    const c = data[i]!;
    if (c !== 0x0d && c !== 0x0a) return false;
  }
  return true;
}
