/**
 * config/cluster-node-a.yaml and config/cluster-node-b.yaml, run for real: two
 * gateway processes started from those files, with only their Redis URL and
 * their ports rewritten (a test redis-server, free ports; compose uses the
 * files' own). Both must say ready on /readyz (the cluster part included),
 * see each other join (the membership's "node up"), be in the one Redis's
 * node set, and share the person state: a PUBLISH at a shows at b.
 * redis-server missing is a failure (test/helpers/redis-server.ts), not a skip.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import { until } from '../helpers/cluster-nodes.js';
import { repoRoot, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { freePort } from '../helpers/ports.js';
import { startRedis } from '../helpers/redis-server.js';
import { udpRequest } from '../helpers/sip-udp.js';

const root = repoRoot();
/** What the files' ${ADMIN_TOKEN:-...} gives the child (it inherits this environment). */
const ADMIN_TOKEN = process.env['ADMIN_TOKEN'] ?? 'demo-admin-token-for-localhost-only';

interface Node {
  name: 'a' | 'b';
  nodeId: string;
  sipPort: number;
  httpPort: number;
  gw: GatewayProcess;
}

/** The file as written, with the Redis URL and the ports replaced (everything else, ${VAR}s included, as is). */
async function nodeConfig(name: 'a' | 'b', redisUrl: string): Promise<{ config: Record<string, unknown>; nodeId: string; sipPort: number; httpPort: number }> {
  const config = parseYaml(readFileSync(join(root, `config/cluster-node-${name}.yaml`), 'utf8')) as Record<string, unknown> & {
    sip: { listen: Array<{ transport: string; address: string; port: number }> };
    http: { address: string; port: number };
    store: { redis: { url: string } };
    cluster: { nodeId: string };
  };
  const sipPort = await freePort('127.0.0.1');
  const httpPort = await freePort('127.0.0.1');
  for (const l of config.sip.listen) l.port = sipPort;
  config.http.port = httpPort;
  config.store.redis.url = redisUrl;
  // /var/lib/presence-gateway is the container's; the helper gives each process a folder of its own
  delete config['stateDir'];
  // the "ready" line the helper waits for is logged at info
  config['log'] = { level: 'info' };
  return { config, nodeId: config.cluster.nodeId, sipPort, httpPort };
}

async function getJson(url: string, token?: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const pidf = (note: string): string =>
  [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"',
    '    xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:1001@127.0.0.1">',
    '  <tuple id="desk"><status><basic>open</basic></status></tuple>',
    `  <dm:person id="p"><rpid:activities><rpid:on-the-phone/></rpid:activities><dm:note>${note}</dm:note></dm:person>`,
    '</presence>',
  ].join('\n');

t.test('the two compose cluster configs run as one service on one Redis', async (t) => {
  const redis = await startRedis(t);
  const nodes: Node[] = [];
  for (const name of ['a', 'b'] as const) {
    const { config, nodeId, sipPort, httpPort } = await nodeConfig(name, redis.url);
    const gw = await startGateway({ overrides: config, logLevel: 'info', readyTimeoutMs: 30_000 });
    t.teardown(() => gw.stop());
    nodes.push({ name, nodeId, sipPort, httpPort, gw });
  }
  const [a, b] = nodes as [Node, Node];
  t.same([a.nodeId, b.nodeId], ['gw-a', 'gw-b'], 'the node ids of the files');

  for (const n of nodes) {
    const r = await until(() => getJson(`http://127.0.0.1:${n.httpPort}/readyz`), (r) => r.status === 200, 10_000, `node ${n.name} ready`);
    t.same(r.body, { ready: true, sip: true, store: true, cluster: true }, `node ${n.name}: /readyz 200: SIP up, the store writing, the cluster's Redis reachable`);
  }

  // each node's membership reports the other one joining
  for (const [self, other] of [[a, b], [b, a]] as const) {
    const up = await self.gw.waitForLog((r) => r['msg'] === 'node up' && r['node'] === other.nodeId, 10_000);
    t.equal(up['nodeId'], self.nodeId, `${self.nodeId} sees ${other.nodeId} up`);
  }

  // both in the one Redis: the node set and a live heartbeat each, under the files' key prefix
  const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  t.teardown(() => client.disconnect());
  await client.connect();
  t.same((await client.smembers('pg:nodes')).sort(), ['gw-a', 'gw-b'], 'pg:nodes holds both node ids');
  for (const n of nodes) {
    const beat = JSON.parse((await client.get(`pg:node:${n.nodeId}`)) ?? 'null') as { sip?: string[] } | null;
    t.ok(beat !== null, `${n.nodeId}: a live heartbeat`);
    t.ok(beat?.sip?.includes(`udp 127.0.0.1:${n.sipPort}`), `${n.nodeId}: it names its own SIP listener (${JSON.stringify(beat?.sip)})`);
    t.ok(Number(await client.pttl(`pg:node:${n.nodeId}`)) > 0, `${n.nodeId}: the heartbeat expires (node TTL)`);
  }

  // one person state: a phone's PUBLISH at a shows at b
  const note = `compose-cluster-${process.pid}`;
  const res = await udpRequest({
    method: 'PUBLISH',
    user: '1001',
    port: a.sipPort,
    headers: ['Event: presence', 'Expires: 600'],
    contentType: 'application/pidf+xml',
    body: pidf(note),
    retransmitMs: 500,
    timeoutMs: 5000,
  });
  t.equal(res.status, 200, 'PUBLISH at node a: 200');
  t.ok((res.header('sip-etag') ?? '').length > 0, 'with an entity-tag');
  const row = await until(
    () => getJson(`http://127.0.0.1:${b.httpPort}/api/users/anna`, ADMIN_TOKEN),
    (r) => r.status === 200 && JSON.stringify(r.body).includes(note),
    10_000,
    "anna's published note on node b",
  );
  t.match(JSON.stringify(row.body), note, "node b's admin API shows anna's state published at node a");
});
