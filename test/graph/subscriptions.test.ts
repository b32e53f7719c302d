import { join } from 'node:path';
import t from 'tap';
import { ManualClock } from '../../src/graph-simulator/clock.js';
import { GraphAuth } from '../../src/graph/auth.js';
import { RequestBudget } from '../../src/graph/budget.js';
import { createGraphClient } from '../../src/graph/client.js';
import { createHttpTransport } from '../../src/graph/http-transport.js';
import { createGraph, JsonFileSubscriptionStateStore, MemorySubscriptionStateStore, type GraphRuntime, type SubscriptionStateStore } from '../../src/graph/index.js';
import { assignUsers } from '../../src/graph/subscription-manager.js';
import { silentLogger } from '../../src/util/logger.js';
import { ANNA, CHIARA, core, env, subscribingEnv, waitFor, webhookServer } from './helpers.js';

const CLIENT_STATE = 'gateway-client-state-for-tests-0001';

t.test('users are spread over as few service accounts as needed, and stay put', async (t) => {
  const ids = Array.from({ length: 2000 }, (_, i) => `u${i}`);
  const slots = Array.from({ length: 6 }, () => ({ wanted: [] as string[] }));
  const left = assignUsers(ids, slots);
  t.same(left, []);
  t.same(
    slots.map((s) => s.wanted.length),
    [500, 500, 500, 500, 0, 0],
    '2,000 users: 4 accounts, 500 each',
  );
  const before = slots.map((s) => [...s.wanted]);
  const more = [...ids.filter((u) => u !== 'u0'), 'new1', 'new2'];
  assignUsers(more, slots);
  t.same(slots[1]?.wanted, before[1], 'accounts whose users did not change keep the same list');
  t.ok(!slots[0]?.wanted.includes('u0'));
  t.equal(slots.reduce((n, s) => n + s.wanted.length, 0), 2001);
  const tight = Array.from({ length: 2 }, () => ({ wanted: [] as string[] }));
  const overflow = assignUsers(ids, tight);
  t.same(
    tight.map((s) => s.wanted.length),
    [650, 650],
  );
  t.equal(overflow.length, 700, 'who does not fit is left for polling');
});

t.test('presence subscriptions over the webhook (real clock)', async (t) => {
  const { e, hook, config, count } = await subscribingEnv(t, CLIENT_STATE, { writer: { enabled: false } });
  const statePath = join(e.dir, 'state', 'subscriptions.json');
  const runtimes: GraphRuntime[] = [];
  t.teardown(async () => {
    for (const r of runtimes) await r.stop();
  });
  const start = async (stateStore: SubscriptionStateStore = new JsonFileSubscriptionStateStore(statePath)) => {
    const c = core();
    const graph = createGraph({ config, directory: c.directory, store: c.store, logger: silentLogger(), stateStore });
    runtimes.push(graph);
    hook.handlers = graph.webhook;
    await graph.start();
    return { graph, ...c };
  };
  const simSubs = () => e.sim.control.subscriptions();

  const first = await start();
  const { graph, store } = first;

  await t.test('created through the validation handshake, covering everyone', async (t) => {
    const subs = simSubs();
    t.equal(subs.length, 1);
    const sub = subs[0] as Record<string, unknown>;
    t.equal(sub['notificationUrl'], hook.url);
    t.equal(sub['lifecycleNotificationUrl'], hook.url);
    t.equal(sub['clientState'], CLIENT_STATE);
    t.equal((sub['userIds'] as string[]).length, 5);
    t.equal(e.sim.control.counters().notifications.validationsPassed, 2, 'notification and lifecycle URL validated');
    const s = graph.status().reader;
    t.equal(s.subscriptions[0]?.state, 'active');
    t.equal(s.subscriptions[0]?.subscriptionId, sub['id']);
    t.equal(s.polled, 0, 'nobody left to poll');
  });

  await t.test('a notification brings the change into the store via a batched look-up', async (t) => {
    const lookups = count('POST /v1.0/communications/getPresencesByUserId 200');
    e.sim.control.call('chiara');
    await waitFor(() => store.state('chiara').teams?.activity === 'InACall', 8000, 'chiara in a call');
    t.same(store.view('chiara').activities, ['on-the-phone']);
    t.ok(count('POST /v1.0/communications/getPresencesByUserId 200') > lookups);
    t.ok(graph.status().reader.notifications.accepted >= 1);
  });

  await t.test('a repeated delivery changes nothing', async (t) => {
    await graph.idle();
    const body = hook.bodies.at(-1);
    let changes = 0;
    const off = store.onChange(() => changes++);
    const stale = graph.status().reader.sink.stale;
    t.same(graph.webhook.handleNotifications(body), { status: 202 });
    await graph.idle();
    off();
    t.equal(changes, 0);
    t.equal(graph.status().reader.sink.stale, stale + 1, 'dropped by its sequence number');
  });

  await t.test('a wrong or missing clientState is dropped, answered 202 (Graph would retry a 4xx for hours), and not looked up', async (t) => {
    const before = graph.status().reader.notifications.rejected;
    const lookups = count('POST /v1.0/communications/getPresencesByUserId 200');
    const reasons: string[] = [];
    graph.observe({ notificationDropped: (reason) => reasons.push(reason) });
    t.teardown(() => graph.observe(undefined));
    const r = await hook.app.inject({
      method: 'POST',
      url: '/graph/notify',
      payload: { value: [{ subscriptionId: graph.status().reader.subscriptions[0]?.subscriptionId, clientState: 'forged-state', changeType: 'updated', resource: `communications/presences('${ANNA}')`, resourceData: { id: ANNA } }] },
    });
    t.equal(r.statusCode, 202);
    const missing = await hook.app.inject({
      method: 'POST',
      url: '/graph/notify',
      payload: { value: [{ subscriptionId: graph.status().reader.subscriptions[0]?.subscriptionId, changeType: 'updated', resource: `communications/presences('${ANNA}')`, resourceData: { id: ANNA } }] },
    });
    t.equal(missing.statusCode, 202);
    await graph.idle();
    t.equal(graph.status().reader.notifications.rejected, before + 2);
    t.equal(graph.status().reader.notifications.dropped?.clientState, 2);
    t.same(reasons, ['clientState', 'clientState'], 'the observer (the /metrics counter) is told');
    t.equal(count('POST /v1.0/communications/getPresencesByUserId 200'), lookups);
  });

  await t.test('lifecycle: reauthorizationRequired renews, missed re-reads, subscriptionRemoved re-creates', async (t) => {
    const id = String(simSubs()[0]?.['id']);
    const patches = count('PATCH /v1.0/subscriptions/:id 200');
    e.sim.control.fireLifecycle(id, 'reauthorizationRequired');
    await waitFor(() => count('PATCH /v1.0/subscriptions/:id 200') === patches + 1, 8000, 'renewal');
    t.equal(simSubs()[0]?.['needsReauthorization'], false);

    const lookups = count('POST /v1.0/communications/getPresencesByUserId 200');
    e.sim.control.fireLifecycle(id, 'missed');
    await waitFor(() => count('POST /v1.0/communications/getPresencesByUserId 200') > lookups, 8000, 'resync after missed');

    e.sim.control.fireLifecycle(id, 'subscriptionRemoved');
    await waitFor(() => simSubs().length === 1 && simSubs()[0]?.['id'] !== id, 8000, 're-created');
    await graph.idle();
    t.equal(graph.status().reader.subscriptions[0]?.created, 2);
    t.equal(graph.status().reader.subscriptions[0]?.subscriptionId, simSubs()[0]?.['id']);
  });

  await t.test('a restart with the state file renews the same subscription', async (t) => {
    await graph.stop();
    const id = simSubs()[0]?.['id'];
    const creates = count('POST /v1.0/subscriptions 201');
    const patches = count('PATCH /v1.0/subscriptions/:id 200');
    const second = await start();
    t.equal(simSubs().length, 1);
    t.equal(simSubs()[0]?.['id'], id, 'same subscription');
    t.equal(count('POST /v1.0/subscriptions 201'), creates, 'nothing created');
    t.equal(count('PATCH /v1.0/subscriptions/:id 200'), patches + 1, 'renewed at start');
    e.sim.control.call('anna');
    await waitFor(() => second.store.state('anna').teams?.activity === 'InACall', 8000, 'the new instance hears notifications');
    await second.graph.stop();
  });

  await t.test('a restart without state hits 409 and clears the stale subscription', async (t) => {
    const id = simSubs()[0]?.['id'];
    const conflicts = count('POST /v1.0/subscriptions 409');
    const third = await start(new MemorySubscriptionStateStore());
    t.equal(count('POST /v1.0/subscriptions 409'), conflicts + 1, 'one per app and user: 409 first');
    t.equal(count('DELETE /v1.0/subscriptions/:id 204') >= 1, true);
    t.equal(simSubs().length, 1);
    t.not(simSubs()[0]?.['id'], id, 'replaced');
    const s = third.graph.status().reader.subscriptions[0];
    t.equal(s?.state, 'active');
    t.equal(s?.conflictsResolved, 1);
    e.sim.control.endCall('chiara');
    await waitFor(() => third.store.state('chiara').teams?.activity === 'Available', 8000, 'notifications flow again');
  });
});

t.test('renewal on the manual clock; a subscription lost behind our back is re-created at renewal', async (t) => {
  const clock = new ManualClock(Date.parse('2030-01-01T08:00:00Z'));
  const e = await env({ clock, tokenLifetimeSec: 24 * 3600 });
  const hook = await webhookServer();
  const transport = createHttpTransport({ caPem: e.sim.caPem });
  const svc = e.sim.serviceAccount;
  const config = e.config({
    serviceAccounts: [{ username: svc.username, password: svc.password }],
    webhook: { publicUrl: hook.url, clientState: CLIENT_STATE },
    writer: { enabled: false },
  });
  const { directory, store } = core();
  const graph = createGraph({ config, directory, store, logger: silentLogger(), clock });
  hook.handlers = graph.webhook;
  t.teardown(async () => {
    await graph.stop();
    transport.close();
    await hook.close();
    await e.close();
  });
  const count = (key: string) => e.sim.control.counters().requests[key] ?? 0;
  const expiry = () => Date.parse(String(e.sim.control.subscriptions()[0]?.['expirationDateTime']));
  const t0 = clock.now();
  await graph.start();
  t.equal(expiry(), t0 + 58 * 60_000, 'asked for 58 minutes');

  clock.advance(38 * 60_000);
  await graph.idle();
  t.equal(count('PATCH /v1.0/subscriptions/:id 200'), 0, 'not yet: renewal is at 2/3 of the lifetime');
  clock.advance(60_000);
  await graph.idle();
  t.equal(count('PATCH /v1.0/subscriptions/:id 200'), 1, 'renewed');
  t.equal(expiry(), t0 + (58 * 60_000 * 2) / 3 + 58 * 60_000, 'renewed at 2/3 of 58 min, for a fresh 58 minutes');

  // someone deletes it with the service account's token
  const id = String(e.sim.control.subscriptions()[0]?.['id']);
  const auth = new GraphAuth({ config, logger: silentLogger(), networkClient: transport.msalNetworkClient });
  const raw = createGraphClient({ graphBaseUrl: config.graphBaseUrl, tokens: auth.serviceAccountToken(svc.username), budget: new RequestBudget(clock, 100), transport });
  await raw.api(`/subscriptions/${id}`).delete();
  t.equal(e.sim.control.subscriptions().length, 0);

  clock.advance(39 * 60_000);
  await graph.idle();
  t.equal(count('PATCH /v1.0/subscriptions/:id 404'), 1, 'the renewal finds it gone');
  t.equal(e.sim.control.subscriptions().length, 1, 'and creates a new one');
  t.not(e.sim.control.subscriptions()[0]?.['id'], id);
  t.equal(graph.status().reader.subscriptions[0]?.state, 'active');
  e.sim.control.call(CHIARA);
  await waitFor(() => store.state('chiara').teams?.activity === 'InACall', 8000, 'notifications on the new subscription');
});
