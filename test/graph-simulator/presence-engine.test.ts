import t from 'tap';
import { ManualClock, RealClock } from '../../src/graph-simulator/clock.js';
import { PresenceEngine } from '../../src/graph-simulator/presence-engine.js';
import { parseIsoDuration } from '../../src/graph-simulator/presence-rules.js';

const MIN = 60_000;
const U = 'a1000000-0000-4000-8000-000000000001';

function engine() {
  const clock = new ManualClock(Date.UTC(2025, 0, 6, 9, 0, 0));
  const presence = new PresenceEngine(clock);
  const changes: Array<{ availability: string; activity: string; seq: string }> = [];
  presence.onChange((_id, p) => changes.push({ availability: p.availability, activity: p.activity, seq: p.sequenceNumber }));
  const state = () => {
    const p = presence.get(U);
    return `${p.availability}/${p.activity}`;
  };
  return { clock, presence, changes, state };
}

t.test('no session is Offline; sessions aggregate DoNotDisturb > Busy > Available > Away', async (t) => {
  const { presence, state } = engine();
  t.equal(state(), 'Offline/Offline');
  presence.setSession(U, 'app-a', 'app', 'Away', 'Away', 60 * MIN);
  t.equal(state(), 'Away/Away');
  presence.setSession(U, 'client', 'client', 'Available', 'Available', null);
  t.equal(state(), 'Available/Available');
  presence.setSession(U, 'app-b', 'app', 'Busy', 'InACall', 60 * MIN);
  t.equal(state(), 'Busy/InACall');
  presence.setSession(U, 'app-c', 'app', 'DoNotDisturb', 'Presenting', 60 * MIN);
  t.equal(state(), 'DoNotDisturb/Presenting');
  t.ok(presence.clearSession(U, 'app-c'));
  t.equal(state(), 'Busy/InACall');
  t.notOk(presence.clearSession(U, 'app-c'), 'clearing a missing session reports false');
});

t.test('user preferred presence wins, but only while a session exists', async (t) => {
  const { presence, state } = engine();
  presence.setPreferred(U, 'DoNotDisturb', 'DoNotDisturb', 24 * 60 * MIN);
  t.equal(state(), 'Offline/Offline', 'no session: preferred does not show');
  presence.setSession(U, 'app', 'app', 'Busy', 'InACall', 60 * MIN);
  t.equal(state(), 'DoNotDisturb/DoNotDisturb');
  presence.setPreferred(U, 'Available', 'Available', 60 * MIN);
  t.equal(state(), 'Available/Available', 'preferred overrides a busier session');
  presence.clearPreferred(U);
  t.equal(state(), 'Busy/InACall');
});

t.test('an Available app session fades to Available/AvailableInactive at 5 min and Away at 10 unless refreshed', async (t) => {
  const { clock, presence, changes, state } = engine();
  presence.setSession(U, 'app', 'app', 'Available', 'Available', 60 * MIN);
  t.equal(state(), 'Available/Available');
  clock.advance(4 * MIN);
  t.equal(state(), 'Available/Available');
  clock.advance(1 * MIN);
  t.equal(state(), 'Available/AvailableInactive');
  clock.advance(5 * MIN);
  t.equal(state(), 'Away/Away');
  presence.setSession(U, 'app', 'app', 'Available', 'Available', 60 * MIN);
  t.equal(state(), 'Available/Available', 'a refresh restores Available');
  t.same(
    changes.map((c) => `${c.availability}/${c.activity}`),
    ['Available/Available', 'Available/AvailableInactive', 'Away/Away', 'Available/Available'],
    'each stage was reported once, by the timer',
  );
});

t.test('Busy does not fade; an expired session drops out; sequence numbers grow and sort', async (t) => {
  const { clock, presence, changes, state } = engine();
  presence.setSession(U, 'client', 'client', 'Available', 'Available', null);
  presence.setSession(U, 'app', 'app', 'Busy', 'InACall', 5 * MIN);
  clock.advance(4 * MIN);
  t.equal(state(), 'Busy/InACall');
  const seqBefore = presence.get(U).sequenceNumber;
  presence.setSession(U, 'app', 'app', 'Busy', 'InACall', 5 * MIN);
  t.equal(presence.get(U).sequenceNumber, seqBefore, 'a refresh without change keeps the sequence number');
  clock.advance(5 * MIN);
  t.equal(state(), 'Available/Available', 'the app session expired');
  presence.clearSession(U, 'client');
  t.equal(state(), 'Offline/Offline');
  const seqs = changes.map((c) => c.seq);
  t.same([...seqs].sort(), seqs, 'lexical order is change order');
  t.equal(new Set(seqs).size, seqs.length, 'every change has its own sequence number');
});

t.test('status message and out of office count as changes; OOF shows as activity OutOfOffice', async (t) => {
  const { clock, presence, changes } = engine();
  presence.setSession(U, 'client', 'client', 'Available', 'Available', null);
  presence.setOutOfOffice(U, true, 'Back Monday');
  t.equal(presence.get(U).activity, 'OutOfOffice');
  t.same(presence.get(U).outOfOfficeSettings, { message: 'Back Monday', isOutOfOffice: true });
  presence.setStatusMessage(U, 'At the dentist', 'text', clock.now() + 30 * MIN);
  t.equal(presence.get(U).statusMessage?.message.content, 'At the dentist');
  clock.advance(31 * MIN);
  t.equal(presence.get(U).statusMessage, null, 'the message expired');
  t.equal(changes.length, 4);
});

t.test('ISO 8601 durations', async (t) => {
  t.equal(parseIsoDuration('PT5M'), 5 * MIN);
  t.equal(parseIsoDuration('PT4H'), 240 * MIN);
  t.equal(parseIsoDuration('P1DT30M'), 24 * 60 * MIN + 30 * MIN);
  t.equal(parseIsoDuration('PT90S'), 90_000);
  t.equal(parseIsoDuration('5 minutes'), undefined);
  t.equal(parseIsoDuration('PT'), undefined);
  t.equal(parseIsoDuration('P'), undefined);
});

t.test('clocks: manual runs tasks in order and honours cancel; real fires by itself', async (t) => {
  const clock = new ManualClock(1000);
  const seen: string[] = [];
  clock.schedule(3000, () => seen.push(`c@${clock.now()}`));
  clock.schedule(2000, () => {
    seen.push(`a@${clock.now()}`);
    clock.after(500, () => seen.push(`b@${clock.now()}`));
  });
  const cancelled = clock.schedule(2200, () => seen.push('never'));
  cancelled.cancel();
  t.equal(clock.advance(5000), 3);
  t.same(seen, ['a@2000', 'b@2500', 'c@3000']);
  t.equal(clock.now(), 6000);

  const real = new RealClock();
  // the clock's timer is unref'd (it never holds the process open): keep the test alive meanwhile
  const keepAlive = setTimeout(() => {}, 2000);
  const fired = await new Promise<number>((resolve) => {
    const start = Date.now();
    real.after(20, () => resolve(Date.now() - start));
  });
  clearTimeout(keepAlive);
  t.ok(fired >= 19, 'did not fire early');
  real.dispose();
});
