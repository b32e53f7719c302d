import t from 'tap';
import type { PresenceHub } from '../../src/core/presence-hub.js';
import { ManualClock } from '../../src/graph-simulator/clock.js';
import { createGraph, type GraphConfigInput } from '../../src/graph/index.js';
import { silentLogger } from '../../src/util/logger.js';
import { core, env, waitFor, type Env } from './helpers.js';

const inCall = (store: PresenceHub, id: string, at = 0) => store.setTelephony(id, { line: 'in-call', dnd: false, calls: [], origin: 'pbx', at });
const idle = (store: PresenceHub, id: string, at = 0) => store.setTelephony(id, { line: 'idle', dnd: false, calls: [], origin: 'pbx', at });
const dnd = (store: PresenceHub, id: string, at = 0) => store.setTelephony(id, { line: 'idle', dnd: true, calls: [], origin: 'pbx', at });
const away = (store: PresenceHub, id: string) => store.setSip(id, { basic: 'open', activities: ['away'], origin: 'phone', at: 0 });

async function gateway(e: Env, writer: GraphConfigInput['writer'], clock?: ManualClock, retry?: { maxRetries?: number; delaySec?: number }) {
  const c = core();
  const graph = createGraph({
    config: e.config({ writer }),
    ...c,
    logger: silentLogger(),
    ...(clock ? { clock } : {}),
    ...(retry ? { retry } : {}),
  });
  await graph.start();
  return { graph, ...c };
}

function appSession(e: Env, user: string) {
  const app = e.sim.demoApp.clientId.toLowerCase();
  return e.sim.control.sessions(user).find((s) => s.sessionId === app);
}

t.test('the gateway session follows the target and is re-set before it expires (manual clock)', async (t) => {
  const clock = new ManualClock(Date.parse('2030-01-01T08:00:00Z'));
  const e = await env({ clock, tokenLifetimeSec: 24 * 3600 });
  const { graph, store } = await gateway(e, { expirationMinutes: 5 }, clock);
  t.teardown(async () => {
    await graph.stop();
    await e.close();
  });
  const t0 = clock.now();
  inCall(store, 'anna');
  await graph.idle();
  let s = appSession(e, 'anna');
  t.equal(s?.kind, 'app');
  t.equal(s?.availability, 'Busy');
  t.equal(s?.activity, 'InACall');
  t.equal(Date.parse(s?.expiresAt ?? ''), t0 + 5 * 60_000, 'expirationDuration PT5M');
  t.equal(e.sim.control.presence('anna').activity, 'InACall', 'Teams shows the call');

  clock.advance(3 * 60_000);
  await graph.idle();
  t.equal(graph.status().writer?.refreshes, 0);
  clock.advance(60_000);
  await graph.idle();
  t.equal(graph.status().writer?.refreshes, 1, 're-set a minute before expiry');
  s = appSession(e, 'anna');
  t.equal(Date.parse(s?.expiresAt ?? ''), t0 + 4 * 60_000 + 5 * 60_000);
  clock.advance(2 * 60_000);
  t.equal(appSession(e, 'anna')?.activity, 'InACall', 'alive past the first five minutes');

  idle(store, 'anna');
  await graph.idle();
  t.equal(appSession(e, 'anna'), undefined, "'clear' removed the session");
  t.equal(e.sim.control.presence('anna').availability, 'Offline');
  clock.advance(10 * 60_000);
  await graph.idle();
  t.equal(graph.status().writer?.refreshes, 1, 'no re-set after the clear');
  t.equal(e.sim.control.counters().requests['POST /v1.0/users/:id/presence/setPresence 200'], 2);
});

t.test('one simulator on the real clock', async (t) => {
  const e = await env();
  t.teardown(() => e.close());

  await t.test('DND: preferred presence when configured, a session otherwise, nothing when off', async (t) => {

    await t.test("dnd: 'preferred'", async (t) => {
      const { graph, store } = await gateway(e, { dnd: 'preferred' });
      t.teardown(() => graph.stop());
      dnd(store, 'ben');
      await graph.idle();
      t.equal(e.sim.control.presence('ben').availability, 'DoNotDisturb');
      t.equal(e.sim.control.presence('ben').activity, 'DoNotDisturb', 'the preferred presence wins over the session');
      t.equal(appSession(e, 'ben')?.activity, 'Presenting', 'a session keeps the preferred presence showing');
      t.equal(graph.status().writer?.preferred, 1);
      idle(store, 'ben');
      await graph.idle();
      t.equal(e.sim.control.counters().requests['POST /v1.0/users/:id/presence/clearUserPreferredPresence 200'], 1);
      t.equal(appSession(e, 'ben'), undefined);
      t.equal(e.sim.control.presence('ben').availability, 'Offline');
    });

    await t.test("dnd: 'session'", async (t) => {
      const { graph, store } = await gateway(e, { dnd: 'session' });
      t.teardown(() => graph.stop());
      dnd(store, 'chiara');
      await graph.idle();
      t.equal(appSession(e, 'chiara')?.availability, 'DoNotDisturb');
      t.equal(e.sim.control.presence('chiara').activity, 'Presenting');
      t.equal(graph.status().writer?.preferred, 0);
    });

    await t.test("dnd: 'off'", async (t) => {
      const { graph, store } = await gateway(e, { dnd: 'off' });
      t.teardown(() => graph.stop());
      dnd(store, 'dmitri');
      await graph.idle();
      t.equal(appSession(e, 'dmitri'), undefined, 'DND is not written');
      inCall(store, 'dmitri');
      await graph.idle();
      t.equal(appSession(e, 'dmitri')?.activity, 'InACall', 'calls still are');
      idle(store, 'dmitri');
      await graph.idle();
      t.equal(appSession(e, 'dmitri'), undefined);
    });
  });

  await t.test('bursts coalesce: one request in flight per user, only the latest target is sent', async (t) => {
    const { graph, store } = await gateway(e, {});
    t.teardown(() => graph.stop());
    const all = () =>
      Object.entries(e.sim.control.counters().requests)
        .filter(([k]) => /presence\/(setPresence|clearPresence)/.test(k))
        .reduce((n, [, v]) => n + v, 0);
    const before = all();
    const writes = () => all() - before;
    for (let i = 0; i < 20; i++) {
      inCall(store, 'elif', i);
      idle(store, 'elif', i);
    }
    away(store, 'elif');
    t.equal(graph.status().writer?.inFlight, 1);
    await graph.idle();
    t.equal(appSession(e, 'elif')?.availability, 'Away', 'the last target');
    t.ok(writes() <= 2, `41 targets, ${writes()} requests`);
  });

  await t.test('a 429 storm is ridden out with no target lost', async (t) => {
    const { graph, store } = await gateway(e, {}, undefined, { maxRetries: 1, delaySec: 1 });
    t.teardown(() => graph.stop());
    const throttled = () =>
      Object.entries(e.sim.control.counters().requests)
        .filter(([k]) => k.includes('/presence/') && k.endsWith(' 429'))
        .reduce((n, [, v]) => n + v, 0);
    const throttledBefore = throttled();
    e.sim.control.injectFault({ kind: '429', count: 10, path: '/presence/', retryAfterSec: 1 });
    const people = ['anna', 'ben', 'chiara', 'dmitri', 'elif'];
    for (const p of people) inCall(store, p);
    idle(store, 'ben');
    away(store, 'chiara');
    inCall(store, 'ben');
    idle(store, 'dmitri');
    await waitFor(() => graph.status().writer?.pending === 0 && graph.status().writer?.inFlight === 0, 30_000, 'writer settled');
    t.equal(appSession(e, 'anna')?.activity, 'InACall');
    t.equal(appSession(e, 'ben')?.activity, 'InACall');
    t.equal(appSession(e, 'chiara')?.activity, 'InACall', 'the PBX call outranks the away publication');
    t.equal(appSession(e, 'dmitri'), undefined);
    t.equal(appSession(e, 'elif')?.activity, 'InACall');
    const s = graph.status();
    t.ok((s.writer?.throttled ?? 0) > 0, 'the writer saw 429s after the RetryHandler gave up');
    t.ok(s.budget.throttled >= 10, 'every 429 reached the budget');
    t.equal(throttled() - throttledBefore, 10, 'all ten 429s were met');
  });

  await t.test('a set that failed on the way is cleared when the target clears', async (t) => {
    const { graph, store } = await gateway(e, {}, undefined, { maxRetries: 0 });
    t.teardown(() => graph.stop());
    t.equal(appSession(e, 'ben')?.activity, 'InACall', 'a session left from before this instance');
    e.sim.control.injectFault({ kind: '503', count: 1, path: '/presence/setPresence' });
    inCall(store, 'ben');
    await graph.idle();
    t.equal(graph.status().writer?.failures, 1);
    idle(store, 'ben');
    // after the back-off (1 s) the latest target goes out
    await waitFor(() => graph.status().writer?.clears === 1, 5000, 'the clear');
    await graph.idle();
    t.pass('the unanswered set might have landed: clearPresence is sent');
    t.equal(appSession(e, 'ben'), undefined);
  });

  await t.test('a refusal is reported in status and not retried in a loop', async (t) => {
    const { graph, store } = await gateway(e, {});
    t.teardown(() => graph.stop());
    e.sim.control.removeUser('anna', { permanent: true });
    inCall(store, 'anna');
    await graph.idle();
    const s = graph.status().writer;
    t.equal(s?.lastError?.personId, 'anna');
    t.equal(s?.lastError?.status, 404);
    t.equal(s?.pending, 0, 'handled: not resent until the target changes');
    await new Promise((r) => setTimeout(r, 200));
    t.equal(e.sim.control.counters().requests['POST /v1.0/users/:id/presence/setPresence 404'], 1);
  });
});

t.test('writer.statusMessage: says why while the call lasts, clears what it wrote after', async (t) => {
  const e = await env();
  const { graph, store } = await gateway(e, { statusMessage: true });
  t.teardown(async () => {
    await graph.stop();
    await e.close();
  });
  const status = () => e.sim.control.presence('chiara').statusMessage?.message?.content ?? '';
  inCall(store, 'chiara');
  await waitFor(() => status() === 'On a desk phone call');
  t.equal(status(), 'On a desk phone call');
  dnd(store, 'chiara');
  await waitFor(() => status() === 'Do not disturb (desk phone)');
  t.equal(status(), 'Do not disturb (desk phone)', 'the text follows the target');
  idle(store, 'chiara');
  await waitFor(() => status() === '');
  t.equal(status(), '', 'cleared when the gateway has nothing to say');
  t.equal(appSession(e, 'chiara'), undefined, 'and the session is gone');
});

t.test('without writer.statusMessage the status message is left alone', async (t) => {
  const e = await env();
  const { graph, store } = await gateway(e, {});
  t.teardown(async () => {
    await graph.stop();
    await e.close();
  });
  e.sim.control.setStatusMessage('dmitri', 'Back on Monday');
  inCall(store, 'dmitri');
  await waitFor(() => appSession(e, 'dmitri')?.activity === 'InACall');
  t.equal(e.sim.control.presence('dmitri').statusMessage?.message?.content, 'Back on Monday');
});
