/**
 * Lease competitors for the lease tests: what each node's handlers saw, and
 * a sampler that fails the test when two nodes hold or run a job at once.
 */
import { startNode, type TestNode } from './redis-cluster-nodes.js';

export const JOB = 'trunk:pbx1';
/**
 * The lease TTL of these tests: short, but long enough that a loaded test
 * machine's event-loop stalls (the proxy runs in this process too) do not
 * make a holder give up by itself (it would be right to: it cannot know).
 */
export const TTL = 1000;

/** A cluster node with the lease tests' TTL. */
export function leaseNode(t: Parameters<typeof startNode>[0], url: string, id: string): Promise<TestNode> {
  return startNode(t, url, id, { leaseTtlMs: TTL });
}

export interface Holder {
  node: TestNode;
  /** Between acquired and lost: the job runs here. */
  running: boolean;
  tokens: number[];
  lost: string[];
  /** Date.now() of the last acquired / lost. */
  acquiredAt: number;
  lostAt: number;
  release: () => Promise<void>;
}

export function compete(node: TestNode, job = JOB): Holder {
  const h: Holder = { node, running: false, tokens: [], lost: [], acquiredAt: 0, lostAt: 0, release: async () => undefined };
  h.release = node.cluster.leases.hold(job, {
    acquired: (token) => {
      h.running = true;
      h.tokens.push(token);
      h.acquiredAt = Date.now();
    },
    lost: (reason) => {
      h.running = false;
      h.lost.push(reason);
      h.lostAt = Date.now();
    },
  });
  return h;
}

/** Every 20 ms: fail if two nodes run the job or say they hold it at once. */
export function watchForTwo(t: { fail(message: string): void }, holders: Holder[], job = JOB): { stop(): void; samples: () => number } {
  let samples = 0;
  let failed = false;
  const timer = setInterval(() => {
    samples++;
    const running = holders.filter((h) => h.running).map((h) => h.node.id);
    const held = holders.filter((h) => h.node.cluster.leases.held(job) !== undefined).map((h) => h.node.id);
    if (!failed && (running.length > 1 || held.length > 1)) {
      failed = true;
      t.fail(`two holders at once: running ${running.join(',')}, held ${held.join(',')}`);
    }
  }, 20);
  return { stop: () => clearInterval(timer), samples: () => samples };
}
