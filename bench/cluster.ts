/**
 * The bench's cluster phase (issue 12): gateway nodes on one Redis (test/helpers/cluster-nodes.ts:
 * a 127.0.0.1, b 127.0.0.2, c 127.0.0.3) against one node with its SQLite store file, all with the
 * production cluster timings (src/config/cluster.ts defaults) and no Graph side, so the store is the
 * only difference:
 *   - rate: the rate phase's SIPp step (runRateStep, bench-subscribe.xml) at each total rate, one SIPp
 *     per node at rate / nodes, all at once; a shape's figure is its best failure-free total;
 *   - fan-out: the fanout phase's 10,000 watchers of one person (runFanout) dealt evenly over the nodes,
 *     one PUBLISH at node a; PUBLISH -> last change NOTIFY answered;
 *   - failover: per kill, watchers (cluster-watch.xml) subscribe at node a, a change published at b
 *     reaches them, a is SIGKILLed, a change is published at b; kill -> the last orphaned watcher got
 *     that change from a survivor, polled from SIPp's log every 50 ms; then a starts again.
 * Each measurement gets a fresh cluster (and Redis) or a fresh single gateway.
 */
import { clusterConfigSchema } from '../src/config/cluster.js';
import { publishAt, startCluster, type ClusterNode, type TestCluster } from '../test/helpers/cluster-nodes.js';
import { startGateway, type GatewayProcess, type GatewayUser } from '../test/helpers/gateway-process.js';
import { describeSipp, startSipp } from '../test/helpers/sipp.js';
import { bestCleanRate, combineSteps, killSummary, orphansNotified, type KillSummary, type ShapeStep } from './cluster-stats.js';
import { benchUsers, runFanout, runRateStep, type FanoutResult } from './sipp-load.js';

/** The cluster section's defaults, as a production node runs (not the tests' short TEST_TIMINGS). */
export const PRODUCTION_TIMINGS = (() => {
  const c = clusterConfigSchema.parse({});
  return { heartbeatMs: c.heartbeatMs, nodeTtlMs: c.nodeTtlMs, leaseTtlMs: c.leaseTtlMs };
})();

export interface ClusterBenchOptions {
  gatewayCommand: 'dist' | 'tsx';
  /** total offered rates, stepped up until a step fails */
  rates: readonly number[];
  seconds: number;
  watchers: number;
  instances: number;
  kills: number;
  failoverWatchers: number;
  /** a failed SIPp run's description, for the report's details */
  onDetail(what: string, text: string): void;
}

export interface ShapeRate {
  nodes: number;
  steps: ShapeStep[];
  best: number;
}

export interface FailoverRound {
  /** watchers whose SUBSCRIBE at a succeeded (cluster-watch.xml does not follow a 503: a shed one is not an orphan) */
  subscribed: number;
  ms: number;
  notified: number;
  inDialog: number;
  refreshed: number;
  sippCode: number;
}

export interface FailoverResult {
  nodes: number;
  watchers: number;
  rounds: FailoverRound[];
  summary: KillSummary;
  /** every round: every orphan (subscribed watcher) got the change from a survivor, in its dialog */
  allReached: boolean;
  /** watchers subscribed over all rounds, of kills x watchers offered */
  subscribed: number;
}

/** How long a round waits for the orphans before it counts as not reached. */
const FAILOVER_GIVE_UP_MS = 30_000;

/**
 * Pause between a fresh gateway's ready and the load, the same for every shape: a cluster node is
 * ready before it has seen the others' heartbeats, and a just-started process is still compiling.
 */
const SETTLE_AFTER_START_MS = 2000;
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, SETTLE_AFTER_START_MS));

function stderrOf(name: string, gw: GatewayProcess): void {
  const problems = gw.errors.filter((l) => l.trim().length > 0);
  if (problems.length > 0) console.log(`gateway ${name} stderr:\n${problems.slice(-20).join('\n')}`);
}

async function withSingle<T>(options: ClusterBenchOptions, users: GatewayUser[], fn: (node: { host: string; port: number }) => Promise<T>): Promise<T> {
  // no store override: the SQLite file in the gateway's own state directory, the default store
  const gw = await startGateway({ users, logLevel: 'warn', command: options.gatewayCommand, readyTimeoutMs: 30_000 });
  try {
    await settle();
    return await fn({ host: '127.0.0.1', port: gw.port });
  } finally {
    await gw.stop();
    stderrOf('single', gw);
  }
}

async function withCluster<T>(options: ClusterBenchOptions, nodes: number, users: GatewayUser[], fn: (cluster: TestCluster) => Promise<T>): Promise<T> {
  const teardowns: (() => unknown)[] = [];
  try {
    const cluster = await startCluster(
      { teardown: (f) => teardowns.push(f) },
      { nodes, users, logLevel: 'warn', timings: PRODUCTION_TIMINGS, command: options.gatewayCommand, readyTimeoutMs: 30_000 },
    );
    try {
      await settle();
      return await fn(cluster);
    } finally {
      for (const n of cluster.nodes) if (n.running) stderrOf(n.name, n.gateway);
    }
  } finally {
    for (const f of teardowns.reverse()) await f();
  }
}

async function rateSteps(options: ClusterBenchOptions, nodes: readonly { host: string; port: number }[], users: GatewayUser[], label: string): Promise<ShapeRate> {
  const steps: ShapeStep[] = [];
  for (const total of options.rates) {
    const share = Math.max(1, Math.round(total / nodes.length));
    const perNode = await Promise.all(
      nodes.map((n) => runRateStep({ gatewayHost: n.host, gatewayPort: n.port, rate: share, seconds: options.seconds, users })),
    );
    perNode.forEach((s, i) => {
      if (s.detail !== undefined) options.onDetail(`cluster rate ${label} ${total}/s, node ${i + 1}`, s.detail);
    });
    const step = combineSteps(perNode);
    steps.push(step);
    // bounded: no higher step once one failed
    if (step.failures > 0) break;
  }
  return { nodes: nodes.length, steps, best: bestCleanRate(steps) };
}

export async function clusterRates(options: ClusterBenchOptions, users: GatewayUser[]): Promise<ShapeRate[]> {
  const out: ShapeRate[] = [];
  out.push(await withSingle(options, users, (node) => rateSteps(options, [node], users, '1 node')));
  for (const n of [2, 3]) {
    out.push(await withCluster(options, n, users, (c) => rateSteps(options, c.nodes, users, `${n} nodes`)));
  }
  return out;
}

export interface ShapeFanout {
  nodes: number;
  result: FanoutResult;
}

export async function clusterFanouts(options: ClusterBenchOptions, users: GatewayUser[]): Promise<ShapeFanout[]> {
  const extension = users[0]?.extension ?? '2000';
  const base = { watchers: options.watchers, extension, instances: options.instances };
  const out: ShapeFanout[] = [];
  out.push({ nodes: 1, result: await withSingle(options, users, (node) => runFanout({ ...base, gatewayPort: node.port })) });
  for (const n of [2, 3]) {
    // node a listens on 127.0.0.1: the PUBLISH goes there; its watchers are a share like the others'
    const result = await withCluster(options, n, users, (c) => runFanout({ ...base, gatewayPort: c.nodes[0]!.port, nodes: c.nodes }));
    out.push({ nodes: n, result });
  }
  out.forEach((f) => {
    if (f.result.detail !== undefined) options.onDetail(`cluster fan-out, ${f.nodes} node(s)`, f.result.detail);
  });
  return out;
}

async function pollOrphans(read: () => string[], killed: string, watchers: number, since: number): Promise<{ ms: number; notified: number; inDialog: number }> {
  for (;;) {
    const c = orphansNotified(read(), killed);
    const now = Date.now();
    if (c.notified >= watchers) return { ms: now - since, ...c };
    if (now - since > FAILOVER_GIVE_UP_MS) return { ms: Number.POSITIVE_INFINITY, ...c };
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One round: watchers at `a`, a change at `b`, a SIGKILL of `a`, the next change at `b`. */
async function failoverRound(options: ClusterBenchOptions, a: ClusterNode, b: ClusterNode, refreshAt: ClusterNode, person: string, k: number): Promise<FailoverRound> {
  const w = options.failoverWatchers;
  const run = await startSipp({
    scenario: 'cluster-watch',
    gatewayHost: a.host,
    gatewayPort: a.port,
    transport: 'u1',
    service: person,
    calls: w,
    rate: 200,
    limit: w,
    traceLogs: true,
    timeoutSec: 90,
    vars: { refresh_host: refreshAt.host, refresh_port: String(refreshAt.port) },
  });
  try {
    // every watcher subscribed, or as many as did within 20 s (the rest were shed with 503)
    const count = (prefix: string): number => run.logLines().filter((l) => l.startsWith(prefix)).length;
    const deadline = Date.now() + 20_000;
    while (count('subscribed') < w && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const subscribed = count('subscribed');
    if (subscribed === 0) throw new Error('no watcher subscribed at node a within 20 s');
    const before = await publishAt(b, { activity: 'on-the-phone', note: `round ${k + 1}`, service: person });
    if (before.code !== 0) options.onDetail(`failover round ${k + 1}: PUBLISH at b`, describeSipp(before));
    await run.waitForLogLines(subscribed, 15_000, 'notify');
    const killed = `${a.host}:${a.port}`;
    const killedAt = Date.now();
    await a.kill();
    const change = await publishAt(b, { activity: 'away', note: 'cluster-final', service: person, ...(before.etag !== '' ? { etag: before.etag } : {}) });
    if (change.code !== 0) options.onDetail(`failover round ${k + 1}: PUBLISH after the kill at b`, describeSipp(change));
    const got = await pollOrphans(() => run.logLines(), killed, subscribed, killedAt);
    // the watchers refresh at a survivor once the change is in and a second passed without NOTIFY
    const giveUp = setTimeout(() => run.kill(), 20_000);
    const result = await run.done;
    clearTimeout(giveUp);
    if (result.code !== 0) options.onDetail(`failover round ${k + 1}: watchers`, describeSipp(result));
    return { subscribed, ...got, refreshed: (result.logs ?? []).filter((l) => l.startsWith('refreshed')).length, sippCode: result.code };
  } catch (err) {
    run.kill();
    const result = await run.done;
    options.onDetail(`failover round ${k + 1}`, `${err instanceof Error ? err.message : String(err)}\n${describeSipp(result)}`);
    return { subscribed: 0, ms: Number.POSITIVE_INFINITY, notified: 0, inDialog: 0, refreshed: 0, sippCode: result.code };
  }
}

export async function clusterFailover(options: ClusterBenchOptions): Promise<FailoverResult> {
  // one person per round: the dead watchers of a round are never notified again
  const users = benchUsers(options.kills, 3000);
  return withCluster(options, 3, users, async (cluster) => {
    const [a, b, c] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    const rounds: FailoverRound[] = [];
    for (let k = 0; k < options.kills; k++) {
      if (!a.running) {
        await a.start();
        await settle();
      }
      rounds.push(await failoverRound(options, a, b, c, users[k]!.extension!, k));
    }
    const w = options.failoverWatchers;
    return {
      nodes: 3,
      watchers: w,
      rounds,
      summary: killSummary(rounds.map((r) => r.ms)),
      allReached: rounds.every((r) => r.subscribed > 0 && r.notified === r.subscribed && r.inDialog === r.subscribed && Number.isFinite(r.ms)),
      subscribed: rounds.reduce((a, r) => a + r.subscribed, 0),
    };
  });
}
