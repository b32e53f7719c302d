/**
 * The event state compositor for PUBLISH (RFC 3903): presence (PIDF) and
 * dialog (dialog-info) publications, each with its entity-tag and expiry,
 * composed per person into the PresenceStore.
 */
import { BodyError, parseDialogInfo, parsePidf } from '../bodies/index.js';
import { composeRich, composeTelephony } from '../core/compose.js';
import type { RichState, TelephonyState } from '../core/person-state.js';
import { parseEvent, parseExpires, parseMediaType } from '../sip/header-values.js';
import { randomHex } from '../sip/ids.js';
import { parseUri } from '../sip/uri.js';
import type { Logger } from '../util/logger.js';
import type { TimerHandle, TimerWheel } from '../util/timer-wheel.js';
import { telephonyFromDialogInfo, richStateFromPidf } from './convert.js';
import { RESOURCE_SCHEMES, type ResourceResolver } from './notifier.js';
import { decideExpiry, expiryRejection, reply, safeReason, type ExpiryBounds } from './sip-util.js';
import type { SipResponse } from '../sip/message.js';
import type { InboundRequest } from './stack-port.js';

export type PublishEvent = 'presence' | 'dialog';

/** Content types each event accepts in PUBLISH. */
export const PUBLISH_CONTENT_TYPES: Readonly<Record<PublishEvent, readonly string[]>> = {
  presence: ['application/pidf+xml', 'application/cpim-pidf+xml'],
  dialog: ['application/dialog-info+xml'],
};

/** Watches PUBLISH outcomes (metrics); structural, so this module imports nothing of it. */
export interface PublishObserver {
  /** `result`: 'created', 'refreshed', 'modified', 'removed', or the error status. */
  publish(event: string, result: string | number): void;
}

/** The request with its answer reported to `observer` (the outcome is read off request and response). */
function observed(req: InboundRequest, observer: PublishObserver): InboundRequest {
  const respond = (response: SipResponse): void => {
    req.respond(response);
    try {
      const h = req.request.headers;
      const event = parseEvent(h.get('event') ?? '')?.event ?? 'unknown';
      let result: string | number = response.status;
      if (response.status < 300) {
        if (response.headers.get('expires')?.trim() === '0') result = 'removed';
        else if (!h.has('sip-if-match')) result = 'created';
        else result = req.request.body.length > 0 ? 'modified' : 'refreshed';
      }
      observer.publish(event, result);
    } catch {
      // an observer never breaks request handling
    }
  };
  return {
    request: req.request,
    source: req.source,
    local: req.local,
    ...(req.connectionId !== undefined ? { connectionId: req.connectionId } : {}),
    ...(req.watcherProfile !== undefined ? { watcherProfile: req.watcherProfile } : {}),
    respond,
  };
}

/** Where composed state goes (the PresenceStore). */
export interface PresenceSink {
  setSip(personId: string, rich: RichState | undefined): void;
  setTelephony(personId: string, telephony: TelephonyState | undefined): void;
}

export interface PublicationsOptions {
  sink: PresenceSink;
  wheel: TimerWheel;
  logger: Logger;
  expires: ExpiryBounds;
  resolveResource: ResourceResolver;
  now?: () => number;
  /** Largest body accepted (default: the body codecs' limit). */
  maxBodyBytes?: number;
}

/** A publication as plain data, for persistence (src/store's PublicationRecord has the same shape). */
export interface PublicationSnapshot {
  etag: string;
  resource: string;
  event: string;
  /** ms epoch */
  expiresAt: number;
  /** { rich } for presence, { telephony } for dialog (JSON-able). */
  state: unknown;
}

/** Where publications to keep are reported (persistence); called synchronously, must be cheap. */
export interface PublicationPersistence {
  save(snapshot: PublicationSnapshot): void;
  /** The publication under this entity-tag is gone (removed, expired, or re-tagged by a refresh). */
  remove(etag: string): void;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A saved RichState, or undefined when the value does not look like one. */
function richOf(v: unknown): RichState | undefined {
  if (!isObject(v) || (v['basic'] !== 'open' && v['basic'] !== 'closed') || !Array.isArray(v['activities'])) return undefined;
  if (typeof v['origin'] !== 'string' || typeof v['at'] !== 'number') return undefined;
  return v as unknown as RichState;
}

/** A saved TelephonyState, or undefined when the value does not look like one. */
function telephonyOf(v: unknown): TelephonyState | undefined {
  if (!isObject(v) || typeof v['line'] !== 'string' || typeof v['dnd'] !== 'boolean' || !Array.isArray(v['calls'])) return undefined;
  if (typeof v['origin'] !== 'string' || typeof v['at'] !== 'number') return undefined;
  if (!v['calls'].every((c) => isObject(c) && typeof c['id'] === 'string' && typeof c['phase'] === 'string')) return undefined;
  return v as unknown as TelephonyState;
}

/** One published event state (RFC 3903 §2). */
export class Publication {
  expiresAt = 0;
  timer: TimerHandle | undefined = undefined;
  rich: RichState | undefined = undefined;
  telephony: TelephonyState | undefined = undefined;

  constructor(
    public etag: string,
    readonly resource: string,
    readonly event: PublishEvent,
  ) {}
}

function isPublishEvent(event: string): event is PublishEvent {
  return event === 'presence' || event === 'dialog';
}

export class Publications {
  private readonly byEtag = new Map<string, Publication>();
  private readonly byResource: Record<PublishEvent, Map<string, Set<Publication>>> = {
    presence: new Map(),
    dialog: new Map(),
  };
  private readonly sink: PresenceSink;
  private readonly wheel: TimerWheel;
  private readonly logger: Logger;
  private readonly bounds: ExpiryBounds;
  private readonly resolveResource: ResourceResolver;
  private readonly now: () => number;
  private readonly maxBodyBytes: number | undefined;
  private observer: PublishObserver | undefined = undefined;
  private persist: PublicationPersistence | undefined = undefined;
  private closed = false;

  constructor(options: PublicationsOptions) {
    this.sink = options.sink;
    this.wheel = options.wheel;
    this.logger = options.logger;
    this.bounds = options.expires;
    this.resolveResource = options.resolveResource;
    this.now = options.now ?? Date.now;
    this.maxBodyBytes = options.maxBodyBytes;
  }

  /** Live publications. */
  get size(): number {
    return this.byEtag.size;
  }

  get(etag: string): Publication | undefined {
    return this.byEtag.get(etag);
  }

  /** Report publications to keep to `listener` (undefined: stop). */
  onPersist(listener: PublicationPersistence | undefined): void {
    this.persist = listener;
  }

  /**
   * Make saved publications live again (after a restart): same entity-tag
   * (a refresh with SIP-If-Match gets 200), expiry on the wheel, state
   * composed into the sink. Expired ones, unknown resources and unreadable
   * states are dropped. Returns how many were restored and dropped.
   */
  restore(snapshots: Iterable<PublicationSnapshot>, exists: (resource: string) => boolean): { restored: number; dropped: number } {
    const now = this.now();
    const touched = new Map<string, PublishEvent>();
    let restored = 0;
    let dropped = 0;
    for (const s of snapshots) {
      const state = isObject(s.state) ? s.state : {};
      const rich = s.event === 'presence' ? richOf(state['rich']) : undefined;
      const telephony = s.event === 'dialog' ? telephonyOf(state['telephony']) : undefined;
      if (
        this.closed ||
        !isPublishEvent(s.event) ||
        s.expiresAt <= now + 1000 ||
        !exists(s.resource) ||
        this.byEtag.has(s.etag) ||
        (rich === undefined && telephony === undefined)
      ) {
        dropped++;
        continue;
      }
      const p = new Publication(s.etag, s.resource, s.event);
      p.rich = rich;
      p.telephony = telephony;
      p.expiresAt = s.expiresAt;
      this.index(p);
      p.timer = this.wheel.schedule(p.expiresAt, this.expireCallback, p);
      touched.set(`${s.event}\n${s.resource}`, s.event);
      restored++;
    }
    for (const [key, event] of touched) this.compose(key.slice(key.indexOf('\n') + 1), event);
    return { restored, dropped };
  }

  private snapshotOf(p: Publication): PublicationSnapshot {
    const state: Record<string, unknown> = {};
    if (p.rich !== undefined) state['rich'] = p.rich;
    if (p.telephony !== undefined) state['telephony'] = p.telephony;
    return { etag: p.etag, resource: p.resource, event: p.event, expiresAt: p.expiresAt, state };
  }

  /** Stop expiring publications (their state stays in the store). */
  close(): void {
    this.closed = true;
    for (const p of this.byEtag.values()) if (p.timer !== undefined) this.wheel.cancel(p.timer);
  }

  /** Report PUBLISH outcomes to `observer` (undefined: stop). */
  observe(observer: PublishObserver | undefined): void {
    this.observer = observer;
  }

  /** RFC 3903 §6 processing, steps in order. */
  handlePublish(req: InboundRequest): void {
    if (this.observer !== undefined) req = observed(req, this.observer);
    const { request } = req;
    const h = request.headers;
    const eventValue = h.get('event');
    const event = eventValue === undefined ? null : parseEvent(eventValue);
    if (event === null || !isPublishEvent(event.event)) {
      req.respond(reply(request, 489, [['allow-events', 'presence, dialog']]));
      return;
    }
    const kind = event.event;
    const target = parseUri(request.uri);
    if (target === null || !RESOURCE_SCHEMES.has(target.scheme)) {
      req.respond(reply(request, 416));
      return;
    }
    const resource = this.resolveResource(target.user, target.host);
    if (resource === undefined) {
      req.respond(reply(request, 404));
      return;
    }
    const hasBody = request.body.length > 0;
    const accepted = PUBLISH_CONTENT_TYPES[kind];
    if (hasBody) {
      const ctValue = h.get('content-type');
      const ct = ctValue === undefined ? null : parseMediaType(ctValue);
      if (ct === null || !accepted.includes(`${ct.type}/${ct.subtype}`)) {
        req.respond(reply(request, 415, [['accept', accepted.join(', ')]]));
        return;
      }
    }
    const expiry = decideExpiry(h.get('expires'), this.bounds, (v) => parseExpires(v));
    if (!expiry.ok) {
      req.respond(expiryRejection(request, expiry.status, this.bounds));
      return;
    }
    const seconds = expiry.seconds;
    const ifMatch = h.get('sip-if-match')?.trim();

    let pub: Publication | undefined;
    if (ifMatch !== undefined) {
      pub = this.byEtag.get(ifMatch);
      if (pub === undefined || pub.event !== kind || pub.resource !== resource) {
        req.respond(reply(request, 412));
        return;
      }
      if (seconds === 0) {
        // RFC 3903 §4.5: removal.
        this.remove(pub);
        this.logger.info({ user: resource, event: kind, etag: ifMatch }, 'publication removed');
        req.respond(reply(request, 200, [['expires', '0']]));
        return;
      }
    } else {
      if (seconds === 0) {
        // Nothing published, nothing to remove.
        req.respond(reply(request, 200, [['expires', '0']]));
        return;
      }
      if (!hasBody) {
        // RFC 3903 §6 step 5: an initial publication carries the state.
        req.respond(reply(request, 400, undefined, { reason: 'Bad Request - PUBLISH without body' }));
        return;
      }
    }

    const now = this.now();
    const origin = `publish:${req.source.address}`;
    let rich: RichState | undefined;
    let telephony: TelephonyState | undefined;
    if (hasBody) {
      try {
        const opts = this.maxBodyBytes === undefined ? undefined : { maxBytes: this.maxBodyBytes };
        if (kind === 'presence') rich = richStateFromPidf(parsePidf(request.body, opts), origin, now);
        else telephony = telephonyFromDialogInfo(parseDialogInfo(request.body, opts), pub?.telephony?.calls, origin, now);
      } catch (error) {
        if (error instanceof BodyError) {
          const status = error.status;
          const base = status === 413 ? 'Request Entity Too Large' : status === 415 ? 'Unsupported Media Type' : 'Bad Request';
          const extra: Array<[string, string]> = status === 415 ? [['accept', accepted.join(', ')]] : [];
          req.respond(reply(request, status, extra, { reason: safeReason(base, error.message) }));
        } else {
          this.logger.error({ err: error, user: resource }, 'PUBLISH body handling failed');
          req.respond(reply(request, 500));
        }
        return;
      }
    }

    const created = pub === undefined;
    const p = pub ?? new Publication(this.newEtag(), resource, kind);
    if (created) {
      this.index(p);
    } else {
      // RFC 3903 §6 step 7/8: every successful refresh or modify gets a new entity-tag.
      this.byEtag.delete(p.etag);
      this.persist?.remove(p.etag);
      p.etag = this.newEtag();
      this.byEtag.set(p.etag, p);
    }
    p.expiresAt = now + seconds * 1000;
    if (p.timer === undefined) p.timer = this.wheel.schedule(p.expiresAt, this.expireCallback, p);
    else this.wheel.reschedule(p.timer, p.expiresAt);
    pub = p;

    req.respond(reply(request, 200, [['sip-etag', pub.etag], ['expires', String(seconds)]]));
    if (rich !== undefined || telephony !== undefined) {
      pub.rich = rich;
      pub.telephony = telephony;
      this.compose(resource, kind);
    }
    this.persist?.save(this.snapshotOf(pub));
    this.logger.info(
      { user: resource, event: kind, etag: pub.etag, expires: seconds },
      created ? 'publication created' : hasBody ? 'publication modified' : 'publication refreshed',
    );
  }

  private newEtag(): string {
    let etag = randomHex(8);
    while (this.byEtag.has(etag)) etag = randomHex(8);
    return etag;
  }

  private index(pub: Publication): void {
    this.byEtag.set(pub.etag, pub);
    const map = this.byResource[pub.event];
    let set = map.get(pub.resource);
    if (set === undefined) {
      set = new Set();
      map.set(pub.resource, set);
    }
    set.add(pub);
  }

  private remove(pub: Publication): void {
    if (this.byEtag.get(pub.etag) !== pub) return;
    this.byEtag.delete(pub.etag);
    this.persist?.remove(pub.etag);
    if (pub.timer !== undefined) {
      this.wheel.cancel(pub.timer);
      pub.timer = undefined;
    }
    const map = this.byResource[pub.event];
    const set = map.get(pub.resource);
    if (set !== undefined) {
      set.delete(pub);
      if (set.size === 0) map.delete(pub.resource);
    }
    this.compose(pub.resource, pub.event);
  }

  private readonly expireCallback = (p: Publication): void => this.expire(p);

  private expire(pub: Publication): void {
    if (this.closed) return;
    this.logger.info({ user: pub.resource, event: pub.event, etag: pub.etag }, 'publication expired');
    this.remove(pub);
  }

  /** Several publications of one person compose into one source (RFC 3903 §2 compositor). */
  private compose(resource: string, event: PublishEvent): void {
    const set = this.byResource[event].get(resource);
    if (event === 'presence') {
      const parts: RichState[] = [];
      if (set !== undefined) for (const p of set) if (p.rich !== undefined) parts.push(p.rich);
      this.sink.setSip(resource, composeRich(parts));
    } else {
      const parts: TelephonyState[] = [];
      if (set !== undefined) for (const p of set) if (p.telephony !== undefined) parts.push(p.telephony);
      this.sink.setTelephony(resource, composeTelephony(parts));
    }
  }
}
