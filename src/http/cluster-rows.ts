/**
 * The cluster's rows for the admin JSON (GET /cluster) and the diagnostics
 * page: the nodes of the service (up, subscriptions owned, leases held) and
 * the holder of each job (each trunk's upstream side, each Graph job). Built
 * from structural views of the Cluster's membership and leases
 * (src/store/cluster.ts NodeInfo and LeaseInfo fit), so the HTTP side
 * imports no store code.
 */

/** One node's heartbeat as the membership last read it (NodeInfo fits). */
export interface ClusterNodeInfo {
  nodeId: string;
  sip: readonly string[];
  http?: string;
  startedAt: number;
  seenAt: number;
  subscriptions: number;
  leases: readonly string[];
}

/** One job's lease as last read (LeaseInfo fits). */
export interface ClusterLeaseInfo {
  job: string;
  holder: string | undefined;
  token: number | undefined;
  expiresAt: number | undefined;
}

/** What the admin source gives of the cluster (absent: a single node). */
export interface ClusterInfo {
  /** This node. */
  nodeId: string;
  /** The shared store is reachable now (false: red on the page, /readyz 503). */
  connected: boolean;
  nodes: readonly ClusterNodeInfo[];
  leases: readonly ClusterLeaseInfo[];
}

export interface ClusterNodeRow {
  nodeId: string;
  /** The node serving this page. */
  self: boolean;
  /** Seen in the membership now (a node that stopped heartbeating is dropped from the list). */
  up: true;
  sip: string[];
  http: string | null;
  /** ms epoch */
  startedAt: number;
  /** ms epoch of the last heartbeat */
  seenAt: number;
  /** Watcher subscriptions the node owns. */
  subscriptions: number;
  /** Jobs whose lease the node holds. */
  leases: string[];
}

export type ClusterJobKind = 'trunk' | 'graph';

export interface ClusterJobRow {
  /** The lease name, e.g. "trunk:pbx1", "graph:subscriptions". */
  job: string;
  kind: ClusterJobKind;
  /** The trunk's name, or the Graph job ("subscriptions", "poller", "directory", "writer", "calendar"). */
  name: string;
  /** The node running it now; null: nobody holds it (moving, or Redis unreachable). */
  holder: string | null;
  /** The fencing token of the current grant. */
  token: number | null;
  /** ms epoch the lease runs out unless renewed */
  expiresAt: number | null;
}

export interface ClusterRows {
  nodeId: string;
  connected: boolean;
  nodes: ClusterNodeRow[];
  jobs: ClusterJobRow[];
}

export function clusterJobRow(lease: ClusterLeaseInfo): ClusterJobRow {
  const colon = lease.job.indexOf(':');
  const prefix = colon < 0 ? lease.job : lease.job.slice(0, colon);
  const name = colon < 0 ? lease.job : lease.job.slice(colon + 1);
  return {
    job: lease.job,
    kind: prefix === 'trunk' ? 'trunk' : 'graph',
    name,
    holder: lease.holder ?? null,
    token: lease.token ?? null,
    expiresAt: lease.expiresAt ?? null,
  };
}

export function clusterRows(info: ClusterInfo): ClusterRows {
  const nodes = [...info.nodes]
    .sort((a, b) => a.nodeId.localeCompare(b.nodeId))
    .map(
      (n): ClusterNodeRow => ({
        nodeId: n.nodeId,
        self: n.nodeId === info.nodeId,
        up: true,
        sip: [...n.sip],
        http: n.http ?? null,
        startedAt: n.startedAt,
        seenAt: n.seenAt,
        subscriptions: n.subscriptions,
        leases: [...n.leases].sort(),
      }),
    );
  const jobs = info.leases.map(clusterJobRow).sort((a, b) => a.job.localeCompare(b.job));
  return { nodeId: info.nodeId, connected: info.connected, nodes, jobs };
}
