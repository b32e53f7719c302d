import t from 'tap';
import { ManualClock } from '../../src/graph-simulator/clock.js';
import { harness, webhook } from './helpers.js';

const MIN = 60_000;

t.test('slow endpoints: timeouts are retried; a mostly slow endpoint gets notifications dropped, with no lifecycle event', async (t) => {
  const clock = new ManualClock();
  // judged over the latest 10 deliveries here (Graph: 100), so the test stays short
  const h = await harness({ clock, notifier: { deliveryTimeoutMs: 250, healthSamples: 10 } });
  const hook = await webhook();
  t.teardown(async () => {
    await h.close();
    await hook.close();
  });
  const { control } = h.sim;
  const graph = h.graph(() => h.userToken());
  const users = ['anna', 'ben', 'chiara', 'dmitri', 'elif'].map((u) => control.user(u));
  await graph.api('/subscriptions').post({
    changeType: 'updated',
    notificationUrl: hook.url,
    lifecycleNotificationUrl: `${hook.url}?lifecycle`,
    resource: `/communications/presences?$filter=id in (${users.map((u) => `'${u.id}'`).join(',')})`,
    expirationDateTime: new Date(clock.now() + 50 * MIN).toISOString(),
    clientState: 'cs',
  });

  await t.test('an answer slower than the delivery timeout counts as a failure and is retried', async (t) => {
    hook.delayMs = 600;
    control.call('anna');
    await control.idle();
    t.equal(control.counters().notifications.failedAttempts, 1);
    t.equal(control.counters().notifications.retried, 1);
    t.equal(control.counters().notifications.delivered, 0, 'the late answer does not count');
    hook.delayMs = 0;
    clock.advance(5000);
    await hook.waitFor(() => control.counters().notifications.delivered === 1);
    t.pass('the retry got through');
  });

  await t.test('>= 15 % slow answers over the latest deliveries: new notifications are dropped; presence hears no "missed"', async (t) => {
    hook.delayMs = 600;
    // ten slow deliveries, one at a time
    for (let i = 0; i < 10; i++) {
      const u = users[i % users.length];
      if (!u) continue;
      control.teams(u.id, i % 2 === 0 ? 'present' : 'stop-presenting');
      await control.idle();
    }
    hook.delayMs = 0;
    hook.received.length = 0;
    const droppedBefore = control.counters().notifications.dropped;
    control.teams(users[1]?.id ?? '', 'dnd');
    await control.idle();
    await new Promise((r) => setTimeout(r, 300));
    await control.idle();
    t.ok(control.counters().notifications.dropped > droppedBefore, 'the new notification was dropped');
    t.same(hook.received, [], 'nothing arrived: no notification and no lifecycle event (Graph sends presence only reauthorizationRequired)');
    // after the drop period, deliveries resume
    clock.advance(11 * MIN);
    hook.received.length = 0;
    control.teams(users[1]?.id ?? '', 'clear-dnd');
    await hook.waitFor(() => hook.received.some((b) => b.value.some((n) => n['changeType'] === 'updated')));
    t.pass('delivered again');
  });
});
