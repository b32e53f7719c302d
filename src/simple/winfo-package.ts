/**
 * The `presence.winfo` event package (RFC 3857, template package over
 * presence) with RFC 3858 bodies: who watches a person's presence. The first
 * NOTIFY of a subscription carries the full state, later ones only the
 * watchers that came or went (state="partial"), each with the subscription's
 * own version counter (RFC 3858 §4.3).
 *
 * Who is a watcher: RFC 3857 (§1, §3.2) defines watcher information as the
 * set of users subscribed to the resource within the watched package. A
 * console subscribed to a resource list (RFC 4662, configured or its own
 * RFC 5367 list) holding the person is such a user: RFC 4662 §3 has the list
 * server subscribe to each member on the subscriber's behalf (back-end
 * subscriptions; here they are internal, the list server being this
 * notifier), so its presence list subscription is listed as a watcher of
 * every member, with its own id, URI and expiry. Dialog lists are not
 * presence watchers and are not listed.
 *
 * Authorisation (RFC 3857 §5: watcher information is sensitive): the person
 * themselves (From is one of their AoRs), an admin digest user, or a trusted
 * network (access control marks the request); anyone else gets 403.
 */
import { WATCHERINFO_CONTENT_TYPE, buildWatcherInfo, type WatcherEntry, type WatcherEventName } from '../bodies/index.js';
import type { MediaType } from '../sip/header-values.js';
import { systemClock, type Clock } from '../util/clock.js';
import type { SipResponse } from '../sip/message.js';
import { aorOf, parseNameAddr } from '../sip/uri.js';
import { chooseContentType, type BodyFormat, type EventPackage, type RenderContext } from './event-package.js';
import type { Notifier } from './notifier.js';
import { reply } from './sip-util.js';
import type { InboundRequest } from './stack-port.js';
import type { Subscription, TerminationCause } from './subscription.js';

export const WINFO_EVENT = 'presence.winfo';

/** The person whose watchers a winfo notifier resource lists (`winfo:<person>`), else undefined. */
export function winfoPersonOf(resource: string): string | undefined {
  return resource.startsWith(RESOURCE_PREFIX) ? resource.slice(RESOURCE_PREFIX.length) : undefined;
}
const WATCHED_PACKAGE = 'presence';
const RESOURCE_PREFIX = 'winfo:';
const FORMAT: BodyFormat = Object.freeze({ contentType: WATCHERINFO_CONTENT_TYPE, variant: 'rfc' });
/** Ended watchers remembered per person until their winfo watchers are told (bounded). */
const MAX_ENDED = 1000;

interface Ended {
  entry: WatcherEntry;
  at: number;
}

/** RFC 3857 §3.2.4 events for a watcher subscription that ended. */
function endEvent(cause: TerminationCause | undefined): WatcherEventName {
  switch (cause) {
    case 'timeout':
    case 'unsubscribed':
    case 'fetch':
      return 'timeout';
    case 'noresource':
      return 'noresource';
    case 'rejected':
      return 'rejected';
    default:
      return 'giveup';
  }
}

export interface WatcherInfoOptions {
  notifier: Notifier;
  /** The person a SIP URI names (the From of a winfo SUBSCRIBE). */
  resolve: (user: string | undefined, host: string) => string | undefined;
  clock?: Pick<Clock, 'now'>;
}

export class WatcherInfoPackage implements EventPackage {
  readonly event = WINFO_EVENT;
  readonly contentTypes: readonly string[] = [WATCHERINFO_CONTENT_TYPE];
  private readonly notifier: Notifier;
  private readonly resolve: WatcherInfoOptions['resolve'];
  private readonly clock: Pick<Clock, 'now'>;
  /** per winfo subscription: the watchers (by id) it has been told are active */
  private readonly told = new WeakMap<object, Set<string>>();
  /** per person: presence watchers that ended, for the partial NOTIFYs */
  private readonly ended = new Map<string, Map<string, Ended>>();
  private readonly unlisten: () => void;

  constructor(options: WatcherInfoOptions) {
    this.notifier = options.notifier;
    this.resolve = options.resolve;
    this.clock = options.clock ?? systemClock;
    this.unlisten = this.notifier.onSubscriptionChange((sub, change) => this.watcherChanged(sub, change));
  }

  close(): void {
    this.unlisten();
  }

  resourceOf(personId: string): string {
    return RESOURCE_PREFIX + personId;
  }

  authorize(req: InboundRequest, personId: string): SipResponse | undefined {
    if (req.privileged !== undefined) return undefined;
    const from = parseNameAddr(req.request.headers.get('from') ?? '');
    if (from !== null && this.resolve(from.uri.user, from.uri.host) === personId) return undefined;
    return reply(req.request, 403, undefined, {
      reason: 'Forbidden - watcher information only for the person, an admin user or a trusted network',
    });
  }

  negotiate(accept: readonly MediaType[] | undefined): BodyFormat | undefined {
    // RFC 3858 §4: application/watcherinfo+xml is the default and only format.
    if (accept !== undefined && chooseContentType(accept, this.contentTypes) === undefined) return undefined;
    return FORMAT;
  }

  render(resource: string, ctx: RenderContext): Buffer {
    const personId = resource.startsWith(RESOURCE_PREFIX) ? resource.slice(RESOURCE_PREFIX.length) : resource;
    const owner = ctx.owner ?? {};
    const now = this.clock.now();
    const current = new Map<string, WatcherEntry>();
    for (const sub of this.presenceWatchers(personId)) current.set(sub.localTag, this.entryOf(sub, now));
    const told = this.told.get(owner);
    let watchers: WatcherEntry[];
    let state: 'full' | 'partial';
    if (told === undefined || ctx.version === 0) {
      state = 'full';
      watchers = [...current.values()];
    } else {
      state = 'partial';
      watchers = [];
      for (const [id, entry] of current) if (!told.has(id)) watchers.push(entry);
      const ended = this.ended.get(personId);
      for (const id of told) {
        if (current.has(id)) continue;
        const gone = ended?.get(id);
        watchers.push(gone?.entry ?? { id, status: 'terminated', event: 'giveup', uri: '' });
      }
    }
    this.told.set(owner, new Set(current.keys()));
    return Buffer.from(
      buildWatcherInfo({ version: ctx.version, state, lists: [{ resource: ctx.entity, package: WATCHED_PACKAGE, watchers }] }),
      'utf8',
    );
  }

  release(resource: string): void {
    // nobody watches this person's watchers any more: forget who left
    const personId = resource.startsWith(RESOURCE_PREFIX) ? resource.slice(RESOURCE_PREFIX.length) : resource;
    this.ended.delete(personId);
  }

  /** Active presence subscriptions to the person, directly or through a list that holds them. */
  private *presenceWatchers(personId: string): Iterable<Subscription> {
    for (const sub of this.notifier.watchers(personId)) if (sub.event === WATCHED_PACKAGE && sub.state === 'active') yield sub;
    for (const list of this.notifier.listsContaining(personId)) {
      for (const sub of this.notifier.watchers(list)) if (sub.event === WATCHED_PACKAGE && sub.state === 'active') yield sub;
    }
  }

  private entryOf(sub: Subscription, now: number): WatcherEntry {
    const party = parseNameAddr(sub.remoteParty);
    const entry: WatcherEntry = {
      id: sub.localTag,
      status: sub.state === 'active' ? 'active' : 'terminated',
      event: 'subscribe',
      uri: party === null ? sub.remoteParty : aorOf(party.uri),
      durationSubscribed: (now - sub.createdAt) / 1000,
      expiration: (sub.expiresAt - now) / 1000,
    };
    if (party?.displayName !== undefined && party.displayName.length > 0) entry.displayName = party.displayName;
    return entry;
  }

  /** A presence subscription came or went: the winfo watchers of the person (of each member, for a list) hear of it. */
  private watcherChanged(sub: Subscription, change: 'added' | 'removed'): void {
    if (sub.event !== WATCHED_PACKAGE) return;
    const people = sub.list === undefined ? [sub.resource] : this.notifier.listMembers(sub.resource);
    for (const personId of people) {
      const winfoResource = RESOURCE_PREFIX + personId;
      if (this.notifier.watchers(winfoResource).length === 0) continue;
      if (change === 'removed') {
        let ended = this.ended.get(personId);
        if (ended === undefined) this.ended.set(personId, (ended = new Map()));
        if (ended.size >= MAX_ENDED) ended.delete(ended.keys().next().value!);
        const entry = this.entryOf(sub, this.clock.now());
        entry.status = 'terminated';
        entry.event = endEvent(sub.cause);
        delete entry.expiration;
        ended.set(sub.localTag, { entry, at: this.clock.now() });
      }
      this.notifier.resourceChanged(winfoResource);
    }
  }
}
