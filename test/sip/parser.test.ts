import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isKeepAlive, parseMessage, takeTopVia, StreamFramer, type FramerEvent, type ParseResult } from '../../src/sip/parser.js';
import type { SipMessage, SipRequest, SipResponse } from '../../src/sip/message.js';
import { parseCSeq, parseEvent, parseVia, tagOf } from '../../src/sip/header-values.js';
import { parseNameAddr, parseUri } from '../../src/sip/uri.js';

// Fixtures are stored byte-exact with CRLF line ends (see sip-fixtures/torture/README.md).
const FIXTURES = fileURLToPath(new URL('../../sip-fixtures/torture/', import.meta.url));

interface Expected {
  valid: Record<string, { rfc4475: string }>;
  invalid: Record<string, { rfc4475: string; status: number; reason: string; request: boolean }>;
}
const expected = JSON.parse(readFileSync(FIXTURES + 'expected.json', 'utf8')) as Expected;

function fixture(folder: 'valid' | 'invalid', name: string): Buffer {
  return readFileSync(`${FIXTURES}${folder}/${name}.sip`);
}

/** The parsed message, or an exception naming the parse failure (which fails the test). */
function ok(r: ParseResult): SipMessage {
  if (!r.ok) throw new Error(`expected ok, got ${r.status} ${r.reason}`);
  return r.message;
}

function req(r: ParseResult): SipRequest {
  const m = ok(r);
  if (m.kind !== 'request') throw new Error('not a request');
  return m;
}

function res(r: ParseResult): SipResponse {
  const m = ok(r);
  if (m.kind !== 'response') throw new Error('not a response');
  return m;
}

/** Body of a fixture file: the bytes after the first empty line. */
function rawBody(data: Buffer): Buffer {
  const i = data.indexOf('\r\n\r\n');
  return data.subarray(i + 4);
}

const SUBSCRIBE = [
  'SUBSCRIBE sip:1001@pbx.example.com SIP/2.0',
  'Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport',
  'Max-Forwards: 70',
  'To: <sip:1001@pbx.example.com>',
  'From: "Console" <sip:console@example.com>;tag=1928301774',
  'Call-ID: a84b4c76e66710@192.0.2.10',
  'CSeq: 314159 SUBSCRIBE',
  'Contact: <sip:console@192.0.2.10:5060>',
  'Event: presence',
  'Expires: 3600',
  'Content-Length: 0',
  '',
  '',
].join('\r\n');

function subscribeWith(edit: (lines: string[]) => string[], body = ''): Buffer {
  const lines = SUBSCRIBE.split('\r\n').slice(0, -2);
  return Buffer.from(edit(lines).join('\r\n') + '\r\n\r\n' + body);
}

t.test('fixture folders and expected.json list the same files', async (t) => {
  for (const folder of ['valid', 'invalid'] as const) {
    const files = readdirSync(FIXTURES + folder).filter((f) => f.endsWith('.sip')).sort();
    t.same(files, Object.keys(expected[folder]).sort(), `${folder} files all described`);
    t.ok(files.length > 20, `${folder} has many cases`);
  }
});

t.test('fixture files use CRLF line ends in their header blocks', async (t) => {
  for (const folder of ['valid', 'invalid'] as const) {
    for (const name of Object.keys(expected[folder])) {
      const data = readFileSync(`${FIXTURES}${folder}/${name}`);
      const headEnd = data.indexOf('\r\n\r\n');
      const head = data.subarray(0, headEnd < 0 ? data.length : headEnd).toString('latin1');
      t.notOk(/[^\r]\n/.test(head), `${name}: no bare LF`);
    }
  }
});

t.test('valid torture fixtures parse', async (t) => {
  for (const name of Object.keys(expected.valid)) {
    const r = parseMessage(readFileSync(`${FIXTURES}valid/${name}`));
    t.ok(r.ok, `${name} (RFC 4475 ${expected.valid[name]!.rfc4475})${r.ok ? '' : ': ' + r.reason}`);
  }
});

t.test('invalid torture fixtures are rejected with a reason naming the problem', async (t) => {
  for (const [name, e] of Object.entries(expected.invalid)) {
    const r = parseMessage(readFileSync(`${FIXTURES}invalid/${name}`));
    if (r.ok) {
      t.fail(`${name} parsed but should not`);
      continue;
    }
    t.equal(r.status, e.status, `${name}: status`);
    t.match(r.reason, e.reason, `${name}: reason "${r.reason}"`);
    t.equal(r.request !== undefined, e.request, `${name}: request ${e.request ? 'present' : 'absent'}`);
    if (r.request !== undefined) {
      t.ok(r.request.method.length > 0 && r.request.uri.length > 0, `${name}: request line readable`);
      t.ok(r.request.headers.has('call-id') && r.request.headers.has('cseq'), `${name}: can be answered`);
      t.not(parseVia(r.request.headers.getAll('via')[0] ?? ''), null, `${name}: top Via parses`);
    }
  }
});

t.test('tortuous SUBSCRIBE: folding, compact forms, odd whitespace and case', async (t) => {
  const m = req(parseMessage(fixture('valid', 'v01-tortuous-subscribe')));
  t.equal(m.method, 'SUBSCRIBE');
  t.equal(m.uri, 'sip:alice.presence@pbx.example.com;unknownflag');
  const to = parseNameAddr(m.headers.get('to')!);
  t.equal(to?.displayName, 'Alice in the "Wonder" Lab');
  t.equal(tagOf(m.headers.get('from')!), '77aa-Kq1');
  t.same(parseCSeq(m.headers.get('cseq')!), { seq: 17, method: 'SUBSCRIBE' });
  t.equal(m.headers.get('max-forwards'), '0042');
  t.equal(m.headers.get('call-id'), 'c4x.tortuous.0001@192.0.2.44');
  t.equal(m.headers.get('subject'), '');
  t.equal(m.headers.get('newfangled-header'), 'first half of a value second half of the value');
  t.equal(m.headers.get('oddvaluedextension'), ';;,,;;,;');
  const vias = m.headers.getAll('via').map((v) => parseVia(v));
  t.same(
    vias.map((v) => [v?.protocol, v?.host, v?.branch]),
    [
      ['UDP', '192.0.2.44', 'z9hG4bKtortuous01'],
      ['TCP', 'relay.example.net', 'z9hG4bKrelay9q'],
      ['UDP', '198.51.100.7', 'z9hG4bKlast77'],
    ],
  );
  const ev = parseEvent(m.headers.get('event')!);
  t.same([ev?.event, ev?.id], ['presence', '99']);
  const contact = parseNameAddr(m.headers.get('contact')!);
  t.equal(contact?.displayName, 'Console "Seven"');
  t.equal(contact?.uri.port, 5070);
  t.same([...(contact?.params ?? [])], [['expires', '600'], ['plain-flag', null], ['q', '0.7']]);
  t.equal(m.headers.get('supported'), 'eventlist');
  t.equal(m.body.toString('latin1'), 'a body line\r\n');
});

t.test('wide range of valid characters', async (t) => {
  const data = fixture('valid', 'v02-wide-character-range');
  const m = req(parseMessage(data));
  t.equal(m.method, "~odd-Method.+*_`'!%42");
  const uri = parseUri(m.uri);
  t.equal(uri?.user, "1_weird.user~(sure!)&isn't+it$/wild?,/;;*");
  t.equal(uri?.password, '&pass=1,word!*pa$s~w_d.(right)');
  const to = parseNameAddr(m.headers.get('to')!);
  t.equal(to?.displayName, 'BEL:\x07 NUL:\x00 DEL:\x7f');
  const from = parseNameAddr(m.headers.get('from')!);
  t.equal(from?.displayName, "tok-1~` tok.2'+_ tok3*%!.-");
  t.equal(from?.params.get("xparam''~+*_!.-%"), 'καλημέρα');
  t.equal(from?.params.get('tag'), "_tok~1'+`*%!-.");
  const ext = m.headers.get("xheader-!.%*+_`'~");
  t.equal(ext, '\ufeffこんにちは', 'byte order mark kept, UTF-8 decoded');
});

t.test('escapes in URIs are decoded in user parts', async (t) => {
  const m = req(parseMessage(fixture('valid', 'v03-escaped-uri')));
  t.equal(parseUri(m.uri)?.user, 'sips:bob@example.com');
  t.equal(parseNameAddr(m.headers.get('to')!)?.uri.user, 'bob');
  t.equal(parseNameAddr(m.headers.get('from')!)?.uri.user, 'I have spaces');
  const contact = parseNameAddr(m.headers.get('contact')!);
  t.equal(contact?.uri.user, 'caller');
  t.equal(contact?.uri.params.get('n%61me'), 'v%61lue%25%34%31');

  const nul = req(parseMessage(fixture('valid', 'v04-escaped-null')));
  t.equal(parseUri(nul.uri)?.user, 'null-\x00-user');
  t.same(
    nul.headers.getAll('contact').map((c) => parseNameAddr(c)?.uri.user),
    ['\x00', '\x00\x00'],
  );

  const pct = req(parseMessage(fixture('valid', 'v05-percent-not-escape')));
  t.equal(pct.method, 'NOT%49FY', 'a method token is never unescaped');
  t.equal(parseNameAddr(pct.headers.get('to')!)?.displayName, '%Z%41');
  t.same(
    pct.headers.getAll('contact').map((c) => parseNameAddr(c)?.uri.user),
    ['alias1', 'alias2', 'alias3'],
  );
  t.equal(pct.headers.get('content-length'), '0', 'compact l expanded');
});

t.test('datagram semantics of Content-Length (RFC 3261 §18.3)', async (t) => {
  const two = req(parseMessage(fixture('valid', 'v08-extra-datagram-octets')));
  t.equal(two.method, 'PUBLISH');
  t.equal(two.body.length, 0, 'octets after Content-Length are dropped');

  const nocl = req(parseMessage(fixture('valid', 'v24-datagram-without-content-length')));
  t.equal(nocl.body.toString(), 'the body runs to the end of the datagram\r\n');

  const longer = parseMessage(subscribeWith((l) => l.map((x) => (x.startsWith('Content-Length') ? 'Content-Length: 4' : x)), 'abcdefgh'));
  t.equal(req(longer).body.toString(), 'abcd');

  const streamNoCl = parseMessage(subscribeWith((l) => l.filter((x) => !x.startsWith('Content-Length'))), { stream: true });
  t.equal(streamNoCl.ok, false);
  if (!streamNoCl.ok) {
    t.equal(streamNoCl.reason, 'Bad Request - missing Content-Length');
    t.ok(streamNoCl.request, 'answerable');
  }
  t.ok(parseMessage(Buffer.from(SUBSCRIBE), { stream: true }).ok, 'stream with Content-Length parses');
});

t.test('bodies are kept as bytes', async (t) => {
  const data = fixture('valid', 'v11-multipart-binary-body');
  const m = req(parseMessage(data));
  t.ok(m.body.equals(rawBody(data)), 'binary multipart body untouched');
  t.ok(m.body.includes(Buffer.from([0x80, 0xff, 0x00, 0xfe])), 'non-UTF-8 octets survive');
  t.equal(Number(m.headers.get('content-length')), m.body.length);

  const pidfData = fixture('valid', 'v22-notify-pidf-utf8');
  const pidf = req(parseMessage(pidfData));
  t.ok(pidf.body.equals(rawBody(pidfData)));
  t.ok(pidf.body.toString('utf8').includes('Grüße – im Gespräch 📞'));
  t.equal(parseNameAddr(pidf.headers.get('to')!)?.displayName, 'Jürgen Müller');
  t.equal(parseNameAddr(pidf.headers.get('from')!)?.uri.user, 'müller', 'raw UTF-8 user tolerated');
});

t.test('status lines', async (t) => {
  const utf8 = res(parseMessage(fixture('valid', 'v12-utf8-reason-phrase')));
  t.equal(utf8.status, 200);
  t.equal(utf8.reason, 'Ανοιχτό – alles gut: 200 = 2^3 × 5^2');
  const empty = res(parseMessage(fixture('valid', 'v13-empty-reason-phrase')));
  t.equal(empty.status, 100);
  t.equal(empty.reason, '');
  const noSp = res(parseMessage(Buffer.from('SIP/2.0 180\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKa\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n')));
  t.equal(noSp.status, 180);
  const bcast = res(parseMessage(fixture('valid', 'v20-broadcast-via-response')));
  t.equal(parseVia(bcast.headers.getAll('via')[0]!)?.received, '255.255.255.255');
});

t.test('URIs and Vias with IPv6, sips and tel', async (t) => {
  const m = req(parseMessage(fixture('valid', 'v21-ipv6-hosts')));
  const ruri = parseUri(m.uri);
  t.same([ruri?.host, ruri?.port, ruri?.params.get('transport')], ['[2001:db8::10]', 5060, 'udp']);
  const [v1, v2] = m.headers.getAll('via').map((v) => parseVia(v));
  t.same([v1?.host, v1?.port, v1?.received, v1?.rport], ['[2001:db8::9:1]', 5070, '[2001:db8::9:2]', 5071]);
  t.equal(v2?.host, '[2001:DB8::7]');
  t.equal(parseNameAddr(m.headers.get('from')!)?.uri.host, '[2001:db8::9:1]');

  const s = req(parseMessage(fixture('valid', 'v26-sips-and-tel-uris')));
  t.equal(parseUri(s.uri)?.scheme, 'sips');
  const to = parseNameAddr(s.headers.get('to')!);
  t.same([to?.uri.scheme, to?.uri.user, to?.uri.params.get('phone-context')], ['tel', '+1-201-555-0123', 'example.com']);
  t.equal(parseUri(req(parseMessage(fixture('valid', 'v27-tel-request-uri'))).uri)?.user, '+44-20-7946-0018');
});

t.test('multiple values in one header and one value over several headers', async (t) => {
  const m = req(parseMessage(fixture('valid', 'v25-list-headers')));
  t.same(m.headers.getAll('via').map((v) => parseVia(v)?.branch), ['z9hG4bKlist1', 'z9hG4bKlist2', 'z9hG4bKlist3']);
  t.equal(m.headers.getAll('accept').length, 4);
  t.same(m.headers.getAll('route'), ['<sip:p1.example.com;lr>', '<sip:p2.example.com;lr>']);
  t.equal(parseNameAddr(m.headers.get('from')!)?.displayName, 'Doe, Jane', 'comma in quoted display name of a single-valued header');
  t.equal(parseNameAddr(m.headers.getAll('contact')[0]!)?.displayName, 'Doe, Jane', 'comma inside quotes does not split a list');

  const transports = req(parseMessage(fixture('valid', 'v10-transports')));
  t.same(
    transports.headers.getAll('via').map((v) => parseVia(v)?.protocol),
    ['UDP', 'SCTP', 'TLS', 'UNKNOWN', 'WS', 'TCP'],
  );
});

t.test('other valid oddities', async (t) => {
  const semi = req(parseMessage(fixture('valid', 'v09-semicolon-in-user')));
  const u = parseUri(semi.uri);
  t.same([u?.user, u?.host, u?.params.size], ['user;par=u@example.net', 'example.com', 0]);
  const unk = req(parseMessage(fixture('valid', 'v15-unknown-schemes-in-headers')));
  t.equal(parseNameAddr(unk.headers.get('to')!)?.uri.scheme, 'urn');
  t.equal(parseNameAddr(unk.headers.get('from')!)?.uri.opaque, '//www.example.com/watchers/seven');
  const legacy = req(parseMessage(fixture('valid', 'v19-rfc2543-style')));
  t.equal(parseVia(legacy.headers.get('via')!)?.branch, undefined);
  t.equal(tagOf(legacy.headers.get('from')!), undefined);
  const lead = req(parseMessage(fixture('valid', 'v23-leading-crlf')));
  t.equal(lead.method, 'OPTIONS');
  const long = req(parseMessage(fixture('valid', 'v07-long-values')));
  t.equal(long.headers.getAll('via').length, 20);
  t.equal(long.headers.get('call-id')!.length, 10 * 60 + '@example.net'.length);
  const reg = req(parseMessage(fixture('valid', 'v18-contact-params-and-escaped-header')));
  const c = parseNameAddr(reg.headers.get('contact')!);
  t.equal(c?.uri.headers.get('Route'), '%3Csip:proxy.example.com%3E');
  t.equal(c?.params.get('+sip.instance'), '<urn:uuid:0c1d2e3f-aaaa-bbbb-cccc-000000000018>');
});

t.test('request is attached only when a response can be formed', async (t) => {
  const badCseq = parseMessage(subscribeWith((l) => l.map((x) => (x.startsWith('CSeq') ? 'CSeq: 1 NOTIFY' : x))));
  t.equal(badCseq.ok, false);
  if (!badCseq.ok) {
    t.equal(badCseq.request?.method, 'SUBSCRIBE');
    t.equal(badCseq.request?.headers.get('call-id'), 'a84b4c76e66710@192.0.2.10');
  }
  const noFrom = parseMessage(subscribeWith((l) => l.filter((x) => !x.startsWith('From'))));
  t.equal(!noFrom.ok && noFrom.request, undefined);
  const garbageLine = parseMessage(Buffer.from('this is not sip\r\n\r\n'));
  t.same(garbageLine.ok ? 'ok' : [garbageLine.status, garbageLine.request], [400, undefined]);
});

t.test('maxSize gives 513 with the request', async (t) => {
  const data = subscribeWith((l) => l, '');
  const r = parseMessage(data, { maxSize: 100 });
  t.equal(r.ok, false);
  if (!r.ok) {
    t.equal(r.status, 513);
    t.equal(r.reason, 'Message Too Large');
    t.equal(r.request?.method, 'SUBSCRIBE');
  }
  t.ok(parseMessage(data, { maxSize: data.length }).ok, 'at the limit is fine');
});

t.test('empty and keep-alive input', async (t) => {
  for (const s of ['', '\r\n', '\r\n\r\n', '\r\n\r\n\r\n']) {
    const r = parseMessage(Buffer.from(s));
    t.equal(r.ok, false, JSON.stringify(s));
  }
  t.ok(isKeepAlive(Buffer.from('\r\n\r\n')));
  t.ok(isKeepAlive(Buffer.from('\r\n')));
  t.notOk(isKeepAlive(Buffer.alloc(0)));
  t.notOk(isKeepAlive(Buffer.from('\r\nX')));
});

t.test('never throws on arbitrary or truncated input', async (t) => {
  let seed = 0x2545f491;
  const rand = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 0x100000000;
  };
  const alphabet = Buffer.from('SIP/2.0 :;,<>"\\\r\n\t=@%sip:abc123[]?&');
  let failures = 0;
  for (let i = 0; i < 2000; i++) {
    const len = Math.floor(rand() * 200);
    const b = Buffer.alloc(len);
    for (let j = 0; j < len; j++) b[j] = rand() < 0.5 ? Math.floor(rand() * 256) : alphabet[Math.floor(rand() * alphabet.length)]!;
    const r = parseMessage(b);
    if (r.ok) failures++;
  }
  t.equal(failures, 0, 'random bytes never parse as a message');
  const full = fixture('valid', 'v01-tortuous-subscribe');
  let threw = 0;
  for (let cut = 0; cut < full.length; cut++) {
    try {
      parseMessage(full.subarray(0, cut));
      parseMessage(full.subarray(0, cut), { stream: true });
    } catch {
      threw++;
    }
  }
  t.equal(threw, 0, 'truncated prefixes never throw');
  // mutate single bytes of a valid message
  for (let i = 0; i < full.length; i++) {
    const m = Buffer.from(full);
    m[i] = [0x00, 0x20, 0x3a, 0x3b, 0x22, 0x3c, 0x0d][i % 7]!;
    try {
      parseMessage(m);
    } catch {
      threw++;
    }
  }
  t.equal(threw, 0, 'mutated messages never throw');
});

// ---------------------------------------------------------------------------
// StreamFramer

function framed(events: FramerEvent[]): string[] {
  return events.map((e) => (e.type === 'message' ? 'message:' + e.data.toString('latin1') : e.type === 'keepalive' ? 'keepalive' : `error:${e.reason}:${e.fatal}`));
}

const MSG_A = Buffer.from(SUBSCRIBE);
const MSG_B = Buffer.from(
  'NOTIFY sip:c@192.0.2.10 SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bKn1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: n1\r\nCSeq: 2 NOTIFY\r\nl: 5\r\n\r\nhello',
);

t.test('framer: several messages in one chunk, views of the input', async (t) => {
  const f = new StreamFramer({ maxMessageSize: 65535 });
  const ev = f.push(Buffer.concat([MSG_A, MSG_B, MSG_A]));
  t.same(framed(ev), ['message:' + MSG_A.toString('latin1'), 'message:' + MSG_B.toString('latin1'), 'message:' + MSG_A.toString('latin1')]);
  const second = ev[1];
  if (second?.type === 'message') {
    const r = parseMessage(second.data, { stream: true });
    t.equal(r.ok && r.message.body.toString(), 'hello', 'compact Content-Length honoured');
  }
});

t.test('framer: byte-by-byte delivery', async (t) => {
  const f = new StreamFramer({ maxMessageSize: 65535 });
  const all = Buffer.concat([Buffer.from('\r\n\r\n'), MSG_B, Buffer.from('\r\n'), MSG_A]);
  const events: FramerEvent[] = [];
  for (let i = 0; i < all.length; i++) events.push(...f.push(all.subarray(i, i + 1)));
  t.same(framed(events), ['keepalive', 'message:' + MSG_B.toString('latin1'), 'message:' + MSG_A.toString('latin1')]);
});

t.test('framer: keep-alives (RFC 5626 §4.4.1)', async (t) => {
  const f = new StreamFramer({ maxMessageSize: 65535 });
  t.same(framed(f.push(Buffer.from('\r\n\r\n'))), ['keepalive']);
  t.same(framed(f.push(Buffer.from('\r\n\r\n\r\n\r\n'))), ['keepalive', 'keepalive']);
  t.same(framed(f.push(Buffer.from('\r\n'))), [], 'half a ping waits');
  t.same(framed(f.push(Buffer.from('\r\n'))), ['keepalive'], 'completed across chunks');
  t.same(framed(f.push(Buffer.concat([Buffer.from('\r\n'), MSG_B]))), ['message:' + MSG_B.toString('latin1')], 'leading CRLF ignored');
});

t.test('framer: size limit and bad lengths are fatal', async (t) => {
  const small = new StreamFramer({ maxMessageSize: 100 });
  const ev = small.push(MSG_A);
  t.equal(ev.length, 1);
  const e = ev[0];
  t.equal(e?.type, 'error');
  if (e?.type === 'error') {
    t.equal(e.fatal, true);
    t.equal(e.reason, 'Message Too Large');
    const r = e.head === undefined ? undefined : parseMessage(e.head, { maxSize: 0 });
    t.ok(r !== undefined && !r.ok && r.status === 513 && r.request?.method === 'SUBSCRIBE', 'head lets the transport answer 513');
  }
  t.same(small.push(MSG_B), [], 'closed after a fatal error');

  const endless = new StreamFramer({ maxMessageSize: 1000 });
  t.same(framed(endless.push(Buffer.alloc(900, 0x41))), []);
  t.same(framed(endless.push(Buffer.alloc(200, 0x41))), ['error:Message Too Large:true'], 'header block never ends');

  const bigBody = new StreamFramer({ maxMessageSize: 1000 });
  const hdr = Buffer.from('NOTIFY sip:a@b SIP/2.0\r\nContent-Length: 5000\r\n\r\n');
  t.same(framed(bigBody.push(hdr)), ['error:Message Too Large:true'], 'declared length over the limit');

  const neg = new StreamFramer({ maxMessageSize: 1000 });
  const negMsg = 'NOTIFY sip:a@b SIP/2.0\r\nContent-Length: -3\r\n\r\nabc';
  t.same(framed(neg.push(Buffer.from(negMsg))), [
    'message:NOTIFY sip:a@b SIP/2.0\r\nContent-Length: -3\r\n\r\n',
    'error:Bad Request - malformed Content-Length:true',
  ]);

  const conflict = new StreamFramer({ maxMessageSize: 1000 });
  const c = framed(conflict.push(Buffer.from('NOTIFY sip:a@b SIP/2.0\r\nl: 3\r\nContent-Length: 4\r\n\r\nabcd')));
  t.equal(c.at(-1), 'error:Bad Request - malformed Content-Length:true', 'conflicting lengths');
});

t.test('framer: missing Content-Length hands over the header block', async (t) => {
  const f = new StreamFramer({ maxMessageSize: 65535 });
  const noCl = subscribeWith((l) => l.filter((x) => !x.startsWith('Content-Length')));
  const ev = f.push(Buffer.concat([noCl, MSG_B]));
  t.same(framed(ev), ['message:' + noCl.toString('latin1'), 'message:' + MSG_B.toString('latin1')]);
  const first = ev[0];
  if (first?.type === 'message') {
    const r = parseMessage(first.data, { stream: true });
    t.equal(!r.ok && r.reason, 'Bad Request - missing Content-Length');
  }
});

t.test('framer: large body arriving in many chunks', async (t) => {
  const body = Buffer.alloc(20000, 0x61);
  const msg = Buffer.concat([Buffer.from(`PUBLISH sip:a@b SIP/2.0\r\nContent-Length: ${body.length}\r\n\r\n`), body]);
  const f = new StreamFramer({ maxMessageSize: 65535 });
  const events: FramerEvent[] = [];
  for (let i = 0; i < msg.length; i += 1000) events.push(...f.push(msg.subarray(i, i + 1000)));
  t.equal(events.length, 1);
  const e = events[0];
  t.ok(e?.type === 'message' && e.data.equals(msg));
});

t.test('takeTopVia: the top Via the parse just checked, handed out once, then parsed afresh', async (t) => {
  const top = 'SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKtake1;rport';
  const text = `OPTIONS sip:a@example.com SIP/2.0\r\nVia: ${top}\r\nVia: SIP/2.0/UDP 192.0.2.11;branch=z9hG4bKtake0\r\nFrom: <sip:b@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: take@x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`;
  const r = parseMessage(Buffer.from(text));
  t.ok(r.ok);
  const first = takeTopVia(top);
  t.same(first, parseVia(top), 'what parseVia gives');
  first!.received = '198.51.100.1'; // the transaction layer stamps it
  const second = takeTopVia(top);
  t.not(second, first, 'not handed out twice');
  t.same(second, parseVia(top), 'a fresh parse, without the change');
  t.equal(takeTopVia('SIP/2.0/UDP 192.0.2.11;branch=z9hG4bKtake0')?.branch, 'z9hG4bKtake0', 'another value: parsed');
  t.equal(takeTopVia('not a via'), null);
  parseMessage(Buffer.from(text.replace('z9hG4bKtake1', 'z9hG4bKtake2')));
  t.equal(takeTopVia(top)?.branch, 'z9hG4bKtake1', 'the next parse replaced what is kept: the old value parses afresh');
});
