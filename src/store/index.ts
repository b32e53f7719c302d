/**
 * Persistence: `openStore` picks the implementation from the config
 * (SQLite file by default, memory for ":memory:", Redis with store.redis).
 */
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { MemoryStore } from './memory-store.js';
import type { RedisStoreConfig } from './redis/connection.js';
import { RedisStore } from './redis/redis-store.js';
import { SqliteStore } from './sqlite-store.js';
import { StoreError, type GatewayStore } from './store.js';
import { redactRedisUrl } from './redis/connection.js';

export * from './records.js';
export * from './store.js';
export { MemoryStore } from './memory-store.js';
export { SqliteStore, type SqliteStoreOptions } from './sqlite-store.js';
export { RedisStore, type RedisStoreOptions } from './redis/redis-store.js';
export { connectRedis, redactRedisUrl, redisHealth, type RedisHealth, type RedisStoreConfig, type RedisTlsConfig } from './redis/connection.js';
export { graphSubscriptionState, graphTokenCacheState, type GraphSubscriptionState, type GraphTokenCacheState } from './graph-state.js';
export { notificationKeyState, savedPresenceState, type NotificationKeyState, type SavedPresenceState } from './graph-writer-state.js';
export { directoryCacheState, type DirectoryCacheState } from './directory-cache-state.js';
export { passwordRefusalState, type PasswordRefusalRecord, type PasswordRefusalState } from './password-refusals.js';
export { PHONE_FORWARDING_META_KEY, phoneForwardingState, type PhoneForwardingRecord, type PhoneForwardingState } from './phone-forwarding.js';
export { SCHEMA_VERSION } from './schema.js';
export { describeStoreError } from './sqlite-errors.js';

export interface OpenStoreOptions {
  /** From resolveStorePath(config.store, config.stateDir). */
  path: string;
  flushMs: number;
  logger: Logger;
  clock?: Clock;
  /** config.store.redis: when set, the shared Redis store instead of SQLite (path is then unused). */
  redis?: RedisStoreConfig | undefined;
  /** This node (resolveNodeId(config.cluster)); needed with redis. */
  nodeId?: string;
}

/**
 * Open the gateway's store. Async so a networked store can join the same
 * call later; throws StoreError (message names the file and the fix).
 */
export async function openStore(options: OpenStoreOptions): Promise<GatewayStore> {
  if (options.redis !== undefined) {
    if (options.nodeId === undefined) throw new StoreError('openStore: store.redis needs the node id (resolveNodeId(config.cluster))', redactRedisUrl(options.redis.url), 'NO_NODE_ID');
    const store = await RedisStore.open({
      config: options.redis,
      nodeId: options.nodeId,
      flushMs: options.flushMs,
      logger: options.logger,
      ...(options.clock !== undefined ? { clock: options.clock } : {}),
    });
    options.logger.info({ path: store.path, nodeId: store.nodeId, flushMs: options.flushMs }, 'store opened');
    return store;
  }
  if (options.path === ':memory:') return new MemoryStore();
  const store = SqliteStore.open(options);
  options.logger.info({ path: store.path, flushMs: options.flushMs }, 'store opened');
  return store;
}
