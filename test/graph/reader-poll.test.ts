import t from 'tap';
import type { Person } from '../../src/core/directory.js';
import { createGraph } from '../../src/graph/index.js';
import { canonicalPresenceValue, compareSequence, parsePresence } from '../../src/graph/presence-resource.js';
import { PresenceSink } from '../../src/graph/presence-sink.js';
import { silentLogger } from '../../src/util/logger.js';
import { ANNA, BEN, core, env, mapDemo, people } from './helpers.js';

t.test('presence resources: case-insensitive values, unknown kept, sequence order', async (t) => {
  t.equal(canonicalPresenceValue('inacall'), 'InACall');
  t.equal(canonicalPresenceValue('DONOTDISTURB'), 'DoNotDisturb');
  t.equal(canonicalPresenceValue('FocusMode'), 'FocusMode', 'unknown values are kept');
  const p = parsePresence(
    {
      id: ANNA.toUpperCase(),
      availability: 'busy',
      activity: 'inaconferencecall',
      statusMessage: { message: { content: ' Back at 3 ', contentType: 'text' } },
      outOfOfficeSettings: { isOutOfOffice: true },
      sequenceNumber: 'C0FFEE',
    },
    42,
  );
  t.same(p, { userId: ANNA, state: { availability: 'Busy', activity: 'InAConferenceCall', statusMessage: 'Back at 3', outOfOffice: true, sequenceNumber: 'C0FFEE', at: 42 } });
  t.equal(parsePresence({ availability: 'Busy' }, 0), undefined, 'no id: not a presence');
  t.equal(parsePresence('junk', 0), undefined);
  t.ok(compareSequence('0000000000000010', '000000000000000F') > 0);
  t.ok(compareSequence('10', '9') < 0, 'compared as strings (Graph: lexicographically sortable): "10" sorts before "9"');
  t.ok(compareSequence('B', 'AZ') > 0, 'no length rule');
  t.equal(compareSequence('ABC', 'ABC'), 0);
});

t.test('the sink drops duplicates and out-of-order readings by sequence number', async (t) => {
  const { directory, store } = core();
  mapDemo(directory);
  const seen: string[] = [];
  store.onChange((personId, view) => seen.push(`${personId}:${view.activities.join('+')}`));
  const sink = new PresenceSink(directory, store, silentLogger());
  const reading = (activity: string, availability: string, seq: string) => ({ availability, activity, sequenceNumber: seq, at: 1 });
  t.equal(sink.offer(ANNA, reading('InACall', 'Busy', '0000000000000002')), true);
  t.equal(sink.offer(ANNA, reading('InACall', 'Busy', '0000000000000002')), false, 'a duplicate');
  t.equal(sink.offer(ANNA, reading('Available', 'Available', '0000000000000001')), false, 'older than what we have');
  t.equal(store.state('anna').teams?.activity, 'InACall', 'the newer reading stands');
  t.equal(sink.offer(ANNA, reading('Available', 'Available', '0000000000000003')), true);
  t.equal(store.state('anna').teams?.activity, 'Available');
  t.equal(sink.offer('ffffffff-0000-4000-8000-000000000000', reading('Busy', 'Busy', '1')), false, 'nobody is mapped to it');
  t.same(sink.status(), { applied: 2, stale: 2, unmapped: 1 });
  t.same(seen, ['anna:on-the-phone', 'anna:'], 'the store heard exactly the two real changes');
});

t.test('1,000 more people: the user listing pages, polling reads 650 users a call', async (t) => {
  const e = await env();
  t.teardown(() => e.close());
  // 1,000 more people on both sides: two pages of users, two getPresencesByUserId calls a poll
  const extra: Person[] = [];
  for (let i = 0; i < 1000; i++) {
    const nick = `p${i}`;
    const u = e.sim.control.addUser({ displayName: `Person ${i}`, userPrincipalName: `${nick}@contoso.example`, mailNickname: nick });
    extra.push({ id: nick, displayName: u.displayName, sipAors: [`sip:${nick}@gw.example`] });
  }
  const big = core([...people(), ...extra]);
  const graph = createGraph({ config: e.config({ writer: { enabled: false } }), directory: big.directory, store: big.store, logger: silentLogger() });
  t.teardown(() => graph.stop());
  const calls = () => e.sim.control.counters().requests['POST /v1.0/communications/getPresencesByUserId 200'] ?? 0;

  await graph.start();
  t.equal(e.sim.control.counters().requests['GET /v1.0/users 200'], 2, '$top=999, then the nextLink');
  t.equal(graph.status().directory.matched, 1005);
  t.equal(graph.status().reader.users, 1005);
  t.equal(calls(), 2, 'the first full read: 1,005 users in two calls');
  t.equal(big.store.state('anna').teams?.availability, 'Offline', 'signed out of Teams');

  e.sim.control.call('anna');
  e.sim.control.dnd('ben');
  await graph.pollNow();
  t.equal(calls(), 4);
  const anna = big.store.state('anna').teams;
  t.equal(anna?.availability, 'Busy');
  t.equal(anna?.activity, 'InACall');
  t.same(big.store.view('anna').activities, ['on-the-phone'], 'a Teams call shows as on-the-phone to SIP watchers');
  t.equal(big.store.view('anna').source, 'teams');
  t.equal(big.store.state('ben').teams?.availability, 'DoNotDisturb');
  t.equal(big.store.view('ben').dnd, true);
  const s = graph.status().reader;
  t.equal(s.polled, 1005, 'no subscriptions: everyone is polled');
  t.equal(s.sink.applied, 1005 + 2);
  t.equal(big.directory.findByTeamsUserId(BEN)?.id, 'ben');
});

t.test('stale by sequence number N times in a row while the content changes: taken as a reset, and logged', async (t) => {
  const { directory, store } = core();
  mapDemo(directory);
  const warnings: string[] = [];
  const logger = { ...silentLogger(), warn: (_o: unknown, msg?: string) => void warnings.push(String(msg)) } as unknown as ReturnType<typeof silentLogger>;
  const sink = new PresenceSink(directory, store, logger, 3);
  const reading = (activity: string, availability: string, seq: string) => ({ availability, activity, sequenceNumber: seq, at: 1 });
  t.equal(sink.offer(ANNA, reading('InACall', 'Busy', '0000000000000900')), true);
  // Graph's stamps start again from a low value; the person really is Available now
  t.equal(sink.offer(ANNA, reading('Available', 'Available', '0000000000000001')), false, 'first stale reading: dropped');
  t.equal(sink.offer(ANNA, reading('Available', 'Available', '0000000000000002')), false, 'second: dropped');
  t.equal(sink.offer(ANNA, reading('Available', 'Available', '0000000000000003')), true, 'third in a row: accepted');
  t.equal(store.state('anna').teams?.activity, 'Available');
  t.same(warnings, ['graph: presence sequence number went back; accepting the reading (stamps can reset)']);
  t.equal(sink.status().resets, 1);
  t.equal(sink.offer(ANNA, reading('Busy', 'Busy', '0000000000000004')), true, 'newer stamps flow again from the new base');
  t.equal(sink.offer(ANNA, reading('Available', 'Available', '0000000000000002')), false, 'an old reading is stale again');
  t.equal(sink.offer(ANNA, reading('Busy', 'Busy', '0000000000000001')), false, 'a stale copy of what we have breaks the run');
  t.equal(sink.offer(ANNA, reading('Available', 'Available', '0000000000000002')), false, 'so this counts from one again');
});
