/**
 * Teams -> SIP end to end: a Teams user's call in the Graph simulator reaches
 * SIPp watchers of the gateway process (presence: on-the-phone; dialog: a
 * confirmed dialog) through the https webhook, and the hang-up brings them back.
 */
import t from 'tap';
import { errorRecords } from '../helpers/gateway-process.js';
import type { SippTransport } from '../helpers/sipp.js';
import { hasNoLiveDialog, isConfirmedDialog, isIdlePresence, isOnThePhone, startWatcher, teamsFixture } from '../helpers/teams-gateway.js';

// poll every 60 s: within these tests a change can only arrive by webhook
const { env: E, gw: G } = teamsFixture(t, { pollIntervalSec: 60 });

const CASES: ReadonlyArray<readonly [string, SippTransport, string, string]> = [
  ['UDP', 'u1', 'anna', '1001'],
  ['TCP', 't1', 'chiara', '1003'],
];

for (const [name, transport, user, ext] of CASES) {
  t.test(`a Teams call of ${user} lights the SIP watchers of ${ext} and the hang-up clears them (${name})`, async (t) => {
    const sim = E().sim;
    const presence = await startWatcher(G().port, transport, ext, 'presence');
    const dialog = await startWatcher(G().port, transport, ext, 'dialog');
    try {
      const p0 = await presence.waitFor(() => true, 10_000, 'initial NOTIFY');
      const d0 = await dialog.waitFor(() => true, 10_000, 'initial NOTIFY');
      t.ok(isIdlePresence(presence.lines()[p0] ?? ''), 'the first presence NOTIFY is not on-the-phone');
      t.ok(hasNoLiveDialog(dialog.lines()[d0] ?? ''), 'the first dialog NOTIFY has no live dialog');

      const during = sim.control.call(user);
      t.equal(during.activity, 'InACall', 'the simulator shows the call');
      const p1 = await presence.waitFor(isOnThePhone, 10_000, 'on-the-phone', p0);
      const d1 = await dialog.waitFor(isConfirmedDialog, 10_000, 'confirmed dialog', d0);
      t.match(presence.lines()[p1], /sub=active/, 'presence NOTIFY while the subscription is active');
      t.match(dialog.lines()[d1], /dialog=confirmed/, 'dialog-info with a confirmed dialog');

      sim.control.endCall(user);
      const p2 = await presence.waitFor(isIdlePresence, 10_000, 'back to idle', p1);
      const d2 = await dialog.waitFor(hasNoLiveDialog, 10_000, 'no live dialog', d1);
      t.ok(p2 > p1 && d2 > d1, 'the idle NOTIFYs come after the call NOTIFYs');
      t.notOk(presence.lines().slice(p2).some(isOnThePhone), 'no on-the-phone after the hang-up');
    } finally {
      const [rp, rd] = await Promise.all([presence.stop(), dialog.stop()]);
      t.equal(rp.errors.trim(), '', 'presence watcher: no unexpected messages');
      t.equal(rd.errors.trim(), '', 'dialog watcher: no unexpected messages');
    }
  });
}

t.test('the changes came by webhook, and the gateway logged no errors', async (t) => {
  const c = E().sim.control.counters();
  t.ok(c.notifications.delivered >= 4, `the simulator delivered notifications (${c.notifications.delivered})`);
  t.same(errorRecords(G()), [], 'no log records at level error or above');
});
