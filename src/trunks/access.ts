/**
 * Who may send requests to the gateway: trunks (by source address), trusted
 * networks, and digest users; everyone else gets 403 (restricted mode).
 */
import type { AccessConfig } from './config.js';
import { DigestServer } from '../sip/digest-server.js';
import { createResponse, type Endpoint, type SipRequest, type SipResponse } from '../sip/message.js';
import type { Logger } from '../util/logger.js';
import { CidrSet } from './cidr.js';
import type { Trunk } from './trunk.js';

export type AccessDecision =
  | { allow: true; trunk?: Trunk; username?: string }
  | { allow: false; response: SipResponse };

/** What check() needs of an inbound request (IncomingRequest / InboundRequest fit). */
export interface AccessRequest {
  readonly request: SipRequest;
  readonly source: Endpoint;
}

/** The part of TrunkRegistry access control uses. */
export interface TrunkLookup {
  fromSource(source: Endpoint): Trunk | undefined;
}

export interface AccessControlOptions {
  registry: TrunkLookup;
  config: AccessConfig;
  /** open or restricted (see effectiveAccessMode); default config.mode, else restricted */
  mode?: 'open' | 'restricted';
  /** realm when config.realm is absent (the gateway's sip.domain) */
  defaultRealm?: string;
  logger: Logger;
  now?: () => number;
  /** replace the digest server (tests: a fixed secret and clock) */
  digest?: DigestServer;
}

export const FORBIDDEN_REASON = 'Forbidden - not a trunk or authenticated user';
const REFUSAL_LOG_MS = 60_000;
const MAX_REFUSAL_SOURCES = 10_000;

export class AccessControl {
  readonly mode: 'open' | 'restricted';
  readonly digest: DigestServer;
  private readonly registry: TrunkLookup;
  private readonly trusted: CidrSet;
  private readonly passwords: Map<string, string>;
  /** digest users marked admin (they may see watcher information, RFC 3857) */
  private readonly admins: Set<string>;
  private readonly proxy: boolean;
  private readonly logger: Logger;
  private readonly now: () => number;
  /** source address → when its refusal was last logged */
  private readonly refusalsLogged = new Map<string, number>();

  constructor(opts: AccessControlOptions) {
    this.registry = opts.registry;
    this.mode = opts.mode ?? opts.config.mode ?? 'restricted';
    this.trusted = new CidrSet(opts.config.trusted);
    this.passwords = new Map(opts.config.users.map((u) => [u.username, u.password]));
    this.admins = new Set(opts.config.users.filter((u) => u.admin === true).map((u) => u.username));
    this.proxy = opts.config.challenge === 407;
    this.logger = opts.logger;
    this.now = opts.now ?? Date.now;
    this.digest =
      opts.digest ?? new DigestServer({ realm: opts.config.realm ?? opts.defaultRealm ?? 'presence-gateway', now: this.now });
  }

  check(req: AccessRequest): AccessDecision {
    const request = req.request;
    const method = request.method;
    const trunk = this.registry.fromSource(req.source);
    // OPTIONS (keep-alive, capability query) passes; ACK and CANCEL cannot be challenged (RFC 3261 §22.1)
    if (method === 'OPTIONS' || method === 'ACK' || method === 'CANCEL') return trunk === undefined ? { allow: true } : { allow: true, trunk };
    if (trunk !== undefined) {
      // a trunk's NOTIFY (our upstream subscriptions) always passes; SUBSCRIBE/PUBLISH need the inbound direction
      if (trunk.has('inbound') || (method !== 'SUBSCRIBE' && method !== 'PUBLISH')) return { allow: true, trunk };
    }
    if (this.mode === 'open') return trunk === undefined ? { allow: true } : { allow: true, trunk };
    if (this.trusted.has(req.source.address)) return { allow: true };

    if (this.passwords.size === 0) return this.forbid(req, 'no trunk or trusted source, and no digest users configured');
    const verdict = this.digest.verify(request, this.proxy, (u) => this.passwords.get(u));
    if (verdict === undefined) return { allow: false, response: this.digest.challenge(request, this.proxy) };
    if (verdict.ok) return { allow: true, username: verdict.username };
    if (verdict.malformed) {
      this.logRefusal(req, verdict.reason, verdict.username);
      // RFC 7616 §3.4.6 / RFC 3261 §22.3: a broken or mismatched Authorization is a 400, not a new challenge
      return { allow: false, response: createResponse(request, 400, `Bad Request - ${verdict.reason}`) };
    }
    if (!verdict.stale) this.logRefusal(req, verdict.reason, verdict.username);
    return { allow: false, response: this.digest.challenge(request, this.proxy, verdict.stale) };
  }

  /** The source is in a trusted network (sip.access.trusted). */
  isTrusted(address: string): boolean {
    return this.trusted.has(address);
  }

  /** The digest user is marked admin (sip.access.users[].admin): may see watcher information. */
  isAdmin(username: string | undefined): boolean {
    return username !== undefined && this.admins.has(username);
  }

  private forbid(req: AccessRequest, why: string): AccessDecision {
    this.logRefusal(req, why);
    return { allow: false, response: createResponse(req.request, 403, FORBIDDEN_REASON) };
  }

  /** At warn, once per source address per minute; user names only, never credentials. */
  private logRefusal(req: AccessRequest, why: string, username?: string): void {
    const key = req.source.address;
    const now = this.now();
    const last = this.refusalsLogged.get(key);
    if (last !== undefined && now - last < REFUSAL_LOG_MS) return;
    if (last === undefined && this.refusalsLogged.size >= MAX_REFUSAL_SOURCES) this.pruneRefusals(now);
    this.refusalsLogged.delete(key);
    this.refusalsLogged.set(key, now);
    this.logger.warn(
      {
        source: `${req.source.address}:${req.source.port}`,
        protocol: req.source.protocol,
        method: req.request.method,
        callId: req.request.headers.get('call-id'),
        ...(username !== undefined ? { username } : {}),
        why,
      },
      'request refused',
    );
  }

  private pruneRefusals(now: number): void {
    for (const [k, at] of this.refusalsLogged) {
      if (now - at >= REFUSAL_LOG_MS || this.refusalsLogged.size >= MAX_REFUSAL_SOURCES) this.refusalsLogged.delete(k);
      else break;
    }
  }
}
