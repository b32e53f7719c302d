/**
 * One configured trunk: who it carries, where requests to it go, and its live
 * status (reachability from OPTIONS pings, authentication, subscription and
 * publication counts, last error).
 */
import { isIP } from 'node:net';
import type { TrunkConfig } from './config.js';
import type { DigestCredentials } from '../sip/digest.js';
import type { Endpoint } from '../sip/message.js';
import { formatUri } from '../sip/uri.js';
import { traitsFor, type ProfileTraits, type TrunkDirection, type VendorProfile } from './profiles.js';
import type { TrunkResolver } from './resolver.js';
import { parseTrunkTarget, type TrunkTarget } from './target.js';
import type { Clock } from '../util/clock.js';

export interface TrunkStatus {
  name: string;
  profile: VendorProfile;
  directions: TrunkDirection[];
  /** undefined until the first ping or resolution attempt */
  reachable: boolean | undefined;
  rttMs?: number;
  lastPingAt?: number;
  /** undefined until the trunk challenged (or accepted) one of our requests */
  authenticated: boolean | undefined;
  subscriptions: { up: number; down: number };
  publications: { up: number; down: number };
  lastError?: { at: number; message: string };
}

export interface PersonRef {
  id: string;
  extension?: string | undefined;
}

type ItemKind = 'subscription' | 'publication';

class ItemCounts {
  private readonly items = new Map<string, boolean>();
  up = 0;
  down = 0;

  note(key: string, up: boolean): void {
    const was = this.items.get(key);
    if (was === up) return;
    if (was === true) this.up--;
    else if (was === false) this.down--;
    this.items.set(key, up);
    if (up) this.up++;
    else this.down++;
  }

  forget(key: string): void {
    const was = this.items.get(key);
    if (was === undefined) return;
    this.items.delete(key);
    if (was) this.up--;
    else this.down--;
  }
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/**
 * What outbound TLS connections to a trunk's next hop need, from trunks[].tls
 * (file paths: the wiring reads them and hands PEM text to the SIP stack).
 */
export interface TrunkTlsSettings {
  trunk: string;
  caPath?: string;
  certPath?: string;
  keyPath?: string;
  /**
   * SNI and the name the peer's certificate must carry: as configured, else
   * the next hop's host name (RFC 5922 §4: the domain of the URI, not the SRV
   * target); absent for a numeric host (the certificate is checked against the IP).
   */
  servername?: string;
  /** verify the peer's certificate (default true) */
  verify: boolean;
}

export interface TrunkOptions {
  resolver: TrunkResolver;
  clock: Pick<Clock, 'now'>;
  /** re-resolve a destination older than this (ms) */
  resolveTtlMs: number;
  /** the addresses of the trunk's `address` changed (for source lookups) */
  onAddresses?: (trunk: Trunk, addresses: readonly string[]) => void;
  /** a resolved next-hop endpoint is TLS: called before the endpoint is handed out */
  onTlsTarget?: (endpoint: Endpoint, settings: TrunkTlsSettings) => void;
}

export class Trunk {
  readonly name: string;
  readonly config: TrunkConfig;
  readonly traits: ProfileTraits;
  readonly credentials: DigestCredentials | undefined;
  /** host of request URIs at the trunk */
  readonly domain: string;
  /** the trunk's own address */
  readonly target: TrunkTarget;
  /** where requests go first: the outbound proxy when set, else the address */
  readonly nextHop: TrunkTarget;
  private readonly nextHopUri: string;
  private readonly pattern: RegExp | undefined;
  private readonly idSet: Set<string> | undefined;

  private endpoints: Endpoint[] = [];
  private endpointIndex = 0;
  private resolvedAt: number | undefined;
  private resolving: Promise<Endpoint[]> | undefined;
  private addressResolving: Promise<void> | undefined;

  private reachable: boolean | undefined;
  private rttMs: number | undefined;
  private lastPingAt: number | undefined;
  private authenticated: boolean | undefined;
  private lastError: { at: number; message: string } | undefined;
  private readonly subscriptions = new ItemCounts();
  private readonly publications = new ItemCounts();
  private readonly listeners = new Set<(s: TrunkStatus) => void>();

  constructor(
    config: TrunkConfig,
    private readonly opts: TrunkOptions,
  ) {
    const target = parseTrunkTarget(config.address);
    if (target === null) throw new Error(`trunk ${config.name}: address ${config.address} is not a SIP URI`);
    const hopUri = config.outboundProxy ?? config.address;
    const hop = parseTrunkTarget(hopUri);
    if (hop === null) throw new Error(`trunk ${config.name}: outboundProxy ${hopUri} is not a SIP URI`);
    this.name = config.name;
    this.config = config;
    this.target = target;
    this.nextHop = hop;
    this.nextHopUri = hopUri;
    this.domain = config.domain ?? target.host;
    this.traits = traitsFor(config.profile, config.watch.event);
    this.credentials =
      config.credentials === undefined
        ? undefined
        : {
            username: config.credentials.username,
            password: config.credentials.password,
            ...(config.credentials.realm !== undefined ? { realm: config.credentials.realm } : {}),
          };
    if (Array.isArray(config.users)) this.idSet = new Set(config.users);
    else if (config.users !== 'all') this.pattern = new RegExp(config.users.pattern);
  }

  has(direction: TrunkDirection): boolean {
    return this.config.directions.includes(direction);
  }

  /** Whether the trunk carries this person: all, a listed id, or pattern on the extension (then the id). */
  carries(person: PersonRef): boolean {
    if (this.idSet !== undefined) return this.idSet.has(person.id);
    if (this.pattern !== undefined) {
      return (person.extension !== undefined && this.pattern.test(person.extension)) || this.pattern.test(person.id);
    }
    return true;
  }

  /** The user part used at the trunk: the extension (falling back to the id) or the id. */
  userPart(person: PersonRef): string {
    return this.config.userPart === 'extension' ? (person.extension ?? person.id) : person.id;
  }

  /** sip:<user>@<domain>, user escaped as a SIP URI needs (e.g. # in an extension). */
  userUri(person: PersonRef): string {
    return formatUri({ scheme: 'sip', user: this.userPart(person), host: this.domain, params: new Map(), headers: new Map() });
  }

  /** The ping target: sip:<domain>. */
  domainUri(): string {
    return `sip:${this.domain}`;
  }

  /**
   * Where to send a request: the outbound proxy or the address, resolved.
   * A cached resolution is used (and refreshed in the background when old);
   * rejects only when the name has never resolved.
   */
  async destination(): Promise<Endpoint> {
    const now = this.opts.clock.now();
    if (this.endpoints.length === 0) await this.resolve();
    else if (this.resolvedAt !== undefined && now - this.resolvedAt > this.opts.resolveTtlMs) {
      this.resolve().catch(() => undefined);
    }
    const ep = this.endpoints[this.endpointIndex % this.endpoints.length];
    if (ep === undefined) throw new Error(`trunk ${this.name}: ${this.nextHopUri} resolved to no address`);
    return ep;
  }

  /** Resolve the next hop now (one lookup at a time); failures are noted as the trunk's error. */
  resolve(): Promise<Endpoint[]> {
    if (this.resolving !== undefined) return this.resolving;
    const p = (async () => {
      try {
        const found = await this.opts.resolver(this.nextHopUri);
        if (found.length === 0) throw new Error('no address');
        if (this.opts.onTlsTarget !== undefined) this.announceTls(found, this.opts.onTlsTarget);
        const same = found.length === this.endpoints.length && found.every((e, i) => sameEndpoint(e, this.endpoints[i]));
        if (!same) {
          this.endpoints = found;
          this.endpointIndex = 0;
        }
        this.resolvedAt = this.opts.clock.now();
        if (this.config.outboundProxy === undefined) this.opts.onAddresses?.(this, found.map((e) => e.address));
        return found;
      } catch (err) {
        const message = `cannot resolve ${stripBrackets(this.nextHop.host)}: ${err instanceof Error ? err.message : String(err)}`;
        this.markUnreachable(message);
        throw new Error(message);
      } finally {
        this.resolving = undefined;
      }
    })();
    this.resolving = p;
    if (this.config.outboundProxy !== undefined) this.resolveAddress();
    return p;
  }

  private announceTls(found: readonly Endpoint[], onTlsTarget: NonNullable<TrunkOptions['onTlsTarget']>): void {
    let settings: TrunkTlsSettings | undefined;
    for (const ep of found) {
      if (ep.protocol !== 'tls') continue;
      settings ??= this.tlsSettings();
      try {
        onTlsTarget(ep, settings);
      } catch (err) {
        this.noteError(`tls settings: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }

  /** TLS settings for connections to the next hop (trunks[].tls, with the host name as default servername). */
  tlsSettings(): TrunkTlsSettings {
    const tls = this.config.tls;
    const settings: TrunkTlsSettings = { trunk: this.name, verify: tls?.verify ?? true };
    if (tls?.caPath !== undefined) settings.caPath = tls.caPath;
    if (tls?.certPath !== undefined && tls.keyPath !== undefined) {
      settings.certPath = tls.certPath;
      settings.keyPath = tls.keyPath;
    }
    const host = stripBrackets(this.nextHop.host);
    const servername = tls?.servername ?? (isIP(host) === 0 ? host : undefined);
    if (servername !== undefined) settings.servername = servername;
    return settings;
  }

  /** With an outbound proxy, the address is resolved separately, only to recognise its requests. */
  private resolveAddress(): void {
    if (this.addressResolving !== undefined) return;
    this.addressResolving = this.opts
      .resolver(this.config.address)
      .then(
        (found) => this.opts.onAddresses?.(this, found.map((e) => e.address)),
        () => undefined,
      )
      .finally(() => {
        this.addressResolving = undefined;
      });
  }

  /** Try the next resolved address after a failure (when the name has several). */
  failover(): void {
    if (this.endpoints.length > 1) this.endpointIndex = (this.endpointIndex + 1) % this.endpoints.length;
  }

  get resolvedAtMs(): number | undefined {
    return this.resolvedAt;
  }

  // -- status ---------------------------------------------------------------

  /** Count a subscription / publication of this trunk as up or down (keyed, e.g. by person id). */
  noteItem(kind: ItemKind, key: string, up: boolean): void {
    (kind === 'subscription' ? this.subscriptions : this.publications).note(key, up);
  }

  /** Stop counting an item (the person left the trunk or the gateway). */
  forgetItem(kind: ItemKind, key: string): void {
    (kind === 'subscription' ? this.subscriptions : this.publications).forget(key);
  }

  /** Our credentials were accepted (true) or refused (false) by the trunk. */
  noteAuth(ok: boolean): void {
    if (this.authenticated === ok) return;
    this.authenticated = ok;
    if (!ok) this.lastError = { at: this.opts.clock.now(), message: 'credentials refused by the trunk' };
    this.emit();
  }

  noteError(message: string): void {
    this.lastError = { at: this.opts.clock.now(), message };
    this.emit();
  }

  /** @internal registry: an OPTIONS answer arrived. */
  markReachable(rttMs: number): void {
    const flipped = this.reachable !== true;
    this.reachable = true;
    this.rttMs = rttMs;
    this.lastPingAt = this.opts.clock.now();
    if (flipped) this.emit();
  }

  /** @internal registry: no answer, a transport failure, or no address. */
  markUnreachable(message: string, pinged = false): void {
    // the same failure again (a dead peer every ping) is no change for listeners
    const changed = this.reachable !== false || this.lastError?.message !== message;
    this.reachable = false;
    if (pinged) this.lastPingAt = this.opts.clock.now();
    this.lastError = { at: this.opts.clock.now(), message };
    if (changed) this.emit();
  }

  get isReachable(): boolean | undefined {
    return this.reachable;
  }

  status(): TrunkStatus {
    const s: TrunkStatus = {
      name: this.name,
      profile: this.config.profile,
      directions: [...this.config.directions],
      reachable: this.reachable,
      authenticated: this.authenticated,
      subscriptions: { up: this.subscriptions.up, down: this.subscriptions.down },
      publications: { up: this.publications.up, down: this.publications.down },
    };
    if (this.rttMs !== undefined) s.rttMs = this.rttMs;
    if (this.lastPingAt !== undefined) s.lastPingAt = this.lastPingAt;
    if (this.lastError !== undefined) s.lastError = { ...this.lastError };
    return s;
  }

  /** Called on changes only: reachability flips, authentication flips, errors. Returns an unsubscribe. */
  onStatus(listener: (s: TrunkStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(): void {
    if (this.listeners.size === 0) return;
    const s = this.status();
    for (const l of this.listeners) {
      try {
        l(s);
      } catch {
        // a listener's failure is its own
      }
    }
  }
}

function sameEndpoint(a: Endpoint, b: Endpoint | undefined): boolean {
  return b !== undefined && a.address === b.address && a.port === b.port && a.protocol === b.protocol;
}
