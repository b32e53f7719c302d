/**
 * The Cluster of a gateway alone (SQLite or memory store): every lease is
 * held from the moment it is asked for, until it is released; the bus goes
 * nowhere (there is no other node); the membership is this node. The wiring
 * goes through it exactly as through a Redis cluster (src/store/cluster.ts),
 * so a single node runs every job, at once, as it always did.
 */
import type { Cluster, LeaseHandlers, LeaseInfo, NodeInfo } from './cluster.js';

/** The one grant a single node ever makes of a job. */
const TOKEN = 1;

export function singleNodeCluster(nodeId: string): Cluster {
  const startedAt = Date.now();
  const held = new Map<string, LeaseHandlers>();
  const local: Pick<NodeInfo, 'subscriptions' | 'sip'> & Partial<Pick<NodeInfo, 'http'>> = { subscriptions: 0, sip: [] };

  return {
    nodeId,
    membership: {
      nodeId,
      nodes: () => [{ nodeId, ...local, startedAt, seenAt: Date.now(), leases: [...held.keys()] }],
      // nobody else to come or go
      onNodeDown: () => () => undefined,
      onNodeUp: () => () => undefined,
      setLocal(info) {
        if (info.subscriptions !== undefined) local.subscriptions = info.subscriptions;
        if (info.sip !== undefined) local.sip = [...info.sip];
        if (info.http !== undefined) local.http = info.http;
      },
    },
    leases: {
      hold(job, handlers) {
        if (held.has(job)) throw new Error(`lease ${job} is held already`);
        held.set(job, handlers);
        // acquired within the call: the job starts in the same turn as it is asked for
        const started = handlers.acquired(TOKEN);
        let released: Promise<void> | undefined;
        return () => {
          released ??= (async () => {
            // a start that failed was logged by whoever started it; the job is stopped all the same
            await Promise.resolve(started).catch(() => undefined);
            if (held.get(job) !== handlers) return;
            held.delete(job);
            await handlers.lost('released');
          })();
          return released;
        };
      },
      held: (job) => (held.has(job) ? TOKEN : undefined),
      list: (): LeaseInfo[] => [...held.keys()].map((job) => ({ job, holder: nodeId, token: TOKEN, expiresAt: undefined })),
    },
    bus: {
      publish: () => undefined,
      onMessage: () => () => undefined,
    },
    ownership: undefined,
    personState: undefined,
    connected: () => true,
    onConnected: () => () => undefined,
    async close() {
      held.clear();
    },
  };
}
