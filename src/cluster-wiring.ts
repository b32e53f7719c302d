/**
 * Several gateway nodes as one service (part of the composition root): joins
 * this node's hub, notifier and publication compositor to the Cluster
 * (src/store/cluster.ts). It only connects:
 *
 *  - every local input of the hub goes on the bus and into the shared person
 *    state; every other node's input is applied to this hub (which does not
 *    emit it again);
 *  - at start the shared person state is applied before SIP is served;
 *  - a dead node's watcher subscriptions and publications are claimed (one
 *    survivor gets them), restored into the notifier and the compositor, and
 *    its publish source is dropped from every hub;
 *  - a refresh or a PUBLISH for a subscription or entity-tag another node
 *    holds is claimed from the store, and the old owner told to let it go;
 *  - the node's heartbeat says how many subscriptions it owns;
 *  - what this node wrote while the store was unreachable is published again
 *    when it is back (the bus loses messages sent while it is down);
 *  - and, when it is back, what the others took over meanwhile (this node's
 *    heartbeat had expired) is let go here: one node notifies each watcher.
 */
import { resolveNodeId } from './config/cluster.js';
import type { GatewayConfig } from './config/schema.js';
import { inputSlot, type HubInput } from './core/hub-input.js';
import { publishSourceOf } from './core/publish-source.js';
import type { Cluster } from './store/cluster.js';
import type { PublicationRecord, WatcherSubscriptionRecord } from './store/records.js';
import { createRedisCluster } from './store/redis/cluster.js';
import { connectRedis } from './store/redis/connection.js';
import { RedisStore } from './store/redis/redis-store.js';
import { singleNodeCluster } from './store/single-node.js';
import type { GatewayStore } from './store/store.js';
import type { Logger } from './util/logger.js';

/** What the wiring needs of the PresenceHub. */
export interface ClusterHub {
  onInput(listener: (input: HubInput) => void): () => void;
  apply(input: HubInput): void;
  dropSource(source: string): void;
}

/** What the wiring needs of the notifier (watcher subscriptions). */
export interface ClusterNotifier {
  readonly size: number;
  /** The ids of the subscriptions held here. */
  ids(): Iterable<string>;
  /** Put claimed subscriptions into the running notifier (a NOTIFY with the current state each). */
  restoreClaimed(records: readonly WatcherSubscriptionRecord[]): { restored: number; dropped: number };
  /** Another node took the subscription over: drop it without a NOTIFY. */
  release(id: string): void;
}

/** What the wiring needs of the PUBLISH compositor. */
export interface ClusterPublications {
  /** The entity-tags of the publications held here. */
  etags(): Iterable<string>;
  adopt(records: readonly PublicationRecord[]): { restored: number; dropped: number };
  release(etag: string): void;
}

/** What the SIMPLE server is built with to be one node of several (its `cluster` option). */
export interface ClusterSimpleOptions {
  publishSource: string;
  /** A publication this node does not hold, claimed from the store; its old owner is told. */
  resolvePublication: (etag: string) => Promise<PublicationRecord | undefined>;
  /** A watcher subscription this node does not hold (by our To tag), claimed from the store; its old owner is told. */
  resolveSubscription: (id: string) => Promise<WatcherSubscriptionRecord | undefined>;
}

export interface ClusterHubParts {
  cluster: Cluster;
  hub: ClusterHub;
  /** How often the heartbeat's counts are refreshed (default 1000 ms). */
  reportMs?: number;
  /**
   * After the store is back, ownership is checked again this much later (default 7000 ms: the
   * node TTL and two heartbeats): a survivor may claim this node just after it reconnected.
   */
  recheckMs?: number;
  logger: Logger;
}

export interface ClusterSimpleParts {
  notifier: ClusterNotifier;
  publications: ClusterPublications;
  /** This node's SIP listeners and HTTP origin, for the heartbeat (diagnostics page). */
  sip?: string[];
  http?: string;
}

export interface ClusterWiring {
  /** Apply the shared person state (before SIP is served); bus inputs arriving meanwhile are applied after it. */
  load(): Promise<number>;
  /** For the SIMPLE server's construction; undefined on a single node (nothing is owned elsewhere). */
  simpleOptions(): ClusterSimpleOptions | undefined;
  /** Connect the notifier and the compositor (after they are built and restored). */
  attach(simple: ClusterSimpleParts): void;
  close(): void;
}

/**
 * The hub side at once (then load() before SIP is served), the SIMPLE side when built (attach).
 */
export function wireCluster(parts: ClusterHubParts): ClusterWiring {
  const { cluster, hub, logger } = parts;
  let simple: ClusterSimpleParts | undefined;
  const log = logger.child({ component: 'cluster', nodeId: cluster.nodeId });
  const nodeId = cluster.nodeId;
  const closers: Array<() => void> = [];
  /** Inputs from the bus while the shared state loads: applied after it, in order. */
  let pending: HubInput[] | undefined = [];
  /** The latest input of each slot written while the store was unreachable, by person and slot. */
  const unsent = new Map<string, HubInput>();

  // every local input: to the others and into the shared state
  closers.push(
    hub.onInput((input) => {
      cluster.bus.publish({ type: 'input', from: nodeId, input });
      cluster.personState?.save(input);
      const slot = `${'personId' in input ? input.personId : ''}\n${inputSlot(input)}`;
      // the latest of a slot only: one sent while connected makes an older unsent one stale
      if (!cluster.connected()) unsent.set(slot, input);
      else if (unsent.size > 0) unsent.delete(slot);
    }),
  );
  closers.push(
    cluster.bus.onMessage((message) => {
      if (message.from === nodeId) return;
      if (message.type === 'input') {
        if (pending !== undefined) pending.push(message.input);
        else hub.apply(message.input);
      } else if (message.to !== nodeId) {
        // moved to another node: this one (the old owner, if it still holds it) lets it go without a NOTIFY
        if (message.what === 'subscription') simple?.notifier.release(message.id);
        else simple?.publications.release(message.id);
      }
    }),
  );
  // the bus lost what was published while the store was down: send the latest of each slot again
  closers.push(
    cluster.onConnected((up) => {
      if (!up || unsent.size === 0) return;
      log.info({ inputs: unsent.size }, 'inputs made while the shared store was unreachable published again');
      for (const input of unsent.values()) {
        cluster.bus.publish({ type: 'input', from: nodeId, input });
        cluster.personState?.save(input);
      }
      unsent.clear();
    }),
  );
  // back after an outage: let go what another node took over meanwhile (now, and once more a TTL later)
  let recheck: NodeJS.Timeout | undefined;
  closers.push(
    cluster.onConnected((up) => {
      if (!up) return;
      void reconcile();
      if (recheck !== undefined) clearTimeout(recheck);
      recheck = setTimeout(() => {
        recheck = undefined;
        void reconcile();
      }, parts.recheckMs ?? 7000);
      recheck.unref();
    }),
  );
  closers.push(() => {
    if (recheck !== undefined) clearTimeout(recheck);
  });
  const reconcile = async (): Promise<void> => {
    const ownership = cluster.ownership;
    const s = simple;
    if (ownership === undefined || s === undefined) return;
    try {
      const subs = await ownership.ownedElsewhere('subscription', [...s.notifier.ids()]);
      for (const id of subs) s.notifier.release(id);
      const pubs = await ownership.ownedElsewhere('publication', [...s.publications.etags()]);
      for (const etag of pubs) s.publications.release(etag);
      if (subs.length > 0 || pubs.length > 0) log.warn({ subscriptions: subs.length, publications: pubs.length }, 'let go what another node took over while the shared store was unreachable');
    } catch (err) {
      log.warn({ err }, 'checking ownership after the shared store came back failed');
    }
  };
  // a dead node's publish source goes on every node
  closers.push(
    cluster.membership.onNodeDown((dead) => {
      void takeOver(dead);
    }),
  );

  /** Nodes reported dead before the SIP side was attached: claimed at attach (this node may be the only one left). */
  const deadBeforeAttach = new Set<string>();
  const takeOver = async (dead: string): Promise<void> => {
    const ownership = cluster.ownership;
    if (simple === undefined && ownership !== undefined) {
      deadBeforeAttach.add(dead);
      return;
    }
    try {
      const s = simple;
      if (ownership !== undefined && s !== undefined) {
        const claimed = await ownership.claimNode(dead);
        if (claimed.subscriptions.length > 0 || claimed.publications.length > 0) {
          // adopted before the dead node's source goes, so watchers see no gap
          const pubs = s.publications.adopt(claimed.publications);
          const subs = s.notifier.restoreClaimed(claimed.subscriptions);
          log.info({ dead, subscriptions: subs, publications: pubs }, 'took over a dead node');
        }
      }
    } catch (err) {
      log.error({ err, dead }, 'taking over a dead node failed');
    } finally {
      hub.dropSource(publishSourceOf(dead));
    }
  };

  let report: NodeJS.Timeout | undefined;
  // the leases held are told by the leases themselves
  const sayLocal = (): void => cluster.membership.setLocal({ subscriptions: simple?.notifier.size ?? 0 });

  return {
    async load() {
      let loaded = 0;
      try {
        const inputs = (await cluster.personState?.loadInputs()) ?? [];
        for (const input of inputs) hub.apply(input);
        loaded = inputs.length;
      } finally {
        const queued = pending ?? [];
        pending = undefined;
        for (const input of queued) hub.apply(input);
      }
      log.info({ inputs: loaded }, 'shared person state applied');
      return loaded;
    },
    simpleOptions() {
      const ownership = cluster.ownership;
      if (ownership === undefined) return undefined;
      return {
        publishSource: publishSourceOf(nodeId),
        async resolveSubscription(id) {
          const record = await ownership.claimSubscription(id);
          if (record !== undefined) cluster.bus.publish({ type: 'moved', from: nodeId, what: 'subscription', id, to: nodeId });
          return record;
        },
        async resolvePublication(etag) {
          const record = await ownership.claimPublication(etag);
          if (record !== undefined) cluster.bus.publish({ type: 'moved', from: nodeId, what: 'publication', id: etag, to: nodeId });
          return record;
        },
      };
    },
    attach(given) {
      simple = given;
      cluster.membership.setLocal({
        ...(given.sip !== undefined ? { sip: given.sip } : {}),
        ...(given.http !== undefined ? { http: given.http } : {}),
      });
      sayLocal();
      for (const dead of deadBeforeAttach) void takeOver(dead);
      deadBeforeAttach.clear();
      report = setInterval(sayLocal, parts.reportMs ?? 1000);
      report.unref();
    },
    close() {
      if (report !== undefined) clearInterval(report);
      for (const c of closers.splice(0)) c();
    },
  };
}

/**
 * The service this node is part of: with store.redis, the nodes sharing that
 * Redis (membership, leases and bus on connections of their own; ownership
 * and the shared person state from the Redis store); else this node alone.
 */
export async function openCluster(config: GatewayConfig, store: GatewayStore, logger: Logger): Promise<Cluster> {
  const nodeId = resolveNodeId(config.cluster);
  const redis = config.store.redis;
  if (redis === undefined) return singleNodeCluster(nodeId);
  if (!(store instanceof RedisStore)) throw new Error('store.redis is set but the store opened is not the Redis store');
  return createRedisCluster({
    nodeId,
    connect: (name) => connectRedis(redis, logger, name),
    keys: redis.keyPrefix,
    heartbeatMs: config.cluster.heartbeatMs,
    nodeTtlMs: config.cluster.nodeTtlMs,
    leaseTtlMs: config.cluster.leaseTtlMs,
    logger,
    ownership: store.ownership,
    personState: store.personState,
    local: { sip: config.sip.listen.map((l) => `${l.transport} ${l.address}:${l.port}`) },
  });
}
