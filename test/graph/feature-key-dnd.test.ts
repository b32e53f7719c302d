/**
 * A desk phone's DND key and Teams DND against the Graph simulator: phone DND
 * on sets Teams DND through the Graph writer (its writer.dnd opt-in), phone
 * DND off takes it back, and DND turned off in Teams clears the phone's DND
 * (the last writer wins; PresenceHub.setFeatureKeyDnd).
 */
import t, { type Test } from 'tap';
import { createGraph } from '../../src/graph/index.js';
import { silentLogger } from '../../src/util/logger.js';
import { core, env } from './helpers.js';

/** The simulator, core and a started Graph side whose writer puts DND as `dnd` says. */
async function started(t: Test, dnd: 'session' | 'preferred') {
  const e = await env();
  t.teardown(() => e.close());
  const c = core();
  const graph = createGraph({ config: e.config({ writer: { dnd } }), ...c, logger: silentLogger() });
  t.teardown(() => graph.stop());
  await graph.start();
  await graph.idle();
  return { e, c, graph };
}

t.test('phone DND ↔ Teams DND through the writer and the reader', async (t) => {
  const { e, c, graph } = await started(t, 'session');
  const app = e.sim.demoApp.clientId.toLowerCase();
  const session = () => e.sim.control.sessions('ben').find((s) => s.sessionId === app);

  c.store.setFeatureKeyDnd('ben', true);
  await graph.idle();
  t.equal(session()?.availability, 'DoNotDisturb', 'phone DND on: the writer sets Teams DND');
  t.equal(e.sim.control.presence('ben').availability, 'DoNotDisturb');
  await graph.pollNow();
  t.equal(c.store.view('ben').dnd, true, 'our own DND read back keeps the phone DND');

  c.store.setFeatureKeyDnd('ben', false);
  await graph.idle();
  t.equal(session(), undefined, 'phone DND off: Teams back (the session is cleared)');
  await graph.pollNow();
  t.equal(c.store.view('ben').dnd, false);

  c.store.setFeatureKeyDnd('ben', true);
  await graph.idle();
  await graph.pollNow();
  t.equal(c.store.view('ben').dnd, true);
  // the person picks another status in Teams (a preferred presence over the sessions)
  e.sim.control.teams('ben', 'brb');
  await graph.pollNow();
  t.equal(c.store.state('ben').teams?.availability, 'BeRightBack');
  t.equal(c.store.view('ben').dnd, false, 'Teams DND off clears the phone DND: the light goes out');
  t.same(c.store.teamsTarget('ben'), { kind: 'clear', personChose: true });
  await graph.idle();
  t.equal(session(), undefined, 'and the writer takes its DND session back');
});

t.test("writer.dnd 'preferred': a status the person picks in Teams after a phone DND is not cleared", async (t) => {
  const { e, c, graph } = await started(t, 'preferred');

  c.store.setFeatureKeyDnd('ben', true);
  await graph.idle();
  t.equal(e.sim.control.presence('ben').availability, 'DoNotDisturb', 'phone DND on: Teams DND as the preferred presence');
  await graph.pollNow();
  e.sim.control.teams('ben', 'brb');
  await graph.pollNow();
  t.equal(c.store.view('ben').dnd, false, 'Teams DND off clears the phone DND');
  t.same(c.store.teamsTarget('ben'), { kind: 'clear', personChose: true }, 'the clear says the person chose');
  await graph.idle();
  t.equal(e.sim.control.presence('ben').availability, 'BeRightBack', 'the writer leaves the status the person picked');

  // a phone DND off (no Teams change by the person) still takes the gateway's preferred DND back
  c.store.setFeatureKeyDnd('ben', true);
  await graph.idle();
  t.equal(e.sim.control.presence('ben').availability, 'DoNotDisturb');
  c.store.setFeatureKeyDnd('ben', false);
  await graph.idle();
  t.not(e.sim.control.presence('ben').availability, 'DoNotDisturb', 'phone DND off: the preferred DND is cleared');
});
