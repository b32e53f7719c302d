import t from 'tap';
import { Directory } from '../../src/core/directory.js';
import { PRESENTING_AS_DND, sipMeaningOf, teamsTargetOf } from '../../src/core/mapping.js';
import type { TeamsState, TeamsTarget } from '../../src/core/person-state.js';
import { PresenceHub } from '../../src/core/presence-hub.js';

const teams = (availability: string, activity: string, at = 1): TeamsState => ({ availability, activity, at });

function setup(options: ConstructorParameters<typeof PresenceHub>[1] = {}) {
  let clock = 0;
  const dir = new Directory([{ id: 'anna', displayName: 'Anna', extension: '1001', sipAors: ['sip:anna@x'] }], {
    domains: ['x'],
  });
  const store = new PresenceHub(dir, { clock: { now: () => clock }, ...options });
  const targets: TeamsTarget[] = [];
  store.onTeamsTarget((_id, target) => targets.push(target));
  return { dir, store, targets, tick: (ms: number) => (clock += ms) };
}

t.test('Teams to SIP defaults (DESIGN.md)', async (t) => {
  t.same(sipMeaningOf(teams('Available', 'Available')).activities, []);
  t.same(sipMeaningOf(teams('Offline', 'OffWork')).activities, []);
  t.same(sipMeaningOf(teams('Away', 'BeRightBack')).activities, ['away']);
  t.same(sipMeaningOf(teams('Away', 'OutOfOffice')).activities, ['away']);
  t.same(sipMeaningOf(teams('Busy', 'Busy')).activities, ['busy']);
  t.equal(sipMeaningOf(teams('DoNotDisturb', 'UrgentInterruptionsOnly')).dnd, true);
  t.same(sipMeaningOf(teams('Busy', 'InAMeeting')).activities, ['meeting']);
  const call = sipMeaningOf(teams('Busy', 'InACall'));
  t.same(call.activities, ['on-the-phone']);
  t.equal(call.note, 'On the phone (Teams)');
  t.equal(call.call, true);
  t.equal(sipMeaningOf(teams('DoNotDisturb', 'Presenting')).call, true);
  t.equal(sipMeaningOf(teams('DoNotDisturb', 'Presenting'), PRESENTING_AS_DND).dnd, true);
  t.same(sipMeaningOf(teams('busy', 'inaconferencecall')).activities, ['on-the-phone'], 'case-insensitive');
  t.same(sipMeaningOf(teams('Away', 'SomethingNew')).activities, ['away'], 'unknown activity falls back to availability');
  t.same(sipMeaningOf(teams('Weird', 'Stranger')).activities, [], 'unknown everything is available, not a crash');
});

t.test('a Teams call lights BLF and shows on the phone', async (t) => {
  const { store } = setup();
  store.setTeams('anna', teams('Busy', 'InACall'));
  const v = store.view('anna');
  t.same(v.activities, ['on-the-phone']);
  t.equal(v.source, 'teams');
  t.equal(v.note, 'On the phone (Teams)');
  t.equal(v.calls.length, 1);
  t.equal(v.calls[0]!.phase, 'confirmed');
  t.equal(store.teamsTarget('anna').kind, 'clear', 'Teams state never becomes a Teams target');
});

t.test('SIP to Teams targets', async (t) => {
  t.same(teamsTargetOf({}), { kind: 'clear' });
  t.same(teamsTargetOf({ telephony: { line: 'ringing', dnd: false, calls: [], origin: 'x', at: 1 } }), {
    kind: 'set',
    availability: 'Busy',
    activity: 'InACall',
  });
  t.same(teamsTargetOf({ telephony: { line: 'on-hold', dnd: true, calls: [], origin: 'x', at: 1 } }).kind, 'set');
  t.same(teamsTargetOf({ telephony: { line: 'idle', dnd: true, calls: [], origin: 'x', at: 1 } }), {
    kind: 'set',
    availability: 'DoNotDisturb',
    activity: 'Presenting',
    preferredDnd: true,
  });
  t.same(teamsTargetOf({ sip: { basic: 'open', activities: ['vacation'], origin: 'p', at: 1 } }), {
    kind: 'set',
    availability: 'Away',
    activity: 'Away',
  });
  t.same(teamsTargetOf({ sip: { basic: 'open', activities: ['meeting'], origin: 'p', at: 1 } }), { kind: 'clear' });
});

t.test('target listeners fire once per change', async (t) => {
  const { store, targets } = setup();
  const call = { line: 'in-call' as const, dnd: false, calls: [{ id: 'c', phase: 'confirmed' as const }], origin: 'pbx', at: 1 };
  store.setTelephony('anna', call);
  store.setTelephony('anna', { ...call, at: 2 });
  t.equal(targets.length, 1);
  store.setTelephony('anna', { line: 'idle', dnd: false, calls: [], origin: 'pbx', at: 3 });
  t.equal(targets.length, 2);
  t.equal(targets[1]!.kind, 'clear');
});

t.test('the gateway does not echo its own Teams session back to SIP', async (t) => {
  const { store, tick } = setup({ echoWindowMs: 60_000 });
  store.setTelephony('anna', { line: 'in-call', dnd: false, calls: [{ id: 'c', phase: 'confirmed' }], origin: 'pbx', at: 1 });
  const during = store.view('anna');
  store.setTeams('anna', teams('Busy', 'InACall'));
  t.equal(store.view('anna').source, 'telephony', 'our own Busy/InACall read back is ignored');
  t.equal(store.view('anna').revision, during.revision, 'and changes nothing for watchers');

  // The PBX call ends; Graph still reports our session for a while.
  store.setTelephony('anna', { line: 'idle', dnd: false, calls: [], origin: 'pbx', at: 2 });
  tick(10_000);
  store.setTeams('anna', teams('Busy', 'InACall', 3));
  t.same(store.view('anna').activities, [], 'a late echo after the call is not a Teams call');

  // Past the window, Busy/InACall from Teams is a real Teams call.
  tick(60_000);
  store.setTeams('anna', teams('Busy', 'InACall', 4));
  t.same(store.view('anna').activities, ['on-the-phone']);
  t.equal(store.view('anna').source, 'teams');
});

t.test('Teams and the PBX disagree: busy from either shows; the preferred names it', async (t) => {
  const a = setup();
  a.store.setTeams('anna', teams('Busy', 'InAMeeting'));
  a.store.setTelephony('anna', { line: 'in-call', dnd: false, calls: [{ id: 'c', phase: 'confirmed' }], origin: 'pbx', at: 1 });
  t.same(a.store.view('anna').activities, ['on-the-phone', 'meeting']);
  t.equal(a.store.view('anna').note, 'On the phone');
  const b = setup({ prefer: 'teams' });
  b.store.setTeams('anna', teams('Busy', 'InAMeeting'));
  b.store.setTelephony('anna', { line: 'in-call', dnd: false, calls: [{ id: 'c', phase: 'confirmed' }], origin: 'pbx', at: 1 });
  t.same(b.store.view('anna').activities, ['meeting', 'on-the-phone']);
  t.equal(b.store.view('anna').note, 'In a meeting (Teams)');
  t.equal(b.store.view('anna').source, 'teams');
});

t.test('Teams identities in the directory', async (t) => {
  const { dir } = setup();
  dir.setTeamsIdentity('anna', { userId: 'AAAA-1', upn: 'anna@contoso.example' });
  t.equal(dir.findByTeamsUserId('aaaa-1')?.id, 'anna');
  dir.setTeamsIdentity('anna', { userId: 'BBBB-2' });
  t.equal(dir.findByTeamsUserId('AAAA-1'), undefined, 'a remap forgets the old id');
  t.equal(dir.findByTeamsUserId('bbbb-2')?.id, 'anna');
  t.throws(() => dir.setTeamsIdentity('nobody', { userId: 'x' }), /unknown person/);
  dir.clearTeamsIdentity('anna');
  t.equal(dir.findByTeamsUserId('bbbb-2'), undefined, 'cleared');
  t.equal(dir.get('anna')!.teams, undefined);
});
