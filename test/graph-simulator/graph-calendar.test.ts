import t, { type Test } from 'tap';
import { ManualClock } from '../../src/graph-simulator/clock.js';
import { DEMO_APP } from '../../src/graph-simulator/seed.js';
import { graphFailure, harness } from './helpers.js';

const MIN = 60_000;
const WITH_CALENDAR = { ...DEMO_APP, applicationPermissions: [...(DEMO_APP.applicationPermissions ?? []), 'Calendars.Read'] };

const range = (from: number, to: number) => ({
  startTime: { dateTime: new Date(from).toISOString().slice(0, 19), timeZone: 'UTC' },
  endTime: { dateTime: new Date(to).toISOString().slice(0, 19), timeZone: 'UTC' },
});

interface Info {
  scheduleId: string;
  availabilityView: string;
  scheduleItems: Array<{ status: string; start: { dateTime: string; timeZone: string }; end: { dateTime: string; timeZone: string }; subject?: string }>;
  error?: { responseCode: string };
}

/** A simulator at 2026-12-01T12:00Z on a manual clock, and a Graph client with a calendar permission. */
async function calendarSim(t: Test) {
  const clock = new ManualClock(Date.parse('2026-12-01T12:00:00Z'));
  const h = await harness({ clock, apps: [WITH_CALENDAR] });
  t.teardown(() => h.close());
  const token = await h.appToken();
  return { clock, graph: h.graph(async () => token, { maxRetries: 0 }), control: h.sim.control };
}

t.test('getSchedule as documented', async (t) => {
  const { clock, graph, control } = await calendarSim(t);
  const anna = control.user('anna');
  const ben = control.user('ben');
  const now = clock.now();

  const m = control.meeting('anna', 90, { subject: 'Budget' });
  t.equal(m.end, '2026-12-01T13:30:00.000Z');
  t.equal(m.presence.availability, 'Busy');
  t.equal(m.presence.activity, 'InAMeeting', 'Teams shows a calendar meeting as InAMeeting');

  const r = (await graph.api(`/users/${anna.id}/calendar/getSchedule`).post({
    schedules: [anna.userPrincipalName, ben.userPrincipalName, 'nobody@contoso.example'],
    ...range(now, now + 4 * 60 * MIN),
    availabilityViewInterval: 60,
  })) as { value: Info[] };
  t.equal(r.value.length, 3);
  const [a, b, nobody] = r.value;
  t.equal(a?.scheduleId, anna.userPrincipalName);
  t.equal(a?.availabilityView, '2200', 'busy in the first two hour slots');
  t.same(a?.scheduleItems.map((i) => [i.status, i.start.dateTime, i.end.dateTime, i.start.timeZone, i.subject]), [
    ['busy', '2026-12-01T12:00:00.0000000', '2026-12-01T13:30:00.0000000', 'UTC', 'Budget'],
  ]);
  t.equal(b?.availabilityView, '0000');
  t.same(b?.scheduleItems, []);
  t.equal(nobody?.error?.responseCode, 'ErrorMailRecipientNotFound');

  const berlin = (await graph
    .api(`/users/${anna.id}/calendar/getSchedule`)
    .header('Prefer', 'outlook.timezone="W. Europe Standard Time"')
    .post({ schedules: [anna.userPrincipalName], ...range(now, now + 60 * MIN) })) as { value: Info[] };
  t.equal(berlin.value[0]?.scheduleItems[0]?.end.dateTime, '2026-12-01T14:30:00.0000000', 'Prefer: outlook.timezone');
  t.equal(berlin.value[0]?.availabilityView, '22', 'default interval 30 minutes');

  const bad = async (body: Record<string, unknown>) => graphFailure(graph.api(`/users/${anna.id}/calendar/getSchedule`).post(body));
  const ok = { schedules: [anna.userPrincipalName], ...range(now, now + 60 * MIN) };
  t.equal((await bad({ ...ok, schedules: [] })).statusCode, 400, 'no schedules');
  t.equal((await bad({ ...ok, startTime: undefined })).statusCode, 400, 'no startTime');
  t.equal((await bad({ ...ok, ...range(now, now) })).statusCode, 400, 'end not after start');
  t.equal((await bad({ ...ok, availabilityViewInterval: 4 })).statusCode, 400, 'interval under 5');
  t.equal((await bad({ ...ok, startTime: { dateTime: '2026-12-01T12:00:00Z', timeZone: 'UTC' } })).statusCode, 400, 'zone suffix on dateTime');
  const tooMany = await bad({ ...ok, schedules: Array.from({ length: 21 }, (_, i) => `u${i}@contoso.example`) });
  t.equal(tooMany.statusCode, 400);
  t.equal(tooMany.code, 'ErrorMailboxDataArrayTooBig', 'at most 20 schedules a request');
  const twenty = (await graph.api(`/users/${anna.id}/calendar/getSchedule`).post({ ...ok, schedules: Array.from({ length: 20 }, (_, i) => `u${i}@contoso.example`) })) as { value: Info[] };
  t.equal(twenty.value.length, 20);

  clock.advance(91 * MIN);
  const after = control.presence('anna');
  t.not(after.activity, 'InAMeeting', 'the meeting session ends with the meeting');
});

t.test('getSchedule without a calendar permission is 403', async (t) => {
  const h = await harness();
  t.teardown(() => h.close());
  const token = await h.appToken();
  const graph = h.graph(async () => token, { maxRetries: 0 });
  const anna = h.sim.control.user('anna');
  const f = await graphFailure(graph.api(`/users/${anna.id}/calendar/getSchedule`).post({ schedules: [anna.userPrincipalName], ...range(Date.now(), Date.now() + MIN * 60) }));
  t.equal(f.statusCode, 403);
  t.equal(f.code, 'ErrorAccessDenied');
});

t.test('the least privileged application permission, Calendars.ReadBasic.All, is enough', async (t) => {
  const h = await harness({ apps: [{ ...DEMO_APP, applicationPermissions: ['Presence.Read.All', 'Calendars.ReadBasic.All'] }] });
  t.teardown(() => h.close());
  const token = await h.appToken();
  const graph = h.graph(async () => token, { maxRetries: 0 });
  const anna = h.sim.control.user('anna');
  const r = (await graph.api(`/users/${anna.id}/calendar/getSchedule`).post({ schedules: [anna.userPrincipalName], ...range(Date.now(), Date.now() + MIN * 60) })) as { value: Info[] };
  t.equal(r.value[0]?.scheduleId, anna.userPrincipalName);
});

t.test('getSchedule finds mailboxes by SMTP address (mail), not by a UPN that differs from it', async (t) => {
  const { clock, graph, control } = await calendarSim(t);
  const dana = control.addUser({ displayName: 'Dana Smith', userPrincipalName: 'dana@contoso.onmicrosoft.example', mail: 'Dana.Smith@contoso.example', mailNickname: 'dana' });
  const nomail = control.addUser({ displayName: 'No Mailbox', userPrincipalName: 'nomail@contoso.example', mail: null, mailNickname: 'nomail' });
  control.meeting('dana', 30);
  const now = clock.now();
  const r = (await graph.api(`/users/${dana.id}/calendar/getSchedule`).post({
    schedules: ['dana.smith@contoso.example', dana.userPrincipalName, nomail.userPrincipalName],
    ...range(now, now + 60 * MIN),
  })) as { value: Info[] };
  const [byMail, byUpn, none] = r.value;
  t.equal(byMail?.scheduleId, 'dana.smith@contoso.example', 'scheduleId as asked');
  t.equal(byMail?.scheduleItems[0]?.status, 'busy', 'the mail address (any case) finds the mailbox');
  t.equal(byUpn?.error?.responseCode, 'ErrorMailRecipientNotFound', 'the UPN is not an SMTP address of hers');
  t.equal(none?.error?.responseCode, 'ErrorMailRecipientNotFound', 'no mail: no mailbox');
});
