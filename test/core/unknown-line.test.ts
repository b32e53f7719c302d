import t from 'tap';
import { Directory } from '../../src/core/directory.js';
import type { TelephonyState } from '../../src/core/person-state.js';
import { PresenceHub } from '../../src/core/presence-hub.js';
import { PHONE_UNKNOWN_NOTE } from '../../src/core/view.js';

function setup() {
  const directory = new Directory([{ id: 'anna', displayName: 'Anna', extension: '1001', sipAors: ['sip:anna@example.com'] }], { domains: ['example.com'] });
  return new PresenceHub(directory);
}
const inCall = (at: number): TelephonyState => ({ line: 'in-call', dnd: false, calls: [{ id: 'c1', phase: 'confirmed' }], origin: 'trunk:pbx', at });
const idle = (at: number): TelephonyState => ({ line: 'idle', dnd: false, calls: [], origin: 'publish', at });

t.test('trunk down: its state is not current, the person is unknown; back: its state counts again', async (t) => {
  const store = setup();
  store.expectTelephony('anna', 'trunk:pbx');
  store.setTelephony('anna', inCall(1), 'trunk:pbx');
  t.same(store.view('anna').activities, ['on-the-phone']);
  t.equal(store.view('anna').phoneUnknown, undefined);

  store.setFeederReachable('trunk:pbx', false);
  const down = store.view('anna');
  t.equal(down.phoneUnknown, true, 'unknown, not idle');
  t.equal(down.note, PHONE_UNKNOWN_NOTE);
  t.same(down.activities, [], 'no stale on-the-phone');
  t.same(down.calls, [], 'no stale call');
  t.equal(store.state('anna').telephony?.line, 'unknown');

  store.setFeederReachable('trunk:pbx', true);
  t.equal(store.view('anna').phoneUnknown, undefined);
  t.same(store.view('anna').activities, ['on-the-phone'], 'what the trunk holds is current again');
});

t.test('another live source (the phone PUBLISHing) still speaks while the trunk is down', async (t) => {
  const store = setup();
  store.expectTelephony('anna', 'trunk:pbx');
  store.setTelephony('anna', idle(1));
  store.setFeederReachable('trunk:pbx', false);
  t.equal(store.view('anna').phoneUnknown, undefined);
  t.equal(store.state('anna').telephony?.line, 'idle');
});

t.test('device unreachable: the subscription down keeps its state (grace); once cleared, unknown', async (t) => {
  const store = setup();
  store.expectTelephony('anna', 'trunk:pbx');
  store.setTelephony('anna', inCall(1), 'trunk:pbx');
  store.setFeederReachableFor('anna', 'trunk:pbx', false);
  t.same(store.view('anna').activities, ['on-the-phone'], 'still in the grace period');
  store.setTelephony('anna', undefined, 'trunk:pbx');
  t.equal(store.view('anna').phoneUnknown, true);
  store.setFeederReachableFor('anna', 'trunk:pbx', true);
  t.equal(store.view('anna').phoneUnknown, undefined, 'subscription back: no claim of unknown');
});

t.test('a person nobody expects telephony for is idle as before; a Teams call still lights', async (t) => {
  const store = setup();
  t.equal(store.view('anna').phoneUnknown, undefined);
  store.expectTelephony('anna', 'trunk:pbx');
  store.setFeederReachable('trunk:pbx', false);
  t.equal(store.view('anna').phoneUnknown, true);
  store.setTeams('anna', { availability: 'Busy', activity: 'InACall', at: 5 });
  const v = store.view('anna');
  t.equal(v.phoneUnknown, undefined, 'a Teams call is known');
  t.equal(v.calls.length, 1);
});
