/** The Cluster of a gateway alone (src/store/single-node.ts): every lease at once, a bus to nowhere, one member. */
import t from 'tap';
import { singleNodeCluster } from '../../src/store/single-node.js';

t.test('a lease is acquired within hold(), token 1, and only its release ends it', async (t) => {
  const c = singleNodeCluster('gw-1');
  const events: string[] = [];
  const release = c.leases.hold('graph:poller', {
    acquired: (token) => void events.push(`acquired ${token}`),
    lost: (reason) => void events.push(`lost ${reason}`),
  });
  t.same(events, ['acquired 1'], 'acquired before hold() returned');
  t.equal(c.leases.held('graph:poller'), 1);
  t.equal(c.leases.held('graph:writer'), undefined, 'a job nobody asked for is not held');
  t.same(c.leases.list(), [{ job: 'graph:poller', holder: 'gw-1', token: 1, expiresAt: undefined }]);
  t.same(c.membership.nodes().map((n) => n.leases), [['graph:poller']], 'the node lists the leases it holds');
  await release();
  await release();
  t.same(events, ['acquired 1', 'lost released'], 'lost once, as released');
  t.equal(c.leases.held('graph:poller'), undefined);
  t.same(c.leases.list(), []);
});

t.test('a release waits for the start it ends, also a start that failed', async (t) => {
  const c = singleNodeCluster('gw-1');
  const events: string[] = [];
  let finish: () => void = () => undefined;
  const release = c.leases.hold('trunk:pbx', {
    acquired: () =>
      new Promise<void>((resolve) => {
        finish = () => {
          events.push('started');
          resolve();
        };
      }),
    lost: () => void events.push('stopped'),
  });
  const released = release();
  await new Promise((r) => setImmediate(r));
  t.same(events, [], 'not stopped while starting');
  finish();
  await released;
  t.same(events, ['started', 'stopped']);

  const failing = c.leases.hold('graph:writer', { acquired: () => Promise.reject(new Error('no')), lost: () => void events.push('stopped too') });
  await failing();
  t.same(events, ['started', 'stopped', 'stopped too']);
});

t.test('the bus delivers nothing, the membership is this node, the store is always reachable', async (t) => {
  const c = singleNodeCluster('gw-1');
  const got: unknown[] = [];
  c.bus.onMessage((m) => got.push(m));
  c.bus.publish({ type: 'moved', from: 'gw-1', what: 'subscription', id: 'x', to: 'gw-2' });
  await new Promise((r) => setImmediate(r));
  t.same(got, [], 'nothing delivered');
  t.equal(c.nodeId, 'gw-1');
  t.equal(c.membership.nodeId, 'gw-1');
  c.membership.setLocal({ subscriptions: 3, sip: ['udp 127.0.0.1:5060'], http: 'http://127.0.0.1:8080' });
  const nodes = c.membership.nodes();
  t.equal(nodes.length, 1);
  t.match(nodes[0], { nodeId: 'gw-1', subscriptions: 3, sip: ['udp 127.0.0.1:5060'], http: 'http://127.0.0.1:8080', leases: [] });
  let downs = 0;
  c.membership.onNodeDown(() => downs++);
  t.equal(downs, 0);
  t.equal(c.ownership, undefined);
  t.equal(c.personState, undefined);
  t.equal(c.connected(), true);
  await c.close();
});
