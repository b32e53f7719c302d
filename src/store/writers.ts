/**
 * Where the store's batches are written: on a worker thread with its own
 * connection (the default for a file), or on the store's own connection
 * (":memory:", tests, and the fallback when the worker fails).
 *
 * The worker is answered asynchronously for timer batches; flush(), close()
 * and prune wait for it synchronously (Atomics.wait on a shared counter,
 * then receiveMessageOnPort), so the GatewayStore interface stays
 * synchronous. Jobs go to the worker only once it is running (ready()).
 */
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { createBatchWriter, OP_SLOTS, type BatchOps, type BatchWriter, type DroppedRecord } from './batch-writer.js';
import type { WorkerData, WriterJob, WriterResult } from './writer-protocol.js';

export type BatchResult =
  | { ok: true; rows: number; dropped: DroppedRecord[] }
  /** fatal: the writer is gone (worker stopped); nothing of the batch was confirmed. */
  | { ok: false; fatal: boolean; error: unknown };

export interface StoreWriter {
  readonly mode: 'worker' | 'inline';
  /** Write one batch; `done` runs once with the result (inline: before write() returns). */
  write(ops: BatchOps, done: (result: BatchResult) => void): void;
  /** Block until every batch written so far is answered (its `done` has run). */
  waitIdle(): void;
  /** Delete expired rows, synchronously; throws the SQLite error. */
  prune(now: number): number;
  /** Release the writer's connection (after waitIdle). Throws the SQLite error. */
  close(): void;
}

export class InlineWriter implements StoreWriter {
  readonly mode = 'inline' as const;
  private readonly writer: BatchWriter;

  constructor(db: Database.Database, tables: readonly string[], pruned: readonly string[]) {
    this.writer = createBatchWriter(db, tables, pruned);
  }

  write(ops: BatchOps, done: (result: BatchResult) => void): void {
    let result: BatchResult;
    try {
      const outcome = this.writer.write(ops);
      result = { ok: true, rows: outcome.rows, dropped: outcome.dropped };
    } catch (error) {
      result = { ok: false, fatal: false, error };
    }
    done(result);
  }

  waitIdle(): void {}

  prune(now: number): number {
    return this.writer.prune(now);
  }

  close(): void {}
}

export interface WorkerWriterOptions {
  path: string;
  busyTimeoutMs: number;
  tables: readonly string[];
  pruned: readonly string[];
  /** Longest a synchronous wait lasts before the worker is given up (default busyTimeoutMs + 60 s). */
  waitLimitMs?: number;
}

/**
 * The worker next to this file: write-worker.js when built; under tsx
 * (tests, sources) write-worker.ts, loaded through tsx's loader registered
 * in the worker itself (a worker does not reliably inherit the parent's
 * loaders, e.g. under tap).
 */
/**
 * The writer only stringifies batches of at most a thousand records: a small heap keeps V8 collecting
 * early instead of letting the worker grow by tens of MB under a subscription burst.
 */
const WORKER_LIMITS = { maxOldGenerationSizeMb: 48, maxYoungGenerationSizeMb: 4 };

function startWorker(base: { workerData: WorkerData; transferList: MessagePort[] }): Worker {
  const options = { ...base, resourceLimits: WORKER_LIMITS };
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./write-worker.js', import.meta.url), options);
  const file = new URL('./write-worker.ts', import.meta.url).href;
  let api = 'tsx/esm/api';
  try {
    api = import.meta.resolve(api);
  } catch {
    // resolved from the working directory then
  }
  const boot = `import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(file)}); })`;
  return new Worker(boot, { ...options, eval: true });
}

function asError(e: { message: string; code: string | undefined }): Error {
  return Object.assign(new Error(e.message), { code: e.code });
}

export class WorkerWriter implements StoreWriter {
  readonly mode = 'worker' as const;
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly answered: Int32Array;
  private readonly waitLimitMs: number;
  private readonly waiting = new Map<number, (result: WriterResult) => void>();
  private nextJob = 1;
  private dead: Error | undefined = undefined;
  private closing = false;

  constructor(options: WorkerWriterOptions) {
    this.waitLimitMs = options.waitLimitMs ?? options.busyTimeoutMs + 60_000;
    const signal = new SharedArrayBuffer(8);
    this.answered = new Int32Array(signal);
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    const data: WorkerData = {
      path: options.path,
      busyTimeoutMs: options.busyTimeoutMs,
      tables: options.tables,
      pruned: options.pruned,
      signal,
      port: port2,
    };
    this.worker = startWorker({ workerData: data, transferList: [port2] });
    this.port.on('message', (result: WriterResult) => this.answer(result));
    // like the flush timer: a process ending without close() does not wait for the worker
    this.port.unref();
    this.worker.unref();
    this.worker.on('error', (error) => this.die(error));
    this.worker.on('exit', (code) => {
      if (!this.closing) this.die(new Error(`store write worker exited (code ${code})`));
    });
  }

  /**
   * True once the worker has started and takes jobs. Until then the store
   * writes itself: starting a worker (loading its modules) may need the main
   * thread, which a synchronous wait would block.
   */
  ready(): boolean {
    return this.dead === undefined && Atomics.load(this.answered, 1) === 1;
  }

  get failed(): Error | undefined {
    return this.dead;
  }

  write(ops: BatchOps, done: (result: BatchResult) => void): void {
    let dropped: DroppedRecord[] = [];
    const job = this.nextJob++;
    const posted = this.post({ job, kind: 'write', ops }, (result) => {
      if (!result.ok) done({ ok: false, fatal: result.fatal === true, error: asError(result.error) });
      else done({ ok: true, rows: result.rows, dropped: dropped.length === 0 ? result.dropped : [...dropped, ...result.dropped] });
    });
    if (posted) return;
    // the structured clone refused a record (a function, a symbol): post JSON copies, drop what has none
    const clean: BatchOps = [];
    dropped = [];
    for (let i = 0; i + OP_SLOTS <= ops.length; i += OP_SLOTS) {
      let record = ops[i + 3];
      if (record !== null) {
        try {
          record = JSON.parse(JSON.stringify(record)) as unknown;
        } catch (error) {
          dropped.push({ table: ops[i] as number, key: ops[i + 1] as string, error: error instanceof Error ? error.message : String(error) });
          continue;
        }
      }
      clean.push(ops[i], ops[i + 1], ops[i + 2], record);
    }
    if (!this.post({ job, kind: 'write', ops: clean }, this.waiting.get(job) ?? (() => undefined))) {
      this.waiting.delete(job);
      done({ ok: false, fatal: this.dead !== undefined, error: this.dead ?? new Error('store batch could not be sent to the write worker') });
    }
  }

  waitIdle(): void {
    const limit = Date.now() + this.waitLimitMs;
    while (this.waiting.size > 0) {
      const seen = Atomics.load(this.answered, 0);
      const message = receiveMessageOnPort(this.port);
      if (message !== undefined) {
        this.answer(message.message as WriterResult);
        continue;
      }
      if (this.worker.threadId === -1) {
        this.die(new Error('store write worker stopped'));
        return;
      }
      if (Date.now() > limit) {
        this.die(new Error(`store write worker did not answer within ${this.waitLimitMs} ms`));
        void this.worker.terminate();
        return;
      }
      Atomics.wait(this.answered, 0, seen, 50);
    }
  }

  prune(now: number): number {
    const result = this.call({ job: this.nextJob++, kind: 'prune', now });
    if (!result.ok) throw asError(result.error);
    return result.rows;
  }

  close(): void {
    if (this.dead !== undefined || !this.ready()) {
      this.closing = true;
      void this.worker.terminate();
      return;
    }
    const result = this.call({ job: this.nextJob++, kind: 'close' });
    this.closing = true;
    void this.worker.terminate();
    if (!result.ok) throw asError(result.error);
  }

  /** Post a job, wait for its answer. */
  private call(job: WriterJob): WriterResult {
    let answer: WriterResult | undefined;
    if (this.post(job, (r) => (answer = r))) this.waitIdle();
    return answer ?? { job: job.job, ok: false, fatal: true, error: { message: this.dead?.message ?? 'store write worker not answering', code: undefined } };
  }

  /** False when the job could not be posted (clone refused, or the worker is gone). */
  private post(job: WriterJob, onAnswer: (result: WriterResult) => void): boolean {
    if (this.dead !== undefined) return false;
    this.waiting.set(job.job, onAnswer);
    try {
      this.port.postMessage(job);
      return true;
    } catch {
      return false;
    }
  }

  private answer(result: WriterResult): void {
    const onAnswer = this.waiting.get(result.job);
    if (onAnswer === undefined) return;
    this.waiting.delete(result.job);
    onAnswer(result);
  }

  /** The worker is gone: every waiting job fails (fatal), later ones are refused. */
  private die(error: Error): void {
    if (this.dead !== undefined) return;
    this.dead = error;
    const waiting = [...this.waiting.entries()];
    this.waiting.clear();
    for (const [job, onAnswer] of waiting) onAnswer({ job, ok: false, fatal: true, error: { message: error.message, code: undefined } });
  }
}
