/**
 * The rich-notification key pair and the saved "before" presence on top of
 * their repositories. Structurally the NotificationKeyStore of
 * src/graph/notification-keys.ts and the SavedPresenceStore of
 * src/graph/saved-presence.ts, so graph takes them without the store
 * importing graph. Saves are flushed before they resolve: the writer changes
 * Teams only after what it must restore is on disk.
 */
import type { GraphNotificationKeyRecord, GraphSavedPresenceRecord } from './records.js';
import type { GatewayStore } from './store.js';

export interface NotificationKeyState {
  load(): Promise<GraphNotificationKeyRecord[]>;
  save(record: GraphNotificationKeyRecord): Promise<void>;
}

export interface SavedPresenceState {
  load(): Promise<GraphSavedPresenceRecord[]>;
  save(record: GraphSavedPresenceRecord): Promise<void>;
  remove(personId: string): Promise<void>;
}

function flushed(store: GatewayStore): void {
  if (!store.flush()) throw new Error(store.status().lastError ?? `store ${store.path}: write failed`);
}

export function notificationKeyState(store: GatewayStore): NotificationKeyState {
  const repo = store.graphNotificationKeys;
  return {
    async load() {
      return repo.loadAll();
    },
    async save(record) {
      repo.upsert({ ...record });
      flushed(store);
    },
  };
}

export function savedPresenceState(store: GatewayStore): SavedPresenceState {
  const repo = store.graphSavedPresence;
  return {
    async load() {
      return repo.loadAll();
    },
    async save(record) {
      repo.upsert(JSON.parse(JSON.stringify(record)) as GraphSavedPresenceRecord);
      flushed(store);
    },
    async remove(personId) {
      repo.remove(personId);
      flushed(store);
    },
  };
}
