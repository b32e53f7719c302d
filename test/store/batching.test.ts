import { join } from 'node:path';
import Database from 'better-sqlite3';
import t, { type Test } from 'tap';
import { SqliteStore } from '../../src/store/index.js';
import { ManualTimers, watcher } from './fixtures.js';


function setup(t: Test, options: { maxQueued?: number; busyTimeoutMs?: number } = {}) {
  const path = join(t.testdir(), 'gw.db');
  const timers = new ManualTimers();
  const store = SqliteStore.open({ path, flushMs: 50, clock: timers, ...options });
  // a second connection sees only what was committed
  const peek = new Database(path, { readonly: true });
  t.teardown(() => {
    peek.close();
    store.close();
  });
  const rows = (table = 'watcher_subscriptions'): number =>
    (peek.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
  const row = (key: string): Record<string, unknown> | undefined => {
    const r = peek.prepare('SELECT data FROM watcher_subscriptions WHERE key = ?').get(key) as { data: string } | undefined;
    return r === undefined ? undefined : (JSON.parse(r.data) as Record<string, unknown>);
  };
  return { path, timers, store, rows, row };
}

t.test('writes wait for the flush timer, armed once at flushMs, then land in one batch', async (t) => {
  const { timers, store, rows } = setup(t);
  store.watcherSubscriptions.upsert(watcher(1));
  store.watcherSubscriptions.upsert(watcher(2));
  store.publications.remove('gone');
  t.equal(rows(), 0, 'nothing committed before the timer');
  t.equal(timers.armed.length, 1, 'one timer for the whole queue, not one per write');
  t.equal(timers.armed[0]?.ms, 50);
  t.equal(store.status().queued, 3);
  timers.fire();
  t.equal(rows(), 2);
  t.equal(store.status().queued, 0);
  t.equal(store.status().flushes, 1, 'one transaction');
  t.equal(store.status().written, 3);
  t.equal(timers.armed.length, 0, 'no timer while the queue is empty');
  store.watcherSubscriptions.upsert(watcher(3));
  t.equal(timers.armed.length, 1, 'the next write arms it again');
});

t.test('last write per key wins inside a batch', async (t) => {
  const { timers, store, rows, row } = setup(t);
  // create + refresh + refresh = one upsert with the last values
  store.watcherSubscriptions.upsert(watcher(1));
  store.watcherSubscriptions.upsert(watcher(1, { remoteCseq: 102, expiresAt: 2 }));
  store.watcherSubscriptions.upsert(watcher(1, { remoteCseq: 103, localCseq: 8, expiresAt: 3 }));
  t.equal(store.status().queued, 1);
  // create + remove = one delete, no row
  store.watcherSubscriptions.upsert(watcher(2));
  store.watcherSubscriptions.remove('sub-2');
  // remove + create = the record
  store.watcherSubscriptions.remove('sub-3');
  store.watcherSubscriptions.upsert(watcher(3));
  t.equal(store.status().queued, 3);
  timers.fire();
  t.equal(store.status().written, 3, 'three rows touched for eight writes');
  t.equal(rows(), 2);
  t.equal(row('sub-1')?.['remoteCseq'], 103);
  t.equal(row('sub-1')?.['localCseq'], 8);
  t.equal(row('sub-2'), undefined);
  t.not(row('sub-3'), undefined);
});

t.test('the 1,000th queued key writes the batch at once', async (t) => {
  const { store, rows } = setup(t);
  for (let i = 0; i < 999; i++) store.watcherSubscriptions.upsert(watcher(i));
  // refreshes of queued keys do not count twice
  for (let i = 0; i < 500; i++) store.watcherSubscriptions.upsert(watcher(i, { remoteCseq: 200 }));
  t.equal(rows(), 0);
  t.equal(store.status().queued, 999);
  store.watcherSubscriptions.upsert(watcher(999));
  t.equal(rows(), 1000);
  t.equal(store.status().queued, 0);
  t.equal(store.status().flushes, 1);
});

t.test('a smaller maxQueued is honoured', async (t) => {
  const { store, rows } = setup(t, { maxQueued: 10 });
  for (let i = 0; i < 25; i++) store.watcherSubscriptions.upsert(watcher(i));
  t.equal(rows(), 20);
  t.equal(store.status().flushes, 2);
  t.ok(store.flush());
  t.equal(rows(), 25);
});

t.test('flush() and close() write synchronously', async (t) => {
  const { path, store, rows } = setup(t);
  store.watcherSubscriptions.upsert(watcher(1));
  t.equal(store.flush(), true);
  t.equal(rows(), 1);
  store.watcherSubscriptions.upsert(watcher(2));
  store.close();
  const again = new Database(path, { readonly: true });
  t.equal((again.prepare('SELECT count(*) AS n FROM watcher_subscriptions').get() as { n: number }).n, 2);
  again.close();
});

t.test('reads flush first, so they see queued writes', async (t) => {
  const { store, rows } = setup(t);
  store.watcherSubscriptions.upsert(watcher(1));
  t.equal(store.watcherSubscriptions.count(), 1);
  t.equal(rows(), 1);
});

t.test('a locked file: the write fails without throwing, is kept, shows in status, and is retried', async (t) => {
  const { path, timers, store, rows } = setup(t, { busyTimeoutMs: 0 });
  const other = new Database(path, { timeout: 0 });
  t.teardown(() => other.close());
  other.exec('BEGIN IMMEDIATE'); // holds the write lock
  store.watcherSubscriptions.upsert(watcher(1));
  t.doesNotThrow(() => timers.fire());
  const st = store.status();
  t.equal(st.ok, false);
  t.equal(st.queued, 1, 'the write is still queued');
  t.match(st.lastError, /locked by another process/);
  t.match(st.lastError, path);
  t.equal(timers.armed[0]?.ms, 1000, 'retry after the retry delay');
  // writes while failing do not hammer the file at the size limit
  store.watcherSubscriptions.upsert(watcher(1, { localCseq: 42 }));
  store.watcherSubscriptions.upsert(watcher(2));
  t.equal(store.status().queued, 2);
  other.exec('COMMIT');
  timers.fire();
  t.equal(store.status().ok, true);
  t.equal(rows(), 2);
  t.equal(store.watcherSubscriptions.get('sub-1')?.localCseq, 42, 'the later write won over the failed one');
});

t.test('a record that cannot be serialized is dropped alone', async (t) => {
  const { timers, store, rows } = setup(t);
  const loop: Record<string, unknown> = {};
  loop['self'] = loop;
  store.publications.upsert({ etag: 'bad', resource: 'anna', event: 'presence', expiresAt: 1, state: loop });
  store.watcherSubscriptions.upsert(watcher(1));
  timers.fire();
  t.equal(store.status().dropped, 1);
  t.equal(store.status().ok, true);
  t.equal(rows(), 1);
  t.equal(rows('publications'), 0);
});
