import { readFileSync } from 'node:fs';
import t from 'tap';
import { NS_CISCO_RPID, NS_DATA_MODEL, NS_PIDF, NS_RPID } from '../../src/bodies/namespaces.js';
import { PIDF_CONTENT_TYPES, buildPidf, parsePidf, type PidfDocument } from '../../src/bodies/pidf.js';
import { childElement, parseXml } from '../../src/bodies/xml.js';
import { statusOf } from './status-of.js';

function fixture(name: string): Buffer {
  return readFileSync(new URL(`../../sip-fixtures/bodies/${name}`, import.meta.url));
}

t.test('content types', async (t) => {
  t.same([...PIDF_CONTENT_TYPES], ['application/pidf+xml', 'application/cpim-pidf+xml']);
});

t.test('RFC 3863 style minimal document', async (t) => {
  const doc = parsePidf(fixture('pidf-minimal.xml'));
  t.same(doc, {
    entity: 'pres:carol@atlanta.example.net',
    tuples: [
      {
        id: 'c7x1',
        basic: 'open',
        contact: 'sip:carol@desk.atlanta.example.net',
        contactPriority: 0.5,
        timestamp: '2024-05-02T09:15:00Z',
        notes: [],
        activities: [],
      },
    ],
    persons: [],
    notes: [],
  });
});

t.test('RFC 4480 person with several activities, a note, arbitrary prefixes', async (t) => {
  const doc = parsePidf(fixture('pidf-rpid-person.xml'));
  t.equal(doc.entity, 'sip:dave@biloxi.example.org');
  t.same(doc.notes, ['Back after lunch']);
  t.equal(doc.tuples.length, 1);
  t.equal(doc.tuples[0]!.basic, 'open', 'OPEN read case-insensitively');
  t.same(doc.tuples[0]!.notes, ['Desk phone']);
  t.equal(doc.persons.length, 1);
  const p = doc.persons[0]!;
  t.equal(p.id, 'dave');
  t.same(p.activities, [
    { name: 'meeting', ns: 'rpid' },
    { name: 'appointment', ns: 'rpid' },
    { name: 'other', ns: 'rpid', text: 'Customer visit' },
    { name: 'lunch-break-extended', ns: 'rpid' },
  ], 'activities in order, rpid:note inside activities skipped, unknown name kept');
  t.same(p.notes, ['In a meeting & then lunch \u2013 call my mobile']);
  t.equal(p.userInput, 'idle');
  t.equal(p.timestamp, '2024-05-02T12:01:00Z');
});

t.test('CUCM documents (status:rpid namespace, cmp- tuple ids)', async (t) => {
  const idle = parsePidf(fixture('pidf-cucm-idle.xml'));
  t.equal(idle.tuples[0]!.id, 'cmp-8001-162');
  t.equal(idle.tuples[0]!.contactPriority, 0.8);
  t.equal(idle.persons.length, 1);
  t.same(idle.persons[0]!.activities, [], 'empty activities element = idle');
  t.equal(idle.persons[0]!.id, '', 'person without id is accepted');

  const ringing = parsePidf(fixture('pidf-cucm-ringing.xml'));
  t.same(ringing.persons[0]!.activities, [{ name: 'alerting', ns: 'cisco' }]);

  const busy = parsePidf(fixture('pidf-cucm-on-the-phone.xml'));
  t.same(busy.persons[0]!.activities, [{ name: 'on-the-phone', ns: 'rpid' }], 'status:rpid read as rpid');
  t.equal(busy.tuples[0]!.basic, 'open');
});

t.test('Cisco phone DND PUBLISH', async (t) => {
  const doc = parsePidf(fixture('pidf-cisco-dnd-publish.xml'));
  t.equal(doc.entity, 'sip:2042@10.20.0.5');
  t.same(doc.persons[0]!.activities, [{ name: 'dnd', ns: 'cisco' }]);
  t.equal(doc.tuples[0]!.basic, 'open');
});

t.test('old-style activities inside tuples', async (t) => {
  const doc = parsePidf(fixture('pidf-tuple-activity.xml'));
  t.equal(doc.persons.length, 0);
  const [a, b] = doc.tuples;
  t.equal(a!.basic, 'closed', 'Closed read case-insensitively');
  t.same(a!.activities, [{ name: 'away', ns: 'rpid' }], 'activities inside status');
  t.same(a!.notes, ['Away']);
  t.same(b!.activities, [
    { name: 'busy', ns: 'rpid' },
    { name: 'ooo', ns: 'urn:example:vendor:presence' },
  ], 'activities directly in tuple, foreign namespace kept as URI');
});

t.test('lenient details', async (t) => {
  const doc = parsePidf(
    `<presence xmlns="${NS_PIDF}" entity=" sip:a@b ">` +
      '<tuple id="t"><status><basic>maybe</basic></status><contact priority="7">sip:x</contact><note>  </note></tuple>' +
      '<unknown-element/><note>top</note></presence>',
  );
  t.equal(doc.entity, 'sip:a@b', 'entity trimmed');
  t.equal(doc.tuples[0]!.basic, undefined, 'unknown basic value dropped');
  t.equal(doc.tuples[0]!.contact, 'sip:x');
  t.equal(doc.tuples[0]!.contactPriority, undefined, 'out-of-range priority dropped');
  t.same(doc.tuples[0]!.notes, [], 'blank note dropped');
  t.same(doc.notes, ['top']);
  const old = parsePidf('<presence xmlns="urn:ietf:params:xml:ns:cpim-pidf" entity="sip:o@b"><tuple id="1"/></presence>');
  t.equal(old.tuples[0]!.id, '1', 'legacy cpim-pidf namespace accepted');
});

t.test('refused documents', async (t) => {
  t.equal(statusOf(() => parsePidf(fixture('refused-billion-laughs.xml'))), 400, 'billion laughs');
  t.equal(statusOf(() => parsePidf(fixture('refused-xxe.xml'))), 400, 'external entity');
  t.equal(statusOf(() => parsePidf(fixture('refused-missing-entity.xml'))), 400, 'missing entity');
  t.equal(statusOf(() => parsePidf(fixture('refused-tuple-no-id.xml'))), 400, 'tuple without id');
  t.equal(statusOf(() => parsePidf(fixture('refused-not-xml.txt'))), 400, 'not XML');
  t.equal(statusOf(() => parsePidf(fixture('refused-unclosed.xml'))), 400, 'unclosed element');
  t.equal(statusOf(() => parsePidf(fixture('refused-wrong-root.xml'))), 415, 'wrong root');
  t.equal(statusOf(() => parsePidf(fixture('dialog-asterisk-inuse.xml'))), 415, 'dialog-info is not PIDF');
  t.equal(statusOf(() => parsePidf('<presence entity="sip:a@b"/>')), 415, 'presence in no namespace');
  const padded = `<presence xmlns="${NS_PIDF}" entity="sip:a@b"><note>${'x'.repeat(70000)}</note></presence>`;
  t.equal(statusOf(() => parsePidf(padded)), 413, 'oversize, default limit');
  t.equal(statusOf(() => parsePidf(fixture('pidf-minimal.xml'), { maxBytes: 100 })), 413, 'oversize, caller limit');
});

const FULL: PidfDocument = {
  entity: 'sip:o\'brien&co@example.com',
  tuples: [
    {
      id: 'pg-1',
      basic: 'closed',
      contact: 'sip:obrien@example.com;transport=tcp',
      contactPriority: 0.25,
      notes: ['Desk <3>', 'second'],
      timestamp: '2024-05-02T10:00:00Z',
      activities: [{ name: 'away', ns: 'rpid' }],
    },
    { id: 'pg-2', notes: [], activities: [] },
  ],
  persons: [
    {
      id: 'obrien',
      activities: [
        { name: 'on-the-phone', ns: 'rpid' },
        { name: 'other', ns: 'rpid', text: 'Teams & "friends"' },
        { name: 'dnd', ns: 'cisco' },
        { name: 'focus', ns: 'urn:example:vendor' },
      ],
      notes: ['On the phone (Teams)'],
      userInput: 'active',
      timestamp: '2024-05-02T10:00:01Z',
    },
  ],
  notes: ['document note é'],
};

t.test('build → parse round trip, both flavors', async (t) => {
  for (const flavor of ['rfc', 'cisco'] as const) {
    const xml = buildPidf(FULL, { flavor });
    t.same(parsePidf(xml), FULL, `${flavor} round trip`);
  }
  const minimal: PidfDocument = { entity: 'sip:a@b', tuples: [], persons: [], notes: [] };
  t.same(parsePidf(buildPidf(minimal)), minimal, 'empty document round trip');
});

t.test('built document structure follows the schemas', async (t) => {
  const xml = buildPidf(FULL);
  t.match(xml, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<presence /);
  const root = parseXml(xml);
  t.same(root.children.map((c) => `${c.ns} ${c.name}`), [
    `${NS_PIDF} tuple`,
    `${NS_PIDF} tuple`,
    `${NS_PIDF} note`,
    `${NS_DATA_MODEL} person`,
  ], 'tuples, notes, then persons');
  const tuple = root.children[0]!;
  t.same(tuple.children.map((c) => c.name), ['status', 'activities', 'contact', 'note', 'note', 'timestamp']);
  const person = childElement(root, NS_DATA_MODEL, 'person')!;
  t.same(person.children.map((c) => c.name), ['activities', 'user-input', 'note', 'timestamp']);
  const activities = childElement(person, NS_RPID, 'activities')!;
  t.same(activities.children.map((c) => [c.ns, c.name]), [
    [NS_RPID, 'on-the-phone'],
    [NS_RPID, 'other'],
    [NS_CISCO_RPID, 'dnd'],
    ['urn:example:vendor', 'focus'],
  ]);
  t.notOk(buildPidf(minimalWith([])).includes('activities'), 'rfc flavor omits empty activities');
  t.notOk(buildPidf(minimalWith([])).includes(NS_CISCO_RPID), 'rfc flavor without Cisco activities has no ce namespace');
  t.ok(buildPidf(minimalWith([{ name: 'alerting', ns: 'cisco' }])).includes(`xmlns:ce="${NS_CISCO_RPID}"`), 'rfc flavor declares ce when used');
  t.notOk(buildPidf(FULL).includes('<status/>'), 'no self-closed status');
  t.notOk(buildPidf(minimal2()).includes('<contact'), 'absent contact omitted');
});

function minimalWith(activities: PidfDocument['persons'][number]['activities']): PidfDocument {
  return { entity: 'sip:8001@cucm', tuples: [], persons: [{ id: 'p1', activities, notes: [] }], notes: [] };
}

function minimal2(): PidfDocument {
  return { entity: 'sip:a@b', tuples: [{ id: 't', basic: 'open', notes: [], activities: [] }], persons: [], notes: [] };
}

t.test('Cisco flavor: ce namespace, ce:alerting / ce:dnd, empty activities when idle', async (t) => {
  const idle = buildPidf(minimalWith([]), { flavor: 'cisco' });
  t.ok(idle.includes(`xmlns:ce="${NS_CISCO_RPID}"`));
  t.ok(idle.includes('<rpid:activities/>'), 'empty activities element written');
  t.same(parsePidf(idle).persons[0]!.activities, []);

  const ringing = buildPidf(minimalWith([{ name: 'alerting', ns: 'cisco' }]), { flavor: 'cisco' });
  t.ok(ringing.includes('<ce:alerting/>'));
  t.same(parsePidf(ringing).persons[0]!.activities, [{ name: 'alerting', ns: 'cisco' }]);

  const dnd = buildPidf(minimalWith([{ name: 'dnd', ns: 'cisco' }, { name: 'busy', ns: 'rpid' }]), { flavor: 'cisco' });
  t.ok(dnd.includes('<rpid:activities><ce:dnd/><rpid:busy/></rpid:activities>'));
});

t.test('build never writes invalid XML', async (t) => {
  const nasty: PidfDocument = {
    entity: 'sip:x@y"><evil/>',
    tuples: [{ id: 'a"b', notes: ['\u0000ctl\u0008 & <tag>'], activities: [] }],
    persons: [{ id: '', activities: [{ name: 'not a name', ns: 'rpid' }, { name: 'ok', ns: '' }], notes: [] }],
    notes: [],
  };
  const xml = buildPidf(nasty);
  const back = parsePidf(xml);
  t.equal(back.entity, 'sip:x@y"><evil/>');
  t.equal(back.tuples[0]!.id, 'a"b');
  t.same(back.tuples[0]!.notes, ['ctl & <tag>'], 'control characters dropped, markup escaped');
  t.equal(back.persons[0]!.id, 'p', 'missing person id replaced');
  t.same(back.persons[0]!.activities, [{ name: 'ok', ns: 'rpid' }], 'unwritable activity name skipped; no-namespace written as rpid');
});

t.test('parses CUCM fixture rebuilt in Cisco flavor the same way', async (t) => {
  for (const name of ['pidf-cucm-idle.xml', 'pidf-cucm-ringing.xml', 'pidf-cucm-on-the-phone.xml', 'pidf-cisco-dnd-publish.xml']) {
    const doc = parsePidf(fixture(name));
    for (const p of doc.persons) if (p.id === '') p.id = 'p';
    t.same(parsePidf(buildPidf(doc, { flavor: 'cisco' })), doc, name);
  }
});
