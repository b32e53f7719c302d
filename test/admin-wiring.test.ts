import t from 'tap';
import { wireAdmin, wireMetrics, type AdminWiringOptions, type MetricsSide } from '../src/admin-wiring.js';
import { graphAuthOk } from '../src/http/readiness.js';
import { startHttpServer } from '../src/http/server.js';
import type { LeaseInfo, NodeInfo } from '../src/store/cluster.js';
import { singleNodeCluster } from '../src/store/single-node.js';
import { configSchema } from '../src/config/schema.js';
import type { Directory } from '../src/core/directory.js';
import type { GraphObserver, GraphRuntime, GraphStatus } from '../src/graph/index.js';
import type { TrunkInfo } from '../src/http/admin-source.js';
import { silentLogger } from '../src/util/logger.js';
import { makeServer, pidfBody, publish, settle, subscribe } from './simple/helpers.js';

const TOKEN = 'admin-token-for-the-wiring-tests-0123456789';

function config(extra: Record<string, unknown> = {}) {
  return configSchema.parse({
    sip: { domain: 'example.com', listen: [{ transport: 'udp', address: '127.0.0.1', port: 0 }] },
    admin: { token: TOKEN, historySize: 5 },
    users: [
      { id: 'alice', displayName: 'Alice', extension: '1001', sip: ['sip:alice@example.com'] },
      { id: 'bob', displayName: 'Bob', extension: '1002', sip: ['sip:bob@example.com'] },
    ],
    ...extra,
  });
}

const TRUNK: TrunkInfo = {
  name: 'pbx',
  profile: 'asterisk',
  directions: ['watch'],
  reachable: false,
  authenticated: undefined,
  subscriptions: { up: 1, down: 2 },
  publications: { up: 0, down: 0 },
};

interface FakeGraph extends GraphRuntime {
  observer: GraphObserver | undefined;
  reads: string[][];
  readResult: { read: number; error?: string };
  statusValue: GraphStatus;
}

function fakeGraph(): FakeGraph {
  const g: FakeGraph = {
    observer: undefined,
    reads: [],
    readResult: { read: 1 },
    statusValue: {
      started: true,
      tokens: [{ name: 'app', ok: true, lastAcquiredAt: 1 }],
      budget: { limit: 1500, windowMs: 30_000, inWindow: 0, waiting: 0, granted: 3, throttled: 0 },
      directory: {},
      reader: {
        users: 2,
        polled: 2,
        polls: 1,
        notifications: { received: 0, accepted: 0, rejected: 0, malformed: 0, lifecycle: 0 },
        lookups: { calls: 0, failures: 0 },
        sink: { applied: 0, stale: 0, unmapped: 0 },
        subscriptions: [],
      },
    },
    webhook: { handleValidation: () => ({ status: 400 }), handleNotifications: () => ({ status: 202 }) },
    start: async () => undefined,
    stop: async () => undefined,
    status: () => g.statusValue,
    syncDirectory: async () => {
      throw new Error('not used');
    },
    pollNow: async () => undefined,
    signIn: async () => {
      throw new Error('not used');
    },
    idle: async () => undefined,
    observe(o) {
      g.observer = o;
    },
    async readUsers(ids) {
      g.reads.push([...ids]);
      return g.readResult;
    },
  };
  return g;
}

/** The helpers' server, built with the observers of a metrics side made first (as app.ts does). */
function observedServer(): ReturnType<typeof makeServer> & { observed: MetricsSide } {
  let observed: MetricsSide | undefined;
  const env = makeServer({
    observers: (store) => {
      observed = wireMetrics({ store, processMetrics: false });
      return observed.simple;
    },
  });
  return { ...env, observed: observed! };
}

function setup(options: { extra?: Record<string, unknown>; graph?: FakeGraph; storeOk?: () => boolean; cluster?: AdminWiringOptions['cluster'] } = {}) {
  const env = observedServer();
  const cfg = config(options.extra);
  const wiring = wireAdmin({
    config: cfg,
    directory: makeDirectoryOf(env),
    store: env.store,
    stack: env.stack,
    simple: env.server,
    metrics: env.observed,
    trunks: { statuses: () => [TRUNK] },
    graph: options.graph,
    logger: silentLogger(),
    ...(options.storeOk !== undefined ? { storeOk: options.storeOk } : {}),
    ...(options.cluster !== undefined ? { cluster: options.cluster } : {}),
  });
  return { ...env, wiring };
}

/** The directory the helpers' server was built with (alice and bob; SimpleServer keeps it private). */
function makeDirectoryOf(env: ReturnType<typeof makeServer>): Directory {
  return (env.server as unknown as { directory: Directory }).directory;
}

function metricValue(text: string, line: string): number | undefined {
  for (const l of text.split('\n')) if (l.startsWith(line + ' ')) return Number(l.slice(line.length + 1));
  return undefined;
}

t.test('NOTIFY outcomes and subscriptions become metrics', async (t) => {
  const { stack, wiring } = setup();
  t.teardown(() => wiring.close());
  t.equal(stack.deliver(subscribe({ user: 'alice' }))[0]?.status, 200);
  t.equal(stack.deliver(subscribe({ user: 'bob', event: 'dialog' }))[0]?.status, 200);
  await settle();
  const [first, second] = stack.notifies();
  first!.answer(200);
  second!.answer(481);
  await settle();
  const text = await wiring.metrics.text();
  t.equal(metricValue(text, 'notify_sent_total{event="presence"}'), 1, 'a 2xx counts as sent');
  t.equal(metricValue(text, 'notify_failed_total{event="dialog",status="481"}'), 1, 'a 481 counts as failed with its status');
  t.equal(metricValue(text, 'subscriptions{event="presence",state="active"}'), 1, 'live subscriptions by event');
  t.equal(metricValue(text, 'subscriptions{event="dialog",state="active"}'), 0, 'the 481 ended the dialog subscription');
  t.equal(metricValue(text, 'trunk_up{trunk="pbx"}'), 0, 'trunk state');
  t.equal(metricValue(text, 'upstream_subscriptions{trunk="pbx",state="down"}'), 2);
});

t.test('PUBLISH outcomes: created, refreshed, modified, removed, errors', async (t) => {
  const { stack, wiring } = setup();
  t.teardown(() => wiring.close());
  const created = stack.deliver(publish({ user: 'alice', body: pidfBody({ activities: '<rpid:busy/>' }), expires: 600 }))[0]!;
  t.equal(created.status, 200);
  const etag1 = created.headers.get('sip-etag')!;
  const refreshed = stack.deliver(publish({ user: 'alice', ifMatch: etag1, expires: 600 }))[0]!;
  t.equal(refreshed.status, 200);
  const etag2 = refreshed.headers.get('sip-etag')!;
  const modified = stack.deliver(publish({ user: 'alice', ifMatch: etag2, body: pidfBody({ activities: '<rpid:away/>' }), expires: 600 }))[0]!;
  const etag3 = modified.headers.get('sip-etag')!;
  t.equal(stack.deliver(publish({ user: 'alice', ifMatch: etag3, expires: 0 }))[0]?.status, 200);
  t.equal(stack.deliver(publish({ user: 'alice', body: '<x/>', contentType: 'text/plain' }))[0]?.status, 415);
  t.equal(stack.deliver(publish({ user: 'alice', ifMatch: 'no-such-etag', expires: 600 }))[0]?.status, 412);
  const text = await wiring.metrics.text();
  for (const result of ['created', 'refreshed', 'modified', 'removed', '415', '412']) {
    t.equal(metricValue(text, `publish_total{event="presence",result="${result}"}`), 1, `publish ${result}`);
  }
});

t.test('the AdminSource: watchers, history, render, resync without Teams', async (t) => {
  const { stack, store, wiring } = setup();
  t.teardown(() => wiring.close());
  stack.deliver(subscribe({ user: 'alice' }));
  stack.deliver(subscribe({ user: 'alice' }));
  stack.deliver(subscribe({ user: 'alice', event: 'dialog' }));
  await settle();
  for (const n of stack.pending()) n.answer(200);
  await settle();
  const src = wiring.source;
  t.same(src.persons().map((p) => p.id), ['alice', 'bob']);
  t.same(src.watchers('alice'), { presence: 2, dialog: 1 }, 'watchers by event package');
  t.same(src.watchers('bob'), {});

  store.setTeams('alice', { availability: 'Busy', activity: 'InACall', at: Date.now() });
  const h = src.history('alice');
  t.equal(h.length, 1, 'the change is in the history');
  t.equal(h[0]?.source, 'teams');
  t.ok(h[0]?.view.activities.includes('on-the-phone'));

  const rfc = src.render('alice', 'presence', 'rfc');
  t.equal(rfc?.contentType, 'application/pidf+xml');
  t.match(rfc?.body, /on-the-phone/, 'the body shows the call');
  t.match(rfc?.body, /entity="sip:alice@example.com"/, 'for the user\'s AoR');
  const dialog = src.render('alice', 'dialog', 'polycom');
  t.equal(dialog?.contentType, 'application/dialog-info+xml');
  t.match(dialog?.body, /confirmed/, 'the Teams call lights BLF');
  t.equal(src.render('nobody', 'presence', 'rfc'), undefined, 'unknown user');

  await settle();
  t.equal(stack.pending().length, 3, 'the change went to the three watchers');
  for (const n of stack.pending()) n.answer(200);
  await settle();
  const before = stack.notifies().length;
  const r = await src.resync('alice');
  t.equal(r.ok, true);
  t.match(r.detail, /no Teams side configured/);
  t.match(r.detail, /sent to 3 watchers/);
  await settle();
  t.equal(stack.notifies().length - before, 3, 'every watcher got the state again');
  t.same(await src.resync('nobody'), { ok: false, detail: 'no user "nobody"' });
  t.same(src.trunks(), [TRUNK]);
  t.equal(src.graph(), undefined);
});

t.test('the HTTP options: admin only with admin:, metrics token when configured', async (t) => {
  const a = setup({ extra: { admin: { token: TOKEN, metricsToken: 'metrics-token-0123456789abcdef' } } });
  t.equal(a.wiring.http.admin?.token, TOKEN);
  t.equal(a.wiring.http.metrics?.token, 'metrics-token-0123456789abcdef');
  t.equal(a.wiring.http.metrics?.metrics, a.wiring.metrics);
  a.wiring.close();
  const b = setup({ extra: { admin: undefined } });
  t.equal(b.wiring.http.admin, undefined, 'no admin: section, no admin API');
  t.equal(b.wiring.history, undefined, 'and no history kept');
  t.ok(b.wiring.http.metrics !== undefined, '/metrics still served');
  t.equal(b.wiring.http.metrics?.token, undefined);
  b.wiring.close();
});

t.test('readiness: SIP listeners, store, Graph auth', async (t) => {
  let storeOk = true;
  const sipOnly = setup({ storeOk: () => storeOk });
  t.same(sipOnly.wiring.ready(), { sip: true, store: true });
  storeOk = false;
  t.same(sipOnly.wiring.ready(), { sip: true, store: false }, 'the store part follows storeOk');
  sipOnly.wiring.close();

  const graph = fakeGraph();
  const env = observedServer();
  // the Graph side is built before the admin side: with Graph expected but none given, Graph is not ready
  const wire = (created: FakeGraph | undefined) =>
    wireAdmin({
      config: config({ graphSimulator: { port: 0 } }),
      directory: makeDirectoryOf(env),
      store: env.store,
      stack: { localEndpoint: () => undefined },
      simple: env.server,
      metrics: env.observed,
      trunks: { statuses: () => [] },
      graph: created,
      logger: silentLogger(),
    });
  const without = wire(undefined);
  t.same(without.ready(), { sip: false, graph: false }, 'nothing bound, Graph not created yet');
  without.close();
  const wiring = wire(graph);
  t.teardown(() => wiring.close());
  t.same(wiring.ready(), { sip: false, graph: true });
  graph.statusValue.tokens = [{ name: 'app', ok: true }, { name: 'svc1@contoso.test', ok: false, lastError: 'AADSTS50126' }];
  t.equal(wiring.ready()['graph'], false, 'a failing token: Graph auth is down');
});

/** A cluster's read side: the nodes and leases it was given (none: this node alone), its store reachable while `up`. */
function fakeCluster(nodeId: string) {
  const c = {
    nodeId,
    up: true,
    nodeList: [] as NodeInfo[],
    leaseList: [] as LeaseInfo[],
    membership: { nodeId, nodes: () => c.nodeList, onNodeDown: () => () => undefined, onNodeUp: () => () => undefined, setLocal: () => undefined },
    leases: { hold: () => async () => undefined, held: () => undefined, list: () => c.leaseList },
    connected: () => c.up,
  };
  return c;
}

t.test('readiness with a cluster: not ready while the shared store is unreachable', async (t) => {
  const cluster = fakeCluster('node-a');
  const { wiring } = setup({ storeOk: () => true, cluster: { cluster, store: 'redis', redisUrl: 'redis://u:secret@127.0.0.1:6379/0' } });
  t.teardown(() => wiring.close());
  t.same(wiring.ready(), { sip: true, store: true, cluster: true });
  cluster.up = false;
  t.same(wiring.ready(), { sip: true, store: true, cluster: false }, 'the cluster part follows connected()');
  const sqlite = setup({ cluster: { cluster: fakeCluster('solo'), store: 'sqlite' } });
  t.notOk('cluster' in sqlite.wiring.ready(), 'a single node needs no shared store to be ready');
  sqlite.wiring.close();
  const single = setup();
  t.notOk('cluster' in single.wiring.ready());
  single.wiring.close();
});

t.test('graphAuthOk', async (t) => {
  t.equal(graphAuthOk(undefined), false);
  t.equal(graphAuthOk({ started: false, tokens: [{ name: 'app', ok: true }] }), false, 'not started');
  t.equal(graphAuthOk({ started: true, tokens: [] }), false, 'no app token');
  t.equal(graphAuthOk({ started: true, tokens: [{ name: 'app', ok: false, lastError: 'x' }] }), false);
  t.equal(graphAuthOk({ started: true, tokens: [{ name: 'app', ok: true }, { name: 'svc', ok: false }] }), true, 'a token not tried yet is not a failure');
});

t.test('Graph observations: request statuses, Teams-to-SIP and SIP-to-Teams latency, resync', async (t) => {
  const graph = fakeGraph();
  const { stack, store, directory, wiring, observed, server } = (() => {
    const s = setup({ extra: { graphSimulator: { port: 0 } }, graph });
    return { ...s, directory: makeDirectoryOf(s) };
  })();
  t.teardown(() => wiring.close());
  t.equal(graph.observer, undefined, 'the admin wiring sets no observer late: the Graph side is given it when built');
  // as app.ts builds it for createGraph({ observer })
  const o = observed.graph((personId) => server.notifier.watchers(personId).length > 0);
  o.graphRequest?.(200);
  o.graphRequest?.(429);
  o.graphRequest?.(0);
  o.sipToTeams?.(0.3);

  stack.deliver(subscribe({ user: 'alice' }));
  await settle();
  for (const n of stack.pending()) n.answer(200);
  await settle();

  // a Teams reading that changes nothing starts no clock
  o.teamsApplied?.('alice', 100);
  // one that changes the view does; the NOTIFY answered stops it
  store.setTeams('alice', { availability: 'Busy', activity: 'InACall', at: Date.now() });
  o.teamsApplied?.('alice', 400);
  await settle();
  t.equal(stack.pending().length, 1, 'the change is notified');
  stack.pending()[0]!.answer(200);
  await settle();
  // bob has no watchers: his change starts no clock either
  store.setTeams('bob', { availability: 'Away', activity: 'Away', at: Date.now() });
  o.teamsApplied?.('bob', 50);

  const text = await wiring.metrics.text();
  t.equal(metricValue(text, 'graph_requests_total{status="200"}'), 1);
  t.equal(metricValue(text, 'graph_requests_total{status="429"}'), 1);
  t.equal(metricValue(text, 'graph_requests_total{status="0"}'), 1);
  t.equal(metricValue(text, 'graph_throttled_total'), 1, '429s are throttles');
  t.equal(metricValue(text, 'sip_to_teams_seconds_count'), 1);
  t.equal(metricValue(text, 'teams_to_sip_seconds_count'), 1, 'one Teams change reached a watcher');
  const sum = metricValue(text, 'teams_to_sip_seconds_sum') ?? 0;
  t.ok(sum >= 0.4 && sum < 5, `latency counts from when the change became known (${sum} s)`);

  // resync reads the Teams user again
  directory.setTeamsIdentity('alice', { userId: '11111111-2222-3333-4444-555555555555', upn: 'alice@contoso.test' });
  const ok = await wiring.source.resync('alice');
  t.same(graph.reads, [['11111111-2222-3333-4444-555555555555']]);
  t.equal(ok.ok, true);
  t.match(ok.detail, /Teams presence read again/);
  graph.readResult = { read: 0, error: '429 TooManyRequests throttled' };
  const failed = await wiring.source.resync('alice');
  t.equal(failed.ok, false);
  t.match(failed.detail, /could not be read: 429/);
  const noId = await wiring.source.resync('bob');
  t.equal(noId.ok, true);
  t.match(noId.detail, /no Teams identity/);
  t.equal(wiring.source.graph()?.started, true, 'Graph status is passed through');

  wiring.close();
  t.equal(graph.observer, undefined, 'nor at close');
});

t.test('the cluster JSON: GET /api/cluster and the cluster section of /api/status, admin token needed', async (t) => {
  const cluster = fakeCluster('node-a');
  const now = Date.now();
  const beat = (nodeId: string, over: Partial<NodeInfo> = {}): NodeInfo => ({ nodeId, sip: ['udp 127.0.0.1:5060'], startedAt: now - 10_000, seenAt: now, subscriptions: 0, leases: [], ...over });
  cluster.nodeList = [beat('node-a', { subscriptions: 2, leases: ['trunk:pbx'] }), beat('node-b', { subscriptions: 5, leases: ['graph:subscriptions'] })];
  cluster.leaseList = [
    { job: 'trunk:pbx', holder: 'node-a', token: 3, expiresAt: now + 4000 },
    { job: 'graph:subscriptions', holder: 'node-b', token: 8, expiresAt: now + 4000 },
  ];
  const { wiring } = setup({ cluster: { cluster, store: 'redis', redisUrl: 'redis://u:secret@127.0.0.1:6379/0' } });
  const server = await startHttpServer({ address: '127.0.0.1', port: 0, logger: silentLogger(), ...wiring.http });
  t.teardown(async () => {
    await server.close();
    wiring.close();
  });
  const get = async (path: string, token = TOKEN) => {
    const r = await fetch(`${server.origin}/api${path}`, { headers: { authorization: `Bearer ${token}` } });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };
  t.equal((await get('/cluster', 'not-the-admin-token-0000000000')).status, 401, 'the admin token is needed');
  const { status, body } = await get('/cluster');
  t.equal(status, 200);
  t.match(body, { nodeId: 'node-a', store: 'redis', storeUrl: 'redis://127.0.0.1:6379/0', connected: true, nodeTtlMs: 5000 });
  t.notMatch(JSON.stringify(body), /secret/, 'the Redis password is not shown');
  t.same(
    (body['nodes'] as Array<Record<string, unknown>>).map((n) => [n['id'], n['self'], n['up'], n['subscriptions'], n['leases']]),
    [
      ['node-a', true, true, 2, ['trunk:pbx']],
      ['node-b', false, true, 5, ['graph:subscriptions']],
    ],
  );
  t.same(
    (body['jobs'] as Array<Record<string, unknown>>).map((j) => [j['job'], j['holder'], j['self'], j['holderUp']]),
    [
      ['graph:subscriptions', 'node-b', false, true],
      ['trunk:pbx', 'node-a', true, true],
    ],
  );
  const s = await get('/status');
  t.same((s.body['cluster'] as Record<string, unknown>)['nodeId'], 'node-a', '/api/status carries the same section');
  const cards = s.body['connectors'] as Array<Record<string, unknown>>;
  t.match(cards[0], { kind: 'store', ok: true, badge: 'Connected' }, 'a store card, green');
  t.match(cards.find((c) => c['kind'] === 'trunk'), { name: 'pbx', job: { job: 'trunk:pbx', holder: 'node-a', self: true } }, 'the trunk card names its node');

  // Redis unreachable: not ready, and red on the page
  cluster.up = false;
  t.equal(wiring.ready()['cluster'], false);
  const down = await get('/cluster');
  t.equal(down.body['connected'], false);
  t.same((down.body['nodes'] as Array<Record<string, unknown>>).map((n) => n['up']), [false, null], 'this node down, the other not known');
  t.match(((await get('/status')).body['connectors'] as unknown[])[0], { kind: 'store', ok: false, badge: 'Unreachable' });
});

t.test('the cluster JSON of a single node: itself, every job its own, no store card', async (t) => {
  const cluster = singleNodeCluster('solo-1');
  const release = cluster.leases.hold('trunk:pbx', { acquired: () => undefined, lost: () => undefined });
  cluster.membership.setLocal({ subscriptions: 4 });
  const { wiring } = setup({ cluster: { cluster, store: 'sqlite' } });
  t.teardown(async () => {
    await release();
    wiring.close();
  });
  const view = wiring.source.cluster?.();
  t.match(view, { nodeId: 'solo-1', store: 'sqlite', storeUrl: null, connected: true });
  t.same(view?.nodes.map((n) => [n.id, n.self, n.up, n.subscriptions, n.leases]), [['solo-1', true, true, 4, ['trunk:pbx']]]);
  t.same(view?.jobs.map((j) => [j.job, j.holder, j.self, j.expiresAt]), [['trunk:pbx', 'solo-1', true, null]]);
  const none = setup();
  t.equal(none.wiring.source.cluster, undefined, 'without a cluster: no section');
  none.wiring.close();
});
