import t from 'tap';
import { Directory } from '../../src/core/directory.js';
import { ChangeHistory } from '../../src/core/history.js';
import { PresenceHub } from '../../src/core/presence-hub.js';

function setup(size: number) {
  let now = 0;
  const directory = new Directory(
    [
      { id: 'anna', displayName: 'Anna', sipAors: ['sip:anna@x.test'] },
      { id: 'ben', displayName: 'Ben', sipAors: ['sip:ben@x.test'] },
    ],
    { domains: ['x.test'] },
  );
  const store = new PresenceHub(directory, { clock: { now: () => now } });
  const history = new ChangeHistory(store, { size, clock: { now: () => now } });
  return { store, history, tick: (ms: number) => (now = ms) };
}

t.test('a ring per person, oldest first, capped at size', async (t) => {
  const { store, history, tick } = setup(3);
  t.same(history.entries('anna'), [], 'nothing yet');
  t.equal(history.last('anna'), undefined);
  const acts = ['Busy', 'Away', 'Available', 'DoNotDisturb', 'Busy'];
  acts.forEach((a, i) => {
    tick(1000 * (i + 1));
    store.setTeams('anna', { availability: a, activity: a, at: 1000 * (i + 1) });
  });
  const e = history.entries('anna');
  t.equal(e.length, 3);
  t.same(e.map((x) => x.at), [3000, 4000, 5000], 'the last three, oldest first');
  t.same(e.map((x) => x.view.revision), [3, 4, 5]);
  t.equal(history.last('anna')?.at, 5000);
  t.same(history.entries('ben'), [], 'another person is separate');
});

t.test('the cause is the source that moved, with its origin', async (t) => {
  const { store, history, tick } = setup(10);
  tick(1);
  store.setTeams('anna', { availability: 'Away', activity: 'Away', at: 1 });
  tick(2);
  store.setTelephony('anna', { line: 'ringing', dnd: false, calls: [], origin: 'trunk:pbx1', at: 2 });
  tick(3);
  store.setSip('anna', { basic: 'closed', activities: [], origin: 'publish:etag1', at: 3 });
  tick(4);
  store.setTelephony('anna', undefined);
  tick(5);
  store.setTeams('anna', undefined);
  t.same(
    history.entries('anna').map((x) => x.source),
    ['teams', 'telephony (trunk:pbx1)', 'sip (publish:etag1)', 'telephony (cleared)', 'teams (cleared)'],
  );
  history.close();
  tick(6);
  store.setTeams('anna', { availability: 'Busy', activity: 'Busy', at: 6 });
  t.equal(history.entries('anna').length, 5, 'closed: no more recording');
});
