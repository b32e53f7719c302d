import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import t from 'tap';
import { SCHEMA_VERSION, SqliteStore, StoreError } from '../../src/store/index.js';
import { directoryEntry, graphSubscription, watcher } from './fixtures.js';

function openError(path: string): StoreError {
  try {
    SqliteStore.open({ path }).close();
  } catch (error) {
    if (error instanceof StoreError) return error;
    throw error;
  }
  throw new Error('expected a StoreError');
}

t.test('reopening after close keeps the data', async (t) => {
  const path = join(t.testdir(), 'gw.db');
  const first = SqliteStore.open({ path });
  for (let i = 0; i < 50; i++) first.watcherSubscriptions.upsert(watcher(i, { localCseq: i + 1 }));
  first.graphSubscriptions.upsert(graphSubscription);
  first.directoryCache.upsert(directoryEntry);
  first.meta.set('lastStop', 'clean');
  first.close();
  const second = SqliteStore.open({ path });
  t.teardown(() => second.close());
  const subs = second.watcherSubscriptions.loadAll();
  t.equal(subs.length, 50);
  t.equal(subs.find((s) => s.id === 'sub-7')?.localCseq, 8);
  t.same(second.graphSubscriptions.loadAll(), [graphSubscription]);
  t.same(second.directoryCache.loadAll(), [directoryEntry]);
  t.equal(second.meta.get('lastStop'), 'clean');
  t.equal(second.meta.get('schemaVersion'), String(SCHEMA_VERSION));
});

t.test('an online backup is a complete copy', async (t) => {
  const dir = t.testdir();
  const store = SqliteStore.open({ path: join(dir, 'gw.db') });
  t.teardown(() => store.close());
  store.watcherSubscriptions.upsert(watcher(1));
  store.graphSubscriptions.upsert(graphSubscription);
  await store.backup(join(dir, 'copy.db'));
  const copy = SqliteStore.open({ path: join(dir, 'copy.db') });
  t.teardown(() => copy.close());
  t.same(copy.watcherSubscriptions.loadAll(), [watcher(1)]);
  t.same(copy.graphSubscriptions.loadAll(), [graphSubscription]);
});

t.test('WAL journal, synchronous NORMAL: read back from the file', async (t) => {
  const path = join(t.testdir(), 'gw.db');
  const store = SqliteStore.open({ path });
  t.teardown(() => store.close());
  store.watcherSubscriptions.upsert(watcher(1));
  store.flush();
  const peek = new Database(path, { readonly: true });
  t.teardown(() => peek.close());
  t.equal(peek.pragma('journal_mode', { simple: true }), 'wal');
  t.ok(existsSync(`${path}-wal`), 'the write went to the WAL');
});

t.test('the file, its WAL and shared-memory files are owner-only (0600)', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'state', 'gw.db');
  const old = process.umask(0o022);
  t.teardown(() => process.umask(old));
  const store = SqliteStore.open({ path });
  t.teardown(() => store.close());
  store.watcherSubscriptions.upsert(watcher(1));
  store.flush();
  t.equal(statSync(path).mode & 0o777, 0o600);
  t.equal(statSync(`${path}-wal`).mode & 0o777, 0o600);
  t.equal(statSync(`${path}-shm`).mode & 0o777, 0o600);
  t.equal(statSync(join(dir, 'state')).mode & 0o777, 0o700, 'a created directory is owner-only');
});

t.test('an existing file readable by others is tightened to 0600', async (t) => {
  const path = join(t.testdir(), 'gw.db');
  SqliteStore.open({ path }).close();
  chmodSync(path, 0o644);
  const store = SqliteStore.open({ path });
  t.teardown(() => store.close());
  t.equal(statSync(path).mode & 0o777, 0o600);
});

t.test('schema upgrade from an empty version 0 file', async (t) => {
  const dir = t.testdir();
  // a zero-byte file is an empty SQLite database at user_version 0
  const empty = join(dir, 'empty.db');
  writeFileSync(empty, '', { mode: 0o600 });
  const a = SqliteStore.open({ path: empty });
  a.watcherSubscriptions.upsert(watcher(1));
  a.close();
  const peekA = new Database(empty, { readonly: true });
  t.equal(peekA.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  t.equal((peekA.prepare('SELECT count(*) AS n FROM watcher_subscriptions').get() as { n: number }).n, 1);
  peekA.close();

  // a version 0 database with someone's table in it: the table is left alone, ours are added
  const foreign = join(dir, 'v0.db');
  const raw = new Database(foreign);
  raw.exec("CREATE TABLE notes (x TEXT); INSERT INTO notes VALUES ('keep me')");
  raw.close();
  const b = SqliteStore.open({ path: foreign });
  t.equal(b.watcherSubscriptions.count(), 0);
  b.close();
  const peekB = new Database(foreign, { readonly: true });
  t.equal(peekB.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  t.same(peekB.prepare('SELECT x FROM notes').all(), [{ x: 'keep me' }]);
  const tables = (peekB.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").all() as Array<{ name: string }>).map((r) => r.name);
  for (const name of ['watcher_subscriptions', 'publications', 'upstream_subscriptions', 'upstream_publications', 'graph_subscriptions', 'directory_cache', 'meta']) {
    t.ok(tables.includes(name), `table ${name} created`);
  }
  peekB.close();
});

t.test('a file from a newer schema version is refused with the fix', async (t) => {
  const path = join(t.testdir(), 'new.db');
  const raw = new Database(path);
  raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  raw.close();
  const err = openError(path);
  t.equal(err.code, 'SCHEMA_TOO_NEW');
  t.match(err.message, path);
  t.match(err.message, /newer/);
  t.match(err.message, /Fix:/);
});

t.test('a corrupt file gives a clear error naming the path and the fix', async (t) => {
  const path = join(t.testdir(), 'gw.db');
  writeFileSync(path, Buffer.alloc(8192, 'this is not a database, it is a grocery list. '));
  const err = openError(path);
  t.equal(err.path, path);
  t.equal(err.code, 'SQLITE_NOTADB');
  t.match(err.message, `store file ${path} is not a SQLite database or is damaged`);
  t.match(err.message, /move .* aside or restore it from a backup/);
});

t.test('a path that cannot be a file gives an error naming it', async (t) => {
  const dir = t.testdir();
  const err = openError(dir); // a directory
  t.match(err.message, dir);
  t.match(err.message, /Fix:/);
});

t.test('rows that are not valid records are skipped and counted, the rest load', async (t) => {
  const path = join(t.testdir(), 'gw.db');
  const store = SqliteStore.open({ path });
  store.watcherSubscriptions.upsert(watcher(1));
  store.close();
  const raw = new Database(path);
  raw.prepare('INSERT INTO watcher_subscriptions (key, expires_at, data) VALUES (?, ?, ?)').run('torn', 1, '{"id":"torn",');
  raw.prepare('INSERT INTO watcher_subscriptions (key, expires_at, data) VALUES (?, ?, ?)').run('odd', 1, '{"id":"odd"}');
  raw.close();
  const again = SqliteStore.open({ path });
  t.teardown(() => again.close());
  t.same(again.watcherSubscriptions.loadAll().map((r) => r.id), ['sub-1']);
  t.equal(again.status().skipped, 2);
  t.equal(again.status().ok, true);
});

t.test('SIGKILL loses at most the last batch: committed writes survive in the WAL', async (t) => {
  const path = join(t.testdir(), 'gw.db');
  const child = fileURLToPath(new URL('./crash-writer.ts', import.meta.url));
  const run = spawnSync(process.execPath, ['--import', 'tsx', child, path], { encoding: 'utf8', timeout: 30_000 });
  t.equal(run.signal, 'SIGKILL', run.stderr);
  t.match(run.stdout, /flushes=[1-9]/);
  t.ok(existsSync(`${path}-wal`), 'not checkpointed: recovery reads the WAL');
  const store = SqliteStore.open({ path });
  t.teardown(() => store.close());
  const subs = store.watcherSubscriptions.loadAll();
  t.equal(subs.length, 100, 'every committed subscription is back');
  t.equal(subs.find((s) => s.id === 'sub-99')?.localCseq, 99);
  t.equal(store.watcherSubscriptions.get('sub-100'), undefined, 'the write still queued at the kill is lost');
});
