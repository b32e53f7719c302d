/**
 * The Cluster of several gateway nodes on one Redis: membership, leases and
 * the change bus (./membership.ts, ./leases.ts, ./bus.ts) on two connections
 * from the caller's factory: "cluster" (heartbeats, leases, PUBLISH) and
 * "bus" (SUBSCRIBE only). Ownership and the shared person state come from the
 * RedisStore and are passed through. The connections must not use ioredis'
 * keyPrefix: the keys (./keys.ts) carry the prefix themselves.
 *
 * connected() is true while both connections are up and the heartbeats get
 * answers (a connection that is open but unanswered, as in a partition,
 * counts as down).
 */
import type { Redis } from 'ioredis';
import { systemClock, type Clock } from '../../util/clock.js';
import type { Logger } from '../../util/logger.js';
import type { Cluster, NodeInfo, Ownership, SharedPersonState } from '../cluster.js';
import { RedisBus } from './bus.js';
import { keyLayout, type KeyLayout } from './keys.js';
import { RedisLeases } from './leases.js';
import { RedisMembership } from './membership.js';

export interface RedisClusterOptions {
  nodeId: string;
  /** A new connection to the shared Redis, named for the logs (connectRedis in the wiring). */
  connect: (name: string) => Redis;
  /** store.redis.keyPrefix; or the layout itself. */
  keys?: KeyLayout | string;
  heartbeatMs: number;
  nodeTtlMs: number;
  leaseTtlMs: number;
  logger: Logger;
  ownership: Ownership | undefined;
  personState: SharedPersonState | undefined;
  /** What this node says of itself (diagnostics page). */
  local?: Partial<Pick<NodeInfo, 'subscriptions' | 'sip' | 'http'>>;
  clock?: Clock;
  monotonic?: () => number;
  /** How long createRedisCluster waits for Redis before it goes on disconnected (default nodeTtlMs). */
  connectTimeoutMs?: number;
}

export interface RedisCluster extends Cluster {
  readonly membership: RedisMembership;
  readonly leases: RedisLeases;
  readonly bus: RedisBus;
}

export async function createRedisCluster(options: RedisClusterOptions): Promise<RedisCluster> {
  const logger = options.logger.child({ component: 'cluster', nodeId: options.nodeId });
  const clock = options.clock ?? systemClock;
  const keys = typeof options.keys === 'object' ? options.keys : keyLayout(options.keys);
  const client = options.connect('cluster');
  const subscriber = options.connect('bus');
  await Promise.all([whenReady(client, options.connectTimeoutMs ?? options.nodeTtlMs), whenReady(subscriber, options.connectTimeoutMs ?? options.nodeTtlMs)]);

  const membership = new RedisMembership({
    client,
    keys,
    nodeId: options.nodeId,
    heartbeatMs: options.heartbeatMs,
    nodeTtlMs: options.nodeTtlMs,
    logger: options.logger,
    clock,
    ...(options.local !== undefined ? { local: options.local } : {}),
  });
  const leases = new RedisLeases({
    client,
    keys,
    nodeId: options.nodeId,
    leaseTtlMs: options.leaseTtlMs,
    logger: options.logger,
    clock,
    ...(options.monotonic !== undefined ? { monotonic: options.monotonic } : {}),
    onHeldChange: (jobs) => membership.setLocal({ leases: jobs }),
  });
  const bus = new RedisBus({ client, subscriber, keys, nodeId: options.nodeId, logger: options.logger, reachability: membership });

  const connectedListeners = new Set<(connected: boolean) => void>();
  const isConnected = (): boolean => client.status === 'ready' && subscriber.status === 'ready' && membership.reachable();
  let last = false;
  const check = (): void => {
    const now = isConnected();
    if (now === last) return;
    last = now;
    logger[now ? 'info' : 'warn']({ connected: now }, now ? 'Redis reachable' : 'Redis unreachable');
    for (const l of connectedListeners) {
      try {
        l(now);
      } catch (err) {
        logger.error({ err: String(err) }, 'onConnected listener threw');
      }
    }
  };
  const events = ['ready', 'close', 'end', 'reconnecting'] as const;
  for (const c of [client, subscriber]) for (const e of events) c.on(e, check);
  const offReachable = membership.onReachable(check);

  await Promise.all([membership.start(), bus.start()]);
  logger.info({ connected: isConnected(), heartbeatMs: options.heartbeatMs, nodeTtlMs: options.nodeTtlMs, leaseTtlMs: options.leaseTtlMs }, 'cluster joined');

  let closing: Promise<void> | undefined;
  return {
    nodeId: options.nodeId,
    membership,
    leases,
    bus,
    ownership: options.ownership,
    personState: options.personState,
    connected: isConnected,
    onConnected(listener) {
      connectedListeners.add(listener);
      return () => connectedListeners.delete(listener);
    },
    close() {
      closing ??= (async () => {
        await leases.close();
        await membership.stop();
        await bus.close();
        for (const c of [client, subscriber]) for (const e of events) c.off(e, check);
        offReachable();
        await Promise.all([quit(client), quit(subscriber)]);
        logger.info('cluster left');
      })();
      return closing;
    },
  };
}

/** Resolve when `client` is ready or after `ms` (the cluster then starts disconnected and catches up on reconnect). */
function whenReady(client: Redis, ms: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      client.off('ready', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    timer.unref();
    client.once('ready', done);
  });
}

async function quit(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  try {
    if (client.status !== 'ready') throw new Error('not connected');
    await client.quit();
  } catch {
    client.disconnect();
  }
}
