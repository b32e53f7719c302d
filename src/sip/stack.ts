import type { Logger } from '../util/logger.js';
import type { Endpoint, SipRequest, SipResponse, TransportProtocol } from './message.js';
import { createResponse } from './message.js';
import { resolveTimers } from './transaction/timers.js';
import { TransactionLayer, type NewServerRequest, type SendOptions } from './transaction/transaction-layer.js';
import type { ServerNonInviteTransaction } from './transaction/server-non-invite.js';
import { TransportLayer, type ListenSpec, type TlsClientOptions } from './transport/transport-layer.js';
import { EventLoopGuard, type LoadSignal } from './overload.js';
import { CountingSecurityLog, type SecurityLog } from './security-log.js';
import type { ConnectionHygiene } from './transport/hygiene.js';
import { Ingress, type IngressStats } from './ingress.js';
import { SourceLimiter } from './source-limiter.js';

export type { ListenSpec, TlsClientOptions, TlsServerOptions } from './transport/transport-layer.js';
export type { SendOptions } from './transaction/transaction-layer.js';

export interface SipStackOptions {
  listen: ListenSpec[];
  logger: Logger;
  /** default 65535 */
  maxMessageSize?: number;
  /** default 10000 */
  maxConnections?: number;
  /** default 10 minutes */
  tcpIdleTimeoutMs?: number;
  /** UDP socket buffer sizes in bytes (default: the kernel's) */
  udpBufferBytes?: number;
  /** RFC 3261 defaults 500/4000/5000 ms; tests shorten them */
  timers?: { t1?: number; t2?: number; t4?: number };
  /** User-Agent on requests, Server on responses */
  userAgent?: string;
  /** methods for Allow in the 405 answering INVITE */
  allow?: string[];
  /** host for Via sent-by; default the bound address (an interface address when bound to a wildcard) */
  viaHost?: string;
  /** Overload signal: while it says so, new out-of-dialog requests get 503 + Retry-After. Default: event-loop lag. */
  load?: LoadSignal | false;
  /** Retry-After seconds of that 503 (a random 50-100% of it, so peers do not return together; more as shedding grows); default 10. */
  retryAfterSec?: number;
  /** Shedding of new requests between receive and processing (ingress.ts). */
  overload?: {
    /** oldest queued message older than this: new requests are shed; default 150 ms */
    queueDelayMs?: number;
    /** a queued new request older than this is answered 503 instead of processed; default 1000 ms */
    maxWaitMs?: number;
    /** processing slice before the sockets are read again; default 2 ms */
    sliceMs?: number;
    /** queued messages at most; default 50,000 */
    maxQueue?: number;
    /** Retry-After cap as shedding grows; default 60 s */
    maxRetryAfterSec?: number;
  };
  /** Token bucket per source address for new requests from sources not exempted (setRateLimitExemption); false = none. */
  rateLimit?: { ratePerSec: number; burst: number } | false;
  /**
   * Outbound TLS connections without a per-destination entry (see
   * setTlsClientOptions). Default: verify the server against Node's roots.
   */
  tlsClient?: TlsClientOptions;
  /** WebSocket ping period in ms (a peer missing one pong is dropped); default 30000, 0 = none */
  wsPingIntervalMs?: number;
  /**
   * Connection hygiene of TCP, TLS and WebSocket (0 turns a limit off): ms an inbound connection gets to
   * complete a valid SIP message (default 10000), ms a stranger's connection may idle (default 30000), open
   * connections per source address (default 32; exempt sources and trusted connections excepted).
   */
  connections?: { messageTimeoutMs?: number; strangerIdleMs?: number; maxPerSource?: number };
  /** Where connection-limit events go (the security log); default: counted only. */
  security?: SecurityLog;
}

export interface IncomingRequest {
  readonly request: SipRequest;
  readonly source: Endpoint;
  readonly local: Endpoint;
  readonly connectionId?: string;
  respond(response: SipResponse): void;
}

const DEFAULT_ALLOW = ['SUBSCRIBE', 'NOTIFY', 'PUBLISH', 'OPTIONS'];
const DEFAULT_IDLE_MS = 10 * 60 * 1000;
const DEFAULT_MESSAGE_TIMEOUT_MS = 10_000;
const DEFAULT_STRANGER_IDLE_MS = 30_000;
const DEFAULT_MAX_PER_SOURCE = 32;

class Incoming implements IncomingRequest {
  readonly connectionId?: string;

  constructor(
    private readonly stack: SipStack,
    readonly request: SipRequest,
    readonly source: Endpoint,
    readonly local: Endpoint,
    connectionId: string | undefined,
    readonly transaction: ServerNonInviteTransaction,
  ) {
    if (connectionId !== undefined) this.connectionId = connectionId;
  }

  respond(response: SipResponse): void {
    this.stack.respondOn(this.transaction, response);
  }
}

/**
 * UDP receive buffer while a flood is shed (asked for; Linux grants twice): about 1,600 datagrams of 600
 * bytes (truesize ~1,280 each), some 200 ms of reading at a shedding rate of 8,000/s, under T1, so what is
 * read has not been retransmitted yet; a 4 MB buffer holds 6,500, a second or more of stale requests.
 */
const FLOOD_UDP_BUFFER_BYTES = 1024 * 1024;

/**
 * The SIP stack of the gateway: transports, non-INVITE transactions and
 * stateless answers. One request handler receives every new server
 * transaction; sendRequest runs a client transaction.
 */
export class SipStack {
  private handler: ((req: IncomingRequest) => void) | undefined;
  private closing: Promise<void> | undefined;
  private load: LoadSignal | undefined;
  private ingress: Ingress | undefined;

  private constructor(
    private readonly transports: TransportLayer,
    private readonly transactions: TransactionLayer,
    private readonly logger: Logger,
    private readonly userAgent: string | undefined,
  ) {}

  static async start(options: SipStackOptions): Promise<SipStack> {
    const logger = options.logger;
    let transactions: TransactionLayer | undefined;
    const c = options.connections ?? {};
    const hygiene: ConnectionHygiene = {
      messageTimeoutMs: c.messageTimeoutMs ?? DEFAULT_MESSAGE_TIMEOUT_MS,
      strangerIdleMs: c.strangerIdleMs ?? DEFAULT_STRANGER_IDLE_MS,
      maxPerSource: c.maxPerSource ?? DEFAULT_MAX_PER_SOURCE,
      exempt: () => false,
      security: options.security ?? new CountingSecurityLog(0),
    };
    let ingress: Ingress | undefined;
    const transports = await TransportLayer.start(
      {
        listen: options.listen,
        logger,
        maxMessageSize: options.maxMessageSize ?? 65535,
        maxConnections: options.maxConnections ?? 10000,
        tcpIdleTimeoutMs: options.tcpIdleTimeoutMs ?? DEFAULT_IDLE_MS,
        ...(options.udpBufferBytes !== undefined ? { udpBufferBytes: options.udpBufferBytes } : {}),
        ...(options.viaHost !== undefined ? { viaHost: options.viaHost } : {}),
        ...(options.tlsClient !== undefined ? { tlsClient: options.tlsClient } : {}),
        ...(options.wsPingIntervalMs !== undefined ? { wsPingIntervalMs: options.wsPingIntervalMs } : {}),
        hygiene,
      },
      {
        onMessage: (message, source, local, connectionId) => {
          if (transactions === undefined) return;
          if (message.kind === 'request') transactions.receiveRequest(message, source, local, connectionId);
          else transactions.receiveResponse(message, source);
        },
        onParseError: (failure, source, _local, connectionId) =>
          transactions?.receiveParseFailure(failure, source, connectionId),
        onConnectionClosed: (connectionId, error) => transactions?.connectionClosed(connectionId, error),
        onReceived: (data, source, local, connectionId, stream) => ingress?.receive(data, source, local, connectionId, stream),
      },
    );
    transactions = new TransactionLayer({
      transport: transports,
      logger,
      timers: resolveTimers(options.timers),
      allow: options.allow ?? DEFAULT_ALLOW,
      ...(options.userAgent !== undefined ? { serverHeader: options.userAgent } : {}),
    });
    const stack = new SipStack(transports, transactions, logger, options.userAgent);
    stack.load = options.load === false ? undefined : (options.load ?? new EventLoopGuard());
    const tx = transactions;
    const o = options.overload ?? {};
    ingress = new Ingress(
      {
        deliver: (data, source, local, connectionId, stream) => transports.deliver(data, source, local, connectionId, stream),
        send: (data, destination, connectionId) => {
          transports.send(data, destination, connectionId);
        },
        absorbRetransmission: (key, method) => tx.absorbRetransmission(key, method),
        boundReceiveBuffers: (bound) => {
          logger.info({ bound, bytes: bound ? FLOOD_UDP_BUFFER_BYTES : options.udpBufferBytes }, 'udp receive buffer bounded for a flood, or restored');
          transports.boundUdpReceiveBuffer(bound ? FLOOD_UDP_BUFFER_BYTES : undefined);
        },
      },
      {
        ...(stack.load !== undefined ? { load: stack.load } : {}),
        ...(options.retryAfterSec !== undefined ? { retryAfterSec: options.retryAfterSec } : {}),
        ...(o.queueDelayMs !== undefined ? { queueDelayMs: o.queueDelayMs } : {}),
        ...(o.maxWaitMs !== undefined ? { maxWaitMs: o.maxWaitMs } : {}),
        ...(o.sliceMs !== undefined ? { sliceMs: o.sliceMs } : {}),
        ...(o.maxQueue !== undefined ? { maxQueue: o.maxQueue } : {}),
        ...(o.maxRetryAfterSec !== undefined ? { maxRetryAfterSec: o.maxRetryAfterSec } : {}),
        ...(options.rateLimit !== undefined && options.rateLimit !== false ? { limiter: new SourceLimiter(options.rateLimit) } : {}),
        ...(options.userAgent !== undefined ? { serverHeader: options.userAgent } : {}),
      },
    );
    stack.ingress = ingress;
    stack.startShedReport();
    transactions.onRequest = (r) => stack.dispatch(r);
    return stack;
  }

  /** The one request handler; called once per new server transaction. */
  onRequest(handler: (req: IncomingRequest) => void): void {
    this.handler = handler;
  }

  /**
   * Send a request in a new client transaction. The request is completed in
   * place (Via replaced by ours, Max-Forwards 70 when absent, User-Agent).
   * Never rejects: a timeout is a local 408, a transport failure a local 503.
   */
  sendRequest(request: SipRequest, options: SendOptions): Promise<SipResponse> {
    if (!request.headers.has('max-forwards')) request.headers.append('max-forwards', '70');
    if (this.userAgent !== undefined && !request.headers.has('user-agent')) request.headers.append('user-agent', this.userAgent);
    return this.transactions.sendRequest(request, options);
  }

  /** The actual bound address/port of the listener for a protocol. */
  localEndpoint(protocol: TransportProtocol): Endpoint | undefined {
    return this.transports.localEndpoint(protocol);
  }

  /** Address and port peers should use to reach this stack (Via sent-by, Contact). */
  advertisedEndpoint(protocol: TransportProtocol): Endpoint | undefined {
    const s = this.transports.sentBy(protocol);
    return s === undefined ? undefined : { protocol, address: s.host, port: s.port };
  }

  /**
   * TLS client options for new outbound TLS connections to `destination`:
   * "address:port" or "address" as it appears in the request's destination
   * Endpoint (a resolved IP; "[v6]:port" accepted). An exact address:port entry
   * wins over an address entry, which wins over SipStackOptions.tlsClient.
   * Mutual TLS when cert and key are given; `servername` for SNI and the
   * certificate name check when the destination is an IP. Undefined removes
   * the entry. An already open connection to the destination is reused as is.
   */
  setTlsClientOptions(destination: string, options: TlsClientOptions | undefined): void {
    this.transports.setTlsClientOptions(destination, options);
  }

  /**
   * Connection hygiene, told from above: a request on this stream connection was let in (a trunk,
   * a trusted network, an authenticated user), so it is no stranger's and the stranger idle limit
   * no longer applies.
   */
  trustConnection(connectionId: string): void {
    this.transports.trust(connectionId);
  }

  /** Sources exempt from the per-source connection cap and the stranger rules (trunks, trusted networks). */
  setConnectionExempt(exempt: (address: string) => boolean): void {
    this.transports.hygiene.exempt = exempt;
  }

  /** Security events of the transports (connection limits), by event and reason. */
  get security(): SecurityLog {
    return this.transports.hygiene.security;
  }

  /**
   * Keep a stream connection (TCP, TLS, WebSocket) open while something above lives on it (a
   * subscription whose requests come and go on it): the idle sweep and the stranger idle rule leave a
   * held connection alone, since the peer behind NAT or on WebSocket cannot be reached on a new one
   * (RFC 5626 §3.3, RFC 7118 §5). The message-time rule still applies, and a connection the peer
   * closes is gone. Built on the connection's use count, like a live transaction; returns the
   * release (calling it again does nothing). No-op for UDP or an unknown id.
   */
  holdConnection(connectionId: string): () => void {
    this.transports.ref(connectionId);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.transports.unref(connectionId);
    };
  }

  /** Whether a stream connection is still open (e.g. a subscriber's connectionId). */
  isConnectionOpen(connectionId: string): boolean {
    return this.transports.isOpen(connectionId);
  }

  private shedReport: NodeJS.Timeout | undefined;
  private lastShed = 0;

  /** While shedding, one warn line a second with what was shed and the queue (operators see overload at once). */
  private startShedReport(): void {
    this.shedReport = setInterval(() => {
      const s = this.ingress?.stats;
      if (s === undefined) return;
      const shed = s.shedOverload + s.shedRateLimited;
      if (shed !== this.lastShed) {
        this.logger.warn(
          { shedOverload: s.shedOverload, shedRateLimited: s.shedRateLimited, absorbed: s.absorbed, queued: s.queued, maxQueued: s.maxQueued, newlyShed: shed - this.lastShed },
          'overload: new requests answered 503 + Retry-After',
        );
        this.lastShed = shed;
      }
    }, 1000);
    this.shedReport.unref();
  }

  /** New requests refused with 503 because of overload since start. */
  get overloadRefusals(): number {
    return this.ingress?.stats.shedOverload ?? 0;
  }

  /** Queue, shedding and rate-limit counters of the ingress. */
  ingressStats(): IngressStats {
    return { ...(this.ingress?.stats ?? { queued: 0, maxQueued: 0, shedOverload: 0, shedRateLimited: 0, absorbed: 0 }) };
  }

  /** Sources the per-source rate limit leaves alone (trusted networks, trunks; the access layer knows them). */
  setRateLimitExemption(exempt: ((source: Endpoint) => boolean) | undefined): void {
    this.ingress?.setExemption(exempt);
  }

  /** The UDP receive buffer as the kernel grants it now (bounded during a flood; diagnostics, tests). */
  udpReceiveBufferBytes(): number {
    return this.transports.udpReceiveBufferBytes();
  }

  /** Live transaction counts (diagnostics). */
  stats(): {
    serverTransactions: number;
    clientTransactions: number;
    tcpConnections: number;
    tlsConnections: number;
    wsConnections: number;
  } {
    return {
      serverTransactions: this.transactions.serverCount,
      clientTransactions: this.transactions.clientCount,
      tcpConnections: this.transports.tcpConnectionCount,
      tlsConnections: this.transports.tlsConnectionCount,
      wsConnections: this.transports.wsConnectionCount,
    };
  }

  close(): Promise<void> {
    if (this.closing === undefined) {
      this.load?.close();
      this.ingress?.close();
      if (this.shedReport !== undefined) clearInterval(this.shedReport);
      this.transactions.close();
      this.closing = this.transports.close();
    }
    return this.closing;
  }

  /** @internal response path of IncomingRequest */
  respondOn(tx: ServerNonInviteTransaction, response: SipResponse): void {
    if (this.userAgent !== undefined && !response.headers.has('server')) response.headers.append('server', this.userAgent);
    tx.respond(response);
  }

  private dispatch(r: NewServerRequest): void {
    const handler = this.handler;
    const incoming = new Incoming(this, r.request, r.source, r.local, r.connectionId, r.transaction);
    if (handler === undefined) {
      this.respondOn(r.transaction, createResponse(r.request, 503, 'Service Unavailable'));
      return;
    }
    try {
      handler(incoming);
    } catch (err) {
      this.logger.error(
        { err: err instanceof Error ? err.message : String(err), method: r.request.method, callId: r.request.headers.get('call-id') },
        'request handler failed',
      );
      if (r.transaction.state === 'trying' || r.transaction.state === 'proceeding') {
        this.respondOn(r.transaction, createResponse(r.request, 500, 'Server Internal Error'));
      }
    }
  }
}
