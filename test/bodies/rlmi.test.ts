import t from 'tap';
import { BodyError, NS_RLMI, buildRlmi, parseRlmi, type RlmiDocument } from '../../src/bodies/index.js';

const DOC: RlmiDocument = {
  uri: 'sip:sales@gw.example.com',
  version: 3,
  fullState: true,
  names: [{ value: 'Sales & Support', lang: 'en' }],
  resources: [
    {
      uri: 'sip:anna@gw.example.com',
      names: [{ value: 'Anna <Meier>' }],
      instances: [{ id: 'anna', state: 'active', cid: 'm0.x1@gw.example.com' }],
    },
    { uri: 'sip:ghost@gw.example.com', names: [], instances: [{ id: 'ghost', state: 'terminated', reason: 'noresource' }] },
  ],
};

function status(fn: () => unknown): number | string {
  try {
    fn();
    return 'no error';
  } catch (e) {
    return e instanceof BodyError ? e.status : `threw ${String(e)}`;
  }
}

t.test('build then parse gives the same document', async (t) => {
  const xml = buildRlmi(DOC);
  t.match(xml, /^<\?xml version="1\.0" encoding="UTF-8"\?>/);
  t.match(xml, `<list xmlns="${NS_RLMI}" uri="sip:sales@gw.example.com" version="3" fullState="true">`);
  t.match(xml, '<name xml:lang="en">Sales &amp; Support</name>');
  t.match(xml, '<instance id="anna" state="active" cid="m0.x1@gw.example.com"/>');
  t.match(xml, '<instance id="ghost" state="terminated" reason="noresource"/>');
  t.same(parseRlmi(xml), DOC);
  const partial = { ...DOC, version: 4, fullState: false, cid: 'inner@x', resources: [] };
  t.same(parseRlmi(Buffer.from(buildRlmi(partial))), partial);
});

t.test('parse accepts prefixes, xs:boolean 1/0 and ignores extensions', async (t) => {
  const doc = parseRlmi(
    `<r:list xmlns:r="${NS_RLMI}" xmlns:x="urn:example" uri="sip:l@h" version="0" fullState="0">` +
      '<x:extra/><r:resource uri="sip:a@h"><r:name>A</r:name><r:instance id="1" state="pending" reason="subscribe"/><x:ext/></r:resource>' +
      '</r:list>',
  );
  t.equal(doc.fullState, false);
  t.equal(doc.version, 0);
  t.same(doc.resources, [{ uri: 'sip:a@h', names: [{ value: 'A' }], instances: [{ id: '1', state: 'pending', reason: 'subscribe' }] }]);
});

t.test('bad input is a BodyError with the right status', async (t) => {
  const list = (attrs: string, inner = '') => `<list xmlns="${NS_RLMI}" ${attrs}>${inner}</list>`;
  t.equal(status(() => parseRlmi('<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@h"/>')), 415, 'not RLMI');
  t.equal(status(() => parseRlmi('<list uri="sip:l@h" version="1" fullState="true"/>')), 415, 'no namespace');
  t.equal(status(() => parseRlmi(list('version="1" fullState="true"'))), 400, 'no uri');
  t.equal(status(() => parseRlmi(list('uri="sip:l@h" fullState="true"'))), 400, 'no version');
  t.equal(status(() => parseRlmi(list('uri="sip:l@h" version="-1" fullState="true"'))), 400, 'negative version');
  t.equal(status(() => parseRlmi(list('uri="sip:l@h" version="4294967296" fullState="true"'))), 400, 'version > 2^32-1');
  t.equal(status(() => parseRlmi(list('uri="sip:l@h" version="1" fullState="yes"'))), 400, 'fullState not boolean');
  t.equal(status(() => parseRlmi(list('uri="sip:l@h" version="1" fullState="true"', '<resource/>'))), 400, 'resource without uri');
  t.equal(
    status(() => parseRlmi(list('uri="sip:l@h" version="1" fullState="true"', '<resource uri="sip:a@h"><instance state="active"/></resource>'))),
    400,
    'instance without id',
  );
  t.equal(
    status(() => parseRlmi(list('uri="sip:l@h" version="1" fullState="true"', '<resource uri="sip:a@h"><instance id="1" state="gone"/></resource>'))),
    400,
    'unknown instance state',
  );
  t.equal(status(() => parseRlmi('<list')), 400, 'not well-formed');
  t.equal(status(() => parseRlmi('<!DOCTYPE list [<!ENTITY a "b">]><list/>')), 400, 'DTD refused');
  t.equal(status(() => parseRlmi(Buffer.from([0xff, 0xfe, 0x3c]))), 400, 'not UTF-8');
  t.equal(status(() => parseRlmi('x'.repeat(70_000))), 413, 'too large');
  t.equal(status(() => buildRlmi({ ...DOC, version: -1 })), 400, 'build refuses a bad version');
});
