import t from 'tap';
import { Directory } from '../../src/core/directory.js';
import { PresenceHub } from '../../src/core/presence-hub.js';
import { configSchema } from '../../src/config/schema.js';

function setup() {
  const directory = new Directory(
    [
      { id: 'anna', displayName: 'Anna', extension: '1001', sipAors: ['sip:anna@example.com'] },
      { id: 'ben', displayName: 'Ben', extension: '1002', sipAors: ['sip:ben@example.com'] },
      { id: 'cleo', displayName: 'Cleo', extension: '1003', sipAors: ['sip:cleo@example.com'] },
    ],
    { domains: ['example.com'] },
  );
  const groups = new Map<string, readonly string[]>([
    ['anna', ['teams', 'trunk:pbx1']],
    ['ben', ['publish', 'trunk:pbx1', 'teams']],
  ]);
  return new PresenceHub(directory, { prefer: 'telephony', sourcePriority: (id) => groups.get(id) });
}

t.test('the group decides which source names the state; others keep the global rule', async (t) => {
  const store = setup();
  for (const id of ['anna', 'ben', 'cleo']) {
    store.setTelephony(id, { line: 'in-call', dnd: false, calls: [{ id: 'c', phase: 'confirmed' }], origin: 'trunk:pbx1', at: 1 }, 'trunk:pbx1');
    store.setTeams(id, { availability: 'Busy', activity: 'InAMeeting', at: 2 });
  }
  const anna = store.view('anna');
  t.equal(anna.source, 'teams', 'anna: Teams first');
  t.same(anna.activities.slice(0, 1), ['meeting']);
  const cleo = store.view('cleo');
  t.equal(cleo.source, 'telephony', 'cleo: global mapping.prefer (telephony)');
  t.equal(cleo.note, 'On the phone');
  t.same(store.sourcePriority('cleo'), ['telephony', 'teams', 'publish']);
  t.same(store.sourcePriority('anna'), ['teams', 'trunk:pbx1']);

  store.setSip('ben', { basic: 'open', activities: ['away'], note: 'Back at 3', origin: 'publish', at: 3 });
  const ben = store.view('ben');
  t.equal(ben.source, 'sip', 'ben: his PUBLISH wins over the trunk and Teams');
  t.equal(ben.note, 'Back at 3');
  t.equal(ben.activities[0], 'away');
  t.ok(ben.activities.includes('on-the-phone'), 'the call still shows (busy from any source shows)');
});

t.test('config: groups checked against users, one group per person', async (t) => {
  const users = [{ id: 'anna', displayName: 'Anna', extension: '1001' }, { id: 'ben', displayName: 'Ben', extension: '1002' }];
  const ok = configSchema.parse({ users, mapping: { groups: [{ name: 'desk', members: ['anna'], prefer: ['trunk:pbx1', 'teams'] }] } });
  t.same(ok.mapping.groups[0]!.prefer, ['trunk:pbx1', 'teams']);
  const bad = configSchema.safeParse({
    users,
    mapping: {
      groups: [
        { name: 'a', members: ['anna', 'zed'], prefer: ['teams'] },
        { name: 'b', members: ['anna'], prefer: ['pbx'] },
      ],
    },
  });
  t.equal(bad.success, false);
  const messages = bad.success ? [] : bad.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  t.ok(messages.some((m) => m.startsWith('mapping.groups.0.members.1: "zed" is not the id')), messages.join('\n'));
  t.ok(messages.some((m) => m.startsWith('mapping.groups.1.prefer.0: teams, publish, telephony')), messages.join('\n'));
});
