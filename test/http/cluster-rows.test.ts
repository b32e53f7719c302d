/**
 * The Nodes panel's view (src/http/cluster-rows.ts): a single node, three
 * nodes with one dead, a lease whose holder is no node up, this node cut off
 * from Redis; the gone nodes remembered; the connector cards it adds to.
 */
import t from 'tap';
import type { Connector } from '../../src/http/admin-json.js';
import type { ClusterFacts, NodeFacts } from '../../src/http/admin-source.js';
import { ClusterRows, clusterView, displayStoreUrl, withCluster } from '../../src/http/cluster-rows.js';

const NOW = 1_800_000_000_000;
const TTL = 5000;

function node(id: string, over: Partial<NodeFacts> = {}): NodeFacts {
  return { nodeId: id, sip: [`udp 10.0.0.1:5060`], http: `https://10.0.0.1:8443`, startedAt: NOW - 60_000, seenAt: NOW - 200, subscriptions: 0, leases: [], ...over };
}

function redisFacts(over: Partial<ClusterFacts> = {}): ClusterFacts {
  return {
    nodeId: 'node-a',
    store: 'redis',
    storeUrl: 'redis://gw:s3cret@redis.internal:6379/2?password=other',
    connected: true,
    nodeTtlMs: TTL,
    nodes: [
      node('node-b', { subscriptions: 7, leases: ['graph:subscriptions'] }),
      node('node-a', { subscriptions: 3, leases: ['trunk:pbx1'], seenAt: NOW - 100 }),
      // its last heartbeat is older than the TTL: listed still (its key not yet expired when read), but not up
      node('node-c', { subscriptions: 2, seenAt: NOW - TTL - 1 }),
    ],
    leases: [
      { job: 'trunk:pbx1', holder: 'node-a', token: 4, expiresAt: NOW + 3000 },
      { job: 'graph:subscriptions', holder: 'node-b', token: 9, expiresAt: NOW + 1500 },
      { job: 'graph:writer', holder: 'node-x', token: 2, expiresAt: NOW + 800 },
      { job: 'graph:directory', holder: undefined, token: undefined, expiresAt: undefined },
    ],
    ...over,
  };
}

t.test('a single node: one row, this node, up; its jobs held by it, never expiring', async (t) => {
  const v = clusterView(
    {
      nodeId: 'gw1-123',
      store: 'sqlite',
      connected: true,
      nodeTtlMs: TTL,
      nodes: [{ nodeId: 'gw1-123', sip: ['udp 0.0.0.0:5060'], startedAt: NOW - 1000, seenAt: NOW, subscriptions: 12, leases: ['trunk:pbx1', 'graph:poller'] }],
      leases: [
        { job: 'trunk:pbx1', holder: 'gw1-123', token: 1, expiresAt: undefined },
        { job: 'graph:poller', holder: 'gw1-123', token: 1, expiresAt: undefined },
      ],
    },
    NOW,
  );
  t.equal(v.store, 'sqlite');
  t.equal(v.storeUrl, null, 'no shared store address');
  t.equal(v.connected, true);
  t.same(v.nodes, [
    { id: 'gw1-123', self: true, up: true, sip: ['udp 0.0.0.0:5060'], http: null, startedAt: NOW - 1000, seenAt: NOW, subscriptions: 12, leases: ['graph:poller', 'trunk:pbx1'] },
  ]);
  t.same(
    v.jobs.map((j) => [j.job, j.kind, j.name, j.holder, j.self, j.holderUp, j.expiresInMs]),
    [
      ['graph:poller', 'graph', 'poller', 'gw1-123', true, true, null],
      ['trunk:pbx1', 'trunk', 'pbx1', 'gw1-123', true, true, null],
    ],
  );
  t.same(withCluster([{ kind: 'trunk', name: 'pbx1', ok: true, detail: 'x' }], v), [{ kind: 'trunk', name: 'pbx1', ok: true, detail: 'x' }], 'a single node\'s cards are left alone');
});

t.test('three nodes, one dead: this node first, the stale one down; jobs and their holders', async (t) => {
  const v = clusterView(redisFacts(), NOW);
  t.same(v.nodes.map((n) => [n.id, n.self, n.up, n.subscriptions, n.leases]), [
    ['node-a', true, true, 3, ['trunk:pbx1']],
    ['node-b', false, true, 7, ['graph:subscriptions']],
    ['node-c', false, false, 2, []],
  ]);
  t.equal(v.storeUrl, 'redis://redis.internal:6379/2', 'the address without user, password or query');
  t.notMatch(JSON.stringify(v), /s3cret|other/, 'no password anywhere');
  const jobs = new Map(v.jobs.map((j) => [j.job, j]));
  t.same(jobs.get('trunk:pbx1'), { job: 'trunk:pbx1', kind: 'trunk', name: 'pbx1', holder: 'node-a', self: true, holderUp: true, token: 4, expiresAt: NOW + 3000, expiresInMs: 3000 });
  t.same(jobs.get('graph:subscriptions'), { job: 'graph:subscriptions', kind: 'graph', name: 'subscriptions', holder: 'node-b', self: false, holderUp: true, token: 9, expiresAt: NOW + 1500, expiresInMs: 1500 });
  t.same(v.jobs.map((j) => j.job), ['graph:directory', 'graph:subscriptions', 'graph:writer', 'trunk:pbx1'], 'by lease name');
});

t.test('a lease whose holder is no node listed, and a free one', async (t) => {
  const v = clusterView(redisFacts(), NOW);
  const writer = v.jobs.find((j) => j.job === 'graph:writer')!;
  t.equal(writer.holder, 'node-x');
  t.equal(writer.holderUp, false, 'held by a node that is not up');
  t.equal(writer.self, false);
  const free = v.jobs.find((j) => j.job === 'graph:directory')!;
  t.same([free.holder, free.holderUp, free.token, free.expiresAt, free.expiresInMs], [null, null, null, null, null], 'nobody holds it');
  const c = clusterView(redisFacts({ connected: false }), NOW).jobs.find((j) => j.job === 'graph:writer')!;
  t.equal(c.holderUp, null, 'not known while the store is unreachable');
});

t.test('this node cut off from Redis: itself down, the others not known, a red store card', async (t) => {
  const v = clusterView(redisFacts({ connected: false }), NOW);
  t.equal(v.connected, false);
  t.same(v.nodes.map((n) => [n.id, n.up]), [
    ['node-a', false],
    ['node-b', null],
    ['node-c', null],
  ]);
  t.equal(v.jobs.find((j) => j.job === 'trunk:pbx1')?.holderUp, false, 'its own job: its holder (this node) is down');
  const cards = withCluster(
    [
      { kind: 'trunk', name: 'pbx1', ok: true, detail: 'asterisk' },
      { kind: 'graph-subscription', name: 'svc@contoso.test', ok: true, detail: 'active' },
      { kind: 'graph-poll', name: 'polling', ok: true, detail: '2 users' },
      { kind: 'webhook', name: '/graph/notifications', ok: true, detail: '' },
    ],
    v,
  );
  const store = cards[0]!;
  t.same([store.kind, store.name, store.ok, store.badge], ['store', 'redis://redis.internal:6379/2', false, 'Unreachable'], 'the store card comes first, red');
  t.match(store.detail, /not ready/);
  const jobOf = (kind: Connector['kind']) => cards.find((c) => c.kind === kind)?.job;
  t.same(jobOf('trunk'), { job: 'trunk:pbx1', holder: 'node-a', self: true }, 'the trunk card names its node');
  t.same(jobOf('graph-subscription'), { job: 'graph:subscriptions', holder: 'node-b', self: false }, 'so does the Graph subscription');
  t.same(jobOf('graph-poll'), { job: 'graph:subscriptions', holder: 'node-b', self: false }, 'polling with subscriptions is their job');
  t.equal(jobOf('webhook'), undefined, 'the webhook runs on every node');
  const up = withCluster([], clusterView(redisFacts(), NOW))[0]!;
  t.same([up.ok, up.badge], [true, 'Connected']);
  t.match(up.detail, /2 nodes up; this node is node-a/);
});

t.test('the Graph subscriptions run on another node: one card says which, with its page', async (t) => {
  const v = clusterView(redisFacts(), NOW);
  const cards = withCluster([{ kind: 'trunk', name: 'pbx1', ok: true, detail: '' }], v);
  const sub = cards.filter((c) => c.kind === 'graph-subscription');
  t.same(
    sub.map((c) => [c.ok, c.badge, c.job]),
    [[true, 'On another node', { job: 'graph:subscriptions', holder: 'node-b', self: false }]],
  );
  t.match(sub[0]?.detail, 'run by node-b: their state is on that node\'s diagnostics page (https://10.0.0.1:8443)');
  const noHolder = withCluster([], clusterView(redisFacts({ leases: [{ job: 'graph:subscriptions', holder: undefined, token: undefined, expiresAt: undefined }] }), NOW));
  t.match(noHolder.find((c) => c.kind === 'graph-subscription'), { ok: false, badge: 'Not running' }, 'red while nobody runs them');
  const dead = withCluster([], clusterView(redisFacts({ leases: [{ job: 'graph:subscriptions', holder: 'node-c', token: 5, expiresAt: NOW + 100 }] }), NOW));
  t.match(dead.find((c) => c.kind === 'graph-subscription'), { ok: false, badge: 'Holder down' }, 'red while their holder is down');
  const own = withCluster([{ kind: 'graph-subscription', name: 'svc', ok: true, detail: '' }], clusterView(redisFacts({ nodeId: 'node-b' }), NOW));
  t.same(own.filter((c) => c.kind === 'graph-subscription').map((c) => c.job), [{ job: 'graph:subscriptions', holder: 'node-b', self: true }], 'on their node, only their own cards');
});

t.test('this node without a heartbeat read yet is listed all the same', async (t) => {
  const v = clusterView({ ...redisFacts(), nodes: [] }, NOW);
  t.same(v.nodes.map((n) => [n.id, n.self, n.up, n.startedAt]), [['node-a', true, true, null]]);
});

t.test('ClusterRows: a node that goes stays listed as down, until it comes back or is long gone', async (t) => {
  let now = NOW;
  let facts = redisFacts();
  const rows = new ClusterRows(() => facts, { clock: { now: () => now }, keepGoneMs: 60_000, maxGone: 1 });
  t.same(rows.view().nodes.map((n) => [n.id, n.up]), [['node-a', true], ['node-b', true], ['node-c', false]]);
  // node-b stops: its heartbeat is no longer listed
  facts = { ...facts, nodes: facts.nodes.filter((n) => n.nodeId !== 'node-b') };
  now += 1000;
  const gone = rows.view().nodes.find((n) => n.id === 'node-b');
  t.same([gone?.up, gone?.subscriptions, gone?.seenAt], [false, 7, NOW - 200], 'down, with what it said last');
  // node-c goes too: only the latest gone is kept (maxGone 1)
  facts = { ...facts, nodes: facts.nodes.filter((n) => n.nodeId !== 'node-c') };
  now += 1000;
  t.same(rows.view().nodes.map((n) => [n.id, n.up]), [['node-a', true], ['node-c', false]]);
  // it comes back
  facts = { ...facts, nodes: [...facts.nodes, node('node-c', { seenAt: now })] };
  t.same(rows.view().nodes.map((n) => [n.id, n.up]), [['node-a', true], ['node-c', true]]);
  facts = { ...facts, nodes: facts.nodes.filter((n) => n.nodeId !== 'node-c') };
  t.same(rows.view().nodes.map((n) => n.id), ['node-a', 'node-c']);
  now += 60_001;
  t.same(rows.view().nodes.map((n) => n.id), ['node-a'], 'forgotten after keepGoneMs');
});

t.test('displayStoreUrl', async (t) => {
  t.equal(displayStoreUrl('redis://127.0.0.1:6379'), 'redis://127.0.0.1:6379');
  t.equal(displayStoreUrl('rediss://:pw@r.example:6380/0'), 'rediss://r.example:6380/0');
  t.equal(displayStoreUrl('not a url'), null);
  t.equal(displayStoreUrl(undefined), null);
});
