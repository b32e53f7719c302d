/**
 * The upstream publisher: Teams-derived presence of each carried person
 * PUBLISHed as PIDF to a presence server trunk (RFC 3903), in the trunk's
 * flavor (RPID activities; Cisco ce:alerting / ce:dnd).
 *
 * Per target one request at a time; a change while one is out is coalesced
 * (the latest view wins). The entity tag is refreshed at ~85 % of the granted
 * expiry with SIP-If-Match and no body; a changed body modifies the
 * publication; 412 starts a new one; undefined removes it (Expires: 0).
 */
import type { UpstreamPublicationRecord } from '../store/records.js';
import { buildPidf } from '../bodies/index.js';
import type { PresenceView } from '../core/person-state.js';
import type { DigestChallenge, DigestCredentials } from '../sip/digest.js';
import { ourContact } from '../sip/dialog.js';
import { parseExpires } from '../sip/header-values.js';
import { Headers } from '../sip/headers.js';
import { newCallId, newTag } from '../sip/ids.js';
import { createRequest, localFailure, type Endpoint, type SipRequest, type SipResponse } from '../sip/message.js';
import type { TimerHandle } from '../util/timer-wheel.js';
import { PIDF, presenceDocument } from './presence-package.js';
import {
  applyAuth,
  backoffDelay,
  longDelay,
  minExpiresOf,
  nameAddr,
  sendWithDigest,
  refreshDelayMs,
  retryAfterMs,
  UpstreamClient,
  type AuthHolder,
  type UpstreamClientOptions,
} from './upstream-client.js';

export interface PublishTarget {
  trunk: string;
  personId: string;
  /** Request-URI and To: the presentity at the presence server. */
  uri: string;
  expires: number;
  fromUri: string;
  flavor: 'rfc' | 'cisco';
  destination: () => Promise<Endpoint>;
  credentials?: DigestCredentials;
  /** PUBLISHes per second on this trunk (default 50). */
  ratePerSec?: number;
}

/** An upstream publication as plain data, for persistence: the store's record. */
export type UpstreamPublicationSnapshot = UpstreamPublicationRecord;

/** Where upstream publications to keep are reported (persistence); called synchronously. */
export interface UpstreamPublicationPersistence {
  save(snapshot: UpstreamPublicationSnapshot): void;
  remove(trunk: string, personId: string, event: string): void;
}

export type UpstreamPublisherOptions = UpstreamClientOptions;

/** Refusals that will not change soon. */
const LONG_REFUSAL: ReadonlySet<number> = new Set([403, 404, 405, 415, 416, 420, 484, 488, 489, 501, 603, 604, 606]);
const MAX_MIN_EXPIRES = 86_400;

class PubItem implements AuthHolder {
  readonly key: string;
  target: PublishTarget;
  /** What the server should hold: a body, or null for "nothing" (remove). */
  desired: Buffer | null = null;
  /** The body the server holds under `etag`. */
  published: Buffer | null = null;
  etag: string | undefined = undefined;
  expires: number;
  expiresAt = 0;
  readonly callId = newCallId();
  readonly fromTag = newTag();
  cseq = 0;
  inFlight = false;
  /** The etag's refresh is due. */
  refreshDue = false;
  up = false;
  failures = 0;
  timer: TimerHandle | undefined = undefined;
  challenge: DigestChallenge | undefined = undefined;
  /** The retry timer is armed: changes wait for it rather than hammer a failing server. */
  waiting = false;
  /** Handed over (release): the publication goes on under another holder; nothing more is sent or saved for it here. */
  released = false;

  constructor(target: PublishTarget) {
    this.key = `${target.trunk}\n${target.personId}`;
    this.target = target;
    this.expires = target.expires;
  }
}

type Op = 'initial' | 'modify' | 'refresh' | 'remove';

export class UpstreamPublisher extends UpstreamClient<PubItem> {
  private readonly inFlight = new Set<Promise<void>>();
  private persist: UpstreamPublicationPersistence | undefined = undefined;
  /** Entity-tags saved by an earlier run, by item key, taken by the first publish() of the target. */
  private readonly restored = new Map<string, { etag: string; expiresAt: number }>();
  private closing = false;
  /** close({ remove: false }): what the servers hold stays there. */
  private keepOnClose = false;

  constructor(options: UpstreamPublisherOptions) {
    super(options, (item) => this.step(item));
  }

  /** Report publications to keep to `listener` (undefined: stop). */
  // A setter on purpose: the persistence side attaches it at restore only when the store persists.
  onPersist(listener: UpstreamPublicationPersistence | undefined): void {
    this.persist = listener;
  }

  /**
   * Entity-tags of publications an earlier run left at the servers: the
   * first publish() of the same trunk and person modifies that publication
   * (SIP-If-Match; a 412 publishes anew) instead of starting a second one.
   */
  restore(snapshots: Iterable<UpstreamPublicationSnapshot>): { restored: number; dropped: number } {
    const now = this.clock.now();
    let restored = 0;
    let dropped = 0;
    for (const s of snapshots) {
      const key = `${s.trunk}\n${s.personId}`;
      if (this.closing || s.event !== 'presence' || s.expiresAt <= now + 1000 || this.items.get(key)?.etag !== undefined) {
        dropped++;
        continue;
      }
      const item = this.items.get(key);
      if (item !== undefined && !item.inFlight) {
        item.etag = s.etag;
        item.expiresAt = s.expiresAt;
      } else {
        this.restored.set(key, { etag: s.etag, expiresAt: s.expiresAt });
      }
      restored++;
    }
    return { restored, dropped };
  }

  private save(item: PubItem): void {
    if (this.persist === undefined || item.released) return;
    const t = item.target;
    if (item.etag === undefined) this.persist.remove(t.trunk, t.personId, 'presence');
    else this.persist.save({ trunk: t.trunk, personId: t.personId, event: 'presence', etag: item.etag, expiresAt: item.expiresAt });
  }

  /** Publish `view` for the target's person (undefined: remove the publication). */
  publish(target: PublishTarget, view: PresenceView | undefined): void {
    if (this.closing) return;
    const key = `${target.trunk}\n${target.personId}`;
    let item = this.items.get(key);
    if (item === undefined) {
      if (view === undefined) return;
      item = new PubItem(target);
      this.items.set(key, item);
      const kept = this.restored.get(key);
      if (kept !== undefined) {
        this.restored.delete(key);
        if (kept.expiresAt > this.clock.now()) {
          item.etag = kept.etag;
          item.expiresAt = kept.expiresAt;
        }
      }
    } else {
      item.target = target;
      if (item.expires < target.expires) item.expires = target.expires;
    }
    item.desired = view === undefined ? null : Buffer.from(buildPidf(presenceDocument(view, target.uri, target.flavor), { flavor: target.flavor }), 'utf8');
    this.kick(item);
  }

  /**
   * Stop publishing to a trunk without removing anything there: the trunk's
   * job moved to another node (src/store/cluster.ts), which goes on in the
   * saved entity-tags. A request in flight is answered into nothing. Returns
   * how many were released.
   */
  release(trunk: string): number {
    let n = 0;
    for (const item of [...this.items.values()]) {
      if (item.target.trunk !== trunk) continue;
      n++;
      item.released = true;
      this.items.delete(item.key);
      this.queue.delete(trunk, item);
      if (item.timer !== undefined) this.wheel.cancel(item.timer);
    }
    for (const key of [...this.restored.keys()]) if (key.startsWith(`${trunk}\n`)) this.restored.delete(key);
    return n;
  }

  /** The trunk came back: re-send every publication of it (a refresh; 412 → a new publication). */
  refreshAll(trunk: string): void {
    if (this.closing) return;
    for (const item of this.items.values()) {
      if (item.target.trunk !== trunk) continue;
      item.refreshDue = item.etag !== undefined;
      item.failures = 0;
      item.waiting = false;
      if (item.timer !== undefined) this.wheel.cancel(item.timer);
      this.kick(item);
    }
  }


  /**
   * Remove every publication (Expires: 0) and wait for the answers, bounded.
   * With `{ remove: false }` the publications stay at the servers (a restart
   * reuses their entity-tags): only the requests in flight are waited for.
   */
  async close(options: { remove?: boolean } = {}): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.queue.close();
    const remove = options.remove ?? true;
    this.keepOnClose = !remove;
    const removals: Array<Promise<unknown>> = [...this.inFlight];
    for (const item of this.items.values()) {
      if (item.timer !== undefined) this.wheel.cancel(item.timer);
      if (!remove) continue;
      item.desired = null;
      if (item.etag !== undefined && !item.inFlight) removals.push(this.track(this.run(item, 'remove')));
    }
    if (removals.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(removals),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.closeTimeoutMs);
      }),
    ]);
    if (timer !== undefined) clearTimeout(timer);
  }

  // -------------------------------------------------------------------------

  private readonly timerCallback = (item: PubItem): void => {
    if (this.closing || item.released) return;
    item.waiting = false;
    if (item.etag !== undefined && item.desired !== null && item.published !== null && item.desired.equals(item.published)) item.refreshDue = true;
    this.queue.push(item.target.trunk, item, item.target.ratePerSec);
  };

  private kick(item: PubItem): void {
    if (item.inFlight || item.waiting || item.released) return;
    this.queue.push(item.target.trunk, item, item.target.ratePerSec);
  }

  /** What to send now, if anything. */
  private next(item: PubItem): Op | undefined {
    if (item.desired === null) return item.etag !== undefined ? 'remove' : undefined;
    if (item.etag === undefined) return 'initial';
    if (item.published === null || !item.desired.equals(item.published)) return 'modify';
    return item.refreshDue ? 'refresh' : undefined;
  }

  private step(item: PubItem): void {
    if (this.closing || item.inFlight || item.released) return;
    const op = this.next(item);
    if (op === undefined) {
      if (item.desired === null && item.etag === undefined) this.forget(item);
      return;
    }
    void this.track(this.run(item, op));
  }

  private track(p: Promise<void>): Promise<void> {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
    return p;
  }

  private forget(item: PubItem): void {
    if (this.items.get(item.key) === item) this.items.delete(item.key);
    if (item.timer !== undefined) this.wheel.cancel(item.timer);
    if (item.up) {
      item.up = false;
      this.onItem(item.target.trunk, item.target.personId, false);
    }
  }

  private async run(item: PubItem, op: Op): Promise<void> {
    item.inFlight = true;
    const body = op === 'initial' || op === 'modify' ? item.desired : null;
    let rounds = 0;
    let response: SipResponse;
    let authTried: boolean;
    for (;;) {
      ({ response, authTried } = await this.transact(item, op, body));
      const min = response.status === 423 ? minExpiresOf(response) : undefined;
      // RFC 3903 §6 step 4 / RFC 3261 §10.2.8: 423 → again with Min-Expires.
      if (op !== 'remove' && min !== undefined && min > item.expires && min <= MAX_MIN_EXPIRES && rounds++ < 2) {
        item.expires = min;
        continue;
      }
      break;
    }
    item.inFlight = false;
    if (item.released) return;
    const status = response.status;
    const t = item.target;
    const log = { trunk: t.trunk, user: t.personId, callId: item.callId, op, status };
    if (status >= 200 && status < 300) {
      if (authTried) this.onAuth(t.trunk, true);
      item.failures = 0;
      if (op === 'remove') {
        item.etag = undefined;
        item.published = null;
        this.save(item);
        this.logger.info(log, 'upstream publication removed');
        if (item.desired === null) this.forget(item);
        else if (!this.closing) this.kick(item);
        return;
      }
      const etag = response.headers.get('sip-etag');
      if (etag === undefined || etag.trim().length === 0) {
        this.logger.warn(log, 'upstream PUBLISH accepted without SIP-ETag; next change starts a new publication');
        item.etag = undefined;
      } else {
        item.etag = etag.trim();
      }
      if (body !== null) item.published = body;
      item.refreshDue = false;
      const granted = parseExpires(response.headers.get('expires')) ?? item.expires;
      item.expiresAt = this.clock.now() + granted * 1000;
      this.save(item);
      if (!item.up && item.etag !== undefined) {
        item.up = true;
        this.onItem(t.trunk, t.personId, true);
      }
      this.logger.debug({ ...log, expires: granted }, 'upstream PUBLISH accepted');
      if (this.closing) {
        // close() came while this was out: the publication it made goes too (awaited by close()).
        if (item.etag !== undefined && !this.keepOnClose) await this.run(item, 'remove');
        return;
      }
      if (item.etag !== undefined && granted > 0) this.arm(item, this.clock.now() + refreshDelayMs(granted));
      // A change that came while this one was out.
      if (this.next(item) !== undefined) this.kick(item);
      return;
    }
    if (status === 412) {
      // RFC 3903 §6: the entity tag is unknown there: start over with the full state.
      this.logger.info(log, 'upstream publication unknown to the server, publishing anew');
      item.etag = undefined;
      this.save(item);
      item.published = null;
      item.refreshDue = false;
      if (item.desired === null) this.forget(item);
      else if (!this.closing) this.kick(item);
      return;
    }
    let error = `${status} ${response.reason}`;
    if (status === 401 || status === 407) {
      error = t.credentials === undefined ? `${status} challenged, no credentials` : `${status} authentication failed`;
      item.challenge = undefined;
      this.onAuth(t.trunk, false);
    }
    if (op === 'remove' && (this.closing || item.desired === null)) {
      this.logger.info(log, 'upstream publication removal refused; it will expire');
      this.forget(item);
      return;
    }
    if (this.closing) {
      if (item.etag !== undefined && op !== 'remove' && !this.keepOnClose) await this.run(item, 'remove');
      return;
    }
    if (item.up) item.up = false;
    this.onItem(t.trunk, t.personId, false, error);
    const delay = retryAfterMs(response) ?? (LONG_REFUSAL.has(status) ? longDelay(this.backoff, this.random) : backoffDelay(++item.failures, this.backoff, this.random));
    this.logger.warn({ ...log, retryInMs: delay }, 'upstream PUBLISH failed');
    if (item.expiresAt <= this.clock.now()) {
      // The publication has lapsed there: the next attempt is an initial one.
      item.etag = undefined;
      item.published = null;
    }
    item.refreshDue = item.etag !== undefined;
    item.waiting = true;
    this.arm(item, this.clock.now() + delay);
  }

  private arm(item: PubItem, at: number): void {
    if (item.timer === undefined) item.timer = this.wheel.schedule(at, this.timerCallback, item);
    else this.wheel.reschedule(item.timer, at);
  }

  /** One PUBLISH and its digest answers: once, again only for a stale nonce. */
  private async transact(item: PubItem, op: Op, body: Buffer | null): Promise<{ response: SipResponse; authTried: boolean }> {
    let destination: Endpoint;
    try {
      destination = await item.target.destination();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.logger.warn({ trunk: item.target.trunk, user: item.target.personId, err: message }, 'upstream destination did not resolve');
      return { response: localFailure(503, 'Service Unavailable - destination did not resolve'), authTried: false };
    }
    return sendWithDigest(this.sender, destination, item, item.target.credentials, () => this.build(item, op, body, destination), (error) =>
      this.logger.debug({ err: error, callId: item.callId }, 'upstream PUBLISH not sent'),
    );
  }

  /** RFC 3903 §4: initial (body), refresh (SIP-If-Match, no body), modify (both), remove (Expires: 0). */
  private build(item: PubItem, op: Op, body: Buffer | null, destination: Endpoint): SipRequest {
    const t = item.target;
    const h = new Headers();
    h.append('from', `${nameAddr(t.fromUri)};tag=${item.fromTag}`);
    h.append('to', nameAddr(t.uri));
    h.append('call-id', item.callId);
    h.append('cseq', `${++item.cseq} PUBLISH`);
    h.append('event', 'presence');
    h.append('expires', String(op === 'remove' ? 0 : item.expires));
    if (op !== 'initial' && item.etag !== undefined) h.append('sip-if-match', item.etag);
    const contact = ourContact(this.sender, destination.protocol);
    if (contact !== undefined) h.append('contact', contact);
    applyAuth(h, item, t.credentials, this.digest, 'PUBLISH', t.uri);
    if (body !== null) h.append('content-type', PIDF);
    return createRequest('PUBLISH', t.uri, h, body ?? undefined);
  }
}
