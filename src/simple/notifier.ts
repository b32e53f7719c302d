/**
 * The RFC 6665 notifier: accepts, refreshes and ends subscriptions, and sends
 * NOTIFYs with full state. Event packages (event-package.ts) make the bodies;
 * this module knows nothing of presence.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { performance } from 'node:perf_hooks';
import { Headers } from '../sip/headers.js';
import {
  parseAccept,
  parseCSeq,
  parseEvent,
  parseExpires,
  tagOf,
  type EventHeader,
  type MediaType,
} from '../sip/header-values.js';
import {
  acceptRemoteCSeq,
  contactValue,
  ENDS_DIALOG_USAGE,
  firstHopUri,
  nextHopOf,
  nextLocalCSeq,
  ourContact,
  refreshTarget,
  remoteCSeqInOrder,
  RESTORE_CSEQ_MARGIN,
  restoredLocalCSeq,
  routeRequest,
  uasDialog,
} from '../sip/dialog.js';
import { newTag } from '../sip/ids.js';
import {
  createRequest,
  EMPTY_BODY,
  localFailure,
  type Endpoint,
  type SipRequest,
  type SipResponse,
  type TransportProtocol,
} from '../sip/message.js';
import { aorOf, parseNameAddr, parseUri, type SipUri } from '../sip/uri.js';
import { systemClock, type Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { TimerWheel } from '../util/timer-wheel.js';
import type { EventPackage } from './event-package.js';
import { PackageRegistry } from './package-registry.js';
import { decideExpiry, expiryRejection, reply, type ExpiryBounds } from './sip-util.js';
import type { InboundRequest, OutboundOptions, RequestSender } from './stack-port.js';
import {
  detach,
  Subscription,
  type ListState,
  type SubscriptionPersistence,
  type SubscriptionSnapshot,
  type TerminationCause,
} from './subscription.js';
import type { BodyFormat } from './event-package.js';
import { watcherInfoOf } from './watcher-profile.js';
import { sharedStrings } from './intern.js';

/** Maps a Request-URI's user and host to a resource id (a person), undefined if unknown. */
export type ResourceResolver = (user: string | undefined, host: string) => string | undefined;
/** A subscription became live ('added', after its 200) or ended ('removed'). */
export type SubscriptionListener = (sub: Subscription, change: 'added' | 'removed') => void;
/** Resolves a host name to an address (dns.lookup by default). */
export type HostLookup = (host: string) => Promise<string>;

/** What the notifier asks of the list server (implemented by ResourceLists). */
export interface ListHooks {
  /** The list resource id a Request-URI names for `event`, undefined when it names no list. */
  match(user: string | undefined, host: string, event: string): string | undefined;
  /** The refusal for a SUBSCRIBE to a list (421, 406), undefined when it may have it. */
  refuse(request: SipRequest, accept: readonly MediaType[] | undefined, pkg: EventPackage): SipResponse | undefined;
  /** Per-subscription list state for a new subscription to `resource`. */
  open(resource: string, sub: Subscription): ListState;
  /**
   * RFC 5367: the list a SUBSCRIBE carries, made a list resource (ok), or its
   * refusal; undefined when the SUBSCRIBE carries none.
   */
  clientList?(request: SipRequest, event: string): { ok: true; resource: string } | { ok: false; response: SipResponse } | undefined;
  /** The notifier has no subscription left to `resource`. */
  released?(resource: string): void;
  /** The list resources `member` (a person) is in. */
  listsContaining?(member: string): readonly string[];
  /** The people in list `resource` (entries naming nobody known left out). */
  membersOf?(resource: string): readonly string[];
  /** Option tags SUBSCRIBE may Require because of the list server. */
  readonly optionTags?: readonly string[];
}

/** Watches NOTIFY outcomes (metrics); structural, so the notifier imports nothing of it. */
export interface NotifyObserver {
  /** A NOTIFY of `event` to a watcher of `resource` was answered 2xx. */
  notifySent(event: string, resource: string): void;
  /** It failed: the final status (>= 300), or 'transport' when it could not be sent. */
  notifyFailed(event: string, status: number | string, resource: string): void;
}

export interface NotifierOptions {
  sender: RequestSender;
  wheel: TimerWheel;
  logger: Logger;
  expires: ExpiryBounds;
  resolveResource: ResourceResolver;
  clock?: Pick<Clock, 'now'>;
  lookup?: HostLookup;
  /** Host to put in our Contact instead of the bound address. */
  contactHost?: string;
  /** The event packages served (register() adds to it); default an empty registry of its own. */
  packages?: PackageRegistry;
  /** Told every NOTIFY outcome (metrics); built before the notifier. */
  observer?: NotifyObserver;
  /**
   * A subscription this node does not hold, by our To tag (`id`) and the
   * SUBSCRIBE's Call-ID, from wherever it is held (another node of a
   * cluster; the wiring claims it there). Asked only for an in-dialog
   * SUBSCRIBE whose To tag is not live here. What it returns is this
   * node's from then on: it is restored (as restore() does) whatever the
   * Call-ID, so nothing claimed is left unserved, and the SUBSCRIBE is
   * then handled as a refresh or unSUBSCRIBE of it (481 when its dialog
   * does not match, and the restore NOTIFY goes out). Not found, 481.
   * Concurrent SUBSCRIBEs for one tag share one call. Without it, 481 at once.
   */
  resolveUnknown?: (id: string, callId: string) => Promise<SubscriptionSnapshot | undefined>;
  /** What a subscription found by resolveUnknown is to (as restore()'s `kindOf`); default: a resource. */
  kindOf?: (resource: string) => RestoredResourceKind;
}

/** Request-URI schemes naming a resource here (RFC 3856 §3 allows pres:). */
export const RESOURCE_SCHEMES: ReadonlySet<string> = new Set(['sip', 'sips', 'pres']);

const NO_ROUTES: readonly string[] = Object.freeze([]);

/** A name under the reserved ".invalid" TLD. */
/**
 * RFC 3261 §12.1.1: the 2xx that makes the dialog carries the request's Record-Route values, in order, so
 * the watcher's route set (its refreshes, its answers to our NOTIFYs) keeps the proxies in front of us.
 */
function recordRoutes(request: SipRequest): Array<[string, string]> {
  const values = request.headers.getAll('record-route');
  return values.length === 0 ? [] : values.map((v): [string, string] => ['record-route', v]);
}

function isInvalidHost(host: string): boolean {
  const h = host.endsWith('.') ? host.slice(0, -1) : host;
  return h.length >= 7 && h.slice(-7).toLowerCase() === 'invalid' && (h.length === 7 || h.charCodeAt(h.length - 8) === 0x2e);
}

/** NOTIFYs sent per event-loop turn during a fan-out, at most. */
const FANOUT_SLICE = 500;

/**
 * NOTIFYs in flight above which the catch-up NOTIFYs of restored
 * subscriptions wait (after a restart, or a dead node's taken over): they
 * tell each watcher the current state, which is rarely news, so they go as
 * answers come back instead of all at once. 100,000 restored watchers that
 * are gone would otherwise be 100,000 client transactions retransmitting
 * for 32 s (Timer F) at the same time.
 */
export const RESTORE_NOTIFY_WINDOW = 2_000;

/**
 * Milliseconds of sending per event-loop turn during a fan-out. libuv reads at
 * most 32 datagrams a socket per turn, so the watchers' 200s are read only as
 * often as the loop turns: a short slice reads them while later NOTIFYs are
 * still being sent, within T1, instead of after the whole fan-out (a 200 read
 * later than T1 has its NOTIFY retransmitted, RFC 3261 §17.1.2.2).
 */
const FANOUT_SLICE_MS = 2;

/** Subscriptions saved per slice of the periodic sweep (sweepMoved), and the pause between slices. */
const SWEEP_SLICE = 250;
const SWEEP_PAUSE_MS = 10;

/**
 * How far a restored subscription's NOTIFY CSeq (src/sip/dialog.ts) and body
 * version jump ahead of the last saved ones: they are saved at create/refresh
 * and by a periodic sweep, not per NOTIFY, so a few may have gone out unsaved
 * before a crash. RFC 4235 §4.1 only needs the version to increase.
 */
export const RESTORE_SEQUENCE_MARGIN = RESTORE_CSEQ_MARGIN;

/** What a saved subscription's resource is now: a person, a resource list, or gone. */
export type RestoredResourceKind = 'resource' | 'list' | undefined;

export interface RestoreResult {
  restored: number;
  /** Expired, unknown package or resource, unreachable transport (ws/wss), or a list its package does not restore (dialog). */
  dropped: number;
}

const MAX_SHARED_ENDPOINTS = 100_000;

/** What an in-dialog SUBSCRIBE says of its dialog (RFC 6665 §4.1.2.1). */
interface RefreshRequest {
  callId: string;
  fromTag: string;
  toTag: string;
  seq: number;
  expiry: ReturnType<typeof decideExpiry>;
}

/** One stack hold on a stream connection, shared by every live subscription on it. */
interface ConnectionHold {
  subscriptions: number;
  release: () => void;
}

export class Notifier {
  /** The packages served, by event: what SUBSCRIBE, PUBLISH and upstream NOTIFY bodies dispatch by. */
  readonly packages: PackageRegistry;
  /** live subscriptions by our (To) tag; Call-ID and remote tag are checked on match */
  private readonly byTag = new Map<string, Subscription>();
  private readonly byResource = new Map<string, Set<Subscription>>();
  private readonly countByEvent = new Map<string, number>();
  /** Subscriptions with a state change not yet sent (resourceChanged). */
  private readonly fanout = new Set<Subscription>();
  /**
   * Restored subscriptions owed their catch-up NOTIFY (RESTORE_NOTIFY_WINDOW), with the body the
   * current state rendered to when they were restored (presence only, else undefined): a change that still
   * renders that body is no news beyond the catch-up, and waits in the window with it.
   */
  private readonly catchUp = new Map<Subscription, Buffer | undefined>();
  private catchUpScheduled = false;
  private fanoutScheduled = false;
  private readonly sender: RequestSender;
  private readonly wheel: TimerWheel;
  private readonly logger: Logger;
  private readonly bounds: ExpiryBounds;
  private readonly resolveResource: ResourceResolver;
  private readonly clock: Pick<Clock, 'now'>;
  private readonly lookup: HostLookup;
  private readonly contactHost: string | undefined;
  private readonly contactCache = new Map<string, string>();
  /** shared next-hop Endpoints (see endpoint()) */
  private readonly endpoints = new Map<string, Endpoint>();
  /** Resource lists served here (RFC 4662), see resource-lists.ts. */
  private lists: ListHooks | undefined = undefined;
  private persist: SubscriptionPersistence | undefined = undefined;
  /** Subscriptions whose CSeq/version moved since they were last saved (persistence sweep). */
  private readonly moved = new Set<Subscription>();
  /** the next slice of a sweep (sweepMoved) */
  private sweeping: NodeJS.Timeout | undefined;
  private notifiesOut = 0;
  private readonly observer: NotifyObserver | undefined;
  private readonly lifecycle = new Set<SubscriptionListener>();
  /** Connections held open for the live subscriptions that arrived on them, by connection id. */
  private readonly holds = new Map<string, ConnectionHold>();
  private closed = false;
  private readonly resolveUnknown: ((id: string, callId: string) => Promise<SubscriptionSnapshot | undefined>) | undefined;
  private readonly kindOf: (resource: string) => RestoredResourceKind;
  /** Lookups of unknown To tags under way: one per tag, whoever asks. */
  private readonly resolving = new Map<string, Promise<void>>();

  constructor(options: NotifierOptions) {
    this.sender = options.sender;
    this.wheel = options.wheel;
    this.logger = options.logger;
    this.bounds = options.expires;
    this.resolveResource = options.resolveResource;
    this.clock = options.clock ?? systemClock;
    this.lookup = options.lookup ?? (async (host) => (await dnsLookup(host)).address);
    this.contactHost = options.contactHost;
    this.packages = options.packages ?? new PackageRegistry();
    this.observer = options.observer;
    this.resolveUnknown = options.resolveUnknown;
    this.kindOf = options.kindOf ?? (() => 'resource');
    for (const event of this.packages.events) this.countByEvent.set(event, 0);
  }

  /** Serve resource lists through `hooks` (undefined: stop serving them). */
  attachLists(hooks: ListHooks | undefined): void {
    this.lists = hooks;
  }

  /** Whether resource lists are served (RFC 4662 eventlist is supported). */
  get servesLists(): boolean {
    return this.lists !== undefined;
  }

  /** Option tags the list server adds for SUBSCRIBE (e.g. RFC 5367 recipient-list-subscribe). */
  get listOptionTags(): readonly string[] {
    return this.lists?.optionTags ?? NO_ROUTES;
  }

  /** Hear of every subscription made live or ended (watcherinfo); returns the unsubscribe function. */
  onSubscriptionChange(listener: SubscriptionListener): () => void {
    this.lifecycle.add(listener);
    return () => this.lifecycle.delete(listener);
  }

  register(pkg: EventPackage): void {
    this.packages.register(pkg);
    this.countByEvent.set(pkg.event.toLowerCase(), 0);
  }

  /** Registered event package names (for Allow-Events). */
  get events(): string[] {
    return this.packages.events;
  }

  /** Content types all packages produce (for Accept in OPTIONS answers). */
  get contentTypes(): string[] {
    return this.packages.contentTypes;
  }

  /** Live subscriptions, by event package. */
  counts(): Record<string, number> {
    return Object.fromEntries(this.countByEvent);
  }

  get size(): number {
    return this.byTag.size;
  }

  /** Our tags of the live subscriptions. */
  ids(): IterableIterator<string> {
    return this.byTag.keys();
  }

  /** The live subscription in the dialog our tag names (tests, diagnostics). */
  find(localTag: string): Subscription | undefined {
    return this.byTag.get(localTag);
  }

  /** The list resources a person is in (watcher information counts list watchers). */
  listsContaining(member: string): readonly string[] {
    return this.lists?.listsContaining?.(member) ?? NO_ROUTES;
  }

  /** The people in a list resource; none for anything else. */
  listMembers(resource: string): readonly string[] {
    return this.lists?.membersOf?.(resource) ?? NO_ROUTES;
  }

  /** Live subscriptions to a resource. */
  watchers(resource: string): readonly Subscription[] {
    const set = this.byResource.get(resource);
    return set === undefined ? [] : [...set];
  }

  /** Report subscriptions to keep to `listener` (undefined: stop). */
  // A setter on purpose: the persistence side attaches it at restore only when the store persists, and detaches it when the store closes.
  onPersist(listener: SubscriptionPersistence | undefined): void {
    this.persist = listener;
    this.moved.clear();
  }

  /** Save the subscriptions whose CSeq or version moved since their last save, all now (at close); returns how many. */
  persistMoved(): number {
    return this.saveMoved(Number.POSITIVE_INFINITY);
  }

  /**
   * The periodic sweep: the moved subscriptions saved SWEEP_SLICE at a time,
   * SWEEP_PAUSE_MS apart. After a fan-out to 20,000 watchers all of them moved;
   * saved in one turn they would hold the event loop (and, past the store's
   * queue bound, wait synchronously on its writer) for hundreds of ms, while
   * NOTIFY answers and PUBLISHes wait unread.
   */
  sweepMoved(): void {
    if (this.sweeping !== undefined) return;
    const step = (): void => {
      this.sweeping = undefined;
      if (this.closed) return;
      this.saveMoved(SWEEP_SLICE);
      if (this.moved.size === 0) return;
      this.sweeping = setTimeout(step, SWEEP_PAUSE_MS);
      this.sweeping.unref();
    };
    step();
  }

  private saveMoved(limit: number): number {
    const persist = this.persist;
    if (persist === undefined || this.moved.size === 0) return 0;
    let n = 0;
    let taken = 0;
    for (const sub of this.moved) {
      this.moved.delete(sub);
      if (sub.state === 'active') {
        persist.save(sub);
        n++;
      }
      if (++taken >= limit) break;
    }
    return n;
  }

  /** NOTIFYs sent and not answered yet. */
  get notifiesInFlight(): number {
    return this.notifiesOut;
  }

  /**
   * Make saved subscriptions live again (after a restart): same dialog,
   * expiry on the wheel, CSeq and version moved ahead by
   * RESTORE_SEQUENCE_MARGIN, and a NOTIFY with the current full state each
   * (sent in fan-out slices). Expired ones, unknown packages or resources,
   * ws/wss ones (their connection is gone; the browser subscribes again) and
   * list subscriptions of a package whose lists are not restored (dialog:
   * its member versions are not kept; the watcher gets 481 at its refresh
   * and subscribes again) are dropped.
   */
  restore(snapshots: Iterable<SubscriptionSnapshot>, kindOf: (resource: string) => RestoredResourceKind): RestoreResult {
    const formats = new Map<string, BodyFormat>();
    let restored = 0;
    let dropped = 0;
    for (const s of snapshots) {
      const sub = this.revive(s, kindOf, formats);
      if (sub === undefined) {
        dropped++;
        continue;
      }
      // only presence bodies are a pure render of the person's state; others carry the watcher's own (winfo full/partial, dialog version)
      this.catchUp.set(sub, sub.list === undefined && sub.pkg.event === 'presence' ? this.render(sub).body : undefined);
      restored++;
    }
    this.scheduleCatchUp();
    return { restored, dropped };
  }

  /** Restored subscriptions still waiting for their catch-up NOTIFY. */
  get catchUpWaiting(): number {
    return this.catchUp.size;
  }

  private scheduleCatchUp(): void {
    if (this.catchUp.size > 0 && !this.catchUpScheduled && this.notifiesOut < RESTORE_NOTIFY_WINDOW) {
      this.catchUpScheduled = true;
      setImmediate(this.drainCatchUp);
    }
  }

  /** Catch-up NOTIFYs while fewer than RESTORE_NOTIFY_WINDOW are in flight, a slice a turn; answers call it again. */
  private readonly drainCatchUp = (): void => {
    this.catchUpScheduled = false;
    if (this.closed) return;
    let sent = 0;
    const start = performance.now();
    for (const sub of this.catchUp.keys()) {
      if (this.notifiesOut >= RESTORE_NOTIFY_WINDOW || sent === FANOUT_SLICE || performance.now() - start >= FANOUT_SLICE_MS) break;
      this.catchUp.delete(sub);
      // ended or moved meanwhile (one notified meanwhile left the set in send())
      if (sub.state !== 'active' || this.byTag.get(sub.localTag) !== sub) continue;
      this.notify(sub);
      sent++;
    }
    this.scheduleCatchUp();
  };

  /**
   * Drop a live subscription that moved to another node of the cluster
   * (that node answered its watcher's refresh, or took over): no NOTIFY,
   * expiry off, counts, indexes and connection hold let go, watcher
   * information told it ended. The store is not told to forget it (no
   * persistence remove): its record is the new owner's now, under the same
   * id. False when it is not live here.
   */
  release(id: string): boolean {
    const sub = this.byTag.get(id);
    if (sub === undefined || !sub.terminate('moved')) return false;
    this.fanout.delete(sub);
    this.catchUp.delete(sub);
    this.moved.delete(sub);
    this.unindex(sub);
    if (sub.timer !== undefined) {
      this.wheel.cancel(sub.timer);
      sub.timer = undefined;
    }
    this.logger.info({ user: sub.resource, callId: sub.callId, event: sub.event, id }, 'subscription released');
    return true;
  }

  /** One saved subscription made live (restore()'s rules); undefined when it is dropped. Sends nothing. */
  private revive(s: SubscriptionSnapshot, kindOf: (resource: string) => RestoredResourceKind, formats: Map<string, BodyFormat>): Subscription | undefined {
    const pkg = this.packages.get(s.event);
    const kind = kindOf(s.resource);
    if (
      this.closed ||
      pkg === undefined ||
      kind === undefined ||
      s.expiresAt <= this.clock.now() + 1000 ||
      s.transport === 'ws' ||
      s.transport === 'wss' ||
      !pkg.contentTypes.includes(s.contentType) ||
      this.byTag.has(s.localTag) ||
      (kind === 'list' && (this.lists === undefined || pkg.lists?.restore !== true))
    ) {
      return undefined;
    }
    const formatKey = `${s.contentType}\n${s.variant}`;
    let format = formats.get(formatKey);
    if (format === undefined) {
      format = Object.freeze({ contentType: s.contentType, variant: s.variant });
      formats.set(formatKey, format);
    }
    const sub = new Subscription({
      pkg,
      eventId: s.eventId,
      resource: s.resource,
      entity: s.entity,
      format,
      dialog: {
        callId: s.callId,
        localTag: s.localTag,
        remoteTag: s.remoteTag,
        remoteTarget: s.remoteTarget,
        routeSet: s.routeSet.length === 0 ? NO_ROUTES : s.routeSet,
        localCSeq: restoredLocalCSeq(s.localCseq),
        remoteCSeq: s.remoteCseq,
      },
      localParty: s.localParty,
      remoteParty: s.remoteParty,
      transport: s.transport,
      connectionId: undefined,
    });
    if (kind === 'list') {
      try {
        sub.list = this.lists!.open(s.resource, sub);
      } catch {
        return undefined;
      }
    }
    sub.version = s.version + RESTORE_SEQUENCE_MARGIN;
    sub.createdAt = s.createdAt;
    if (s.destination !== undefined) sub.destination = this.endpoint(s.destination.protocol, s.destination.address, s.destination.port);
    sub.activate(s.expiresAt);
    this.index(sub);
    sub.timer = this.wheel.schedule(sub.expiresAt, this.expireCallback, sub);
    // saved at once with the moved CSeq: a second crash before any NOTIFY still moves ahead
    this.persist?.save(sub);
    return sub;
  }

  private scheduleFanout(): void {
    if (this.fanout.size > 0 && !this.fanoutScheduled) {
      this.fanoutScheduled = true;
      setImmediate(this.drainFanout);
    }
  }

  /** Stop expiring and notifying. Sends nothing: subscriptions are meant to survive a restart. */
  close(): void {
    this.closed = true;
    if (this.sweeping !== undefined) clearTimeout(this.sweeping);
    this.sweeping = undefined;
    for (const pkg of this.packages.all()) pkg.close?.();
    this.fanout.clear();
    for (const sub of this.byTag.values()) if (sub.timer !== undefined) this.wheel.cancel(sub.timer);
    for (const hold of this.holds.values()) hold.release();
    this.holds.clear();
  }

  /** Stream connections held open for live subscriptions (tests, diagnostics). */
  get heldConnections(): number {
    return this.holds.size;
  }

  /**
   * A live subscription keeps the connection its SUBSCRIBE came on: the watcher behind NAT or on
   * WebSocket is reachable only on that flow (RFC 5626 §3.3, RFC 7118 §5), so the stack must not
   * close it as idle. One stack hold per connection, counted over its subscriptions.
   */
  private holdFor(connectionId: string | undefined): void {
    const hold = this.sender.holdConnection;
    if (connectionId === undefined || hold === undefined || this.closed) return;
    const held = this.holds.get(connectionId);
    if (held !== undefined) held.subscriptions++;
    else this.holds.set(connectionId, { subscriptions: 1, release: hold.call(this.sender, connectionId) });
  }

  private releaseFor(connectionId: string | undefined): void {
    if (connectionId === undefined) return;
    const held = this.holds.get(connectionId);
    if (held === undefined) return;
    if (--held.subscriptions > 0) return;
    this.holds.delete(connectionId);
    held.release();
  }

  // -------------------------------------------------------------------------
  // SUBSCRIBE (RFC 6665 §4.2.1)

  handleSubscribe(req: InboundRequest): void {
    const { request } = req;
    const h = request.headers;
    const eventValue = h.get('event');
    const event = eventValue === undefined ? null : parseEvent(eventValue);
    const pkg = event === null ? undefined : this.packages.get(event.event);
    if (event === null || pkg === undefined) {
      // RFC 6665 §8.2.2 / §4.2.1: unknown or missing package.
      req.respond(reply(request, 489, [['allow-events', this.events.join(', ')]]));
      return;
    }
    const callId = h.get('call-id');
    const from = h.get('from');
    const to = h.get('to');
    const cseqValue = h.get('cseq');
    const cseq = cseqValue === undefined ? null : parseCSeq(cseqValue);
    if (callId === undefined || from === undefined || to === undefined || cseq === null) {
      req.respond(reply(request, 400, undefined, { reason: 'Bad Request - missing dialog headers' }));
      return;
    }
    const expiry = decideExpiry(h.get('expires'), this.bounds, (v) => parseExpires(v));
    const toTag = tagOf(to);
    if (toTag !== undefined) {
      this.refresh(req, pkg, event, { callId, fromTag: tagOf(from) ?? '', toTag, seq: cseq.seq, expiry });
      return;
    }

    const target = parseUri(request.uri);
    if (target === null || !RESOURCE_SCHEMES.has(target.scheme)) {
      req.respond(reply(request, 416));
      return;
    }
    // RFC 5367: a list the subscriber sends in its SUBSCRIBE (the list server decides, or refuses).
    const clientList = this.lists?.clientList?.(request, pkg.event);
    if (clientList !== undefined && !clientList.ok) {
      req.respond(clientList.response);
      return;
    }
    const listResource = clientList?.resource ?? this.lists?.match(target.user, target.host, pkg.event);
    const resource = listResource ?? this.resolveResource(target.user, target.host);
    if (resource === undefined) {
      req.respond(reply(request, 404));
      return;
    }
    if (listResource !== undefined) {
      const refusal = this.lists!.refuse(request, this.acceptOf(request), pkg);
      if (refusal !== undefined) {
        req.respond(refusal);
        return;
      }
    } else if (pkg.authorize !== undefined) {
      const refusal = pkg.authorize(req, resource);
      if (refusal !== undefined) {
        req.respond(refusal);
        return;
      }
    }
    const format = pkg.negotiate(this.acceptOf(request), watcherInfoOf(req));
    if (format === undefined) {
      req.respond(reply(request, 406, [['accept', pkg.contentTypes.join(', ')]]));
      return;
    }
    if (!expiry.ok) {
      this.rejectExpiry(req, expiry.status);
      return;
    }
    let localTag = newTag();
    while (this.byTag.has(localTag)) localTag = newTag();
    const dialog = uasDialog(request, localTag, cseq.seq);
    if (dialog === undefined) {
      // no dialog without exactly one remote target (uasDialog)
      req.respond(reply(request, 400, undefined, { reason: 'Bad Request - missing or invalid Contact' }));
      return;
    }
    // after every other check: the body may change state (a feature key), so only for a SUBSCRIBE that is taken
    if (listResource === undefined && request.body.length > 0 && pkg.subscribeBody !== undefined) {
      const refusal = pkg.subscribeBody(req, resource);
      if (refusal !== undefined) {
        req.respond(refusal);
        return;
      }
    }
    const toUri = parseNameAddr(to)?.uri;

    const sub = new Subscription({
      pkg,
      eventId: event.id,
      resource: listResource === undefined && pkg.resourceOf !== undefined ? pkg.resourceOf(resource) : resource,
      entity: aorOf(toUri ?? target),
      format,
      dialog,
      localParty: `${to};tag=${localTag}`,
      remoteParty: from,
      transport: req.local.protocol,
      connectionId: req.connectionId,
    });
    if (listResource !== undefined) sub.list = this.lists!.open(listResource, sub);
    const seconds = expiry.seconds;
    const ok = this.okHeaders(seconds, req, sub);
    const routes = recordRoutes(request);
    req.respond(reply(request, 200, routes.length === 0 ? ok : [...ok, ...routes], { toTag: localTag }));

    const now = this.clock.now();
    if (seconds === 0) {
      // RFC 6665 §4.4.3: a fetch gets one NOTIFY with the state and "terminated".
      sub.terminate('fetch');
      this.logger.info({ user: resource, callId, event: pkg.event }, 'subscription fetch');
      this.send(sub);
      return;
    }
    sub.activate(now + seconds * 1000);
    sub.createdAt = now;
    this.index(sub);
    sub.timer = this.wheel.schedule(sub.expiresAt, this.expireCallback, sub);
    this.logger.info({ user: resource, callId, event: pkg.event, expires: seconds }, 'subscription created');
    // Initial NOTIFY right after the 200 (RFC 6665 §4.2.1.2), never before.
    this.send(sub);
    this.save(sub);
  }

  /** `looked`: the To tag was looked up elsewhere already (481 if still unknown). */
  private refresh(
    req: InboundRequest,
    pkg: EventPackage,
    event: EventHeader,
    d: RefreshRequest,
    looked = false,
  ): void {
    const { request } = req;
    const sub = this.byTag.get(d.toTag);
    if (sub === undefined && !looked && this.resolveUnknown !== undefined) {
      // the one asynchronous path: a dialog this node does not hold (a cluster's other node may);
      // the transaction layer absorbs the SUBSCRIBE's retransmissions meanwhile (RFC 3261 §17.2.2, Trying)
      void this.lookUp(d.toTag, d.callId, this.resolveUnknown).then(() => this.resume(req, pkg, event, d));
      return;
    }
    if (
      sub === undefined ||
      sub.callId !== d.callId ||
      sub.remoteTag !== d.fromTag ||
      sub.pkg !== pkg ||
      sub.eventId !== event.id
    ) {
      req.respond(reply(request, 481, undefined, { reason: 'Subscription Does Not Exist' }));
      return;
    }
    if (!remoteCSeqInOrder(sub, d.seq)) {
      req.respond(reply(request, 500, undefined, { reason: 'Server Internal Error - CSeq out of order' }));
      return;
    }
    if (!d.expiry.ok) {
      this.rejectExpiry(req, d.expiry.status);
      return;
    }
    if (request.body.length > 0 && pkg.subscribeBody !== undefined && sub.list === undefined) {
      const refusal = pkg.subscribeBody(req, sub.resource);
      if (refusal !== undefined) {
        req.respond(refusal);
        return;
      }
    }
    acceptRemoteCSeq(sub, d.seq);
    // a subscription just found elsewhere owes its watcher the restore NOTIFY: the refresh's own is that one
    if (looked) this.fanout.delete(sub);
    // SUBSCRIBE is a target refresh request (RFC 6665 §4.1.2.1)
    if (refreshTarget(sub, request.headers.getAll('contact'), detach)) sub.destination = undefined;
    if (req.connectionId !== undefined && req.connectionId !== sub.connectionId) {
      // the refresh came on another connection: that one is kept now, the old one let go
      this.holdFor(req.connectionId);
      this.releaseFor(sub.connectionId);
      sub.connectionId = req.connectionId;
      sub.transport = req.local.protocol;
      sub.destination = undefined;
    }
    const seconds = d.expiry.seconds;
    req.respond(reply(request, 200, this.okHeaders(seconds, req, sub)));
    if (seconds === 0) {
      this.end(sub, 'unsubscribed');
      return;
    }
    sub.activate(this.clock.now() + seconds * 1000);
    if (sub.timer !== undefined) this.wheel.reschedule(sub.timer, sub.expiresAt);
    this.logger.info({ user: sub.resource, callId: sub.callId, event: pkg.event, expires: seconds }, 'subscription refreshed');
    // RFC 4662 §4.5: a refreshed list subscription gets the full state again.
    sub.list?.fullStateNext();
    sub.lastBody = undefined; // RFC 6665 §4.2.1.2: a refresh is answered with a NOTIFY, changed or not
    this.notify(sub);
    this.save(sub);
  }

  /**
   * The subscription under our tag `id`, from wherever it is held, made
   * live here when found (restore()'s rules; queued for its restore NOTIFY,
   * which the SUBSCRIBE's own answer replaces when it is handled first);
   * concurrent requests for one tag share the one lookup. A failed lookup is
   * "not found".
   */
  private lookUp(id: string, callId: string, resolve: (id: string, callId: string) => Promise<SubscriptionSnapshot | undefined>): Promise<void> {
    let pending = this.resolving.get(id);
    if (pending === undefined) {
      pending = resolve(id, callId)
        .then(
          (snapshot) => {
            if (snapshot === undefined || snapshot.localTag !== id) return;
            const sub = this.revive(snapshot, this.kindOf, new Map());
            if (sub === undefined) return;
            this.logger.info({ user: sub.resource, callId: sub.callId, event: sub.event, id }, 'subscription adopted');
            this.fanout.add(sub);
            this.scheduleFanout();
          },
          (error: unknown) => {
            this.logger.warn({ err: error, id, callId }, 'subscription look-up failed');
          },
        )
        .finally(() => this.resolving.delete(id));
      this.resolving.set(id, pending);
    }
    return pending;
  }

  /** Handle an in-dialog SUBSCRIBE after its To tag's lookup (no answer once closed, like the server). */
  private resume(req: InboundRequest, pkg: EventPackage, event: EventHeader, d: RefreshRequest): void {
    if (this.closed) return;
    try {
      this.refresh(req, pkg, event, d, true);
    } catch (error) {
      this.logger.error({ err: error, callId: d.callId }, 'SUBSCRIBE handling failed');
      try {
        req.respond(reply(req.request, 500));
      } catch {
        // already answered
      }
    }
  }

  private save(sub: Subscription): void {
    if (this.persist === undefined) return;
    this.moved.delete(sub);
    this.persist.save(sub);
  }

  /** Headers of a 200 to SUBSCRIBE; RFC 4662 §4.1: Require: eventlist when it is a list subscription. */
  private okHeaders(seconds: number, req: InboundRequest, sub: Subscription): Array<[string, string]> {
    const extra: Array<[string, string]> = [['expires', String(seconds)], ['contact', this.responseContact(req)]];
    if (sub.list !== undefined) extra.push(['require', 'eventlist']);
    return extra;
  }

  private rejectExpiry(req: InboundRequest, status: 400 | 423): void {
    req.respond(expiryRejection(req.request, status, this.bounds));
  }

  private acceptOf(request: SipRequest): MediaType[] | undefined {
    const values = request.headers.getAll('accept');
    if (values.length === 0) return undefined;
    // A malformed Accept is treated as absent rather than refusing the watcher.
    return parseAccept(values) ?? undefined;
  }

  private responseContact(req: InboundRequest): string {
    return this.contactFor(req.local.protocol) ?? contactValue(req.local, this.contactHost);
  }

  /** Our Contact for a transport, from the stack's advertised (else bound) endpoint; cached. */
  private contactFor(protocol: TransportProtocol): string | undefined {
    let value = this.contactCache.get(protocol);
    if (value === undefined) {
      value = ourContact(this.sender, protocol, this.contactHost);
      if (value === undefined) return undefined;
      this.contactCache.set(protocol, value);
    }
    return value;
  }

  // -------------------------------------------------------------------------
  // State changes

  /**
   * The state of `resource` changed: each watcher gets a NOTIFY with the new
   * full state, in order. The fan-out runs after the current turn (so the
   * request that caused the change is answered first) and in slices, so that
   * the watchers' answers to the first NOTIFYs are read while later ones are
   * still being sent instead of piling up in the socket buffer.
   */
  /** Send the current state to every watcher of `resource`, changed or not (an admin resync). */
  resend(resource: string): void {
    const set = this.byResource.get(resource);
    if (set !== undefined) for (const sub of set) sub.lastBody = undefined;
    this.resourceChanged(resource);
  }

  resourceChanged(resource: string, event?: string): void {
    if (this.closed) return;
    const set = this.byResource.get(resource);
    if (set === undefined) return;
    // `event`: only that package's subscriptions (a change only its bodies show)
    for (const sub of set) {
      if (event !== undefined && sub.event !== event) continue;
      if (this.catchUp.size > 0 && this.catchUp.has(sub) && !this.newsBeyondCatchUp(sub)) continue;
      this.fanout.add(sub);
      this.catchUp.delete(sub);
    }
    this.scheduleFanout();
  }

  /**
   * A change for a restored subscription still owed its catch-up: news when its state renders other
   * than at the restore (it goes at once, past the window); otherwise (e.g. the Graph side's first read
   * after a start, of what was already known) the catch-up NOTIFY, sent when the window lets it,
   * carries it. 100,000 restored watchers of one person would otherwise be 100,000 NOTIFYs at once.
   */
  private newsBeyondCatchUp(sub: Subscription): boolean {
    const atRestore = this.catchUp.get(sub);
    if (atRestore === undefined || sub.state !== 'active') return true;
    return !this.render(sub).body.equals(atRestore);
  }

  private readonly drainFanout = (): void => {
    this.fanoutScheduled = false;
    if (this.closed) return;
    let sent = 0;
    const start = performance.now();
    for (const sub of this.fanout) {
      this.fanout.delete(sub);
      this.notify(sub);
      if (++sent === FANOUT_SLICE || performance.now() - start >= FANOUT_SLICE_MS) break;
    }
    if (this.fanout.size > 0) {
      this.fanoutScheduled = true;
      setImmediate(this.drainFanout);
    }
  };

  /** End every subscription to `resource` (e.g. the person was removed), with a final NOTIFY. */
  terminateResource(resource: string, cause: TerminationCause = 'noresource'): void {
    const set = this.byResource.get(resource);
    if (set === undefined) return;
    for (const sub of [...set]) this.end(sub, cause);
  }

  private readonly expireCallback = (sub: Subscription): void => this.expire(sub);

  private expire(sub: Subscription): void {
    if (this.closed || sub.state !== 'active') return;
    this.end(sub, 'timeout');
  }

  private end(sub: Subscription, cause: TerminationCause): void {
    if (!sub.terminate(cause)) return;
    this.unindex(sub);
    if (this.persist !== undefined) {
      this.moved.delete(sub);
      this.persist.remove(sub.localTag);
    }
    if (sub.timer !== undefined) {
      this.wheel.cancel(sub.timer);
      sub.timer = undefined;
    }
    this.logger.info({ user: sub.resource, callId: sub.callId, event: sub.event, reason: cause }, 'subscription terminated');
    this.notify(sub);
  }

  private index(sub: Subscription): void {
    this.byTag.set(sub.localTag, sub);
    let set = this.byResource.get(sub.resource);
    if (set === undefined) {
      set = new Set();
      this.byResource.set(sub.resource, set);
    }
    set.add(sub);
    this.holdFor(sub.connectionId);
    this.countByEvent.set(sub.event, (this.countByEvent.get(sub.event) ?? 0) + 1);
    if (this.lifecycle.size > 0) for (const l of this.lifecycle) l(sub, 'added');
  }

  private unindex(sub: Subscription): void {
    if (this.byTag.get(sub.localTag) !== sub) return;
    this.byTag.delete(sub.localTag);
    this.releaseFor(sub.connectionId);
    const set = this.byResource.get(sub.resource);
    set?.delete(sub);
    this.countByEvent.set(sub.event, Math.max(0, (this.countByEvent.get(sub.event) ?? 0) - 1));
    // listeners first: a client list's members are still known to them
    if (this.lifecycle.size > 0) for (const l of this.lifecycle) l(sub, 'removed');
    if (set !== undefined && set.size === 0) {
      this.byResource.delete(sub.resource);
      sub.pkg.release?.(sub.resource);
      this.lists?.released?.(sub.resource);
    }
  }

  // -------------------------------------------------------------------------
  // NOTIFY

  /** Send the current full state now, or after the outstanding NOTIFY (one at a time per subscription). */
  private notify(sub: Subscription): void {
    if (this.closed || sub.finalSent) return;
    if (sub.inFlight) {
      sub.dirty = true;
      return;
    }
    this.sendIfChanged(sub);
  }

  /**
   * Send, unless the state renders the very body this watcher last got: a
   * change of the person's record that its format leaves out (a Teams detail,
   * the Graph side's first read of what the PBX already said) is no change of
   * the watcher's state (RFC 6665 §4.2.2: NOTIFY on a change of state; RFC 3856
   * §6.7: the state is the presence document). A NOTIFY that is owed (the
   * first, after a refresh, the final one, a list's) always goes: the refresh
   * clears lastBody.
   */
  private sendIfChanged(sub: Subscription): void {
    const last = sub.lastBody;
    if (last === undefined || sub.state !== 'active' || sub.list !== undefined) {
      this.send(sub);
      return;
    }
    const rendered = this.render(sub);
    if (rendered.contentType === sub.format.contentType && rendered.body.equals(last)) return;
    this.send(sub, rendered);
  }

  /** The body of the next NOTIFY: the current full state in the watcher's format. */
  private render(sub: Subscription): { body: Buffer; contentType: string } {
    try {
      if (sub.list !== undefined) return sub.list.render(sub);
      const body = sub.pkg.render(sub.resource, { entity: sub.entity, format: sub.format, version: sub.version, owner: sub });
      return { body, contentType: sub.format.contentType };
    } catch (error) {
      this.logger.error({ err: error, user: sub.resource, event: sub.event }, 'rendering a NOTIFY body failed');
      return { body: EMPTY_BODY, contentType: sub.format.contentType };
    }
  }

  private send(sub: Subscription, rendered?: { body: Buffer; contentType: string }): void {
    const now = this.clock.now();
    if (sub.state === 'terminated') sub.finalSent = true;
    sub.inFlight = true;
    sub.dirty = false;
    this.notifiesOut++;
    // any NOTIFY has the full current state: a catch-up owed is paid
    if (this.catchUp.size > 0) this.catchUp.delete(sub);
    if (this.persist !== undefined && sub.state === 'active') this.moved.add(sub);
    const { body, contentType } = rendered ?? this.render(sub);
    if (sub.list === undefined) sub.lastBody = body;
    sub.version++;
    const request = this.buildNotify(sub, body, now, contentType);
    this.dispatch(sub, request).then(
      (response) => {
        const o = this.observer;
        if (o !== undefined) {
          if (response.status < 300) o.notifySent(sub.event, sub.resource);
          else o.notifyFailed(sub.event, response.status, sub.resource);
        }
        this.onNotifyResponse(sub, response);
      },
      (error: unknown) => {
        this.logger.debug({ err: error, callId: sub.callId }, 'NOTIFY not sent');
        this.observer?.notifyFailed(sub.event, 'transport', sub.resource);
        this.onNotifyResponse(sub, localFailure(503, 'Service Unavailable'));
      },
    );
  }

  /** RFC 3261 §12.2.1.1: a request within the dialog, built from its state. */
  private buildNotify(sub: Subscription, body: Buffer, now: number, contentType: string): SipRequest {
    const headers = new Headers();
    const requestUri = routeRequest(sub.remoteTarget, sub.routeSet, headers);
    headers.append('from', sub.localParty);
    headers.append('to', sub.remoteParty);
    headers.append('call-id', sub.callId);
    headers.append('cseq', `${nextLocalCSeq(sub)} NOTIFY`);
    headers.append('event', sub.eventHeaderValue());
    headers.append('subscription-state', sub.subscriptionStateValue(now));
    headers.append('contact', this.ourContact(sub));
    // RFC 4662 §4.1: every NOTIFY of a list subscription carries Require: eventlist.
    if (sub.list !== undefined) headers.append('require', 'eventlist');
    if (body.length > 0) headers.append('content-type', contentType);
    return createRequest('NOTIFY', requestUri, headers, body);
  }

  private ourContact(sub: Subscription): string {
    return (
      this.contactFor(sub.destination?.protocol ?? sub.transport) ??
      this.contactFor('udp') ??
      `<sip:${this.contactHost ?? '127.0.0.1'}>`
    );
  }

  private dispatch(sub: Subscription, request: SipRequest): Promise<SipResponse> {
    const destination = sub.destination ?? this.connectionDestination(sub) ?? this.literalDestination(sub);
    if (destination !== undefined) return this.sender.sendRequest(request, this.sendOptions(sub, destination));
    return this.resolveDestination(sub).then((dest) => {
      if (dest === undefined) return localFailure(503, 'Service Unavailable - no route to the watcher');
      return this.sender.sendRequest(request, this.sendOptions(sub, dest));
    });
  }

  private sendOptions(sub: Subscription, destination: Endpoint): OutboundOptions {
    return sub.connectionId !== undefined ? { destination, connectionId: sub.connectionId } : { destination };
  }

  private targetUri(sub: Subscription): SipUri | null {
    return firstHopUri(sub.remoteTarget, sub.routeSet);
  }

  /** The next hop when it needs no DNS (cached on the subscription). */
  private literalDestination(sub: Subscription): Endpoint | undefined {
    const uri = this.targetUri(sub);
    if (uri === null) return undefined;
    const hop = nextHopOf(uri, sub.transport);
    if (!hop.literal) return undefined;
    sub.destination = this.endpoint(hop.protocol, hop.host, hop.port);
    return sub.destination;
  }

  /**
   * The connection the SUBSCRIBE came on, without DNS: always for WebSocket
   * watchers (RFC 7118 §5: a browser's Contact host is a made-up ".invalid"
   * name and the gateway opens no WebSocket connections), and for any stream
   * watcher whose Contact host is a ".invalid" name (RFC 6761 §6.4: it never
   * resolves). The protocol is the listener's, whatever the Contact says.
   * A closed connection makes the stack answer 503, which ends the subscription.
   */
  private connectionDestination(sub: Subscription): Endpoint | undefined {
    if (sub.connectionId === undefined) return undefined;
    const ws = sub.transport === 'ws' || sub.transport === 'wss';
    const uri = this.targetUri(sub);
    const hop = uri === null ? undefined : nextHopOf(uri, sub.transport);
    if (!ws && (hop === undefined || !isInvalidHost(hop.host))) return undefined;
    sub.destination = this.endpoint(sub.transport, hop?.host ?? 'invalid', hop?.port ?? 0);
    return sub.destination;
  }

  /**
   * One Endpoint object for every subscription with the same next hop (many
   * watchers sit behind one phone, console or PBX); never mutated once made.
   */
  private endpoint(protocol: TransportProtocol, address: string, port: number): Endpoint {
    const key = `${protocol} ${address} ${port}`;
    let e = this.endpoints.get(key);
    if (e === undefined) {
      e = { protocol, address: sharedStrings.get(address), port };
      if (this.endpoints.size < MAX_SHARED_ENDPOINTS) this.endpoints.set(sharedStrings.get(key), e);
    }
    return e;
  }

  private async resolveDestination(sub: Subscription): Promise<Endpoint | undefined> {
    const uri = this.targetUri(sub);
    if (uri === null) return undefined;
    const hop = nextHopOf(uri, sub.transport);
    try {
      const address = await this.lookup(hop.host);
      sub.destination = this.endpoint(hop.protocol, address, hop.port);
      return sub.destination;
    } catch (error) {
      this.logger.debug({ err: error, host: hop.host, callId: sub.callId }, 'watcher host did not resolve');
      if (sub.connectionId === undefined || sub.transport === 'udp') return undefined;
      // a stream watcher behind NAT or with a private name: its own connection still reaches it
      sub.destination = this.endpoint(sub.transport, hop.host, hop.port);
      return sub.destination;
    }
  }

  private onNotifyResponse(sub: Subscription, response: SipResponse): void {
    sub.inFlight = false;
    this.notifiesOut--;
    if (this.closed) return;
    if (this.catchUp.size > 0) this.scheduleCatchUp();
    const status = response.status;
    if (status >= 300) {
      // A list watcher that missed a partial state gets the full state next time; any watcher the same body.
      sub.list?.fullStateNext();
      sub.lastBody = undefined;
      if (ENDS_DIALOG_USAGE.has(status) && sub.state === 'terminated') {
        // The final NOTIFY went unanswered (the watcher left with its unSUBSCRIBE): nothing left to end.
        this.logger.debug({ user: sub.resource, callId: sub.callId, event: sub.event, status }, 'final NOTIFY unanswered');
        return;
      }
      if (ENDS_DIALOG_USAGE.has(status)) {
        // RFC 6665 §4.2.2: the watcher is gone; nothing more is sent to it.
        this.logger.info({ user: sub.resource, callId: sub.callId, event: sub.event, status }, 'NOTIFY failed, ending subscription');
        sub.dirty = false;
        sub.finalSent = true;
        this.end(sub, 'notify-failed');
        return;
      }
      this.logger.debug({ user: sub.resource, callId: sub.callId, status }, 'NOTIFY refused');
    }
    if (sub.dirty && !sub.finalSent) {
      sub.dirty = false;
      this.sendIfChanged(sub);
    }
  }
}
