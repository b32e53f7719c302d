/**
 * The embedded store: one SQLite file in WAL mode, written in batches.
 *
 * Writes go to a per-repository queue keyed like the table, so the last
 * write to a key wins inside a batch (create + refresh + refresh is one
 * upsert; create + remove is one delete). The queue is taken as one batch
 * flushMs after its first entry, or at once when maxQueued keys wait, and
 * written in one transaction by a worker thread with its own connection
 * (src/store/write-worker.ts): serializing the records and SQLite's time
 * stay off the main thread. One batch is written at a time; writes made
 * meanwhile queue for the next. Reads, the schema migration and backups use
 * the store's own connection on the main thread (WAL: readers see every
 * committed batch). ":memory:" and `writer: 'inline'` write on the main
 * thread; so does the store if the worker fails.
 *
 * With synchronous=NORMAL a committed batch survives the process being
 * killed (it is in the WAL); a SIGKILL loses at most the last flushMs of
 * writes (plus a batch still being committed, a few ms), a power cut may
 * also lose the last committed batches. flush() and close() wait for the
 * write synchronously (the SIGTERM path).
 *
 * Failures (disk full, locked, damaged file) are logged with the path and
 * shown in status(); the writes stay queued and are retried. Nothing here
 * throws into SIP handling; only opening throws (StoreError), at start-up.
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { silentLogger, type Logger } from '../util/logger.js';
import { MIGRATIONS, SCHEMA_VERSION } from './schema.js';
import { describeStoreError, errorCode } from './sqlite-errors.js';
import { configureConnection, type BatchOps } from './batch-writer.js';
import { InlineWriter, WorkerWriter, type BatchResult, type StoreWriter } from './writers.js';
import { StoreError, type GatewayStore, type MetaStore, type Repository, type RepositoryName, type StoreStatus } from './store.js';
import { META_TABLE, TABLES, type MetaRecord, type TableSpec } from './tables.js';
import type {
  DirectoryCacheRecord,
  GraphNotificationKeyRecord,
  GraphSavedPresenceRecord,
  GraphSubscriptionRecord,
  GraphTokenCacheRecord,
  PublicationRecord,
  UpstreamPublicationRecord,
  UpstreamSubscriptionRecord,
  WatcherSubscriptionRecord,
} from './records.js';
import { systemClock, type Clock, type Timer } from '../util/clock.js';

export interface SqliteStoreOptions {
  /** The database file (created 0600, with its directory 0700), or ":memory:". */
  path: string;
  /** Batch interval (default 50 ms). */
  flushMs?: number;
  /** Queued keys that trigger an immediate write (default 1,000). */
  maxQueued?: number;
  /** How long a write waits for a lock held by another connection (default 5,000 ms). */
  busyTimeoutMs?: number;
  /** Delay before a failed batch is tried again (default max(flushMs, 1,000) ms). */
  retryMs?: number;
  /** Where batches are written: a worker thread (default for a file) or the main thread (always for ":memory:"). */
  writer?: 'worker' | 'inline';
  logger?: Logger;
  /** The flush timer and the time of the last error (tests: a manual clock). */
  clock?: Clock;
}

/** What a repository needs from its store. */
interface Owner {
  enqueue(queue: Map<string, unknown>, key: string, value: unknown): void;
  /** Flush before a read; false when the store is closed. */
  beforeRead(): boolean;
  failed(error: unknown, action: string): void;
  skippedRow(table: string, key: string, why: string): void;
  dropped(table: string, key: string, error: unknown): void;
}

interface RowData {
  key: string;
  data: string;
}

/** Rows a page of SqliteRepository.each() reads at once. */
const EACH_PAGE_ROWS = 1000;

class SqliteRepository<R> implements Repository<R> {
  /** key → record to write, or null to delete */
  pending = new Map<string, R | null>();
  private inFlight: Map<string, R | null> | undefined = undefined;
  private readonly getStmt: Database.Statement<[string], RowData>;
  private readonly allStmt: Database.Statement<[], RowData>;
  private readonly pageStmt: Database.Statement<[string, number], RowData>;
  private readonly countStmt: Database.Statement<[], { n: number }>;

  constructor(
    private readonly owner: Owner,
    private readonly spec: TableSpec<R>,
    db: Database.Database,
  ) {
    const t = spec.table;
    this.getStmt = db.prepare(`SELECT key, data FROM ${t} WHERE key = ?`);
    this.allStmt = db.prepare(`SELECT key, data FROM ${t}`);
    this.pageStmt = db.prepare(`SELECT key, data FROM ${t} WHERE key > ? ORDER BY key LIMIT ?`);
    this.countStmt = db.prepare(`SELECT count(*) AS n FROM ${t}`);
  }

  get name(): string {
    return this.spec.table;
  }

  keyOf(record: R): string {
    return this.spec.keyOf(record);
  }

  upsert(record: R): void {
    this.owner.enqueue(this.pending as Map<string, unknown>, this.spec.keyOf(record), record);
  }

  remove(key: string): void {
    this.owner.enqueue(this.pending as Map<string, unknown>, key, null);
  }

  get(key: string): R | undefined {
    if (!this.owner.beforeRead()) return undefined;
    try {
      const row = this.getStmt.get(key);
      return row === undefined ? undefined : this.decode(row);
    } catch (error) {
      this.owner.failed(error, `read ${this.spec.table}`);
      return undefined;
    }
  }

  loadAll(): R[] {
    if (!this.owner.beforeRead()) return [];
    const out: R[] = [];
    try {
      for (const row of this.allStmt.iterate()) {
        const record = this.decode(row);
        if (record !== undefined) out.push(record);
      }
    } catch (error) {
      this.owner.failed(error, `read ${this.spec.table}`);
    }
    return out;
  }

  /**
   * Pages of EACH_PAGE_ROWS in key order (the primary key), each read whole before its records are yielded.
   * Queued writes are flushed before the first page only: a restore saves each record it revives, and a
   * flush a page would wait for the writer 100 times.
   */
  *each(): Iterable<R> {
    if (!this.owner.beforeRead()) return;
    let after = '';
    for (;;) {
      let rows: RowData[];
      try {
        rows = this.pageStmt.all(after, EACH_PAGE_ROWS);
      } catch (error) {
        this.owner.failed(error, `read ${this.spec.table}`);
        return;
      }
      for (const row of rows) {
        const record = this.decode(row);
        if (record !== undefined) yield record;
      }
      if (rows.length < EACH_PAGE_ROWS) return;
      after = rows[rows.length - 1]!.key;
    }
  }

  count(): number {
    if (!this.owner.beforeRead()) return 0;
    try {
      return this.countStmt.get()?.n ?? 0;
    } catch (error) {
      this.owner.failed(error, `count ${this.spec.table}`);
      return 0;
    }
  }

  private decode(row: RowData): R | undefined {
    let value: unknown;
    try {
      value = JSON.parse(row.data) as unknown;
    } catch {
      this.owner.skippedRow(this.spec.table, row.key, 'not JSON');
      return undefined;
    }
    const parsed = this.spec.schema.safeParse(value);
    if (!parsed.success) {
      this.owner.skippedRow(this.spec.table, row.key, parsed.error.issues[0]?.message ?? 'wrong shape');
      return undefined;
    }
    return parsed.data;
  }

  /** Take the queue for a batch (later writes start a new queue): appends its operations to `ops`. */
  takeBatch(ops: BatchOps, table: number): void {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.inFlight = batch;
    this.pending = new Map();
    const spec = this.spec;
    for (const [key, record] of batch) ops.push(table, key, record === null ? null : spec.expiresOf(record), record);
  }

  /** A record of the batch was dropped (not serializable): never requeued. */
  forget(key: string): void {
    this.inFlight?.delete(key);
  }

  /** After the transaction: on failure, requeue what no later write replaced. Returns keys requeued. */
  endBatch(ok: boolean): number {
    const batch = this.inFlight;
    this.inFlight = undefined;
    if (ok || batch === undefined) return 0;
    let requeued = 0;
    for (const [key, record] of batch) {
      if (this.pending.has(key)) continue;
      this.pending.set(key, record);
      requeued++;
    }
    return requeued;
  }
}

class SqliteMeta implements MetaStore {
  constructor(private readonly repo: SqliteRepository<MetaRecord>) {}
  get(key: string): string | undefined {
    return this.repo.get(key)?.value;
  }
  set(key: string, value: string): void {
    this.repo.upsert({ key, value });
  }
  delete(key: string): void {
    this.repo.remove(key);
  }
}

/** Create the file owner-only before SQLite opens it; tighten an existing one. */
function prepareFile(path: string, logger: Logger): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  try {
    closeSync(openSync(path, 'wx', 0o600));
    return;
  } catch (error) {
    if (errorCode(error) !== 'EEXIST') throw error;
  }
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    if (!existsSync(file)) continue;
    const mode = statSync(file).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      chmodSync(file, 0o600);
      logger.warn({ path: file, mode: mode.toString(8) }, 'store file was readable by others; now owner-only (0600)');
    }
  }
}

export class SqliteStore implements GatewayStore, Owner {
  readonly kind = 'sqlite' as const;
  readonly path: string;
  readonly watcherSubscriptions: Repository<WatcherSubscriptionRecord>;
  readonly publications: Repository<PublicationRecord>;
  readonly upstreamSubscriptions: Repository<UpstreamSubscriptionRecord>;
  readonly upstreamPublications: Repository<UpstreamPublicationRecord>;
  readonly graphSubscriptions: Repository<GraphSubscriptionRecord>;
  readonly directoryCache: Repository<DirectoryCacheRecord>;
  readonly graphNotificationKeys: Repository<GraphNotificationKeyRecord>;
  readonly graphSavedPresence: Repository<GraphSavedPresenceRecord>;
  readonly graphTokenCache: Repository<GraphTokenCacheRecord>;
  readonly meta: MetaStore;

  private db: Database.Database | undefined;
  private readonly repos: Array<SqliteRepository<unknown>>;
  /** Writes on the store's own connection: ":memory:", until the worker runs, and if it fails. */
  private readonly inline: InlineWriter;
  private worker: WorkerWriter | undefined;
  private readonly tableNames: string[];
  private readonly prunedTables: string[];
  private readonly flushMs: number;
  private readonly maxQueued: number;
  private readonly retryMs: number;
  private readonly logger: Logger;
    private readonly clock: Clock;
  private timer: Timer | undefined = undefined;
  private queued = 0;
  private failing = false;
  private lastError: string | undefined = undefined;
  private lastErrorAt: number | undefined = undefined;
  private flushes = 0;
  private written = 0;
  private droppedCount = 0;
  private skippedCount = 0;
  private warnedClosed = false;
  /** A batch is being written (one at a time). */
  private inFlight = false;
  /** The timer fired while a batch was being written: start the next one when it is answered. */
  private again = false;
  /** A synchronous wait (flush) is handling the answers: it starts what follows itself. */
  private syncWait = false;
  private lastOk = true;
  /** Set when the worker failed and the store switched to writing itself. */
  private fellBack = false;

  /**
   * Open (creating and migrating as needed). Throws StoreError naming the
   * file and the fix when it cannot be used.
   */
  static open(options: SqliteStoreOptions): SqliteStore {
    const logger = options.logger ?? silentLogger();
    const path = options.path;
    let db: Database.Database | undefined;
    try {
      if (path !== ':memory:') prepareFile(path, logger);
      db = new Database(path, { timeout: options.busyTimeoutMs ?? 5000 });
      // reads the header: a foreign or damaged file fails here
      db.prepare('SELECT count(*) FROM sqlite_schema').get();
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (path !== ':memory:' && mode !== 'wal') {
        logger.warn({ path, journalMode: mode }, 'store: WAL journal not available on this file system; writes are slower');
      }
      configureConnection(db, options.busyTimeoutMs ?? 5000);
      migrate(db, path, logger);
      return new SqliteStore(db, options, logger);
    } catch (error) {
      db?.close();
      if (error instanceof StoreError) throw error;
      throw new StoreError(describeStoreError(error, path), path, errorCode(error));
    }
  }

  private constructor(
    db: Database.Database,
    options: SqliteStoreOptions,
    logger: Logger,
  ) {
    this.db = db;
    this.path = options.path;
    this.flushMs = options.flushMs ?? 50;
    this.maxQueued = options.maxQueued ?? 1000;
    this.retryMs = options.retryMs ?? Math.max(this.flushMs, 1000);
    this.logger = logger;
    this.clock = options.clock ?? systemClock;

    const watchers = new SqliteRepository(this, TABLES.watcherSubscriptions, db);
    const publications = new SqliteRepository(this, TABLES.publications, db);
    const upSubs = new SqliteRepository(this, TABLES.upstreamSubscriptions, db);
    const upPubs = new SqliteRepository(this, TABLES.upstreamPublications, db);
    const graph = new SqliteRepository(this, TABLES.graphSubscriptions, db);
    const directory = new SqliteRepository(this, TABLES.directoryCache, db);
    const keys = new SqliteRepository(this, TABLES.graphNotificationKeys, db);
    const saved = new SqliteRepository(this, TABLES.graphSavedPresence, db);
    const tokenCache = new SqliteRepository(this, TABLES.graphTokenCache, db);
    const meta = new SqliteRepository(this, META_TABLE, db);
    this.watcherSubscriptions = watchers;
    this.publications = publications;
    this.upstreamSubscriptions = upSubs;
    this.upstreamPublications = upPubs;
    this.graphSubscriptions = graph;
    this.directoryCache = directory;
    this.graphNotificationKeys = keys;
    this.graphSavedPresence = saved;
    this.graphTokenCache = tokenCache;
    this.meta = new SqliteMeta(meta);
    this.repos = [watchers, publications, upSubs, upPubs, graph, directory, keys, saved, tokenCache, meta] as Array<SqliteRepository<unknown>>;

    this.tableNames = this.repos.map((r) => r.name);
    this.prunedTables = Object.values(TABLES)
      .filter(
        (t) =>
          t.table !== TABLES.directoryCache.table &&
          t.table !== TABLES.graphNotificationKeys.table &&
          t.table !== TABLES.graphSavedPresence.table &&
          t.table !== TABLES.graphTokenCache.table,
      )
      .map((t) => t.table);
    const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    const useWorker = options.path !== ':memory:' && (options.writer ?? 'worker') === 'worker';
    this.inline = new InlineWriter(db, this.tableNames, this.prunedTables);
    this.worker = useWorker
      ? new WorkerWriter({ path: options.path, busyTimeoutMs, tables: this.tableNames, pruned: this.prunedTables })
      : undefined;
  }

  /** 'worker' while batches are written on the worker thread, 'inline' on the main thread (also before the worker runs). */
  get writerMode(): 'worker' | 'inline' {
    return this.writer().mode;
  }

  private writer(): StoreWriter {
    const worker = this.worker;
    if (worker === undefined) return this.inline;
    if (worker.ready()) return worker;
    const failure = worker.failed;
    if (failure !== undefined) this.fallBackInline(failure);
    return this.inline;
  }

  // ---- Owner (called by the repositories; not for other callers) ----

  enqueue(queue: Map<string, unknown>, key: string, value: unknown): void {
    if (this.db === undefined) {
      if (!this.warnedClosed) {
        this.warnedClosed = true;
        this.logger.warn({ path: this.path, key }, 'store write after close ignored');
      }
      return;
    }
    const before = queue.size;
    queue.set(key, value);
    if (queue.size > before) this.queued++;
    if (this.queued >= this.maxQueued && !this.failing) this.writeNow();
    else if (this.timer === undefined) this.arm(this.failing ? this.retryMs : this.flushMs);
  }

  beforeRead(): boolean {
    if (this.db === undefined) return false;
    this.flush();
    return true;
  }

  failed(error: unknown, action: string): void {
    const message = describeStoreError(error, this.path);
    // one error line per new failure, not one per retry
    const level = message === this.lastError && this.failing ? 'debug' : 'error';
    this.lastError = message;
    this.lastErrorAt = this.clock.now();
    this.logger[level]({ err: error, path: this.path, action, queued: this.queued }, `store ${action} failed: ${message}`);
  }

  skippedRow(table: string, key: string, why: string): void {
    this.skippedCount++;
    if (this.skippedCount <= 10) this.logger.warn({ path: this.path, table, key, why }, 'store row skipped: not a valid record');
  }

  dropped(table: string, key: string, error: unknown): void {
    this.droppedCount++;
    this.logger.error({ err: error, path: this.path, table, key }, 'store record dropped: not serializable');
  }

  // ---- GatewayStore ----

  flush(): boolean {
    this.disarm();
    if (this.db === undefined) return this.queued === 0;
    if (this.inFlight) this.settleSync();
    this.again = false;
    if (this.queued === 0) return true;
    this.fellBack = false;
    if (!this.startBatch()) return true;
    this.settleSync();
    if (!this.lastOk && this.fellBack) {
      // the worker died with the batch: write it here, now
      this.fellBack = false;
      this.disarm();
      if (this.startBatch()) this.settleSync();
    }
    return this.lastOk;
  }

  /**
   * Block until the batch being written (if any) is committed or has failed;
   * starts nothing new. For tests and tools that look at the file.
   */
  waitForWrites(): void {
    if (this.inFlight) this.settleSync();
  }

  pruneExpired(now: number): number {
    if (!this.beforeRead() || this.db === undefined) return 0;
    try {
      return this.writer().prune(now);
    } catch (error) {
      this.failed(error, 'prune');
      return 0;
    }
  }

  /** Only this process writes the store: nothing to read again. */
  reload(_repositories: ReadonlyArray<RepositoryName>): Promise<void> {
    return Promise.resolve();
  }

  close(): void {
    if (this.db === undefined) return;
    this.flush();
    if (this.timer !== undefined) {
      this.timer.cancel();
      this.timer = undefined;
    }
    if (this.queued > 0) {
      this.logger.error({ path: this.path, queued: this.queued }, 'store closed with writes that could not be saved');
    }
    try {
      this.worker?.close();
    } catch (error) {
      this.failed(error, 'close');
    }
    try {
      this.db.close();
    } catch (error) {
      this.failed(error, 'close');
    }
    this.db = undefined;
  }

  status(): StoreStatus {
    return {
      ok: this.db !== undefined && !this.failing,
      kind: this.kind,
      path: this.path,
      queued: this.queued,
      lastError: this.lastError,
      lastErrorAt: this.lastErrorAt,
      flushes: this.flushes,
      written: this.written,
      dropped: this.droppedCount,
      skipped: this.skippedCount,
    };
  }

  /** An online copy of the database to `destination` (consistent while the gateway runs). */
  async backup(destination: string): Promise<void> {
    if (this.db === undefined) throw new StoreError(`store ${this.path} is closed`, this.path, undefined);
    this.flush();
    await this.db.backup(destination);
  }

  private arm(ms: number): void {
    // systemClock's timer is unref'd: the process may exit with writes queued only through a signal, whose handler calls close()
    this.timer = this.clock.after(ms, this.onTimer);
  }

  private disarm(): void {
    if (this.timer === undefined) return;
    this.timer.cancel();
    this.timer = undefined;
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.startBatch();
  };

  /** maxQueued keys wait: write them now; when a batch is still being written, wait for it first (back-pressure). */
  private writeNow(): void {
    this.disarm();
    if (this.inFlight) this.settleSync();
    this.startBatch();
  }

  private settleSync(): void {
    this.syncWait = true;
    try {
      this.worker?.waitIdle();
    } finally {
      this.syncWait = false;
    }
  }

  /** Hand the queue to the writer as one batch. False when nothing was sent (empty, or one is being written). */
  private startBatch(): boolean {
    if (this.db === undefined || this.queued === 0) return false;
    if (this.inFlight) {
      this.again = true;
      return false;
    }
    const ops: BatchOps = [];
    for (let i = 0; i < this.repos.length; i++) this.repos[i]!.takeBatch(ops, i);
    this.queued = 0;
    this.again = false;
    if (ops.length === 0) return false;
    // the batch takes everything queued: a pending timer has nothing left to do
    this.disarm();
    this.inFlight = true;
    this.writer().write(ops, this.onWritten);
    return true;
  }

  private readonly onWritten = (result: BatchResult): void => {
    this.inFlight = false;
    if (result.ok) {
      for (const d of result.dropped) {
        const repo = this.repos[d.table];
        repo?.forget(d.key);
        this.dropped(repo?.name ?? String(d.table), d.key, new Error(d.error));
      }
      for (const repo of this.repos) repo.endBatch(true);
      this.flushes++;
      this.written += result.rows;
      this.lastOk = true;
      if (this.failing) this.logger.info({ path: this.path, rows: result.rows }, 'store writes recovered');
      this.failing = false;
    } else {
      // requeue what no later write replaced
      for (const repo of this.repos) this.queued += repo.endBatch(false);
      this.lastOk = false;
      if (result.fatal) {
        this.fallBackInline(result.error);
      } else {
        this.failed(result.error, 'write');
        this.failing = true;
      }
      if (this.timer === undefined && this.queued > 0) this.arm(this.failing ? this.retryMs : this.flushMs);
    }
    if (this.again && !this.failing) {
      if (!this.syncWait) this.startBatch();
      else if (this.timer === undefined && this.queued > 0) {
        // a synchronous wait (flush, back-pressure, waitForWrites) took this answer: keep the deferred batch timed
        this.again = false;
        this.arm(this.flushMs);
      }
    }
  };

  /** The write worker is gone: write on the main thread from now on. */
  private fallBackInline(error: unknown): void {
    const worker = this.worker;
    if (worker === undefined) return;
    this.worker = undefined;
    this.fellBack = true;
    this.logger.error({ err: error, path: this.path }, 'store write worker failed; writing on the main thread from now on');
    try {
      worker.close();
    } catch {
      // gone already
    }
  }
}

function migrate(db: Database.Database, path: string, logger: Logger): void {
  const raw = db.pragma('user_version', { simple: true });
  const version = typeof raw === 'number' ? raw : 0;
  if (version > SCHEMA_VERSION) {
    throw new StoreError(
      `store file ${path} has schema version ${version}, newer than this gateway's ${SCHEMA_VERSION}: ` +
        'a newer release wrote it. Fix: run that release, or move the file aside to start with an empty store.',
      path,
      'SCHEMA_TOO_NEW',
    );
  }
  if (version === SCHEMA_VERSION) return;
  db.transaction(() => {
    for (let v = version; v < SCHEMA_VERSION; v++) {
      for (const statement of MIGRATIONS[v] ?? []) db.exec(statement);
      db.pragma(`user_version = ${v + 1}`);
    }
    db.prepare(
      `INSERT INTO ${META_TABLE.table} (key, expires_at, data) VALUES ('schemaVersion', NULL, ?) ` +
        'ON CONFLICT(key) DO UPDATE SET data = excluded.data',
    ).run(JSON.stringify({ key: 'schemaVersion', value: String(SCHEMA_VERSION) }));
  })();
  logger.info({ path, from: version, to: SCHEMA_VERSION }, 'store schema migrated');
}
