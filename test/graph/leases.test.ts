/**
 * The Graph side's jobs under leases (src/job-wiring.ts, src/store/cluster.ts):
 * nothing runs before its lease is acquired, a lost lease stops the job
 * without deleting anything in Graph, the next holder (another gateway on the
 * same store) renews the subscription the first one made, and the webhook of
 * a node that holds no lease takes Graph's notifications all the same.
 */
import t, { type Test } from 'tap';
import { createGraph, type GraphConfig, type NotificationKeyStore } from '../../src/graph/index.js';
import { holdJobs } from '../../src/job-wiring.js';
import { JOBS } from '../../src/store/cluster.js';
import { graphSubscriptionState } from '../../src/store/graph-state.js';
import { notificationKeyState } from '../../src/store/graph-writer-state.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { RepositoryName } from '../../src/store/store.js';
import { silentLogger } from '../../src/util/logger.js';
import { FakeLeases } from '../helpers/fake-leases.js';
import { core, subscribingEnv, waitFor } from './helpers.js';

const CLIENT_STATE = 'gateway-client-state-for-lease-tests';

/** One gateway's Graph side on the store it shares with the others, opened (no job started); its store reads are noted in `reloads`. */
async function opened(t: Test, config: GraphConfig, shared: MemoryStore, reloads: RepositoryName[][], notificationKeys?: NotificationKeyStore) {
  const c = core();
  const graph = createGraph({
    config,
    directory: c.directory,
    store: c.store,
    logger: silentLogger(),
    stateStore: graphSubscriptionState(shared),
    ...(notificationKeys !== undefined ? { notificationKeys } : {}),
    reload: async (r) => {
      reloads.push([...r]);
      await shared.reload(r);
    },
  });
  t.teardown(() => graph.stop());
  await graph.open();
  return { graph, c };
}

t.test('graph jobs: acquired, lost, taken over on a shared store; the webhook works on every node', async (t) => {
  const { e, hook, config, count } = await subscribingEnv(t, CLIENT_STATE, { writer: { enabled: true } });
  // one store both gateways share (what Redis is to a cluster); each reload is counted
  const shared = new MemoryStore();
  const reloads: RepositoryName[][] = [];
  const node = async () => {
    const leases = new FakeLeases();
    const { graph, c } = await opened(t, config, shared, reloads);
    const jobs = holdJobs(leases, graph.jobs.map((job) => ({ job, start: () => graph.startJob(job), stop: () => graph.stopJob(job) })), silentLogger());
    await jobs.started;
    return { graph, leases, jobs, ...c };
  };

  const a = await node();
  // node B is up before A has subscribed: its webhook learns A's subscription from the store
  const b = await node();
  hook.handlers = b.graph.webhook;
  t.same(a.leases.asked, [JOBS.graphSubscriptions, JOBS.graphWriter, JOBS.directorySync], 'one lease per job (the poller goes with the subscriptions whose coverage it reads)');

  await t.test('nothing runs before its lease is acquired', async (t) => {
    t.equal(e.sim.control.subscriptions().length, 0, 'no subscription');
    t.equal(count('POST /v1.0/subscriptions 201'), 0);
    t.equal(count('POST /v1.0/communications/getPresencesByUserId 200'), 0, 'nobody polled');
    a.store.setTelephony('anna', { line: 'in-call', dnd: false, calls: [], origin: 'pbx', at: 0 });
    await a.graph.idle();
    t.equal(count('POST /v1.0/users/:id/presence/setPresence 200'), 0, 'the writer writes nothing');
    t.same(a.jobs.running(), []);
  });

  await t.test('acquired: node A subscribes, polls and writes', async (t) => {
    await a.leases.grantAll();
    t.same(a.jobs.running().sort(), [...a.leases.asked].sort());
    t.equal(e.sim.control.subscriptions().length, 1, 'one subscription');
    t.ok(count('POST /v1.0/communications/getPresencesByUserId 200') > 0, 'everyone read once');
    await waitFor(() => count('POST /v1.0/users/:id/presence/setPresence 200') === 1, 8000, 'setPresence');
    t.equal(shared.graphSubscriptions.count(), 1, 'saved in the shared store');
  });

  await t.test('the webhook of node B (no lease) takes the notification and B sees the change', async (t) => {
    const before = reloads.length;
    e.sim.control.call('chiara');
    await waitFor(() => b.store.state('chiara').teams?.activity === 'InACall', 8000, 'chiara in a call on node B');
    t.ok(b.graph.status().reader.notifications.accepted >= 1, 'accepted on B');
    t.equal(b.graph.status().reader.notifications.rejected, 0, 'nothing dropped');
    t.same(reloads.slice(before), [['graphSubscriptions']], 'the unknown subscription id: the store read again, once');
  });

  await t.test('a flood of unknown subscription ids costs one store read per interval', async (t) => {
    const before = reloads.length;
    for (let i = 0; i < 20; i++) {
      b.graph.webhook.handleNotifications({
        value: [{ subscriptionId: `forged-${i}`, clientState: 'guess', changeType: 'updated', resource: "communications/presences('x')", resourceData: { id: 'x' } }],
      });
    }
    await b.graph.idle();
    t.same(reloads.slice(before), [], 'read a moment ago: no read again');
    t.equal(b.graph.status().reader.notifications.dropped?.clientState, 20, 'every forged one dropped');
  });

  await t.test('lost: node A stops without deleting the subscription', async (t) => {
    const renewals = count('PATCH /v1.0/subscriptions/:id 200');
    await a.leases.takeAll();
    t.same(a.jobs.running(), []);
    t.equal(count('DELETE /v1.0/subscriptions/:id 204'), 0, 'no DELETE');
    t.equal(e.sim.control.subscriptions().length, 1, 'still in Graph');
    t.equal(count('PATCH /v1.0/subscriptions/:id 200'), renewals);
  });

  await t.test('node B takes over: the subscription of node A is renewed, not made again', async (t) => {
    const id = e.sim.control.subscriptions()[0]?.['id'];
    const creates = count('POST /v1.0/subscriptions 201');
    const renewals = count('PATCH /v1.0/subscriptions/:id 200');
    const before = reloads.length;
    await b.leases.grantAll();
    t.same(
      reloads.slice(before).find((r) => r.includes('graphSubscriptions')),
      ['graphSubscriptions', 'graphTokenCache', 'graphNotificationKeys'],
      'the subscriptions job reads its state again first',
    );
    t.equal(count('POST /v1.0/subscriptions 201'), creates, 'nothing created');
    t.equal(count('POST /v1.0/subscriptions 409'), 0, 'no conflict');
    t.equal(count('PATCH /v1.0/subscriptions/:id 200'), renewals + 1, 'renewed');
    const subs = e.sim.control.subscriptions();
    t.equal(subs.length, 1, 'exactly one subscription in Graph');
    t.equal(subs[0]?.['id'], id, 'the same one');
    t.equal(b.graph.status().reader.subscriptions[0]?.subscriptionId, id);
  });

  await t.test('and node A, acquiring again later, renews what B left', async (t) => {
    await b.leases.takeAll();
    const creates = count('POST /v1.0/subscriptions 201');
    const renewals = count('PATCH /v1.0/subscriptions/:id 200');
    await a.leases.grantAll();
    t.equal(count('POST /v1.0/subscriptions 201'), creates, 'nothing created');
    t.equal(count('PATCH /v1.0/subscriptions/:id 200'), renewals + 1, 'renewed');
    t.equal(e.sim.control.subscriptions().length, 1);
  });
});

t.test('rich notifications on a node without the lease: a certificate it never loaded is read from the store', async (t) => {
  const { e, hook, config } = await subscribingEnv(t, CLIENT_STATE, { writer: { enabled: false } }, { richNotifications: true });
  const shared = new MemoryStore();
  const keys = notificationKeyState(shared);
  const reloads: RepositoryName[][] = [];
  const node = async (notificationKeys: NotificationKeyStore) => {
    const { graph, c } = await opened(t, config, shared, reloads, notificationKeys);
    return { graph, ...c };
  };
  const a = await node(keys);
  // node B read the store before A's key pair was in it, and made its own
  let first = true;
  const b = await node({ load: async () => (first ? ((first = false), []) : keys.load()), save: (r) => keys.save(r) });
  t.not(a.graph.status().notificationKey?.certificateId, b.graph.status().notificationKey?.certificateId, 'two key pairs');
  hook.handlers = b.graph.webhook;
  await a.graph.startJob(JOBS.graphSubscriptions);
  t.equal(e.sim.control.subscriptions().length, 1);

  e.sim.control.call('chiara');
  await waitFor(() => b.store.state('chiara').teams?.activity === 'InACall', 8000, 'chiara in a call on node B');
  await b.graph.idle();
  const n = b.graph.status().reader.notifications;
  t.ok((n.decrypted ?? 0) >= 1, 'decrypted on B with the key pair of A');
  t.equal(n.dropped?.decryption, 0, 'none dropped for want of the key');
  t.ok(reloads.some((r) => r.length === 1 && r[0] === 'graphNotificationKeys'), 'the key pairs read again from the store');
});
