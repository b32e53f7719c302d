/**
 * The shared store: every node of a cluster keeps its state in one Redis
 * (`store.redis`), under the key layout of keys.ts.
 *
 * Opening reads everything into memory once (a SCAN per table; watcher
 * subscriptions and publications only as far as this node owns them, its
 * {p}owned:{nodeId} set), so loadAll, get and count stay synchronous, as
 * with SQLite. Writes change the memory copy at once and are queued per key
 * (the last write to a key wins: a remove replaces an upsert); every flushMs
 * the queue is written in one MULTI: SET json PXAT expiresAt (Redis expires
 * the record itself), DEL on remove, and for owned records their owner entry
 * and owned set in the same script (scripts.ts). A record another node has
 * taken over since is not written over (its write is dropped, and the memory
 * copy forgets it).
 *
 * Redis unreachable: nothing is lost. The queue keeps the latest value per
 * key and is written when Redis is back (at once on reconnect); status()
 * says ok false with the URL and the fix, queued shows the backlog. Reads
 * go on from memory.
 *
 * flush() is synchronous in GatewayStore; here it starts the write and
 * returns whether the last one succeeded. flushAsync() resolves when what
 * was queued is written, closeAsync() after the last write.
 */
import type { Redis } from 'ioredis';
import { inputSlot, type HubInput } from '../../core/hub-input.js';
import { systemClock, type Clock, type Timer } from '../../util/clock.js';
import { silentLogger, type Logger } from '../../util/logger.js';
import type { Ownership, SharedPersonState } from '../cluster.js';
import type { PublicationRecord, WatcherSubscriptionRecord } from '../records.js';
import { MemoryRepository } from '../memory-store.js';
import { StoreError, type GatewayStore, type MetaStore, type RepositoryName, type StoreStatus } from '../store.js';
import { TABLES, type TableSpec } from '../tables.js';
import { connectRedis, redactRedisUrl, redisHealth, type RedisHealth, type RedisStoreConfig } from './connection.js';
import { keyLayout, type KeyLayout } from './keys.js';
import { CLAIM_NODE, CLAIM_ONE, DEL_OWNED, PUT_OWNED } from './scripts.js';

export interface RedisStoreOptions {
  config: RedisStoreConfig;
  /** This node (config.cluster, resolveNodeId): whose owned set is loaded and written. */
  nodeId: string;
  /** Batch interval (default 50 ms). */
  flushMs?: number;
  logger?: Logger;
  /** The flush timer, and the `at` of saved inputs (tests: a manual clock). */
  clock?: Clock;
  /** How long open() waits for Redis before giving up (default 10,000 ms). */
  connectTimeoutMs?: number;
  /** Delay before a failed write is tried again while connected (default max(flushMs, 1,000) ms). */
  retryMs?: number;
}

/** Keys fetched per MGET / SCAN step. */
const CHUNK = 1000;

function copy<R>(record: R): R {
  return JSON.parse(JSON.stringify(record)) as R;
}

/** What a repository needs from its store. */
interface Owner {
  enqueue(): boolean;
  skippedRow(table: string, key: string, why: string): void;
}

/** The memory copy (MemoryRepository) of one table, with its writes queued for Redis. */
class RedisRepository<R> extends MemoryRepository<R> {
  /** key → record to write, or null to delete */
  pending = new Map<string, R | null>();
  inFlight: Map<string, R | null> | undefined = undefined;

  constructor(
    private readonly owner: Owner,
    spec: TableSpec<R>,
    /** Watcher subscriptions and publications: each node loads only its own. */
    readonly owned: boolean,
    readonly repoName: RepositoryName,
  ) {
    super(spec, () => false);
  }

  override upsert(record: R): void {
    if (!this.owner.enqueue()) return;
    const key = this.spec.keyOf(record);
    this.rows.set(key, record);
    this.pending.set(key, record);
  }

  override remove(key: string): void {
    if (!this.owner.enqueue()) return;
    this.rows.delete(key);
    this.pending.set(key, null);
  }

  decode(key: string, json: string | null): R | undefined {
    if (json === null) return undefined;
    let value: unknown;
    try {
      value = JSON.parse(json) as unknown;
    } catch {
      this.owner.skippedRow(this.spec.table, key, 'not JSON');
      return undefined;
    }
    const parsed = this.spec.schema.safeParse(value);
    if (!parsed.success) {
      this.owner.skippedRow(this.spec.table, key, parsed.error.issues[0]?.message ?? 'wrong shape');
      return undefined;
    }
    return parsed.data;
  }

  /** Replace the memory copy with what Redis holds, keeping the writes not yet written on top. */
  replaceRows(fromRedis: Map<string, R>): void {
    for (const queue of [this.inFlight, this.pending]) {
      if (queue === undefined) continue;
      for (const [key, record] of queue) {
        if (record === null) fromRedis.delete(key);
        else fromRedis.set(key, record);
      }
    }
    this.rows.clear();
    for (const [key, record] of fromRedis) this.rows.set(key, record);
  }

  takeBatch(): Map<string, R | null> {
    const batch = this.pending;
    this.inFlight = batch;
    this.pending = new Map();
    return batch;
  }

  /** After the write: on failure, requeue what no later write replaced. */
  endBatch(ok: boolean): void {
    const batch = this.inFlight;
    this.inFlight = undefined;
    if (ok || batch === undefined) return;
    for (const [key, record] of batch) if (!this.pending.has(key)) this.pending.set(key, record);
  }
}

interface PersonWrite {
  hash: string;
  slot: string;
  json: string;
}

interface StoredInput {
  at: number;
  input: HubInput;
}

function isStoredInput(value: unknown): value is StoredInput {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { at?: unknown; input?: unknown };
  return typeof v.at === 'number' && typeof v.input === 'object' && v.input !== null && typeof (v.input as { kind?: unknown }).kind === 'string';
}

export class RedisStore implements GatewayStore, Owner {
  readonly kind = 'redis' as const;
  /** The URL without its password. */
  readonly path: string;
  readonly nodeId: string;
  readonly watcherSubscriptions = new RedisRepository(this, TABLES.watcherSubscriptions, true, 'watcherSubscriptions');
  readonly publications = new RedisRepository(this, TABLES.publications, true, 'publications');
  readonly upstreamSubscriptions = new RedisRepository(this, TABLES.upstreamSubscriptions, false, 'upstreamSubscriptions');
  readonly upstreamPublications = new RedisRepository(this, TABLES.upstreamPublications, false, 'upstreamPublications');
  readonly graphSubscriptions = new RedisRepository(this, TABLES.graphSubscriptions, false, 'graphSubscriptions');
  readonly directoryCache = new RedisRepository(this, TABLES.directoryCache, false, 'directoryCache');
  readonly graphNotificationKeys = new RedisRepository(this, TABLES.graphNotificationKeys, false, 'graphNotificationKeys');
  readonly graphSavedPresence = new RedisRepository(this, TABLES.graphSavedPresence, false, 'graphSavedPresence');
  readonly graphTokenCache = new RedisRepository(this, TABLES.graphTokenCache, false, 'graphTokenCache');
  readonly meta: MetaStore;
  readonly ownership: Ownership;
  readonly personState: SharedPersonState;
  /** The store connection's state (cluster wiring, /readyz). */
  readonly health: RedisHealth;

  private readonly redis: Redis;
  private readonly keys: KeyLayout;
  private readonly repos: Array<RedisRepository<unknown>>;
  private metaRows = new Map<string, string>();
  private metaPending = new Map<string, string | null>();
  private metaInFlight: Map<string, string | null> | undefined;
  private personPending = new Map<string, PersonWrite>();
  private personInFlight: Map<string, PersonWrite> | undefined;
  private readonly flushMs: number;
  private readonly retryMs: number;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private timer: Timer | undefined;
  private current: Promise<boolean> | undefined;
  private closing: Promise<void> | undefined;
  private closed = false;
  private warnedClosed = false;
  private failing = false;
  private lastOk = true;
  private lastError: string | undefined;
  private lastErrorAt: number | undefined;
  private flushes = 0;
  private written = 0;
  private droppedCount = 0;
  private skippedCount = 0;

  /**
   * Connect and read everything into memory. Throws StoreError (naming the
   * URL without its password and the fix) when Redis cannot be reached.
   */
  static async open(options: RedisStoreOptions): Promise<RedisStore> {
    const logger = options.logger ?? silentLogger();
    const url = redactRedisUrl(options.config.url);
    const redis = connectRedis(options.config, logger, 'store');
    try {
      await waitReady(redis, options.connectTimeoutMs ?? 10_000, url);
      const store = new RedisStore(redis, options, logger);
      await store.loadAll();
      logger.info({ url, nodeId: store.nodeId, ...store.counts() }, 'redis store loaded');
      return store;
    } catch (error) {
      redis.disconnect();
      if (error instanceof StoreError) throw error;
      throw new StoreError(`store.redis: reading ${url} failed: ${errorText(error)}. Fix: check that ${url} is a Redis 7 the gateway may read`, url, 'REDIS_READ');
    }
  }

  private constructor(redis: Redis, options: RedisStoreOptions, logger: Logger) {
    this.redis = redis;
    this.path = redactRedisUrl(options.config.url);
    this.nodeId = options.nodeId;
    this.keys = keyLayout(options.config.keyPrefix);
    this.flushMs = options.flushMs ?? 50;
    this.retryMs = options.retryMs ?? Math.max(this.flushMs, 1000);
    this.logger = logger;
    this.clock = options.clock ?? systemClock;
    this.repos = [
      this.watcherSubscriptions,
      this.publications,
      this.upstreamSubscriptions,
      this.upstreamPublications,
      this.graphSubscriptions,
      this.directoryCache,
      this.graphNotificationKeys,
      this.graphSavedPresence,
      this.graphTokenCache,
    ] as Array<RedisRepository<unknown>>;
    this.meta = {
      get: (key) => this.metaRows.get(key),
      set: (key, value) => {
        if (!this.enqueue()) return;
        this.metaRows.set(key, value);
        this.metaPending.set(key, value);
      },
      delete: (key) => {
        if (!this.enqueue()) return;
        this.metaRows.delete(key);
        this.metaPending.set(key, null);
      },
    };
    this.ownership = {
      claimNode: (dead) => this.claimNode(dead),
      claimSubscription: (id) => this.claimOne(this.watcherSubscriptions, id),
      claimPublication: (etag) => this.claimOne(this.publications, etag),
      ownerOf: (what, id) => (what === 'subscription' ? this.ownerOf(this.watcherSubscriptions, id) : this.ownerOf(this.publications, id)),
      ownedElsewhere: (what, ids) => (what === 'subscription' ? this.ownedElsewhere(this.watcherSubscriptions, ids) : this.ownedElsewhere(this.publications, ids)),
    };
    this.personState = {
      save: (input) => this.saveInput(input),
      loadInputs: () => this.loadInputs(),
    };
    this.health = redisHealth(redis);
    this.health.onChange((up) => (up ? this.onReconnect() : this.onDisconnect()));
  }

  // ---- Owner ----

  /** A write may be queued (false after close). Arms the flush timer. */
  enqueue(): boolean {
    if (this.closed) {
      if (!this.warnedClosed) {
        this.warnedClosed = true;
        this.logger.warn({ path: this.path }, 'store write after close ignored');
      }
      return false;
    }
    if (this.timer === undefined && this.current === undefined && this.health.connected()) this.arm(this.flushMs);
    return true;
  }

  skippedRow(table: string, key: string, why: string): void {
    this.skippedCount++;
    if (this.skippedCount <= 10) this.logger.warn({ path: this.path, table, key, why }, 'store record skipped: not a valid record');
  }

  // ---- GatewayStore ----

  /** Start writing what is queued; whether the last write succeeded (flushAsync waits). */
  flush(): boolean {
    if (this.current === undefined) void this.startBatch();
    return this.lastOk;
  }

  /** Resolves when everything queued before the call is written: true, or false when Redis refused or is away. */
  async flushAsync(): Promise<boolean> {
    while (this.current !== undefined) await this.current;
    if (this.queued() === 0) return true;
    return this.startBatch();
  }

  pruneExpired(now: number): number {
    let removed = 0;
    for (const repo of this.repos) {
      for (const [key, record] of repo.rows) {
        const at = repo.spec.expiresOf(record);
        if (at === null || at > now) continue;
        removed++;
        // Redis expired the record itself (a DEL here could hit another node's fresh one);
        // an owned one leaves this node's set too (DEL_OWNED checks the owner)
        if (repo.owned) repo.remove(key);
        else repo.rows.delete(key);
      }
    }
    return removed;
  }

  async reload(repositories: ReadonlyArray<RepositoryName>): Promise<void> {
    for (const name of repositories) {
      const repo = this.repos.find((r) => r.repoName === name);
      if (repo !== undefined) repo.replaceRows(await this.readTable(repo));
    }
  }

  /** Kicks the last write and closes when it is done; closeAsync() waits for it. */
  close(): void {
    void this.closeAsync();
  }

  /** Write what is queued, then close the connection. Later writes are ignored; idempotent. */
  closeAsync(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      this.disarm();
      const ok = await this.flushAsync();
      if (!ok || this.queued() > 0) {
        this.logger.error({ path: this.path, queued: this.queued(), error: this.lastError }, 'store closed with writes that could not be saved');
      }
      try {
        if (this.health.connected()) await this.redis.quit();
        else this.redis.disconnect();
      } catch {
        this.redis.disconnect();
      }
    })();
    return this.closing;
  }

  status(): StoreStatus {
    return {
      ok: !this.closed && this.health.connected() && !this.failing,
      kind: this.kind,
      path: this.path,
      queued: this.queued(),
      lastError: this.lastError,
      lastErrorAt: this.lastErrorAt,
      flushes: this.flushes,
      written: this.written,
      dropped: this.droppedCount,
      skipped: this.skippedCount,
    };
  }

  // ---- writing ----

  /** Distinct keys waiting (being written included). */
  private queued(): number {
    let n = this.metaPending.size + this.personPending.size;
    for (const repo of this.repos) {
      n += repo.pending.size;
      if (repo.inFlight !== undefined) for (const key of repo.inFlight.keys()) if (!repo.pending.has(key)) n++;
    }
    if (this.metaInFlight !== undefined) for (const key of this.metaInFlight.keys()) if (!this.metaPending.has(key)) n++;
    if (this.personInFlight !== undefined) for (const key of this.personInFlight.keys()) if (!this.personPending.has(key)) n++;
    return n;
  }

  private arm(ms: number): void {
    this.timer = this.clock.after(ms, () => {
      this.timer = undefined;
      void this.startBatch();
    });
  }

  private disarm(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  /** Write everything queued in one MULTI (one batch at a time). */
  private startBatch(): Promise<boolean> {
    if (this.current !== undefined) return this.current;
    this.disarm();
    const pendingWrites = this.metaPending.size + this.personPending.size + this.repos.reduce((n, r) => n + r.pending.size, 0);
    if (pendingWrites === 0) return Promise.resolve(true);
    const now = this.clock.now();
    const multi = this.redis.multi();
    /** per command of the MULTI: what it wrote, to settle it */
    const ops: Array<{ repo: RedisRepository<unknown>; key: string; upsert: boolean } | undefined> = [];
    const batches = this.repos.map((repo) => repo.takeBatch());
    const k = this.keys;
    this.repos.forEach((repo, i) => {
      const table = repo.spec.table;
      for (const [key, record] of batches[i]!) {
        const recKey = k.record(table, key);
        const member = `${table}:${key}`;
        const expiresAt = record === null ? null : repo.spec.expiresOf(record);
        const live = record !== null && (expiresAt === null || expiresAt > now);
        if (repo.owned) {
          if (live) multi.eval(PUT_OWNED, 3, recKey, k.owner, k.owned(this.nodeId), JSON.stringify(record), expiresAt === null ? '' : String(expiresAt), member, this.nodeId);
          else multi.eval(DEL_OWNED, 3, recKey, k.owner, k.owned(this.nodeId), member, this.nodeId);
        } else if (!live) multi.del(recKey);
        else if (expiresAt === null) multi.set(recKey, JSON.stringify(record));
        else multi.set(recKey, JSON.stringify(record), 'PXAT', expiresAt);
        ops.push({ repo, key, upsert: live });
      }
    });
    const meta = this.metaPending;
    this.metaInFlight = meta;
    this.metaPending = new Map();
    for (const [key, value] of meta) {
      if (value === null) multi.hdel(k.meta, key);
      else multi.hset(k.meta, key, value);
      ops.push(undefined);
    }
    const person = this.personPending;
    this.personInFlight = person;
    this.personPending = new Map();
    for (const w of person.values()) {
      multi.hset(w.hash, w.slot, w.json);
      ops.push(undefined);
    }
    const settle = async (): Promise<boolean> => {
      let ok: boolean;
      try {
        const results = await multi.exec();
        if (results === null) throw new Error('transaction aborted');
        ok = true;
        results.forEach(([error, reply], i) => {
          const op = ops[i];
          if (error !== null && error !== undefined) {
            this.droppedCount++;
            this.logger.error({ path: this.path, table: op?.repo.name, key: op?.key, err: error.message }, 'store write refused by Redis; dropped');
          } else if (op !== undefined && op.repo.owned && op.upsert && reply === 0) {
            // another node took it over: not ours to write any more
            if (!op.repo.pending.has(op.key)) op.repo.rows.delete(op.key);
            this.logger.warn({ path: this.path, table: op.repo.name, key: op.key }, 'store write skipped: another node owns the record now');
          }
        });
        this.flushes++;
        this.written += ops.length;
      } catch (error) {
        ok = false;
        this.failed(error);
      }
      for (const repo of this.repos) repo.endBatch(ok);
      if (!ok) {
        for (const [key, value] of meta) if (!this.metaPending.has(key)) this.metaPending.set(key, value);
        for (const [key, w] of person) if (!this.personPending.has(key)) this.personPending.set(key, w);
      }
      this.metaInFlight = undefined;
      this.personInFlight = undefined;
      this.lastOk = ok;
      if (ok && this.failing) {
        this.failing = false;
        this.logger.info({ path: this.path, rows: ops.length }, 'store writes recovered');
      }
      this.current = undefined;
      // more queued meanwhile: the next batch; after a failure, retry later (at once on reconnect)
      if (this.queued() > 0 && this.timer === undefined && !this.closed) {
        if (ok) this.arm(this.flushMs);
        else if (this.health.connected()) this.arm(this.retryMs);
      }
      return ok;
    };
    this.current = settle();
    return this.current;
  }

  private failed(error: unknown): void {
    const message =
      `Redis at ${this.path} unreachable (${errorText(error)}): ${this.queued()} writes kept in memory, written when it is back. ` +
      'Fix: start Redis, or correct store.redis.url (and its password and TLS settings)';
    const first = !this.failing;
    this.failing = true;
    this.lastError = message;
    this.lastErrorAt = this.clock.now();
    this.logger[first ? 'error' : 'debug']({ path: this.path, queued: this.queued() }, `store write failed: ${message}`);
  }

  private onDisconnect(): void {
    if (this.closed) return;
    this.disarm();
    this.failed(new Error('connection lost'));
  }

  private onReconnect(): void {
    if (this.closed) return;
    if (this.queued() > 0) {
      void this.startBatch();
    } else if (this.failing) {
      this.failing = false;
      this.logger.info({ path: this.path }, 'store writes recovered');
    }
  }

  // ---- reading ----

  private counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const repo of this.repos) out[repo.repoName] = repo.rows.size;
    return out;
  }

  private async loadAll(): Promise<void> {
    for (const repo of this.repos) repo.replaceRows(await this.readTable(repo));
    const meta = await this.redis.hgetall(this.keys.meta);
    this.metaRows = new Map(Object.entries(meta));
    for (const [key, value] of this.metaPending) {
      if (value === null) this.metaRows.delete(key);
      else this.metaRows.set(key, value);
    }
  }

  /** The table as Redis holds it: owned tables as far as this node owns them. */
  private async readTable<R>(repo: RedisRepository<R>): Promise<Map<string, R>> {
    const prefix = this.keys.record(repo.spec.table, '');
    let recordKeys: string[];
    if (repo.owned) {
      const members = await this.redis.smembers(this.keys.owned(this.nodeId));
      const head = `${repo.spec.table}:`;
      recordKeys = members.filter((m) => m.startsWith(head)).map((m) => this.keys.record(repo.spec.table, m.slice(head.length)));
    } else {
      recordKeys = await this.scan(this.keys.recordPattern(repo.spec.table));
    }
    const out = new Map<string, R>();
    for (let i = 0; i < recordKeys.length; i += CHUNK) {
      const chunk = recordKeys.slice(i, i + CHUNK);
      const values = await this.redis.mget(...chunk);
      chunk.forEach((recKey, j) => {
        const key = recKey.slice(prefix.length);
        const record = repo.decode(key, values[j] ?? null);
        if (record !== undefined) out.set(key, record);
      });
    }
    return out;
  }

  private async scan(pattern: string): Promise<string[]> {
    const found = new Set<string>();
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', CHUNK);
      cursor = next;
      for (const key of keys) found.add(key);
    } while (cursor !== '0');
    return [...found];
  }

  // ---- ownership ----

  private async claimNode(dead: string): Promise<{ subscriptions: WatcherSubscriptionRecord[]; publications: PublicationRecord[] }> {
    const result = { subscriptions: [] as WatcherSubscriptionRecord[], publications: [] as PublicationRecord[] };
    if (dead === this.nodeId) return result;
    const k = this.keys;
    const moved = (await this.redis.eval(CLAIM_NODE, 4, k.owned(dead), k.owned(this.nodeId), k.owner, k.nodes, dead, this.nodeId)) as string[];
    const gone: string[] = [];
    for (let i = 0; i < moved.length; i += CHUNK) {
      const chunk = moved.slice(i, i + CHUNK);
      const values = await this.redis.mget(...chunk.map((m) => this.recordOfMember(m)));
      chunk.forEach((member, j) => {
        const json = values[j] ?? null;
        if (json === null) {
          gone.push(member);
          return;
        }
        if (this.adopt(this.watcherSubscriptions, member, json, result.subscriptions)) return;
        this.adopt(this.publications, member, json, result.publications);
      });
    }
    if (gone.length > 0) {
      // expired while its owner was dead: forget the entries
      await this.redis
        .multi()
        .hdel(k.owner, ...gone)
        .srem(k.owned(this.nodeId), ...gone)
        .exec();
    }
    this.logger.info({ path: this.path, dead, subscriptions: result.subscriptions.length, publications: result.publications.length }, 'store: took over a dead node');
    return result;
  }

  /** The record key of an owned-set member "{table}:{key}" (table names hold no colon). */
  private recordOfMember(member: string): string {
    const at = member.indexOf(':');
    return this.keys.record(member.slice(0, at), member.slice(at + 1));
  }

  /** A claimed record into the memory copy (and `into`), when `member` is of `repo`'s table. */
  private adopt<R>(repo: RedisRepository<R>, member: string, json: string, into: R[]): boolean {
    const head = `${repo.spec.table}:`;
    if (!member.startsWith(head)) return false;
    const key = member.slice(head.length);
    const record = repo.decode(key, json);
    if (record !== undefined) {
      repo.rows.set(key, record);
      into.push(copy(record));
    }
    return true;
  }

  private async claimOne<R>(repo: RedisRepository<R>, key: string): Promise<R | undefined> {
    const k = this.keys;
    const member = `${repo.spec.table}:${key}`;
    const json = (await this.redis.eval(CLAIM_ONE, 3, k.record(repo.spec.table, key), k.owner, k.owned(this.nodeId), member, this.nodeId, k.owned(''))) as string | null;
    if (json === null) return undefined;
    const out: R[] = [];
    this.adopt(repo, member, json, out);
    return out[0];
  }

  /** The keys whose owner entry names another node (HMGET on the owner hash, CHUNK at a time). */
  private async ownedElsewhere<R>(repo: RedisRepository<R>, keys: readonly string[]): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < keys.length; i += CHUNK) {
      const chunk = keys.slice(i, i + CHUNK);
      const owners = await this.redis.hmget(this.keys.owner, ...chunk.map((key) => `${repo.spec.table}:${key}`));
      chunk.forEach((key, j) => {
        const owner = owners[j] ?? null;
        if (owner !== null && owner !== this.nodeId) out.push(key);
      });
    }
    return out;
  }

  private async ownerOf<R>(repo: RedisRepository<R>, key: string): Promise<string | undefined> {
    const queued = repo.pending.get(key);
    if (queued !== undefined) return queued === null ? undefined : this.nodeId;
    const k = this.keys;
    const member = `${repo.spec.table}:${key}`;
    const [owner, exists] = await Promise.all([this.redis.hget(k.owner, member), this.redis.exists(k.record(repo.spec.table, key))]);
    return exists === 1 && owner !== null ? owner : undefined;
  }

  // ---- shared person state ----

  private saveInput(input: HubInput): void {
    if (!this.enqueue()) return;
    const hash = 'personId' in input ? this.keys.person(input.personId) : this.keys.feeders;
    const slot = inputSlot(input);
    const stored: StoredInput = { at: this.clock.now(), input };
    this.personPending.set(`${hash}\u0000${slot}`, { hash, slot, json: JSON.stringify(stored) });
  }

  private async loadInputs(): Promise<HubInput[]> {
    const hashes = await this.scan(this.keys.personPattern());
    const bySlot = new Map<string, StoredInput>();
    const take = (id: string, json: string): void => {
      let value: unknown;
      try {
        value = JSON.parse(json) as unknown;
      } catch {
        value = undefined;
      }
      if (isStoredInput(value)) bySlot.set(id, value);
      else this.skippedRow('person', id, 'not a stored input');
    };
    for (let i = 0; i < hashes.length; i += CHUNK) {
      const chunk = hashes.slice(i, i + CHUNK);
      const pipeline = this.redis.pipeline();
      for (const hash of chunk) pipeline.hgetall(hash);
      const results = (await pipeline.exec()) ?? [];
      chunk.forEach((hash, j) => {
        const [error, fields] = results[j] ?? [null, {}];
        if (error !== null && error !== undefined) throw error;
        for (const [slot, json] of Object.entries(fields as Record<string, string>)) take(`${hash}\u0000${slot}`, json);
      });
    }
    // what this node saved and has not written yet is newer than what Redis holds
    for (const queue of [this.personInFlight, this.personPending]) {
      if (queue !== undefined) for (const [id, w] of queue) take(id, w.json);
    }
    return [...bySlot.values()].sort((a, b) => a.at - b.at).map((s) => s.input);
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Resolve when `redis` is ready; StoreError naming the URL and the fix after `ms`. */
function waitReady(redis: Redis, ms: number, url: string): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    let lastError = 'no answer';
    const onError = (error: Error): void => {
      lastError = error.message;
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(
        new StoreError(
          `store.redis: Redis at ${url} unreachable within ${ms} ms (${lastError}). Fix: start Redis, or correct store.redis.url (and its password and TLS settings)`,
          url,
          'REDIS_UNREACHABLE',
        ),
      );
    }, ms);
    const onReady = (): void => {
      cleanup();
      resolve();
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      redis.off('error', onError);
    };
    redis.on('ready', onReady);
    redis.on('error', onError);
  });
}
