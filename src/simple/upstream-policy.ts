/**
 * What the gateway watches and publishes at each trunk, and when: a
 * SUBSCRIBE target per carried person of a `watch` trunk, a PUBLISH target per
 * carried person of a `publish` trunk; Teams presence re-published only when
 * what a publication says changed; everything refreshed when a trunk comes
 * back; a person's trunk feed marked unreachable while its subscription is down
 * (unknown is not idle).
 */
import type { Person } from '../core/directory.js';
import type { PresenceView } from '../core/person-state.js';
import type { PresenceHub } from '../core/presence-hub.js';
import type { TrunkRegistry } from '../trunks/registry.js';
import type { Trunk } from '../trunks/trunk.js';
import type { Logger } from '../util/logger.js';
import type { PublishTarget, UpstreamPublisher } from './upstream-publisher.js';
import type { UpstreamTarget, UpstreamWatcher } from './upstream-watcher.js';

/** The telephony feeder name core knows a trunk by. */
export function trunkFeeder(trunk: string): string {
  return `trunk:${trunk}`;
}

/** The upstream subscription to `person` at a watching trunk. */
export function watchTarget(trunk: Trunk, person: Person, fromUri: string): UpstreamTarget {
  return {
    trunk: trunk.name,
    personId: person.id,
    uri: trunk.userUri(person),
    event: trunk.traits.watchEvent,
    accept: trunk.traits.watchAccept,
    expires: trunk.config.watch.expires,
    fromUri,
    destination: () => trunk.destination(),
    // an explicit transport; else the one resolution (SRV) chose for the initial SUBSCRIBE
    ...(trunk.nextHop.explicitTransport || trunk.nextHop.port !== undefined ? { transport: trunk.nextHop.protocol } : {}),
    ratePerSec: trunk.config.watch.ratePerSec,
    // An outbound proxy that does not Record-Route still has to carry the in-dialog refreshes.
    ...(trunk.config.outboundProxy !== undefined ? { stickyDestination: true } : {}),
    ...(trunk.credentials !== undefined ? { credentials: trunk.credentials } : {}),
  };
}

/** The publication of `person`'s Teams presence at a publishing trunk. */
export function publishTarget(trunk: Trunk, person: Person, fromUri: string): PublishTarget {
  return {
    trunk: trunk.name,
    personId: person.id,
    uri: trunk.userUri(person),
    expires: trunk.config.publish.expires,
    fromUri,
    flavor: trunk.traits.publishFlavor,
    destination: () => trunk.destination(),
    ratePerSec: trunk.config.watch.ratePerSec,
    ...(trunk.credentials !== undefined ? { credentials: trunk.credentials } : {}),
  };
}

/** What a publication says, to skip PUBLISHes that would change nothing. */
export function publishKey(view: PresenceView | undefined): string {
  if (view === undefined) return '';
  return `${view.basic}|${view.activities.join(',')}|${view.dnd ? 1 : 0}|${view.note ?? ''}`;
}

/** A trunk's subscription or publication for one person went up or down (the watcher's and publisher's onItem). */
export function itemNoter(
  registry: Pick<TrunkRegistry, 'get'>,
  store: Pick<PresenceHub, 'setFeederReachableFor'>,
  kind: 'subscription' | 'publication',
): (trunk: string, personId: string, up: boolean, error?: string) => void {
  return (trunk, personId, up, error) => {
    const t = registry.get(trunk);
    if (t === undefined) return;
    t.noteItem(kind, personId, up);
    if (error !== undefined) t.noteError(error);
    // unknown is not idle: a person whose subscription at the trunk is down has no live line state from it
    if (kind === 'subscription') store.setFeederReachableFor(personId, trunkFeeder(trunk), up);
  };
}

/** Teams presence of each carried person, PUBLISHed to every publishing trunk that carries them, again when it changes. */
export class TeamsPublishing {
  /** What was last sent to each target (trunk and person). */
  private readonly published = new Map<string, string>();
  private readonly targets = new Map<string, PublishTarget[]>();

  constructor(
    private readonly store: Pick<PresenceHub, 'teamsPart'>,
    private readonly publisher: Pick<UpstreamPublisher, 'publish'>,
  ) {}

  add(target: PublishTarget): void {
    const list = this.targets.get(target.personId);
    if (list === undefined) this.targets.set(target.personId, [target]);
    else list.push(target);
  }

  /** Stop publishing to `trunk` (its job moved away; the publisher was told to release it). */
  drop(trunk: string): void {
    for (const [personId, list] of this.targets) {
      const rest = list.filter((t) => t.trunk !== trunk);
      if (rest.length === list.length) continue;
      this.published.delete(`${trunk}\n${personId}`);
      if (rest.length === 0) this.targets.delete(personId);
      else this.targets.set(personId, rest);
    }
  }

  get size(): number {
    return this.targets.size;
  }

  /** The person's Teams part may have changed: publish it where it is carried, unless it says what was last sent there. */
  changed(personId: string): void {
    const targets = this.targets.get(personId);
    if (targets === undefined) return;
    const part = this.store.teamsPart(personId);
    const key = publishKey(part);
    for (const target of targets) {
      const at = `${target.trunk}\n${personId}`;
      if (this.published.get(at) === key) continue;
      this.published.set(at, key);
      this.publisher.publish(target, part);
    }
  }
}

/**
 * A trunk that comes back (OPTIONS answered again, e.g. after a restart) may
 * have lost our subscriptions and publications: refresh them all (a 481 or
 * 412 makes new ones). A watching trunk's reachability is its feed's in core.
 * Returns the unsubscribe.
 */
export function refreshWhenBack(
  registry: Pick<TrunkRegistry, 'get' | 'onStatus'>,
  store: Pick<PresenceHub, 'setFeederReachable'>,
  upstream: { watcher: Pick<UpstreamWatcher, 'refreshAll'>; publisher: Pick<UpstreamPublisher, 'refreshAll'> },
  logger: Logger,
): () => void {
  const wasReachable = new Map<string, boolean | undefined>();
  return registry.onStatus((s) => {
    const before = wasReachable.get(s.name);
    wasReachable.set(s.name, s.reachable);
    if (registry.get(s.name)?.has('watch') === true) store.setFeederReachable(trunkFeeder(s.name), s.reachable !== false);
    if (before === false && s.reachable === true) {
      logger.info({ trunk: s.name }, 'trunk reachable again: refreshing subscriptions and publications');
      const t = registry.get(s.name);
      if (t?.has('watch') === true) upstream.watcher.refreshAll(s.name);
      if (t?.has('publish') === true) upstream.publisher.refreshAll(s.name);
    }
  });
}
