import t from 'tap';
import { answerChallenge, DigestClient, parseChallenge } from '../../src/sip/digest.js';
import { Headers } from '../../src/sip/headers.js';
import { createRequest, createResponse } from '../../src/sip/message.js';

// RFC 7616 §3.9.1 example inputs
const REALM = 'http-auth@example.org';
const NONCE = '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v';
const OPAQUE = 'FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS';
const CNONCE = 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ';
const CREDS = { username: 'Mufasa', password: 'Circle of Life' };

function challengeText(algorithm: string): string {
  return `Digest realm="${REALM}", qop="auth, auth-int", algorithm=${algorithm}, nonce="${NONCE}", opaque="${OPAQUE}"`;
}

function param(header: string, name: string): string | undefined {
  const m = new RegExp(`[ ,]${name}=("([^"]*)"|[^, ]+)`).exec(header);
  return m === null ? undefined : (m[2] ?? m[1]);
}

t.test('parseChallenge reads the RFC 7616 example challenge', async (t) => {
  const c = parseChallenge(challengeText('SHA-256'), false);
  t.ok(c);
  t.equal(c?.realm, REALM);
  t.equal(c?.nonce, NONCE);
  t.equal(c?.opaque, OPAQUE);
  t.equal(c?.algorithm, 'SHA-256');
  t.same(c?.qop, ['auth', 'auth-int']);
  t.equal(c?.stale, false);
  t.equal(c?.proxy, false);
});

t.test('parseChallenge: defaults, stale, escapes and rejects', async (t) => {
  const c = parseChallenge('digest realm="a\\"b", nonce=abc, stale=TRUE', true);
  t.equal(c?.algorithm, 'MD5', 'absent algorithm means MD5');
  t.equal(c?.realm, 'a"b', 'quoted-pair unescaped');
  t.equal(c?.stale, true);
  t.equal(c?.proxy, true);
  t.equal(c?.qop, undefined);
  t.equal(parseChallenge(`Digest realm="r", nonce="n", algorithm=SHA-512-256`, false), null, 'unknown algorithm');
  t.equal(parseChallenge(`Digest realm="r", nonce="n", algorithm=FOO`, false), null, 'unknown algorithm');
  t.equal(parseChallenge('Basic realm="r"', false), null, 'not digest');
  t.equal(parseChallenge('Digest nonce="n"', false), null, 'no realm');
  t.equal(parseChallenge('Digest realm="r, nonce="n"', false), null, 'unterminated quote');
  t.equal(parseChallenge('Digest realm', false), null);
  t.equal(parseChallenge('', false), null);
});

t.test('MD5 response of RFC 7616 §3.9.1', async (t) => {
  const client = new DigestClient();
  const c = parseChallenge(challengeText('MD5'), false)!;
  const header = client.authorize(c, CREDS, 'GET', '/dir/index.html', CNONCE);
  t.equal(param(header, 'response'), '8ca523f5e9506fed4657c9700eebdbec');
  t.equal(param(header, 'nc'), '00000001');
  t.equal(param(header, 'qop'), 'auth');
  t.equal(param(header, 'cnonce'), CNONCE);
  t.equal(param(header, 'opaque'), OPAQUE);
  t.equal(param(header, 'uri'), '/dir/index.html');
  t.match(header, /^Digest username="Mufasa", /);
});

t.test('SHA-256 response of RFC 7616 §3.9.1', async (t) => {
  const client = new DigestClient();
  const c = parseChallenge(challengeText('SHA-256'), false)!;
  const header = client.authorize(c, CREDS, 'GET', '/dir/index.html', CNONCE);
  t.equal(param(header, 'response'), '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1');
  t.equal(param(header, 'algorithm'), 'SHA-256');
});

t.test('RFC 2617 §3.5 example (MD5, qop=auth)', async (t) => {
  const c = parseChallenge(
    'Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"',
    false,
  )!;
  const header = new DigestClient().authorize(c, { username: 'Mufasa', password: 'Circle Of Life' }, 'GET', '/dir/index.html', '0a4f113b');
  t.equal(param(header, 'response'), '6629fae49393a05397450978507c4ef1');
});

t.test('nonce count increments per nonce', async (t) => {
  const client = new DigestClient();
  const c = parseChallenge(challengeText('MD5'), false)!;
  client.authorize(c, CREDS, 'GET', '/', CNONCE);
  const second = client.authorize(c, CREDS, 'GET', '/', CNONCE);
  t.equal(param(second, 'nc'), '00000002');
  const other = parseChallenge(`Digest realm="${REALM}", qop="auth", nonce="other"`, false)!;
  t.equal(param(client.authorize(other, CREDS, 'GET', '/', CNONCE), 'nc'), '00000001');
});

t.test('no-qop challenge answered the RFC 2617 way', async (t) => {
  const client = new DigestClient();
  const c = parseChallenge('Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093"', false)!;
  const header = client.authorize(c, { username: 'Mufasa', password: 'Circle Of Life' }, 'GET', '/dir/index.html');
  // RFC 2617 §3.5 example with qop removed: response = MD5(HA1:nonce:HA2)
  t.equal(param(header, 'qop'), undefined);
  t.equal(param(header, 'nc'), undefined);
  t.equal(param(header, 'cnonce'), undefined);
  const { createHash } = await import('node:crypto');
  const md5 = (s: string) => createHash('md5').update(s).digest('hex');
  const ha1 = md5('Mufasa:testrealm@host.com:Circle Of Life');
  const ha2 = md5('GET:/dir/index.html');
  t.equal(param(header, 'response'), md5(`${ha1}:dcd98b7102dd2f0e8b11d0f600bfb0c093:${ha2}`));
});

function subscribe(): ReturnType<typeof createRequest> {
  return createRequest(
    'SUBSCRIBE',
    'sip:alice@pbx.example.com',
    Headers.from([
      ['Via', 'SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKold'],
      ['From', '<sip:gw@example.com>;tag=abc'],
      ['To', '<sip:alice@pbx.example.com>'],
      ['Call-ID', 'call-1@example.com'],
      ['CSeq', '7 SUBSCRIBE'],
      ['Event', 'presence'],
    ]),
  );
}

t.test('answerChallenge: 401 → Authorization, CSeq + 1, no Via, SHA-256 preferred', async (t) => {
  const req = subscribe();
  const res = createResponse(req, 401);
  res.headers.append('WWW-Authenticate', `Digest realm="pbx", nonce="n1", qop="auth", algorithm=MD5`);
  res.headers.append('WWW-Authenticate', `Digest realm="pbx", nonce="n2", qop="auth", algorithm=SHA-256`);
  const next = answerChallenge(req, res, { username: 'gw', password: 'pw' }, new DigestClient());
  t.ok(next);
  t.equal(next!.headers.get('cseq'), '8 SUBSCRIBE');
  t.equal(next!.headers.has('via'), false);
  t.equal(next!.headers.has('proxy-authorization'), false);
  const auth = next!.headers.get('authorization')!;
  t.equal(param(auth, 'algorithm'), 'SHA-256');
  t.equal(param(auth, 'nonce'), 'n2');
  t.equal(param(auth, 'uri'), 'sip:alice@pbx.example.com');
  t.equal(req.headers.get('cseq'), '7 SUBSCRIBE', 'original request untouched');
  t.equal(next!.headers.get('event'), 'presence');
});

t.test('answerChallenge: 407 → Proxy-Authorization; realm restriction; unusable → null', async (t) => {
  const req = subscribe();
  const res = createResponse(req, 407);
  res.headers.append('Proxy-Authenticate', `Digest realm="proxy", nonce="p1"`);
  const next = answerChallenge(req, res, { username: 'gw', password: 'pw' }, new DigestClient());
  t.ok(next?.headers.get('proxy-authorization'));
  t.equal(next?.headers.has('authorization'), false);

  t.equal(answerChallenge(req, res, { username: 'gw', password: 'pw', realm: 'other' }, new DigestClient()), null, 'other realm');

  const unknown = createResponse(req, 401);
  unknown.headers.append('WWW-Authenticate', 'Digest realm="pbx", nonce="n", algorithm=SHA-999');
  t.equal(answerChallenge(req, unknown, { username: 'gw', password: 'pw' }, new DigestClient()), null, 'unknown algorithm');

  const authInt = createResponse(req, 401);
  authInt.headers.append('WWW-Authenticate', 'Digest realm="pbx", nonce="n", qop="auth-int"');
  t.equal(answerChallenge(req, authInt, { username: 'gw', password: 'pw' }, new DigestClient()), null, 'auth-int only');

  t.equal(answerChallenge(req, createResponse(req, 403), { username: 'gw', password: 'pw' }, new DigestClient()), null);
});

t.test('answerChallenge replaces an earlier answer for the same realm', async (t) => {
  const client = new DigestClient();
  const req = subscribe();
  const res = createResponse(req, 401);
  res.headers.append('WWW-Authenticate', `Digest realm="pbx", nonce="n1", qop="auth"`);
  const first = answerChallenge(req, res, { username: 'gw', password: 'pw' }, client)!;
  const stale = createResponse(first, 401);
  stale.headers.append('WWW-Authenticate', `Digest realm="pbx", nonce="n2", qop="auth", stale=true`);
  const second = answerChallenge(first, stale, { username: 'gw', password: 'pw' }, client)!;
  const auths = second.headers.getAll('authorization');
  t.equal(auths.length, 1);
  t.equal(param(auths[0]!, 'nonce'), 'n2');
  t.equal(second.headers.get('cseq'), '9 SUBSCRIBE');
});
