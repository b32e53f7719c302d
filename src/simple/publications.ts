/**
 * The event state compositor for PUBLISH (RFC 3903): publications with their
 * entity-tag and expiry, for every registered package that takes PUBLISH
 * (package-registry.ts); the package parses the body, composes a person's
 * publications into the PresenceHub and says what of them is saved.
 */
import { BodyError } from '../bodies/index.js';
import { parseEvent, parseExpires, parseMediaType } from '../sip/header-values.js';
import { randomHex } from '../sip/ids.js';
import { parseUri } from '../sip/uri.js';
import { systemClock, type Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { TimerHandle, TimerWheel } from '../util/timer-wheel.js';
import type { PublishContext, PublishRules, PublishSink } from './event-package.js';
import { RESOURCE_SCHEMES, type ResourceResolver } from './notifier.js';
import type { PackageRegistry } from './package-registry.js';
import { decideExpiry, expiryRejection, reply, safeReason, type ExpiryBounds } from './sip-util.js';
import type { SipResponse } from '../sip/message.js';
import type { InboundRequest } from './stack-port.js';

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

export interface PublicationsOptions {
  /** Where composed state goes (the PresenceHub). */
  sink: PublishSink;
  /** The packages; those with `publish` take PUBLISH. */
  packages: PackageRegistry;
  wheel: TimerWheel;
  logger: Logger;
  expires: ExpiryBounds;
  resolveResource: ResourceResolver;
  clock?: Pick<Clock, 'now'>;
  /** Largest body accepted (default: the body codecs' limit). */
  maxBodyBytes?: number;
  /** Told every PUBLISH outcome (metrics); built before the compositor. */
  observer?: PublishObserver;
  /**
   * The hub source the composed state goes under (src/core/publish-source.ts):
   * default the sink's own ('publish'); `publish@<nodeId>` on a node of a cluster.
   */
  source?: string;
  /** Whether a resource (person id) is known here; adopt() takes no publication of anyone else. Default: every resource. */
  resourceExists?: (resource: string) => boolean;
  /**
   * A publication this node does not hold, by entity-tag, from wherever it
   * is held (another node of a cluster; the wiring claims it there). Asked
   * only for a PUBLISH whose SIP-If-Match names an entity-tag not held
   * here; found: adopted, then the PUBLISH is handled; not found: 412.
   * Without it, such a PUBLISH gets 412 at once (one node).
   */
  resolveUnknown?: (etag: string) => Promise<PublicationSnapshot | undefined>;
}

/** A publication as plain data, for persistence (src/store's PublicationRecord has the same shape). */
export interface PublicationSnapshot {
  etag: string;
  resource: string;
  event: string;
  /** ms epoch */
  expiresAt: number;
  /** What the package saves of the state (JSON-able): { rich } for presence, { telephony } for dialog. */
  state: unknown;
}

/** Where publications to keep are reported (persistence); called synchronously, must be cheap. */
export interface PublicationPersistence {
  save(snapshot: PublicationSnapshot): void;
  /** The publication under this entity-tag is gone (removed, expired, or re-tagged by a refresh). */
  remove(etag: string): void;
}

/** One published event state (RFC 3903 §2). */
export class Publication {
  expiresAt = 0;
  timer: TimerHandle | undefined = undefined;
  /** The package's state of this publication (undefined until a body was read). */
  state: unknown = undefined;

  constructor(
    public etag: string,
    readonly resource: string,
    readonly event: string,
    readonly rules: PublishRules<unknown>,
  ) {}
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class Publications {
  private readonly byEtag = new Map<string, Publication>();
  /** by event, then resource */
  private readonly byResource = new Map<string, Map<string, Set<Publication>>>();
  private readonly sink: PublishSink;
  private readonly packages: PackageRegistry;
  private readonly wheel: TimerWheel;
  private readonly logger: Logger;
  private readonly bounds: ExpiryBounds;
  private readonly resolveResource: ResourceResolver;
  private readonly clock: Pick<Clock, 'now'>;
  private readonly maxBodyBytes: number | undefined;
  private readonly observer: PublishObserver | undefined;
  private persist: PublicationPersistence | undefined = undefined;
  private closed = false;
  private readonly resourceExists: (resource: string) => boolean;
  private readonly resolveUnknown: ((etag: string) => Promise<PublicationSnapshot | undefined>) | undefined;
  /** Lookups of unknown entity-tags under way: one per tag, whoever asks (true: adopted here). */
  private readonly resolving = new Map<string, Promise<boolean>>();

  constructor(options: PublicationsOptions) {
    const sink = options.sink;
    const source = options.source;
    this.sink =
      source === undefined
        ? sink
        : { setSip: (id, rich) => sink.setSip(id, rich, source), setTelephony: (id, telephony) => sink.setTelephony(id, telephony, source) };
    this.resourceExists = options.resourceExists ?? (() => true);
    this.resolveUnknown = options.resolveUnknown;
    this.packages = options.packages;
    this.wheel = options.wheel;
    this.logger = options.logger;
    this.bounds = options.expires;
    this.resolveResource = options.resolveResource;
    this.clock = options.clock ?? systemClock;
    this.maxBodyBytes = options.maxBodyBytes;
    this.observer = options.observer;
  }

  /** Live publications. */
  get size(): number {
    return this.byEtag.size;
  }

  /** The entity-tags held. */
  etags(): IterableIterator<string> {
    return this.byEtag.keys();
  }

  get(etag: string): Publication | undefined {
    return this.byEtag.get(etag);
  }

  /** Report publications to keep to `listener` (undefined: stop). */
  // A setter on purpose: the persistence side attaches it at restore only when the store persists.
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
    const now = this.clock.now();
    const touched = new Map<string, Publication>();
    let restored = 0;
    let dropped = 0;
    for (const s of snapshots) {
      const rules = this.packages.get(s.event)?.publish;
      const state = rules !== undefined && isObject(s.state) ? rules.load(s.state) : undefined;
      if (
        this.closed ||
        rules === undefined ||
        s.expiresAt <= now + 1000 ||
        !exists(s.resource) ||
        this.byEtag.has(s.etag) ||
        state === undefined
      ) {
        dropped++;
        continue;
      }
      const p = new Publication(s.etag, s.resource, s.event, rules);
      p.state = state;
      p.expiresAt = s.expiresAt;
      this.index(p);
      p.timer = this.wheel.schedule(p.expiresAt, this.expireCallback, p);
      touched.set(`${s.event}\n${s.resource}`, p);
      restored++;
    }
    for (const p of touched.values()) this.compose(p);
    return { restored, dropped };
  }

  /**
   * Make one stored publication live here (it was another node's: a refresh
   * for it reached this node, or its node died): same entity-tag, expiry on
   * the wheel, state composed into this node's source, and saved through
   * the persistence hook (this node keeps it now). False, and nothing done,
   * when it is expired, its package or resource is unknown here, its state
   * is unreadable, or its entity-tag is held here already.
   */
  adopt(record: PublicationSnapshot): boolean {
    const rules = this.packages.get(record.event)?.publish;
    const state = rules !== undefined && isObject(record.state) ? rules.load(record.state) : undefined;
    if (
      this.closed ||
      rules === undefined ||
      state === undefined ||
      record.expiresAt <= this.clock.now() ||
      this.byEtag.has(record.etag) ||
      !this.resourceExists(record.resource)
    ) {
      return false;
    }
    const p = new Publication(record.etag, record.resource, record.event, rules);
    p.state = state;
    p.expiresAt = record.expiresAt;
    this.index(p);
    p.timer = this.wheel.schedule(p.expiresAt, this.expireCallback, p);
    this.compose(p);
    this.persist?.save(this.snapshotOf(p));
    this.logger.info({ user: p.resource, event: p.event, etag: p.etag }, 'publication adopted');
    return true;
  }

  /**
   * Drop a publication that moved to another node: no answer to anybody,
   * the expiry off, this node's composed state without it. The store is not
   * told to forget it (no persistence remove): its record is the new
   * owner's now, under the same entity-tag. False when it is not held here.
   */
  release(etag: string): boolean {
    const p = this.byEtag.get(etag);
    if (p === undefined) return false;
    this.drop(p, false);
    this.logger.info({ user: p.resource, event: p.event, etag }, 'publication released');
    return true;
  }

  private snapshotOf(p: Publication): PublicationSnapshot {
    const state = p.state === undefined ? {} : p.rules.save(p.state);
    return { etag: p.etag, resource: p.resource, event: p.event, expiresAt: p.expiresAt, state };
  }

  /** Stop expiring publications (their state stays in the store). */
  close(): void {
    this.closed = true;
    for (const p of this.byEtag.values()) if (p.timer !== undefined) this.wheel.cancel(p.timer);
  }

  /** RFC 3903 §6 processing, steps in order. */
  handlePublish(req: InboundRequest): void {
    if (this.observer !== undefined) req = observed(req, this.observer);
    this.process(req, false);
  }

  /** `looked`: the SIP-If-Match entity-tag was looked up elsewhere already (answer 412 if still unknown). */
  private process(req: InboundRequest, looked: boolean): void {
    const { request } = req;
    const h = request.headers;
    const eventValue = h.get('event');
    const event = eventValue === undefined ? null : parseEvent(eventValue);
    const rules = event === null ? undefined : this.packages.get(event.event)?.publish;
    if (event === null || rules === undefined) {
      // RFC 3903 §6 step 2: an event package that takes no PUBLISH.
      req.respond(reply(request, 489, [['allow-events', this.packages.publishEvents.join(', ')]]));
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
    const accepted = rules.contentTypes;
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
      if (pub === undefined && !looked && this.resolveUnknown !== undefined) {
        // the one asynchronous path: an entity-tag this node does not hold (a cluster's other node may)
        void this.lookUp(ifMatch, this.resolveUnknown).then(() => this.resume(req));
        return;
      }
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

    const now = this.clock.now();
    let state: unknown;
    if (hasBody) {
      try {
        const ctx: PublishContext = { origin: `publish:${req.source.address}`, at: now, ...(this.maxBodyBytes === undefined ? {} : { maxBytes: this.maxBodyBytes }) };
        state = rules.parse(request.body, ctx, pub?.state);
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
    const p = pub ?? new Publication(this.newEtag(), resource, kind, rules);
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
    if (state !== undefined) {
      pub.state = state;
      this.compose(pub);
    }
    this.persist?.save(this.snapshotOf(pub));
    this.logger.info(
      { user: resource, event: kind, etag: pub.etag, expires: seconds },
      created ? 'publication created' : hasBody ? 'publication modified' : 'publication refreshed',
    );
  }

  /** Handle a PUBLISH after its entity-tag's lookup (no answer once closed, like the server). */
  private resume(req: InboundRequest): void {
    if (this.closed) return;
    try {
      this.process(req, true);
    } catch (error) {
      this.logger.error({ err: error, callId: req.request.headers.get('call-id') }, 'PUBLISH handling failed');
      try {
        req.respond(reply(req.request, 500));
      } catch {
        // already answered
      }
    }
  }

  /**
   * The publication under `etag`, from wherever it is held, adopted here
   * when found; concurrent requests for one tag share the one lookup (the
   * first of them to be handled then re-tags it, RFC 3903 §6 step 7, and the
   * others find it spent: 412, as on one node). A failed lookup is "not found".
   */
  private lookUp(etag: string, resolve: (etag: string) => Promise<PublicationSnapshot | undefined>): Promise<boolean> {
    let pending = this.resolving.get(etag);
    if (pending === undefined) {
      pending = resolve(etag)
        .then(
          (record) => record !== undefined && record.etag === etag && this.adopt(record),
          (error: unknown) => {
            this.logger.warn({ err: error, etag }, 'publication look-up failed');
            return false;
          },
        )
        .finally(() => this.resolving.delete(etag));
      this.resolving.set(etag, pending);
    }
    return pending;
  }

  private newEtag(): string {
    let etag = randomHex(8);
    while (this.byEtag.has(etag)) etag = randomHex(8);
    return etag;
  }

  private index(pub: Publication): void {
    this.byEtag.set(pub.etag, pub);
    let map = this.byResource.get(pub.event);
    if (map === undefined) this.byResource.set(pub.event, (map = new Map()));
    let set = map.get(pub.resource);
    if (set === undefined) {
      set = new Set();
      map.set(pub.resource, set);
    }
    set.add(pub);
  }

  private remove(pub: Publication): void {
    this.drop(pub, true);
  }

  /** Out of the indexes, expiry off, recomposed; `forget`: the store forgets it too. */
  private drop(pub: Publication, forget: boolean): void {
    if (this.byEtag.get(pub.etag) !== pub) return;
    this.byEtag.delete(pub.etag);
    if (forget) this.persist?.remove(pub.etag);
    if (pub.timer !== undefined) {
      this.wheel.cancel(pub.timer);
      pub.timer = undefined;
    }
    const map = this.byResource.get(pub.event);
    const set = map?.get(pub.resource);
    if (set !== undefined) {
      set.delete(pub);
      if (set.size === 0) map!.delete(pub.resource);
    }
    this.compose(pub);
  }

  private readonly expireCallback = (p: Publication): void => this.expire(p);

  private expire(pub: Publication): void {
    if (this.closed) return;
    this.logger.info({ user: pub.resource, event: pub.event, etag: pub.etag }, 'publication expired');
    this.remove(pub);
  }

  /** Several publications of one person compose into one source (RFC 3903 §2 compositor): `pub`'s event and resource. */
  private compose(pub: Publication): void {
    const states: unknown[] = [];
    const set = this.byResource.get(pub.event)?.get(pub.resource);
    if (set !== undefined) for (const p of set) if (p.state !== undefined) states.push(p.state);
    pub.rules.compose(this.sink, pub.resource, states);
  }
}
