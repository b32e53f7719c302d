/**
 * The README's backup command on a live store: `sqlite3 gateway.db ".backup copy.db"`
 * while the gateway's SqliteStore has the file open in WAL mode, with writes
 * still in the WAL (not checkpointed), must give a complete, consistent copy.
 * Needs the sqlite3 command (Debian package sqlite3): missing is a failure.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { SqliteStore } from '../../src/store/index.js';
import { repoRoot } from '../helpers/gateway-process.js';
import { graphSubscription, watcher } from '../store/fixtures.js';

t.test('the README documents the online backup command', async (t) => {
  const readme = readFileSync(join(repoRoot(), 'README.md'), 'utf8');
  t.match(readme, /sqlite3 \S*gateway\.db "\.backup \S+"/);
});

t.test('sqlite3 .backup copies a store that is open and has unflushed WAL pages', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'gateway.db');
  const copy = join(dir, 'copy.db');
  const store = SqliteStore.open({ path });
  t.teardown(() => store.close());
  for (let i = 0; i < 200; i++) store.watcherSubscriptions.upsert(watcher(i, { localCseq: 1000 + i }));
  store.graphSubscriptions.upsert(graphSubscription);
  store.flush();
  t.ok(existsSync(`${path}-wal`) && statSync(`${path}-wal`).size > 0, 'the writes are (at least partly) in the WAL');

  const r = spawnSync('sqlite3', [path, `.backup ${copy}`], { encoding: 'utf8', timeout: 30_000 });
  t.equal(r.error, undefined, 'the sqlite3 command runs (Debian package sqlite3; ./scripts/test.sh installs it)');
  t.equal(r.status, 0, r.stderr);

  const check = new Database(copy, { readonly: true });
  t.teardown(() => check.close());
  t.equal(check.pragma('integrity_check', { simple: true }), 'ok');
  check.close();
  const restored = SqliteStore.open({ path: copy });
  t.teardown(() => restored.close());
  const subs = restored.watcherSubscriptions.loadAll();
  t.equal(subs.length, 200, 'every subscription is in the copy');
  t.equal(subs.find((s) => s.id === 'sub-199')?.localCseq, 1199);
  t.same(restored.graphSubscriptions.loadAll(), [graphSubscription]);

  // the live store keeps working after the backup
  store.watcherSubscriptions.upsert(watcher(500));
  store.flush();
  t.equal(store.watcherSubscriptions.loadAll().length, 201);
});
