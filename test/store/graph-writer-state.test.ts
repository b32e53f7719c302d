import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { notificationKeyState, savedPresenceState, SCHEMA_VERSION, SqliteStore } from '../../src/store/index.js';

const key = { id: 'presence-gateway-0123456789abcdef', certPem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n', keyPem: 'pem', createdAt: 1_900_000_000_000 };
const before = {
  personId: 'anna',
  userId: 'a1000000-0000-4000-8000-000000001001',
  preferred: { availability: 'BeRightBack', activity: 'BeRightBack' },
  statusMessage: { content: 'At lunch', contentType: 'text', expiresAt: 1_900_000_360_000 },
  savedAt: 1_900_000_000_000,
};

t.test('the key pair and the saved presence survive a reopen; a remove is written at once', async (t) => {
  const path = join(t.testdir(), 'gw.db');
  const first = SqliteStore.open({ path });
  await notificationKeyState(first).save(key);
  await savedPresenceState(first).save(before);
  await savedPresenceState(first).save({ personId: 'ben', userId: 'b', preferred: null, savedAt: 1 });
  // written before save() resolves: a kill now loses nothing
  const peek = new Database(path, { readonly: true });
  t.equal((peek.prepare('select count(*) as n from graph_saved_presence').get() as { n: number }).n, 2);
  peek.close();
  first.close();
  const second = SqliteStore.open({ path });
  t.same(await notificationKeyState(second).load(), [key]);
  const saved = await savedPresenceState(second).load();
  t.same(saved.find((r) => r.personId === 'anna'), before);
  t.same(saved.find((r) => r.personId === 'ben')?.preferred, null, 'null (had none) is kept apart from absent (not taken)');
  await savedPresenceState(second).remove('anna');
  t.same((await savedPresenceState(second).load()).map((r) => r.personId), ['ben']);
  t.equal(second.pruneExpired(Date.now() + 1e12), 0, 'never pruned by age');
  second.close();
});

t.test('a file of schema version 1 gains the two tables', async (t) => {
  const path = join(t.testdir(), 'old.db');
  const raw = new Database(path);
  raw.exec('CREATE TABLE graph_subscriptions (key TEXT PRIMARY KEY NOT NULL, expires_at INTEGER, data TEXT NOT NULL) WITHOUT ROWID');
  raw.exec('CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, expires_at INTEGER, data TEXT NOT NULL) WITHOUT ROWID');
  for (const tbl of ['watcher_subscriptions', 'publications', 'upstream_subscriptions', 'upstream_publications', 'directory_cache']) {
    raw.exec(`CREATE TABLE ${tbl} (key TEXT PRIMARY KEY NOT NULL, expires_at INTEGER, data TEXT NOT NULL) WITHOUT ROWID`);
  }
  raw.pragma('user_version = 1');
  raw.close();
  const store = SqliteStore.open({ path });
  t.teardown(() => store.close());
  await savedPresenceState(store).save(before);
  t.equal((await savedPresenceState(store).load()).length, 1);
  const peek = new Database(path, { readonly: true });
  t.equal(peek.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  peek.close();
});
