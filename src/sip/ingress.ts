/**
 * Between receive and processing: every message is looked at cheaply
 * (raw-scan.ts) and queued by priority, and the queue is worked off in short
 * slices so the socket keeps being read while the gateway is busy.
 *
 * - First: responses (NOTIFY 200s), in-dialog requests (refreshes,
 *   un-SUBSCRIBEs), PUBLISH refreshes (SIP-If-Match), OPTIONS, ACK, CANCEL.
 * - Then: new PUBLISHes (RFC 3903 §4: state a trunk or a phone reports about
 *   a person, not a new dialog), in arrival order. They are not shed for the
 *   event loop's lag or for the other lanes' backlog (a fan-out in progress
 *   is work of our own, not a storm); only when their own lane backs up past
 *   four times the maximum wait (a PUBLISH flood) or the queue is full.
 * - Then: new out-of-dialog requests. While the oldest queued message has
 *   waited longer than the target delay (overload, seen within tens of ms), or
 *   the event loop lags, a new request is answered 503 + Retry-After from the
 *   raw bytes (RFC 3261 §21.5.4, §8.2.6.2: Via, From, To + tag, Call-ID,
 *   CSeq copied) without being parsed or given a transaction. Retry-After is
 *   jittered and grows with how much is being shed against what is served
 *   (RFC 6665 §4.1.2.4 lets subscribers come back then).
 * - Served fresh: once the oldest queued new request has waited 50 ms, the
 *   newest is served first and what has waited past the maximum wait is
 *   answered 503 from the head (adaptive LIFO with a sojourn-time bound), so
 *   a request that arrives after a storm does not wait behind it.
 * - Fair across sources: under overload a source still is admitted while its
 *   arrival rate of new requests is under its fair share of what is served
 *   (served per second / sources sending), or while it has fewer queued than
 *   the average queuing source; so the flooding source is the one shed, and
 *   what is admitted under overload is served before the flood's backlog (a
 *   phone subscribing during a storm does not wait behind it). Untrusted sources also have a token
 *   bucket (source-limiter.ts) that holds at any load.
 * - Retransmissions: of a request still queued, dropped (its answer is
 *   coming); of a request in a server transaction, answered by the
 *   transaction layer with its last response, without a parse; of a request
 *   shed in the last seconds, answered 503 again (it must not be accepted
 *   after its client took the 503 as final, RFC 3261 §17.1.2.2).
 * - The kernel's backlog: while a SIP flood is shed (the queue's own delay,
 *   not the event loop's), the host is asked to bound the socket receive
 *   buffers (boundReceiveBuffers), so that what waits unread in the kernel is
 *   tens of ms of work, not seconds of stale requests a fresh one queues
 *   behind; restored once nothing was shed for RESTORE_BUFFERS_MS. While so
 *   bounded and the sockets hand over full read batches, the processing slice
 *   is a quarter as long: the sockets are read more often, so the backlog
 *   waits in the queue, where it is shed cheaply and the fair lanes apply,
 *   instead of in the kernel, where a fresh phone's request sits unseen.
 */
import { performance } from 'node:perf_hooks';
import { formatVia, parseVia, type Via } from './header-values.js';
import { splitListValue } from './headers.js';
import type { Endpoint } from './message.js';
import type { LoadSignal } from './overload.js';
import { scanRaw, type RawScan } from './raw-scan.js';
import type { SourceLimiter } from './source-limiter.js';
import { hostForSocket } from './transport/address.js';
import { responseTarget } from './transport/routing.js';
import { serverKeyOfVia } from './transaction/transaction-layer.js';
import type { Clock } from '../util/clock.js';

export interface IngressHost {
  /** parse and process one message (the transport layer's normal path) */
  deliver(data: Buffer, source: Endpoint, local: Endpoint, connectionId: string | undefined, stream: boolean): void;
  send(data: Buffer, destination: Endpoint, connectionId: string | undefined): void;
  /** a request whose server transaction exists: repeat its last response; false when there is none */
  absorbRetransmission(key: string, method: string): boolean;
  /** bound (true) or restore (false) the kernel's receive buffers of the datagram sockets */
  boundReceiveBuffers?(bound: boolean): void;
}

/** Queue delays are measured on the monotonic clock, not the wall clock. */
const monotonicClock: Pick<Clock, 'now'> = { now: () => performance.now() };

export interface IngressOptions {
  /** queue delay (oldest waiting message) above which new requests are shed; default 150 ms (well under T1, so answers come before retransmissions) */
  queueDelayMs?: number;
  /** a new request that waited longer than this is answered 503 instead of processed late; default 1000 ms */
  maxWaitMs?: number;
  /** once the oldest queued new request has waited this long, the newest is served first (adaptive LIFO); default 50 ms */
  lifoAfterMs?: number;
  /**
   * processing slice per turn of the event loop before the sockets are read again; default 2 ms, and a
   * quarter of it while a flood is shed and the sockets deliver full read batches (the kernel holds more)
   */
  sliceMs?: number;
  /** queued messages at most; beyond, new requests are always shed; default 50,000 */
  maxQueue?: number;
  /** Retry-After base in seconds (a random 50-100 % of it at light shedding); default 10 */
  retryAfterSec?: number;
  /** Retry-After upper bound as shedding grows; default 60 */
  maxRetryAfterSec?: number;
  /** the event-loop signal (overload.ts); optional */
  load?: LoadSignal;
  /** per-source bucket for new requests from untrusted sources */
  limiter?: SourceLimiter;
  /** Server header of the 503s */
  serverHeader?: string;
  clock?: Pick<Clock, 'now'>;
  random?: () => number;
}

export interface IngressStats {
  queued: number;
  maxQueued: number;
  /** new requests answered 503 because of overload (queue delay, event loop, queue bound, late) */
  shedOverload: number;
  /** new requests answered 503 by the per-source bucket */
  shedRateLimited: number;
  /** retransmissions absorbed (still queued, or repeated by their transaction) */
  absorbed: number;
}

interface Item {
  data: Buffer;
  source: Endpoint;
  local: Endpoint;
  connectionId: string | undefined;
  stream: boolean;
  at: number;
  /** set for a new request: what a 503 needs, its transaction key and its source address */
  scan?: RawScan;
  via?: Via;
  key?: string;
}

/**
 * Messages one turn of the event loop reads from a datagram socket at most (libuv's UDP read loop takes
 * 32 per readiness): as many arriving between two slices means more are likely waiting in the kernel.
 */
const READ_BATCH = 32;

/** Queued messages below which a late head is not yet overload (two socket read batches). */
const MIN_BACKLOG = 2 * READ_BATCH;

/** A new PUBLISH may wait this many times maxWaitMs before it is answered 503 (its lane backed up that long). */
const PUBLISH_WAIT_FACTOR = 4;

/** After this long without a request shed for the queue's backlog, the receive buffers are restored. */
const RESTORE_BUFFERS_MS = 2000;

/** Seconds a shed request's key is remembered per generation (two generations: 4 to 8 s). */
const SHED_MEMORY_SEC = 4;

/** A FIFO with a moving head (no Array.shift per item). */
class Fifo {
  private items: (Item | undefined)[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(item: Item): void {
    this.items.push(item);
  }

  peek(): Item | undefined {
    return this.items[this.head];
  }

  /** The newest item (adaptive LIFO). */
  pop(): Item | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items.pop();
    if (this.head >= this.items.length) {
      this.items = [];
      this.head = 0;
    }
    return item;
  }

  shift(): Item | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

export class Ingress {
  private readonly first = new Fifo();
  /** new PUBLISHes, served after `first` and before `fresh` */
  private readonly publishes = new Fifo();
  private readonly fresh = new Fifo();
  /** new requests of sources sending under their fair share while the others flood: served before `fresh` */
  private readonly light = new Fifo();
  /** receive buffers bounded since (monotonic ms) the last shed for backlog; undefined while not bounded */
  private boundedAt: number | undefined;
  /** transaction keys of queued new requests (their retransmissions are dropped) */
  private readonly pending = new Set<string>();
  /** keys of requests shed in this and the previous generation (SHED_MEMORY_SEC each) */
  private shedNow = new Map<string, number>();
  private shedBefore = new Map<string, number>();
  private shedGeneration = 0;
  /** queued new requests per source address */
  private readonly perSource = new Map<string, number>();
  /** new requests per source address, this second and the one before */
  private readonly arrivals = new Map<string, { second: number; now: number; before: number }>();
  private queuedNew = 0;
  /** messages received since the last slice began */
  private receivedSinceSlice = 0;
  private scheduled = false;
  private closed = false;
  private exempt: ((source: Endpoint) => boolean) | undefined;
  private readonly queueDelayMs: number;
  private readonly maxWaitMs: number;
  private readonly lifoAfterMs: number;
  private readonly sliceMs: number;
  private readonly maxQueue: number;
  private readonly retryAfterSec: number;
  private readonly maxRetryAfterSec: number;
  private readonly clock: Pick<Clock, 'now'>;
  private readonly random: () => number;
  private readonly serverLine: string;
  // shedding against serving, per second, for Retry-After
  private second = 0;
  private shedThisSecond = 0;
  private servedThisSecond = 0;
  private shedLastSecond = 0;
  private servedLastSecond = 0;
  readonly stats: IngressStats = { queued: 0, maxQueued: 0, shedOverload: 0, shedRateLimited: 0, absorbed: 0 };

  constructor(private readonly host: IngressHost, private readonly options: IngressOptions = {}) {
    this.queueDelayMs = options.queueDelayMs ?? 150;
    this.maxWaitMs = options.maxWaitMs ?? 1000;
    this.lifoAfterMs = Math.min(options.lifoAfterMs ?? 50, this.maxWaitMs);
    this.sliceMs = options.sliceMs ?? 2;
    this.maxQueue = options.maxQueue ?? 50_000;
    this.retryAfterSec = options.retryAfterSec ?? 10;
    this.maxRetryAfterSec = Math.max(this.retryAfterSec, options.maxRetryAfterSec ?? 60);
    this.clock = options.clock ?? monotonicClock;
    this.random = options.random ?? Math.random;
    this.serverLine = options.serverHeader !== undefined ? `Server: ${options.serverHeader}\r\n` : '';
  }

  /** Sources the per-source bucket leaves alone (trusted networks, trunks); set by the wiring. */
  setExemption(exempt: ((source: Endpoint) => boolean) | undefined): void {
    this.exempt = exempt;
  }

  /** Oldest wait in the queue, ms. */
  queueDelay(now = this.clock.now()): number {
    const oldest = Math.min(
      this.first.peek()?.at ?? Infinity,
      this.publishes.peek()?.at ?? Infinity,
      this.light.peek()?.at ?? Infinity,
      this.fresh.peek()?.at ?? Infinity,
    );
    return oldest === Infinity ? 0 : now - oldest;
  }

  /** True while new requests are being shed for load (not counting the per-source bucket). */
  overloaded(now = this.clock.now()): boolean {
    return this.options.load?.overloaded() === true || this.backlogged(now);
  }

  /** Messages queued, all lanes. */
  private get size(): number {
    return this.first.size + this.publishes.size + this.light.size + this.fresh.size;
  }

  /** The queue itself is over its bounds (a SIP flood), whatever the event loop says. */
  private backlogged(now: number): boolean {
    const size = this.size;
    // a pause with little waiting (a GC, a slow turn) is not overload: a backlog that old is
    return size >= this.maxQueue || (size >= MIN_BACKLOG && this.queueDelay(now) > this.queueDelayMs);
  }

  /**
   * New PUBLISHes are shed only when their own lane backs up past PUBLISH_WAIT_FACTOR times the maximum
   * wait (a PUBLISH flood) or the queue is full: a state change served seconds late is worth more than one
   * refused for Retry-After seconds, and its retransmissions are absorbed while it waits (Timer F is 32 s).
   */
  private publishesBacklogged(now: number): boolean {
    if (this.size >= this.maxQueue) return true;
    const head = this.publishes.peek();
    return head !== undefined && this.publishes.size >= MIN_BACKLOG && now - head.at > this.maxWaitMs * PUBLISH_WAIT_FACTOR;
  }

  receive(data: Buffer, source: Endpoint, local: Endpoint, connectionId: string | undefined, stream: boolean): void {
    if (this.closed) return;
    const now = this.clock.now();
    this.receivedSinceSlice++;
    const item: Item = { data, source, local, connectionId, stream, at: now };
    const scan = scanRaw(data);
    if (scan === null || !isNewRequest(scan)) {
      // responses, in-dialog and refreshing requests first; what the scan cannot judge waits its turn unshed
      this.enqueue(scan === null ? this.fresh : this.first, item);
      return;
    }
    const topValue = scan.via[0]!.indexOf(',') < 0 ? scan.via[0]! : splitListValue(scan.via[0]!)[0];
    const via = topValue === undefined ? null : parseVia(topValue);
    if (via === null) {
      this.enqueue(this.fresh, item); // the transaction layer answers or drops a broken Via
      return;
    }
    const key = serverKeyOfVia(via);
    if (key !== undefined) {
      if (this.pending.has(key)) {
        this.stats.absorbed++;
        return;
      }
      if (this.host.absorbRetransmission(key, scan.method)) {
        this.stats.absorbed++;
        return;
      }
    }
    this.roll(now);
    const shedBefore = key === undefined ? undefined : (this.shedNow.get(key) ?? this.shedBefore.get(key));
    if (shedBefore !== undefined) {
      // the same answer again, Retry-After included, so the client sees a retransmission (RFC 3261 §17.1.3)
      this.stats.absorbed++;
      this.shed(scan, via, source, connectionId, shedBefore, 'Service Unavailable - overloaded', undefined);
      return;
    }
    this.countArrival(source.address);
    const limiter = this.options.limiter;
    if (limiter !== undefined && this.exempt?.(source) !== true && !limiter.take(source.address)) {
      this.stats.shedRateLimited++;
      this.shed(scan, via, source, connectionId, Math.max(limiter.secondsUntilToken(source.address), this.retryAfter()), 'Service Unavailable - rate limited', key);
      return;
    }
    const publish = scan.method === 'PUBLISH';
    const overloaded = publish ? this.publishesBacklogged(now) : this.overloaded(now);
    if (overloaded && !this.belowFairShare(source.address, now)) {
      this.stats.shedOverload++;
      this.shedThisSecond++;
      if (this.backlogged(now)) this.boundBuffers(now);
      this.shed(scan, via, source, connectionId, this.retryAfter(), 'Service Unavailable - overloaded', key);
      return;
    }
    item.scan = scan;
    item.via = via;
    if (key !== undefined) {
      item.key = key;
      this.pending.add(key);
    }
    this.queuedNew++;
    this.perSource.set(source.address, (this.perSource.get(source.address) ?? 0) + 1);
    // admitted under overload means under its fair share: it does not queue behind the flood it is shielded from
    const lane = publish ? this.publishes : overloaded ? this.light : this.fresh;
    this.enqueue(lane, item);
  }

  close(): void {
    this.closed = true;
  }

  /** Shedding for backlog: the kernel's receive buffers bounded (once), the time noted. */
  private boundBuffers(now: number): void {
    if (this.boundedAt === undefined) this.host.boundReceiveBuffers?.(true);
    this.boundedAt = now;
  }

  /** Nothing shed for backlog for RESTORE_BUFFERS_MS: the receive buffers restored. */
  private restoreBuffers(now: number): void {
    if (this.boundedAt === undefined || now - this.boundedAt < RESTORE_BUFFERS_MS) return;
    this.boundedAt = undefined;
    this.host.boundReceiveBuffers?.(false);
  }

  /** Under overload a source is still admitted while it sends less than its share, or has fewer queued than the average. */
  private belowFairShare(address: string, now: number): boolean {
    if (this.size >= this.maxQueue) return false;
    if (this.sendsUnderFairRate(address, now)) return true;
    if (this.perSource.size === 0) return false;
    return (this.perSource.get(address) ?? 0) < this.queuedNew / this.perSource.size;
  }

  /** Whether `address` sends new requests at under its fair share of what is served (several sources only). */
  private sendsUnderFairRate(address: string, now: number): boolean {
    if (this.arrivals.size < 2) return false;
    const a = this.arrivals.get(address);
    if (a === undefined) return true;
    // a sliding one-second window: all of this second, the rest of the one before
    const elapsed = (now % 1000) / 1000;
    const rate = a.second === this.second ? a.now + a.before * (1 - elapsed) : a.second === this.second - 1 ? a.now * (1 - elapsed) : 0;
    const served = Math.max(this.servedLastSecond, this.servedThisSecond / Math.max(0.05, elapsed));
    return rate < served / this.arrivals.size;
  }

  /** Count a new request of `address`. */
  private countArrival(address: string): void {
    let a = this.arrivals.get(address);
    if (a === undefined) {
      if (this.arrivals.size >= 100_000) this.arrivals.clear(); // a spoofed spread: fairness by rate gives up, the queue bound holds
      a = { second: this.second, now: 0, before: 0 };
      this.arrivals.set(address, a);
    } else if (a.second !== this.second) {
      a.before = a.second === this.second - 1 ? a.now : 0;
      a.now = 0;
      a.second = this.second;
    }
    a.now++;
  }

  private enqueue(lane: Fifo, item: Item): void {
    lane.push(item);
    const queued = this.size;
    this.stats.queued = queued;
    if (queued > this.stats.maxQueued) this.stats.maxQueued = queued;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  private drain(): void {
    this.scheduled = false;
    if (this.closed) return;
    const start = this.clock.now();
    // The ingress can only be fair to what it has read: while a flood is shed and reads come in full
    // batches, the kernel's buffer backs up with it, and a fresh phone's request waits there unseen.
    // Shorter slices then give the sockets more turns, and the queue (cheap to shed from) holds the backlog.
    const flooded = this.boundedAt !== undefined && this.receivedSinceSlice >= READ_BATCH;
    const slice = flooded ? this.sliceMs / 4 : this.sliceMs;
    this.receivedSinceSlice = 0;
    for (;;) {
      const item = this.first.shift() ?? this.publishes.shift() ?? this.light.shift() ?? this.nextFresh();
      if (item === undefined) break;
      if (item.scan !== undefined) {
        this.dequeuedNew(item);
        const now = this.clock.now();
        const maxWait = item.scan.method === 'PUBLISH' ? this.maxWaitMs * PUBLISH_WAIT_FACTOR : this.maxWaitMs;
        if (now - item.at > maxWait && !this.sendsUnderFairRate(item.source.address, now)) {
          // answered too late to help: the client has retransmitted and is about to give up. A source
          // under its fair rate is served all the same: it waited behind a flood that is not its own.
          this.roll(now);
          this.stats.shedOverload++;
          this.shedThisSecond++;
          this.boundBuffers(now);
          this.shed(item.scan, item.via!, item.source, item.connectionId, this.retryAfter(), 'Service Unavailable - overloaded', item.key);
          continue;
        }
        this.servedThisSecond++;
      }
      try {
        this.host.deliver(item.data, item.source, item.local, item.connectionId, item.stream);
      } catch {
        // the transport layer logs its own failures; one message must not stop the queue
      }
      if (this.clock.now() - start >= slice) break;
    }
    this.stats.queued = this.size;
    this.restoreBuffers(this.clock.now());
    if (this.stats.queued > 0 && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  /**
   * The next new request: FIFO while the lane is fresh; once its head has
   * waited lifoAfterMs, late heads first (each answered 503 at once, a cheap
   * stateless answer), then the newest (adaptive LIFO, after Facebook's
   * "Fail at Scale", ACM Queue 13(8), 2015, and CoDel's sojourn time,
   * RFC 8289 §3.2: the queue is judged by how long its head waited, not by its
   * depth). What is served is then always fresh: a request arriving after a
   * storm is answered within a few ms, not after the backlog, and the backlog
   * drains as 503s from the head while it is still young enough to be
   * answered before its client gives up.
   */
  private nextFresh(): Item | undefined {
    const head = this.fresh.peek();
    if (head === undefined) return undefined;
    const waited = this.clock.now() - head.at;
    if (waited <= this.lifoAfterMs || head.scan === undefined || waited > this.maxWaitMs) return this.fresh.shift();
    return this.fresh.pop();
  }

  private dequeuedNew(item: Item): void {
    this.queuedNew--;
    if (item.key !== undefined) this.pending.delete(item.key);
    const address = item.source.address;
    const n = (this.perSource.get(address) ?? 1) - 1;
    if (n <= 0) this.perSource.delete(address);
    else this.perSource.set(address, n);
  }

  private roll(now: number): void {
    const second = Math.floor(now / 1000);
    if (second === this.second) return;
    const gap = second - this.second;
    this.shedLastSecond = gap === 1 ? this.shedThisSecond : 0;
    this.servedLastSecond = gap === 1 ? this.servedThisSecond : 0;
    this.shedThisSecond = 0;
    this.servedThisSecond = 0;
    this.second = second;
    if (second - this.shedGeneration >= SHED_MEMORY_SEC) {
      this.shedBefore = this.shedNow;
      this.shedNow = new Map();
      this.shedGeneration = second;
    }
    for (const [k, a] of this.arrivals) if (a.second < second - 1) this.arrivals.delete(k);
  }

  /**
   * Seconds for Retry-After: the base while little is shed, plus the seconds
   * of work the shed requests will bring back (shed per second over served
   * per second), capped; a random 50-100 % of it so the returns spread over
   * that window instead of coming back together.
   */
  private retryAfter(): number {
    const shed = Math.max(this.shedLastSecond, this.shedThisSecond);
    const served = Math.max(100, this.servedLastSecond, this.servedThisSecond);
    const window = Math.min(this.maxRetryAfterSec, this.retryAfterSec + (2 * shed) / served);
    return Math.max(1, Math.round(window * (0.5 + this.random() / 2)));
  }

  /** A stateless 503 built from the raw header values (no parse, no transaction). */
  private shed(
    scan: RawScan,
    via: Via,
    source: Endpoint,
    connectionId: string | undefined,
    retryAfter: number,
    reason: string,
    key: string | undefined,
  ): void {
    if (key !== undefined) this.shedNow.set(key, retryAfter);
    const top = stampedTopVia(scan.via[0]!, via, source);
    let text = `SIP/2.0 503 ${reason}\r\nVia: ${top}\r\n`;
    for (let i = 1; i < scan.via.length; i++) text += `Via: ${scan.via[i]}\r\n`;
    text +=
      `From: ${scan.from}\r\nTo: ${scan.to};tag=${statelessTag(scan)}\r\nCall-ID: ${scan.callId}\r\nCSeq: ${scan.cseq}\r\n` +
      `Retry-After: ${retryAfter}\r\n${this.serverLine}Content-Length: 0\r\n\r\n`;
    const target = responseTarget(via, source, connectionId);
    this.host.send(Buffer.from(text, 'latin1'), target.destination, target.connectionId);
  }
}

/** New work: a request outside any dialog that creates state (not ACK/CANCEL/OPTIONS, not a PUBLISH refresh). */
function isNewRequest(scan: RawScan): boolean {
  if (scan.kind !== 'request' || scan.toTagged) return false;
  switch (scan.method) {
    case 'ACK':
    case 'CANCEL':
    case 'OPTIONS':
      return false;
    case 'PUBLISH':
      return !scan.conditional;
    default:
      return true;
  }
}

/** RFC 3261 §18.2.1 / RFC 3581 §4: received (and rport) on the top Via of the answer. */
function stampedTopVia(rawFirstLine: string, via: Via, source: Endpoint): string {
  const rportAsked = via.rport !== undefined;
  const sameHost = hostForSocket(via.host).toLowerCase() === source.address.toLowerCase();
  if (sameHost && !rportAsked) return rawFirstLine;
  via.received = source.address;
  if (rportAsked) via.rport = source.port;
  const stamped = formatVia(via);
  if (rawFirstLine.indexOf(',') < 0) return stamped;
  const parts = splitListValue(rawFirstLine);
  parts[0] = stamped;
  return parts.join(', ');
}

/** The same To tag for the same request (a retransmission answered again statelessly; RFC 3261 §8.2.6.2). */
function statelessTag(scan: RawScan): string {
  let h = 0x811c9dc5;
  const s = scan.callId + scan.from + scan.cseq;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return `ov${(h >>> 0).toString(16)}`;
}
