/**
 * The `store:` section: where the gateway keeps state between runs (SQLite),
 * or `redis:` for several nodes sharing one Redis (src/store/redis).
 * Mounted by the main schema as `store: storeConfigSchema`.
 */
import { resolve } from 'node:path';
import { z } from 'zod';

/** The value that keeps state in memory only (tests; nothing survives a restart). */
export const MEMORY_STORE_PATH = ':memory:';

const pemFile = (what: string) => z.string().min(1, `a PEM file of ${what}`).optional();

/** `store.redis`: present, the state is in this Redis instead of SQLite (output: RedisStoreConfig). */
export const redisStoreConfigSchema = z.strictObject({
  /** redis://[user:password@]host:6379/0, rediss:// for TLS. */
  url: z
    .string({ message: 'a Redis URL like redis://127.0.0.1:6379/0 (rediss:// for TLS)' })
    .regex(/^rediss?:\/\/[^\s/]+(\/\d+)?\/?$/, 'a Redis URL like redis://127.0.0.1:6379/0 (rediss:// for TLS; user:password@ before the host)'),
  /** Win over the URL's (Redis 6 ACL user; password e.g. from ${REDIS_PASSWORD}). */
  username: z.string().min(1, 'a Redis ACL user name, or leave it out').optional(),
  password: z.string().min(1, 'the Redis password, e.g. ${REDIS_PASSWORD}, or leave it out').optional(),
  /** Present: TLS (also with redis://). */
  tls: z
    .strictObject({
      caPath: pemFile('the CAs to trust (default: the system CAs)'),
      certPath: pemFile('the client certificate'),
      keyPath: pemFile('the client certificate\'s private key'),
      rejectUnauthorized: z.boolean({ message: 'true or false (default true: check the server certificate)' }).default(true),
    })
    .superRefine((t, ctx) => {
      if ((t.certPath === undefined) !== (t.keyPath === undefined)) {
        const missing = t.certPath === undefined ? 'certPath' : 'keyPath';
        ctx.addIssue({ code: 'custom', path: [missing], message: 'a client certificate needs both certPath and keyPath; set the other one or remove both' });
      }
    })
    .optional(),
  /** Prefix of every key; several services may share a Redis under other prefixes. */
  keyPrefix: z
    .string()
    .regex(/^[A-Za-z0-9._:-]{0,64}$/, 'letters, digits, dot, dash, underscore or colon, e.g. "pg:" (no glob characters)')
    .default('pg:'),
});

export const storeConfigSchema = z
  .strictObject({
    /**
     * The SQLite file (created 0600 with its directory). Default: <stateDir>/gateway.db.
     * ":memory:" keeps state in memory only.
     */
    path: z
      .string()
      .min(1, 'a file path for the SQLite store, e.g. /var/lib/presence-gateway/gateway.db (or ":memory:")')
      .refine((p) => !p.endsWith('/') && !p.endsWith('\\'), { message: 'a file path, not a directory (e.g. data/gateway.db)' })
      .optional(),
    /** Writes are batched into one transaction this often; a crash loses at most this much. */
    flushMs: z
      .number({ message: 'a number of milliseconds from 1 to 10000 (default 50)' })
      .int('a whole number of milliseconds from 1 to 10000 (default 50)')
      .min(1, 'a number of milliseconds from 1 to 10000 (default 50)')
      .max(10_000, 'a number of milliseconds from 1 to 10000 (default 50)')
      .default(50),
    /** Several nodes sharing one Redis instead of a SQLite file (store.path must then be left out). */
    redis: redisStoreConfigSchema.optional(),
  })
  .superRefine((s, ctx) => {
    if (s.path !== undefined && s.redis !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['redis'],
        message: 'store.path (SQLite) and store.redis are both set: the state is kept in one of them; remove store.path to use Redis, or store.redis to use the file',
      });
    }
  })
  .prefault({});

export type StoreConfig = z.output<typeof storeConfigSchema>;

/** The file the store opens: the configured path, or gateway.db in the state directory; ":memory:" as is. */
export function resolveStorePath(store: StoreConfig, stateDir: string): string {
  if (store.path === MEMORY_STORE_PATH) return MEMORY_STORE_PATH;
  return resolve(store.path ?? resolve(stateDir, 'gateway.db'));
}
