/**
 * Membership on Redis: each node's heartbeat is a key that expires
 * ({p}node:{id}, JSON NodeInfo, PX nodeTtlMs, set every heartbeatMs), and
 * {p}nodes remembers every node id seen. Each beat also reads the live set
 * (SMEMBERS {p}nodes, then MGET of their heartbeat keys): an id without a
 * live key is down, and onNodeDown fires once for it on this node.
 *
 * A down node stays in {p}nodes until it is claimed, so a node that starts
 * later still sees it and competes for its subscriptions. Removing it is the
 * claimer's part: RedisStore's claimNode does SREM {p}nodes (keys.ts), or the
 * wiring calls `forget(id)` once Ownership.claimNode(id) has returned. A node
 * this one had seen, gone from {p}nodes by the next beat, counts as down too,
 * so a survivor slower than the claimer still gets its onNodeDown (to drop the
 * dead node's hub sources).
 */
import type { Redis } from 'ioredis';
import { systemClock, type Clock, type Timer } from '../../util/clock.js';
import type { Logger } from '../../util/logger.js';
import type { Membership, NodeInfo } from '../cluster.js';
import type { KeyLayout } from './keys.js';
import { luaScript } from './lua-script.js';
import { withTimeout } from './timeout.js';

export interface RedisMembershipOptions {
  client: Redis;
  keys: KeyLayout;
  nodeId: string;
  heartbeatMs: number;
  nodeTtlMs: number;
  logger: Logger;
  clock?: Clock;
  /** What this node says of itself from its first heartbeat. */
  local?: Partial<Pick<NodeInfo, 'subscriptions' | 'leases' | 'sip' | 'http'>>;
}

/** SREM only when the node's heartbeat is not live (a node that came back is not forgotten). */
const FORGET = luaScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
return redis.call('SREM', KEYS[2], ARGV[1])
`);

export class RedisMembership implements Membership {
  readonly nodeId: string;
  private readonly client: Redis;
  private readonly keys: KeyLayout;
  private readonly heartbeatMs: number;
  private readonly nodeTtlMs: number;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private local: NodeInfo;
  private live = new Map<string, NodeInfo>();
  /** Ids this node knows of and has not reported down (live, or in {p}nodes not yet seen down). */
  private readonly known = new Set<string>();
  /** Ids reported down and still in {p}nodes (not reported again). */
  private readonly reportedDown = new Set<string>();
  private readonly downListeners = new Set<(nodeId: string) => void>();
  private readonly upListeners = new Set<(info: NodeInfo) => void>();
  private readonly reachableListeners = new Set<(reachable: boolean) => void>();
  private timer: Timer | undefined;
  private running = false;
  private beating: Promise<void> | undefined;
  /** clock.now() when the last successful beat was sent. */
  private lastOk = Number.NEGATIVE_INFINITY;
  /** When the first beat not answered since the last answered one was sent (undefined: none waits). */
  private unansweredSince: number | undefined;
  private isReachable = false;
  /**
   * clock.now() when heartbeats reached Redis again after not reaching it:
   * for a nodeTtlMs after, no node is taken for down (every heartbeat may
   * have expired during the outage; the live nodes need one TTL to beat again).
   */
  private regainedAt: number | undefined;
  private everReachable = false;

  constructor(options: RedisMembershipOptions) {
    this.client = options.client;
    this.keys = options.keys;
    this.nodeId = options.nodeId;
    this.heartbeatMs = options.heartbeatMs;
    this.nodeTtlMs = options.nodeTtlMs;
    this.logger = options.logger.child({ component: 'membership', nodeId: options.nodeId });
    this.clock = options.clock ?? systemClock;
    const now = this.clock.now();
    this.local = { nodeId: this.nodeId, sip: [], startedAt: now, seenAt: now, subscriptions: 0, leases: [], ...options.local };
  }

  /** Beat now (the returned promise is the first beat) and every heartbeatMs after. */
  start(): Promise<void> {
    if (this.running) return this.beating ?? Promise.resolve();
    this.running = true;
    return this.tick();
  }

  /** A clean stop: no more beats, and the heartbeat key is deleted at once so the others see this node down at their next beat. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.timer?.cancel();
    this.timer = undefined;
    await withTimeout(this.beating ?? Promise.resolve(), this.heartbeatMs).catch(() => undefined);
    try {
      await withTimeout(this.client.del(this.keys.node(this.nodeId)), this.heartbeatMs);
    } catch (err) {
      this.logger.warn({ err: String(err) }, 'could not delete the heartbeat at stop: the others see this node down when it expires');
    }
  }

  nodes(): NodeInfo[] {
    return [...this.live.values()];
  }

  /**
   * A listener added after a beat already reported nodes down (the first
   * beat runs inside start) hears of those still unclaimed (in {p}nodes)
   * right after it is added, so no dead node is missed by the wiring.
   */
  onNodeDown(listener: (nodeId: string) => void): () => void {
    this.downListeners.add(listener);
    const pending = [...this.reportedDown];
    if (pending.length > 0) {
      queueMicrotask(() => {
        if (!this.downListeners.has(listener)) return;
        for (const id of pending) if (this.reportedDown.has(id)) this.call(() => listener(id));
      });
    }
    return () => this.downListeners.delete(listener);
  }

  onNodeUp(listener: (info: NodeInfo) => void): () => void {
    this.upListeners.add(listener);
    return () => this.upListeners.delete(listener);
  }

  setLocal(info: Partial<Pick<NodeInfo, 'subscriptions' | 'leases' | 'sip' | 'http'>>): void {
    this.local = { ...this.local, ...info };
  }

  /** Remove a dead node from {p}nodes (after its claim); a node whose heartbeat is live again is kept. */
  async forget(nodeId: string): Promise<void> {
    await FORGET.run(this.client, [this.keys.node(nodeId), this.keys.nodes], [nodeId]);
    this.reportedDown.delete(nodeId);
  }

  /**
   * Whether this node's heartbeats reach Redis: a beat answered within the
   * last two intervals. A connection that is up but gets no answers (a
   * partition) counts as unreachable too (/readyz, diagnostics page).
   */
  reachable(): boolean {
    return this.isReachable;
  }

  onReachable(listener: (reachable: boolean) => void): () => void {
    this.reachableListeners.add(listener);
    return () => this.reachableListeners.delete(listener);
  }

  /** Every heartbeatMs: beat, unless the last beat still waits for Redis (then only check reachability). */
  private tick(): Promise<void> {
    if (this.running) this.timer = this.clock.after(this.heartbeatMs, () => void this.tick());
    // Unreachable when a beat has waited two intervals for its answer, not when the last answer is old: a
    // stalled event loop (a start-up's restore on a loaded machine) sends no beats, and is no outage.
    const now = this.clock.now();
    if (this.isReachable && this.unansweredSince !== undefined && now - this.unansweredSince > 2 * this.heartbeatMs) this.setReachable(false);
    if (this.beating !== undefined) return this.beating;
    this.unansweredSince ??= now;
    // A beat unanswered for two intervals is given up on (its reply, if it comes, is still read): one lost mid-command must not stop the beats.
    const beat = withTimeout(this.beat(), 2 * this.heartbeatMs)
      .catch(() => undefined)
      .finally(() => {
        if (this.beating === beat) this.beating = undefined;
      });
    this.beating = beat;
    return beat;
  }

  private setReachable(reachable: boolean): void {
    if (this.isReachable === reachable) return;
    this.isReachable = reachable;
    if (reachable && this.everReachable) this.regainedAt = this.clock.now();
    if (reachable) this.everReachable = true;
    if (!reachable) this.logger.warn({ lastOkAgoMs: this.clock.now() - this.lastOk }, 'heartbeats do not reach Redis');
    for (const l of this.reachableListeners) this.call(() => l(reachable));
  }

  private async beat(): Promise<void> {
    const now = this.clock.now();
    if (!this.running) return;
    const self: NodeInfo = { ...this.local, seenAt: now };
    let ids: string[];
    let values: (string | null)[];
    try {
      const replies = await this.client
        .multi()
        .set(this.keys.node(this.nodeId), JSON.stringify(self), 'PX', this.nodeTtlMs)
        .sadd(this.keys.nodes, this.nodeId)
        .smembers(this.keys.nodes)
        .exec();
      const members = replies?.[2];
      if (members === undefined || members[0] !== null || !Array.isArray(members[1])) throw new Error('no SMEMBERS reply');
      ids = (members[1] as unknown[]).filter((id): id is string => typeof id === 'string' && id !== this.nodeId);
      values = ids.length === 0 ? [] : await this.client.mget(ids.map((id) => this.keys.node(id)));
    } catch (err) {
      this.logger.debug({ err: String(err) }, 'heartbeat failed');
      return;
    }
    if (!this.running) return;
    this.lastOk = Math.max(this.lastOk, now);
    // answered: what waits now is only what was sent after this beat
    if (this.unansweredSince !== undefined && this.unansweredSince <= now) this.unansweredSince = undefined;
    if (this.clock.now() - this.lastOk <= 2 * this.heartbeatMs) this.setReachable(true);
    const live = new Map<string, NodeInfo>([[this.nodeId, self]]);
    ids.forEach((id, i) => {
      const info = parseNodeInfo(values[i] ?? null, id);
      if (info !== undefined) live.set(id, info);
    });
    const inSet = new Set(ids);
    const ups: NodeInfo[] = [];
    const downs: string[] = [];
    for (const [id, info] of live) {
      if (id === this.nodeId) continue;
      if (!this.live.has(id)) ups.push(info);
      this.known.add(id);
      this.reportedDown.delete(id);
    }
    for (const id of inSet) if (!live.has(id) && !this.reportedDown.has(id)) this.known.add(id);
    const regained = this.regainedAt;
    const settling = regained !== undefined && this.clock.now() - regained < this.nodeTtlMs;
    for (const id of this.known) {
      // right after an outage a missing heartbeat may only be one not renewed yet
      if (live.has(id) || settling) continue;
      this.known.delete(id);
      if (inSet.has(id)) this.reportedDown.add(id);
      downs.push(id);
    }
    for (const id of this.reportedDown) if (!inSet.has(id)) this.reportedDown.delete(id);
    this.live = live;
    for (const info of ups) {
      this.logger.info({ node: info.nodeId }, 'node up');
      for (const l of this.upListeners) this.call(() => l(info));
    }
    for (const id of downs) {
      this.logger.warn({ node: id }, 'node down: heartbeat gone');
      for (const l of this.downListeners) this.call(() => l(id));
    }
  }

  private call(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.logger.error({ err: String(err) }, 'membership listener threw');
    }
  }
}

function parseNodeInfo(value: string | null, nodeId: string): NodeInfo | undefined {
  if (value === null) return undefined;
  try {
    const v = JSON.parse(value) as Partial<NodeInfo> | null;
    if (v === null || typeof v !== 'object') return undefined;
    return {
      nodeId,
      sip: Array.isArray(v.sip) ? v.sip.filter((s): s is string => typeof s === 'string') : [],
      ...(typeof v.http === 'string' ? { http: v.http } : {}),
      startedAt: typeof v.startedAt === 'number' ? v.startedAt : 0,
      seenAt: typeof v.seenAt === 'number' ? v.seenAt : 0,
      subscriptions: typeof v.subscriptions === 'number' ? v.subscriptions : 0,
      leases: Array.isArray(v.leases) ? v.leases.filter((s): s is string => typeof s === 'string') : [],
    };
  } catch {
    // A heartbeat that is not JSON is still a live node: it only says nothing of itself.
    return { nodeId, sip: [], startedAt: 0, seenAt: 0, subscriptions: 0, leases: [] };
  }
}
