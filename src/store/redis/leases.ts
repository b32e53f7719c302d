/**
 * Leases on Redis, one key a job: {p}lease:{job} = "<nodeId> <token>" PX
 * leaseTtlMs, the token from INCR {p}fence:{job} in the same script as the
 * grant, so every grant's token is larger than all earlier ones.
 *
 *  - Free: try to acquire every leaseTtlMs/3 (one script: grant only if
 *    free, return the token). Not even this node's own earlier value is
 *    taken over: tries still in flight would replace the grant in use.
 *  - Held: renew every leaseTtlMs/3 (compare-and-PEXPIRE on the exact value),
 *    sooner after a failure. A renew that finds another value: lost('taken');
 *    none: lost('expired').
 *  - Fencing without trusting Redis timing: the holder measures on its own
 *    monotonic clock from the moment it SENT its last successful renew (the
 *    key cannot expire in Redis sooner than leaseTtlMs after that); when
 *    leaseTtlMs - margin has passed without a newer one, it gives the job up
 *    (lost('unreachable')) before the key can have expired, then competes
 *    again. margin = max(1000, leaseTtlMs/5), at most leaseTtlMs/3 (so short
 *    test TTLs still leave time to renew). A late reply to a command sent
 *    before a loss is ignored; a grant that arrives after its own deadline is
 *    handed back at once (compare-and-DEL) instead of being used.
 *  - Release: give the job up first (lost('released'), awaited), then
 *    compare-and-DEL, so the next holder never starts while this one still
 *    runs it; the others acquire at their next try.
 *
 * Handlers may be async: acquired and lost of one job run one after the
 * other, never concurrently (a queue per job). list() shows every job seen:
 * this node's from its own replies, the others' from a SCAN of {p}lease:*
 * every leaseTtlMs.
 */
import type { Redis } from 'ioredis';
import { systemClock, type Clock, type Timer } from '../../util/clock.js';
import type { Logger } from '../../util/logger.js';
import type { LeaseHandlers, LeaseInfo, Leases } from '../cluster.js';
import type { KeyLayout } from './keys.js';
import { luaScript } from './lua-script.js';
import { withTimeout } from './timeout.js';

export interface RedisLeasesOptions {
  client: Redis;
  keys: KeyLayout;
  nodeId: string;
  leaseTtlMs: number;
  logger: Logger;
  /** Timers and the epoch times of list(). */
  clock?: Clock;
  /** Milliseconds on a clock that never jumps (the fencing deadline); default performance.now(). */
  monotonic?: () => number;
  /** Called after every change of what this node holds (the heartbeat's `leases`). */
  onHeldChange?: (jobs: string[]) => void;
}

/**
 * KEYS: lease, fence. ARGV: nodeId, ttl ms. Returns {1, value, pttl} when
 * granted, {0, value, pttl} when another holds it.
 */
const ACQUIRE = luaScript(`
local cur = redis.call('GET', KEYS[1])
if cur then return {0, cur, redis.call('PTTL', KEYS[1])} end
local token = redis.call('INCR', KEYS[2])
local value = ARGV[1] .. ' ' .. token
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return {1, value, tonumber(ARGV[2])}
`);

/** KEYS: lease. ARGV: value, ttl ms. Returns {1, pttl} when renewed, {0, current value or false} when not. */
const RENEW = luaScript(`
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, tonumber(ARGV[2])}
end
return {0, cur}
`);

/** KEYS: lease. ARGV: value. */
const RELEASE = luaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);

/** Commands of one job waiting for Redis at once (a hung connection must not pile them up without end). */
const MAX_IN_FLIGHT = 3;

interface Grant {
  token: number;
  value: string;
  /** Monotonic ms when the last successful acquire or renew was sent. */
  lastOk: number;
}

interface JobState {
  readonly job: string;
  readonly handlers: LeaseHandlers;
  grant: Grant | undefined;
  /** Bumped at every grant and loss: replies to commands of an older epoch are ignored. */
  epoch: number;
  tick: Timer | undefined;
  deadline: Timer | undefined;
  inFlight: number;
  failing: boolean;
  released: boolean;
  /** The handler queue. */
  queue: Promise<void>;
}

export class RedisLeases implements Leases {
  private readonly client: Redis;
  private readonly keys: KeyLayout;
  private readonly nodeId: string;
  private readonly ttlMs: number;
  private readonly marginMs: number;
  private readonly renewMs: number;
  private readonly retryMs: number;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly monotonic: () => number;
  private readonly onHeldChange: ((jobs: string[]) => void) | undefined;
  private readonly jobs = new Map<string, JobState>();
  private readonly seen = new Map<string, LeaseInfo>();
  private scanTimer: Timer | undefined;
  private closed = false;

  constructor(options: RedisLeasesOptions) {
    this.client = options.client;
    this.keys = options.keys;
    this.nodeId = options.nodeId;
    this.ttlMs = options.leaseTtlMs;
    this.marginMs = Math.min(Math.max(1000, this.ttlMs / 5), this.ttlMs / 3);
    this.renewMs = this.ttlMs / 3;
    this.retryMs = Math.max(10, this.ttlMs / 10);
    this.logger = options.logger.child({ component: 'leases', nodeId: options.nodeId });
    this.clock = options.clock ?? systemClock;
    this.monotonic = options.monotonic ?? (() => performance.now());
    this.onHeldChange = options.onHeldChange;
    if (this.nodeId.includes(' ')) throw new Error(`cluster.nodeId "${this.nodeId}" contains a space: a lease value is "<nodeId> <token>"; choose a node id without spaces`);
    this.scheduleScan(0);
  }

  hold(job: string, handlers: LeaseHandlers): () => Promise<void> {
    if (this.closed) throw new Error(`leases closed: cannot hold ${job}`);
    if (this.jobs.has(job)) throw new Error(`lease ${job} is already held by this node: release it before holding it again`);
    const state: JobState = {
      job,
      handlers,
      grant: undefined,
      epoch: 0,
      tick: undefined,
      deadline: undefined,
      inFlight: 0,
      failing: false,
      released: false,
      queue: Promise.resolve(),
    };
    this.jobs.set(job, state);
    this.step(state);
    let release: Promise<void> | undefined;
    return () => (release ??= this.release(state));
  }

  held(job: string): number | undefined {
    return this.jobs.get(job)?.grant?.token;
  }

  list(): LeaseInfo[] {
    return [...this.seen.values()].sort((a, b) => (a.job < b.job ? -1 : a.job > b.job ? 1 : 0));
  }

  /** Release every lease (each job's lost('released') awaited) and stop reading. */
  async close(): Promise<void> {
    this.closed = true;
    this.scanTimer?.cancel();
    this.scanTimer = undefined;
    await Promise.all([...this.jobs.values()].map((s) => this.release(s)));
  }

  /** One try: acquire when free, renew when held; then schedule the next. */
  private step(state: JobState): void {
    state.tick = undefined;
    if (state.released) return;
    if (state.inFlight < MAX_IN_FLIGHT) {
      if (state.grant === undefined) void this.acquire(state);
      else void this.renew(state, state.grant);
    }
    state.tick = this.clock.after(this.nextDelay(state), () => this.step(state));
  }

  /** Until the next try: a renew comes no later than halfway to the deadline (a grant whose reply was slow has little time left). */
  private nextDelay(state: JobState): number {
    const delay = state.failing ? this.retryMs : this.renewMs;
    const grant = state.grant;
    if (grant === undefined) return delay;
    const left = grant.lastOk + this.ttlMs - this.marginMs - this.monotonic();
    return Math.max(0, Math.min(delay, left / 2));
  }

  private async acquire(state: JobState): Promise<void> {
    const epoch = state.epoch;
    const sentAt = this.monotonic();
    const done = this.inFlight(state);
    let reply: unknown;
    try {
      reply = await ACQUIRE.run(this.client, [this.keys.lease(state.job), this.keys.fence(state.job)], [this.nodeId, this.ttlMs]);
    } catch (err) {
      this.logger.debug({ job: state.job, err: String(err) }, 'lease acquire failed');
      return;
    } finally {
      done();
    }
    const [granted, value, pttl] = parseReply(reply);
    if (typeof value === 'string') this.note(state.job, value, pttl);
    if (granted !== 1 || typeof value !== 'string') return;
    if (state.released || state.epoch !== epoch || state.grant !== undefined || this.monotonic() - sentAt >= this.ttlMs - this.marginMs) {
      // Too late to be of use (released, or its own deadline passed on the way): hand it back.
      void RELEASE.run(this.client, [this.keys.lease(state.job)], [value]).catch(() => undefined);
      return;
    }
    const token = tokenOf(value);
    state.epoch++;
    state.grant = { token, value, lastOk: sentAt };
    state.failing = false;
    this.armDeadline(state);
    this.logger.info({ job: state.job, token }, 'lease acquired');
    this.heldChanged();
    this.enqueue(state, () => state.handlers.acquired(token));
    // Renew on the regular beat from the grant (sooner when the reply was slow).
    state.tick?.cancel();
    state.tick = this.clock.after(this.nextDelay(state), () => this.step(state));
  }

  private async renew(state: JobState, grant: Grant): Promise<void> {
    const epoch = state.epoch;
    const sentAt = this.monotonic();
    const done = this.inFlight(state);
    let reply: unknown;
    try {
      reply = await RENEW.run(this.client, [this.keys.lease(state.job)], [grant.value, this.ttlMs]);
    } catch (err) {
      if (state.epoch === epoch) state.failing = true;
      this.logger.debug({ job: state.job, err: String(err) }, 'lease renew failed');
      return;
    } finally {
      done();
    }
    if (state.epoch !== epoch || state.grant !== grant) return;
    const [ok, second] = parseReply(reply);
    if (ok === 1) {
      state.failing = false;
      if (sentAt > grant.lastOk) {
        grant.lastOk = sentAt;
        this.armDeadline(state);
      }
      this.note(state.job, grant.value, typeof second === 'number' ? second : this.ttlMs);
      return;
    }
    if (typeof second === 'string') {
      this.note(state.job, second, undefined);
      this.lose(state, 'taken');
    } else {
      this.seen.set(state.job, { job: state.job, holder: undefined, token: undefined, expiresAt: undefined });
      this.lose(state, 'expired');
    }
    // Free now (expired) or someone else's: compete again at once.
    state.tick?.cancel();
    this.step(state);
  }

  /**
   * Count a command as waiting for Redis until it is answered, or for one
   * TTL at most: a reply that never comes (a connection lost mid-command)
   * must not block the job's tries for good. A reply after that still counts.
   */
  private inFlight(state: JobState): () => void {
    state.inFlight++;
    let counted = true;
    const uncount = (): void => {
      if (!counted) return;
      counted = false;
      state.inFlight--;
    };
    const timer = this.clock.after(this.ttlMs, uncount);
    return () => {
      timer.cancel();
      uncount();
    };
  }

  /** The local deadline: leaseTtlMs - margin after the last successful send. */
  private armDeadline(state: JobState): void {
    const grant = state.grant;
    if (grant === undefined) return;
    state.deadline?.cancel();
    const at = grant.lastOk + this.ttlMs - this.marginMs;
    const check = (): void => {
      state.deadline = undefined;
      if (state.grant !== grant) return;
      const left = grant.lastOk + this.ttlMs - this.marginMs - this.monotonic();
      if (left > 0) {
        state.deadline = this.clock.after(left, check);
        return;
      }
      this.logger.warn({ job: state.job, token: grant.token, ttlMs: this.ttlMs }, 'lease not renewed in time: giving the job up before it can expire in Redis');
      this.lose(state, 'unreachable');
    };
    state.deadline = this.clock.after(Math.max(0, at - this.monotonic()), check);
  }

  private lose(state: JobState, reason: 'expired' | 'taken' | 'unreachable' | 'released'): void {
    const grant = state.grant;
    if (grant === undefined) return;
    state.grant = undefined;
    state.epoch++;
    state.deadline?.cancel();
    state.deadline = undefined;
    state.failing = false;
    if (reason !== 'released') this.logger.warn({ job: state.job, token: grant.token, reason }, 'lease lost');
    else this.logger.info({ job: state.job, token: grant.token }, 'lease released');
    this.heldChanged();
    this.enqueue(state, () => state.handlers.lost(reason));
  }

  private async release(state: JobState): Promise<void> {
    if (this.jobs.get(state.job) === state) this.jobs.delete(state.job);
    state.released = true;
    state.tick?.cancel();
    state.tick = undefined;
    const grant = state.grant;
    this.lose(state, 'released');
    await state.queue;
    if (grant === undefined) return;
    try {
      await withTimeout(RELEASE.run(this.client, [this.keys.lease(state.job)], [grant.value]), this.ttlMs);
      this.seen.set(state.job, { job: state.job, holder: undefined, token: undefined, expiresAt: undefined });
    } catch (err) {
      this.logger.warn({ job: state.job, err: String(err) }, 'could not delete the lease at release: the next holder waits for it to expire');
    }
  }

  private enqueue(state: JobState, fn: () => void | Promise<void>): void {
    state.queue = state.queue
      .then(fn)
      .catch((err: unknown) => this.logger.error({ job: state.job, err: String(err) }, 'lease handler threw'));
  }

  private heldChanged(): void {
    if (this.onHeldChange === undefined) return;
    const jobs = [...this.jobs.values()].filter((s) => s.grant !== undefined).map((s) => s.job);
    try {
      this.onHeldChange(jobs.sort());
    } catch (err) {
      this.logger.error({ err: String(err) }, 'onHeldChange threw');
    }
  }

  private note(job: string, value: string, pttl: number | undefined): void {
    const space = value.lastIndexOf(' ');
    this.seen.set(job, {
      job,
      holder: space < 0 ? value : value.slice(0, space),
      token: space < 0 ? undefined : tokenOf(value),
      expiresAt: pttl !== undefined && pttl >= 0 ? this.clock.now() + pttl : undefined,
    });
  }

  private scheduleScan(delayMs: number): void {
    if (this.closed) return;
    this.scanTimer = this.clock.after(delayMs, () => {
      void this.scan().finally(() => this.scheduleScan(this.ttlMs));
    });
  }

  /** Every job's lease (others' included), for list(). */
  private async scan(): Promise<void> {
    const prefix = this.keys.lease('');
    const pattern = `${globEscape(prefix)}*`;
    const found = new Map<string, LeaseInfo>();
    try {
      let cursor = '0';
      do {
        const [next, keys] = await this.client.scan(cursor, 'MATCH', pattern, 'COUNT', 200);
        cursor = next;
        if (keys.length === 0) continue;
        const pipeline = this.client.pipeline();
        for (const k of keys) pipeline.get(k).pttl(k);
        const replies = (await pipeline.exec()) ?? [];
        keys.forEach((k, i) => {
          const value = replies[2 * i]?.[1];
          const pttl = replies[2 * i + 1]?.[1];
          if (typeof value !== 'string') return;
          const job = k.slice(prefix.length);
          const space = value.lastIndexOf(' ');
          found.set(job, {
            job,
            holder: space < 0 ? value : value.slice(0, space),
            token: space < 0 ? undefined : tokenOf(value),
            expiresAt: typeof pttl === 'number' && pttl >= 0 ? this.clock.now() + pttl : undefined,
          });
        });
      } while (cursor !== '0');
    } catch (err) {
      this.logger.debug({ err: String(err) }, 'lease scan failed');
      return;
    }
    for (const job of this.seen.keys()) if (!found.has(job)) this.seen.set(job, { job, holder: undefined, token: undefined, expiresAt: undefined });
    for (const [job, info] of found) this.seen.set(job, info);
  }
}

function parseReply(reply: unknown): [unknown, unknown, number | undefined] {
  if (!Array.isArray(reply)) return [undefined, undefined, undefined];
  const third: unknown = reply[2];
  return [reply[0], reply[1], typeof third === 'number' ? third : undefined];
}

function tokenOf(value: string): number {
  return Number(value.slice(value.lastIndexOf(' ') + 1));
}

function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
