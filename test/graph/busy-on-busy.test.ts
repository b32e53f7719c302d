import t from 'tap';
import type { PresenceHub } from '../../src/core/presence-hub.js';
import { ManualClock } from '../../src/graph-simulator/clock.js';
import { createGraph, MemorySavedPresenceStore, type GraphConfigInput, type GraphRuntime } from '../../src/graph/index.js';
import { preferredFromPresence } from '../../src/graph/saved-presence.js';
import { silentLogger } from '../../src/util/logger.js';
import { core, env, waitFor, type Env } from './helpers.js';

const inCall = (store: PresenceHub, id: string) => store.setTelephony(id, { line: 'in-call', dnd: false, calls: [], origin: 'pbx', at: 0 });
const idle = (store: PresenceHub, id: string) => store.setTelephony(id, { line: 'idle', dnd: false, calls: [], origin: 'pbx', at: 0 });

const MIN = 60_000;

async function gateway(e: Env, writer: GraphConfigInput['writer'], saved: MemorySavedPresenceStore, clock?: ManualClock) {
  const c = core();
  const graph = createGraph({ config: e.config({ writer }), ...c, logger: silentLogger(), savedPresence: saved, writer: { restoreGraceMs: 1000 }, ...(clock ? { clock } : {}) });
  await graph.start();
  return { graph, ...c };
}

t.test('what the aggregated presence tells of a preferred presence', async (t) => {
  t.same(preferredFromPresence('BeRightBack', 'BeRightBack'), { availability: 'BeRightBack', activity: 'BeRightBack' });
  t.same(preferredFromPresence('DoNotDisturb', 'DoNotDisturb'), { availability: 'DoNotDisturb', activity: 'DoNotDisturb' });
  t.same(preferredFromPresence('Offline', 'OffWork'), { availability: 'Offline', activity: 'OffWork' });
  t.equal(preferredFromPresence('Available', 'Available'), null, 'Teams shows this by itself too: automatic presence again');
  t.equal(preferredFromPresence('DoNotDisturb', 'Presenting'), null, 'presenting is automatic');
  t.equal(preferredFromPresence('Busy', 'InACall'), null);
});

t.test('duringCall: dnd (real clock)', async (t) => {
  const e = await env();
  t.teardown(() => e.close());
  const count = (key: string) => e.sim.control.counters().requests[key] ?? 0;
  const runtimes: GraphRuntime[] = [];
  t.teardown(async () => {
    for (const r of runtimes) await r.stop();
  });

  await t.test('DoNotDisturb for the call; their own preferred presence and status message back after', async (t) => {
    const saved = new MemorySavedPresenceStore();
    const { graph, store } = await gateway(e, { duringCall: 'dnd', statusMessage: true }, saved);
    runtimes.push(graph);
    const lunchEnds = Date.now() + 2 * 3600_000;
    e.sim.control.teams('ben', 'brb');
    e.sim.control.setStatusMessage('ben', 'At lunch', lunchEnds);
    inCall(store, 'ben');
    await waitFor(() => e.sim.control.presence('ben').availability === 'DoNotDisturb', 8000, 'ben DND');
    await graph.idle();
    const during = e.sim.control.presence('ben');
    t.equal(during.activity, 'DoNotDisturb', 'a preferred DoNotDisturb: Teams calls do not ring through');
    t.equal(during.statusMessage?.message?.content, 'On a desk phone call');
    const kept = await saved.load();
    t.equal(kept.length, 1, 'what ben had is saved while the call lasts');
    t.same(kept[0]?.preferred, { availability: 'BeRightBack', activity: 'BeRightBack' });
    t.equal(kept[0]?.statusMessage?.content, 'At lunch');
    t.equal(graph.status().writer?.callDnd, 1);

    idle(store, 'ben');
    await waitFor(() => e.sim.control.presence('ben').availability === 'BeRightBack', 8000, 'ben back to BRB');
    await graph.idle();
    const after = e.sim.control.presence('ben');
    t.equal(after.activity, 'BeRightBack', 'their own preferred presence is back');
    t.equal(after.statusMessage?.message?.content, 'At lunch', 'their status message is back, not cleared');
    t.equal(Math.round(Date.parse(`${after.statusMessage?.expiryDateTime?.dateTime ?? ''}Z`) / 1000), Math.round(lunchEnds / 1000), 'with its expiry');
    t.same(await saved.load(), [], 'nothing left to restore');
  });

  await t.test('someone with no preferred presence goes back to automatic presence', async (t) => {
    const saved = new MemorySavedPresenceStore();
    const { graph, store } = await gateway(e, { duringCall: 'dnd' }, saved);
    runtimes.push(graph);
    e.sim.control.available('dmitri');
    const clears = count('POST /v1.0/users/:id/presence/clearUserPreferredPresence 200');
    inCall(store, 'dmitri');
    await waitFor(() => e.sim.control.presence('dmitri').availability === 'DoNotDisturb', 8000, 'dmitri DND');
    idle(store, 'dmitri');
    await waitFor(() => e.sim.control.presence('dmitri').availability === 'Available', 8000, 'dmitri available');
    await graph.idle();
    t.equal(count('POST /v1.0/users/:id/presence/clearUserPreferredPresence 200'), clears + 1, 'the DoNotDisturb is cleared, nothing pinned');
    t.equal(e.sim.control.presence('dmitri').statusMessage, null, 'the status message was not touched (writer.statusMessage off)');
  });

  await t.test('a restart mid-call still restores what they had', async (t) => {
    const saved = new MemorySavedPresenceStore();
    const first = await gateway(e, { duringCall: 'dnd', statusMessage: true }, saved);
    runtimes.push(first.graph);
    e.sim.control.teams('anna', 'brb');
    e.sim.control.setStatusMessage('anna', 'Working from home');
    e.sim.control.teams('chiara', 'brb');
    inCall(first.store, 'anna');
    inCall(first.store, 'chiara');
    await waitFor(() => e.sim.control.presence('anna').availability === 'DoNotDisturb' && e.sim.control.presence('chiara').availability === 'DoNotDisturb', 8000, 'both DND');
    await first.graph.idle();
    await first.graph.stop();
    const reads = count('GET /v1.0/users/:id/presence 200');

    // after the restart anna is still on the phone, chiara's call ended while the gateway was down
    const second = await gateway(e, { duringCall: 'dnd', statusMessage: true }, saved);
    runtimes.push(second.graph);
    // the PBX reports anna's call again a moment after the start
    await new Promise((r) => setTimeout(r, 200));
    t.equal(e.sim.control.presence('chiara').availability, 'DoNotDisturb', 'nothing restored while the PBX state is not known yet');
    inCall(second.store, 'anna');
    await waitFor(() => e.sim.control.presence('chiara').availability === 'BeRightBack', 8000, 'chiara restored after the grace');
    await second.graph.idle();
    t.equal(e.sim.control.presence('anna').availability, 'DoNotDisturb', 'anna stays DND');
    t.equal(count('GET /v1.0/users/:id/presence 200'), reads, 'the saved state is used, not a reading of our own DoNotDisturb');
    idle(second.store, 'anna');
    await waitFor(() => e.sim.control.presence('anna').availability === 'BeRightBack', 8000, 'anna restored');
    await second.graph.idle();
    t.equal(e.sim.control.presence('anna').statusMessage?.message?.content, 'Working from home');
    t.same(await saved.load(), []);
  });

  await t.test("the default 'busy' leaves the preferred presence alone", async (t) => {
    const saved = new MemorySavedPresenceStore();
    const { graph, store } = await gateway(e, {}, saved);
    runtimes.push(graph);
    e.sim.control.teams('elif', 'brb');
    const prefs = count('POST /v1.0/users/:id/presence/setUserPreferredPresence 200');
    inCall(store, 'elif');
    await graph.idle();
    t.equal(e.sim.control.presence('elif').activity, 'BeRightBack', 'the person chose BRB: it still wins over the Busy session');
    t.equal(count('POST /v1.0/users/:id/presence/setUserPreferredPresence 200'), prefs);
    idle(store, 'elif');
    await graph.idle();
  });
});

t.test('the status message and the DoNotDisturb are re-written with every session refresh (manual clock)', async (t) => {
  const clock = new ManualClock(Date.parse('2030-01-01T08:00:00Z'));
  const e = await env({ clock, tokenLifetimeSec: 24 * 3600 });
  const saved = new MemorySavedPresenceStore();
  const { graph, store } = await gateway(e, { duringCall: 'dnd', statusMessage: true, expirationMinutes: 5 }, saved, clock);
  t.teardown(async () => {
    await graph.stop();
    await e.close();
  });
  const count = (key: string) => e.sim.control.counters().requests[key] ?? 0;
  e.sim.control.signIn('anna');
  inCall(store, 'anna');
  await graph.idle();
  const expiry = () => e.sim.control.presence('anna').statusMessage?.expiryDateTime;
  t.same(expiry(), { dateTime: '2030-01-01T08:10:00.0000000', timeZone: 'UTC' }, 'twice the session, in UTC without a suffix');
  const prefs = count('POST /v1.0/users/:id/presence/setUserPreferredPresence 200');
  clock.advance(4 * MIN);
  await graph.idle();
  t.equal(graph.status().writer?.refreshes, 1);
  t.equal(expiry()?.dateTime, '2030-01-01T08:14:00.0000000', 'the status message moved on with the refresh');
  t.equal(count('POST /v1.0/users/:id/presence/setUserPreferredPresence 200'), prefs + 1, 'the DoNotDisturb too');
  clock.advance(4 * MIN);
  await graph.idle();
  t.equal(expiry()?.dateTime, '2030-01-01T08:18:00.0000000');
  t.equal(e.sim.control.presence('anna').availability, 'DoNotDisturb', 'still DND 8 minutes into the call');
  idle(store, 'anna');
  await graph.idle();
  t.equal(e.sim.control.presence('anna').availability, 'Available');
  t.equal(e.sim.control.presence('anna').statusMessage, null);
});
