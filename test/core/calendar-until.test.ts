import t from 'tap';
import { buildPidf, parsePidf } from '../../src/bodies/index.js';
import { Directory } from '../../src/core/directory.js';
import { PresenceHub } from '../../src/core/presence-hub.js';
import { clockTime } from '../../src/core/view.js';
import { presenceDocument } from '../../src/simple/presence-package.js';

const T0 = Date.parse('2026-12-01T12:30:00Z');
const END = Date.parse('2026-12-01T14:00:00Z');

function setup(timeZone?: string) {
  let now = T0;
  const directory = new Directory([{ id: 'anna', displayName: 'Anna', sipAors: ['sip:anna@example.com'], language: 'de-DE' }], { domains: ['example.com'] });
  const store = new PresenceHub(directory, { clock: { now: () => now }, ...(timeZone !== undefined ? { timeZone } : {}) });
  return { store, setNow: (ms: number) => (now = ms) };
}

t.test('InAMeeting with a calendar block: until on the activities and the note', async (t) => {
  const { store } = setup();
  store.setTeams('anna', { availability: 'Busy', activity: 'InAMeeting', at: T0 });
  t.equal(store.view('anna').activitiesUntil, undefined, 'no calendar: no until');
  t.equal(store.view('anna').note, 'In a meeting (Teams)');
  store.setCalendar('anna', { status: 'busy', from: T0 - 1_800_000, until: END, at: T0 });
  const v = store.view('anna');
  t.equal(v.activitiesUntil, END);
  t.equal(v.note, 'In a meeting until 14:00');
  t.same(v.notes, [{ text: 'In a meeting until 14:00', lang: 'de-DE' }]);
  const xml = buildPidf(presenceDocument(v, 'sip:anna@example.com', 'rfc'));
  t.match(xml, /<rpid:activities until="2026-12-01T14:00:00Z"><rpid:meeting\/><\/rpid:activities>/);
  t.match(xml, /<dm:note xml:lang="de-DE">In a meeting until 14:00<\/dm:note>/);
  const parsed = parsePidf(xml).persons[0];
  t.equal(parsed?.activitiesUntil, '2026-12-01T14:00:00Z');
  t.same(parsed?.activities.map((a) => a.name), ['meeting']);
});

t.test('the end time in the configured zone', async (t) => {
  const { store } = setup('Europe/Berlin');
  store.setCalendar('anna', { status: 'busy', from: T0, until: END, at: T0 });
  store.setTeams('anna', { availability: 'Busy', activity: 'InAMeeting', at: T0 });
  t.equal(store.view('anna').note, 'In a meeting until 15:00', 'CET is UTC+1 in December');
  t.equal(clockTime(Date.parse('2026-07-01T12:05:00Z'), 'America/New_York'), '08:05');
});

t.test('Busy/Busy with a busy block counts; Available, a past block or a free calendar do not', async (t) => {
  const { store, setNow } = setup();
  store.setCalendar('anna', { status: 'busy', from: T0, until: END, at: T0 });
  store.setTeams('anna', { availability: 'Busy', activity: 'Busy', at: T0 });
  t.equal(store.view('anna').activitiesUntil, END);
  t.equal(store.view('anna').note, 'In a meeting until 14:00');
  store.setTeams('anna', { availability: 'Available', activity: 'Available', at: T0 + 1 });
  t.equal(store.view('anna').activitiesUntil, undefined, 'not in the meeting by Teams');
  t.equal(store.view('anna').notes, undefined);
  store.setCalendar('anna', { status: 'oof', from: T0, until: END, at: T0 });
  store.setTeams('anna', { availability: 'Busy', activity: 'Busy', at: T0 + 2 });
  t.equal(store.view('anna').activitiesUntil, undefined, 'an out-of-office block is no meeting');
  setNow(END + 1);
  store.setCalendar('anna', { status: 'busy', from: T0, until: END, at: T0 });
  store.setTeams('anna', { availability: 'Busy', activity: 'InAMeeting', at: END + 1 });
  t.equal(store.view('anna').activitiesUntil, undefined, 'a block that has ended says nothing');
  store.setCalendar('anna', undefined);
  t.equal(store.view('anna').note, 'In a meeting (Teams)');
  const xml = buildPidf(presenceDocument(store.view('anna'), 'sip:anna@example.com', 'rfc'));
  t.notMatch(xml, /until=/);
});

t.test('a desk-phone call during the meeting: no until, since it would speak for on-the-phone too', async (t) => {
  const { store } = setup();
  store.setCalendar('anna', { status: 'busy', from: T0, until: END, at: T0 });
  store.setTeams('anna', { availability: 'Busy', activity: 'InAMeeting', at: T0 });
  t.equal(store.view('anna').activitiesUntil, END);
  store.setTelephony('anna', { line: 'in-call', dnd: false, calls: [], origin: 'trunk:pbx', at: T0 });
  t.same(store.view('anna').activities, ['on-the-phone', 'meeting']);
  t.equal(store.view('anna').activitiesUntil, undefined);
  t.same(store.view('anna').notes, [{ text: 'In a meeting until 14:00', lang: 'de-DE' }], 'the console note stays');
});
