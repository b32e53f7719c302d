import t from 'tap';
import { BodyError, buildXpidf, parseXpidf } from '../../src/bodies/index.js';

t.test('build: the Asterisk shape, exactly', async (t) => {
  const xml = buildXpidf({
    presentity: 'sip:1001@pbx.example.com',
    atomId: '1001',
    address: 'sip:1001@pbx.example.com',
    status: 'inuse',
    substatus: 'onthephone',
  });
  t.equal(
    xml,
    '<?xml version="1.0" encoding="UTF-8"?>\n<presence>\n' +
      ' <presentity uri="sip:1001@pbx.example.com;method=SUBSCRIBE"/>\n' +
      ' <atom id="1001">\n' +
      '  <address uri="sip:1001@pbx.example.com;user=ip" priority="0.800000">\n' +
      '   <status status="inuse"/>\n' +
      '   <msnsubstatus substatus="onthephone"/>\n' +
      '  </address>\n </atom>\n</presence>',
  );
  t.same(parseXpidf(xml), {
    presentity: 'sip:1001@pbx.example.com;method=SUBSCRIBE',
    atomId: '1001',
    address: 'sip:1001@pbx.example.com;user=ip',
    status: 'inuse',
    substatus: 'onthephone',
  });
});

t.test('escaping, no doubled parameters', async (t) => {
  const xml = buildXpidf({ presentity: 'sip:a&b@h;method=SUBSCRIBE', atomId: '<x>', address: 'sip:a@h;user=ip', status: 'open', substatus: 'online' });
  t.match(xml, /uri="sip:a&amp;b@h;method=SUBSCRIBE"/);
  t.match(xml, /id="&lt;x&gt;"/);
  t.notMatch(xml, /user=ip;user=ip/);
  t.equal(parseXpidf(xml).atomId, '<x>');
});

t.test('parse refuses what is not XPIDF', async (t) => {
  const status = (body: string): number | string => {
    try {
      parseXpidf(body);
      return 'parsed';
    } catch (e) {
      return e instanceof BodyError ? e.status : String(e);
    }
  };
  t.equal(status('<presence><atom id="1"/></presence>'), 400, 'no presentity/address');
  t.equal(status('<presentity uri="x"/>'), 400, 'wrong root');
  t.equal(
    status('<presence><presentity uri="sip:a@h"/><atom id="1"><address uri="sip:a@h"><status status="weird"/></address></atom></presence>'),
    400,
    'unknown status',
  );
  t.equal(status('<!DOCTYPE presence [<!ENTITY x "y">]><presence/>'), 400, 'no DTDs');
});
