/**
 * Several gateway processes forming one service on a real Redis, for the
 * cluster interop tests: node a on 127.0.0.1, b on 127.0.0.2, c on 127.0.0.3
 * (Linux routes the whole of 127/8 to loopback), each with its own SIP port
 * (UDP and TCP on its address), its own HTTP port (on 127.0.0.1, where the
 * test CA's webhook certificate is valid), `store.redis` on the one Redis,
 * `cluster.nodeId` node-<name> and short cluster timings, and the same users.
 *
 *   const cluster = await startCluster(t, { nodes: 3 });   // t.teardown stops all
 *   const [a, b, c] = cluster.nodes;
 *   await a.kill();          // SIGKILL: no clean stop
 *   await b.stop();          // SIGTERM: a clean stop
 *   await b.start();         // again, same addresses
 *   await cluster.redis.stop(); await cluster.redis.start();
 */
import { deepMerge, startGateway, type GatewayProcess, type GatewayUser, type StartGatewayOptions } from './gateway-process.js';
import { freePort } from './ports.js';
import { startRedis, type RedisServer } from './redis-server.js';
import { runSipp, startSipp, type SippResult, type SippRun } from './sipp.js';

export const NODE_NAMES = ['a', 'b', 'c'] as const;
export type NodeName = (typeof NODE_NAMES)[number];
export const NODE_HOSTS: Readonly<Record<NodeName, string>> = { a: '127.0.0.1', b: '127.0.0.2', c: '127.0.0.3' };

export const CLUSTER_ADMIN_TOKEN = 'cluster-test-admin-token-0123456789';

/** Short enough for a test to see a death within a few seconds (the config needs TTL > 2 × heartbeat). */
export const TEST_TIMINGS = { heartbeatMs: 250, nodeTtlMs: 2000, leaseTtlMs: 2000 } as const;

export interface ClusterOptions {
  /** How many nodes (1 to 3), named a, b, c in that order. Default 3. */
  nodes?: number;
  /** An already running Redis (default: one started for the test). */
  redis?: RedisServer;
  users?: GatewayUser[];
  /** Deep-merged over every node's config; a function gets the node's name. */
  overrides?: Record<string, unknown> | ((name: NodeName, node: { host: string; port: number; httpPort: number }) => Record<string, unknown>);
  timings?: Partial<Record<keyof typeof TEST_TIMINGS, number>>;
  logLevel?: string;
  /** Start the nodes now (default true); false: call node.start() yourself. */
  start?: boolean;
  readyTimeoutMs?: number;
  /** `tsx` (tests, default) or `dist` (the bench, after the build): see StartGatewayOptions. */
  command?: 'tsx' | 'dist';
}

export interface ClusterNode {
  readonly name: NodeName;
  readonly nodeId: string;
  readonly host: string;
  /** SIP port, UDP and TCP, on `host`. */
  readonly port: number;
  readonly httpPort: number;
  /** http://127.0.0.1:<httpPort> */
  readonly origin: string;
  /** The running process (throws when not running). */
  readonly gateway: GatewayProcess;
  readonly running: boolean;
  /** Start (again) on the same addresses and ports. */
  start(): Promise<GatewayProcess>;
  /** SIGKILL, as a crash: resolves when it has exited. */
  kill(): Promise<void>;
  /** SIGTERM, a clean stop: resolves when it has exited. */
  stop(): Promise<void>;
  /** GET /readyz: its status and JSON. */
  readyz(): Promise<{ status: number; body: Record<string, unknown> }>;
  /** GET /api<path> with the admin token. */
  api(path: string): Promise<unknown>;
}

export interface TestCluster {
  readonly redis: RedisServer;
  readonly nodes: ClusterNode[];
  node(name: NodeName): ClusterNode;
  /** Stop every running node (SIGTERM). */
  stopAll(): Promise<void>;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

async function getJson(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { headers });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { text };
  }
  return { status: res.status, body };
}

export async function startCluster(t: Teardown, options: ClusterOptions = {}): Promise<TestCluster> {
  const count = options.nodes ?? 3;
  if (count < 1 || count > NODE_NAMES.length) throw new Error(`a test cluster has 1 to ${NODE_NAMES.length} nodes, not ${count}`);
  // started here without its own teardown: the nodes must stop before it does
  const ownRedis = options.redis === undefined ? await startRedis(undefined) : undefined;
  const redis = options.redis ?? ownRedis!;
  const timings = { ...TEST_TIMINGS, ...(options.timings ?? {}) };
  const nodes: ClusterNode[] = [];
  for (const name of NODE_NAMES.slice(0, count)) {
    const host = NODE_HOSTS[name];
    const port = await freePort(host);
    const httpPort = await freePort('127.0.0.1');
    const nodeId = `node-${name}`;
    const base: Record<string, unknown> = {
      sip: {
        listen: [
          { transport: 'udp', address: host, port },
          { transport: 'tcp', address: host, port },
        ],
      },
      http: { address: '127.0.0.1', port: httpPort },
      admin: { token: CLUSTER_ADMIN_TOKEN },
      store: { redis: { url: redis.url } },
      cluster: { nodeId, ...timings },
    };
    const extra = typeof options.overrides === 'function' ? options.overrides(name, { host, port, httpPort }) : (options.overrides ?? {});
    const startOptions: StartGatewayOptions = {
      overrides: deepMerge(base, extra),
      logLevel: options.logLevel ?? 'info',
      readyTimeoutMs: options.readyTimeoutMs ?? 30_000,
      ...(options.command !== undefined ? { command: options.command } : {}),
      ...(options.users !== undefined ? { users: options.users } : {}),
    };
    let current: GatewayProcess | undefined;
    const alive = (): boolean => current !== undefined && current.pid > 0 && !exitedNow(current);
    const exitState = new WeakMap<GatewayProcess, boolean>();
    const exitedNow = (gw: GatewayProcess): boolean => exitState.get(gw) === true;
    const origin = `http://127.0.0.1:${httpPort}`;
    const node: ClusterNode = {
      name,
      nodeId,
      host,
      port,
      httpPort,
      origin,
      get gateway() {
        if (current === undefined) throw new Error(`node ${name} is not running`);
        return current;
      },
      get running() {
        return alive();
      },
      async start() {
        if (alive()) throw new Error(`node ${name} is running already`);
        const gw = await startGateway(startOptions);
        exitState.set(gw, false);
        void gw.exited.then(() => exitState.set(gw, true));
        current = gw;
        return gw;
      },
      async kill() {
        const gw = current;
        if (gw === undefined) return;
        if (!exitedNow(gw)) process.kill(gw.pid, 'SIGKILL');
        await gw.exited;
        exitState.set(gw, true);
        // removes its temporary config folder (nothing left to signal)
        await gw.stop();
      },
      async stop() {
        const gw = current;
        if (gw === undefined) return;
        await gw.stop();
        exitState.set(gw, true);
      },
      readyz: () => getJson(`${origin}/readyz`),
      async api(path: string) {
        const r = await getJson(`${origin}/api${path}`, { authorization: `Bearer ${CLUSTER_ADMIN_TOKEN}` });
        if (r.status !== 200) throw new Error(`GET /api${path} on node ${name}: ${r.status} ${JSON.stringify(r.body)}`);
        return r.body;
      },
    };
    nodes.push(node);
  }
  const cluster: TestCluster = {
    redis,
    nodes,
    node(name) {
      const n = nodes.find((x) => x.name === name);
      if (n === undefined) throw new Error(`no node ${name} in this cluster`);
      return n;
    },
    async stopAll() {
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
  t.teardown(async () => {
    await cluster.stopAll();
    await ownRedis?.close();
  });
  if (options.start !== false) {
    await Promise.all(nodes.map((n) => n.start()));
  }
  return cluster;
}

/** Poll `read` until `ok` holds, every 50 ms; throws with the last value after timeoutMs. */
export async function until<T>(read: () => T | Promise<T>, ok: (value: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms (last: ${JSON.stringify(value)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A phone's PUBLISH of anna (1001, or `service`) at `node` over UDP: cluster-publish, or with `etag`
 * cluster-publish-modify (SIP-If-Match). The entity-tag the node gave back is in `etag` ('' when none).
 */
export async function publishAt(
  node: Pick<ClusterNode, 'host' | 'port'>,
  state: { activity: string; note: string; etag?: string; service?: string },
): Promise<SippResult & { etag: string }> {
  const result = await runSipp({
    scenario: state.etag === undefined ? 'cluster-publish' : 'cluster-publish-modify',
    gatewayHost: node.host,
    gatewayPort: node.port,
    transport: 'u1',
    service: state.service ?? '1001',
    vars: { activity: state.activity, note: state.note, ...(state.etag !== undefined ? { etag: state.etag } : {}) },
    traceLogs: true,
  });
  return { ...result, etag: /^etag (\S+)/m.exec((result.logs ?? []).join('\n'))?.[1] ?? '' };
}

/**
 * One cluster-watch watcher (SIPp over UDP, sip-fixtures/scenarios/cluster-watch.xml) of anna (1001)
 * at `at`, refreshing at `refreshAt` once it has seen the final change; resolves once subscribed.
 */
export async function watchAt(at: Pick<ClusterNode, 'host' | 'port'>, refreshAt: Pick<ClusterNode, 'host' | 'port'>, timeoutSec = 50): Promise<SippRun> {
  const run = await startSipp({
    scenario: 'cluster-watch',
    gatewayHost: at.host,
    gatewayPort: at.port,
    transport: 'u1',
    service: '1001',
    traceLogs: true,
    timeoutSec,
    vars: { refresh_host: refreshAt.host, refresh_port: String(refreshAt.port) },
  });
  try {
    await run.waitForLogLines(1, 10_000, 'subscribed');
  } catch (err) {
    run.kill();
    throw err;
  }
  return run;
}

/** The "notify ..." lines a cluster-watch watcher logged so far. */
export function notifyLines(run: SippRun): string[] {
  return run.logLines().filter((l) => l.startsWith('notify'));
}
