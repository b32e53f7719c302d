/**
 * The directory sync's Teams identities on top of the directory cache
 * repository: structurally the TeamsIdentityStore of
 * src/graph/teams-identities.ts, so graph takes it without the store
 * importing graph. load() reads the repository again first (another node of
 * the service may have synced since).
 */
import type { DirectoryCacheRecord } from './records.js';
import type { GatewayStore } from './store.js';

export interface TeamsIdentityRecordLike {
  personId: string;
  userId: string;
  upn?: string;
  mail?: string;
  at: number;
}

export interface DirectoryCacheState {
  load(): Promise<TeamsIdentityRecordLike[]>;
  replace(entries: readonly TeamsIdentityRecordLike[]): void;
}

export function directoryCacheState(store: GatewayStore): DirectoryCacheState {
  const repo = store.directoryCache;
  return {
    async load() {
      await store.reload(['directoryCache']);
      return repo.loadAll().map((r) => ({ personId: r.personId, userId: r.teamsUserId, ...(r.upn !== undefined ? { upn: r.upn } : {}), ...(r.mail !== undefined ? { mail: r.mail } : {}), at: r.at }));
    },
    replace(entries) {
      const keep = new Set<string>();
      for (const e of entries) {
        keep.add(e.personId);
        const record: DirectoryCacheRecord = { personId: e.personId, teamsUserId: e.userId, ...(e.upn !== undefined ? { upn: e.upn } : {}), ...(e.mail !== undefined ? { mail: e.mail } : {}), at: e.at };
        repo.upsert(record);
      }
      for (const r of repo.loadAll()) if (!keep.has(r.personId)) repo.remove(r.personId);
    },
  };
}
