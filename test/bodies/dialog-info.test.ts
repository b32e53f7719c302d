import { readFileSync } from 'node:fs';
import t from 'tap';
import {
  DIALOG_INFO_CONTENT_TYPE,
  buildDialogInfo,
  parseDialogInfo,
  type DialogInfoDocument,
} from '../../src/bodies/dialog-info.js';
import { NS_DIALOG_INFO } from '../../src/bodies/namespaces.js';
import { parseXml } from '../../src/bodies/xml.js';
import { statusOf } from './status-of.js';

function fixture(name: string): Buffer {
  return readFileSync(new URL(`../../sip-fixtures/bodies/${name}`, import.meta.url));
}

t.test('content type', async (t) => {
  t.equal(DIALOG_INFO_CONTENT_TYPE, 'application/dialog-info+xml');
});

t.test('Asterisk ringing: recipient, local and remote identities', async (t) => {
  t.same(parseDialogInfo(fixture('dialog-asterisk-ringing.xml')), {
    entity: 'sip:201@pbx.example.net',
    version: 4,
    state: 'full',
    dialogs: [
      {
        id: '201',
        direction: 'recipient',
        state: 'early',
        local: { identity: 'sip:201@pbx.example.net', display: 'Room 201', target: 'sip:201@pbx.example.net' },
        remote: { identity: 'sip:100@pbx.example.net', display: 'Front Desk', target: 'sip:100@pbx.example.net' },
      },
    ],
  });
});

t.test('Asterisk in use, on hold, idle', async (t) => {
  const inUse = parseDialogInfo(fixture('dialog-asterisk-inuse.xml'));
  t.same(inUse.dialogs, [{ id: '201', state: 'confirmed' }], 'one dialog id=exten without call-id or tags');
  t.equal(inUse.version, 5);

  const hold = parseDialogInfo(fixture('dialog-asterisk-hold.xml'));
  t.equal(hold.dialogs[0]!.state, 'confirmed');
  t.same(hold.dialogs[0]!.local, { target: 'sip:201@pbx.example.net', targetParams: [['+sip.rendering', 'no']] });
  t.equal(hold.dialogs[0]!.remote, undefined);

  const idle = parseDialogInfo(fixture('dialog-asterisk-idle.xml'));
  t.same(idle, { entity: 'sip:201@pbx.example.net', version: 7, state: 'full', dialogs: [] });
});

t.test('Polycom style: prefixed, call-id and tags, partial, several dialogs', async (t) => {
  const doc = parseDialogInfo(fixture('dialog-polycom.xml'));
  t.equal(doc.state, 'partial');
  t.equal(doc.version, 12);
  t.equal(doc.dialogs.length, 2);
  t.same(doc.dialogs[0], {
    id: 'dlg-5f2a',
    callId: '8a3c1e77-51b0@10.1.4.10',
    localTag: '77ab20',
    remoteTag: 'c91d03',
    direction: 'initiator',
    state: 'terminated',
    event: 'remote-bye',
    code: 200,
    duration: 184,
    local: { identity: 'sip:4410@voip.example.org', target: 'sip:4410@10.1.4.10:5060' },
    remote: { identity: 'sip:4500@voip.example.org', display: 'Sales & Support' },
  });
  t.same(doc.dialogs[1], {
    id: 'dlg-5f2b',
    callId: '0d4471c2@10.1.4.10',
    localTag: '88f1',
    direction: 'recipient',
    state: 'proceeding',
  }, 'state text read case-insensitively');
});

t.test('lenient details', async (t) => {
  const doc = parseDialogInfo(
    `<dialog-info xmlns="${NS_DIALOG_INFO}" version="0" state="FULL">` +
      '<dialog id="x" direction="sideways"><state code="abc">Early</state><duration>-3</duration><extra/></dialog>' +
      '<other xmlns="urn:x"/></dialog-info>',
  );
  t.equal(doc.entity, '', 'missing entity tolerated');
  t.equal(doc.state, 'full');
  t.same(doc.dialogs, [{ id: 'x', state: 'early' }], 'bad direction, code and duration dropped');
});

t.test('refused documents', async (t) => {
  t.equal(statusOf(() => parseDialogInfo(fixture('refused-dialog-no-version.xml'))), 400, 'no version');
  t.equal(statusOf(() => parseDialogInfo(fixture('refused-xxe.xml'))), 400, 'external entity');
  t.equal(statusOf(() => parseDialogInfo(fixture('refused-billion-laughs.xml'))), 400, 'billion laughs');
  t.equal(statusOf(() => parseDialogInfo(fixture('refused-not-xml.txt'))), 400, 'not XML');
  t.equal(statusOf(() => parseDialogInfo(fixture('refused-wrong-root.xml'))), 415, 'wrong root');
  t.equal(statusOf(() => parseDialogInfo(fixture('pidf-minimal.xml'))), 415, 'PIDF is not dialog-info');
  const head = `<dialog-info xmlns="${NS_DIALOG_INFO}" entity="sip:a@b"`;
  t.equal(statusOf(() => parseDialogInfo(`${head} version="1"/>`)), 400, 'no state');
  t.equal(statusOf(() => parseDialogInfo(`${head} version="1" state="some"/>`)), 400, 'bad state');
  t.equal(statusOf(() => parseDialogInfo(`${head} version="-1" state="full"/>`)), 400, 'negative version');
  t.equal(statusOf(() => parseDialogInfo(`${head} version="1.5" state="full"/>`)), 400, 'fractional version');
  t.equal(statusOf(() => parseDialogInfo(`${head} version="1" state="full"><dialog><state>early</state></dialog></dialog-info>`)), 400, 'dialog without id');
  t.equal(statusOf(() => parseDialogInfo(`${head} version="1" state="full"><dialog id="a"/></dialog-info>`)), 400, 'dialog without state');
  t.equal(statusOf(() => parseDialogInfo(`${head} version="1" state="full"><dialog id="a"><state>ringing</state></dialog></dialog-info>`)), 400, 'unknown dialog state');
  const big = `${head} version="1" state="full"><dialog id="${'a'.repeat(70000)}"><state>early</state></dialog></dialog-info>`;
  t.equal(statusOf(() => parseDialogInfo(big)), 413, 'oversize');
});

const FULL: DialogInfoDocument = {
  entity: 'sip:201@pbx.example.net',
  version: 42,
  state: 'partial',
  dialogs: [
    {
      id: 'd1',
      callId: 'abc@10.0.0.1',
      localTag: 'lt',
      remoteTag: 'rt',
      direction: 'initiator',
      state: 'terminated',
      event: 'rejected',
      code: 486,
      duration: 12,
      local: {
        identity: 'sip:201@pbx.example.net',
        display: 'Room "201" & co',
        target: 'sip:201@10.0.0.9',
        targetParams: [['+sip.rendering', 'no'], ['isfocus', '']],
      },
      remote: { identity: 'sip:100@pbx.example.net' },
    },
    { id: '201', state: 'confirmed' },
    { id: 'r', state: 'early', direction: 'recipient', remote: { display: 'No URI', target: 'sip:x@y' } },
  ],
};

t.test('build → parse round trip', async (t) => {
  t.same(parseDialogInfo(buildDialogInfo(FULL)), {
    ...FULL,
    dialogs: [FULL.dialogs[0], FULL.dialogs[1], { ...FULL.dialogs[2], remote: { target: 'sip:x@y' } }],
  }, 'display without identity cannot be carried; the rest survives');
  const idle: DialogInfoDocument = { entity: 'sip:201@pbx', version: 0, state: 'full', dialogs: [] };
  t.same(parseDialogInfo(buildDialogInfo(idle)), idle, 'idle round trip');
  for (const name of ['dialog-asterisk-ringing.xml', 'dialog-asterisk-hold.xml', 'dialog-polycom.xml']) {
    const doc = parseDialogInfo(fixture(name));
    t.same(parseDialogInfo(buildDialogInfo(doc)), doc, `${name} rebuilt`);
  }
});

t.test('built document follows the RFC 4235 element order', async (t) => {
  const xml = buildDialogInfo(FULL);
  t.match(xml, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="42" state="partial" /);
  const root = parseXml(xml);
  const d1 = root.children[0]!;
  t.same(d1.children.map((c) => c.name), ['state', 'duration', 'local', 'remote']);
  t.same(d1.children[2]!.children.map((c) => c.name), ['identity', 'target']);
  t.equal(d1.children[2]!.children[1]!.children.length, 2, 'two target params');
  t.ok(xml.includes('<dialog id="201"><state>confirmed</state></dialog>'), 'minimal dialog has nothing optional');
});
