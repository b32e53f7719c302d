import t from 'tap';
import { aorOf, formatNameAddr, formatUri, parseNameAddr, parseUri, uriEquals, type SipUri } from '../../src/sip/uri.js';
import { NO_PARAMS } from '../../src/sip/header-values.js';

function uri(text: string): SipUri {
  const u = parseUri(text);
  if (u === null) throw new Error(`did not parse: ${text}`);
  return u;
}

t.test('parses every part of a SIP URI', async (t) => {
  const u = uri('SIP:Alice:s3cret@PBX.Example.COM:5080;Transport=TCP;lr;maddr=239.255.255.1?Subject=hi%20there&Priority=urgent');
  t.equal(u.scheme, 'sip');
  t.equal(u.user, 'Alice', 'user keeps its case');
  t.equal(u.password, 's3cret');
  t.equal(u.host, 'pbx.example.com', 'host lower-cased');
  t.equal(u.port, 5080);
  t.same([...u.params], [['transport', 'TCP'], ['lr', null], ['maddr', '239.255.255.1']]);
  t.same([...u.headers], [['Subject', 'hi%20there'], ['Priority', 'urgent']]);
  t.equal(u.opaque, undefined);
});

t.test('hosts: names, IPv4, IPv6 in brackets', async (t) => {
  t.same([uri('sip:192.0.2.4').host, uri('sip:192.0.2.4').user], ['192.0.2.4', undefined]);
  const v6 = uri('sips:bob@[2001:DB8::1]:5061;transport=tls');
  t.same([v6.scheme, v6.host, v6.port], ['sips', '[2001:db8::1]', 5061]);
  t.equal(uri('sip:[::1]').host, '[::1]');
  t.equal(uri('sip:_sip._udp.example.com').host, '_sip._udp.example.com');
  t.equal(uri('sip:host.example.com.').host, 'host.example.com.');
});

t.test('user parts with escapes and reserved characters', async (t) => {
  t.equal(uri('sip:%61lice@example.com').user, 'alice');
  t.equal(uri('sip:I%20have%20spaces@example.net').user, 'I have spaces');
  t.equal(uri('sip:null-%00-null@example.com').user, 'null-\u0000-null');
  t.equal(uri('sip:caf%C3%A9@example.com').user, 'café', 'UTF-8 escapes decoded');
  t.equal(uri('sip:raw%FF@example.com').user, 'raw\u00ff', 'non-UTF-8 escapes kept octet by octet');
  const semi = uri('sip:user;par=u%40example.net@example.com');
  t.same([semi.user, semi.host, semi.params.size], ['user;par=u@example.net', 'example.com', 0]);
  t.equal(uri('sip:+1-212-555-1212;phone-context=x@gw.example.com;user=phone').user, '+1-212-555-1212;phone-context=x');
});

t.test('invalid URIs give null', async (t) => {
  const bad = [
    '',
    'sip:',
    'alice@example.com',
    ':alice@example.com',
    '1sip:alice@example.com',
    'sip:alice@',
    'sip:@example.com',
    'sip:alice@exa mple.com',
    'sip:ali ce@example.com',
    ' sip:alice@example.com',
    'sip:alice@example.com ',
    'sip:al%4@example.com',
    'sip:al%GGice@example.com',
    'sip:alice@example.com:',
    'sip:alice@example.com:65536',
    'sip:alice@example.com:5x',
    'sip:alice@example.com;;lr',
    'sip:alice@example.com;lr;',
    'sip:alice@example.com;=x',
    'sip:alice@example.com;a=',
    'sip:alice@[2001:db8::1',
    'sip:alice@[2001:zz8::1]',
    'sip:alice@example.com?noequals',
    'sip:<alice>@example.com',
    'sip:alice@exa<mple.com',
    'tel:',
    'tel:+1 555',
    'urn:has space',
    'urn:has"quote',
  ];
  for (const b of bad) t.equal(parseUri(b), null, JSON.stringify(b));
});

t.test('tel and other schemes', async (t) => {
  const tel = uri('tel:+1-201-555-0123;phone-context=example.com');
  t.same([tel.scheme, tel.user, tel.host, tel.params.get('phone-context')], ['tel', '+1-201-555-0123', '', 'example.com']);
  t.equal(formatUri(tel), 'tel:+1-201-555-0123;phone-context=example.com');
  const urn = uri('urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6');
  t.same([urn.scheme, urn.opaque, urn.host], ['urn', 'uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6', '']);
  t.equal(formatUri(urn), 'urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6');
  t.equal(uri('HTTP://www.example.com/a?b=c').scheme, 'http');
  const pres = uri('pres:alice@example.com');
  t.same([pres.scheme, pres.user, pres.host], ['pres', 'alice', 'example.com']);
});

t.test('formatUri escapes what must be escaped and round-trips', async (t) => {
  const u = uri('sip:user;par=u%40example.net@example.com');
  t.equal(formatUri(u), 'sip:user;par=u%40example.net@example.com', '@ in user escaped, ; kept');
  t.equal(formatUri({ scheme: 'sip', user: 'a b<c>%', host: 'h', params: new Map(), headers: new Map() }), 'sip:a%20b%3Cc%3E%25@h');
  t.equal(formatUri({ scheme: 'sip', user: 'müller', host: 'h', params: new Map(), headers: new Map() }), 'sip:m%C3%BCller@h');
  t.equal(formatUri({ scheme: 'sip', user: 'x\u0000', host: 'h', params: new Map(), headers: new Map() }), 'sip:x%00@h');
  const texts = [
    'sip:alice@example.com',
    'sips:bob:pw@[2001:db8::1]:5061;transport=tls;lr',
    'sip:alice@example.com;maddr=239.255.255.1;ttl=15?subject=project%20x&priority=urgent',
    "sip:1_unusual.user~(x)&isn't+it$/crazy?,/;;*:&pw=1,w!*$~_.()@example.com",
    'sip:%00%00@host5.example.com',
  ];
  for (const text of texts) {
    const parsed = uri(text);
    const again = uri(formatUri(parsed));
    t.ok(uriEquals(parsed, again), `round trip ${text}`);
    t.equal(again.user, parsed.user);
    t.equal(formatUri(again), formatUri(parsed), 'formatting is stable');
  }
  t.equal(formatUri(uri('sip:alice@example.com;lr;transport=udp?h=v')), 'sip:alice@example.com;lr;transport=udp?h=v');
});

t.test('uriEquals follows RFC 3261 §19.1.4', async (t) => {
  const eq = (a: string, b: string): boolean => uriEquals(uri(a), uri(b));
  t.ok(eq('sip:%61lice@atlanta.com;transport=TCP', 'sip:alice@AtLanTa.CoM;Transport=tcp'), 'escapes, host and param case');
  t.ok(eq('sip:carol@chicago.com', 'sip:carol@chicago.com;newparam=5'), 'param in one only is ignored');
  t.ok(eq('sip:carol@chicago.com;security=on', 'sip:carol@chicago.com;newparam=5'), 'different params in each');
  t.ok(eq('sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com', 'sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com'), 'param order');
  t.ok(eq('sip:alice@atlanta.com?subject=project%20x&priority=urgent', 'sip:alice@atlanta.com?priority=urgent&subject=project%20x'), 'header order');
  t.notOk(eq('SIP:ALICE@AtLanTa.CoM;Transport=udp', 'sip:alice@AtLanTa.CoM;Transport=UDP'), 'user is case-sensitive');
  t.notOk(eq('sip:bob@biloxi.com', 'sip:bob@biloxi.com:5060'), 'explicit port differs from none');
  t.notOk(eq('sip:bob@biloxi.com', 'sip:bob@biloxi.com;transport=udp'), 'transport in one only');
  t.notOk(eq('sip:bob@biloxi.com', 'sip:bob@biloxi.com;user=phone'), 'user param in one only');
  t.notOk(eq('sip:bob@biloxi.com;x=1', 'sip:bob@biloxi.com;x=2'), 'param in both with other values');
  t.notOk(eq('sip:carol@chicago.com', 'sip:carol@chicago.com?Subject=next%20meeting'), 'headers must match');
  t.notOk(eq('sip:alice@example.com', 'sips:alice@example.com'), 'sip and sips differ');
  t.notOk(eq('sip:alice:a@example.com', 'sip:alice:b@example.com'), 'password compared');
  t.ok(eq('tel:+1-201-555-0123', 'tel:+12015550123'), 'tel visual separators ignored');
  t.notOk(eq('urn:a', 'urn:b'));
});

t.test('aorOf', async (t) => {
  t.equal(aorOf(uri('sip:Alice@PBX.Example.com:5060;transport=tcp?x=y')), 'sip:Alice@pbx.example.com');
  t.equal(aorOf(uri('sips:bob@example.com')), 'sip:bob@example.com', 'sips folded into sip');
  t.equal(aorOf(uri('sip:example.com')), 'sip:example.com');
  t.equal(aorOf(uri('sip:a%40b@example.com')), 'sip:a%40b@example.com', 'user re-escaped');
  t.equal(aorOf(uri('tel:+1-201-555-0123;phone-context=x')), 'tel:+12015550123');
  t.equal(aorOf(uri('sip:%61lice@example.com')), aorOf(uri('sip:alice@EXAMPLE.com')), 'equal AoRs compare equal as strings');
});

t.test('parseNameAddr: name-addr forms', async (t) => {
  const a = parseNameAddr('"Alice \\"A\\" Smith" <sip:alice@example.com;transport=tcp>;tag=88sja8x;expires=60');
  t.equal(a?.displayName, 'Alice "A" Smith');
  t.equal(a?.uri.params.get('transport'), 'tcp', 'URI params stay on the URI');
  t.same([...(a?.params ?? [])], [['tag', '88sja8x'], ['expires', '60']]);
  const token = parseNameAddr('Bob  Jones <sip:bob@example.com>');
  t.equal(token?.displayName, 'Bob  Jones');
  const noName = parseNameAddr('<sip:carol@example.com>');
  t.equal(noName?.displayName, undefined);
  t.equal(noName?.uri.user, 'carol');
  t.equal(parseNameAddr('"Carol"<sip:carol@example.com>')?.displayName, 'Carol', 'no LWS before <');
  t.equal(parseNameAddr('"" <sip:carol@example.com>')?.displayName, '', 'empty quoted name');
  const spaced = parseNameAddr('  "X"   <sip:x@example.com>  ;  tag = abc ; flag  ');
  t.same([...(spaced?.params ?? [])], [['tag', 'abc'], ['flag', null]]);
  t.equal(parseNameAddr('Jürgen <sip:j@example.com>')?.displayName, 'Jürgen', 'non-ASCII token display tolerated');
  t.equal(parseNameAddr('<http://www.example.com/x>;tag=1')?.uri.scheme, 'http');
  t.equal(parseNameAddr('"a;b<c>" <sip:q@example.com>;tag=t')?.params.get('tag'), 't', 'specials inside quotes');
});

t.test('parseNameAddr: addr-spec forms (RFC 3261 §20.10)', async (t) => {
  const a = parseNameAddr('sip:alice@example.com;tag=abc;transport=tcp');
  t.equal(a?.uri.params.size, 0, 'params after a bare URI are header params');
  t.same([...(a?.params ?? [])], [['tag', 'abc'], ['transport', 'tcp']]);
  t.equal(parseNameAddr('sip:alice@example.com')?.params.size, 0);
  t.equal(parseNameAddr('isbn:2983792873')?.uri.opaque, '2983792873');
  t.equal(parseNameAddr('sip:alice@example.com ;tag=x')?.params.get('tag'), 'x');
});

t.test('parseNameAddr: malformed values give null', async (t) => {
  const bad = [
    '',
    '   ',
    '"unterminated <sip:a@example.com>',
    '"name" sip:a@example.com',
    '<sip:a@example.com',
    '< sip:a@example.com >',
    '<sip:a@example.com> junk',
    '<sip:a@example.com>;;tag=1',
    '<sip:a@example.com>;tag=',
    'Bell, Alexander <sip:a.g.bell@example.com>',
    'sip:user@example.com?Route=%3Csip:p.example.com%3E',
    '<not a uri>',
    'name <>',
    'sip:a@example.com;tag="open',
  ];
  for (const b of bad) t.equal(parseNameAddr(b), null, JSON.stringify(b));
});

t.test('formatNameAddr always uses angle brackets and quotes the name', async (t) => {
  const na = parseNameAddr('sip:alice@example.com;tag=abc');
  if (na === null) throw new Error('parse');
  t.equal(formatNameAddr(na), '<sip:alice@example.com>;tag=abc');
  na.displayName = 'Alice "The" Admin\\';
  const text = formatNameAddr(na);
  t.equal(text, '"Alice \\"The\\" Admin\\\\" <sip:alice@example.com>;tag=abc');
  const back = parseNameAddr(text);
  t.equal(back?.displayName, 'Alice "The" Admin\\');
  t.equal(back?.params.get('tag'), 'abc');
  // parsed params are read-only (a value without any shares one empty map): format a copy with more
  na.params = new Map([...na.params, ['+sip.instance', '<urn:uuid:1234>'], ['lr', null]]);
  t.equal(formatNameAddr(na), '"Alice \\"The\\" Admin\\\\" <sip:alice@example.com>;tag=abc;+sip.instance="<urn:uuid:1234>";lr');
  na.displayName = 'evil\r\nVia: x';
  t.notMatch(formatNameAddr(na), /[\r\n]/, 'no line breaks in formatted values');
});

t.test('values without parameters share one empty map; with parameters each has its own', async (t) => {
  const bare = parseUri('sip:alice@example.com');
  t.equal(bare?.params, NO_PARAMS);
  t.equal(bare?.headers, parseUri('sips:bob@example.org')?.headers, 'no URI headers: one shared map');
  t.equal(bare?.headers.size, 0);
  t.equal(parseUri('tel:+4930123')?.params, NO_PARAMS);
  t.equal(parseNameAddr('<sip:alice@example.com>')?.params, NO_PARAMS);
  const withParams = parseNameAddr('<sip:alice@example.com;transport=tcp>;tag=1');
  t.not(withParams?.params, NO_PARAMS);
  t.not(withParams?.uri.params, NO_PARAMS);
  t.equal(withParams?.uri.params.get('transport'), 'tcp');
  t.equal(NO_PARAMS.size, 0, 'nothing was written into the shared map');
});
