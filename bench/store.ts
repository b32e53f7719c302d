/**
 * Store benchmark: what persistence costs the subscription path.
 *   upserts/s     distinct watcher subscriptions written through the batching writer (queue + transactions)
 *   create/refresh/remove   µs per operation, batch writes included (a refresh rewrites the row)
 *   memory        the same upserts into the MemoryStore, for comparison
 *   load          ms to read every record back (the start-up restore)
 *   main thread   µs of main-thread time per upsert at a paced rate (10,000/s, batches by the flush timer),
 *                 with the write worker and with writes on the main thread (inline): the upsert calls plus
 *                 the flush timer callbacks (taking the batch, handing it over / writing it); the worker's own
 *                 time is not on the main thread. The worker's answers (a few per second) are not counted.
 * Records are built before timing; only the store's work is measured. The
 * file lives in a temporary directory, removed at the end.
 * Run alone: node dist/bench/store.js [records]
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Clock } from '../src/util/clock.js';
import { MemoryStore, SqliteStore, type GatewayStore, type WatcherSubscriptionRecord } from '../src/store/index.js';

export interface StoreBenchResult {
  records: number;
  upsertsPerSecond: number;
  createUs: number;
  refreshUs: number;
  removeUs: number;
  memoryUpsertsPerSecond: number;
  loadMs: number;
  /** database + WAL after the creates */
  fileBytes: number;
  /** main-thread µs per upsert, paced, timer batches: write worker / inline */
  workerMainUs: number;
  inlineMainUs: number;
  /** the paced runs wrote every record */
  pacedRecords: number;
}

/** Flush timers that add the time spent in their callbacks to `spent`. */
function timedTimers(spent: { ns: bigint }): Clock {
  return {
    now: () => Date.now(),
    after(ms, callback) {
      const handle = setTimeout(() => {
        const start = process.hrtime.bigint();
        callback();
        spent.ns += process.hrtime.bigint() - start;
      }, ms);
      handle.unref();
      return { cancel: () => clearTimeout(handle) };
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Upserts at ~10,000/s (100 every 10 ms), batches written by the flush timer; main-thread µs per upsert. */
async function pacedMainThread(dir: string, writer: 'worker' | 'inline', records: readonly WatcherSubscriptionRecord[]): Promise<number> {
  const spent = { ns: 0n };
  const store = SqliteStore.open({ path: join(dir, `paced-${writer}.db`), flushMs: 50, writer, clock: timedTimers(spent) });
  try {
    const deadline = Date.now() + 20_000;
    while (writer === 'worker' && store.writerMode !== 'worker' && Date.now() < deadline) await sleep(10);
    if (store.writerMode !== writer) throw new Error(`store bench: writer ${store.writerMode}, wanted ${writer}`);
    for (let i = 0; i < records.length; i += 100) {
      const start = process.hrtime.bigint();
      const end = Math.min(records.length, i + 100);
      for (let j = i; j < end; j++) store.watcherSubscriptions.upsert(records[j]!);
      spent.ns += process.hrtime.bigint() - start;
      await sleep(10);
    }
    await sleep(200);
    store.flush();
    const n = store.watcherSubscriptions.count();
    if (n !== records.length) throw new Error(`store bench: paced ${writer} run wrote ${n} of ${records.length}`);
    return Number(spent.ns) / 1e3 / records.length;
  } finally {
    store.close();
  }
}

function record(n: number, now: number, cseq: number): WatcherSubscriptionRecord {
  return {
    id: `${n.toString(36)}-bench-subscription-key`,
    event: n % 3 === 0 ? 'dialog' : 'presence',
    resource: `user${n % 5000}`,
    entity: `sip:${1000 + (n % 5000)}@pbx.example.test`,
    callId: `${n.toString(16)}a84b4c76e66710@192.0.2.${n % 250}`,
    localTag: `gw${(n * 7919).toString(16)}`,
    remoteTag: `${n}1928301774`,
    localParty: `<sip:${1000 + (n % 5000)}@pbx.example.test>;tag=gw${(n * 7919).toString(16)}`,
    remoteParty: `"Attendant Console" <sip:console${n}@example.test>;tag=${n}1928301774`,
    remoteTarget: `sip:console${n}@192.0.2.${n % 250}:5060;transport=udp`,
    routeSet: [],
    localCseq: cseq,
    remoteCseq: 314159 + cseq,
    expiresAt: now + 3_600_000,
    contentType: 'application/pidf+xml',
    variant: 'default',
    transport: 'udp',
    destination: { protocol: 'udp', address: `192.0.2.${n % 250}`, port: 5060 },
    version: cseq,
    createdAt: now,
  };
}

function timeUpserts(store: GatewayStore, records: readonly WatcherSubscriptionRecord[]): number {
  const start = process.hrtime.bigint();
  for (const r of records) store.watcherSubscriptions.upsert(r);
  store.flush();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

export async function benchStore(count = 100_000): Promise<StoreBenchResult> {
  const now = Date.now();
  const created = Array.from({ length: count }, (_, i) => record(i, now, 1));
  const refreshed = Array.from({ length: count }, (_, i) => record(i, now + 1000, 2));
  const dir = mkdtempSync(join(tmpdir(), 'pg-store-bench-'));
  try {
    const path = join(dir, 'gateway.db');
    const store = SqliteStore.open({ path, flushMs: 50, writer: 'inline' });
    const createS = timeUpserts(store, created);
    const fileBytes = statSync(path).size + statSync(`${path}-wal`).size;
    const refreshS = timeUpserts(store, refreshed);
    let start = process.hrtime.bigint();
    const loaded = store.watcherSubscriptions.loadAll().length;
    const loadMs = Number(process.hrtime.bigint() - start) / 1e6;
    if (loaded !== count) throw new Error(`store bench: read back ${loaded} of ${count} records`);
    start = process.hrtime.bigint();
    for (const r of created) store.watcherSubscriptions.remove(r.id);
    store.flush();
    const removeS = Number(process.hrtime.bigint() - start) / 1e9;
    store.close();

    const memory = new MemoryStore();
    const memoryS = timeUpserts(memory, created);
    memory.close();

    const paced = created.slice(0, Math.min(count, 20_000));
    const workerMainUs = await pacedMainThread(dir, 'worker', paced);
    const inlineMainUs = await pacedMainThread(dir, 'inline', paced);

    return {
      records: count,
      upsertsPerSecond: Math.round(count / createS),
      createUs: (createS * 1e6) / count,
      refreshUs: (refreshS * 1e6) / count,
      removeUs: (removeS * 1e6) / count,
      memoryUpsertsPerSecond: Math.round(count / memoryS),
      loadMs,
      fileBytes,
      workerMainUs,
      inlineMainUs,
      pacedRecords: paced.length,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const count = Number(process.argv[2] ?? 100_000);
  const r = await benchStore(Number.isInteger(count) && count > 0 ? count : 100_000);
  process.stdout.write(
    `store: ${r.records} records, ${r.upsertsPerSecond} upserts/s (memory ${r.memoryUpsertsPerSecond}/s); ` +
      `create ${r.createUs.toFixed(2)} µs, refresh ${r.refreshUs.toFixed(2)} µs, remove ${r.removeUs.toFixed(2)} µs (inline writer); ` +
      `load ${r.loadMs.toFixed(0)} ms; file ${(r.fileBytes / 1048576).toFixed(1)} MiB\n` +
      `main thread per upsert, ${r.pacedRecords} paced at 10,000/s: write worker ${r.workerMainUs.toFixed(2)} µs, ` +
      `inline ${r.inlineMainUs.toFixed(2)} µs\n`,
  );
}
