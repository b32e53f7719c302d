/**
 * The directory sync's Teams identities shared between the nodes of a service
 * (src/graph/teams-identities.ts, src/store/directory-cache-state.ts): the node
 * that runs the sync job saves what it found; a node without the job takes it
 * into its own directory, so it understands notifications for a person matched
 * after it started.
 */
import t, { type Test } from 'tap';
import { Directory } from '../../src/core/directory.js';
import { createGraph, type GraphConfig } from '../../src/graph/index.js';
import { applyIdentities, identitiesOf } from '../../src/graph/teams-identities.js';
import { holdJobs } from '../../src/job-wiring.js';
import { JOBS } from '../../src/store/cluster.js';
import { directoryCacheState } from '../../src/store/directory-cache-state.js';
import { graphSubscriptionState } from '../../src/store/graph-state.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { silentLogger } from '../../src/util/logger.js';
import { FakeLeases } from '../helpers/fake-leases.js';
import { core, people, subscribingEnv, waitFor } from './helpers.js';

t.test('identitiesOf / applyIdentities: exactly the stored set, a moved identity is no conflict', async (t) => {
  const d = new Directory(people(), { domains: ['gw.example'] });
  d.setTeamsIdentity('anna', { userId: 'u-anna', upn: 'anna@contoso.example' });
  d.setTeamsIdentity('ben', { userId: 'u-ben' });
  const saved = identitiesOf(d, 5);
  t.same(saved, [
    { personId: 'anna', userId: 'u-anna', upn: 'anna@contoso.example', at: 5 },
    { personId: 'ben', userId: 'u-ben', at: 5 },
  ]);
  t.equal(applyIdentities(d, saved), 0, 'the same set changes nobody');

  // ben's Teams user is chiara's now, anna's upn changed, and zoe is matched
  const next = [
    { personId: 'anna', userId: 'U-ANNA', upn: 'anna.meier@contoso.example', at: 9 },
    { personId: 'chiara', userId: 'u-ben', at: 9 },
    { personId: 'zoe', userId: 'u-zoe', at: 9 },
  ];
  t.equal(applyIdentities(d, next), 4, 'anna, ben, chiara and zoe changed');
  t.equal(d.get('ben')?.teams, undefined, 'ben forgotten');
  t.equal(d.findByTeamsUserId('u-ben')?.id, 'chiara', 'the identity moved without a conflict');
  t.equal(d.get('anna')?.teams?.upn, 'anna.meier@contoso.example');
  t.equal(d.findByTeamsUserId('u-zoe')?.id, 'zoe');
  t.equal(applyIdentities(d, [...next, { personId: 'nobody-here', userId: 'u-x', at: 9 }]), 0, 'a person this node does not know is passed over');
});

t.test('directoryCacheState: replace keeps exactly the set; load reads what another node wrote', async (t) => {
  const shared = new MemoryStore();
  const a = directoryCacheState(shared);
  a.replace([
    { personId: 'anna', userId: 'u1', mail: 'anna@contoso.example', at: 1 },
    { personId: 'ben', userId: 'u2', at: 1 },
  ]);
  a.replace([{ personId: 'anna', userId: 'u1', mail: 'anna@contoso.example', at: 2 }]);
  t.same(await directoryCacheState(shared).load(), [{ personId: 'anna', userId: 'u1', mail: 'anna@contoso.example', at: 2 }]);
});

/** One node's Graph side on the shared store, opened; its jobs under its own leases. */
async function node(t: Test, config: GraphConfig, shared: MemoryStore) {
  const c = core();
  const graph = createGraph({
    config,
    directory: c.directory,
    store: c.store,
    logger: silentLogger(),
    stateStore: graphSubscriptionState(shared),
    reload: (r) => shared.reload(r),
    identities: { ...directoryCacheState(shared), followMs: 100 },
  });
  t.teardown(() => graph.stop());
  await graph.open();
  const leases = new FakeLeases();
  const jobs = holdJobs(leases, graph.jobs.map((job) => ({ job, start: () => graph.startJob(job), stop: () => graph.stopJob(job) })), silentLogger());
  await jobs.started;
  return { graph, leases, ...c };
}

t.test('a person matched later by the node that syncs reaches the directory of a node that does not', async (t) => {
  const { e, config } = await subscribingEnv(t, 'gateway-client-state-identities');
  const shared = new MemoryStore();
  const a = await node(t, config, shared);
  const b = await node(t, config, shared);
  await a.leases.grant(JOBS.directorySync);
  t.equal(a.directory.get('zoe')?.teams, undefined, 'zoe has no Teams user yet');
  t.ok(b.directory.get('anna')?.teams?.userId, 'both nodes matched anna at start');

  const zoe = e.sim.control.addUser({ displayName: 'Zoe Nobody', userPrincipalName: 'zoe@contoso.example' });
  await a.graph.syncDirectory();
  t.equal(a.directory.get('zoe')?.teams?.userId, zoe.id, 'the node with the sync job matched zoe');
  await waitFor(() => b.directory.get('zoe')?.teams?.userId === zoe.id, 5000, 'node b takes zoe in');
  t.equal(b.directory.findByTeamsUserId(zoe.id)?.id, 'zoe', 'node b finds zoe by her Teams user (a webhook notification for her)');
});
