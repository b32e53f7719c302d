/**
 * The Graph subscription state (load / save of every record) on top of the
 * graphSubscriptions repository. Structurally the SubscriptionStateStore of
 * src/graph/subscription-state.ts, so graph can take it without the store
 * importing graph.
 */
import type { GraphSubscriptionRecord, GraphTokenCacheRecord } from './records.js';
import type { GatewayStore } from './store.js';

export interface GraphSubscriptionState {
  load(): Promise<GraphSubscriptionRecord[]>;
  /** Replace the whole set; resolves once written (flushed), rejects when the write failed. */
  save(records: GraphSubscriptionRecord[]): Promise<void>;
}

export function graphSubscriptionState(store: GatewayStore): GraphSubscriptionState {
  const repo = store.graphSubscriptions;
  return {
    async load() {
      return repo.loadAll();
    },
    async save(records) {
      const keep = new Set<string>();
      for (const r of records) {
        const key = repo.keyOf(r);
        keep.add(key);
        repo.upsert({ ...r, userIds: [...r.userIds] });
      }
      for (const old of repo.loadAll()) {
        const key = repo.keyOf(old);
        if (!keep.has(key)) repo.remove(key);
      }
      if (!store.flush()) throw new Error(store.status().lastError ?? `store ${store.path}: write failed`);
    },
  };
}

/** The sealed msal token cache on top of the graphTokenCache repository (structurally graph's TokenCacheStore). */
export interface GraphTokenCacheState {
  load(): GraphTokenCacheRecord | undefined;
  /** Written at once (flushed): a refresh token lost to a crash would mean a new interactive sign-in. */
  save(record: GraphTokenCacheRecord): void;
  /** Whether the records survive the process. */
  readonly persistent: boolean;
}

export function graphTokenCacheState(store: GatewayStore, name: string): GraphTokenCacheState {
  const repo = store.graphTokenCache;
  return {
    persistent: store.kind !== 'memory',
    load: () => repo.get(name),
    save(record) {
      repo.upsert({ ...record, name });
      store.flush();
    },
  };
}
