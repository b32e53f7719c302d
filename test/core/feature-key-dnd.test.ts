import t from 'tap';
import { Directory } from '../../src/core/directory.js';
import { PresenceHub } from '../../src/core/presence-hub.js';

// Who owns DND when the desk phone (its feature key) and Teams both set it: the last writer wins.
function setup() {
  const directory = new Directory([{ id: 'anna', displayName: 'Anna', extension: '1001', sipAors: ['sip:anna@example.com'] }], { domains: ['example.com'] });
  return new PresenceHub(directory);
}
const teams = (availability: string, activity: string, at: number) => ({ availability, activity, at });
const DND_TARGET = { kind: 'set', availability: 'DoNotDisturb', activity: 'Presenting', preferredDnd: true };

t.test('phone DND on, Teams reads it back, then the person turns DND off in Teams: the phone DND is cleared', async (t) => {
  const store = setup();
  store.setFeatureKeyDnd('anna', true);
  t.same(store.teamsTarget('anna'), DND_TARGET, 'the Graph writer is asked for DND');
  // a reading that lags behind the writer is not a transition: it clears nothing
  store.setTeams('anna', teams('Available', 'Available', 1));
  t.equal(store.view('anna').dnd, true, 'a stale Available reading does not undo the phone');
  store.setTeams('anna', teams('DoNotDisturb', 'Presenting', 2));
  t.equal(store.view('anna').dnd, true, 'our own session read back');
  store.setTeams('anna', teams('Available', 'Available', 3));
  t.equal(store.view('anna').dnd, false, 'Teams DND off wins: the phone light goes out');
  t.equal(store.state('anna').telephony, undefined, 'the feature-key DND is gone');
  t.same(store.teamsTarget('anna'), { kind: 'clear', personChose: true }, 'the writer takes its DND session back, and the person chose');
});

t.test('Teams DND off after a user-set Teams DND also clears a phone DND pressed meanwhile', async (t) => {
  const store = setup();
  store.setTeams('anna', teams('DoNotDisturb', 'DoNotDisturb', 1));
  store.setFeatureKeyDnd('anna', true);
  store.setTeams('anna', teams('Available', 'Available', 2));
  t.equal(store.view('anna').dnd, false);
  t.same(store.teamsTarget('anna'), { kind: 'clear', personChose: true });
});

t.test('a call session the gateway set, read back, does not clear the phone DND', async (t) => {
  const store = setup();
  store.setFeatureKeyDnd('anna', true);
  store.setTeams('anna', teams('DoNotDisturb', 'Presenting', 1));
  store.setTelephony('anna', { line: 'in-call', dnd: false, calls: [{ id: 'c', phase: 'confirmed' }], origin: 'trunk:pbx', at: 2 }, 'trunk:pbx');
  t.same(store.teamsTarget('anna'), { kind: 'set', availability: 'Busy', activity: 'InACall' });
  store.setTeams('anna', teams('Busy', 'InACall', 3));
  t.equal(store.view('anna').dnd, true, 'the call echo is not the person turning DND off');
  store.setTelephony('anna', undefined, 'trunk:pbx');
  t.same(store.teamsTarget('anna'), DND_TARGET, 'after the call the phone DND is still asked of Teams');
});

t.test('phone DND off while the person set DND in Teams: overruled for SIP watchers until Teams changes', async (t) => {
  const store = setup();
  store.setTeams('anna', teams('DoNotDisturb', 'DoNotDisturb', 1));
  t.equal(store.view('anna').dnd, true, 'Teams DND lights the phone');
  store.setFeatureKeyDnd('anna', false);
  t.equal(store.view('anna').dnd, false, 'the phone was the last writer');
  store.setTeams('anna', teams('DoNotDisturb', 'DoNotDisturb', 2));
  t.equal(store.view('anna').dnd, false, 'the same reading again is not a new Teams choice');
  store.setTeams('anna', teams('Available', 'Available', 3));
  store.setTeams('anna', teams('DoNotDisturb', 'DoNotDisturb', 4));
  t.equal(store.view('anna').dnd, true, 'DND set in Teams again shows again');
});

t.test('phone DND off after phone DND on: Teams target cleared', async (t) => {
  const store = setup();
  store.setFeatureKeyDnd('anna', true);
  store.setTeams('anna', teams('DoNotDisturb', 'Presenting', 1));
  store.setFeatureKeyDnd('anna', false);
  t.same(store.teamsTarget('anna'), { kind: 'clear' });
  t.equal(store.view('anna').dnd, false);
});
