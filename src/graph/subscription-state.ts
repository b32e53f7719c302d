/**
 * Where presence subscription ids and expiries survive a restart, so a new
 * process renews what the old one created instead of hitting Graph's one
 * subscription per app and user (409).
 */
import { existsSync, renameSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from '../util/logger.js';
import { isRecord } from './json.js';

export interface SubscriptionRecord {
  /** Graph subscription id */
  id: string;
  /** the service account that created it */
  account: string;
  /** the Teams user ids its resource names (lower case) */
  userIds: string[];
  /** ms epoch */
  expiresAt: number;
  /** what Graph echoes in its notifications */
  clientState: string;
  notificationUrl: string;
}

export interface SubscriptionStateStore {
  load(): Promise<SubscriptionRecord[]>;
  save(records: SubscriptionRecord[]): Promise<void>;
}

function toRecord(v: unknown): SubscriptionRecord | undefined {
  if (!isRecord(v)) return undefined;
  const { id, account, userIds, expiresAt, clientState, notificationUrl } = v;
  if (typeof id !== 'string' || typeof account !== 'string' || typeof expiresAt !== 'number') return undefined;
  if (typeof clientState !== 'string' || typeof notificationUrl !== 'string' || !Array.isArray(userIds)) return undefined;
  return { id, account, userIds: userIds.filter((u): u is string => typeof u === 'string'), expiresAt, clientState, notificationUrl };
}

/** Records in one JSON file, replaced atomically (write then rename), readable by the owner only. */
export class JsonFileSubscriptionStateStore implements SubscriptionStateStore {
  private writing: Promise<void> = Promise.resolve();

  constructor(readonly path: string) {}

  async load(): Promise<SubscriptionRecord[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text) as unknown;
    } catch {
      // a torn or foreign file: start clean, Graph's 409 handling recovers the rest
      return [];
    }
    const list = isRecord(parsed) && Array.isArray(parsed['subscriptions']) ? parsed['subscriptions'] : [];
    return list.map(toRecord).filter((r): r is SubscriptionRecord => r !== undefined);
  }

  save(records: SubscriptionRecord[]): Promise<void> {
    const body = JSON.stringify({ version: 1, subscriptions: records });
    // one write at a time, in order
    this.writing = this.writing.then(async () => {
      await mkdir(dirname(this.path), { recursive: true });
      const tmp = `${this.path}.${process.pid}.tmp`;
      await writeFile(tmp, body, { mode: 0o600 });
      await rename(tmp, this.path);
    });
    const done = this.writing;
    this.writing = done.catch(() => undefined);
    return done;
  }
}

/** Records in memory (tests; a gateway without a state directory). */
export class MemorySubscriptionStateStore implements SubscriptionStateStore {
  private records: SubscriptionRecord[] = [];
  async load(): Promise<SubscriptionRecord[]> {
    return this.records.map((r) => ({ ...r, userIds: [...r.userIds] }));
  }
  async save(records: SubscriptionRecord[]): Promise<void> {
    this.records = records.map((r) => ({ ...r, userIds: [...r.userIds] }));
  }
}

/**
 * `inner`, which takes over from an older release's JSON file at `legacyPath`:
 * while `inner` holds nothing, the file's records are read, saved into `inner`
 * and the file renamed `*.migrated`. With `keepsNothing` (a memory store) the
 * file stays where it is for the next run. A failed migration is logged and
 * tried again at the next start; the records are used either way.
 */
export function migratingFromFile(
  inner: SubscriptionStateStore,
  legacyPath: string,
  options: { keepsNothing: boolean; logger: Logger; target: string },
): SubscriptionStateStore {
  return {
    async load() {
      const records = await inner.load();
      if (records.length > 0 || !existsSync(legacyPath)) return records;
      const old = await new JsonFileSubscriptionStateStore(legacyPath).load();
      if (options.keepsNothing) return old;
      try {
        await inner.save(old);
        renameSync(legacyPath, `${legacyPath}.migrated`);
        options.logger.info({ from: legacyPath, to: options.target, subscriptions: old.length }, 'graph subscription state migrated into the store');
      } catch (error) {
        options.logger.warn({ err: error, path: legacyPath }, 'graph subscription state not migrated; it is read from the file again next time');
      }
      return old;
    },
    save: (records) => inner.save(records),
  };
}
