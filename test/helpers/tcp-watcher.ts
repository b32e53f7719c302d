/**
 * A small SIP watcher over TCP for interop tests, built on the gateway's own
 * parser and serializer. It listens on its own TCP port (that is its
 * Contact), sends SUBSCRIBE to the gateway over an outbound TCP connection,
 * and answers every NOTIFY with 200 on the connection the NOTIFY came on
 * (RFC 3261 §18.2.2), whichever it is: the SUBSCRIBE's connection, or a new
 * one the gateway opened to the Contact (after a restart the old one is gone).
 * It never subscribes again by itself; `subscribeCount` proves it.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { Headers } from '../../src/sip/headers.js';
import { parseCSeq, tagOf } from '../../src/sip/header-values.js';
import { newBranch, newCallId, newTag } from '../../src/sip/ids.js';
import { createRequest, createResponse, type SipRequest, type SipResponse } from '../../src/sip/message.js';
import { parseMessage, StreamFramer } from '../../src/sip/parser.js';
import { serializeMessage } from '../../src/sip/serializer.js';

export interface TcpWatcherOptions {
  /** The gateway's TCP port on 127.0.0.1. */
  gatewayPort: number;
  /** Request-URI user part (an extension or a user id). */
  user: string;
  event: 'presence' | 'dialog';
  /** Accept header; default by event (application/pidf+xml, application/dialog-info+xml). */
  accept?: string;
  /** Expires of the SUBSCRIBE; default 3600. */
  expires?: number;
  /** Our user part in From and Contact; default `tcp-watcher`. */
  name?: string;
  /** Put `;transport=tcp` in the Contact; default true (without it, the SUBSCRIBE's transport is the only hint). */
  contactTransport?: boolean;
}

/** A NOTIFY as the watcher saw it. */
export interface WatcherNotify {
  cseq: number;
  callId: string;
  /** The gateway's tag (From of the NOTIFY). */
  fromTag: string | undefined;
  subscriptionState: string;
  /** The gateway's Contact (a NOTIFY refreshes the watcher's remote target). */
  contact: string | undefined;
  contentType: string | undefined;
  body: string;
  /** `subscribe`: on the connection the SUBSCRIBE went out on; `contact`: on a connection the gateway opened to our Contact. */
  via: 'subscribe' | 'contact';
  /** Which connection (1, 2, ... in the order they were opened or accepted). */
  connection: number;
}

export interface SubscribeOutcome {
  status: number;
  /** The gateway's tag from the 2xx To. */
  toTag: string | undefined;
  expires: string | undefined;
}

interface Conn {
  socket: Socket;
  framer: StreamFramer;
  via: 'subscribe' | 'contact';
  number: number;
}

interface Waiter {
  count: number;
  resolve: () => void;
}

const HOST = '127.0.0.1';
const DEFAULT_ACCEPT: Readonly<Record<TcpWatcherOptions['event'], string>> = {
  presence: 'application/pidf+xml',
  dialog: 'application/dialog-info+xml',
};

export class TcpWatcher {
  /** Every NOTIFY received, in order. */
  readonly notifies: WatcherNotify[] = [];
  /** Messages that did not parse, and requests other than NOTIFY (answered 501). */
  readonly problems: string[] = [];
  /** Initial SUBSCRIBEs sent (outside a dialog; the restart tests expect exactly one). */
  subscribeCount = 0;
  /** In-dialog SUBSCRIBEs (refreshes) sent. */
  refreshCount = 0;
  /** The gateway's tag, from the 2xx to the initial SUBSCRIBE. */
  toTag: string | undefined = undefined;
  readonly callId = newCallId(HOST);
  readonly fromTag = newTag();
  private readonly options: TcpWatcherOptions;
  private readonly server: Server;
  private readonly conns = new Set<Conn>();
  private connNumber = 0;
  private readonly pending = new Map<string, (response: SipResponse) => void>();
  private readonly waiters = new Set<Waiter>();
  private cseq = 0;
  private port = 0;

  private constructor(options: TcpWatcherOptions) {
    this.options = options;
    this.server = createServer((socket) => this.track(socket, 'contact'));
    this.server.on('error', (err) => this.problems.push(`server error: ${err.message}`));
  }

  /** A watcher listening on an ephemeral port of 127.0.0.1. */
  static async start(options: TcpWatcherOptions): Promise<TcpWatcher> {
    const w = new TcpWatcher(options);
    await new Promise<void>((resolve, reject) => {
      w.server.once('error', reject);
      w.server.listen({ host: HOST, port: 0 }, () => {
        w.server.off('error', reject);
        resolve();
      });
    });
    const address = w.server.address();
    if (address === null || typeof address === 'string') throw new Error('tcp watcher: no listening address');
    w.port = address.port;
    return w;
  }

  /** The port our Contact names. */
  get contactPort(): number {
    return this.port;
  }

  get contact(): string {
    const param = this.options.contactTransport === false ? '' : ';transport=tcp';
    return `<sip:${this.options.name ?? 'tcp-watcher'}@${HOST}:${this.port}${param}>`;
  }

  /** Connections open now, by how they came about. */
  openConnections(): { subscribe: number; contact: number } {
    let subscribe = 0;
    let contact = 0;
    for (const c of this.conns) {
      if (c.via === 'subscribe') subscribe++;
      else contact++;
    }
    return { subscribe, contact };
  }

  /**
   * Send the initial SUBSCRIBE on a new connection to the gateway and resolve
   * with its final response (the initial NOTIFY may come before or after it).
   */
  async subscribe(timeoutMs = 5000): Promise<SubscribeOutcome> {
    this.subscribeCount++;
    const outcome = await this.sendSubscribe(undefined, this.options.expires ?? 3600, timeoutMs);
    if (outcome.status >= 200 && outcome.status < 300) this.toTag = outcome.toTag;
    return outcome;
  }

  /**
   * Refresh the subscription (in-dialog SUBSCRIBE, RFC 6665 §4.1.2.1) on a new
   * connection to the gateway; `expires` 0 ends it.
   */
  async refresh(expires = this.options.expires ?? 3600, timeoutMs = 5000): Promise<SubscribeOutcome> {
    if (this.toTag === undefined) throw new Error('tcp watcher: refresh before a successful subscribe');
    this.refreshCount++;
    return this.sendSubscribe(this.toTag, expires, timeoutMs);
  }

  private async sendSubscribe(toTag: string | undefined, expires: number, timeoutMs: number): Promise<SubscribeOutcome> {
    const socket = connect({ host: HOST, port: this.options.gatewayPort, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve();
      });
      socket.once('error', reject);
    });
    const conn = this.track(socket, 'subscribe');
    const name = this.options.name ?? 'tcp-watcher';
    const branch = newBranch();
    const headers = new Headers()
      .append('via', `SIP/2.0/TCP ${HOST}:${this.port};branch=${branch}`)
      .append('max-forwards', '70')
      .append('from', `<sip:${name}@${HOST}>;tag=${this.fromTag}`)
      .append('to', `<sip:${this.options.user}@${HOST}>` + (toTag === undefined ? '' : `;tag=${toTag}`))
      .append('call-id', this.callId)
      .append('cseq', `${++this.cseq} SUBSCRIBE`)
      .append('contact', this.contact)
      .append('event', this.options.event)
      .append('accept', this.options.accept ?? DEFAULT_ACCEPT[this.options.event])
      .append('expires', String(expires));
    const request = createRequest('SUBSCRIBE', `sip:${this.options.user}@${HOST}:${this.options.gatewayPort};transport=tcp`, headers);
    const response = new Promise<SipResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(branch);
        reject(new Error(`tcp watcher: no final response to SUBSCRIBE within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(branch, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
    });
    conn.socket.write(serializeMessage(request));
    const r = await response;
    const to = r.headers.get('to');
    return { status: r.status, toTag: to === undefined ? undefined : tagOf(to), expires: r.headers.get('expires') };
  }

  /** Resolves once `count` NOTIFYs have come in total; rejects after timeoutMs. */
  waitForNotifies(count: number, timeoutMs = 10_000): Promise<WatcherNotify[]> {
    if (this.notifies.length >= count) return Promise.resolve(this.notifies.slice());
    return new Promise<WatcherNotify[]>((resolve, reject) => {
      const waiter: Waiter = {
        count,
        resolve: () => {
          clearTimeout(timer);
          resolve(this.notifies.slice());
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(
          new Error(
            `tcp watcher (${this.options.event}): ${this.notifies.length} of ${count} NOTIFYs within ${timeoutMs} ms` +
              (this.problems.length > 0 ? `; problems: ${this.problems.join(' | ')}` : ''),
          ),
        );
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  /** Close the listener and every connection. */
  async close(): Promise<void> {
    for (const c of this.conns) c.socket.destroy();
    this.conns.clear();
    for (const w of this.waiters) w.resolve();
    this.waiters.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private track(socket: Socket, via: Conn['via']): Conn {
    const conn: Conn = { socket, framer: new StreamFramer({ maxMessageSize: 65_535 }), via, number: ++this.connNumber };
    this.conns.add(conn);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      for (const ev of conn.framer.push(chunk)) {
        if (ev.type === 'message') this.onMessage(conn, ev.data);
        else if (ev.type === 'keepalive') socket.write('\r\n');
        else {
          this.problems.push(`framing: ${ev.reason}`);
          if (ev.fatal) socket.destroy();
        }
      }
    });
    // a reset when the gateway is killed is expected: just forget the connection
    socket.on('error', () => undefined);
    socket.on('close', () => this.conns.delete(conn));
    return conn;
  }

  private onMessage(conn: Conn, data: Buffer): void {
    const parsed = parseMessage(data, { stream: true });
    if (!parsed.ok) {
      this.problems.push(`unparseable (${parsed.status} ${parsed.reason})`);
      return;
    }
    const message = parsed.message;
    if (message.kind === 'response') {
      const branch = /;\s*branch=([^;,\s]+)/i.exec(message.headers.get('via') ?? '')?.[1];
      if (branch === undefined || message.status < 200) return;
      const done = this.pending.get(branch);
      if (done !== undefined) {
        this.pending.delete(branch);
        done(message);
      }
      return;
    }
    this.onRequest(conn, message);
  }

  private onRequest(conn: Conn, request: SipRequest): void {
    if (request.method !== 'NOTIFY') {
      this.problems.push(`unexpected ${request.method}`);
      if (request.method !== 'ACK') this.answer(conn, createResponse(request, 501));
      return;
    }
    const h = request.headers;
    const from = h.get('from');
    this.notifies.push({
      cseq: parseCSeq(h.get('cseq') ?? '')?.seq ?? -1,
      callId: h.get('call-id') ?? '',
      fromTag: from === undefined ? undefined : tagOf(from),
      subscriptionState: h.get('subscription-state') ?? '',
      contact: h.get('contact'),
      contentType: h.get('content-type'),
      body: request.body.toString('utf8'),
      via: conn.via,
      connection: conn.number,
    });
    this.answer(conn, createResponse(request, 200));
    for (const w of this.waiters) {
      if (this.notifies.length >= w.count) {
        this.waiters.delete(w);
        w.resolve();
      }
    }
  }

  private answer(conn: Conn, response: SipResponse): void {
    if (!conn.socket.destroyed) conn.socket.write(serializeMessage(response));
  }
}
