/**
 * The shared store on a real Redis (test/helpers/redis-server.ts): records
 * round-trip and expire in Redis, each node loads only its own watcher
 * subscriptions and publications, a dead node's are claimed once, writes
 * made while Redis is away are written when it is back, and a restart with
 * the append-only file loses nothing acknowledged.
 */
import t from 'tap';
import { Redis } from 'ioredis';
import { RedisStore, type RedisStoreOptions } from '../../src/store/redis/redis-store.js';
import { keyLayout } from '../../src/store/redis/keys.js';
import type { GatewayStore } from '../../src/store/store.js';
import { openStore } from '../../src/store/index.js';
import { createPersistence } from '../../src/persistence-wiring.js';
import { silentLogger } from '../../src/util/logger.js';
import type { HubInput } from '../../src/core/hub-input.js';
import { capturingLogger } from '../helpers/log-capture.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { directoryEntry, graphSubscription, publication, upstreamPublication, upstreamSubscription, watcher } from './fixtures.js';

const keys = keyLayout('pg:');
const HOUR = 3_600_000;

interface Teardown {
  teardown(fn: () => unknown): void;
}

async function open(t: Teardown, redis: RedisServer, nodeId: string, over: Partial<RedisStoreOptions> = {}): Promise<RedisStore> {
  const store = await RedisStore.open({ config: { url: redis.url, keyPrefix: 'pg:' }, nodeId, flushMs: 5, ...over });
  t.teardown(() => store.closeAsync());
  return store;
}

function client(t: Teardown, redis: RedisServer): Redis {
  const c = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  c.on('error', () => undefined);
  t.teardown(() => c.disconnect());
  return c;
}

/** Resolve when `ok()` holds, polling every 20 ms; fail after `ms`. */
async function until(ok: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** One record of each repository, expiring an hour from now. */
function everyRepository(now: number) {
  return {
    watcherSubscriptions: watcher(1, { expiresAt: now + HOUR }),
    publications: { ...publication, expiresAt: now + HOUR },
    upstreamSubscriptions: { ...upstreamSubscription, expiresAt: now + HOUR },
    upstreamPublications: { ...upstreamPublication, expiresAt: now + HOUR },
    graphSubscriptions: { ...graphSubscription, expiresAt: now + HOUR },
    directoryCache: directoryEntry,
    graphNotificationKeys: { id: 'rich', certPem: 'CERT', keyPem: 'KEY', createdAt: now },
    graphSavedPresence: { personId: 'anna', userId: 'u-1', preferred: { availability: 'Busy', activity: 'Busy' }, savedAt: now },
    graphTokenCache: { name: 'delegated', keyId: 'k1', iv: 'aXY=', tag: 'dGFn', data: 'ZGF0YQ==', updatedAt: now },
  } as const;
}

function writeEvery(store: GatewayStore, records: ReturnType<typeof everyRepository>): void {
  store.watcherSubscriptions.upsert(records.watcherSubscriptions);
  store.publications.upsert(records.publications);
  store.upstreamSubscriptions.upsert(records.upstreamSubscriptions);
  store.upstreamPublications.upsert(records.upstreamPublications);
  store.graphSubscriptions.upsert(records.graphSubscriptions);
  store.directoryCache.upsert(records.directoryCache);
  store.graphNotificationKeys.upsert(records.graphNotificationKeys);
  store.graphSavedPresence.upsert(records.graphSavedPresence);
  store.graphTokenCache.upsert(records.graphTokenCache);
}

t.test('every repository and meta round-trip through Redis', async (t) => {
  const redis = await startRedis(t);
  const records = everyRepository(Date.now());
  const a = await open(t, redis, 'node-a');
  writeEvery(a, records);
  a.meta.set('instanceId', 'i-1');
  a.meta.set('gone', 'x');
  a.meta.delete('gone');
  t.equal(a.watcherSubscriptions.get('sub-1')?.id, 'sub-1', 'reads see the write at once (memory copy)');
  t.equal(await a.flushAsync(), true);
  const s = a.status();
  t.equal(s.ok, true);
  t.equal(s.kind, 'redis');
  t.equal(s.queued, 0);
  await a.closeAsync();

  const again = await open(t, redis, 'node-a');
  for (const [name, record] of Object.entries(records)) {
    const repo = again[name as keyof typeof records] as GatewayStore['directoryCache'];
    t.same(repo.loadAll(), [record], `${name} came back`);
    t.equal(repo.count(), 1);
    t.same(repo.get(repo.keyOf(record as never)), record);
  }
  t.equal(again.meta.get('instanceId'), 'i-1');
  t.equal(again.meta.get('gone'), undefined);

  const raw = client(t, redis);
  const ttl = await raw.pttl(keys.record('watcher_subscriptions', 'sub-1'));
  t.ok(ttl > HOUR - 60_000 && ttl <= HOUR, 'a record expires with the state it holds');
  t.equal(await raw.pttl(keys.record('directory_cache', 'anna')), -1, 'the directory cache never expires');
  t.same((await raw.smembers(keys.owned('node-a'))).sort(), ['publications:a1b2c3d4e5f60708', 'watcher_subscriptions:sub-1']);
  t.equal(await raw.hget(keys.owner, 'watcher_subscriptions:sub-1'), 'node-a');

  again.watcherSubscriptions.remove('sub-1');
  t.equal(await again.flushAsync(), true);
  t.equal(await raw.exists(keys.record('watcher_subscriptions', 'sub-1')), 0, 'remove deletes the record');
  t.same(await raw.smembers(keys.owned('node-a')), ['publications:a1b2c3d4e5f60708'], 'and its owned-set member');
  t.equal(await raw.hget(keys.owner, 'watcher_subscriptions:sub-1'), null);
  t.equal(again.path, redis.url, 'path is the URL');
});

t.test('a record is gone from Redis when its expiresAt passes; pruneExpired forgets it', async (t) => {
  const redis = await startRedis(t);
  const raw = client(t, redis);
  const store = await open(t, redis, 'node-a');
  const soon = Date.now() + 1000;
  store.watcherSubscriptions.upsert(watcher(7, { expiresAt: soon }));
  store.upstreamSubscriptions.upsert({ ...upstreamSubscription, expiresAt: soon });
  store.watcherSubscriptions.upsert(watcher(8, { expiresAt: Date.now() + HOUR }));
  t.equal(await store.flushAsync(), true);
  t.equal(await raw.exists(keys.record('watcher_subscriptions', 'sub-7')), 1);
  await until(async () => (await raw.exists(keys.record('watcher_subscriptions', 'sub-7'))) === 0, 3000, 'Redis to expire the record');
  t.ok(Date.now() >= soon, 'not before its time');
  t.equal(await raw.exists(keys.record('upstream_subscriptions', '')), 0);
  t.equal(store.pruneExpired(Date.now()), 2, 'the expired watcher and upstream dialog');
  t.same(store.watcherSubscriptions.loadAll().map((w) => w.id), ['sub-8']);
  t.equal(store.upstreamSubscriptions.count(), 0);
  t.equal(await store.flushAsync(), true);
  t.same(await raw.smembers(keys.owned('node-a')), ['watcher_subscriptions:sub-8'], 'the owned set forgets it');
});

t.test('another node loads the shared tables but not the first node\'s watchers and publications', async (t) => {
  const redis = await startRedis(t);
  const records = everyRepository(Date.now());
  const a = await open(t, redis, 'node-a');
  writeEvery(a, records);
  t.equal(await a.flushAsync(), true);
  const b = await open(t, redis, 'node-b');
  t.equal(b.watcherSubscriptions.count(), 0, 'no watcher subscriptions of node-a');
  t.equal(b.publications.count(), 0, 'no publications of node-a');
  t.same(b.upstreamSubscriptions.loadAll(), [records.upstreamSubscriptions]);
  t.same(b.graphSubscriptions.loadAll(), [records.graphSubscriptions]);
  t.same(b.directoryCache.loadAll(), [records.directoryCache]);
  t.same(b.graphTokenCache.loadAll(), [records.graphTokenCache]);
  t.equal(await b.ownership.ownerOf('subscription', 'sub-1'), 'node-a');
  t.equal(await b.ownership.ownerOf('publication', publication.etag), 'node-a');
  t.equal(await b.ownership.ownerOf('subscription', 'nope'), undefined);
});

t.test('claimNode: two survivors claim at once, one gets everything, a second call nothing', async (t) => {
  const redis = await startRedis(t);
  const raw = client(t, redis);
  const now = Date.now();
  const a = await open(t, redis, 'node-a');
  for (let i = 0; i < 50; i++) a.watcherSubscriptions.upsert(watcher(i, { expiresAt: now + HOUR }));
  a.publications.upsert({ ...publication, expiresAt: now + HOUR });
  t.equal(await a.flushAsync(), true);
  await raw.sadd(keys.nodes, 'node-a', 'node-b', 'node-c');
  const b = await open(t, redis, 'node-b');
  const c = await open(t, redis, 'node-c');
  const [byB, byC] = await Promise.all([b.ownership.claimNode('node-a'), c.ownership.claimNode('node-a')]);
  const winner = byB.subscriptions.length > 0 ? { got: byB, lost: byC, store: b, id: 'node-b' } : { got: byC, lost: byB, store: c, id: 'node-c' };
  t.equal(winner.got.subscriptions.length, 50, 'one survivor got every subscription');
  t.same(winner.got.publications.map((p) => p.etag), [publication.etag], 'and the publication');
  t.same(winner.lost, { subscriptions: [], publications: [] }, 'the other got nothing');
  t.equal(winner.got.subscriptions.find((s) => s.id === 'sub-3')?.localCseq, watcher(3).localCseq, 'records as stored');
  t.equal(winner.store.watcherSubscriptions.count(), 50, 'in the winner\'s memory copy');
  t.equal(await raw.exists(keys.owned('node-a')), 0, 'the dead node\'s set is gone');
  t.equal(await raw.scard(keys.owned(winner.id)), 51);
  t.equal(await raw.sismember(keys.nodes, 'node-a'), 0, 'the dead node is forgotten');
  t.equal(await b.ownership.ownerOf('subscription', 'sub-3'), winner.id);
  t.same(await winner.store.ownership.claimNode('node-a'), { subscriptions: [], publications: [] }, 'a second call returns nothing');
  // the dead node's records reopen under the winner
  const reopened = await open(t, redis, winner.id);
  t.equal(reopened.watcherSubscriptions.count(), 50);
});

t.test('claimSubscription and claimPublication move one record; the old owner no longer writes it', async (t) => {
  const redis = await startRedis(t);
  const raw = client(t, redis);
  const now = Date.now();
  const a = await open(t, redis, 'node-a');
  a.watcherSubscriptions.upsert(watcher(1, { expiresAt: now + HOUR }));
  a.watcherSubscriptions.upsert(watcher(2, { expiresAt: now + HOUR }));
  a.publications.upsert({ ...publication, expiresAt: now + HOUR });
  t.equal(await a.flushAsync(), true);
  const b = await open(t, redis, 'node-b');
  const claimed = await b.ownership.claimSubscription('sub-1');
  t.equal(claimed?.id, 'sub-1');
  t.equal(b.watcherSubscriptions.get('sub-1')?.callId, watcher(1).callId, 'in the claimer\'s memory copy');
  t.same(await raw.smembers(keys.owned('node-b')), ['watcher_subscriptions:sub-1']);
  t.same((await raw.smembers(keys.owned('node-a'))).sort(), ['publications:a1b2c3d4e5f60708', 'watcher_subscriptions:sub-2']);
  t.equal(await a.ownership.ownerOf('subscription', 'sub-1'), 'node-b');
  t.equal(await b.ownership.claimSubscription('nope'), undefined, 'an unknown id');
  t.equal((await b.ownership.claimPublication(publication.etag))?.etag, publication.etag);
  t.equal(await raw.hget(keys.owner, `publications:${publication.etag}`), 'node-b');
  // what node-a still holds in memory after a partition: the moved ones are named, its own and unknown ids not
  t.same(await a.ownership.ownedElsewhere('subscription', ['sub-1', 'sub-2', 'nope']), ['sub-1']);
  t.same(await a.ownership.ownedElsewhere('publication', [publication.etag]), [publication.etag]);
  t.same(await b.ownership.ownedElsewhere('subscription', ['sub-1', 'sub-2']), ['sub-2'], 'seen from the claimer, the other way round');

  // node-a's late write (its sweep) and removal must not undo the move
  a.watcherSubscriptions.upsert(watcher(1, { expiresAt: now + HOUR, localCseq: 99 }));
  t.equal(await a.flushAsync(), true);
  t.equal(JSON.parse((await raw.get(keys.record('watcher_subscriptions', 'sub-1')))!).localCseq, watcher(1).localCseq, 'not overwritten');
  t.equal(a.watcherSubscriptions.get('sub-1'), undefined, 'the old owner forgets it');
  a.publications.remove(publication.etag);
  t.equal(await a.flushAsync(), true);
  t.equal(await raw.exists(keys.record('publications', publication.etag)), 1, 'not deleted by the old owner');
  b.watcherSubscriptions.upsert(watcher(1, { expiresAt: now + HOUR, localCseq: 5 }));
  t.equal(await b.flushAsync(), true);
  t.equal(JSON.parse((await raw.get(keys.record('watcher_subscriptions', 'sub-1')))!).localCseq, 5, 'the new owner writes it');
});

t.test('reload reads what another node wrote', async (t) => {
  const redis = await startRedis(t);
  const a = await open(t, redis, 'node-a');
  const b = await open(t, redis, 'node-b');
  const sub = { ...graphSubscription, expiresAt: Date.now() + HOUR };
  b.graphSubscriptions.upsert(sub);
  t.equal(await b.flushAsync(), true);
  t.equal(a.graphSubscriptions.count(), 0, 'not seen before reload');
  a.graphTokenCache.upsert({ name: 'local', keyId: 'k', iv: 'a', tag: 'b', data: 'c', updatedAt: 1 });
  await a.reload(['graphSubscriptions', 'graphTokenCache']);
  t.same(a.graphSubscriptions.loadAll(), [sub]);
  t.equal(a.graphTokenCache.get('local')?.name, 'local', 'a queued write survives the reload');
  b.graphSubscriptions.remove(sub.id);
  t.equal(await b.flushAsync(), true);
  await a.reload(['graphSubscriptions']);
  t.equal(a.graphSubscriptions.count(), 0, 'and sees it removed');
});

t.test('a row that fails its schema is skipped and counted', async (t) => {
  const redis = await startRedis(t);
  const raw = client(t, redis);
  await raw.set(keys.record('graph_subscriptions', 'bad'), '{"id":"bad"}');
  await raw.set(keys.record('directory_cache', 'x'), 'not json');
  const store = await open(t, redis, 'node-a');
  t.equal(store.graphSubscriptions.count(), 0);
  t.equal(store.directoryCache.count(), 0);
  t.equal(store.status().skipped, 2);
});

t.test('Redis stopped during 1,000 upserts: all are written when it is back, status goes red then green', async (t) => {
  const redis = await startRedis(t);
  const raw = client(t, redis);
  const { logger, lines } = capturingLogger('info');
  const store = await open(t, redis, 'node-a', { logger, retryMs: 50 });
  const seen: boolean[] = [];
  store.health.onChange((up) => seen.push(up));
  const expiresAt = Date.now() + HOUR;
  for (let i = 0; i < 300; i++) store.watcherSubscriptions.upsert(watcher(i, { expiresAt }));
  const stopped = redis.stop();
  for (let i = 300; i < 1000; i++) {
    store.watcherSubscriptions.upsert(watcher(i, { expiresAt }));
    if (i % 100 === 0) await new Promise((r) => setImmediate(r));
  }
  await stopped;
  // a remove replaces a queued upsert, an upsert the latest value
  store.watcherSubscriptions.upsert(watcher(1000, { expiresAt }));
  store.watcherSubscriptions.remove('sub-1000');
  store.watcherSubscriptions.upsert(watcher(5, { expiresAt, localCseq: 42 }));
  t.equal(await store.flushAsync(), false, 'the write fails while Redis is away');
  const red = store.status();
  t.equal(red.ok, false);
  t.ok(red.queued > 0, 'the backlog shows');
  t.match(red.lastError, new RegExp(`Redis at ${redis.url.replace(/[/.]/g, '\\$&')} unreachable.*Fix: start Redis`));
  t.equal(store.watcherSubscriptions.count(), 1000, 'reads go on from memory');
  await redis.start();
  await until(() => store.status().ok && store.status().queued === 0, 5000, 'the backlog to be written');
  t.equal(await raw.scard(keys.owned('node-a')), 1000, 'all 1,000 owned');
  const written = await raw.mget(...Array.from({ length: 1000 }, (_, i) => keys.record('watcher_subscriptions', `sub-${i}`)));
  t.equal(written.filter((w) => w !== null).length, 1000, 'all 1,000 in Redis');
  t.equal(JSON.parse(written[5]!).localCseq, 42, 'the latest value');
  t.equal(await raw.exists(keys.record('watcher_subscriptions', 'sub-1000')), 0, 'the removed one is not');
  t.same(seen, [false, true], 'disconnected, then connected');
  t.ok(lines.some((l) => l.msg === 'store writes recovered'));
});

t.test('a Redis restart with its append-only file loses nothing flushAsync acknowledged', async (t) => {
  const redis = await startRedis(t);
  const now = Date.now();
  const a = await open(t, redis, 'node-a');
  for (let i = 0; i < 200; i++) a.watcherSubscriptions.upsert(watcher(i, { expiresAt: now + HOUR }));
  a.graphSubscriptions.upsert({ ...graphSubscription, expiresAt: now + HOUR });
  a.personState.save({ kind: 'feature-key-dnd', personId: 'anna', on: true });
  t.equal(await a.flushAsync(), true);
  await redis.stop();
  await redis.start();
  await until(() => a.status().ok, 5000, 'the store to reconnect');
  const b = await open(t, redis, 'node-a');
  t.equal(b.watcherSubscriptions.count(), 200);
  t.equal(b.graphSubscriptions.count(), 1);
  t.equal((await b.personState.loadInputs()).length, 1);
  a.watcherSubscriptions.upsert(watcher(500, { expiresAt: now + HOUR }));
  t.equal(await a.flushAsync(), true, 'the first store writes again after the restart');
});

t.test('shared person state: one value a slot, oldest first, feeder inputs included', async (t) => {
  const redis = await startRedis(t);
  const raw = client(t, redis);
  let clock = 1000;
  const timers = { now: () => clock, after: (ms: number, fn: () => void) => { const h = setTimeout(fn, ms); return { cancel: () => clearTimeout(h) }; } };
  const a = await open(t, redis, 'node-a', { clock: timers });
  const dnd: HubInput = { kind: 'feature-key-dnd', personId: 'anna', on: true };
  const reach: HubInput = { kind: 'feeder-reachable', feeder: 'trunk:pbx1', reachable: false };
  const expect: HubInput = { kind: 'expect-telephony', personId: 'bert', feeder: 'trunk:pbx1' };
  a.personState.save(dnd);
  clock = 2000;
  a.personState.save(reach);
  clock = 3000;
  a.personState.save(expect);
  clock = 4000;
  a.personState.save({ ...dnd, on: false });
  t.same(await a.personState.loadInputs(), [reach, expect, { ...dnd, on: false }], 'queued inputs count before they are written');
  t.equal(await a.flushAsync(), true);
  t.same(await raw.hkeys(keys.person('anna')), ['feature-key-dnd']);
  t.same(await raw.hkeys(keys.feeders), ['feeder-reachable\ntrunk:pbx1']);
  const b = await open(t, redis, 'node-b');
  t.same(await b.personState.loadInputs(), [reach, expect, { ...dnd, on: false }], 'another node reads them oldest first');
});

t.test('close: later writes are ignored; open without Redis names the URL and the fix', async (t) => {
  const redis = await startRedis(t);
  const raw = client(t, redis);
  const a = await open(t, redis, 'node-a');
  a.directoryCache.upsert(directoryEntry);
  a.close();
  a.directoryCache.upsert({ ...directoryEntry, personId: 'late' });
  await a.closeAsync();
  t.equal(await raw.exists(keys.record('directory_cache', 'anna')), 1, 'close wrote the queue');
  t.equal(await raw.exists(keys.record('directory_cache', 'late')), 0);
  t.equal(a.status().ok, false);
  await redis.stop();
  const { logger, lines } = capturingLogger('debug');
  const failure = await RedisStore.open({ config: { url: redis.url.replace('redis://', 'redis://:s3cret@'), keyPrefix: 'pg:' }, nodeId: 'x', connectTimeoutMs: 300, logger }).then(
    () => new Error('opened'),
    (e: Error) => e,
  );
  t.equal(failure.name, 'StoreError');
  t.match(failure.message, new RegExp(`Redis at ${redis.url.replace(/[/.]/g, '\\$&')} unreachable.*Fix: start Redis`));
  t.notMatch(failure.message, /s3cret/);
  t.ok(lines.length > 0, 'the connection logged');
  t.notMatch(JSON.stringify(lines), /s3cret/, 'no password in the logs');
});

t.test('openStore opens Redis when store.redis is set; persistence close waits for the last write', async (t) => {
  const redis = await startRedis(t);
  const raw = client(t, redis);
  const store = await openStore({ path: '/nonexistent/unused.db', flushMs: 1000, logger: silentLogger(), redis: { url: redis.url, keyPrefix: 'pg:' }, nodeId: 'node-a' });
  t.equal(store.kind, 'redis');
  t.equal(store.path, redis.url);
  await t.rejects(openStore({ path: 'x.db', flushMs: 50, logger: silentLogger(), redis: { url: redis.url, keyPrefix: 'pg:' } }), /needs the node id/);
  const persistence = createPersistence({ store, logger: silentLogger() });
  store.directoryCache.upsert(directoryEntry);
  await persistence.close();
  t.equal(await raw.exists(keys.record('directory_cache', 'anna')), 1, 'written before close resolved (flushMs is 1 s)');
});
