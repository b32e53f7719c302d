import t from 'tap';
import Fastify from 'fastify';
import { adminApi } from '../../src/http/admin.js';
import { clusterJobRow, clusterRows, type ClusterInfo } from '../../src/http/cluster-rows.js';
import { fakeSource, TOKEN } from './fake-source.js';

const INFO: ClusterInfo = {
  nodeId: 'b',
  connected: true,
  nodes: [
    { nodeId: 'b', sip: ['udp 127.0.0.2:5060'], startedAt: 10, seenAt: 20, subscriptions: 3, leases: ['trunk:pbx1', 'graph:subscriptions'] },
    { nodeId: 'a', sip: ['udp 127.0.0.1:5060'], http: 'http://127.0.0.1:8080', startedAt: 11, seenAt: 21, subscriptions: 5, leases: [] },
  ],
  leases: [
    { job: 'trunk:pbx1', holder: 'b', token: 7, expiresAt: 1000 },
    { job: 'graph:subscriptions', holder: 'b', token: 2, expiresAt: 1001 },
    { job: 'graph:poller', holder: undefined, token: undefined, expiresAt: undefined },
  ],
};

t.test('the rows: nodes by id with this node marked, each job with its kind, name and holder', async (t) => {
  const rows = clusterRows(INFO);
  t.equal(rows.nodeId, 'b');
  t.equal(rows.connected, true);
  t.same(rows.nodes.map((n) => [n.nodeId, n.self, n.http, n.subscriptions]), [
    ['a', false, 'http://127.0.0.1:8080', 5],
    ['b', true, null, 3],
  ]);
  t.same(rows.nodes[1]?.leases, ['graph:subscriptions', 'trunk:pbx1'], 'leases sorted');
  t.same(rows.jobs, [
    { job: 'graph:poller', kind: 'graph', name: 'poller', holder: null, token: null, expiresAt: null },
    { job: 'graph:subscriptions', kind: 'graph', name: 'subscriptions', holder: 'b', token: 2, expiresAt: 1001 },
    { job: 'trunk:pbx1', kind: 'trunk', name: 'pbx1', holder: 'b', token: 7, expiresAt: 1000 },
  ]);
  t.same(clusterJobRow({ job: 'trunk:a:b', holder: 'x', token: 1, expiresAt: 2 }).name, 'a:b', 'a trunk name may hold a colon');
});

t.test('GET /api/cluster: the rows with a cluster, configured false without', async (t) => {
  for (const withCluster of [true, false]) {
    const src = fakeSource();
    const source = withCluster ? { ...src, cluster: () => INFO } : src;
    const app = Fastify();
    await app.register(adminApi, { prefix: '/api', source, token: TOKEN });
    await app.ready();
    const res = await app.inject({ url: '/api/cluster', headers: { authorization: `Bearer ${TOKEN}` } });
    t.equal(res.statusCode, 200);
    const body = res.json();
    t.equal(body.configured, withCluster);
    if (withCluster) t.same(body.jobs.map((j: { job: string; holder: string | null }) => [j.job, j.holder]), [['graph:poller', null], ['graph:subscriptions', 'b'], ['trunk:pbx1', 'b']]);
    const none = await app.inject({ url: '/api/cluster' });
    t.equal(none.statusCode, 401, 'needs the token');
    await app.close();
    src.close();
  }
});
