/**
 * The store's write worker (a worker thread): owns the connection that
 * writes batches, so SQLite's time (and record serialization) is not spent
 * on the main thread that handles SIP.
 *
 * Jobs come in order on the port in workerData; each is answered on the
 * same port, then the shared counter is raised and notified, so the main
 * thread can also wait for an answer synchronously (flush, close).
 * Nothing here throws out: a failed job is answered with the error.
 * Slot 1 of the shared counter is set once the worker takes jobs.
 */
import { workerData, type MessagePort } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { configureConnection, createBatchWriter, type BatchWriter } from './batch-writer.js';
import type { WorkerData, WriterJob, WriterResult } from './writer-protocol.js';

const data = workerData as WorkerData;
const port: MessagePort = data.port;
const done = new Int32Array(data.signal);

function errorOf(error: unknown): { message: string; code: string | undefined } {
  const message = error instanceof Error ? error.message : String(error);
  const raw = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return { message, code: typeof raw === 'string' ? raw : undefined };
}

let db: Database.Database | undefined;
let writer: BatchWriter | undefined;
let openError: { message: string; code: string | undefined } | undefined;
try {
  db = new Database(data.path, { timeout: data.busyTimeoutMs });
  configureConnection(db, data.busyTimeoutMs);
  writer = createBatchWriter(db, data.tables, data.pruned);
} catch (error) {
  openError = errorOf(error);
  db?.close();
  db = undefined;
}

function run(job: WriterJob): WriterResult {
  if (job.kind === 'close') {
    try {
      db?.close();
    } catch (error) {
      return { job: job.job, ok: false, error: errorOf(error) };
    } finally {
      db = undefined;
      writer = undefined;
    }
    return { job: job.job, ok: true, rows: 0, dropped: [] };
  }
  if (writer === undefined) {
    return { job: job.job, ok: false, fatal: true, error: openError ?? { message: 'write connection closed', code: undefined } };
  }
  try {
    if (job.kind === 'prune') return { job: job.job, ok: true, rows: writer.prune(job.now), dropped: [] };
    const outcome = writer.write(job.ops);
    return { job: job.job, ok: true, rows: outcome.rows, dropped: outcome.dropped };
  } catch (error) {
    return { job: job.job, ok: false, error: errorOf(error) };
  }
}

port.on('message', (job: WriterJob) => {
  const result = run(job);
  // the answer first, then the counter: once the main thread sees the counter, the answer can be received
  port.postMessage(result);
  Atomics.add(done, 0, 1);
  Atomics.notify(done, 0);
  if (job.kind === 'close') port.close();
});
// ready: the store sends batches here from now on (before, it writes them itself)
Atomics.store(done, 1, 1);
