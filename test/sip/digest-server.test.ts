import t from 'tap';
import { createHash } from 'node:crypto';
import { DigestServer, parseAuthParams } from '../../src/sip/digest-server.js';
import { answerChallenge, DigestClient } from '../../src/sip/digest.js';
import { Headers } from '../../src/sip/headers.js';
import { createRequest, type SipRequest, type SipResponse } from '../../src/sip/message.js';

const REALM = 'gw.example.test';
const SECRET = Buffer.from('0123456789abcdef0123456789abcdef');
const USERS: Record<string, string> = { console1: 's3cret!', alice: 'wonder land' };
const passwordOf = (u: string): string | undefined => USERS[u];

function subscribe(uri = 'sip:1001@gw.example.test'): SipRequest {
  return createRequest(
    'SUBSCRIBE',
    uri,
    Headers.from([
      ['via', 'SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKd1'],
      ['from', '<sip:console1@gw.example.test>;tag=f1'],
      ['to', '<sip:1001@gw.example.test>'],
      ['call-id', 'digest-test-1'],
      ['cseq', '1 SUBSCRIBE'],
      ['event', 'presence'],
    ]),
  );
}

function md(alg: 'md5' | 'sha256', s: string): string {
  return createHash(alg).update(s).digest('hex');
}

/** An Authorization value computed here, independently of the code under test. */
function authorization(o: {
  alg: 'MD5' | 'SHA-256';
  username: string;
  password: string;
  nonce: string;
  uri: string;
  method?: string;
  nc?: string;
  cnonce?: string;
  qop?: boolean;
  realm?: string;
}): string {
  const hash = o.alg === 'MD5' ? 'md5' : 'sha256';
  const realm = o.realm ?? REALM;
  const ha1 = md(hash, `${o.username}:${realm}:${o.password}`);
  const ha2 = md(hash, `${o.method ?? 'SUBSCRIBE'}:${o.uri}`);
  const nc = o.nc ?? '00000001';
  const cnonce = o.cnonce ?? 'c0ffee42';
  if (o.qop === false) {
    const r = md(hash, `${ha1}:${o.nonce}:${ha2}`);
    return `Digest username="${o.username}", realm="${realm}", nonce="${o.nonce}", uri="${o.uri}", response="${r}", algorithm=${o.alg}`;
  }
  const r = md(hash, `${ha1}:${o.nonce}:${nc}:${cnonce}:auth:${ha2}`);
  return `Digest username="${o.username}", realm="${realm}", nonce="${o.nonce}", uri="${o.uri}", response="${r}", algorithm=${o.alg}, qop=auth, nc=${nc}, cnonce="${cnonce}"`;
}

function nonceOf(challenge: SipResponse, header = 'www-authenticate'): string {
  const v = challenge.headers.get(header);
  const m = /nonce="([^"]+)"/.exec(v ?? '');
  if (m === null) throw new Error('no nonce');
  return m[1]!;
}

function withAuth(req: SipRequest, value: string, header = 'authorization'): SipRequest {
  req.headers.append(header, value);
  return req;
}

t.test('challenge: 401, SHA-256 offered before MD5, qop=auth, To tag', async (t) => {
  const server = new DigestServer({ realm: REALM, secret: SECRET });
  const r = server.challenge(subscribe(), false);
  t.equal(r.status, 401);
  const values = r.headers.getAll('www-authenticate');
  t.equal(values.length, 2);
  t.match(values[0], /^Digest realm="gw\.example\.test", nonce="[A-Za-z0-9_-]+", algorithm=SHA-256, qop="auth"$/);
  t.match(values[1], /algorithm=MD5/);
  t.notMatch(values[0], /stale/);
  t.match(r.headers.get('to'), /;tag=/);
  t.equal(r.headers.get('call-id'), 'digest-test-1');

  const p = server.challenge(subscribe(), true, true);
  t.equal(p.status, 407);
  t.equal(p.headers.getAll('www-authenticate').length, 0);
  t.match(p.headers.get('proxy-authenticate'), /stale=true/);
  t.not(nonceOf(r), nonceOf(p, 'proxy-authenticate'), 'every challenge gets a fresh nonce');
});

t.test('no credentials → undefined; foreign realm only → undefined', async (t) => {
  const server = new DigestServer({ realm: REALM, secret: SECRET });
  t.equal(server.verify(subscribe(), false, passwordOf), undefined);
  const req = withAuth(subscribe(), 'Digest username="x", realm="other.realm", nonce="n", uri="sip:1001@gw.example.test", response="00"');
  t.equal(server.verify(req, false, passwordOf), undefined);
  t.equal(server.verify(withAuth(subscribe(), 'Basic Zm9vOmJhcg=='), false, passwordOf), undefined, 'other schemes are not ours');
});

for (const alg of ['MD5', 'SHA-256'] as const) {
  t.test(`${alg}: a correct answer is accepted, nonce count must grow`, async (t) => {
    const server = new DigestServer({ realm: REALM, secret: SECRET });
    const nonce = nonceOf(server.challenge(subscribe(), false));
    const uri = 'sip:1001@gw.example.test';
    const ok = server.verify(withAuth(subscribe(), authorization({ alg, username: 'alice', password: 'wonder land', nonce, uri })), false, passwordOf);
    t.same(ok, { ok: true, username: 'alice' });

    const replay = server.verify(withAuth(subscribe(), authorization({ alg, username: 'alice', password: 'wonder land', nonce, uri })), false, passwordOf);
    t.equal(replay?.ok, false, 'the same nonce count again is a replay');
    if (replay?.ok === false) t.match(replay.reason, /replay/);

    const next = server.verify(
      withAuth(subscribe(), authorization({ alg, username: 'alice', password: 'wonder land', nonce, uri, nc: '00000002', cnonce: 'other' })),
      false,
      passwordOf,
    );
    t.same(next, { ok: true, username: 'alice' });

    const wrong = server.verify(withAuth(subscribe(), authorization({ alg, username: 'alice', password: 'wonderland', nonce, uri, nc: '00000003' })), false, passwordOf);
    t.same(wrong, { ok: false, stale: false, malformed: false, reason: 'wrong user name or password', username: 'alice' });

    const unknown = server.verify(withAuth(subscribe(), authorization({ alg, username: 'mallory', password: '', nonce, uri })), false, passwordOf);
    t.equal(unknown?.ok, false, 'an unknown user (even with an empty password) is refused');
  });
}

t.test('RFC 2617 answers without qop are accepted', async (t) => {
  const server = new DigestServer({ realm: REALM, secret: SECRET });
  const nonce = nonceOf(server.challenge(subscribe(), false));
  const req = withAuth(subscribe(), authorization({ alg: 'MD5', qop: false, username: 'console1', password: 's3cret!', nonce, uri: 'sip:1001@gw.example.test' }));
  t.same(server.verify(req, false, passwordOf), { ok: true, username: 'console1' });
});

t.test('the real DigestClient answering our challenge is accepted (401 and 407)', async (t) => {
  for (const proxy of [false, true]) {
    const server = new DigestServer({ realm: REALM, secret: SECRET });
    const first = subscribe();
    const challenge = server.challenge(first, proxy);
    const retry = answerChallenge(first, challenge, { username: 'console1', password: 's3cret!' }, new DigestClient());
    t.ok(retry);
    t.match(retry!.headers.get(proxy ? 'proxy-authorization' : 'authorization'), /algorithm=SHA-256/, 'the client picks SHA-256');
    t.same(server.verify(retry!, proxy, passwordOf), { ok: true, username: 'console1' });
    t.equal(server.verify(retry!, !proxy, passwordOf), undefined, 'the other header is not looked at');
  }
});

t.test('stale: an expired nonce with the right password gives stale=true; with a wrong one not', async (t) => {
  let now = 1_700_000_000_000;
  const server = new DigestServer({ realm: REALM, secret: SECRET, nonceTtlMs: 30_000, clock: { now: () => now } });
  const nonce = nonceOf(server.challenge(subscribe(), false));
  const uri = 'sip:1001@gw.example.test';
  now += 30_001;
  const right = server.verify(withAuth(subscribe(), authorization({ alg: 'SHA-256', username: 'alice', password: 'wonder land', nonce, uri })), false, passwordOf);
  t.same(right, { ok: false, stale: true, malformed: false, reason: 'nonce expired', username: 'alice' });
  const wrong = server.verify(withAuth(subscribe(), authorization({ alg: 'SHA-256', username: 'alice', password: 'nope', nonce, uri })), false, passwordOf);
  t.equal(wrong?.ok === false && wrong.stale, false);
  now -= 2;
  const inTime = server.verify(withAuth(subscribe(), authorization({ alg: 'SHA-256', username: 'alice', password: 'wonder land', nonce, uri })), false, passwordOf);
  t.equal(inTime?.ok, true, 'still good just before the TTL');
});

t.test('forged and foreign nonces are refused, not stale', async (t) => {
  const server = new DigestServer({ realm: REALM, secret: SECRET });
  const other = new DigestServer({ realm: REALM, secret: Buffer.from('another secret, another process') });
  const uri = 'sip:1001@gw.example.test';
  const foreign = nonceOf(other.challenge(subscribe(), false));
  const own = nonceOf(server.challenge(subscribe(), false));
  // flip one character of a real nonce (keep it valid base64url)
  const flipped = (own[0] === 'A' ? 'B' : 'A') + own.slice(1);
  for (const nonce of [foreign, flipped, 'abc', own + 'x']) {
    const v = server.verify(withAuth(subscribe(), authorization({ alg: 'MD5', username: 'alice', password: 'wonder land', nonce, uri })), false, passwordOf);
    t.same(v, { ok: false, stale: false, malformed: false, reason: 'nonce was not issued here', username: 'alice' }, nonce);
  }
  const sameRealmOtherServer = new DigestServer({ realm: 'elsewhere', secret: SECRET });
  const elsewhere = nonceOf(sameRealmOtherServer.challenge(subscribe(), false));
  const v = server.verify(withAuth(subscribe(), authorization({ alg: 'MD5', username: 'alice', password: 'wonder land', nonce: elsewhere, uri })), false, passwordOf);
  t.equal(v?.ok, false, 'a nonce of another realm does not verify even under the same secret');
});

t.test('digest uri must match the Request-URI', async (t) => {
  const server = new DigestServer({ realm: REALM, secret: SECRET });
  const nonce = nonceOf(server.challenge(subscribe(), false));
  const v = server.verify(
    withAuth(subscribe(), authorization({ alg: 'SHA-256', username: 'alice', password: 'wonder land', nonce, uri: 'sip:1002@gw.example.test' })),
    false,
    passwordOf,
  );
  t.same(v, { ok: false, stale: false, malformed: true, reason: 'digest uri does not match the Request-URI', username: 'alice' });
  // an equivalent spelling (case of the host) is the same URI (RFC 3261 §19.1.4)
  const eq = server.verify(
    withAuth(subscribe('sip:1001@GW.example.test'), authorization({ alg: 'SHA-256', username: 'alice', password: 'wonder land', nonce, uri: 'sip:1001@gw.example.test' })),
    false,
    passwordOf,
  );
  t.equal(eq?.ok, true);
});

t.test('malformed Authorization is reported as malformed', async (t) => {
  const server = new DigestServer({ realm: REALM, secret: SECRET });
  const nonce = nonceOf(server.challenge(subscribe(), false));
  const cases = [
    'Digest',
    `Digest username="alice", realm="${REALM}", nonce="${nonce}`,
    `Digest username="alice" realm="${REALM}"`,
    `Digest realm="${REALM}", nonce="${nonce}", uri="sip:1001@gw.example.test", response="aa"`,
    `Digest username="alice", realm="${REALM}", nonce="${nonce}", uri="sip:1001@gw.example.test", response="aa", qop=auth`,
    `Digest username="alice", realm="${REALM}", nonce="${nonce}", uri="sip:1001@gw.example.test", response="aa", qop=auth, nc=1, cnonce="x"`,
    `Digest username="alice", username="bob", realm="${REALM}", nonce="${nonce}", uri="sip:1001@gw.example.test", response="aa"`,
  ];
  for (const c of cases) {
    const v = server.verify(withAuth(subscribe(), c), false, passwordOf);
    t.equal(v?.ok === false && v.malformed, true, c);
  }
  const alg = server.verify(
    withAuth(subscribe(), `Digest username="alice", realm="${REALM}", nonce="${nonce}", uri="sip:1001@gw.example.test", response="aa", algorithm=SHA-512-256`),
    false,
    passwordOf,
  );
  t.same(alg, { ok: false, stale: false, malformed: false, reason: 'algorithm SHA-512-256 was not offered', username: 'alice' });
});

t.test('parseAuthParams', async (t) => {
  t.same([...parseAuthParams('a=b, c="d, e\\"f",g=h', 0)!], [['a', 'b'], ['c', 'd, e"f'], ['g', 'h']]);
  t.equal(parseAuthParams('a=', 0), null);
  t.equal(parseAuthParams('=b', 0), null);
  t.same([...parseAuthParams('  ', 0)!], []);
});

t.test('the nonce-count memory is bounded', async (t) => {
  const server = new DigestServer({ realm: REALM, secret: SECRET, maxTrackedNonces: 2 });
  const uri = 'sip:1001@gw.example.test';
  const nonces = [0, 1, 2].map(() => nonceOf(server.challenge(subscribe(), false)));
  for (const nonce of nonces) {
    t.equal(server.verify(withAuth(subscribe(), authorization({ alg: 'MD5', username: 'alice', password: 'wonder land', nonce, uri })), false, passwordOf)?.ok, true);
  }
  // the first nonce's count was forgotten (oldest out); the last is still remembered
  t.equal(server.verify(withAuth(subscribe(), authorization({ alg: 'MD5', username: 'alice', password: 'wonder land', nonce: nonces[2]!, uri })), false, passwordOf)?.ok, false);
  t.equal(server.verify(withAuth(subscribe(), authorization({ alg: 'MD5', username: 'alice', password: 'wonder land', nonce: nonces[0]!, uri })), false, passwordOf)?.ok, true);
});
