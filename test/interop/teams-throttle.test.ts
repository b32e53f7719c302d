/**
 * A 429 storm from Graph (injected in the simulator: every Graph request
 * answered 429 Retry-After: 1 until the count is used up) while Teams users
 * change state and SIP phones publish. Afterwards everything must agree: the
 * SIP watcher shows the final Teams state, the simulator shows the gateway's
 * final app session, and the gateway logged warnings at most, no errors.
 */
import t from 'tap';
import { errorRecords } from '../helpers/gateway-process.js';
import { appSession, eventually, isOnThePhone, publishForEtag, startWatcher, teamsFixture, warnRecords } from '../helpers/teams-gateway.js';

const STORM = 12;

/** 429 answers in the simulator's request counters ("METHOD route STATUS" -> count). */
function count429(requests: Record<string, number>): number {
  let n = 0;
  for (const [key, value] of Object.entries(requests)) if (key.endsWith(' 429')) n += value;
  return n;
}

const { env: E, gw: G } = teamsFixture(t);

t.test(`after ${STORM} x 429 (Retry-After: 1) everything converges`, async (t) => {
  const sim = E().sim;
  const watcher = await startWatcher(G().port, 'u1', '1001', 'presence');
  const chiara = await startWatcher(G().port, 'u1', '1003', 'presence');
  try {
    const first = await watcher.waitFor(() => true, 10_000, 'initial NOTIFY');
    const chiaraFirst = await chiara.waitFor(() => true, 10_000, 'initial NOTIFY');
    const before = count429(sim.control.counters().requests);

    sim.control.injectFault({ kind: '429', count: STORM, retryAfterSec: 1, path: '/v1.0/' });
    // Teams side: anna goes away, then into a call (the final state); chiara presents meanwhile
    sim.control.away('anna');
    sim.control.present('chiara');
    // SIP side: ben's phone goes off-hook
    await publishForEtag({ scenario: 'teams-publish-pidf', gatewayPort: G().port, transport: 'u1', service: '1002' });
    await new Promise((r) => setTimeout(r, 300));
    sim.control.call('anna');

    const spent = await eventually(
      () => count429(sim.control.counters().requests) - before,
      (n) => n >= STORM,
      20_000,
      'the storm was spent on the gateway',
    );
    t.equal(spent, STORM, `the gateway got all ${STORM} 429 answers`);
    const p = await watcher.waitFor(isOnThePhone, 30_000, 'on-the-phone after the storm', first);
    t.ok(p > first, 'the watcher got on-the-phone for anna');
    // Presenting maps to on-the-phone by default. A look-up that fails in the storm is read again by
    // the next poll, so chiara's change, whose notification is not repeated, still arrives.
    const c = await chiara.waitFor(isOnThePhone, 20_000, 'chiara presenting after the storm', chiaraFirst);
    t.ok(c > chiaraFirst, 'the watcher of chiara got on-the-phone (Presenting)');
    const s = await eventually(
      () => appSession(sim, 'ben'),
      (x) => x?.availability === 'Busy' && x.activity === 'InACall',
      30_000,
      "ben's gateway session",
    );
    t.equal(s?.sessionId, sim.demoApp.clientId, 'the simulator shows the gateway app session Busy/InACall for ben');
    // the watcher's last word is the final Teams state
    await new Promise((r) => setTimeout(r, 1000));
    const lines = watcher.lines();
    t.ok(isOnThePhone(lines[lines.length - 1] ?? ''), `last NOTIFY is on-the-phone (${lines[lines.length - 1]})`);
  } finally {
    await Promise.all([watcher.stop(), chiara.stop()]);
  }
});

t.test('the storm hit the gateway and left warnings only', async (t) => {
  const c = E().sim.control.counters();
  t.comment(JSON.stringify(c.requests));
  t.same(errorRecords(G()), [], 'no log records at level error or above');
  const warns = warnRecords(G()).map((r) => ({ msg: r['msg'], users: r['users'], status: r['status'], code: r['code'] }));
  t.comment(`warnings: ${JSON.stringify(warns)}`);
  t.ok(warns.length > 0, 'the storm was noticed (warnings logged)');
  t.ok(
    warns.every((w) => w.status === 429),
    'every warning is about a 429 (the expected ones), none about anything else',
  );
});
