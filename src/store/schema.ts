/**
 * The SQLite schema, versioned by PRAGMA user_version. MIGRATIONS[i] takes a
 * file from version i to i + 1; a new file is version 0 and runs them all.
 *
 * Every table is (key, expires_at, data), clustered on the key (WITHOUT
 * ROWID: one b-tree per write): the record as JSON in `data`, so a record
 * gaining a field needs no table change, and the expiry in a column so
 * expired rows are deleted without parsing them. No index on expires_at:
 * pruning runs once at start-up, and every refresh would update it. Inspect with e.g.
 *   sqlite3 gateway.db "select json_extract(data,'$.resource') from watcher_subscriptions"
 */
import { META_TABLE, TABLES } from './tables.js';

function recordTable(name: string): string {
  return `CREATE TABLE IF NOT EXISTS ${name} (
    key TEXT PRIMARY KEY NOT NULL,
    expires_at INTEGER,
    data TEXT NOT NULL
  ) WITHOUT ROWID`;
}

export const MIGRATIONS: readonly (readonly string[])[] = [
  // 0 → 1: the first schema (IF NOT EXISTS: tables added by later steps may exist already)
  [
    ...Object.values(TABLES).map((t) => recordTable(t.table)),
    recordTable(META_TABLE.table),
  ],
  // 1 → 2: the rich-notification key pair, what people had before the gateway took over (busy-on-busy),
  // and the sealed msal token cache of device-code service accounts
  [recordTable(TABLES.graphNotificationKeys.table), recordTable(TABLES.graphSavedPresence.table), recordTable(TABLES.graphTokenCache.table)],
];

/** The version this code writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;
