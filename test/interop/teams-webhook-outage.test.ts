/**
 * Webhook outage: Graph cannot reach the gateway's webhook. Done honestly from
 * outside by giving the gateway a webhook.publicUrl on a port nobody listens
 * on (the gateway's own https listener is elsewhere), so the simulator's
 * validation handshake fails and no subscription can be made, exactly as when
 * a firewall or proxy drops Graph's requests. The gateway must fall back to
 * polling, and a Teams change must still reach the SIP watcher within about
 * one poll interval.
 */
import t from 'tap';
import { errorRecords } from '../helpers/gateway-process.js';
import { freePort } from '../helpers/ports.js';
import { eventually, isIdlePresence, isOnThePhone, startWatcher, teamsFixture } from '../helpers/teams-gateway.js';

const POLL_SEC = 5;

const { env: E, gw: G } = teamsFixture(t, async () => ({
  pollIntervalSec: POLL_SEC,
  webhookUrl: `https://127.0.0.1:${await freePort()}/graph/notifications`, // handed out once and never bound
}));

t.test('without a reachable webhook there is no subscription', async (t) => {
  const sim = E().sim;
  await eventually(() => sim.control.counters().notifications.validationsFailed, (n) => n >= 1, 10_000, 'a failed validation');
  t.same(sim.control.subscriptions(), [], 'the simulator holds no subscription');
  t.ok(
    G().records().some((r) => typeof r['msg'] === 'string' && /subscription .*failed/.test(r['msg'])),
    'the gateway logged that the subscription could not be made',
  );
});

t.test(`Teams changes reach the SIP watcher by polling (every ${POLL_SEC} s)`, async (t) => {
  const sim = E().sim;
  const watcher = await startWatcher(G().port, 'u1', '1005', 'presence');
  try {
    const first = await watcher.waitFor(() => true, 10_000, 'initial NOTIFY');
    t.ok(isIdlePresence(watcher.lines()[first] ?? ''), 'elif starts idle');
    const delivered = sim.control.counters().notifications.delivered;
    sim.control.call('elif');
    const busy = await watcher.waitFor(isOnThePhone, (POLL_SEC + 5) * 1000, 'on-the-phone by polling', first);
    t.ok(busy > first, 'on-the-phone arrived within about one poll interval (the wait above is bounded)');
    sim.control.endCall('elif');
    await watcher.waitFor(isIdlePresence, (POLL_SEC + 5) * 1000, 'idle again by polling', busy);
    t.equal(sim.control.counters().notifications.delivered, delivered, 'no notification was delivered: it was polling');
  } finally {
    await watcher.stop();
  }
});

t.test('no errors logged', async (t) => {
  t.same(errorRecords(G()), [], 'no log records at level error or above');
});
