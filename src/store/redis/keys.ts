/**
 * Where everything lives in Redis: one place for the key layout, so every
 * part (store, leases, membership, bus) agrees. `p` is store.redis.keyPrefix
 * (default "pg:"); several services may share a Redis under other prefixes.
 *
 *   {p}rec:{table}:{key}      one record, JSON (tables.ts names the tables), PEXPIREAT its expiresAt
 *   {p}owned:{nodeId}         SET of "{table}:{key}" a node owns (watcher_subscriptions, publications)
 *   {p}owner                  HASH "{table}:{key}" → owning nodeId (the same facts by record: a claim is O(1))
 *   {p}node:{nodeId}          a node's heartbeat, JSON NodeInfo, PX the membership TTL
 *   {p}nodes                  SET of node ids seen (membership scans it; a dead one is removed by its claimer)
 *   {p}lease:{job}            "{nodeId} {token}", PX the lease TTL
 *   {p}fence:{job}            INCR counter: the fencing token of the next grant
 *   {p}person:{personId}      HASH inputSlot → JSON { at, input } (the shared person state)
 *   {p}person:#feeders        HASH the same for inputs of no person (feeder-reachable); '#' is in no person id
 *   {p}meta                   HASH the store's meta strings
 *   {p}bus                    the pub/sub channel of BusMessage JSON
 */
export interface KeyLayout {
  record(table: string, key: string): string;
  recordPattern(table: string): string;
  owned(nodeId: string): string;
  readonly owner: string;
  node(nodeId: string): string;
  readonly nodes: string;
  lease(job: string): string;
  fence(job: string): string;
  person(personId: string): string;
  personPattern(): string;
  /** The person-state hash of inputs that name no person (matched by personPattern). */
  readonly feeders: string;
  readonly meta: string;
  readonly bus: string;
}

export const DEFAULT_KEY_PREFIX = 'pg:';

export function keyLayout(prefix: string = DEFAULT_KEY_PREFIX): KeyLayout {
  return {
    record: (table, key) => `${prefix}rec:${table}:${key}`,
    recordPattern: (table) => `${prefix}rec:${table}:*`,
    owned: (nodeId) => `${prefix}owned:${nodeId}`,
    owner: `${prefix}owner`,
    node: (nodeId) => `${prefix}node:${nodeId}`,
    nodes: `${prefix}nodes`,
    lease: (job) => `${prefix}lease:${job}`,
    fence: (job) => `${prefix}fence:${job}`,
    person: (personId) => `${prefix}person:${personId}`,
    personPattern: () => `${prefix}person:*`,
    feeders: `${prefix}person:#feeders`,
    meta: `${prefix}meta`,
    bus: `${prefix}bus`,
  };
}
