/**
 * The store's write worker: batches are committed by a worker thread (not
 * synchronously on the main thread), with the same batching, coalescing,
 * failure and SIGKILL semantics as the inline writer; flush() and close()
 * still wait for the write.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import t, { type Test } from 'tap';
import { SqliteStore } from '../../src/store/index.js';
import { ManualTimers, publication, T0, watcher } from './fixtures.js';


const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** A store whose worker runs (batches before that are written inline). */
async function setup(t: Test, options: { busyTimeoutMs?: number; maxQueued?: number } = {}) {
  const path = join(t.testdir(), 'gw.db');
  const timers = new ManualTimers();
  const store = SqliteStore.open({ path, flushMs: 50, clock: timers, ...options });
  const peek = new Database(path, { readonly: true });
  t.teardown(() => {
    peek.close();
    store.close();
  });
  await until('the write worker', () => store.writerMode === 'worker');
  const rows = (table = 'watcher_subscriptions'): number =>
    (peek.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
  const data = (key: string, table = 'watcher_subscriptions'): Record<string, unknown> | undefined => {
    const r = peek.prepare(`SELECT data FROM ${table} WHERE key = ?`).get(key) as { data: string } | undefined;
    return r === undefined ? undefined : (JSON.parse(r.data) as Record<string, unknown>);
  };
  return { path, timers, store, rows, data };
}

t.test('a file store starts a write worker; ":memory:" and writer "inline" never do', async (t) => {
  const { store } = await setup(t);
  t.equal(store.writerMode, 'worker');
  const mem = SqliteStore.open({ path: ':memory:' });
  t.teardown(() => mem.close());
  const inline = SqliteStore.open({ path: join(t.testdir(), 'inline.db'), writer: 'inline' });
  t.teardown(() => inline.close());
  await sleep(200);
  t.equal(mem.writerMode, 'inline');
  t.equal(inline.writerMode, 'inline');
});

t.test('a timer batch is committed by the worker, not during the timer callback', async (t) => {
  const { timers, store, rows } = await setup(t);
  store.watcherSubscriptions.upsert(watcher(1));
  store.watcherSubscriptions.upsert(watcher(2));
  store.publications.remove('gone');
  timers.fire();
  // an inline write would have counted the batch before fire() returned
  t.equal(store.status().flushes, 0, 'not written on the main thread');
  t.equal(store.status().queued, 0, 'the queue was handed over');
  await until('the answer', () => store.status().flushes === 1);
  t.equal(rows(), 2);
  t.equal(store.status().written, 3);
  t.equal(store.status().ok, true);
  t.equal(timers.armed.length, 0, 'no timer while nothing is queued');
});

t.test('writes made while a batch is written go into the next one, last write per key wins', async (t) => {
  const { timers, store, rows, data } = await setup(t);
  for (let i = 0; i < 10; i++) store.watcherSubscriptions.upsert(watcher(i));
  timers.fire(); // batch 1 in the worker
  store.watcherSubscriptions.upsert(watcher(3, { localCseq: 30 }));
  store.watcherSubscriptions.upsert(watcher(3, { localCseq: 31 }));
  store.watcherSubscriptions.remove('sub-4');
  store.watcherSubscriptions.upsert(watcher(10));
  t.equal(store.status().queued, 3);
  t.equal(timers.armed.length, 1, 'the next batch is timed as usual');
  timers.fire(); // batch 1 may still be in flight: the next one starts when it is answered
  await until('both batches', () => store.status().flushes === 2);
  t.equal(rows(), 10, '11 created, one removed');
  t.equal(data('sub-3')?.['localCseq'], 31);
  t.equal(data('sub-4'), undefined);
  t.equal(store.status().queued, 0);
});

t.test('flush() waits for the worker: the rows are in the file when it returns', async (t) => {
  const { store, rows } = await setup(t);
  for (let i = 0; i < 50; i++) store.watcherSubscriptions.upsert(watcher(i));
  t.equal(store.flush(), true);
  t.equal(rows(), 50);
  t.equal(store.status().flushes, 1);
  // reads flush first too
  store.watcherSubscriptions.upsert(watcher(50));
  t.equal(store.watcherSubscriptions.count(), 51);
  t.equal(store.watcherSubscriptions.get('sub-50')?.id, 'sub-50');
});

t.test('maxQueued hands a batch over at once; a batch still in flight is waited for first', async (t) => {
  const { store, rows } = await setup(t, { maxQueued: 10 });
  for (let i = 0; i < 25; i++) store.watcherSubscriptions.upsert(watcher(i));
  store.waitForWrites();
  t.equal(rows(), 20);
  t.equal(store.status().flushes, 2);
  t.equal(store.status().queued, 5);
});

t.test('close() writes what is queued through the worker and releases the file', async (t) => {
  const { path, store } = await setup(t);
  store.watcherSubscriptions.upsert(watcher(1));
  store.graphSubscriptions.remove('none');
  store.close();
  store.close(); // idempotent
  t.equal(store.status().ok, false, 'closed');
  const again = SqliteStore.open({ path, writer: 'inline' });
  t.teardown(() => again.close());
  t.same(again.watcherSubscriptions.loadAll(), [watcher(1)]);
});

t.test('a locked file: the worker reports the failure, the batch is requeued and retried', async (t) => {
  const { path, timers, store, rows, data } = await setup(t, { busyTimeoutMs: 0 });
  const other = new Database(path, { timeout: 0 });
  t.teardown(() => other.close());
  other.exec('BEGIN IMMEDIATE');
  store.watcherSubscriptions.upsert(watcher(1));
  timers.fire();
  await until('the failure', () => store.status().lastError !== undefined);
  const st = store.status();
  t.equal(st.ok, false);
  t.equal(st.queued, 1, 'requeued');
  t.match(st.lastError, /locked by another process/);
  t.equal(timers.armed[0]?.ms, 1000, 'retry after the retry delay');
  store.watcherSubscriptions.upsert(watcher(1, { localCseq: 42 }));
  store.watcherSubscriptions.upsert(watcher(2));
  other.exec('COMMIT');
  timers.fire();
  store.waitForWrites();
  t.equal(store.status().ok, true);
  t.equal(rows(), 2);
  t.equal(data('sub-1')?.['localCseq'], 42, 'the later write won over the failed one');
});

t.test('records that cannot be serialized: a cycle is dropped alone, a function property is left out', async (t) => {
  const { timers, store, rows, data } = await setup(t);
  const loop: Record<string, unknown> = {};
  loop['self'] = loop;
  store.publications.upsert({ ...publication, etag: 'loop', state: loop });
  store.publications.upsert({ ...publication, etag: 'fn', state: { rich: { basic: 'open' }, render: () => 'x' } });
  store.watcherSubscriptions.upsert(watcher(1));
  timers.fire();
  await until('the batch', () => store.status().flushes === 1);
  t.equal(store.status().dropped, 1);
  t.equal(store.status().ok, true);
  t.equal(rows(), 1);
  t.equal(rows('publications'), 1);
  t.same(data('fn', 'publications')?.['state'], { rich: { basic: 'open' } });
  store.publications.upsert({ ...publication, etag: 'later' });
  t.ok(store.flush(), 'the dropped record is not retried');
  t.equal(store.status().dropped, 1);
});

t.test('pruneExpired runs through the worker', async (t) => {
  const { store, rows } = await setup(t);
  store.watcherSubscriptions.upsert(watcher(1, { expiresAt: T0 + 10 }));
  store.watcherSubscriptions.upsert(watcher(2, { expiresAt: T0 + 1000 }));
  store.publications.upsert({ ...publication, expiresAt: T0 + 5 });
  t.equal(store.pruneExpired(T0 + 100), 2);
  t.equal(rows(), 1);
  t.equal(rows('publications'), 0);
});

t.test('SIGKILL with the worker writing: committed batches survive, the last queued write is lost', async (t) => {
  const path = join(t.testdir(), 'gw.db');
  const child = fileURLToPath(new URL('./crash-writer.ts', import.meta.url));
  const run = spawnSync(process.execPath, ['--import', 'tsx', child, path, 'worker'], { encoding: 'utf8', timeout: 60_000 });
  t.equal(run.signal, 'SIGKILL', run.stderr);
  t.match(run.stdout, /flushes=[1-9]\d* writer=worker/);
  const store = SqliteStore.open({ path, writer: 'inline' });
  t.teardown(() => store.close());
  const subs = store.watcherSubscriptions.loadAll();
  t.equal(subs.length, 100);
  t.equal(subs.find((s) => s.id === 'sub-99')?.localCseq, 99);
  t.equal(store.watcherSubscriptions.get('sub-100'), undefined);
});

t.test('a clean stop with a write backlog loses nothing: every acknowledged write is in the file after close()', async (t) => {
  const { path, store } = await setup(t);
  // 25,000 keys queued as fast as the main thread can: batches of maxQueued go to the worker back to back,
  // one still being committed and the rest of the queue waiting when close() is called
  const count = 25_000;
  for (let i = 0; i < count; i++) store.watcherSubscriptions.upsert(watcher(i, { localCseq: 1 }));
  // and later writes to keys already handed to the worker (the last one must win)
  for (let i = 0; i < count; i += 7) store.watcherSubscriptions.upsert(watcher(i, { localCseq: 2 }));
  for (let i = 3; i < count; i += 1000) store.watcherSubscriptions.remove(`sub-${i}`);
  const removed = Math.ceil((count - 3) / 1000);
  t.ok(store.status().queued > 0, 'writes still queued when the stop begins');
  store.close();
  t.equal(store.status().queued, 0, 'nothing left queued');
  const again = SqliteStore.open({ path, writer: 'inline' });
  t.teardown(() => again.close());
  const all = again.watcherSubscriptions.loadAll();
  t.equal(all.length, count - removed, 'every upserted key is in the file, the removed ones are not');
  const byId = new Map(all.map((r) => [r.id, r]));
  t.equal(byId.get('sub-7')?.localCseq, 2, 'a later write to a key already written wins');
  t.equal(byId.get('sub-8')?.localCseq, 1);
  t.equal(byId.get('sub-1003'), undefined, 'a removal queued after the upsert wins');
});
