import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { graphTokenCacheState, MemoryStore, SCHEMA_VERSION, SqliteStore } from '../../src/store/index.js';
import { openTokenCache, sealTokenCache } from '../../src/graph/token-cache.js';

const KEY = Buffer.alloc(32, 3);

t.test('the sealed token cache survives a reopen of the SQLite file, as ciphertext', async (t) => {
  const path = join(t.testdir(), 'gw.db');
  const first = SqliteStore.open({ path });
  const state = graphTokenCacheState(first, 'delegated');
  t.equal(state.persistent, true);
  state.save(sealTokenCache('delegated', '{"RefreshToken":{"x":{"secret":"rt-secret-value"}}}', KEY, 1));
  first.close();
  const raw = new Database(path, { readonly: true });
  const row = raw.prepare('SELECT data FROM graph_token_cache').get() as { data: string };
  raw.close();
  t.notOk(row.data.includes('rt-secret-value'), 'the row holds no refresh token in clear');
  const second = SqliteStore.open({ path });
  t.teardown(() => second.close());
  const back = graphTokenCacheState(second, 'delegated').load();
  t.ok(back);
  const opened = openTokenCache(back!, KEY);
  t.ok(opened.ok && opened.plaintext.includes('rt-secret-value'));
  t.equal(second.pruneExpired(Date.now() + 1e12), 0, 'never pruned');
  t.equal(second.graphTokenCache.count(), 1);
});

t.test('a file of schema version 1 gains the token cache table', async (t) => {
  const path = join(t.testdir(), 'old.db');
  const old = SqliteStore.open({ path });
  old.graphSubscriptions.upsert({ id: 's1', account: 'a', userIds: [], expiresAt: Date.now() + 60_000, clientState: 'c', notificationUrl: 'https://x' });
  old.close();
  const db = new Database(path);
  db.exec('DROP TABLE graph_token_cache');
  db.pragma('user_version = 1');
  db.close();
  const store = SqliteStore.open({ path });
  t.teardown(() => store.close());
  t.equal(SCHEMA_VERSION, 2);
  graphTokenCacheState(store, 'delegated').save(sealTokenCache('delegated', '{}', KEY, 2));
  t.equal(store.graphTokenCache.count(), 1);
  t.equal(store.graphSubscriptions.count(), 1, 'the old rows stay');
});

t.test('the memory store keeps it too (not persistent)', async (t) => {
  const store = new MemoryStore();
  const state = graphTokenCacheState(store, 'delegated');
  t.equal(state.persistent, false);
  state.save(sealTokenCache('delegated', '{}', KEY, 3));
  t.equal(state.load()?.updatedAt, 3);
});
