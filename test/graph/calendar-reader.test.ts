import t from 'tap';
import type { Person } from '../../src/core/directory.js';
import { ManualClock } from '../../src/graph-simulator/clock.js';
import { DEMO_APP } from '../../src/graph-simulator/seed.js';
import { createGraph } from '../../src/graph/index.js';
import { blockAt, parseScheduleAnswer } from '../../src/graph/schedule-resource.js';
import { silentLogger } from '../../src/util/logger.js';
import { core, env, people, waitFor } from './helpers.js';

const WITH_CALENDAR = { ...DEMO_APP, applicationPermissions: [...(DEMO_APP.applicationPermissions ?? []), 'Calendars.ReadBasic.All'] };
const GET_SCHEDULE = /^POST \/v1\.0\/users\/[^/]+\/calendar\/getSchedule (\d+)$/;

function scheduleCalls(counters: { requests: Record<string, number> }, status = '200'): number {
  let n = 0;
  for (const [k, v] of Object.entries(counters.requests)) {
    const m = GET_SCHEDULE.exec(k);
    if (m !== null && m[1] === status) n += v;
  }
  return n;
}

function recordingLogger() {
  const lines: Array<{ level: string; msg: string }> = [];
  const base = silentLogger();
  const at = (level: string) => (o: unknown, msg?: string) => void lines.push({ level, msg: String(typeof o === 'string' ? o : msg) });
  return { lines, logger: { ...base, error: at('error'), warn: at('warn'), info: at('info') } as unknown as ReturnType<typeof silentLogger> };
}

t.test('schedule answers: busy blocks in UTC, joined back to back', async (t) => {
  const a = parseScheduleAnswer({
    value: [
      {
        scheduleId: 'Anna@Contoso.example',
        scheduleItems: [
          { status: 'busy', start: { dateTime: '2026-12-01T12:00:00.0000000', timeZone: 'UTC' }, end: { dateTime: '2026-12-01T13:00:00.0000000', timeZone: 'UTC' } },
          { status: 'tentative', start: { dateTime: '2026-12-01T13:00:00.0000000', timeZone: 'UTC' }, end: { dateTime: '2026-12-01T13:30:00.0000000', timeZone: 'UTC' } },
          { status: 'free', start: { dateTime: '2026-12-01T14:00:00', timeZone: 'UTC' }, end: { dateTime: '2026-12-01T15:00:00', timeZone: 'UTC' } },
          { status: 'busy', start: { dateTime: '2026-12-01T16:00:00', timeZone: 'Pacific Standard Time' }, end: { dateTime: '2026-12-01T17:00:00', timeZone: 'Pacific Standard Time' } },
        ],
      },
      { scheduleId: 'x@contoso.example', error: { message: 'no', responseCode: 'ErrorMailRecipientNotFound' } },
      'junk',
    ],
  });
  const blocks = a.blocks.get('anna@contoso.example') ?? [];
  t.equal(blocks.length, 2, 'free and other-zone items are not kept');
  t.same(blockAt(blocks, Date.parse('2026-12-01T12:30:00Z')), { status: 'busy', start: Date.parse('2026-12-01T12:00:00Z'), end: Date.parse('2026-12-01T13:30:00Z') });
  t.equal(blockAt(blocks, Date.parse('2026-12-01T13:30:00Z')), undefined);
  t.equal(a.errors.get('x@contoso.example'), 'ErrorMailRecipientNotFound');
});

t.test('the reader against the simulator: batches of 20, its own budget share, the meeting reaches core', async (t) => {
  const e = await env({ apps: [WITH_CALENDAR] });
  t.teardown(() => e.close());
  const extra: Person[] = [];
  for (let i = 0; i < 40; i++) {
    const nick = `p${i}`;
    e.sim.control.addUser({ displayName: `Person ${i}`, userPrincipalName: `${nick}@contoso.example`, mailNickname: nick });
    extra.push({ id: nick, displayName: `Person ${i}`, sipAors: [`sip:${nick}@gw.example`] });
  }
  const c = core([...people(), ...extra]);
  const clock = new ManualClock();
  // 2 calendar requests per 30 s: the 45 people's third batch must wait for the window
  const config = e.config({ writer: { enabled: false }, calendar: { enabled: true, share: 0.002, refreshMinutes: 10 } });
  const graph = createGraph({ config, ...c, logger: silentLogger(), clock });
  t.teardown(() => graph.stop());
  e.sim.control.signIn('anna');
  const meeting = e.sim.control.meeting('anna', 3);
  await graph.start();
  await waitFor(() => scheduleCalls(e.sim.control.counters()) === 2, 8000, 'two calendar batches');
  await new Promise((r) => setTimeout(r, 300));
  t.equal(scheduleCalls(e.sim.control.counters()), 2, 'the third batch waits for the calendar budget');
  t.equal(graph.status().calendar?.budget.waiting, 1);
  t.ok((graph.status().budget.granted ?? 0) > 2, 'presence reads went ahead meanwhile');
  clock.advance(30_000);
  await waitFor(() => scheduleCalls(e.sim.control.counters()) === 3, 8000, 'third batch');
  await graph.idle();
  const s = graph.status().calendar;
  t.equal(s?.state, 'ok');
  t.equal(s?.people, 45, 'the 45 people with a Teams address');
  t.equal(s?.calls, 3, '20 + 20 + 5');
  t.equal(s?.busyNow, 1);
  const cal = c.store.state('anna').calendar;
  t.equal(cal?.status, 'busy');
  t.equal(cal?.until, Math.floor(Date.parse(meeting.end) / 1000) * 1000, 'until the meeting end (Graph answers to the second)');
  await graph.pollNow();
  t.equal(c.store.state('anna').teams?.activity, 'InAMeeting');
  t.equal(c.store.view('anna').activitiesUntil, cal?.until);
  t.match(c.store.view('anna').note ?? '', /^In a meeting until \d\d:\d\d$/);
  t.equal(c.store.state('ben').calendar, undefined, 'ben is free');

  // the meeting's end passes on the gateway's clock: core hears it without a new read
  const before = scheduleCalls(e.sim.control.counters());
  clock.set((cal?.until ?? 0) + 1);
  await waitFor(() => c.store.state('anna').calendar === undefined, 4000, 'block end applied');
  t.equal(scheduleCalls(e.sim.control.counters()), before, 'the block end needed no request');
});

t.test('no calendar permission: 403 turns the calendar denied, logged once, not retried in a loop', async (t) => {
  const e = await env();
  t.teardown(() => e.close());
  const c = core();
  const clock = new ManualClock();
  const { lines, logger } = recordingLogger();
  const graph = createGraph({ config: e.config({ writer: { enabled: false }, calendar: { enabled: true, refreshMinutes: 5 } }), ...c, logger, clock });
  t.teardown(() => graph.stop());
  await graph.start();
  await waitFor(() => graph.status().calendar?.state === 'denied', 8000, 'denied');
  await graph.idle();
  t.equal(scheduleCalls(e.sim.control.counters(), '403'), 1, 'one request, no retry of a 403');
  for (let i = 0; i < 5; i++) {
    clock.advance(5 * 60_000);
    await new Promise((r) => setTimeout(r, 20));
    await graph.idle();
  }
  t.equal(scheduleCalls(e.sim.control.counters(), '403'), 1, 'five refresh intervals later: still the one request');
  clock.advance(40 * 60_000);
  await waitFor(() => scheduleCalls(e.sim.control.counters(), '403') === 2, 4000, 'the hourly look');
  await graph.idle();
  t.equal(graph.status().calendar?.state, 'denied');
  t.match(graph.status().calendar?.lastError ?? '', /^403 ErrorAccessDenied/);
  const denied = lines.filter((l) => l.msg.includes('getSchedule refused (403)'));
  t.equal(denied.length, 1, 'logged once');
  t.equal(denied[0]?.level, 'error');
  t.match(denied[0]?.msg ?? '', /Calendars\.ReadBasic\.All/);
  t.equal(graph.status().started, true, 'the rest of the Graph side runs on');
});

t.test('a getSchedule 429 pauses only the calendar; presence polling goes on', async (t) => {
  const e = await env({ apps: [WITH_CALENDAR] });
  t.teardown(() => e.close());
  const c = core();
  const graph = createGraph({ config: e.config({ writer: { enabled: false }, calendar: { enabled: true } }), ...c, logger: silentLogger(), retry: { delaySec: 1, maxRetries: 1 } });
  t.teardown(() => graph.stop());
  await graph.start();
  await graph.idle();
  const firstCalls = scheduleCalls(e.sim.control.counters());
  t.equal(firstCalls, 1, 'five people: one batch');
  const injectedAt = Date.now();
  e.sim.control.injectFault({ kind: '429', path: '/calendar/getSchedule', count: 1, retryAfterSec: 20 });
  const reading = graph.readCalendarsNow?.();
  await waitFor(() => scheduleCalls(e.sim.control.counters(), '429') === 1, 8000, 'the 429');
  const shared = graph.status().budget;
  t.equal(shared.pausedUntil, undefined, 'the shared budget is not paused');
  // the 429 came after the fault was injected: its 20 s are counted from then or later
  t.ok((graph.status().calendar?.budget.pausedUntil ?? 0) >= injectedAt + 20_000, "the calendar's share waits for Retry-After");
  const polls = e.sim.control.counters().requests['POST /v1.0/communications/getPresencesByUserId 200'] ?? 0;
  const started = Date.now();
  await graph.pollNow();
  t.ok(Date.now() - started < 5000, 'a presence poll is not held up by the calendar throttling');
  // (the poller's own timer may have read once more meanwhile on a slow machine)
  t.ok((e.sim.control.counters().requests['POST /v1.0/communications/getPresencesByUserId 200'] ?? 0) >= polls + 1, 'the poll was answered');
  await graph.stop();
  await reading?.catch(() => undefined);
});

t.test('the reader asks getSchedule for the user\'s mail (from directory sync), the UPN only without one', async (t) => {
  const e = await env({ apps: [WITH_CALENDAR] });
  t.teardown(() => e.close());
  e.sim.control.addUser({ displayName: 'Dana Smith', userPrincipalName: 'dana@contoso.onmicrosoft.example', mail: 'dana.smith@contoso.example', mailNickname: 'dana' });
  e.sim.control.addUser({ displayName: 'No Mail', userPrincipalName: 'nomail@contoso.example', mail: null, mailNickname: 'nomail' });
  const c = core([
    ...people(),
    { id: 'dana', displayName: 'Dana Smith', sipAors: ['sip:dana@gw.example'] },
    { id: 'nomail', displayName: 'No Mail', sipAors: ['sip:nomail@gw.example'] },
  ]);
  const config = e.config({ writer: { enabled: false }, calendar: { enabled: true } });
  const graph = createGraph({ config, ...c, logger: silentLogger() });
  t.teardown(() => graph.stop());
  e.sim.control.meeting('dana', 30);
  e.sim.control.meeting('nomail', 30);
  await graph.start();
  await waitFor(() => graph.status().calendar?.calls !== undefined && graph.status().calendar!.calls > 0, 8000, 'a calendar read');
  await graph.idle();
  t.same(c.directory.get('dana')?.teams?.mail, 'dana.smith@contoso.example', 'directory sync keeps the mail');
  t.equal(c.directory.get('dana')?.teams?.upn, 'dana@contoso.onmicrosoft.example');
  t.equal(c.store.state('dana').calendar?.status, 'busy', 'read by mail although the UPN is no SMTP address');
  t.equal(c.directory.get('nomail')?.teams?.mail, undefined);
  t.equal(c.store.state('nomail').calendar, undefined, 'no mail: the UPN is tried, and Graph has no mailbox for it');
});
