/**
 * Child process for the SIGKILL test: writes 100 watcher subscriptions, lets
 * the batch timer commit them, queues one more, and kills itself before the
 * next batch.
 */
import { SqliteStore } from '../../src/store/index.js';
import { watcher } from './fixtures.js';

const path = process.argv[2];
if (path === undefined) throw new Error('usage: crash-writer <db path>');
const store = SqliteStore.open({ path, flushMs: 20 });
for (let i = 0; i < 100; i++) store.watcherSubscriptions.upsert(watcher(i, { localCseq: i }));
setTimeout(() => {
  store.watcherSubscriptions.upsert(watcher(100));
  process.stdout.write(`flushes=${store.status().flushes}\n`);
  process.kill(process.pid, 'SIGKILL');
}, 300);
