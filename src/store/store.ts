/**
 * The persistence interface. One GatewayStore holds typed repositories of
 * plain records; SQLite is the embedded default, memory is for tests, and a
 * shared store (Redis) can implement the same shape later (it would read
 * everything once when opened, so loadAll can stay synchronous).
 *
 * Writes never throw: they are queued, coalesced per key and written in
 * batches; a failure is logged and shows in status(). Reads flush the queue
 * first, so they see every earlier write.
 */
import type {
  DirectoryCacheRecord,
  GraphNotificationKeyRecord,
  GraphSavedPresenceRecord,
  GraphSubscriptionRecord,
  GraphTokenCacheRecord,
  PublicationRecord,
  UpstreamPublicationRecord,
  UpstreamSubscriptionRecord,
  WatcherSubscriptionRecord,
} from './records.js';

export interface Repository<R> {
  /** Table name (logs, status). */
  readonly name: string;
  /** The key a record is stored under (what remove() takes). */
  keyOf(record: R): string;
  /**
   * Create or replace. The record is read when the batch is written (up to
   * flushMs later): pass a fresh object, or one you no longer change.
   */
  upsert(record: R): void;
  remove(key: string): void;
  get(key: string): R | undefined;
  /** Every stored record (start-up: called once per repository). */
  loadAll(): R[];
  /**
   * Every stored record, read a page at a time as the caller iterates (a
   * restart's 100,000 subscriptions need not all be decoded at once); what a
   * store without it offers through loadAll(). Nothing is held open between
   * pages: the caller may write to the store while iterating (writes queued meanwhile
   * may not be seen by the later pages).
   */
  each?(): Iterable<R>;
  count(): number;
}

/** Small string settings (schema notes, instance id, last clean stop). */
export interface MetaStore {
  get(key: string): string | undefined;
  set(key: string, value: string): void;
  delete(key: string): void;
}

export interface StoreStatus {
  ok: boolean;
  kind: 'sqlite' | 'memory' | 'redis';
  path: string;
  /** Writes waiting for the next batch (distinct keys). */
  queued: number;
  lastError: string | undefined;
  /** ms epoch of lastError */
  lastErrorAt: number | undefined;
  /** Batches written and rows written or deleted by them, since open. */
  flushes: number;
  written: number;
  /** Records dropped because they could not be serialized (never retried). */
  dropped: number;
  /** Rows read back that did not match their record shape (skipped). */
  skipped: number;
}

/** The repositories of a GatewayStore, by property name. */
export type RepositoryName =
  | 'watcherSubscriptions'
  | 'publications'
  | 'upstreamSubscriptions'
  | 'upstreamPublications'
  | 'graphSubscriptions'
  | 'directoryCache'
  | 'graphNotificationKeys'
  | 'graphSavedPresence'
  | 'graphTokenCache';

export interface GatewayStore {
  readonly kind: 'sqlite' | 'memory' | 'redis';
  readonly path: string;
  readonly watcherSubscriptions: Repository<WatcherSubscriptionRecord>;
  readonly publications: Repository<PublicationRecord>;
  readonly upstreamSubscriptions: Repository<UpstreamSubscriptionRecord>;
  readonly upstreamPublications: Repository<UpstreamPublicationRecord>;
  readonly graphSubscriptions: Repository<GraphSubscriptionRecord>;
  readonly directoryCache: Repository<DirectoryCacheRecord>;
  readonly graphNotificationKeys: Repository<GraphNotificationKeyRecord>;
  readonly graphSavedPresence: Repository<GraphSavedPresenceRecord>;
  readonly graphTokenCache: Repository<GraphTokenCacheRecord>;
  readonly meta: MetaStore;
  /** Delete records whose expiresAt <= now (directory cache, token cache and meta never expire). Returns how many. */
  pruneExpired(now: number): number;
  /**
   * Read these repositories again from the store: another node sharing it
   * may have written them (a job taking over a lease, src/store/cluster.ts).
   * A store only this process writes resolves at once.
   */
  reload(repositories: ReadonlyArray<RepositoryName>): Promise<void>;
  /** Write everything queued now, synchronously. False when the write failed (see status()). */
  flush(): boolean;
  /** Flush, then release the file. Later writes are ignored; idempotent. */
  close(): void;
  /**
   * close(), resolved when the last write is done: a networked store (Redis)
   * cannot wait synchronously, so its close() only starts the write.
   */
  closeAsync?(): Promise<void>;
  status(): StoreStatus;
}

/** Opening the store failed; the message names the file and the fix. */
export class StoreError extends Error {
  constructor(
    message: string,
    readonly path: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}
