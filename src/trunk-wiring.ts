/**
 * Composition of the trunk side (part of the composition root): the trunk
 * registry with its OPTIONS pings, access control for inbound requests, the
 * upstream watcher (SUBSCRIBE at the PBX per carried person, into core's
 * telephony state) and the upstream publisher (Teams presence PUBLISHed to
 * presence servers). SIP and core meet here only through the PresenceHub.
 */
import type { GatewayConfig } from './config/schema.js';
import { effectiveAccessMode } from './trunks/config.js';
import type { Directory } from './core/directory.js';
import type { PresenceHub } from './core/presence-hub.js';
import type { AccessVerdict, TrunkTraits } from './simple/simple-server.js';
import type { InboundRequest, RequestSender } from './simple/stack-port.js';
import type { Endpoint } from './sip/message.js';
import type { TlsClientOptions } from './sip/stack.js';
import { TrunkTlsClients, trunkTlsPems } from './trunks/tls-client.js';
import { itemNoter, publishTarget, refreshWhenBack, TeamsPublishing, trunkFeeder, watchTarget } from './simple/upstream-policy.js';
import type { PackageRegistry } from './simple/package-registry.js';
import { UpstreamPublisher, type UpstreamPublicationSnapshot } from './simple/upstream-publisher.js';
import { UpstreamWatcher, type UpstreamSubscriptionSnapshot } from './simple/upstream-watcher.js';
import { AccessControl } from './trunks/access.js';
import { TrunkRegistry } from './trunks/registry.js';
import type { Trunk, TrunkStatus } from './trunks/trunk.js';
import type { SecurityLog } from './sip/security-log.js';
import { CidrSet } from './trunks/cidr.js';
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
  /**
   * Stop: publications removed and upstream subscriptions ended, unless persistence took them over
   * first (persistence-wiring.ts keepUpstream: they are then reused at the next start).
   */
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

/** The stack as the trunk side uses it: requests, and TLS client options per destination (SipStack fits). */
export interface TrunkStack extends RequestSender {
  setTlsClientOptions?(destination: string, options: TlsClientOptions | undefined): void;
  /** connection hygiene: a request on this connection was let in */
  trustConnection?(connectionId: string): void;
  /** connection hygiene: sources exempt from the per-source cap and stranger rules */
  setConnectionExempt?(exempt: (address: string) => boolean): void;
  setRateLimitExemption?(exempt: ((source: Endpoint) => boolean) | undefined): void;
}

/** The registry and access control: built before the SIMPLE server, which asks them about every request. */
export function createTrunkSide(
  config: GatewayConfig,
  stack: TrunkStack,
  logger: Logger,
  wheel: TimerWheel,
  security?: SecurityLog,
): TrunkSide {
  const trunkLogger = logger.child({ component: 'trunks' });
  const tls = new TrunkTlsClients(trunkTlsPems(config.trunks), stack, trunkLogger);
  const registry = new TrunkRegistry({
    trunks: config.trunks,
    sender: stack,
    fromUri: gatewayIdentity(config),
    logger: trunkLogger,
    wheel,
    onTlsTarget: (endpoint, settings) => tls.target(endpoint, settings),
    probeTls: (endpoint) => tls.probe(endpoint),
  });
  const mode = effectiveAccessMode(config.sip.access, config.trunks);
  const access = new AccessControl({
    registry,
    config: config.sip.access,
    mode,
    defaultRealm: config.sip.domain,
    logger: logger.child({ component: 'access' }),
    ...(security !== undefined ? { security } : {}),
  });
  // trunks and trusted networks may hold many connections and idle on them
  const trusted = new CidrSet(config.sip.access.trusted);
  stack.setConnectionExempt?.((address) => trusted.has(address) || registry.fromSource({ protocol: 'tcp', address, port: 0 }) !== undefined);
  // Open access on loopback only (the demo, tests) is harmless; on a reachable address it is worth a warning.
  const loopbackOnly = config.sip.listen.every((l) => l.address.startsWith('127.') || l.address === '::1');
  if (mode === 'open' && !loopbackOnly) {
    logger.warn('sip.access is open: requests are accepted from any address (set sip.access.mode: restricted)');
  }
  stack.setRateLimitExemption?.((source) => access.exemptFromRateLimit(source));
  const traits = new Map<Trunk, TrunkTraits>();
  return {
    registry,
    access,
    verdict(req) {
      const d = access.check(req);
      if (!d.allow) return d.delayMs !== undefined ? { allow: false, response: d.response, delayMs: d.delayMs } : { allow: false, response: d.response };
      // OPTIONS, ACK and CANCEL pass unchallenged, so they make no one trusted
      const m = req.request.method;
      if (req.connectionId !== undefined && m !== 'OPTIONS' && m !== 'ACK' && m !== 'CANCEL') stack.trustConnection?.(req.connectionId);
      if (d.trunk === undefined) {
        if (access.isAdmin(d.username)) return { allow: true, privileged: 'admin' };
        return access.isTrusted(req.source.address) ? { allow: true, privileged: 'trusted' } : { allow: true };
      }
      let t = traits.get(d.trunk);
      if (t === undefined) traits.set(d.trunk, (t = traitsOf(d.trunk)));
      return { allow: true, trunk: t };
    },
    statuses: () => registry.statuses(),
  };
}

export interface UpstreamOptions {
  config: GatewayConfig;
  sender: RequestSender;
  trunks: TrunkSide;
  directory: Directory;
  store: PresenceHub;
  wheel: TimerWheel;
  logger: Logger;
  /** The event packages (the SIMPLE server's): upstream NOTIFY bodies are read by them. */
  packages: PackageRegistry;
}

/** Dialogs and entity-tags an earlier run left at the trunks (persistence-wiring.ts). */
export interface SavedUpstream {
  subscriptions: Iterable<UpstreamSubscriptionSnapshot>;
  publications: Iterable<UpstreamPublicationSnapshot>;
}

export interface UpstreamRestoreCounts {
  subscriptions: { restored: number; dropped: number };
  publications: { restored: number; dropped: number };
}

/** The upstream side built, not started: the SIMPLE server takes its watcher before anything is sent. */
export interface BuiltUpstream extends UpstreamSide {
  /**
   * Start watching and publishing on every trunk configured for it, the saved
   * dialogs and entity-tags given back to their targets in the same call (the
   * watcher's restore must follow its add()s in the same turn). Call once.
   */
  start(saved?: SavedUpstream): UpstreamRestoreCounts;
  /** The trunks that watch or publish: one job each (JOBS.trunk), in configuration order. */
  readonly trunks: readonly string[];
  /**
   * What every node does, whichever holds the trunks' jobs: core expects the
   * watched trunks' line state (unknown is not idle), and a trunk coming back
   * refreshes what runs here. Once; start() and startTrunk() do it too.
   */
  open(): void;
  /**
   * Start one trunk's job: its SUBSCRIBEs and PUBLISHes, reusing the saved
   * dialogs and entity-tags of that trunk (an upstream dialog saved by
   * another node is refreshed in that dialog). Again after stopTrunk.
   */
  startTrunk(trunk: string, saved?: SavedUpstream): UpstreamRestoreCounts;
  /** Stop one trunk's job ending nothing there: dialogs and publications stay for the next holder. */
  stopTrunk(trunk: string): void;
}

/** Build the upstream watcher and publisher over the trunk side (nothing is sent before start() or startTrunk()). */
export function createUpstream(options: UpstreamOptions): BuiltUpstream {
  const { config, sender, trunks, directory, store, wheel } = options;
  const logger = options.logger.child({ component: 'upstream' });
  const registry = trunks.registry;
  const onAuth = (trunk: string, ok: boolean) => registry.get(trunk)?.noteAuth(ok);
  const watcher = new UpstreamWatcher({ sender, wheel, sink: store, packages: options.packages, logger, onItem: itemNoter(registry, store, 'subscription'), onAuth });
  const publisher = new UpstreamPublisher({ sender, wheel, logger, onItem: itemNoter(registry, store, 'publication'), onAuth });
  const publishing = new TeamsPublishing(store, publisher);
  const detach: (() => void)[] = [];
  const fromUri = gatewayIdentity(config);
  const names = registry
    .all()
    .filter((t) => t.has('watch') || t.has('publish'))
    .map((t) => t.name);
  const live = new Set<string>();
  let attached = false;
  let startedAll = false;
  let closed = false;
  const none = (): UpstreamRestoreCounts => ({ subscriptions: { restored: 0, dropped: 0 }, publications: { restored: 0, dropped: 0 } });
  const ofTrunk = <R extends { trunk: string }>(records: Iterable<R> | undefined, trunk: string): R[] => [...(records ?? [])].filter((r) => r.trunk === trunk);
  /** Whether startTrunk(name) adds watch targets (its saved dialogs are restored into them). */
  const watches = (name: string): boolean => {
    const t = registry.get(name);
    return t !== undefined && t.has('watch') && directory.all().some((p) => t.carries(p));
  };

  // What every node does, whichever holds the trunks: core expects their line state, a trunk back refreshes what runs here.
  const attach = (): void => {
    if (attached || closed) return;
    attached = true;
    for (const trunk of registry.all().filter((t) => t.has('watch'))) {
      for (const person of directory.all()) if (trunk.carries(person)) store.expectTelephony(person.id, trunkFeeder(trunk.name));
    }
    if (registry.all().some((t) => t.has('publish'))) detach.push(store.onChange((personId) => publishing.changed(personId)));
    detach.push(refreshWhenBack(registry, store, { watcher, publisher }, logger));
  };

  const startTrunk = (name: string, saved?: SavedUpstream): UpstreamRestoreCounts => {
    const trunk = registry.get(name);
    if (closed || trunk === undefined || live.has(name)) return none();
    attach();
    live.add(name);
    const persons = directory.all().filter((p) => trunk.carries(p));
    if (trunk.has('watch')) {
      for (const person of persons) watcher.add(watchTarget(trunk, person, fromUri));
      logger.info({ trunk: trunk.name, users: persons.length, event: trunk.traits.watchEvent }, 'watching users at trunk');
    }
    if (trunk.has('publish')) {
      for (const person of persons) publishing.add(publishTarget(trunk, person, fromUri));
      for (const person of persons) publishing.changed(person.id);
    }
    return {
      // the watcher's restore follows its add()s in the same turn; with nothing added there is nothing to restore into
      subscriptions: watches(name) ? watcher.restore(ofTrunk(saved?.subscriptions, name)) : { restored: 0, dropped: 0 },
      publications: publisher.restore(ofTrunk(saved?.publications, name)),
    };
  };

  return {
    watcher,
    publisher,
    trunks: names,
    open: attach,
    start(saved) {
      if (startedAll) throw new Error('upstream already started');
      startedAll = true;
      attach();
      const counts = none();
      // what no trunk takes (a trunk gone from the config, nobody carried) is dropped, and removed from the store
      const watched = new Set(names.filter(watches));
      const subs = [...(saved?.subscriptions ?? [])];
      const pubs = [...(saved?.publications ?? [])];
      const left = { subscriptions: subs.filter((r) => !watched.has(r.trunk)), publications: pubs.filter((r) => !names.includes(r.trunk)) };
      for (const c of [...names.map((name) => startTrunk(name, saved)), { subscriptions: left.subscriptions.length > 0 ? watcher.restore(left.subscriptions) : { restored: 0, dropped: 0 }, publications: publisher.restore(left.publications) }]) {
        counts.subscriptions.restored += c.subscriptions.restored;
        counts.subscriptions.dropped += c.subscriptions.dropped;
        counts.publications.restored += c.publications.restored;
        counts.publications.dropped += c.publications.dropped;
      }
      return counts;
    },
    startTrunk,
    stopTrunk(name) {
      if (closed || !live.delete(name)) return;
      watcher.release(name);
      publisher.release(name);
      publishing.drop(name);
      logger.info({ trunk: name }, 'upstream of trunk stopped here; its dialogs and publications stay at the trunk');
    },
    async close() {
      closed = true;
      for (const d of detach.splice(0)) d();
      await Promise.all([watcher.close(true), publisher.close()]);
    },
  };
}

/** Build and start the upstream side with nothing saved (tests that need no persistence). */
export function startUpstream(options: UpstreamOptions): UpstreamSide {
  const upstream = createUpstream(options);
  upstream.start();
  return upstream;
}
