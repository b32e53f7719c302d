/**
 * State that survives a restart (part of the composition root): opens the
 * store, puts saved watcher subscriptions, publications, upstream dialogs
 * and entity-tags back into the live parts, then keeps the store up to date
 * through their persistence hooks.
 *
 * What is written when: a watcher subscription at create, refresh and end
 * (its NOTIFY CSeq and body version by a sweep every `sweepMs` for the ones
 * that moved, never per NOTIFY, so a fan-out is not one write per watcher);
 * a publication at every PUBLISH that changes it; an upstream dialog at each
 * accepted SUBSCRIBE; an upstream entity-tag at each accepted PUBLISH. The
 * store batches all of it (flushMs).
 *
 * A stop (SIGTERM) ends nothing: upstream dialogs and publications stay at
 * the trunks to be reused, watchers get no terminating NOTIFY. NOTIFYs in
 * flight get `drainMs` to be answered, the moved CSeqs are saved, the store
 * is flushed and closed.
 *
 * With `store.path: ":memory:"` nothing can survive, so no hooks are set
 * (the gateway works as without a store) and upstream is ended at stop as
 * before.
 */
import path from 'node:path';
import type { GatewayConfig } from './config/schema.js';
import { resolveNodeId } from './config/cluster.js';
import { resolveStorePath } from './config/store.js';
import type { Directory } from './core/directory.js';
import type { PasswordRefusalStore } from './graph/auth.js';
import { migratingFromFile, type SubscriptionStateStore } from './graph/subscription-state.js';
import type { Notifier, RestoredResourceKind } from './simple/notifier.js';
import type { Publications } from './simple/publications.js';
import type { FeatureEventPackage } from './simple/feature-package.js';
import type { ResourceLists } from './simple/resource-lists.js';
import { winfoPersonOf } from './simple/winfo-package.js';
import type { UpstreamPublisher } from './simple/upstream-publisher.js';
import type { UpstreamWatcher } from './simple/upstream-watcher.js';
import {
  compositeKey,
  graphSubscriptionState,
  graphTokenCacheState,
  notificationKeyState,
  openStore,
  passwordRefusalState,
  phoneForwardingState,
  savedPresenceState,
  directoryCacheState,
  type DirectoryCacheState,
  type GatewayStore,
  type GraphTokenCacheState,
  type NotificationKeyState,
  type SavedPresenceState,
} from './store/index.js';
import type { PublicationRecord, WatcherSubscriptionRecord } from './store/records.js';
import type { SavedUpstream, UpstreamRestoreCounts } from './trunk-wiring.js';
import { systemClock, type Clock } from './util/clock.js';
import type { Logger } from './util/logger.js';

/** The live parts whose state is kept. */
export interface PersistedParts {
  notifier: Notifier;
  publications: Publications;
  directory: Pick<Directory, 'get'>;
  lists?: Pick<ResourceLists, 'summary'> & Partial<Pick<ResourceLists, 'restoreClientList' | 'released'>>;
  /**
   * The upstream side, not started yet. With start(), restore() starts it
   * with the dialogs and entity-tags saved by an earlier run (nothing saved
   * when not persistent); without, it is only kept saved from now on and each
   * trunk's job starts it with savedUpstream(trunk).
   */
  upstream?: { watcher: UpstreamWatcher; publisher: UpstreamPublisher; start?(saved: SavedUpstream): UpstreamRestoreCounts };
  /** Desk phones' forwarding settings (as-feature-event), kept per person. */
  features?: Pick<FeatureEventPackage, 'restoreForwarding' | 'onPersist'>;
}

export interface RestoreSummary {
  subscriptions: { restored: number; dropped: number };
  publications: { restored: number; dropped: number };
  upstreamSubscriptions: { restored: number; dropped: number };
  upstreamPublications: { restored: number; dropped: number };
  /** Forwarding settings of desk phones put back (one per person and forwarding type). */
  forwarding?: number;
}

/** The meta key holding every person's phone forwarding settings, one JSON object by person id (small: people who set any). */
export interface PersistenceOptions {
  store: GatewayStore;
  logger: Logger;
  /** An old graph-subscriptions.json to migrate into the store once (then renamed *.migrated). */
  legacyGraphStatePath?: string;
  /** Sweep of moved NOTIFY CSeqs (default 5,000 ms). */
  sweepMs?: number;
  /** How long close() waits for NOTIFYs in flight (default 2,000 ms). */
  drainMs?: number;
  /** Hook the parts even to a memory store (tests). Default: only a store that survives the process. */
  always?: boolean;
  /** Expiry of saved state is judged on this clock (default the system clock). */
  clock?: Pick<Clock, 'now'>;
}

export interface Persistence {
  readonly store: GatewayStore;
  /** True when the store survives the process and the parts are hooked to it. */
  readonly persistent: boolean;
  /** The store is open and writing (readiness). */
  ok(): boolean;
  /** Graph subscription ids and expiries through the store (the old JSON file is read once, then migrated). */
  graphState(): SubscriptionStateStore;
  /** The generated rich-notification key pair, and what people had before the Graph writer took over (busy-on-busy). */
  graphWriterState(): { notificationKeys: NotificationKeyState; savedPresence: SavedPresenceState };
  /** The sealed msal token cache of device-code service accounts (refresh tokens) through the store. */
  graphTokenCache(): GraphTokenCacheState;
  /** Refused service account passwords (a salted hash, never the password), in the store's meta table. */
  graphPasswordRefusals(): PasswordRefusalStore;
  /** The directory sync's Teams identities, shared with the other nodes (the directory cache table). */
  directoryIdentities(): DirectoryCacheState;
  /**
   * Put saved state back into `parts` and keep it saved from now on; starts
   * the upstream side. Call once, after the parts are built.
   */
  restore(parts: PersistedParts): RestoreSummary;
  /**
   * The upstream dialogs and entity-tags saved for `trunk`, read again from
   * the store first (another node sharing it may have written them): what a
   * trunk's job starts with. Nothing when not persistent.
   */
  savedUpstream(trunk: string): Promise<SavedUpstream>;
  /**
   * Watcher subscriptions taken over from a dead node (Ownership.claimNode) made live in the notifier
   * given to restore(), by restore()'s rules (each gets a NOTIFY with the current state); the dropped ones forgotten.
   */
  restoreClaimed(records: readonly WatcherSubscriptionRecord[]): { restored: number; dropped: number };
  /** Publications taken over from a dead node adopted by the compositor given to restore(); the dropped ones forgotten. */
  adoptClaimed(records: readonly PublicationRecord[]): { restored: number; dropped: number };
  /** Stop: close the upstream side keeping its dialogs and publications (nothing sent). No-op when not persistent. */
  keepUpstream(upstream: { watcher: UpstreamWatcher; publisher: UpstreamPublisher }): Promise<void>;
  /** Wait briefly for NOTIFYs in flight, save the moved CSeqs, flush and close the store. Idempotent. */
  close(): Promise<void>;
}

/** Open the store the config names and wrap it (throws StoreError naming the file and the fix). */
export async function openPersistence(config: GatewayConfig, logger: Logger): Promise<Persistence> {
  const store = await openStore({
    path: resolveStorePath(config.store, config.stateDir),
    flushMs: config.store.flushMs,
    logger: logger.child({ component: 'store' }),
    redis: config.store.redis,
    nodeId: resolveNodeId(config.cluster),
  });
  return createPersistence({
    store,
    logger,
    legacyGraphStatePath: path.resolve(config.stateDir, 'graph-subscriptions.json'),
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function createPersistence(options: PersistenceOptions): Persistence {
  const { store, logger } = options;
  const clock = options.clock ?? systemClock;
  const persistent = store.kind !== 'memory' || options.always === true;
  let notifier: Notifier | undefined;
  let sweep: NodeJS.Timeout | undefined;
  let closing: Promise<void> | undefined;

  const hook = (parts: PersistedParts): void => {
    const watchers = store.watcherSubscriptions;
    parts.notifier.onPersist({
      save: (sub) => watchers.upsert(sub.snapshot()),
      remove: (id) => watchers.remove(id),
    });
    const publications = store.publications;
    parts.publications.onPersist({
      save: (snapshot) => publications.upsert(snapshot),
      remove: (etag) => publications.remove(etag),
    });
    if (parts.upstream !== undefined) {
      const upSubs = store.upstreamSubscriptions;
      parts.upstream.watcher.onPersist({
        save: (snapshot) => upSubs.upsert(snapshot),
        remove: (trunk, personId, event) => upSubs.remove(compositeKey(trunk, personId, event)),
      });
      const upPubs = store.upstreamPublications;
      parts.upstream.publisher.onPersist({
        save: (snapshot) => upPubs.upsert(snapshot),
        remove: (trunk, personId, event) => upPubs.remove(compositeKey(trunk, personId, event)),
      });
    }
    const n = parts.notifier;
    sweep = setInterval(() => n.sweepMoved(), options.sweepMs ?? 5000);
    sweep.unref();
  };

  /** Saved watcher subscriptions made live in the notifier (at start, or taken over from a dead node); the dropped ones forgotten. */
  /**
   * Watcher subscriptions back into the notifier, read as they come (a store's each() pages them): only
   * their ids (and client-list resources) stay for the sweep that removes what the notifier did not take.
   */
  const restoreWatchers = (parts: PersistedParts, records: Iterable<WatcherSubscriptionRecord>): { restored: number; dropped: number } => {
    const exists = (id: string): boolean => parts.directory.get(id) !== undefined;
    const lists = new Set((parts.lists?.summary() ?? []).map((l) => `list:${l.name}`));
    const saved: { id: string; listResource: string | undefined }[] = [];
    const subs = (function* (): Iterable<WatcherSubscriptionRecord> {
      for (const s of records) {
        // client-defined lists (RFC 5367) come back from the body saved with their subscription, before it
        if (s.clientList !== undefined && parts.lists?.restoreClientList?.(s.resource, s.clientList) === true) lists.add(s.resource);
        saved.push({ id: s.id, listResource: s.clientList === undefined ? undefined : s.resource });
        yield s;
      }
    })();
    const kindOf = (resource: string): RestoredResourceKind => {
      if (exists(resource)) return 'resource';
      if (lists.has(resource)) return 'list';
      // watcher information (RFC 3857) is kept under its own resource for the watched person
      const watched = winfoPersonOf(resource);
      return watched !== undefined && exists(watched) ? 'resource' : undefined;
    };
    const result = parts.notifier.restore(subs, kindOf);
    for (const s of saved) {
      if (parts.notifier.find(s.id) !== undefined) continue;
      store.watcherSubscriptions.remove(s.id);
      if (s.listResource !== undefined && lists.has(s.listResource)) parts.lists?.released?.(s.listResource);
    }
    return result;
  };
  let restored: PersistedParts | undefined;

  return {
    store,
    persistent,
    ok: () => store.status().ok,

    graphWriterState() {
      return { notificationKeys: notificationKeyState(store), savedPresence: savedPresenceState(store) };
    },

    graphState() {
      const inner = graphSubscriptionState(store);
      const legacy = options.legacyGraphStatePath;
      return legacy === undefined ? inner : migratingFromFile(inner, legacy, { keepsNothing: store.kind === 'memory', logger, target: store.path });
    },

    graphTokenCache: () => graphTokenCacheState(store, 'delegated'),

    graphPasswordRefusals: () => passwordRefusalState(store),

    directoryIdentities: () => directoryCacheState(store),

    restore(parts) {
      notifier = parts.notifier;
      restored = parts;
      const empty = { restored: 0, dropped: 0 };
      const summary: RestoreSummary = {
        subscriptions: { ...empty },
        publications: { ...empty },
        upstreamSubscriptions: { ...empty },
        upstreamPublications: { ...empty },
      };
      if (!persistent) {
        parts.upstream?.start?.({ subscriptions: [], publications: [] });
        return summary;
      }
      hook(parts);
      const pruned = store.pruneExpired(clock.now());
      const exists = (id: string): boolean => parts.directory.get(id) !== undefined;

      if (parts.features !== undefined) {
        const forwarding = phoneForwardingState(store);
        const saved = forwarding.load();
        for (const id of [...saved.keys()]) if (!exists(id)) saved.delete(id);
        summary.forwarding = parts.features.restoreForwarding(saved);
        parts.features.onPersist((personId, settings) => forwarding.save(personId, settings));
      }

      const pubs = store.publications.loadAll();
      summary.publications = parts.publications.restore(pubs, exists);
      for (const p of pubs) if (parts.publications.get(p.etag) === undefined) store.publications.remove(p.etag);

      if (parts.upstream?.start !== undefined) {
        const up = parts.upstream.start({
          subscriptions: store.upstreamSubscriptions.loadAll(),
          publications: store.upstreamPublications.loadAll(),
        });
        summary.upstreamSubscriptions = up.subscriptions;
        summary.upstreamPublications = up.publications;
      }

      const repo = store.watcherSubscriptions;
      summary.subscriptions = restoreWatchers(parts, repo.each?.() ?? repo.loadAll());
      store.flush();
      logger.info({ path: store.path, pruned, ...summary }, 'state restored from the store');
      return summary;
    },

    restoreClaimed(records) {
      if (restored === undefined || !persistent) return { restored: 0, dropped: records.length };
      const result = restoreWatchers(restored, records);
      store.flush();
      return result;
    },

    adoptClaimed(records) {
      const parts = restored;
      let adopted = 0;
      for (const r of records) {
        if (parts?.publications.adopt(r) === true) adopted++;
        else store.publications.remove(r.etag);
      }
      return { restored: adopted, dropped: records.length - adopted };
    },

    async savedUpstream(trunk) {
      if (!persistent) return { subscriptions: [], publications: [] };
      await store.reload(['upstreamSubscriptions', 'upstreamPublications']);
      return {
        subscriptions: store.upstreamSubscriptions.loadAll().filter((r) => r.trunk === trunk),
        publications: store.upstreamPublications.loadAll().filter((r) => r.trunk === trunk),
      };
    },

    async keepUpstream(upstream) {
      if (!persistent) return;
      await Promise.all([upstream.watcher.close(false), upstream.publisher.close({ remove: false })]);
    },

    close() {
      closing ??= (async () => {
        if (sweep !== undefined) clearInterval(sweep);
        const n = notifier;
        if (n !== undefined && persistent) {
          const deadline = Date.now() + (options.drainMs ?? 2000);
          while (n.notifiesInFlight > 0 && Date.now() < deadline) await sleep(20);
          n.persistMoved();
          n.onPersist(undefined);
        }
        if (store.closeAsync !== undefined) await store.closeAsync();
        else store.close();
      })();
      return closing;
    },
  };
}
