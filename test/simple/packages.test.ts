import t from 'tap';
import { parseDialogInfo, parsePidf } from '../../src/bodies/index.js';
import type { PresenceView } from '../../src/core/person-state.js';
import { parseAccept } from '../../src/sip/header-values.js';
import { DialogPackage } from '../../src/simple/dialog-package.js';
import { chooseContentType } from '../../src/simple/event-package.js';
import { CPIM_PIDF, PIDF, PresencePackage } from '../../src/simple/presence-package.js';
import { callFromDialog, richStateFromPidf, telephonyFromDialogInfo } from '../../src/simple/body-state.js';

function view(patch: Partial<PresenceView> = {}): PresenceView {
  return {
    personId: '1001',
    basic: 'open',
    activities: [],
    dnd: false,
    ringing: false,
    calls: [],
    revision: 1,
    changedAt: 0,
    source: 'none',
    ...patch,
  };
}

function accept(...values: string[]) {
  return parseAccept(values) ?? undefined;
}

t.test('content negotiation', async (t) => {
  t.equal(chooseContentType(accept('*/*')!, [PIDF, CPIM_PIDF]), PIDF, 'our preference on ties');
  t.equal(chooseContentType(accept('application/*;q=0.5', 'application/cpim-pidf+xml')!, [PIDF, CPIM_PIDF]), CPIM_PIDF);
  t.equal(chooseContentType(accept('application/pidf+xml;q=0', '*/*')!, [PIDF]), undefined, 'specific q=0 beats */*');
  t.equal(chooseContentType(accept('text/plain')!, [PIDF]), undefined);

  const pkg = new PresencePackage({ view: () => view() });
  t.same(pkg.negotiate(undefined), { contentType: PIDF, variant: 'rfc' }, 'RFC 3856 default');
  t.same(pkg.negotiate(accept('application/cpim-pidf+xml')), { contentType: CPIM_PIDF, variant: 'cisco' });
  t.same(pkg.negotiate(accept('application/cpim-pidf+xml', 'application/pidf+xml;q=0.1')), { contentType: CPIM_PIDF, variant: 'rfc' });
  t.same(pkg.negotiate(accept('application/pidf+xml', 'multipart/related')), { contentType: PIDF, variant: 'rfc' });
  t.equal(pkg.negotiate(accept('application/simple-message-summary')), undefined);
  t.same(pkg.negotiate(accept('application/xpidf+xml')), { contentType: 'application/xpidf+xml', variant: 'xpidf' }, 'XPIDF for who asks only for it');
  t.same(pkg.negotiate(accept('application/xpidf+xml', 'application/pidf+xml')), { contentType: PIDF, variant: 'rfc' }, 'PIDF when both are fine');
  t.same(pkg.negotiate(accept('application/xpidf+xml', 'application/pidf+xml;q=0.5')), { contentType: 'application/xpidf+xml', variant: 'xpidf' }, 'q decides');
});

t.test('presence bodies are rendered once per revision and flavor', async (t) => {
  let current = view();
  const pkg = new PresencePackage({ view: () => current });
  const fmt = pkg.negotiate(undefined)!;
  const cisco = pkg.negotiate(accept('application/cpim-pidf+xml'))!;
  const a = pkg.render('1001', { entity: 'sip:1001@example.com', format: fmt, version: 0 });
  const b = pkg.render('1001', { entity: 'sip:1001@example.com', format: fmt, version: 7 });
  t.equal(a, b, 'same Buffer for every watcher of one revision');
  const c = pkg.render('1001', { entity: 'sip:1001@example.com', format: cisco, version: 0 });
  t.not(c, a, 'flavor is part of the key');
  current = view({ revision: 2, activities: ['away'], note: 'Back at 3' });
  const d = pkg.render('1001', { entity: 'sip:1001@example.com', format: fmt, version: 0 });
  t.not(d, a);
  const doc = parsePidf(d);
  t.equal(doc.tuples[0]?.id, 't-1001', 'ids are valid XML ids');
  t.equal(doc.tuples[0]?.contact, 'sip:1001@example.com');
  t.same(doc.tuples[0]?.notes, ['Back at 3']);
  t.same(doc.persons[0]?.activities, [{ name: 'away', ns: 'rpid' }]);
});

t.test('dialog bodies: version spliced into one rendering', async (t) => {
  const current = view({
    calls: [{ id: 'x&1', phase: 'confirmed', direction: 'initiator', remote: { identity: 'sip:carol@example.com' } }],
  });
  const pkg = new DialogPackage({ view: () => current });
  const fmt = pkg.negotiate(undefined)!;
  t.equal(fmt.contentType, 'application/dialog-info+xml');
  t.equal(pkg.negotiate(accept('application/pidf+xml')), undefined);
  const v0 = pkg.render('1001', { entity: 'sip:1001@example.com', format: fmt, version: 0 }).toString();
  const v12 = pkg.render('1001', { entity: 'sip:1001@example.com', format: fmt, version: 12 }).toString();
  t.equal(v12.replace('version="12"', 'version="0"'), v0, 'only the version differs');
  t.match(v0, /^<\?xml version="1\.0"/, 'the XML declaration is untouched');
  const doc = parseDialogInfo(v12);
  t.equal(doc.version, 12);
  t.equal(doc.state, 'full');
  t.equal(doc.dialogs[0]?.id, 'x&1', 'escaped and read back');
  t.equal(doc.dialogs[0]?.local?.identity, 'sip:1001@example.com');
  t.equal(doc.dialogs[0]?.remote?.identity, 'sip:carol@example.com');
});

t.test('PIDF to rich state', async (t) => {
  const rich = richStateFromPidf(
    {
      entity: 'sip:a@example.com',
      tuples: [
        { id: 't1', basic: 'closed', notes: ['tuple note'], activities: [{ name: 'on-the-phone', ns: 'rpid' }] },
        { id: 't2', basic: 'open', notes: [], activities: [] },
      ],
      persons: [
        {
          id: 'p',
          activities: [
            { name: 'busy', ns: 'rpid' },
            { name: 'dnd', ns: 'cisco' },
            { name: 'unknown', ns: 'rpid' },
            { name: 'mystery', ns: 'urn:x' },
          ],
          notes: [],
        },
      ],
      notes: [],
    },
    'test',
    5,
  );
  t.same(rich, { basic: 'open', activities: ['busy', 'dnd', 'on-the-phone'], origin: 'test', at: 5, note: 'tuple note' });
  const closed = richStateFromPidf(
    { entity: 'e', tuples: [{ id: 't', basic: 'closed', notes: [], activities: [] }], persons: [], notes: [] },
    'o',
    1,
  );
  t.equal(closed.basic, 'closed');
  t.same(closed.activities, []);
  const other = richStateFromPidf(
    { entity: 'e', tuples: [], persons: [{ id: 'p', activities: [{ name: 'other', ns: 'rpid', text: 'Gardening' }], notes: [] }], notes: [] },
    'o',
    1,
  );
  t.equal(other.note, 'Gardening', 'rpid:other text becomes the note');
});

t.test('dialog-info to telephony state', async (t) => {
  const tel = telephonyFromDialogInfo(
    {
      entity: 'sip:a@example.com',
      version: 3,
      state: 'full',
      dialogs: [
        { id: 'a', state: 'confirmed', local: { targetParams: [['+SIP.Rendering', 'No']] } },
        { id: 'b', state: 'terminated' },
      ],
    },
    undefined,
    'o',
    9,
  );
  t.same(tel, { line: 'on-hold', dnd: false, calls: [{ id: 'a', phase: 'confirmed', held: true }], origin: 'o', at: 9 });
  const idle = telephonyFromDialogInfo({ entity: '', version: 0, state: 'full', dialogs: [] }, tel.calls, 'o', 10);
  t.equal(idle.line, 'idle', 'a full document replaces the previous one');
  t.same(callFromDialog({ id: 'z', state: 'early' }), { id: 'z', phase: 'early' });
});
