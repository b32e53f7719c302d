/**
 * Writing one batch of queued records in one SQLite transaction. Shared by
 * the store's own connection (inline writer) and the write worker's
 * connection (src/store/write-worker.ts), so both write the same rows.
 *
 * A batch is a flat array of operations, four slots each (cheap to post to
 * a worker, no per-operation object):
 *   [table index, key, expires_at (ms or null), record (object) | null = delete]
 * The record is serialized here (in the worker, off the main thread).
 */
import type Database from 'better-sqlite3';

export type BatchOps = unknown[];
export const OP_SLOTS = 4;

/** A record that could not be serialized (not retried). */
export interface DroppedRecord {
  table: number;
  key: string;
  error: string;
}

export interface BatchOutcome {
  /** Rows written or deleted. */
  rows: number;
  dropped: DroppedRecord[];
}

export interface BatchWriter {
  /** Write every operation in one transaction; throws when the transaction failed (nothing written). */
  write(ops: BatchOps): BatchOutcome;
  /** Delete expired rows (tables with an expiry) in one transaction; returns how many. */
  prune(now: number): number;
}

/** Connection settings for every connection to the store file (WAL and the schema are set by the store at open). */
export function configureConnection(db: Database.Database, busyTimeoutMs: number): void {
  db.pragma('synchronous = NORMAL');
  // 2 MiB of page cache per connection (two connections: the main one and the writer's); the OS page cache backs it
  db.pragma('cache_size = -2048');
  db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
}

interface TableStatements {
  upsert: Database.Statement<[string, number | null, string]>;
  remove: Database.Statement<[string]>;
}

/**
 * Statements for `tables` (index = the table index in a batch); `pruned`
 * names the tables whose expired rows prune() deletes.
 */
export function createBatchWriter(db: Database.Database, tables: readonly string[], pruned: readonly string[]): BatchWriter {
  const statements: TableStatements[] = tables.map((t) => ({
    upsert: db.prepare<[string, number | null, string]>(
      `INSERT INTO ${t} (key, expires_at, data) VALUES (?, ?, ?) ` +
        `ON CONFLICT(key) DO UPDATE SET expires_at = excluded.expires_at, data = excluded.data`,
    ),
    remove: db.prepare<[string]>(`DELETE FROM ${t} WHERE key = ?`),
  }));
  const pruneStatements = pruned.map((t) =>
    db.prepare<[number]>(`DELETE FROM ${t} WHERE expires_at IS NOT NULL AND expires_at <= ?`),
  );

  const writeTx = db.transaction((ops: BatchOps): BatchOutcome => {
    let rows = 0;
    const dropped: DroppedRecord[] = [];
    for (let i = 0; i + OP_SLOTS <= ops.length; i += OP_SLOTS) {
      const table = ops[i] as number;
      const key = ops[i + 1] as string;
      const record = ops[i + 3];
      const stmts = statements[table];
      if (stmts === undefined) continue;
      if (record === null) {
        stmts.remove.run(key);
        rows++;
        continue;
      }
      let data: string;
      try {
        data = JSON.stringify(record);
      } catch (error) {
        // a record that cannot be serialized would fail every batch: drop it alone
        dropped.push({ table, key, error: error instanceof Error ? error.message : String(error) });
        continue;
      }
      stmts.upsert.run(key, ops[i + 2] as number | null, data);
      rows++;
    }
    return { rows, dropped };
  });
  const pruneTx = db.transaction((now: number): number => {
    let removed = 0;
    for (const stmt of pruneStatements) removed += stmt.run(now).changes;
    return removed;
  });

  return {
    write: (ops) => writeTx(ops),
    prune: (now) => pruneTx(now),
  };
}
