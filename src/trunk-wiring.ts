/**
 * Composition of the trunk side (part of the composition root): the trunk
 * registry with its OPTIONS pings, access control for inbound requests, the
 * upstream watcher (SUBSCRIBE at the PBX per carried person, into core's
 * telephony state) and the upstream publisher (Teams presence PUBLISHed to
 * presence servers). SIP and core meet here only through the PresenceStore.
 */
import type { GatewayConfig } from './config/schema.js';
import { effectiveAccessMode } from './trunks/config.js';
import type { Directory, Person } from './core/directory.js';
import type { PresenceView } from './core/person-state.js';
import type { PresenceStore } from './core/presence-store.js';
import type { AccessVerdict, TrunkTraits } from './simple/sip-app.js';
import type { InboundRequest, RequestSender } from './simple/stack-port.js';
import { UpstreamPublisher, type PublishTarget } from './simple/upstream-publisher.js';
import { UpstreamWatcher, type UpstreamTarget } from './simple/upstream-watcher.js';
import { AccessControl, TrunkRegistry, type Trunk, type TrunkStatus } from './trunks/index.js';
import type { Logger } from './util/logger.js';
import type { TimerWheel } from './util/timer-wheel.js';

export interface TrunkSide {
  readonly registry: TrunkRegistry;
  readonly access: AccessControl;
  /** The SIMPLE server's access hook. */
  verdict(req: InboundRequest): AccessVerdict;
  statuses(): TrunkStatus[];
}

export interface UpstreamSide {
  readonly watcher: UpstreamWatcher;
  readonly publisher: UpstreamPublisher;
  /** Stop: publications removed, upstream subscriptions ended (they are made anew at the next start). */
  close(): Promise<void>;
}

/** The gateway's identity towards trunks (From of pings, SUBSCRIBEs, PUBLISHes). */
export function gatewayIdentity(config: GatewayConfig): string {
  return `sip:presence-gateway@${config.sip.domain}`;
}

function traitsOf(trunk: Trunk): TrunkTraits {
  return {
    name: trunk.name,
    inbound: trunk.has('inbound'),
    unsolicitedNotify: trunk.traits.unsolicitedNotify,
    inboundPublish: trunk.traits.inboundPublish,
    output: trunk.traits.output,
  };
}

/** The registry and access control: built before the SIMPLE server, which asks them about every request. */
export function createTrunkSide(config: GatewayConfig, stack: RequestSender, logger: Logger, wheel: TimerWheel): TrunkSide {
  const registry = new TrunkRegistry({
    trunks: config.trunks,
    sender: stack,
    fromUri: gatewayIdentity(config),
    logger: logger.child({ component: 'trunks' }),
    wheel,
  });
  const mode = effectiveAccessMode(config.sip.access, config.trunks);
  const access = new AccessControl({
    registry,
    config: config.sip.access,
    mode,
    defaultRealm: config.sip.domain,
    logger: logger.child({ component: 'access' }),
  });
  if (mode === 'open') logger.warn('sip.access is open: requests are accepted from any address (set sip.access.mode: restricted)');
  const traits = new Map<Trunk, TrunkTraits>();
  return {
    registry,
    access,
    verdict(req) {
      const d = access.check(req);
      if (!d.allow) return { allow: false, response: d.response };
      if (d.trunk === undefined) return { allow: true };
      let t = traits.get(d.trunk);
      if (t === undefined) traits.set(d.trunk, (t = traitsOf(d.trunk)));
      return { allow: true, trunk: t };
    },
    statuses: () => registry.statuses(),
  };
}

/** What a publication says, to skip PUBLISHes that would change nothing. */
function publishKey(view: PresenceView | undefined): string {
  if (view === undefined) return '';
  return `${view.basic}|${view.activities.join(',')}|${view.dnd ? 1 : 0}|${view.note ?? ''}`;
}

export interface UpstreamOptions {
  config: GatewayConfig;
  sender: RequestSender;
  trunks: TrunkSide;
  directory: Directory;
  store: PresenceStore;
  wheel: TimerWheel;
  logger: Logger;
}

/** Start watching and publishing on every trunk configured for it. */
export function startUpstream(options: UpstreamOptions): UpstreamSide {
  const { config, sender, trunks, directory, store, wheel } = options;
  const logger = options.logger.child({ component: 'upstream' });
  const registry = trunks.registry;
  const fromUri = gatewayIdentity(config);
  const itemNote = (kind: 'subscription' | 'publication') => (trunk: string, personId: string, up: boolean, error?: string) => {
    const t = registry.get(trunk);
    if (t === undefined) return;
    t.noteItem(kind, personId, up);
    if (error !== undefined) t.noteError(error);
  };
  const onAuth = (trunk: string, ok: boolean) => registry.get(trunk)?.noteAuth(ok);

  const watcher = new UpstreamWatcher({ sender, wheel, sink: store, logger, onItem: itemNote('subscription'), onAuth });
  const publisher = new UpstreamPublisher({ sender, wheel, logger, onItem: itemNote('publication'), onAuth });

  const watching = registry.all().filter((t) => t.has('watch'));
  const publishing = registry.all().filter((t) => t.has('publish'));
  const persons = directory.all();

  for (const trunk of watching) {
    let n = 0;
    for (const person of persons) {
      if (!trunk.carries(person)) continue;
      const target: UpstreamTarget = {
        trunk: trunk.name,
        personId: person.id,
        uri: trunk.userUri(person),
        event: trunk.traits.watchEvent,
        accept: trunk.traits.watchAccept,
        expires: trunk.config.watch.expires,
        fromUri,
        destination: () => trunk.destination(),
        transport: trunk.nextHop.protocol,
        ratePerSec: trunk.config.watch.ratePerSec,
        // An outbound proxy that does not Record-Route still has to carry the in-dialog refreshes.
        ...(trunk.config.outboundProxy !== undefined ? { stickyDestination: true } : {}),
        ...(trunk.credentials !== undefined ? { credentials: trunk.credentials } : {}),
      };
      watcher.add(target);
      n++;
    }
    logger.info({ trunk: trunk.name, users: n, event: trunk.traits.watchEvent }, 'watching users at trunk');
  }

  // Publishing: what Teams says about each carried person, re-sent when it changes.
  const published = new Map<string, string>();
  const publishTargets = new Map<string, PublishTarget[]>();
  for (const trunk of publishing) {
    for (const person of persons) {
      if (!trunk.carries(person)) continue;
      const target: PublishTarget = {
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
      const list = publishTargets.get(person.id);
      if (list === undefined) publishTargets.set(person.id, [target]);
      else list.push(target);
    }
  }
  const publishPerson = (person: Pick<Person, 'id'>): void => {
    const targets = publishTargets.get(person.id);
    if (targets === undefined) return;
    const part = store.teamsPart(person.id);
    const key = publishKey(part);
    if (published.get(person.id) === key) return;
    published.set(person.id, key);
    for (const target of targets) publisher.publish(target, part);
  };
  for (const person of persons) publishPerson(person);
  const unsubscribeStore = publishTargets.size > 0 ? store.onChange((personId) => publishPerson({ id: personId })) : () => undefined;

  // A trunk that comes back (OPTIONS answered again, e.g. after a restart) may have lost our
  // subscriptions and publications: refresh them all (a 481 or 412 makes new ones).
  const wasReachable = new Map<string, boolean | undefined>();
  const unsubscribeStatus = registry.onStatus((s) => {
    const before = wasReachable.get(s.name);
    wasReachable.set(s.name, s.reachable);
    if (before === false && s.reachable === true) {
      logger.info({ trunk: s.name }, 'trunk reachable again: refreshing subscriptions and publications');
      const t = registry.get(s.name);
      if (t?.has('watch') === true) watcher.refreshAll(s.name);
      if (t?.has('publish') === true) publisher.refreshAll(s.name);
    }
  });

  return {
    watcher,
    publisher,
    async close() {
      unsubscribeStore();
      unsubscribeStatus();
      await Promise.all([watcher.close(true), publisher.close()]);
    },
  };
}
