/**
 * The nodes of the service and who runs each job, as the admin API's
 * `cluster` section and the diagnostics page's Nodes panel show them, made
 * from what the Cluster says (src/store/cluster.ts: membership.nodes(),
 * leases.list(), connected()) and this node's id.
 *
 *  - A node is up when its heartbeat is listed and is no older than the node
 *    TTL (the nodes' clocks are taken to agree, as for the heartbeats'
 *    seenAt); this node is up while it reaches the shared store. While it
 *    does not, what it last read of the others is stale: their `up` is null
 *    (not known), not true.
 *  - A node that was listed and no longer is (stopped, or its heartbeat
 *    expired) stays in the view as down for a while (ClusterRows remembers
 *    it), so the page says it went instead of just not naming it.
 *  - A job's holder that is no node up (a dead node whose lease has not run
 *    out yet) is shown with holderUp false.
 */
import { JOBS } from '../store/cluster.js';
import { systemClock, type Clock } from '../util/clock.js';
import type { ClusterJobRow, ClusterNodeRow, ClusterView, Connector, ConnectorKind } from './admin-json.js';
import type { ClusterFacts, LeaseFacts, NodeFacts } from './admin-source.js';

/** The store's address without user, password or query (they may carry the password). */
export function displayStoreUrl(url: string | undefined): string | null {
  if (url === undefined) return null;
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    // not a URL: say only what kind of address it was
    return null;
  }
}

function nodeRow(n: NodeFacts, self: boolean, up: boolean | null): ClusterNodeRow {
  return {
    id: n.nodeId,
    self,
    up,
    sip: [...n.sip],
    http: n.http ?? null,
    startedAt: n.startedAt > 0 ? n.startedAt : null,
    seenAt: n.seenAt,
    subscriptions: n.subscriptions,
    leases: [...n.leases].sort(),
  };
}

function jobKind(job: string): Pick<ClusterJobRow, 'kind' | 'name'> {
  const colon = job.indexOf(':');
  const prefix = colon < 0 ? '' : job.slice(0, colon);
  const rest = colon < 0 ? job : job.slice(colon + 1);
  if (prefix === 'trunk') return { kind: 'trunk', name: rest };
  if (prefix === 'graph') return { kind: 'graph', name: rest };
  return { kind: 'other', name: job };
}

function jobRow(lease: LeaseFacts, nodes: ReadonlyMap<string, ClusterNodeRow>, facts: ClusterFacts, now: number): ClusterJobRow {
  const holder = lease.holder ?? null;
  const node = holder !== null ? nodes.get(holder) : undefined;
  // a holder no node up names: false when the store is read, not known when it is not
  const holderUp = holder === null ? null : node !== undefined ? node.up : facts.connected ? false : null;
  return {
    job: lease.job,
    ...jobKind(lease.job),
    holder,
    self: holder !== null && holder === facts.nodeId,
    holderUp,
    token: lease.token ?? null,
    expiresAt: lease.expiresAt ?? null,
    expiresInMs: lease.expiresAt !== undefined ? lease.expiresAt - now : null,
  };
}

/**
 * The view of `facts` at `now`; `gone` are nodes listed before and no longer
 * (shown as down unless listed again).
 */
export function clusterView(facts: ClusterFacts, now: number, gone: readonly NodeFacts[] = []): ClusterView {
  const rows = new Map<string, ClusterNodeRow>();
  const selfUp = facts.store === 'redis' ? facts.connected : true;
  for (const n of facts.nodes) {
    if (rows.has(n.nodeId)) continue;
    const self = n.nodeId === facts.nodeId;
    const up = self ? selfUp : !facts.connected ? null : now - n.seenAt <= facts.nodeTtlMs;
    rows.set(n.nodeId, nodeRow(n, self, up));
  }
  // this node is always listed, heartbeat read or not
  if (!rows.has(facts.nodeId)) {
    rows.set(facts.nodeId, nodeRow({ nodeId: facts.nodeId, sip: [], startedAt: 0, seenAt: 0, subscriptions: 0, leases: [] }, true, selfUp));
  }
  for (const n of gone) if (!rows.has(n.nodeId)) rows.set(n.nodeId, nodeRow(n, false, false));
  const nodes = [...rows.values()].sort((a, b) => (a.self !== b.self ? (a.self ? -1 : 1) : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const jobs = [...facts.leases]
    .sort((a, b) => (a.job < b.job ? -1 : a.job > b.job ? 1 : 0))
    .map((lease) => jobRow(lease, rows, facts, now));
  return {
    nodeId: facts.nodeId,
    store: facts.store,
    storeUrl: facts.store === 'redis' ? displayStoreUrl(facts.storeUrl) : null,
    connected: facts.store === 'redis' ? facts.connected : true,
    nodeTtlMs: facts.nodeTtlMs,
    now,
    nodes,
    jobs,
  };
}

export interface ClusterRowsOptions {
  clock?: Pick<Clock, 'now'>;
  /** How long a node gone stays listed as down (default 15 min). */
  keepGoneMs?: number;
  /** At most this many gone nodes are listed, the latest gone kept (default 20). */
  maxGone?: number;
}

/** clusterView over a source read at each call, remembering the nodes that went. */
export class ClusterRows {
  private readonly clock: Pick<Clock, 'now'>;
  private readonly keepGoneMs: number;
  private readonly maxGone: number;
  /** Nodes listed at the last view, by id. */
  private listed = new Map<string, NodeFacts>();
  /** Nodes listed once and not now, with when that was first seen, oldest first. */
  private readonly gone = new Map<string, { node: NodeFacts; goneAt: number }>();

  constructor(
    private readonly read: () => ClusterFacts,
    options: ClusterRowsOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.keepGoneMs = options.keepGoneMs ?? 15 * 60_000;
    this.maxGone = options.maxGone ?? 20;
  }

  view(): ClusterView {
    const facts = this.read();
    const now = this.clock.now();
    const listed = new Map<string, NodeFacts>();
    for (const n of facts.nodes) listed.set(n.nodeId, n);
    for (const [id, node] of this.listed) {
      if (!listed.has(id) && id !== facts.nodeId) this.gone.set(id, { node, goneAt: now });
    }
    for (const id of listed.keys()) this.gone.delete(id);
    this.listed = listed;
    for (const [id, g] of this.gone) if (now - g.goneAt > this.keepGoneMs) this.gone.delete(id);
    // Map order is insertion order: the first are the longest gone
    while (this.gone.size > this.maxGone) this.gone.delete(this.gone.keys().next().value as string);
    return clusterView(facts, now, [...this.gone.values()].map((g) => g.node));
  }
}

/** The lease behind a connector card, in the order looked for (polling is part of the subscriptions job when there are subscriptions). */
function jobsOf(kind: ConnectorKind, name: string): string[] {
  switch (kind) {
    case 'trunk':
      return [JOBS.trunk(name)];
    case 'graph-subscription':
      return [JOBS.graphSubscriptions];
    case 'graph-poll':
      return [JOBS.graphPoller, JOBS.graphSubscriptions];
    case 'graph-calendar':
      return [JOBS.calendar];
    default:
      return [];
  }
}

/**
 * With nodes sharing Redis: each trunk and Graph card says which node runs
 * its job, and a card for the shared store, red while it is unreachable.
 * A single node runs everything itself: its cards are left as they are.
 */
export function withCluster(connectors: readonly Connector[], view: ClusterView | undefined): Connector[] {
  if (view === undefined || view.store !== 'redis') return [...connectors];
  const byJob = new Map(view.jobs.map((j) => [j.job, j]));
  const out = connectors.map((c) => {
    const job = jobsOf(c.kind, c.name)
      .map((j) => byJob.get(j))
      .find((j) => j !== undefined);
    return job === undefined ? c : { ...c, job: { job: job.job, holder: job.holder, self: job.self } };
  });
  // the Graph subscriptions are shown by the node that runs them: elsewhere a card says which node that is
  const subscriptions = byJob.get(JOBS.graphSubscriptions);
  if (subscriptions !== undefined && !subscriptions.self && !out.some((c) => c.kind === 'graph-subscription')) {
    const holder = subscriptions.holder;
    const where = holder === null ? undefined : view.nodes.find((n) => n.id === holder)?.http;
    out.push({
      kind: 'graph-subscription',
      name: 'subscriptions',
      ok: holder === null ? false : subscriptions.holderUp,
      badge: holder === null ? 'Not running' : subscriptions.holderUp === false ? 'Holder down' : 'On another node',
      detail:
        holder === null
          ? 'no node runs the Graph subscriptions now; one takes them at its next try'
          : `run by ${holder}: their state is on that node's diagnostics page${where !== undefined && where !== null ? ` (${where})` : ''}`,
      job: { job: subscriptions.job, holder, self: false },
    });
  }
  const up = view.nodes.filter((n) => n.up === true).length;
  out.unshift({
    kind: 'store',
    name: view.storeUrl ?? 'redis',
    ok: view.connected,
    badge: view.connected ? 'Connected' : 'Unreachable',
    detail: view.connected
      ? `Redis shared by ${up} node${up === 1 ? '' : 's'} up; this node is ${view.nodeId}`
      : `${view.nodeId} cannot reach the shared Redis: it reports not ready (/readyz) and what it shows of the other nodes is stale`,
  });
  return out;
}
