/**
 * Child process for the SIGKILL tests: writes 100 watcher subscriptions, lets
 * the batch timer commit them, queues one more, and kills itself before the
 * next batch. With "worker" as second argument it first waits until the
 * store's write worker runs, so the batches are committed by the worker.
 */
import { SqliteStore } from '../../src/store/index.js';
import { watcher } from './fixtures.js';

const path = process.argv[2];
if (path === undefined) throw new Error('usage: crash-writer <db path> [worker]');
const wantWorker = process.argv[3] === 'worker';
const store = SqliteStore.open({ path, flushMs: 20 });

function run(): void {
  for (let i = 0; i < 100; i++) store.watcherSubscriptions.upsert(watcher(i, { localCseq: i }));
  setTimeout(() => {
    store.watcherSubscriptions.upsert(watcher(100));
    process.stdout.write(`flushes=${store.status().flushes} writer=${store.writerMode}\n`);
    process.kill(process.pid, 'SIGKILL');
  }, 300);
}

if (!wantWorker) run();
else {
  const started = Date.now();
  const poll = setInterval(() => {
    if (store.writerMode !== 'worker' && Date.now() - started < 20_000) return;
    clearInterval(poll);
    run();
  }, 10);
}
