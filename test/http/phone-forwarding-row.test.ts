/** The admin API row carries the forwarding a person's desk phones set (for the diagnostics page's person details). */
import t from 'tap';
import { userRow } from '../../src/http/rows.js';
import { fakeSource, PEOPLE } from './fake-source.js';

t.test('phoneForwarding: each type as the phone set it, empty when none', async (t) => {
  const src = fakeSource();
  t.teardown(() => src.close());
  t.same(userRow(src, PEOPLE[0]!).phoneForwarding, [], 'no source: none');
  src.forwarding = (id) => (id === 'anna' ? [{ type: 'forwardImmediate', on: true, to: '2000', at: 5 }, { type: 'forwardBusy', on: false, ringCount: 3, at: 6 }] : []);
  t.same(userRow(src, PEOPLE[0]!).phoneForwarding, [
    { type: 'forwardImmediate', on: true, to: '2000', ringCount: null, at: 5 },
    { type: 'forwardBusy', on: false, to: null, ringCount: 3, at: 6 },
  ]);
  t.same(userRow(src, PEOPLE[1]!).phoneForwarding, []);
});
