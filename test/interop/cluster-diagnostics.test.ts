/**
 * The diagnostics page's view of the service, from real nodes: two gateway
 * processes on one Redis, both configured with the same trunk (at an address
 * nobody answers: its lease is held all the same) and the same Graph tenant
 * (the Graph simulator, in this process). Each node's /api/cluster lists both
 * nodes up, the trunk's and the Graph subscriptions' jobs each held by one
 * node, the same one seen from either node, and each holder's heartbeat says
 * it holds them. Node b, started first, holds them; it is stopped: node a
 * shows it down within the node TTL and then runs b's jobs itself. Redis is
 * stopped: node a says it is not ready and shows the store red and itself
 * down; Redis back, green again.
 */
import { readFile } from 'node:fs/promises';
import { get as httpsGet } from 'node:https';
import t from 'tap';
import type { ClusterView, Connector } from '../../src/http/admin-json.js';
import { CLUSTER_ADMIN_TOKEN, startCluster, TEST_TIMINGS, until, type ClusterNode, type TestCluster } from '../helpers/cluster-nodes.js';
import { freePort } from '../helpers/ports.js';
import { simulatorGraphConfig, startTeamsEnv, TEAMS_USERS, type TeamsEnv } from '../helpers/teams-gateway.js';

const PBX_HOST = '127.0.0.4';
const TRUNK_JOB = 'trunk:pbx1';
const GRAPH_JOB = 'graph:subscriptions';

let env: TeamsEnv;
let ca: string;
let cluster: TestCluster;

/** GET <path> at the node over https (its webhook certificate, signed by the test CA), with the admin token. */
function get(node: ClusterNode, path: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsGet(`https://127.0.0.1:${node.httpPort}${path}`, { ca, headers: { authorization: `Bearer ${CLUSTER_ADMIN_TOKEN}` } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
  });
}

/** GET /api<path>, 200 expected. */
async function api<T>(node: ClusterNode, path: string): Promise<T> {
  const r = await get(node, `/api${path}`);
  if (r.status !== 200) throw new Error(`GET /api${path} on node ${node.name}: ${r.status} ${r.text}`);
  return JSON.parse(r.text) as T;
}

const holderOf = (v: ClusterView, job: string): string | null | undefined => v.jobs.find((j) => j.job === job)?.holder;

/** Both nodes up, both jobs held, each holder's heartbeat naming its jobs. */
function settled(v: ClusterView): boolean {
  const ids = v.nodes.map((n) => n.id).sort();
  if (ids.join() !== 'node-a,node-b' || !v.nodes.every((n) => n.up === true)) return false;
  return [TRUNK_JOB, GRAPH_JOB].every((job) => {
    const holder = holderOf(v, job);
    return holder != null && v.nodes.find((n) => n.id === holder)?.leases.includes(job) === true;
  });
}

t.before(async () => {
  env = await startTeamsEnv();
  ca = await readFile(env.caPath, 'utf8');
  const pbxPort = await freePort(PBX_HOST);
  cluster = await startCluster(t, {
    nodes: 2,
    start: false,
    users: TEAMS_USERS,
    overrides: (_name, node) => ({
      http: { tls: { certPath: env.certPath, keyPath: env.keyPath } },
      trunks: [{ name: 'pbx1', address: `sip:${PBX_HOST}:${pbxPort}`, directions: ['watch'], users: ['anna'], optionsIntervalSec: 0 }],
      graph: simulatorGraphConfig(env, `https://127.0.0.1:${node.httpPort}/graph/notifications`),
    }),
  });
  // b first: it takes every job at its start, so that stopping it moves them to a
  await cluster.node('b').start();
  await cluster.node('a').start();
});
t.teardown(async () => {
  await cluster?.stopAll();
  await env?.close();
});

t.test('each node lists both nodes up, and the same node holding the trunk and the Graph subscriptions', async (t) => {
  const [a, b] = cluster.nodes as [ClusterNode, ClusterNode];
  const fromA = await until(() => api<ClusterView>(a, '/cluster'), settled, 15_000, 'node a sees both nodes and both jobs held');
  const fromB = await until(() => api<ClusterView>(b, '/cluster'), settled, 15_000, 'node b sees both nodes and both jobs held');
  t.equal(fromA.store, 'redis');
  t.equal(fromA.connected, true, 'a reaches Redis');
  t.equal(fromB.connected, true, 'b reaches Redis');
  t.same(fromA.nodes.map((n) => [n.id, n.self, n.up]), [['node-a', true, true], ['node-b', false, true]], 'a: itself first, both up');
  t.same(fromB.nodes.map((n) => [n.id, n.self, n.up]), [['node-b', true, true], ['node-a', false, true]], 'b: itself first, both up');
  t.ok(fromA.nodes.every((n) => n.sip.length === 2), 'each node says where it listens for SIP');
  for (const job of [TRUNK_JOB, GRAPH_JOB]) {
    const holder = holderOf(fromA, job);
    t.equal(holder, 'node-b', `${job} is held by one node, b, which started first`);
    t.equal(holderOf(fromB, job), holder, `${job}: the same holder seen from b`);
    t.equal(fromA.jobs.find((j) => j.job === job)?.self, holder === 'node-a', `${job}: a knows whether it is its own`);
    const others = fromA.nodes.filter((n) => n.id !== holder && n.leases.includes(job));
    t.same(others, [], `${job}: no other node says it holds it`);
  }
  // the cards of the trunk and the Graph subscription name the holder, and the store card is green
  const status = await api<{ connectors: Connector[] }>(a, '/status');
  const store = status.connectors.find((c) => c.kind === 'store');
  t.equal(store?.ok, true, 'the store card is green');
  t.equal(status.connectors.find((c) => c.kind === 'trunk' && c.name === 'pbx1')?.job?.holder, holderOf(fromA, TRUNK_JOB), 'the trunk card names its node');
  // b runs the Graph subscriptions: its cards show them, each naming b; a's card points to b
  const atB = await until(
    () => api<{ connectors: Connector[] }>(b, '/status'),
    (s) => s.connectors.some((c) => c.kind === 'graph-subscription' && c.ok === true),
    15_000,
    'an active Graph subscription card at b',
  );
  const own = atB.connectors.filter((c) => c.kind === 'graph-subscription');
  t.ok(own.length >= 1 && own.every((c) => c.job?.holder === 'node-b' && c.job.self), 'at b, the Graph subscription cards say b runs them');
  const elsewhere = status.connectors.filter((c) => c.kind === 'graph-subscription');
  t.same(
    elsewhere.map((c) => [c.ok, c.badge, c.job?.holder, c.job?.self]),
    [[true, 'On another node', 'node-b', false]],
    'at a, one card says the subscriptions run on b',
  );
  t.match(elsewhere[0]?.detail, `(https://127.0.0.1:${b.httpPort})`, 'with the address of b\'s page');
  t.equal(fromA.nodes.find((n) => n.id === 'node-b')?.http, `https://127.0.0.1:${b.httpPort}`, 'each node says where its HTTP side is');
});

t.test('node b is stopped: node a shows it down within the node TTL, then runs its jobs', async (t) => {
  const [a, b] = cluster.nodes as [ClusterNode, ClusterNode];
  await b.stop();
  const stoppedAt = Date.now();
  const seen = await until(
    () => api<ClusterView>(a, '/cluster'),
    (v) => v.nodes.find((n) => n.id === 'node-b')?.up !== true,
    TEST_TIMINGS.nodeTtlMs,
    'node a shows node b down',
  );
  const tookMs = Date.now() - stoppedAt;
  t.ok(tookMs <= TEST_TIMINGS.nodeTtlMs, `node b shown down ${tookMs} ms after it stopped (TTL ${TEST_TIMINGS.nodeTtlMs} ms)`);
  t.same(seen.nodes.find((n) => n.id === 'node-b')?.up, false, 'listed as down (gone), not dropped silently');
  t.equal(seen.nodes.find((n) => n.id === 'node-a')?.up, true, 'a itself is up');
  const after = await until(
    () => api<ClusterView>(a, '/cluster'),
    (v) => holderOf(v, TRUNK_JOB) === 'node-a' && holderOf(v, GRAPH_JOB) === 'node-a',
    15_000,
    'node a holds both jobs',
  );
  t.ok(after.jobs.filter((j) => j.job === TRUNK_JOB || j.job === GRAPH_JOB).every((j) => j.self && j.holderUp === true), 'a runs the trunk and the Graph subscriptions now');
});

t.test('Redis unreachable: node a is not ready, its store card red, itself down; back when Redis is', async (t) => {
  const a = cluster.node('a');
  t.equal((await get(a, '/readyz')).status, 200, 'ready before');
  await cluster.redis.stop();
  const cut = await until(() => api<ClusterView>(a, '/cluster'), (v) => !v.connected, 5000, 'node a sees Redis unreachable');
  t.equal(cut.nodes.find((n) => n.self)?.up, false, 'this node is shown down');
  const ready = await get(a, '/readyz');
  t.equal(ready.status, 503, '/readyz says not ready');
  t.match(JSON.parse(ready.text), { ready: false, cluster: false });
  const status = await api<{ connectors: Connector[] }>(a, '/status');
  t.match(status.connectors[0], { kind: 'store', ok: false, badge: 'Unreachable' }, 'the store card is red');
  await cluster.redis.start();
  await until(() => get(a, '/readyz'), (r) => r.status === 200, 15_000, 'node a ready again');
  const back = await api<ClusterView>(a, '/cluster');
  t.equal(back.connected, true, 'connected again');
  t.equal(back.nodes.find((n) => n.self)?.up, true, 'and up');
});
