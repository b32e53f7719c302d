import t from 'tap';
import { ManualClock } from '../../src/graph-simulator/clock.js';
import { harness, webhook } from './helpers.js';

const MIN = 60_000;

t.test('slow-endpoint rule over the latest 100 deliveries: > 10 % slow delays by 10 minutes, >= 15 % drops', async (t) => {
  const clock = new ManualClock();
  // "slow" is 2,900 ms at Graph; 600 ms here so a test can afford 100 deliveries, and a fast answer
  // on a loaded machine (tens of ms) is still far from it
  const h = await harness({ clock, notifier: { slowMs: 600 } });
  const hook = await webhook();
  t.teardown(async () => {
    await h.close();
    await hook.close();
  });
  const { control } = h.sim;
  const graph = h.graph(() => h.userToken());
  const anna = control.user('anna');
  await graph.api('/subscriptions').post({
    changeType: 'updated',
    notificationUrl: hook.url,
    resource: `/communications/presences/${anna.id}`,
    expirationDateTime: new Date(clock.now() + 59 * MIN).toISOString(),
    clientState: 'cs',
  });
  let on = false;
  const change = async (): Promise<void> => {
    on = !on;
    control.teams(anna.id, on ? 'dnd' : 'clear-dnd');
    await control.idle();
  };
  const delivered = () => control.counters().notifications.delivered;

  await t.test('99 deliveries, 11 of them slow: not judged before 100', async (t) => {
    for (let i = 0; i < 99; i++) {
      hook.delayMs = i >= 88 ? 700 : 0;
      await change();
    }
    hook.delayMs = 0;
    t.equal(delivered(), 99, 'slow answers within the 3 s still count as delivered');
    t.equal(control.counters().notifications.delayed, 0);
  });

  await t.test('the 100th makes 11 % slow: the next notification waits 10 minutes', async (t) => {
    await change();
    t.equal(delivered(), 100);
    hook.received.length = 0;
    await change();
    t.equal(control.counters().notifications.delayed, 1);
    t.equal(hook.received.length, 0, 'not sent at once');
    clock.advance(9 * MIN);
    await control.idle();
    t.equal(hook.received.length, 0, 'nor after 9 minutes');
    clock.advance(MIN);
    await hook.waitFor(() => hook.received.length === 1);
    t.pass('sent after 10 minutes');
  });

  await t.test('15 % slow: new notifications are dropped, and no lifecycle event says so', async (t) => {
    // four slow ones more (each delayed, then answered slowly) push the latest 100 to 15 slow
    for (let i = 0; i < 4; i++) {
      hook.delayMs = 700;
      await change();
      clock.advance(10 * MIN);
      await control.idle();
    }
    hook.delayMs = 0;
    const dropped = control.counters().notifications.dropped;
    hook.received.length = 0;
    await change();
    clock.advance(10 * MIN - 1);
    await control.idle();
    t.equal(control.counters().notifications.dropped, dropped + 1, 'dropped');
    t.same(hook.received, [], 'nothing arrived');
  });
});
