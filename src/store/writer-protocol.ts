/** Messages between the store (main thread) and its write worker. */
import type { MessagePort } from 'node:worker_threads';
import type { BatchOps, DroppedRecord } from './batch-writer.js';

export interface WorkerData {
  path: string;
  busyTimeoutMs: number;
  /** Table names by batch table index. */
  tables: readonly string[];
  /** Tables prune() deletes expired rows from. */
  pruned: readonly string[];
  /** Int32Array: [0] answered jobs, [1] 1 once the worker takes jobs. */
  signal: SharedArrayBuffer;
  port: MessagePort;
}

export type WriterJob =
  | { job: number; kind: 'write'; ops: BatchOps }
  | { job: number; kind: 'prune'; now: number }
  | { job: number; kind: 'close' };

export type WriterResult =
  | { job: number; ok: true; rows: number; dropped: DroppedRecord[] }
  /** fatal: the worker has no connection (could not open the file); the store writes itself from then on. */
  | { job: number; ok: false; fatal?: true; error: { message: string; code: string | undefined } };
