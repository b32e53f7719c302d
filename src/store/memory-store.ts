/**
 * The store without a file (tests; `store.path: ":memory:"`): the same
 * interface, nothing survives the process. Records are kept by reference
 * (as the SQLite store reads them only at flush time) and handed out as
 * JSON copies, so a reader never shares objects with the writer.
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
import type { GatewayStore, MetaStore, Repository, RepositoryName, StoreStatus } from './store.js';
import { META_TABLE, TABLES, type MetaRecord, type TableSpec } from './tables.js';

function copy<R>(record: R): R {
  return JSON.parse(JSON.stringify(record)) as R;
}

/** Records in a Map by key, handed out as copies (also the memory copy of the Redis store). */
export class MemoryRepository<R> implements Repository<R> {
  readonly rows = new Map<string, R>();

  constructor(
    readonly spec: TableSpec<R>,
    private readonly isClosed: () => boolean,
  ) {}

  get name(): string {
    return this.spec.table;
  }

  keyOf(record: R): string {
    return this.spec.keyOf(record);
  }

  upsert(record: R): void {
    if (!this.isClosed()) this.rows.set(this.spec.keyOf(record), record);
  }

  remove(key: string): void {
    if (!this.isClosed()) this.rows.delete(key);
  }

  get(key: string): R | undefined {
    const r = this.rows.get(key);
    return r === undefined ? undefined : copy(r);
  }

  loadAll(): R[] {
    const out: R[] = [];
    for (const r of this.rows.values()) out.push(copy(r));
    return out;
  }

  count(): number {
    return this.rows.size;
  }

  prune(now: number): number {
    let removed = 0;
    for (const [key, r] of this.rows) {
      const at = this.spec.expiresOf(r);
      if (at !== null && at <= now) {
        this.rows.delete(key);
        removed++;
      }
    }
    return removed;
  }
}

export class MemoryStore implements GatewayStore {
  readonly kind = 'memory' as const;
  readonly path = ':memory:';
  readonly watcherSubscriptions: MemoryRepository<WatcherSubscriptionRecord>;
  readonly publications: MemoryRepository<PublicationRecord>;
  readonly upstreamSubscriptions: MemoryRepository<UpstreamSubscriptionRecord>;
  readonly upstreamPublications: MemoryRepository<UpstreamPublicationRecord>;
  readonly graphSubscriptions: MemoryRepository<GraphSubscriptionRecord>;
  readonly directoryCache: MemoryRepository<DirectoryCacheRecord>;
  readonly graphNotificationKeys: MemoryRepository<GraphNotificationKeyRecord>;
  readonly graphSavedPresence: MemoryRepository<GraphSavedPresenceRecord>;
  readonly graphTokenCache: MemoryRepository<GraphTokenCacheRecord>;
  readonly meta: MetaStore;
  private closed = false;

  constructor() {
    const isClosed = (): boolean => this.closed;
    this.watcherSubscriptions = new MemoryRepository(TABLES.watcherSubscriptions, isClosed);
    this.publications = new MemoryRepository(TABLES.publications, isClosed);
    this.upstreamSubscriptions = new MemoryRepository(TABLES.upstreamSubscriptions, isClosed);
    this.upstreamPublications = new MemoryRepository(TABLES.upstreamPublications, isClosed);
    this.graphSubscriptions = new MemoryRepository(TABLES.graphSubscriptions, isClosed);
    this.directoryCache = new MemoryRepository(TABLES.directoryCache, isClosed);
    this.graphNotificationKeys = new MemoryRepository(TABLES.graphNotificationKeys, isClosed);
    this.graphSavedPresence = new MemoryRepository(TABLES.graphSavedPresence, isClosed);
    this.graphTokenCache = new MemoryRepository(TABLES.graphTokenCache, isClosed);
    const meta = new MemoryRepository<MetaRecord>(META_TABLE, isClosed);
    this.meta = {
      get: (key) => meta.rows.get(key)?.value,
      set: (key, value) => meta.upsert({ key, value }),
      delete: (key) => meta.remove(key),
    };
  }

  pruneExpired(now: number): number {
    return (
      this.watcherSubscriptions.prune(now) +
      this.publications.prune(now) +
      this.upstreamSubscriptions.prune(now) +
      this.upstreamPublications.prune(now) +
      this.graphSubscriptions.prune(now)
    );
  }

  flush(): boolean {
    return true;
  }

  /** Only this process writes the store: nothing to read again. */
  reload(_repositories: ReadonlyArray<RepositoryName>): Promise<void> {
    return Promise.resolve();
  }

  close(): void {
    this.closed = true;
  }

  status(): StoreStatus {
    return {
      ok: !this.closed,
      kind: this.kind,
      path: this.path,
      queued: 0,
      lastError: undefined,
      lastErrorAt: undefined,
      flushes: 0,
      written: 0,
      dropped: 0,
      skipped: 0,
    };
  }
}
