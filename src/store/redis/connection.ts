/**
 * One connection to the shared Redis (`store.redis`), as every Redis user of
 * the gateway opens it: the URL (redis:// or rediss://) with the username and
 * password fields winning over the URL's, TLS from PEM files read here (a
 * missing file stops the start, naming the config path and the file), and a
 * reconnect that never gives up (100 ms doubling to 2 s). The store's own
 * connection has no offline queue: a command while Redis is away fails at
 * once, and the store keeps the write queued itself (redis-store.ts).
 *
 * Logs name the connection and the URL without its password.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../../util/logger.js';
import { StoreError } from '../store.js';

export interface RedisTlsConfig {
  /** PEM file of the CAs to trust (default: the system's). */
  caPath?: string | undefined;
  /** Client certificate and key (PEM), when Redis asks for one. */
  certPath?: string | undefined;
  keyPath?: string | undefined;
  rejectUnauthorized: boolean;
}

/** `store.redis` (src/config/store.ts). */
export interface RedisStoreConfig {
  /** redis://[user:password@]host:port/db or rediss:// for TLS. */
  url: string;
  username?: string | undefined;
  password?: string | undefined;
  /** Present: TLS, even with a redis:// URL. */
  tls?: RedisTlsConfig | undefined;
  /** Prefix of every key (keys.ts), default "pg:". */
  keyPrefix: string;
}

/** Whether a connection is up now, for the cluster wiring and /readyz. */
export interface RedisHealth {
  connected(): boolean;
  /** Called on every change (true at connect, false at disconnect); returns the unsubscribe. */
  onChange(listener: (connected: boolean) => void): () => void;
}

export interface ConnectRedisOptions {
  /**
   * Queue commands while disconnected and send them on reconnect (ioredis'
   * offline queue). Default false: a command fails at once (the store queues
   * its writes itself); the bus subscriber may want true.
   */
  offlineQueue?: boolean;
}

/** The URL without its password (for logs, status and errors). */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    return u.toString();
  } catch {
    return '(not a URL)';
  }
}

/** The first reconnect after 100 ms, doubling to at most 2 s, for ever. */
export function reconnectDelay(attempt: number): number {
  return Math.min(100 * 2 ** Math.max(0, attempt - 1), 2000);
}

function readPem(configPath: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new StoreError(
      `store.redis.tls.${configPath}: cannot read ${file} (${code ?? String(error)}). Fix: point it at a readable PEM file, or remove it.`,
      file,
      code,
    );
  }
}

/** The ioredis options for `config` (throws StoreError for a bad URL or an unreadable TLS file). */
export function redisOptions(config: RedisStoreConfig, name: string, options: ConnectRedisOptions = {}): RedisOptions {
  let url: URL;
  try {
    url = new URL(config.url);
  } catch {
    throw new StoreError(`store.redis.url: "${redactRedisUrl(config.url)}" is not a URL. Fix: redis://host:6379/0 (rediss:// for TLS)`, config.url, 'BAD_URL');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new StoreError(`store.redis.url: ${url.protocol} is not redis: or rediss:. Fix: redis://host:6379/0 (rediss:// for TLS)`, redactRedisUrl(config.url), 'BAD_URL');
  }
  const dbText = url.pathname.replace(/^\//, '');
  const db = dbText === '' ? 0 : Number(dbText);
  if (!Number.isInteger(db) || db < 0) {
    throw new StoreError(`store.redis.url: database "${dbText}" is not a number. Fix: end the URL with /0 (or another database number)`, redactRedisUrl(config.url), 'BAD_URL');
  }
  const username = config.username ?? (url.username !== '' ? decodeURIComponent(url.username) : undefined);
  const password = config.password ?? (url.password !== '' ? decodeURIComponent(url.password) : undefined);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  let tls: ConnectionOptions | undefined;
  if (url.protocol === 'rediss:' || config.tls !== undefined) {
    const t = config.tls;
    tls = {
      servername: host,
      rejectUnauthorized: t?.rejectUnauthorized ?? true,
      ...(t?.caPath !== undefined ? { ca: readPem('caPath', t.caPath) } : {}),
      ...(t?.certPath !== undefined ? { cert: readPem('certPath', t.certPath) } : {}),
      ...(t?.keyPath !== undefined ? { key: readPem('keyPath', t.keyPath) } : {}),
    };
  }
  const offlineQueue = options.offlineQueue ?? false;
  return {
    host,
    port: url.port === '' ? 6379 : Number(url.port),
    db,
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(tls !== undefined ? { tls } : {}),
    connectionName: `presence-gateway:${name}`.replace(/\s/g, '_'),
    retryStrategy: reconnectDelay,
    enableOfflineQueue: offlineQueue,
    // without the offline queue, a command cut off by a disconnect fails at once rather than being sent again later
    maxRetriesPerRequest: offlineQueue ? null : 0,
    lazyConnect: false,
  };
}

/**
 * Open a connection (it connects in the background and reconnects for
 * ever). `name` tells the connections apart in logs ("store", "bus", ...).
 */
export function connectRedis(config: RedisStoreConfig, logger: Logger, name: string, options: ConnectRedisOptions = {}): Redis {
  const redis = new Redis(redisOptions(config, name, options));
  const url = redactRedisUrl(config.url);
  let up = false;
  let lastError: string | undefined;
  redis.on('ready', () => {
    up = true;
    lastError = undefined;
    logger.info({ redis: name, url }, 'redis connected');
  });
  redis.on('close', () => {
    if (!up) return;
    up = false;
    logger.warn({ redis: name, url }, 'redis disconnected; reconnecting');
  });
  redis.on('error', (error: Error) => {
    // one line per new error, not one per reconnect attempt
    if (error.message === lastError) return;
    lastError = error.message;
    logger.warn({ redis: name, url, err: error.message }, 'redis connection error');
  });
  return redis;
}

/** A RedisHealth following `redis`'s connection. */
export function redisHealth(redis: Redis): RedisHealth {
  const listeners = new Set<(connected: boolean) => void>();
  let up = redis.status === 'ready';
  const set = (next: boolean): void => {
    if (next === up) return;
    up = next;
    for (const l of [...listeners]) l(next);
  };
  redis.on('ready', () => set(true));
  redis.on('close', () => set(false));
  redis.on('end', () => set(false));
  return {
    connected: () => up,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
