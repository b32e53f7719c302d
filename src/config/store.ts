/**
 * The `store:` section: where the gateway keeps state between runs (SQLite).
 * Mounted by the main schema as `store: storeConfigSchema`.
 */
import { resolve } from 'node:path';
import { z } from 'zod';

/** The value that keeps state in memory only (tests; nothing survives a restart). */
export const MEMORY_STORE_PATH = ':memory:';

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
  })
  .prefault({});

export type StoreConfig = z.output<typeof storeConfigSchema>;

/** The file the store opens: the configured path, or gateway.db in the state directory; ":memory:" as is. */
export function resolveStorePath(store: StoreConfig, stateDir: string): string {
  if (store.path === MEMORY_STORE_PATH) return MEMORY_STORE_PATH;
  return resolve(store.path ?? resolve(stateDir, 'gateway.db'));
}
