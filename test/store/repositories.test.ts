import { join } from 'node:path';
import t from 'tap';
import type { SubscriptionStateStore } from '../../src/graph/subscription-state.js';
import { graphSubscriptionState, MemoryStore, openStore, SqliteStore, type GatewayStore } from '../../src/store/index.js';
import { silentLogger } from '../../src/util/logger.js';
import { directoryEntry, graphSubscription, publication, T0, upstreamPublication, upstreamSubscription, watcher } from './fixtures.js';

type Make = (dir: string) => GatewayStore;
const kinds: Array<[string, Make]> = [
  ['sqlite', (dir) => SqliteStore.open({ path: join(dir, 'gw.db') })],
  ['memory', () => new MemoryStore()],
];

for (const [kind, make] of kinds) {
  t.test(`${kind}: every repository round-trips its records`, async (t) => {
    const store = make(t.testdir());
    t.teardown(() => store.close());
    const w = watcher(1);
    // no resolved destination yet: the key is absent, as JSON keeps it
    const { destination: _unused, ...w2 } = watcher(2, { eventId: 'x7', transport: 'udp', routeSet: [] });
    store.watcherSubscriptions.upsert(w);
    store.watcherSubscriptions.upsert(w2);
    store.publications.upsert(publication);
    store.upstreamSubscriptions.upsert(upstreamSubscription);
    store.upstreamPublications.upsert(upstreamPublication);
    store.graphSubscriptions.upsert(graphSubscription);
    store.directoryCache.upsert(directoryEntry);
    store.meta.set('instance', 'gw-a');

    const byId = new Map(store.watcherSubscriptions.loadAll().map((r) => [r.id, r]));
    t.same(byId.get('sub-1'), w);
    t.same(byId.get('sub-2'), w2);
    t.equal(byId.get('sub-2')?.destination, undefined);
    t.equal(byId.get('sub-2')?.eventId, 'x7');
    t.same(store.publications.loadAll(), [publication]);
    t.same(store.upstreamSubscriptions.loadAll(), [upstreamSubscription]);
    t.same(store.upstreamPublications.loadAll(), [upstreamPublication]);
    t.same(store.graphSubscriptions.loadAll(), [graphSubscription]);
    t.same(store.directoryCache.loadAll(), [directoryEntry]);
    t.equal(store.meta.get('instance'), 'gw-a');
    t.equal(store.meta.get('nothing'), undefined);

    t.equal(store.watcherSubscriptions.count(), 2);
    t.same(store.publications.get(publication.etag), publication);
    t.same(store.upstreamSubscriptions.get(store.upstreamSubscriptions.keyOf(upstreamSubscription)), upstreamSubscription);
    t.same(store.directoryCache.get('anna'), directoryEntry);

    // a read is a copy, not the stored object
    const copy = store.watcherSubscriptions.get('sub-1');
    t.not(copy, w);
    if (copy !== undefined) copy.routeSet.push('<sip:evil>');
    t.same(store.watcherSubscriptions.get('sub-1')?.routeSet, ['<sip:10.1.2.1;lr>']);
  });

  t.test(`${kind}: upsert replaces by key, remove deletes, counts follow`, async (t) => {
    const store = make(t.testdir());
    t.teardown(() => store.close());
    store.watcherSubscriptions.upsert(watcher(1));
    store.watcherSubscriptions.upsert(watcher(1, { localCseq: 9, version: 5 }));
    t.equal(store.watcherSubscriptions.count(), 1);
    t.equal(store.watcherSubscriptions.get('sub-1')?.localCseq, 9);
    store.watcherSubscriptions.remove('sub-1');
    t.equal(store.watcherSubscriptions.count(), 0);
    t.equal(store.watcherSubscriptions.get('sub-1'), undefined);

    // one upstream subscription per trunk, person and event
    store.upstreamSubscriptions.upsert(upstreamSubscription);
    store.upstreamSubscriptions.upsert({ ...upstreamSubscription, callId: 'up-2@gw', cseq: 1 });
    store.upstreamSubscriptions.upsert({ ...upstreamSubscription, event: 'presence' });
    t.equal(store.upstreamSubscriptions.count(), 2);
    t.equal(store.upstreamSubscriptions.get(store.upstreamSubscriptions.keyOf(upstreamSubscription))?.callId, 'up-2@gw');

    store.meta.set('k', '1');
    store.meta.set('k', '2');
    t.equal(store.meta.get('k'), '2');
    store.meta.delete('k');
    t.equal(store.meta.get('k'), undefined);
  });

  t.test(`${kind}: pruneExpired removes what expired, never the directory cache`, async (t) => {
    const store = make(t.testdir());
    t.teardown(() => store.close());
    store.watcherSubscriptions.upsert(watcher(1, { expiresAt: T0 - 1 }));
    store.watcherSubscriptions.upsert(watcher(2, { expiresAt: T0 + 1 }));
    store.publications.upsert({ ...publication, expiresAt: T0 });
    store.graphSubscriptions.upsert(graphSubscription);
    store.directoryCache.upsert({ ...directoryEntry, at: 0 });
    t.equal(store.pruneExpired(T0), 2);
    t.same(
      store.watcherSubscriptions.loadAll().map((r) => r.id),
      ['sub-2'],
    );
    t.equal(store.publications.count(), 0);
    t.equal(store.graphSubscriptions.count(), 1);
    t.equal(store.directoryCache.count(), 1);
  });

  t.test(`${kind}: the Graph subscription state adapter is graph's SubscriptionStateStore`, async (t) => {
    const store = make(t.testdir());
    t.teardown(() => store.close());
    const state: SubscriptionStateStore = graphSubscriptionState(store);
    t.same(await state.load(), []);
    const second = { ...graphSubscription, id: 'second', userIds: ['u2', 'u3'] };
    await state.save([graphSubscription, second]);
    t.same((await state.load()).map((r) => r.id).sort(), [graphSubscription.id, 'second'].sort());
    // save replaces the set: records left out are deleted
    await state.save([{ ...second, expiresAt: T0 + 1 }]);
    t.same(await state.load(), [{ ...second, expiresAt: T0 + 1 }]);
  });

  t.test(`${kind}: writes after close are ignored, never thrown`, async (t) => {
    const store = make(t.testdir());
    store.close();
    t.doesNotThrow(() => store.watcherSubscriptions.upsert(watcher(1)));
    t.doesNotThrow(() => store.watcherSubscriptions.remove('sub-1'));
    t.equal(store.status().ok, false);
    t.doesNotThrow(() => store.close());
  });
}

t.test('sqlite: each() reads the records a page at a time, holding nothing open while the caller writes', async (t) => {
  const store = SqliteStore.open({ path: join(t.testdir(), 'gw.db') });
  t.teardown(() => store.close());
  const repo = store.watcherSubscriptions;
  for (let i = 0; i < 2_500; i++) repo.upsert(watcher(i));
  t.ok(repo.each !== undefined, 'the SQLite repository reads in pages');
  const seen: string[] = [];
  for (const r of repo.each?.() ?? []) {
    seen.push(r.id);
    // a restore saves each record it revives while it reads: no "connection busy", nothing read twice
    repo.upsert({ ...r, localCseq: r.localCseq + 1 });
    if (seen.length % 1_000 === 0) store.flush();
  }
  t.equal(seen.length, 2_500, 'every record, across three pages');
  t.equal(new Set(seen).size, 2_500, 'each once');
  t.same(seen, [...seen].sort(), 'in key order');
  store.flush();
  t.equal(repo.get('sub-7')?.localCseq, watcher(7).localCseq + 1, 'the writes made while reading are kept');
});

t.test('openStore: ":memory:" gives the memory store, a path gives SQLite', async (t) => {
  const mem = await openStore({ path: ':memory:', flushMs: 50, logger: silentLogger() });
  t.equal(mem.kind, 'memory');
  mem.close();
  const path = join(t.testdir(), 'sub', 'gateway.db');
  const file = await openStore({ path, flushMs: 50, logger: silentLogger() });
  t.teardown(() => file.close());
  t.equal(file.kind, 'sqlite');
  t.equal(file.path, path);
  t.equal(file.status().ok, true);
});
