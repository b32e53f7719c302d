import t from 'tap';
import Fastify from 'fastify';
import { adminApi } from '../../src/http/admin.js';
import { connectors, type UserRow } from '../../src/http/rows.js';
import { fakeSource, TOKEN } from './fake-source.js';

t.test('the diagnostics rows carry the meeting note and its end; the calendar card goes red without permission', async (t) => {
  const now = Date.parse('2026-12-01T12:30:00Z');
  const src = fakeSource({ clock: { now: () => now } });
  const app = Fastify();
  await app.register(adminApi, { prefix: '/api', source: src, token: TOKEN });
  await app.ready();
  t.teardown(async () => {
    await app.close();
    src.close();
  });
  src.store.setTeams('anna', { availability: 'Busy', activity: 'InAMeeting', statusMessage: 'Desk 4', at: now });
  src.store.setCalendar('anna', { status: 'busy', from: now - 60_000, until: Date.parse('2026-12-01T14:00:00Z'), at: now });
  const res = await app.inject({ url: '/api/users', headers: { authorization: `Bearer ${TOKEN}` } });
  const rows = res.json() as UserRow[] | { users: UserRow[] };
  const anna = (Array.isArray(rows) ? rows : rows.users).find((r) => r.id === 'anna');
  t.equal(anna?.watchersSee.note, 'In a meeting until 14:00');
  t.same(anna?.watchersSee.consoleNotes, ['In a meeting until 14:00', 'Desk 4']);
  t.equal(anna?.watchersSee.until, '2026-12-01T14:00:00.000Z');

  src.graphInfo = { started: true, tokens: [], reader: { users: 5, subscriptions: [] }, calendar: { state: 'denied', people: 5, busyNow: 0, lastError: '403 ErrorAccessDenied: Access is denied.' } };
  const card = connectors(src, undefined, now).find((c) => c.kind === 'graph-calendar');
  t.equal(card?.ok, false, 'red');
  t.equal(card?.badge, 'No permission');
  t.match(card?.detail ?? '', /Calendars\.ReadBasic\.All/);
  src.graphInfo = { started: true, tokens: [], reader: { users: 5, subscriptions: [] }, calendar: { state: 'ok', people: 5, busyNow: 1 } };
  t.equal(connectors(src, undefined, now).find((c) => c.kind === 'graph-calendar')?.ok, true);
});
