/**
 * The configured trunks: resolution at start, OPTIONS pings on one timer
 * wheel (one entry per trunk, rescheduled after each ping), and lookup of the
 * trunk a request came from.
 */
import type { TrunkConfig } from './config.js';
import { Headers } from '../sip/headers.js';
import { newCallId, newTag } from '../sip/ids.js';
import { createRequest, type Endpoint, type SipRequest, type SipResponse } from '../sip/message.js';
import type { Logger } from '../util/logger.js';
import { TimerWheel, type TimerHandle } from '../util/timer-wheel.js';
import { CidrSet, ipBytes, ipKey, keyOfBytes } from './cidr.js';
import { rfc3263Resolver, type TrunkResolver } from './resolver.js';
import { Trunk, type TrunkStatus, type TrunkTlsSettings } from './trunk.js';
import { systemClock, type Clock } from '../util/clock.js';

/** The part of SipStack the registry uses (SipStack fits). */
export interface TrunkSender {
  /** Resolves with the final response: a locally made 408 on timeout, 503 on transport failure. */
  sendRequest(request: SipRequest, options: { destination: Endpoint }): Promise<SipResponse>;
}

export interface TrunkRegistryOptions {
  trunks: readonly TrunkConfig[];
  sender: TrunkSender;
  /** our identity in the From of pings, e.g. sip:presence-gateway@gw.example.com */
  fromUri: string;
  logger: Logger;
  clock?: Pick<Clock, 'now'>;
  /** default: RFC 3263 (rfc3263Resolver: SRV when the URI has no port, then A/AAAA) */
  resolver?: TrunkResolver;
  /**
   * A trunk's next hop resolved to a TLS endpoint: set up the client side of
   * connections to it (the wiring turns this into SipStack.setTlsClientOptions).
   */
  onTlsTarget?: (endpoint: Endpoint, settings: TrunkTlsSettings) => void;
  /**
   * Why a TLS connection to `endpoint` fails (e.g. an untrusted certificate),
   * asked after a ping got no TLS connection; undefined when it connects now.
   */
  probeTls?: (endpoint: Endpoint) => Promise<string | undefined>;
  /** share the app's wheel; default an own wheel of 1 s resolution */
  wheel?: TimerWheel;
  /** re-resolve names this often even when pings succeed (default 300 s) */
  resolveEverySec?: number;
  /** how long start() waits for name resolution at most (default 3000 ms) */
  startWaitMs?: number;
}

interface PingState {
  trunk: Trunk;
  handle: TimerHandle | undefined;
  inFlight: Promise<TrunkStatus> | undefined;
  cseq: number;
  callId: string;
  fromTag: string;
}

/**
 * An OPTIONS answer made by our own transaction layer (Timer F or a transport
 * failure) carries no To tag; any answer from the peer has one (RFC 3261 §8.2.6.2).
 */
function isLocalAnswer(r: SipResponse): boolean {
  const to = r.headers.get('to') ?? '';
  const close = to.lastIndexOf('>');
  return !/;\s*tag\s*=/i.test(close >= 0 ? to.slice(close + 1) : to);
}

export class TrunkRegistry {
  private readonly trunks = new Map<string, Trunk>();
  private readonly pings: PingState[] = [];
  private readonly byAddress = new Map<string, Trunk>();
  private readonly addressesOf = new Map<Trunk, string[]>();
  private readonly cidrs: Array<{ set: CidrSet; trunk: Trunk }> = [];
  private readonly listeners = new Set<(s: TrunkStatus) => void>();
  private readonly sender: TrunkSender;
  private readonly fromUri: string;
  private readonly logger: Logger;
  private readonly clock: Pick<Clock, 'now'>;
  private readonly wheel: TimerWheel;
  private readonly ownWheel: boolean;
  private readonly startWaitMs: number;
  private readonly probeTls: TrunkRegistryOptions['probeTls'];
  private closed = false;

  constructor(opts: TrunkRegistryOptions) {
    this.sender = opts.sender;
    this.fromUri = opts.fromUri;
    this.logger = opts.logger;
    this.clock = opts.clock ?? systemClock;
    this.ownWheel = opts.wheel === undefined;
    this.wheel = opts.wheel ?? new TimerWheel({ resolutionMs: 1000, clock: this.clock });
    this.startWaitMs = opts.startWaitMs ?? 3000;
    const resolver = opts.resolver ?? rfc3263Resolver();
    this.probeTls = opts.probeTls;
    const resolveTtlMs = (opts.resolveEverySec ?? 300) * 1000;
    for (const config of opts.trunks) {
      const trunk = new Trunk(config, {
        resolver,
        clock: this.clock,
        resolveTtlMs,
        onAddresses: (t, addresses) => this.indexAddresses(t, addresses),
        ...(opts.onTlsTarget !== undefined ? { onTlsTarget: opts.onTlsTarget } : {}),
      });
      this.trunks.set(trunk.name, trunk);
      if (config.inboundAddresses.length > 0) this.cidrs.push({ set: new CidrSet(config.inboundAddresses), trunk });
      trunk.onStatus((s) => this.forward(s));
      this.pings.push({ trunk, handle: undefined, inFlight: undefined, cseq: 0, callId: newCallId(), fromTag: newTag() });
    }
  }

  /**
   * Resolve every trunk (waiting at most startWaitMs; a failure leaves that
   * trunk unreachable with the error, it does not fail start) and send the
   * first pings without waiting for their answers.
   */
  async start(): Promise<void> {
    const all = Promise.allSettled([...this.trunks.values()].map((t) => t.resolve()));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise<void>((r) => (timer = setTimeout(r, this.startWaitMs)))]);
    if (timer !== undefined) clearTimeout(timer);
    if (this.closed) return;
    for (const p of this.pings) {
      if (p.trunk.config.optionsIntervalSec > 0) void this.runPing(p);
    }
  }

  all(): Trunk[] {
    return [...this.trunks.values()];
  }

  get(name: string): Trunk | undefined {
    return this.trunks.get(name);
  }

  /** The trunk a request came from: by the resolved address of a trunk, then by inboundAddresses blocks. */
  fromSource(source: Endpoint | { address: string }): Trunk | undefined {
    const direct = this.byAddress.get(source.address);
    if (direct !== undefined) return direct;
    // a plain IPv4 source is already in canonical form: no parsing unless blocks are configured
    if (this.cidrs.length === 0 && source.address.indexOf(':') < 0) return undefined;
    const bytes = ipBytes(source.address);
    if (bytes === null) return undefined;
    const canonical = this.byAddress.get(keyOfBytes(bytes));
    if (canonical !== undefined) return canonical;
    for (const c of this.cidrs) if (c.set.has(bytes)) return c.trunk;
    return undefined;
  }

  /** Status of every trunk changes (reachability, authentication, errors). */
  onStatus(listener: (s: TrunkStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  statuses(): TrunkStatus[] {
    return this.all().map((t) => t.status());
  }

  /** Ping one trunk now (tests, an admin "check now"); resolves with its status after the answer. */
  ping(name: string): Promise<TrunkStatus> | undefined {
    const p = this.pings.find((x) => x.trunk.name === name);
    return p === undefined ? undefined : this.runPing(p);
  }

  close(): void {
    this.closed = true;
    for (const p of this.pings) {
      if (p.handle !== undefined) this.wheel.cancel(p.handle);
      p.handle = undefined;
    }
    if (this.ownWheel) this.wheel.close();
  }

  private runPing(p: PingState): Promise<TrunkStatus> {
    if (p.inFlight !== undefined) return p.inFlight;
    const run = this.pingOnce(p).finally(() => {
      p.inFlight = undefined;
      this.scheduleNext(p);
    });
    p.inFlight = run;
    return run;
  }

  private scheduleNext(p: PingState): void {
    const interval = p.trunk.config.optionsIntervalSec;
    if (this.closed || interval <= 0) return;
    const at = this.clock.now() + interval * 1000;
    if (p.handle === undefined) p.handle = this.wheel.schedule(at, (s: PingState) => void this.runPing(s), p);
    else this.wheel.reschedule(p.handle, at);
  }

  private async pingOnce(p: PingState): Promise<TrunkStatus> {
    const trunk = p.trunk;
    let destination: Endpoint;
    try {
      destination = await trunk.destination();
    } catch {
      // the trunk already carries the resolution error and is unreachable
      return trunk.status();
    }
    if (this.closed) return trunk.status();
    const request = this.optionsRequest(p);
    const sentAt = this.clock.now();
    let response: SipResponse;
    try {
      response = await this.sender.sendRequest(request, { destination });
    } catch (err) {
      response = { kind: 'response', status: 503, reason: err instanceof Error ? err.message : 'send failed', headers: new Headers(), body: Buffer.alloc(0) };
    }
    if (this.closed) return trunk.status();
    const rtt = Math.max(0, this.clock.now() - sentAt);
    const was = trunk.isReachable;
    // Any final answer from the peer means it is alive (404, 405, 401 included);
    // our own 408/503 (no answer, transport failure) means it is not.
    const dead = response.status === 408 || (response.status === 503 && isLocalAnswer(response));
    if (dead) {
      let message = `OPTIONS to ${destination.address}:${destination.port}/${destination.protocol}: ${response.status} ${response.reason}`;
      if (destination.protocol === 'tls' && response.status === 503) message += await this.tlsFailure(destination);
      if (this.closed) return trunk.status();
      trunk.markUnreachable(message, true);
      if (was !== false) this.logger.warn({ trunk: trunk.name, status: response.status, destination: `${destination.address}:${destination.port}` }, 'trunk unreachable');
      trunk.failover();
      trunk.resolve().catch(() => undefined);
    } else {
      trunk.markReachable(rtt);
      if (was !== true) this.logger.info({ trunk: trunk.name, status: response.status, rttMs: rtt }, 'trunk reachable');
    }
    return trunk.status();
  }

  /** The reason a TLS connection fails, as a suffix for the trunk's lastError. */
  private async tlsFailure(destination: Endpoint): Promise<string> {
    let why: string | undefined;
    if (this.probeTls !== undefined) {
      try {
        why = await this.probeTls(destination);
      } catch (err) {
        why = err instanceof Error ? err.message : String(err);
      }
    }
    return why !== undefined
      ? ` (no TLS connection: ${why})`
      : ' (no TLS connection: refused, or the handshake failed; check the trunk\'s tls caPath, servername and client certificate)';
  }

  private optionsRequest(p: PingState): SipRequest {
    const trunk = p.trunk;
    const headers = new Headers();
    headers.append('from', `<${this.fromUri}>;tag=${p.fromTag}`);
    headers.append('to', `<${trunk.domainUri()}>`);
    headers.append('call-id', p.callId);
    headers.append('cseq', `${++p.cseq} OPTIONS`);
    headers.append('max-forwards', '70');
    headers.append('accept', 'application/sdp');
    return createRequest('OPTIONS', trunk.domainUri(), headers);
  }

  private indexAddresses(trunk: Trunk, addresses: readonly string[]): void {
    for (const old of this.addressesOf.get(trunk) ?? []) {
      if (this.byAddress.get(old) === trunk) this.byAddress.delete(old);
    }
    const keys: string[] = [];
    for (const a of addresses) {
      const k = ipKey(a);
      if (k === null) continue;
      const owner = this.byAddress.get(k);
      if (owner !== undefined && owner !== trunk) {
        this.logger.warn({ trunk: trunk.name, other: owner.name, address: k }, 'two trunks resolve to one address; requests from it count as the first');
        continue;
      }
      this.byAddress.set(k, trunk);
      keys.push(k);
    }
    this.addressesOf.set(trunk, keys);
  }

  private forward(s: TrunkStatus): void {
    for (const l of this.listeners) {
      try {
        l(s);
      } catch {
        // a listener's failure is its own
      }
    }
  }
}
