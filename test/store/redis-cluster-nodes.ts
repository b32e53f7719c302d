/**
 * Several cluster nodes in one test process on one real Redis, with short
 * timings: each node's connections come from its own factory, so a test can
 * kill a node as SIGKILL would (its connections drop, nothing is cleaned up,
 * its timers stop doing anything useful) or route it through a proxy.
 */
import { Redis } from 'ioredis';
import { silentLogger } from '../../src/util/logger.js';
import { createRedisCluster, type RedisCluster, type RedisClusterOptions } from '../../src/store/redis/cluster.js';

export const TIMINGS = { heartbeatMs: 100, nodeTtlMs: 500, leaseTtlMs: 500 } as const;

export interface TestNode {
  readonly id: string;
  readonly cluster: RedisCluster;
  readonly clients: Redis[];
  /** As SIGKILL: every connection dropped at once, no cleanup (the heartbeat and leases stay in Redis until they expire). */
  kill(): void;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** A connection like the wiring's: offline queue off, reconnect forever every 50 ms. */
export function testClient(url: string): Redis {
  const c = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: () => 50, connectTimeout: 1000 });
  c.on('error', () => undefined);
  return c;
}

export async function startNode(
  t: Teardown,
  url: string,
  id: string,
  options: Partial<Omit<RedisClusterOptions, 'nodeId' | 'connect'>> = {},
): Promise<TestNode> {
  const clients: Redis[] = [];
  let killed = false;
  const cluster = await createRedisCluster({
    nodeId: id,
    connect: () => {
      const c = testClient(url);
      clients.push(c);
      return c;
    },
    keys: 'test:',
    logger: silentLogger(),
    ownership: undefined,
    personState: undefined,
    ...TIMINGS,
    ...options,
  });
  const node: TestNode = {
    id,
    cluster,
    clients,
    kill: () => {
      killed = true;
      for (const c of clients) c.disconnect();
    },
  };
  t.teardown(async () => {
    if (killed) {
      // Nothing reaches Redis any more; stop the timers.
      await cluster.close().catch(() => undefined);
    } else await cluster.close();
  });
  return node;
}

/** A connection for the test's own reads and writes, ready when returned. */
export async function probeClient(t: Teardown, url: string): Promise<Redis> {
  const c = testClient(url);
  t.teardown(() => c.disconnect());
  if (c.status !== 'ready') await new Promise((resolve) => c.once('ready', resolve));
  return c;
}

/** Poll `ok` every 10 ms until it holds; fails with `what` after timeoutMs. */
export async function until(ok: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Poll the async `ok` every 20 ms until it holds; fails with `what` after timeoutMs. */
export async function eventually(ok: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
