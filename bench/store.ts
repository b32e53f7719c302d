/**
 * Store benchmark: what persistence costs the subscription path.
 *   upserts/s     distinct watcher subscriptions written through the batching writer (queue + transactions)
 *   create/refresh/remove   µs per operation, batch writes included (a refresh rewrites the row)
 *   memory        the same upserts into the MemoryStore, for comparison
 *   load          ms to read every record back (the start-up restore)
 * Records are built before timing; only the store's work is measured. The
 * file lives in a temporary directory, removed at the end.
 * Run alone: node dist/bench/store.js [records]
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
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

export function benchStore(count = 100_000): StoreBenchResult {
  const now = Date.now();
  const created = Array.from({ length: count }, (_, i) => record(i, now, 1));
  const refreshed = Array.from({ length: count }, (_, i) => record(i, now + 1000, 2));
  const dir = mkdtempSync(join(tmpdir(), 'pg-store-bench-'));
  try {
    const path = join(dir, 'gateway.db');
    const store = SqliteStore.open({ path, flushMs: 50 });
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

    return {
      records: count,
      upsertsPerSecond: Math.round(count / createS),
      createUs: (createS * 1e6) / count,
      refreshUs: (refreshS * 1e6) / count,
      removeUs: (removeS * 1e6) / count,
      memoryUpsertsPerSecond: Math.round(count / memoryS),
      loadMs,
      fileBytes,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const count = Number(process.argv[2] ?? 100_000);
  const r = benchStore(Number.isInteger(count) && count > 0 ? count : 100_000);
  process.stdout.write(
    `store: ${r.records} records, ${r.upsertsPerSecond} upserts/s (memory ${r.memoryUpsertsPerSecond}/s); ` +
      `create ${r.createUs.toFixed(2)} µs, refresh ${r.refreshUs.toFixed(2)} µs, remove ${r.removeUs.toFixed(2)} µs; ` +
      `load ${r.loadMs.toFixed(0)} ms; file ${(r.fileBytes / 1048576).toFixed(1)} MiB\n`,
  );
}
