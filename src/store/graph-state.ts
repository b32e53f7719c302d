/**
 * The Graph subscription state (load / save of every record) on top of the
 * graphSubscriptions repository. Structurally the SubscriptionStateStore of
 * src/graph/subscription-state.ts, so graph can take it without the store
 * importing graph.
 */
import type { GraphSubscriptionRecord } from './records.js';
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
