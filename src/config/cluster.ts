/**
 * The `cluster:` section: how this node takes part when several gateways
 * share one Redis (store.redis). Mounted by the main schema as `cluster`.
 * A single node (SQLite or memory store) ignores it.
 */
import { hostname } from 'node:os';
import { z } from 'zod';

const ms = (what: string, def: number) =>
  z
    .number({ message: `milliseconds, e.g. ${def} (${what})` })
    .int(`a whole number of milliseconds, e.g. ${def}`)
    .min(10, `at least 10 ms, e.g. ${def}`)
    .max(600_000, `at most 600000 ms, e.g. ${def}`)
    .default(def);

export const clusterConfigSchema = z
  .strictObject({
    /** This node's name in the cluster (heartbeat, owned set, leases). Default: host name + process id. */
    nodeId: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,100}$/, 'letters, digits, dot, dash or underscore (1-100 characters), e.g. gw-a; or leave it out for <host>-<pid>')
      .optional(),
    /** How often the node renews its heartbeat. */
    heartbeatMs: ms('how often a node renews its heartbeat', 1000),
    /** A node whose heartbeat is this old is dead: the survivors take its subscriptions. */
    nodeTtlMs: ms('how long a heartbeat lives', 5000),
    /** A singleton job's lease lives this long unless renewed. */
    leaseTtlMs: ms('how long a job lease lives', 5000),
  })
  .superRefine((c, ctx) => {
    // two heartbeats may be late before the node is taken for dead
    for (const key of ['nodeTtlMs', 'leaseTtlMs'] as const) {
      if (c[key] <= 2 * c.heartbeatMs) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `${c[key]} is not more than twice heartbeatMs (${c.heartbeatMs}): set it above ${2 * c.heartbeatMs} (e.g. ${5 * c.heartbeatMs}) or lower heartbeatMs`,
        });
      }
    }
  })
  .prefault({});

export type ClusterConfig = z.output<typeof clusterConfigSchema>;

/** This node's id: cluster.nodeId, or `<host>-<pid>` (unique per process on one host). */
export function resolveNodeId(cluster: Pick<ClusterConfig, 'nodeId'>): string {
  if (cluster.nodeId !== undefined) return cluster.nodeId;
  const host = hostname().replace(/[^A-Za-z0-9._-]/g, '_') || 'node';
  return `${host}-${process.pid}`;
}
