import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Headers } from '../../src/sip/headers.js';
import { createRequest, createResponse, type SipMessage } from '../../src/sip/message.js';
import { parseMessage } from '../../src/sip/parser.js';
import { serializeMessage } from '../../src/sip/serializer.js';

const VALID = fileURLToPath(new URL('../../sip-fixtures/torture/valid/', import.meta.url));

function parsed(data: Buffer): SipMessage {
  const r = parseMessage(data);
  if (!r.ok) throw new Error(r.reason);
  return r.message;
}

t.test('request: start line, wire names, header order, Content-Length last', async (t) => {
  const h = Headers.from([
    ['v', 'SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKa1'],
    ['max-forwards', '70'],
    ['from', '<sip:gw@example.com>;tag=g1'],
    ['to', '<sip:console@example.com>;tag=c1'],
    ['i', 'call-1@192.0.2.1'],
    ['cseq', '7 NOTIFY'],
    ['event', 'presence'],
    ['subscription-state', 'active;expires=600'],
    ['www-authenticate', 'Digest realm="x"'],
    ['sip-etag', 'e1'],
    ['content-type', 'application/pidf+xml'],
  ]);
  const body = Buffer.from('<presence>Grüße 📞</presence>', 'utf8');
  const out = serializeMessage(createRequest('NOTIFY', 'sip:console@192.0.2.9:5070', h, body));
  const text = out.toString('utf8');
  t.equal(
    text,
    'NOTIFY sip:console@192.0.2.9:5070 SIP/2.0\r\n' +
      'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKa1\r\n' +
      'Max-Forwards: 70\r\n' +
      'From: <sip:gw@example.com>;tag=g1\r\n' +
      'To: <sip:console@example.com>;tag=c1\r\n' +
      'Call-ID: call-1@192.0.2.1\r\n' +
      'CSeq: 7 NOTIFY\r\n' +
      'Event: presence\r\n' +
      'Subscription-State: active;expires=600\r\n' +
      'WWW-Authenticate: Digest realm="x"\r\n' +
      'SIP-ETag: e1\r\n' +
      'Content-Type: application/pidf+xml\r\n' +
      `Content-Length: ${body.length}\r\n` +
      '\r\n' +
      '<presence>Grüße 📞</presence>',
  );
  t.ok(body.length > '<presence>Grüße 📞</presence>'.length, 'length counted in bytes, not characters');
  t.ok(out.subarray(out.length - body.length).equals(body));
});

t.test('a stale Content-Length is replaced by the real one', async (t) => {
  const h = Headers.from([
    ['content-length', '999'],
    ['call-id', 'x'],
    ['l', '5'],
  ]);
  const text = serializeMessage(createRequest('OPTIONS', 'sip:a@b', h)).toString();
  t.equal(text, 'OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n');
});

t.test('response status line and binary body', async (t) => {
  const reqMsg = parsed(readFileSync(VALID + 'v10-transports.sip'));
  if (reqMsg.kind !== 'request') throw new Error('request expected');
  const body = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x0d, 0x0a, 0x80]);
  const r = createResponse(reqMsg, 200, undefined, { toTag: 'srv1', body, contentType: 'application/octet-stream' });
  const out = serializeMessage(r);
  t.ok(out.toString('latin1').startsWith('SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP t1.example.net;branch=z9hG4bKtr1\r\n'));
  t.ok(out.subarray(out.length - body.length).equals(body), 'body bytes untouched');
  const back = parsed(out);
  t.equal(back.kind, 'response');
  t.ok(back.body.equals(body));
  t.equal(back.headers.getAll('via').length, 6);
  t.equal(serializeMessage({ kind: 'response', status: 100, reason: '', headers: new Headers(), body: Buffer.alloc(0) }).toString(), 'SIP/2.0 100 \r\nContent-Length: 0\r\n\r\n');
});

t.test('line breaks in values cannot inject headers', async (t) => {
  const h = Headers.from([['subject', 'hello\r\nVia: SIP/2.0/UDP evil;branch=z9hG4bKevil'], ['x-a', 'b\nc']]);
  const out = serializeMessage(createRequest('MESSAGE', 'sip:a@b\r\nX: y', h)).toString();
  const lines = out.split('\r\n');
  t.equal(lines.length, 6, 'no extra lines');
  t.equal(lines[0], 'MESSAGE sip:a@b  X: y SIP/2.0');
  t.equal(lines[1], 'Subject: hello  Via: SIP/2.0/UDP evil;branch=z9hG4bKevil');
  t.equal(lines[2], 'X-A: b c');
  const bad = serializeMessage({ kind: 'response', status: 200, reason: 'OK\r\nEvil: 1', headers: new Headers(), body: Buffer.alloc(0) }).toString();
  t.equal(bad.split('\r\n')[0], 'SIP/2.0 200 OK  Evil: 1');
});

t.test('UTF-8 text, line breaks next to it, and a head larger than the reused scratch buffer', async (t) => {
  const h = Headers.from([['subject', 'Grüße\r\nVia: evil 😀'], ['x-a', 'plain'], ['x-b', 'ü']]);
  const out = serializeMessage({ kind: 'response', status: 486, reason: 'Beschäftigt', headers: h, body: Buffer.from('€') });
  t.equal(
    out.toString('utf8'),
    'SIP/2.0 486 Beschäftigt\r\nSubject: Grüße  Via: evil 😀\r\nX-A: plain\r\nX-B: ü\r\nContent-Length: 3\r\n\r\n€',
  );
  const long = 'x'.repeat(40_000) + 'é';
  const big = serializeMessage(createRequest('MESSAGE', 'sip:a@b', Headers.from([['subject', long]])));
  t.equal(big.toString('utf8'), `MESSAGE sip:a@b SIP/2.0\r\nSubject: ${long}\r\nContent-Length: 0\r\n\r\n`);
  const after = serializeMessage(createRequest('OPTIONS', 'sip:a@b'));
  t.equal(after.toString('latin1'), 'OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n', 'exactly its own bytes after a larger one');
  t.equal(after.length, after.buffer.byteLength, 'a buffer of its own, not a view on a shared one');
});

t.test('every valid torture fixture survives parse → serialize → parse', async (t) => {
  for (const name of readdirSync(VALID).filter((f) => f.endsWith('.sip'))) {
    const first = parsed(readFileSync(VALID + name));
    const second = parsed(serializeMessage(first));
    t.equal(second.kind, first.kind, `${name}: kind`);
    if (first.kind === 'request' && second.kind === 'request') {
      t.same([second.method, second.uri], [first.method, first.uri], `${name}: request line`);
    } else if (first.kind === 'response' && second.kind === 'response') {
      t.same([second.status, second.reason], [first.status, first.reason], `${name}: status line`);
    }
    const strip = (m: SipMessage): Array<[string, string]> =>
      [...m.headers].filter((f) => f.name !== 'content-length').map((f) => [f.name, f.value]);
    t.same(strip(second), strip(first), `${name}: headers`);
    t.ok(second.body.equals(first.body), `${name}: body`);
    t.equal(second.headers.get('content-length'), String(first.body.length), `${name}: Content-Length`);
  }
});
