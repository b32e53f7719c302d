import t from 'tap';
import { parsePidf, buildPidf } from '../../src/bodies/index.js';
import { Directory } from '../../src/core/directory.js';
import { PresenceHub } from '../../src/core/presence-hub.js';
import { parsePresence } from '../../src/graph/presence-resource.js';
import { presenceDocument } from '../../src/simple/presence-package.js';

t.test('Teams status and out-of-office messages become console notes, with the person\'s language', async (t) => {
  const directory = new Directory(
    [
      { id: 'anna', displayName: 'Anna', extension: '1001', sipAors: ['sip:anna@example.com'], language: 'de-DE' },
      { id: 'ben', displayName: 'Ben', extension: '1002', sipAors: ['sip:ben@example.com'] },
    ],
    { domains: ['example.com'] },
  );
  const store = new PresenceHub(directory);
  store.setTeams('anna', { availability: 'Away', activity: 'OutOfOffice', statusMessage: 'Im Urlaub', outOfOffice: true, outOfOfficeMessage: 'Bis 14. Mai abwesend', at: 1 });
  t.same(store.view('anna').notes, [
    { text: 'Im Urlaub', lang: 'de-DE' },
    { text: 'Bis 14. Mai abwesend', lang: 'de-DE' },
  ]);
  const xml = buildPidf(presenceDocument(store.view('anna'), 'sip:anna@example.com', 'rfc'));
  t.match(xml, /<dm:note xml:lang="de-DE">Im Urlaub<\/dm:note><dm:note xml:lang="de-DE">Bis 14\. Mai abwesend<\/dm:note>/);
  t.same(parsePidf(xml).persons[0]?.notes, ['Im Urlaub', 'Bis 14. Mai abwesend']);

  store.setTeams('ben', { availability: 'Available', activity: 'Available', statusMessage: 'Desk 4', outOfOffice: false, outOfOfficeMessage: 'away text', at: 1 });
  t.same(store.view('ben').notes, [{ text: 'Desk 4' }], 'no language when unknown; no OOF text while not out of office');
  store.setTeams('ben', { availability: 'Available', activity: 'Available', at: 2 });
  t.equal(store.view('ben').notes, undefined);
});

t.test('Graph presence: the out-of-office message as plain text', async (t) => {
  const p = parsePresence(
    { id: 'U1', availability: 'Away', activity: 'OutOfOffice', outOfOfficeSettings: { isOutOfOffice: true, message: '<p>Back&nbsp;on <b>Monday</b></p>' } },
    5,
  );
  t.equal(p?.state.outOfOffice, true);
  t.equal(p?.state.outOfOfficeMessage, 'Back on Monday');
});
