import t from 'tap';
import {
  formatParams,
  formatVia,
  NO_PARAMS,
  paramValue,
  parseAccept,
  parseCSeq,
  parseEvent,
  parseExpires,
  parseMediaType,
  parseParams,
  parseSubscriptionState,
  parseVia,
  tagOf,
} from '../../src/sip/header-values.js';

t.test('parseParams', async (t) => {
  t.same([...parseParams(';a=b;C;d="x; y \\"z\\""')!], [['a', 'b'], ['c', null], ['d', 'x; y "z"']]);
  t.same([...parseParams('  ;  Tag = 1x ;  lr  ')!], [['tag', '1x'], ['lr', null]], 'SEMI and EQUAL allow LWS');
  t.same([...parseParams('a=1;b=2')!], [['a', '1'], ['b', '2']], 'leading ; optional');
  t.equal(parseParams('')?.size, 0);
  t.equal(parseParams('   ')?.size, 0);
  t.equal(parseParams(';received=[2001:db8::1]')?.get('received'), '[2001:db8::1]');
  t.equal(parseParams(';a=B')?.get('a'), 'B', 'values keep their case');
  for (const bad of [';;', ';a;', ';a=', ';=b', ';a="open', ';a b', ';a=b c', 'x y', ';a=<b>', ';a=b,c']) {
    t.equal(parseParams(bad), null, JSON.stringify(bad));
  }
});

t.test('formatParams quotes only what needs it', async (t) => {
  const m = new Map<string, string | null>([
    ['tag', 'abc'],
    ['lr', null],
    ['+sip.instance', '<urn:uuid:1>'],
    ['note', 'two words'],
    ['received', '[2001:db8::1]'],
  ]);
  const text = formatParams(m);
  t.equal(text, ';tag=abc;lr;+sip.instance="<urn:uuid:1>";note="two words";received=[2001:db8::1]');
  t.same([...parseParams(text)!], [...m], 'round trip');
});

t.test('parseVia', async (t) => {
  const v = parseVia('SIP/2.0/udp 192.0.2.1:5060;branch=z9hG4bK74bf9;received=198.51.100.9;rport=40000;X=Y');
  t.same(v, {
    protocol: 'UDP',
    host: '192.0.2.1',
    port: 5060,
    params: new Map([
      ['branch', 'z9hG4bK74bf9'],
      ['received', '198.51.100.9'],
      ['rport', '40000'],
      ['x', 'Y'],
    ]),
    branch: 'z9hG4bK74bf9',
    received: '198.51.100.9',
    rport: 40000,
  });
  const flag = parseVia('SIP/2.0/TCP client.example.com;rport;branch=z9hG4bKx');
  t.equal(flag?.rport, null, 'rport without value');
  t.equal(flag?.port, undefined);
  t.equal(parseVia('SIP/2.0/UDP h')?.rport, undefined, 'no rport');
  const wide = parseVia('  sip  /  2.0  /  wss   [2001:db8::1] : 443 ;  branch = z9hG4bKw  ');
  t.same([wide?.protocol, wide?.host, wide?.port, wide?.branch], ['WSS', '[2001:db8::1]', 443, 'z9hG4bKw']);
  t.equal(parseVia('SIP/2.0/SCTP h;branch=1')?.protocol, 'SCTP');
  const bad = [
    '',
    'SIP/2.0/UDP',
    'SIP/2.0/UDP ;branch=z9hG4bKx',
    'SIP/3.0/UDP h',
    'HTTP/2.0/UDP h',
    'SIP/2.0 h',
    'SIP/2.0/UDP h:0',
    'SIP/2.0/UDP h:70000',
    'SIP/2.0/UDP h:port',
    'SIP/2.0/UDP h;;',
    'SIP/2.0/UDP h;branch',
    'SIP/2.0/UDP h;received',
    'SIP/2.0/UDP h;rport=abc',
    'SIP/2.0/UDP h junk',
    'SIP/2.0/UDP [2001:db8::1',
  ];
  for (const b of bad) t.equal(parseVia(b), null, JSON.stringify(b));
});

t.test('formatVia', async (t) => {
  const text = 'SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport;x=y';
  const v = parseVia(text)!;
  t.equal(formatVia(v), text, 'round trip keeps parameter order');
  v.received = '198.51.100.1';
  v.rport = 3333;
  t.equal(formatVia(v), 'SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport=3333;x=y;received=198.51.100.1', 'fields win, new ones appended');
  t.equal(
    formatVia({ protocol: 'tcp', host: '[2001:db8::5]', params: new Map(), branch: 'z9hG4bKnew', rport: null }),
    'SIP/2.0/TCP [2001:db8::5];branch=z9hG4bKnew;rport',
  );
  t.same(parseVia(formatVia({ protocol: 'UDP', host: 'h', port: 5, params: new Map([['note', 'a b']]) }))?.params.get('note'), 'a b');
});

t.test('parseCSeq', async (t) => {
  t.same(parseCSeq('4711 SUBSCRIBE'), { seq: 4711, method: 'SUBSCRIBE' });
  t.same(parseCSeq('  0009 \t NOTIFY  '), { seq: 9, method: 'NOTIFY' });
  t.same(parseCSeq('0 PUBLISH'), { seq: 0, method: 'PUBLISH' });
  t.same(parseCSeq('2147483647 NOTIFY'), { seq: 2147483647, method: 'NOTIFY' }, 'largest allowed');
  for (const bad of ['2147483648 NOTIFY', '36893488147419103232 INVITE', 'NOTIFY', '12', '12NOTIFY', '-1 NOTIFY', 'x NOTIFY', '1 NOTIFY extra', '1 NOT:IFY', '']) {
    t.equal(parseCSeq(bad), null, JSON.stringify(bad));
  }
});

t.test('parseExpires', async (t) => {
  t.equal(parseExpires(undefined), null);
  t.equal(parseExpires('3600'), 3600);
  t.equal(parseExpires(' 0 '), 0);
  t.equal(parseExpires('00060'), 60);
  t.equal(parseExpires('4294967295'), 4294967295);
  for (const bad of ['4294967296', '10000000000000', '-1', '1.5', 'soon', '', '60 s', 'Thu, 01 Dec 1994 16:00:00 GMT']) {
    t.equal(parseExpires(bad), null, JSON.stringify(bad));
  }
});

t.test('parseEvent', async (t) => {
  t.same(parseEvent('presence'), { event: 'presence', params: new Map() });
  const w = parseEvent('Presence.WINFO ; id=Ab7 ; other');
  t.same([w?.event, w?.id, [...(w?.params ?? [])]], ['presence.winfo', 'Ab7', [['id', 'Ab7'], ['other', null]]]);
  t.equal(parseEvent('dialog;sla')?.event, 'dialog');
  for (const bad of ['', ' ', ';id=1', 'presence;id', 'presence;;', 'pres ence', 'presence/x']) t.equal(parseEvent(bad), null, JSON.stringify(bad));
});

t.test('parseSubscriptionState', async (t) => {
  t.same(parseSubscriptionState('active;expires=600'), { state: 'active', expires: 600 });
  t.same(parseSubscriptionState('Terminated; Reason=Timeout; retry-after=30'), { state: 'terminated', reason: 'timeout', retryAfter: 30 });
  t.same(parseSubscriptionState('pending'), { state: 'pending' });
  t.same(parseSubscriptionState('waiting-for-something;x=1'), { state: 'waiting-for-something' }, 'unknown states kept');
  for (const bad of ['', 'active;expires=soon', 'active;expires', 'terminated;reason', 'terminated;retry-after=-5', 'active;;']) {
    t.equal(parseSubscriptionState(bad), null, JSON.stringify(bad));
  }
});

t.test('parseMediaType', async (t) => {
  const m = parseMediaType('Application/PIDF+XML; charset="UTF-8"');
  t.same(m, { type: 'application', subtype: 'pidf+xml', params: new Map([['charset', 'UTF-8']]), q: 1 });
  const mp = parseMediaType('multipart/related;type="application/rlmi+xml";start="<nXYxAE@pres.example.com>";boundary="50UBfW7LSCVLtggUPe5z"');
  t.equal(mp?.params.get('type'), 'application/rlmi+xml');
  t.equal(mp?.params.get('boundary'), '50UBfW7LSCVLtggUPe5z');
  t.equal(parseMediaType('text / plain')?.subtype, 'plain', 'LWS around /');
  for (const bad of ['', 'text', 'text/', '/plain', '*/*', 'application/*', 'text/plain;', 'text/plain; charset=', 'te xt/plain']) {
    t.equal(parseMediaType(bad), null, JSON.stringify(bad));
  }
});

t.test('parseAccept', async (t) => {
  const a = parseAccept(['application/pidf+xml;q=0.9', 'application/*;q=0.1', '*/*;q=0', 'multipart/related;level=1']);
  t.same(
    a?.map((m) => [m.type, m.subtype, m.q, [...m.params]]),
    [
      ['application', 'pidf+xml', 0.9, []],
      ['application', '*', 0.1, []],
      ['*', '*', 0, []],
      ['multipart', 'related', 1, [['level', '1']]],
    ],
  );
  t.same(parseAccept([]), [], 'empty Accept accepts nothing');
  t.equal(parseAccept(['application/pidf+xml;q=1.000'])?.[0]?.q, 1);
  for (const bad of [['*/xml'], ['text/plain;q=1.5'], ['text/plain;q=abc'], ['text/plain;q'], ['text/plain;q=0.1234'], ['garbage'], ['text/plain', '']]) {
    t.equal(parseAccept(bad), null, JSON.stringify(bad));
  }
});

t.test('tagOf', async (t) => {
  t.equal(tagOf('"Alice" <sip:alice@example.com>;tag=1928301774'), '1928301774');
  t.equal(tagOf('sip:alice@example.com;tag=abc'), 'abc', 'addr-spec');
  t.equal(tagOf('<sip:alice@example.com;tag=inside>'), undefined, 'a URI parameter is not the tag');
  t.equal(tagOf('"x;tag=fake" <sip:a@example.com>'), undefined, 'quoted display name ignored');
  t.equal(tagOf('"x>y" <sip:a@example.com>;foo=1;TAG=real'), 'real');
  t.equal(tagOf('<sip:a@example.com> ; tag = spaced '), 'spaced');
  t.equal(tagOf('<sip:a@example.com>'), undefined);
  t.equal(tagOf('<sip:a@example.com>;tag'), undefined, 'flag without value');
  t.equal(tagOf('"unterminated <sip:a@example.com>;tag=1'), undefined);
  t.equal(tagOf('<sip:a@example.com>;tag=first;tag=last'), 'last', 'the last of two, as parseParams keeps it');
  t.equal(tagOf('<sip:a@example.com>;tag=abc;x=""'), 'abc', 'an empty quoted value elsewhere is well-formed');
  t.equal(tagOf('<sip:a@example.com>;tag=abc;;x'), undefined, 'malformed elsewhere in the list: no tag');
  t.equal(tagOf('<sip:a@example.com>;tag=abc;x='), undefined, 'an empty value elsewhere: no tag');
});

t.test('paramValue reads one parameter as parseParams would, without the map', async (t) => {
  const lists = [';a=1;B=two;c', 'a=1 ; b = "q \\"x\\"" ;c', ';a;a=2', ';a=1;', ';=1', ';a="open', '', ';Tag=X;tag=y'];
  for (const text of lists) {
    const map = parseParams(text);
    for (const name of ['a', 'b', 'c', 'tag', 'zz']) {
      t.equal(paramValue(text, 0, name), map === null ? undefined : map.get(name), `${JSON.stringify(text)} ${name}`);
    }
  }
  t.equal(paramValue('xxx;a=1', 3, 'a'), '1', 'from an offset');
});

t.test('a Via without parameters shares NO_PARAMS', async (t) => {
  t.equal(parseVia('SIP/2.0/UDP 192.0.2.1:5060')?.params, NO_PARAMS);
  t.not(parseVia('SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1')?.params, NO_PARAMS);
  t.equal(NO_PARAMS.size, 0);
});
