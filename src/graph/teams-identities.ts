/**
 * The Teams identities the directory sync found, shared with the other
 * nodes of a service. The sync is a job that runs on one node (JOBS.directorySync);
 * that node saves what it found after each run, and every other node reads it
 * again now and then and takes it into its own Directory, so a webhook
 * notification or a poll result for a person matched later is understood on
 * every node, not only on the one that synced.
 */
import type { Directory } from '../core/directory.js';

export interface TeamsIdentityEntry {
  personId: string;
  userId: string;
  upn?: string;
  mail?: string;
  /** ms epoch of the sync that found it */
  at: number;
}

/** Where the entries are kept (src/store/directory-cache-state.ts). */
export interface TeamsIdentityStore {
  /** Every stored entry, read again from a shared store. */
  load(): Promise<TeamsIdentityEntry[]>;
  /** The whole set after a sync: what is not in `entries` is forgotten. */
  replace(entries: readonly TeamsIdentityEntry[]): void;
}

/** Every person's identity in `directory` now, stamped `at`. */
export function identitiesOf(directory: Pick<Directory, 'all'>, at: number): TeamsIdentityEntry[] {
  const out: TeamsIdentityEntry[] = [];
  for (const p of directory.all()) {
    const t = p.teams;
    if (t?.userId === undefined) continue;
    out.push({ personId: p.id, userId: t.userId, ...(t.upn !== undefined ? { upn: t.upn } : {}), ...(t.mail !== undefined ? { mail: t.mail } : {}), at });
  }
  return out;
}

/**
 * Make `directory` hold exactly the identities of `entries` (for the people it knows): the ones that
 * change or go are cleared first, so an identity that moved from one person to another is not refused as taken.
 * Returns how many people changed.
 */
export function applyIdentities(directory: Pick<Directory, 'all' | 'get' | 'setTeamsIdentity' | 'clearTeamsIdentity'>, entries: readonly TeamsIdentityEntry[]): number {
  const wanted = new Map(entries.map((e) => [e.personId, e]));
  const same = (a: { userId?: string; upn?: string; mail?: string } | undefined, b: TeamsIdentityEntry | undefined): boolean =>
    a?.userId === undefined ? b === undefined : b !== undefined && a.userId.toLowerCase() === b.userId.toLowerCase() && a.upn === b.upn && a.mail === b.mail;
  const changing: string[] = [];
  for (const p of directory.all()) {
    if (same(p.teams, wanted.get(p.id))) continue;
    changing.push(p.id);
    directory.clearTeamsIdentity(p.id);
  }
  let changed = 0;
  for (const id of changing) {
    const e = wanted.get(id);
    changed++;
    if (e === undefined) continue;
    try {
      directory.setTeamsIdentity(id, { userId: e.userId, ...(e.upn !== undefined ? { upn: e.upn } : {}), ...(e.mail !== undefined ? { mail: e.mail } : {}) });
    } catch {
      // taken by a person the stored set does not name (a config that differs between nodes): left unmapped here
    }
  }
  return changed;
}
