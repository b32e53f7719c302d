/**
 * Who may send requests to the gateway: trunks (by source address), trusted
 * networks, and digest users; everyone else gets 403 (restricted mode).
 */
import type { AccessConfig } from './config.js';
import { DigestServer } from '../sip/digest-server.js';
import { createResponse, type Endpoint, type SipRequest, type SipResponse } from '../sip/message.js';
import { GuessingGuard, type GuardVerdict, type LockoutEvent } from '../sip/guessing-guard.js';
import type { SecurityLog } from '../sip/security-log.js';
import type { Logger } from '../util/logger.js';
import { CidrSet } from './cidr.js';
import { GUESSING_DEFAULTS } from './guessing-config.js';
import type { Trunk } from './trunk.js';
import { systemClock, type Clock } from '../util/clock.js';

export type AccessDecision =
  | { allow: true; trunk?: Trunk; username?: string }
  | { allow: false; response: SipResponse; /** answer only after this many ms (a throttled challenge) */ delayMs?: number };

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
  clock?: Pick<Clock, 'now'>;
  /** replace the digest server (tests: a fixed secret and clock) */
  digest?: DigestServer;
  /** the security log (every failure, refusal and lockout, for fail2ban); default none */
  security?: SecurityLog;
}

export const FORBIDDEN_REASON = 'Forbidden - not a trunk or authenticated user';
const REFUSAL_LOG_MS = 60_000;
const MAX_REFUSAL_SOURCES = 10_000;
export const LOCKED_OUT_REASON = 'Forbidden - too many failed authentications';
/** delayed challenges per second at most (each holds a timer); beyond it challenges go out at once */
const MAX_DELAYED_PER_SEC = 200;

/** Short fixed code of a digest failure, for the security log and metrics. */
function failureCode(reason: string): string {
  if (/password/.test(reason)) return 'wrong_password';
  if (/not issued here/.test(reason)) return 'foreign_nonce';
  if (/algorithm/.test(reason)) return 'bad_algorithm';
  return 'bad_credentials';
}

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
  private readonly clock: Pick<Clock, 'now'>;
  /** source address → when its refusal was last logged */
  private readonly refusalsLogged = new Map<string, number>();
  private readonly security: SecurityLog | undefined;
  /** undefined when sip.access.guessing.enabled is false */
  readonly guard: GuessingGuard | undefined;
  private readonly refuseWith: 403 | 503;
  private delayed = { second: 0, n: 0 };
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(opts: AccessControlOptions) {
    this.registry = opts.registry;
    this.mode = opts.mode ?? opts.config.mode ?? 'restricted';
    this.trusted = new CidrSet(opts.config.trusted);
    this.passwords = new Map(opts.config.users.map((u) => [u.username, u.password]));
    this.admins = new Set(opts.config.users.filter((u) => u.admin === true).map((u) => u.username));
    this.proxy = opts.config.challenge === 407;
    this.logger = opts.logger;
    this.clock = opts.clock ?? systemClock;
    this.digest =
      opts.digest ?? new DigestServer({ realm: opts.config.realm ?? opts.defaultRealm ?? 'presence-gateway', clock: this.clock });
    this.security = opts.security;
    const g = opts.config.guessing ?? GUESSING_DEFAULTS;
    this.refuseWith = g.refuseWith;
    if (g.enabled) {
      const { enabled: _e, refuseWith: _r, ...options } = g;
      this.guard = new GuessingGuard(options, this.clock, (e) => this.lockout(e));
      // lockout ends are reported on the way too; this catches them when no one asks
      if (opts.clock === undefined) {
        this.sweepTimer = setInterval(() => this.guard?.sweep(), 5000);
        this.sweepTimer.unref();
      }
    }
  }

  close(): void {
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
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
    const user = verdict.username;
    const address = req.source.address;
    if (this.guard !== undefined && user !== undefined) {
      // a locked-out source gets the same refusal whether the password was right or not
      const g = this.guard.check(address, user);
      if (g.kind === 'refuse') return this.lockedOut(req, user, g);
    }
    if (verdict.ok) {
      this.guard?.succeeded(address, verdict.username);
      return { allow: true, username: verdict.username };
    }
    if (verdict.malformed) {
      this.logRefusal(req, verdict.reason, verdict.username);
      this.securityEvent('auth_failed', req, 'malformed_credentials', user);
      // RFC 7616 §3.4.6 / RFC 3261 §22.3: a broken or mismatched Authorization is a 400, not a new challenge
      return { allow: false, response: createResponse(request, 400, `Bad Request - ${verdict.reason}`) };
    }
    // stale: the digest was right, only the nonce old (RFC 7616 §3.3): not a failure
    if (verdict.stale) return { allow: false, response: this.digest.challenge(request, this.proxy, true) };
    this.logRefusal(req, verdict.reason, verdict.username);
    this.securityEvent('auth_failed', req, failureCode(verdict.reason), user);
    const delay = this.guard !== undefined && user !== undefined ? this.guard.failed(address, user) : 0;
    if (delay === 'locked' && user !== undefined) {
      const g = this.guard?.check(address, user);
      if (g !== undefined && g.kind === 'refuse') return this.lockedOut(req, user, g, false);
    }
    const response = this.digest.challenge(request, this.proxy, false);
    return typeof delay === 'number' && delay > 0 && this.mayDelay() ? { allow: false, response, delayMs: delay } : { allow: false, response };
  }

  /** Lockout counts for metrics and diagnostics. */
  guessingStats(): { tracked: number; lockedSources: number; lockedUsers: number } {
    return this.guard?.stats() ?? { tracked: 0, lockedSources: 0, lockedUsers: 0 };
  }

  /** 403 (or 503 + Retry-After when configured) while locked out; logged as a refusal unless `log` is false. */
  private lockedOut(req: AccessRequest, user: string, g: Extract<GuardVerdict, { kind: 'refuse' }>, log = true): AccessDecision {
    if (log) this.securityEvent('auth_refused', req, g.scope === 'user' ? 'user_locked_out' : 'locked_out', user);
    if (this.refuseWith === 503) {
      const response = createResponse(req.request, 503, 'Service Unavailable - too many failed authentications');
      // RFC 3261 §20.33: when to come back
      response.headers.append('retry-after', String(g.retryAfterSec));
      return { allow: false, response };
    }
    return { allow: false, response: createResponse(req.request, 403, LOCKED_OUT_REASON) };
  }

  private mayDelay(): boolean {
    const second = Math.floor(this.clock.now() / 1000);
    if (this.delayed.second !== second) this.delayed = { second, n: 0 };
    return this.delayed.n++ < MAX_DELAYED_PER_SEC;
  }

  private lockout(e: LockoutEvent): void {
    this.security?.record(e.type, {
      source: e.source ?? '-',
      user: e.user,
      reason: e.type === 'lockout_start' ? 'too_many_failures' : 'lockout_over',
      scope: e.scope,
      seconds: e.seconds,
      failures: e.failures,
    });
  }

  private securityEvent(event: 'auth_failed' | 'auth_refused', req: AccessRequest, reason: string, user?: string): void {
    if (this.security === undefined) return;
    this.security.record(event, {
      source: req.source.address,
      port: req.source.port,
      transport: req.source.protocol,
      ...(user !== undefined ? { user } : {}),
      method: req.request.method,
      reason,
      ...(req.request.headers.get('call-id') !== undefined ? { callId: req.request.headers.get('call-id') as string } : {}),
    });
  }

  /** Sources the per-source rate limit of new requests leaves alone: trunks, trusted networks, anyone in open mode. */
  exemptFromRateLimit(source: Endpoint): boolean {
    return this.mode === 'open' || this.trusted.has(source.address) || this.registry.fromSource(source) !== undefined;
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
    this.securityEvent('auth_refused', req, 'not_allowed');
    return { allow: false, response: createResponse(req.request, 403, FORBIDDEN_REASON) };
  }

  /** At warn, once per source address per minute; user names only, never credentials. */
  private logRefusal(req: AccessRequest, why: string, username?: string): void {
    const key = req.source.address;
    const now = this.clock.now();
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
