import t from 'tap';
import { Directory } from '../../src/core/directory.js';
import { PresenceHub } from '../../src/core/presence-hub.js';
import type { PresenceView } from '../../src/core/person-state.js';

const people = [
  { id: 'anna', displayName: 'Anna Meier', extension: '1001', sipAors: ['sip:anna@example.com'] },
  { id: 'ben', displayName: 'Ben Okafor', extension: '1002', sipAors: ['sip:ben@example.com'] },
];

function setup() {
  let clock = 1_000;
  const dir = new Directory(people, { domains: ['example.com'] });
  const store = new PresenceHub(dir, { clock: { now: () => clock } });
  const seen: PresenceView[] = [];
  store.onChange((_id, v) => seen.push(v));
  return { store, seen, tick: (ms: number) => (clock += ms) };
}

t.test('a person with no source is open, idle, with no calls', async (t) => {
  const { store } = setup();
  const v = store.view('anna');
  t.equal(v.basic, 'open');
  t.same(v.activities, []);
  t.same(v.calls, []);
  t.equal(v.dnd, false);
  t.equal(v.revision, 0);
  t.equal(v.source, 'none');
});

t.test('a rich state change notifies once with a new revision', async (t) => {
  const { store, seen, tick } = setup();
  tick(5);
  store.setSip('anna', { basic: 'open', activities: ['on-the-phone'], origin: 'pub1', at: 1 });
  t.equal(seen.length, 1);
  t.equal(seen[0]!.revision, 1);
  t.equal(seen[0]!.changedAt, 1_005);
  t.same(seen[0]!.activities, ['on-the-phone']);
  t.equal(seen[0]!.source, 'sip');
  t.equal(seen[0]!.calls.length, 1, 'busy on the phone lights a synthetic dialog');
  t.equal(seen[0]!.calls[0]!.synthetic, true);
  t.equal(seen[0]!.calls[0]!.phase, 'confirmed');
});

t.test('setting the same content again does not notify', async (t) => {
  const { store, seen } = setup();
  store.setSip('anna', { basic: 'open', activities: ['away'], origin: 'pub1', at: 1 });
  store.setSip('anna', { basic: 'open', activities: ['away'], origin: 'pub2', at: 2 });
  t.equal(seen.length, 1);
  store.setSip('anna', undefined);
  t.equal(seen.length, 2);
  t.same(seen[1]!.activities, []);
  t.equal(seen[1]!.revision, 2);
});

t.test('telephony outranks rich presence and rings', async (t) => {
  const { store } = setup();
  store.setSip('ben', { basic: 'open', activities: ['away'], note: 'lunch', origin: 'p', at: 1 });
  store.setTelephony('ben', {
    line: 'ringing',
    dnd: false,
    calls: [{ id: 'c1', phase: 'early', direction: 'recipient', remote: { identity: 'sip:2000@pbx' } }],
    origin: 'trunk-a',
    at: 2,
  });
  const v = store.view('ben');
  t.same(v.activities, ['on-the-phone', 'away']);
  t.equal(v.ringing, true);
  t.equal(v.note, 'Ringing');
  t.equal(v.source, 'telephony');
  t.equal(v.calls[0]!.id, 'c1');
  t.equal(v.calls[0]!.synthetic, undefined);
});

t.test('DND from a publication shows as busy plus dnd', async (t) => {
  const { store } = setup();
  store.setSip('anna', { basic: 'open', activities: ['dnd'], origin: 'phone', at: 1 });
  const v = store.view('anna');
  t.equal(v.dnd, true);
  t.same(v.activities, ['busy']);
  t.equal(v.note, 'Do not disturb');
});

t.test('terminated calls are not shown', async (t) => {
  const { store } = setup();
  store.setTelephony('anna', {
    line: 'idle',
    dnd: false,
    calls: [{ id: 'x', phase: 'terminated' }],
    origin: 't',
    at: 1,
  });
  t.same(store.view('anna').calls, []);
  t.same(store.view('anna').activities, []);
});

t.test('unknown persons are refused', async (t) => {
  const { store } = setup();
  t.throws(() => store.view('nobody'), /unknown person/);
});

t.test('telephony from several feeders composes; clearing one feeder leaves the others', async (t) => {
  const { store } = setup();
  store.setTelephony('anna', { line: 'in-call', dnd: false, calls: [{ id: 'p1', phase: 'confirmed' }], origin: 'trunk:pbx', at: 1 }, 'trunk:pbx');
  store.setTelephony('anna', { line: 'idle', dnd: true, calls: [], origin: 'publish', at: 2 });
  t.equal(store.state('anna').telephony?.line, 'in-call', 'the busiest line of all feeders');
  t.equal(store.state('anna').telephony?.dnd, true, 'DND from any feeder');
  store.setTelephony('anna', undefined, 'trunk:pbx');
  t.equal(store.state('anna').telephony?.line, 'idle', 'the PBX call is gone, the phone feeder stays');
  t.equal(store.state('anna').telephony?.dnd, true);
  store.setTelephony('anna', undefined);
  t.equal(store.state('anna').telephony, undefined, 'no feeder left: no telephony');
});

t.test('rich state from several feeders composes (DND wins over idle)', async (t) => {
  const { store } = setup();
  store.setSip('ben', { basic: 'open', activities: ['dnd'], origin: 'trunk:cucm', at: 1 }, 'trunk:cucm');
  store.setSip('ben', { basic: 'open', activities: [], origin: 'publish', at: 5 });
  t.same(store.state('ben').sip?.activities, ['dnd']);
  store.setSip('ben', undefined, 'trunk:cucm');
  t.same(store.state('ben').sip?.activities, []);
});

t.test('teamsPart: what Teams alone says; the gateway\'s own session read back says available', async (t) => {
  const { store } = setup();
  t.equal(store.teamsPart('anna'), undefined, 'nothing from Teams yet');
  store.setTeams('anna', { availability: 'Busy', activity: 'InACall', at: 3 });
  store.setTelephony('anna', { line: 'ringing', dnd: false, calls: [], origin: 'pbx', at: 4 });
  // The PBX line rings: the gateway's target is Busy/InACall, so this Teams reading is its own echo.
  t.same(store.teamsPart('anna')?.activities, [], 'echo is not published as a Teams call');
  store.setTelephony('anna', undefined);
  store.setTeams('anna', { availability: 'DoNotDisturb', activity: 'Presenting', at: 9 });
  const part = store.teamsPart('anna');
  t.equal(part?.source, 'teams');
  t.ok(part?.activities.includes('on-the-phone'), 'Presenting is on the phone by default');
  t.equal(part?.ringing, false, 'no PBX state leaks into the Teams part');
});

t.test("busy-on-busy: the writer's DoNotDisturb during a PBX call is its own echo (callEchoes), not the person's DND", async (t) => {
  const directory = new Directory([{ id: 'anna', displayName: 'Anna', sipAors: ['sip:anna@gw.example'] }], { domains: ['gw.example'] });
  const plain = new PresenceHub(directory);
  const dnd = new PresenceHub(directory, { callEchoes: [{ availability: 'DoNotDisturb', activity: 'DoNotDisturb' }] });
  for (const store of [plain, dnd]) {
    store.setTelephony('anna', { line: 'in-call', dnd: false, calls: [], origin: 'pbx', at: 1 });
    store.setTeams('anna', { availability: 'DoNotDisturb', activity: 'DoNotDisturb', at: 2 });
  }
  t.ok(plain.teamsPart('anna')?.activities.length, 'without the option a Teams DND during a call is the person\'s own');
  t.same(dnd.teamsPart('anna')?.activities, [], 'with it, the read-back DoNotDisturb is the gateway\'s echo');
  dnd.setTelephony('anna', { line: 'idle', dnd: false, calls: [], origin: 'pbx', at: 3 });
  dnd.setTeams('anna', { availability: 'DoNotDisturb', activity: 'DoNotDisturb', at: 4 });
  t.same(dnd.teamsPart('anna')?.activities, [], 'still its own within the echo window after the call');
  const outside = new PresenceHub(directory, { callEchoes: [{ availability: 'DoNotDisturb', activity: 'DoNotDisturb' }] });
  outside.setTeams('anna', { availability: 'DoNotDisturb', activity: 'DoNotDisturb', at: 1 });
  t.ok(outside.teamsPart('anna')?.activities.length, 'outside a call a DoNotDisturb is the person\'s');
});
