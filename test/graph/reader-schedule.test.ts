import t from 'tap';
import { ManualClock } from '../../src/graph-simulator/clock.js';
import { createGraph } from '../../src/graph/index.js';
import type { WebhookHandlers } from '../../src/graph/webhook-handler.js';
import { silentLogger } from '../../src/util/logger.js';
import { core, env, webhookServer } from './helpers.js';

const READS = 'POST /v1.0/communications/getPresencesByUserId 200';

t.test('polling only: the interval comes from the budget share (1 s for a few people)', async (t) => {
  const clock = new ManualClock(Date.parse('2030-01-01T08:00:00Z'));
  const e = await env({ clock, tokenLifetimeSec: 24 * 3600 });
  const { directory, store } = core();
  const graph = createGraph({ config: e.config({ writer: { enabled: false } }), directory, store, logger: silentLogger(), clock });
  t.teardown(async () => {
    await graph.stop();
    await e.close();
  });
  const reads = () => e.sim.control.counters().requests[READS] ?? 0;
  await graph.start();
  const plan = graph.status().reader.plan;
  t.equal(plan?.pollIntervalMs, 1000, 'poll.intervalSec 30 is only the upper bound');
  t.equal(plan?.requestsPer30s, 30, 'one call a second for five people');
  const before = reads();
  for (let i = 0; i < 5; i++) {
    clock.advance(1000);
    await graph.idle();
  }
  t.equal(reads() - before, 5, 'one batch a second');
  e.sim.control.call('anna');
  clock.advance(1000);
  await graph.idle();
  t.equal(store.state('anna').teams?.activity, 'InACall', 'a change shows within a second');
});

t.test('with a webhook: covered people only get the safety read, sooner while notifications go missing', async (t) => {
  const clock = new ManualClock(Date.parse('2030-01-01T08:00:00Z'));
  const e = await env({ clock, tokenLifetimeSec: 24 * 3600 });
  const hook = await webhookServer();
  const svc = e.sim.serviceAccount;
  const config = e.config({
    serviceAccounts: [{ username: svc.username, password: svc.password }],
    webhook: { publicUrl: hook.url, clientState: 'gateway-client-state-for-tests-0002' },
    writer: { enabled: false },
  });
  const { directory, store } = core();
  const graph = createGraph({ config, directory, store, logger: silentLogger(), clock });
  hook.handlers = graph.webhook;
  t.teardown(async () => {
    await graph.stop();
    await hook.close();
    await e.close();
  });
  const reads = () => e.sim.control.counters().requests[READS] ?? 0;
  await graph.start();
  await graph.idle();
  t.equal(graph.status().reader.polled, 0, 'everyone is covered');
  t.equal(graph.status().reader.plan?.safetyIntervalMs, 600_000);
  t.equal(graph.status().reader.webhookHealth?.state, 'healthy');
  let before = reads();
  for (let i = 0; i < 30; i++) {
    clock.advance(1000);
    await graph.idle();
  }
  t.equal(reads(), before, 'no polling of covered people');

  // notifications get lost on the way: the endpoint answers 202 but nothing reaches the reader
  const lost: WebhookHandlers = { handleValidation: (q) => graph.webhook.handleValidation(q), handleNotifications: () => ({ status: 202 }) };
  hook.handlers = lost;
  e.sim.control.call('anna');
  await e.sim.control.idle();
  t.equal(store.state('anna').teams?.activity, 'Offline', 'the change was not heard');
  before = reads();
  clock.advance(600_000 - 30_000);
  await graph.idle();
  t.equal(reads(), before + 1, 'the safety read, at 10 minutes');
  t.equal(store.state('anna').teams?.activity, 'InACall', 'found the change');
  clock.advance(61_000);
  await graph.idle();
  const s = graph.status().reader;
  t.equal(s.webhookHealth?.state, 'degraded', 'a change no notification announced within a minute');
  t.equal(s.webhookHealth?.missed, 1);
  t.equal(s.plan?.safetyIntervalMs, 60_000, 'the safety read comes sooner');
  e.sim.control.endCall('anna');
  await e.sim.control.idle();
  clock.advance(60_000);
  await graph.idle();
  t.equal(store.state('anna').teams?.activity, 'Available', 'the next miss is found within a minute');
  e.sim.control.call('ben');
  await e.sim.control.idle();
  clock.advance(60_000);
  await graph.idle();
  t.equal(store.state('ben').teams?.activity, 'InACall');
  clock.advance(61_000);
  await graph.idle();
  const down = graph.status().reader;
  t.equal(down.webhookHealth?.state, 'down', 'three changes, no notification: deliveries are absent');
  t.equal(down.polled, 5, 'covered people are polled like the rest');
  before = reads();
  e.sim.control.endCall('ben');
  for (let i = 0; i < 3; i++) {
    clock.advance(1000);
    await graph.idle();
  }
  t.ok(reads() - before >= 3, 'every second again');
  t.equal(store.state('ben').teams?.activity, 'Available');
});
