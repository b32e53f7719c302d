import type { Logger } from '../../util/logger.js';
import { splitListValue } from '../headers.js';
import { formatVia, parseCSeq, parseVia, tagOf, type Via } from '../header-values.js';
import { BRANCH_MAGIC_COOKIE, newBranch } from '../ids.js';
import type { Endpoint, SipRequest, SipResponse, TransportProtocol } from '../message.js';
import { createResponse } from '../message.js';
import { takeTopVia } from '../parser.js';
import { serializeMessage } from '../serializer.js';
import { hostForSocket } from '../transport/address.js';
import { responseTarget, type ParseFailure } from '../transport/routing.js';
import { ClientNonInviteTransaction, type ClientTransactionHost } from './client-non-invite.js';
import { ResponseArena } from './response-arena.js';
import { ServerNonInviteTransaction, sharedMethod, type ServerTransactionHost } from './server-non-invite.js';
import { TimerQueue, type TimerValues } from './timers.js';

/** What the transaction layer needs from the transports (TransportLayer fits). */
export interface TransactionTransport {
  send(data: Buffer, destination: Endpoint, connectionId?: string, onError?: (err: Error) => void): string | undefined | null;
  isOpen(connectionId: string | undefined): boolean;
  ref(connectionId: string): void;
  unref(connectionId: string): void;
  sentBy(protocol: TransportProtocol): { host: string; port: number } | undefined;
}

export interface SendOptions {
  destination: Endpoint;
  /** reuse this stream connection while it is open */
  connectionId?: string;
  onProvisional?: (r: SipResponse) => void;
}

/** A request that started a new server transaction. */
export interface NewServerRequest {
  request: SipRequest;
  source: Endpoint;
  local: Endpoint;
  connectionId: string | undefined;
  transaction: ServerNonInviteTransaction;
}

export interface TransactionLayerOptions {
  transport: TransactionTransport;
  logger: Logger;
  timers: TimerValues;
  /** methods listed in Allow of the stateless 405 */
  allow: string[];
  /** Server header for stateless responses */
  serverHeader?: string;
}

/** Above this size a UDP-bound request goes over TCP (path MTU unknown). */
export const UDP_SIZE_LIMIT = 1300;

/**
 * Non-INVITE transactions of one stack, both sides (RFC 3261 §17), plus the
 * stateless answers a presence UA gives (INVITE, CANCEL, merged requests,
 * unparseable requests).
 */
export class TransactionLayer implements ServerTransactionHost, ClientTransactionHost {
  readonly queue = new TimerQueue();
  readonly responses = new ResponseArena();
  readonly timers: TimerValues;
  readonly logger: Logger;
  private readonly transport: TransactionTransport;
  private readonly allowValue: string;
  private readonly serverHeader: string | undefined;
  private readonly servers = new Map<string, ServerNonInviteTransaction>();
  private readonly merges = new Map<string, ServerNonInviteTransaction>();
  private readonly clients = new Map<string, ClientNonInviteTransaction>();
  private readonly clientsByConnection = new Map<string, Set<ClientNonInviteTransaction>>();
  private closed = false;

  /** Called for each request that starts a new server transaction. */
  onRequest: ((r: NewServerRequest) => void) | undefined;

  constructor(options: TransactionLayerOptions) {
    this.transport = options.transport;
    this.logger = options.logger;
    this.timers = options.timers;
    this.allowValue = options.allow.join(', ');
    this.serverHeader = options.serverHeader;
  }

  get serverCount(): number {
    return this.servers.size;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  // -------------------------------------------------------------------------
  // server side

  receiveRequest(request: SipRequest, source: Endpoint, local: Endpoint, connectionId: string | undefined): void {
    if (this.closed) return;
    const topRaw = topViaValue(request);
    const via = topRaw === undefined ? null : takeTopVia(topRaw);
    if (topRaw === undefined || via === null) {
      this.logger.debug({ method: request.method, from: `${source.address}:${source.port}` }, 'request without usable Via dropped');
      return;
    }
    if (request.method === 'ACK') return; // no INVITE transactions here: nothing to acknowledge

    const key = flatten(serverKey(request, via, topRaw));
    const existing = key === null ? undefined : this.servers.get(key);
    if (existing !== undefined && existing.method === request.method) {
      existing.retransmission();
      return;
    }
    stampVia(request, via, source);
    const target = responseTarget(via, source, connectionId);

    if (existing !== undefined) {
      if (request.method === 'CANCEL') {
        // §9.2: a CANCEL of a non-INVITE is answered 200 and has no other effect
        this.answerStateless(request, 200, undefined, target);
      } else this.answerStateless(request, 400, 'Bad Request - branch already in use', target);
      return;
    }
    if (request.method === 'CANCEL') {
      this.answerStateless(request, 481, undefined, target);
      return;
    }
    if (request.method === 'INVITE') {
      this.answerStateless(request, 405, undefined, target, true);
      return;
    }
    if (key === null) {
      this.answerStateless(request, 400, 'Bad Request - malformed CSeq', target);
      return;
    }

    const mergeKey = flatten(mergeKeyOf(request));
    if (mergeKey !== undefined) {
      const other = this.merges.get(mergeKey);
      if (other !== undefined && other.key !== key) {
        // RFC 3261 §8.2.2.2 merged request (e.g. a fork that reached us twice)
        this.answerStateless(request, 482, undefined, target);
        return;
      }
    }

    // keep the source's own address string: a slice of the request text would keep all of it alive
    if (target.destination.address === source.address) target.destination.address = source.address;
    const tx = new ServerNonInviteTransaction(this, key, sharedMethod(request.method), target.destination, target.connectionId);
    this.servers.set(key, tx);
    if (mergeKey !== undefined) {
      tx.mergeKey = mergeKey;
      this.merges.set(mergeKey, tx);
    }
    if (connectionId !== undefined && tx.reliable) this.transport.ref(connectionId);

    const handler = this.onRequest;
    if (handler === undefined) {
      tx.respond(this.withServer(createResponse(request, 503, 'Service Unavailable')));
      return;
    }
    handler({ request, source, local, connectionId, transaction: tx });
  }

  /**
   * A request arrived whose server transaction exists (matched by key before
   * any parse): repeat the last response (§17.2.2). False when no transaction
   * of that method has the key.
   */
  absorbRetransmission(key: string, method: string): boolean {
    const existing = this.servers.get(key);
    if (existing === undefined || existing.method !== method) return false;
    existing.retransmission();
    return true;
  }

  /** An unparseable message: answer it when it is a request we can answer, else drop. */
  receiveParseFailure(failure: ParseFailure, source: Endpoint, connectionId: string | undefined): void {
    const request = failure.request;
    if (this.closed || request === undefined || request.method === 'ACK') return;
    const topRaw = topViaValue(request);
    const via = topRaw === undefined ? null : parseVia(topRaw);
    if (via === null) return;
    stampVia(request, via, source);
    this.answerStateless(request, failure.status, failure.reason, responseTarget(via, source, connectionId));
  }

  private answerStateless(
    request: SipRequest,
    status: number,
    reason: string | undefined,
    target: { destination: Endpoint; connectionId?: string },
    withAllow = false,
  ): void {
    const response = this.withServer(createResponse(request, status, reason));
    if (withAllow) response.headers.append('allow', this.allowValue);
    if (this.logger.isLevelEnabled('debug')) {
      this.logger.debug(
        { method: request.method, status, callId: request.headers.get('call-id'), branch: branchOf(request) },
        'stateless response',
      );
    }
    this.transport.send(serializeMessage(response), target.destination, target.connectionId);
  }

  private withServer(response: SipResponse): SipResponse {
    if (this.serverHeader !== undefined && !response.headers.has('server')) response.headers.append('server', this.serverHeader);
    return response;
  }

  transmit(data: Buffer, destination: Endpoint, connectionId: string | undefined): string | undefined | null {
    return this.transport.send(data, destination, connectionId);
  }

  serverTerminated(tx: ServerNonInviteTransaction): void {
    if (this.servers.get(tx.key) === tx) this.servers.delete(tx.key);
    if (tx.mergeKey !== undefined && this.merges.get(tx.mergeKey) === tx) this.merges.delete(tx.mergeKey);
    if (tx.requestConnectionId !== undefined && tx.reliable) this.transport.unref(tx.requestConnectionId);
  }

  // -------------------------------------------------------------------------
  // client side

  /**
   * Start a client transaction. The request is completed in place: a single
   * Via of ours (any Via it had is replaced: a UA does not forward). Resolves
   * with the first final response, a local 408 on Timer F, or a local 503 on
   * transport failure.
   */
  sendRequest(request: SipRequest, options: SendOptions): Promise<SipResponse> {
    return new Promise<SipResponse>((resolve) => {
      const destination: Endpoint = { ...options.destination };
      if (this.closed) {
        resolve(createResponse(request, 503, 'Service Unavailable', { toTag: false }));
        return;
      }
      const cseqValue = request.headers.get('cseq');
      const method = (cseqValue === undefined ? null : parseCSeq(cseqValue))?.method ?? request.method;
      const branch = newBranch();
      const reuse = destination.protocol !== 'udp' && this.transport.isOpen(options.connectionId);

      let sentBy = this.transport.sentBy(destination.protocol);
      if (sentBy === undefined) {
        this.logger.debug({ method, protocol: destination.protocol }, 'no transport for request');
        resolve(createResponse(request, 503, 'Service Unavailable', { toTag: false }));
        return;
      }
      setOwnVia(request, viaValue(destination.protocol, sentBy, branch));
      let data = serializeMessage(request);
      let udpFallback = false;
      // RFC 3261 §18.1.1: a large request goes over TCP, with UDP as fallback
      if (destination.protocol === 'udp' && data.length > UDP_SIZE_LIMIT) {
        const tcpSentBy = this.transport.sentBy('tcp');
        if (tcpSentBy !== undefined) {
          destination.protocol = 'tcp';
          sentBy = tcpSentBy;
          setOwnVia(request, viaValue('tcp', sentBy, branch));
          data = serializeMessage(request);
          udpFallback = true;
        }
      }

      const key = clientKey(branch, method);
      const tx = new ClientNonInviteTransaction(
        this,
        key,
        branch,
        method,
        request,
        data,
        destination,
        reuse ? options.connectionId : undefined,
        udpFallback,
        options.onProvisional,
        resolve,
      );
      this.clients.set(key, tx);
      tx.start();
    });
  }

  transmitClient(tx: ClientNonInviteTransaction): boolean {
    const previous = tx.connectionId;
    let failed = false;
    const used = this.transport.send(tx.data, tx.destination, tx.connectionId, () => {
      failed = true;
      // asynchronous UDP send failure
      queueMicrotask(() => tx.failTransport());
    });
    if (used === null || failed) return false;
    if (used !== undefined) {
      if (previous !== undefined && previous !== used) this.untrackConnection(tx, previous);
      tx.connectionId = used;
      let set = this.clientsByConnection.get(used);
      if (set === undefined) {
        set = new Set();
        this.clientsByConnection.set(used, set);
      }
      // also a connection reused by id (a watcher's): its close must fail the transaction at once
      if (!set.has(tx)) {
        set.add(tx);
        this.transport.ref(used);
      }
    }
    return true;
  }

  private untrackConnection(tx: ClientNonInviteTransaction, connectionId: string): void {
    const set = this.clientsByConnection.get(connectionId);
    if (set !== undefined && set.delete(tx)) {
      this.transport.unref(connectionId);
      if (set.size === 0) this.clientsByConnection.delete(connectionId);
    }
  }

  /** The TCP attempt of a large request failed: send it over UDP instead. */
  transportFailed(tx: ClientNonInviteTransaction): boolean {
    if (!tx.udpFallback || this.closed) return false;
    tx.udpFallback = false;
    const request = tx.sipRequest;
    const sentBy = this.transport.sentBy('udp');
    if (request === undefined || sentBy === undefined) return false;
    if (tx.connectionId !== undefined) this.untrackConnection(tx, tx.connectionId);
    tx.connectionId = undefined;
    tx.destination = { ...tx.destination, protocol: 'udp' };
    setOwnVia(request, viaValue('udp', sentBy, tx.branch));
    tx.data = serializeMessage(request);
    this.logger.debug({ method: tx.method, branch: tx.branch }, 'TCP failed for large request; falling back to UDP');
    tx.transmitAndArm();
    return true;
  }

  clientTerminated(tx: ClientNonInviteTransaction): void {
    if (this.clients.get(tx.key) === tx) this.clients.delete(tx.key);
    if (tx.connectionId !== undefined) this.untrackConnection(tx, tx.connectionId);
  }

  /** A response from the transports: to its client transaction (§17.1.3) or dropped. */
  receiveResponse(response: SipResponse, source: Endpoint): void {
    if (viaCount(response) !== 1) {
      // RFC 3261 §8.1.3.3: a response with other than one Via was not meant for this UA
      this.logger.debug({ status: response.status, callId: response.headers.get('call-id') }, 'response with several Vias dropped');
      return;
    }
    const topRaw = topViaValue(response);
    const via = topRaw === undefined ? null : takeTopVia(topRaw);
    const cseqValue = response.headers.get('cseq');
    const cseq = cseqValue === undefined ? null : parseCSeq(cseqValue);
    const tx = via?.branch === undefined || cseq === null ? undefined : this.clients.get(clientKey(via.branch, cseq.method));
    if (tx === undefined) {
      this.logger.debug(
        { status: response.status, callId: response.headers.get('call-id'), from: `${source.address}:${source.port}` },
        'response matches no transaction; dropped',
      );
      return;
    }
    tx.receive(response);
  }

  /** A stream connection closed: pending client transactions on it fail (or fall back). */
  connectionClosed(connectionId: string, error: Error | undefined): void {
    const set = this.clientsByConnection.get(connectionId);
    if (set === undefined) return;
    this.clientsByConnection.delete(connectionId);
    for (const tx of set) {
      tx.connectionId = undefined;
      this.transport.unref(connectionId);
      this.logger.debug({ method: tx.method, branch: tx.branch, err: error?.message }, 'connection of client transaction closed');
      tx.failTransport();
    }
  }

  /** Stop: pending client transactions resolve with a local 503, all timers stop. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const tx of [...this.clients.values()]) tx.abort(503, 'Service Unavailable');
    for (const tx of [...this.servers.values()]) tx.terminate();
    this.clients.clear();
    this.servers.clear();
    this.merges.clear();
    this.clientsByConnection.clear();
    this.queue.clear(true);
  }
}

// ---------------------------------------------------------------------------
// helpers

function topViaValue(m: { headers: SipRequest['headers'] }): string | undefined {
  for (const f of m.headers) {
    if (f.name !== 'via') continue;
    return f.value.indexOf(',') < 0 ? f.value : splitListValue(f.value)[0];
  }
  return undefined;
}

function viaCount(m: { headers: SipRequest['headers'] }): number {
  let n = 0;
  for (const f of m.headers) {
    if (f.name !== 'via') continue;
    n += f.value.indexOf(',') < 0 ? 1 : splitListValue(f.value).length;
    if (n > 1) return n;
  }
  return n;
}

/** Replace the first Via element of a message by `value`. */
function replaceTopVia(m: { headers: SipRequest['headers'] }, value: string): void {
  for (const f of m.headers) {
    if (f.name !== 'via') continue;
    if (f.value.indexOf(',') < 0) f.value = value;
    else {
      const parts = splitListValue(f.value);
      parts[0] = value;
      f.value = parts.join(', ');
    }
    return;
  }
}

/**
 * RFC 3261 §18.2.1: add received when the source address differs from
 * sent-by; RFC 3581 §4: with rport, fill in the source port (and always add
 * received).
 */
function stampVia(request: SipRequest, via: Via, source: Endpoint): void {
  const rportAsked = via.rport !== undefined;
  const sameHost = hostForSocket(via.host).toLowerCase() === source.address.toLowerCase();
  if (sameHost && !rportAsked) return;
  via.received = source.address;
  if (rportAsked) via.rport = source.port;
  replaceTopVia(request, formatVia(via));
}

/** §17.2.3 matching key of an RFC 3261 request (magic-cookie branch); undefined for an RFC 2543 one. */
export function serverKeyOfVia(via: Via): string | undefined {
  const branch = via.branch;
  if (branch === undefined || !branch.startsWith(BRANCH_MAGIC_COOKIE)) return undefined;
  return `${branch}\u0000${via.host.toLowerCase()}:${via.port ?? ''}`;
}

/** §17.2.3 matching key; null when a RFC 2543 request cannot be keyed. */
function serverKey(request: SipRequest, via: Via, topRaw: string): string | null {
  const key = serverKeyOfVia(via);
  if (key !== undefined) return key;
  // RFC 2543 fallback: Request-URI, To tag, From tag, Call-ID, CSeq and top Via
  const cseqValue = request.headers.get('cseq');
  const cseq = cseqValue === undefined ? null : parseCSeq(cseqValue);
  if (cseq === null) return null;
  const to = request.headers.get('to') ?? '';
  const from = request.headers.get('from') ?? '';
  return [
    '\u00012543',
    request.uri,
    tagOf(to) ?? '',
    tagOf(from) ?? '',
    request.headers.get('call-id') ?? '',
    `${cseq.seq} ${cseq.method}`,
    topRaw.trim(),
  ].join('\u0000');
}

/** §8.2.2.2 key for requests without To tag: From tag, Call-ID, CSeq. */
function mergeKeyOf(request: SipRequest): string | undefined {
  const to = request.headers.get('to');
  if (to === undefined || tagOf(to) !== undefined) return undefined;
  const from = request.headers.get('from');
  const fromTag = from === undefined ? undefined : tagOf(from);
  const callId = request.headers.get('call-id');
  const cseqValue = request.headers.get('cseq');
  const cseq = cseqValue === undefined ? null : parseCSeq(cseqValue);
  if (fromTag === undefined || callId === undefined || cseq === null) return undefined;
  return `${fromTag}\u0000${callId}\u0000${cseq.seq} ${cseq.method}`;
}

/** A UA's request carries exactly one Via, its own, on top. */
function setOwnVia(request: SipRequest, value: string): void {
  request.headers.delete('via');
  request.headers.prepend('via', value);
}

function clientKey(branch: string, method: string): string {
  return `${branch}\u0000${method}`;
}

let flattenSink = 0;

/**
 * Make a long-lived key a flat string. Keys concatenated from slices of the
 * request text stay rope strings that keep the whole text alive (Map
 * insertion does not flatten them); reading a character flattens in place.
 */
function flatten<S extends string | null | undefined>(s: S): S {
  if (typeof s === 'string' && s.length > 0) flattenSink ^= s.charCodeAt(0);
  return s;
}

function branchOf(request: SipRequest): string | undefined {
  const top = topViaValue(request);
  return top === undefined ? undefined : (parseVia(top)?.branch ?? undefined);
}

function viaValue(protocol: TransportProtocol, sentBy: { host: string; port: number }, branch: string): string {
  return `SIP/2.0/${protocol.toUpperCase()} ${sentBy.host}:${sentBy.port};branch=${branch};rport`;
}
