import t from 'tap';
import { parseDialogInfo, parsePidf, parseXpidf } from '../../src/bodies/index.js';
import type { PresenceView } from '../../src/core/person-state.js';
import { dialogDocumentXml } from '../../src/simple/dialog-package.js';
import { presenceDocument, xpidfDocument } from '../../src/simple/presence-package.js';
import { buildPidf } from '../../src/bodies/index.js';

const unknown: PresenceView = {
  personId: 'anna',
  basic: 'open',
  activities: [],
  dnd: false,
  ringing: false,
  note: 'Phone status unknown',
  calls: [],
  phoneUnknown: true,
  revision: 3,
  changedAt: 0,
  source: 'telephony',
};

t.test('unknown renders without an idle claim', async (t) => {
  const entity = 'sip:1001@example.com';
  const asterisk = parseDialogInfo(dialogDocumentXml(unknown, entity, 4, { flavor: 'asterisk', extension: '1001' }));
  t.same(asterisk.dialogs, [], 'no terminated "idle" dialog for single-dialog watchers');
  const idleAsterisk = parseDialogInfo(dialogDocumentXml({ ...unknown, phoneUnknown: undefined } as PresenceView, entity, 4, { flavor: 'asterisk' }));
  t.equal(idleAsterisk.dialogs[0]?.state, 'terminated', 'whereas idle is claimed with a terminated dialog');
  const pidf = parsePidf(buildPidf(presenceDocument(unknown, entity, 'rfc')));
  t.same(pidf.tuples[0]?.notes, ['Phone status unknown']);
  t.same(pidf.persons[0]?.activities, []);
  const x = xpidfDocument(unknown, entity, '1001');
  t.same([x.status, x.substatus], ['closed', 'offline'], 'XPIDF: no online lamp');
  t.equal(parseXpidf(Buffer.from('<presence><presentity uri="a"/><atom id="1"><address uri="b"><status status="closed"/></address></atom></presence>')).substatus, 'offline');
});
