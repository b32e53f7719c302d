import t from 'tap';
import { Writable } from 'node:stream';
import { accessSchema, trunksSchema } from '../../src/trunks/config.js';
import { answerChallenge, DigestClient } from '../../src/sip/digest.js';
import { DigestServer } from '../../src/sip/digest-server.js';
import { Headers } from '../../src/sip/headers.js';
import { createRequest, type Endpoint, type SipRequest } from '../../src/sip/message.js';
import { AccessControl, FORBIDDEN_REASON } from '../../src/trunks/access.js';
import { TrunkRegistry } from '../../src/trunks/registry.js';
import { createLogger, silentLogger } from '../../src/util/logger.js';
import { TimerWheel } from '../../src/util/timer-wheel.js';

function request(method: string, n = 1): SipRequest {
  return createRequest(
    method,
    'sip:1001@gw.example.test',
    Headers.from([
      ['via', 'SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKacc' + n],
      ['from', '<sip:someone@example.test>;tag=f' + n],
      ['to', '<sip:1001@gw.example.test>'],
      ['call-id', 'access-' + n],
      ['cseq', `${n} ${method}`],
    ]),
  );
}

const from = (address: string): Endpoint => ({ protocol: 'udp', address, port: 5060 });

async function registryWith(trunks: unknown[]): Promise<TrunkRegistry> {
  const registry = new TrunkRegistry({
    trunks: trunksSchema.parse(trunks),
    sender: { sendRequest: async () => Promise.reject(new Error('no pings here')) },
    fromUri: 'sip:gw@gw.example.test',
    logger: silentLogger(),
    wheel: new TimerWheel({ autoStart: false }),
    resolver: async (uri) => [{ protocol: 'udp', address: /^sip:([^:;]+)/.exec(uri)![1]!, port: 5060 }],
  });
  await registry.start();
  return registry;
}

class LogSink extends Writable {
  readonly lines: Array<Record<string, unknown>> = [];
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    for (const l of chunk.toString().split('\n')) if (l.trim() !== '') this.lines.push(JSON.parse(l) as Record<string, unknown>);
    cb();
  }
}

async function setup(o: { access?: unknown; trunks?: unknown[] } = {}) {
  const registry = await registryWith(
    o.trunks ?? [
      { name: 'pbx1', address: 'sip:10.0.0.5', optionsIntervalSec: 0 },
      { name: 'pubonly', address: 'sip:10.0.0.6', directions: ['publish'], optionsIntervalSec: 0 },
      { name: 'lan', address: 'sip:10.0.0.7', inboundAddresses: ['10.9.0.0/16'], optionsIntervalSec: 0 },
    ],
  );
  let now = 1_700_000_000_000;
  const sink = new LogSink();
  const access = new AccessControl({
    registry,
    config: accessSchema.parse(o.access ?? { trusted: ['192.168.10.0/24'], users: [{ username: 'console1', password: 'pa55 word' }] }),
    defaultRealm: 'gw.example.test',
    logger: createLogger({ level: 'warn', destination: sink }),
    clock: { now: () => now },
  });
  return { registry, access, sink, advance: (ms: number) => (now += ms) };
}

t.test('trunk addresses pass and carry their trunk', async (t) => {
  const { access, registry } = await setup();
  t.teardown(() => registry.close());
  const d = access.check({ request: request('SUBSCRIBE'), source: from('10.0.0.5') });
  t.equal(d.allow, true);
  t.equal(d.allow && d.trunk?.name, 'pbx1');
  const cidr = access.check({ request: request('PUBLISH'), source: from('10.9.3.4') });
  t.equal(cidr.allow && cidr.trunk?.name, 'lan', 'inboundAddresses CIDR');
  const notify = access.check({ request: request('NOTIFY'), source: from('10.0.0.6') });
  t.equal(notify.allow && notify.trunk?.name, 'pubonly', 'a NOTIFY from any trunk passes');
  const sub = access.check({ request: request('SUBSCRIBE'), source: from('10.0.0.6') });
  t.equal(sub.allow, false, 'SUBSCRIBE from a trunk without inbound is not let in by address');
  t.equal(!sub.allow && sub.response.status, 401, '...it is challenged like anyone else');
});

t.test('trusted networks pass without auth; OPTIONS and ACK are never challenged', async (t) => {
  const { access, registry } = await setup();
  t.teardown(() => registry.close());
  const d = access.check({ request: request('SUBSCRIBE'), source: from('192.168.10.77') });
  t.same(d, { allow: true });
  t.same(access.check({ request: request('OPTIONS'), source: from('203.0.113.9') }), { allow: true });
  t.same(access.check({ request: request('ACK'), source: from('203.0.113.9') }), { allow: true });
  t.same(access.check({ request: request('CANCEL'), source: from('203.0.113.9') }), { allow: true });
  const sub = access.check({ request: request('SUBSCRIBE'), source: from('203.0.113.9') });
  t.equal(!sub.allow && sub.response.status, 401, 'while a SUBSCRIBE from there is challenged');
  const o = access.check({ request: request('OPTIONS'), source: from('10.0.0.5') });
  t.equal(o.allow && o.trunk?.name, 'pbx1');
});

t.test('unknown source: challenged, then authorized with the right password', async (t) => {
  const { access, registry } = await setup();
  t.teardown(() => registry.close());
  const first = request('SUBSCRIBE');
  const d = access.check({ request: first, source: from('203.0.113.9') });
  t.equal(d.allow, false);
  if (d.allow) return;
  t.equal(d.response.status, 401);
  t.match(d.response.headers.getAll('www-authenticate')[0], /^Digest realm="gw\.example\.test".*algorithm=SHA-256/);

  const retry = answerChallenge(first, d.response, { username: 'console1', password: 'pa55 word' }, new DigestClient());
  t.ok(retry);
  t.same(access.check({ request: retry!, source: from('203.0.113.9') }), { allow: true, username: 'console1' });

  const wrong = answerChallenge(first, d.response, { username: 'console1', password: 'guess' }, new DigestClient());
  const w = access.check({ request: wrong!, source: from('203.0.113.9') });
  t.equal(!w.allow && w.response.status, 401, 'a wrong password is challenged again');
  t.notMatch(!w.allow ? (w.response.headers.get('www-authenticate') ?? '') : '', /stale/);
});

t.test('challenge 407 uses Proxy-Authenticate / Proxy-Authorization', async (t) => {
  const { access, registry } = await setup({ access: { challenge: 407, realm: 'corp', users: [{ username: 'u1', password: 'p1' }] } });
  t.teardown(() => registry.close());
  const first = request('PUBLISH');
  const d = access.check({ request: first, source: from('203.0.113.9') });
  if (d.allow) return t.fail('should challenge');
  t.equal(d.response.status, 407);
  t.match(d.response.headers.get('proxy-authenticate'), /realm="corp"/);
  const retry = answerChallenge(first, d.response, { username: 'u1', password: 'p1' }, new DigestClient());
  t.match(retry!.headers.get('proxy-authorization'), /username="u1"/);
  t.same(access.check({ request: retry!, source: from('203.0.113.9') }), { allow: true, username: 'u1' });
});

t.test('stale nonce: challenged again with stale=true', async (t) => {
  const { access, registry, advance } = await setup();
  t.teardown(() => registry.close());
  const first = request('SUBSCRIBE');
  const d = access.check({ request: first, source: from('203.0.113.9') });
  if (d.allow) return t.fail('should challenge');
  const retry = answerChallenge(first, d.response, { username: 'console1', password: 'pa55 word' }, new DigestClient());
  advance(10 * 60 * 1000);
  const s = access.check({ request: retry!, source: from('203.0.113.9') });
  t.equal(!s.allow && s.response.status, 401);
  t.match(!s.allow ? s.response.headers.get('www-authenticate') : '', /stale=true/);
});

t.test('malformed Authorization → 400', async (t) => {
  const { access, registry } = await setup();
  t.teardown(() => registry.close());
  const req = request('SUBSCRIBE');
  req.headers.append('authorization', 'Digest username="console1", realm="gw.example.test", nonce="unterminated');
  const d = access.check({ request: req, source: from('203.0.113.9') });
  t.equal(!d.allow && d.response.status, 400);
  t.match(!d.allow ? d.response.reason : '', /^Bad Request - malformed Authorization/);
});

t.test('unknown source without digest users → 403, logged once a minute per source, no secrets', async (t) => {
  const { access, registry, sink, advance } = await setup({ access: { trusted: ['192.168.10.0/24'] } });
  t.teardown(() => registry.close());
  const d = access.check({ request: request('SUBSCRIBE'), source: from('203.0.113.9') });
  t.equal(d.allow, false);
  if (d.allow) return;
  t.equal(d.response.status, 403);
  t.equal(d.response.reason, FORBIDDEN_REASON);
  t.equal(d.response.reason, 'Forbidden - not a trunk or authenticated user');
  t.match(d.response.headers.get('to'), /;tag=/);
  access.check({ request: request('SUBSCRIBE', 2), source: from('203.0.113.9') });
  access.check({ request: request('PUBLISH', 3), source: from('203.0.113.10') });
  await new Promise((r) => setImmediate(r));
  t.equal(sink.lines.length, 2, 'one line per source within a minute');
  t.equal(sink.lines[0]!['msg'], 'request refused');
  t.equal(sink.lines[0]!['level'], 40, 'warn');
  t.equal(sink.lines[0]!['source'], '203.0.113.9:5060');
  advance(61_000);
  access.check({ request: request('SUBSCRIBE', 4), source: from('203.0.113.9') });
  await new Promise((r) => setImmediate(r));
  t.equal(sink.lines.length, 3, 'logged again after a minute');
});

t.test('wrong password is logged with the user name but never the password', async (t) => {
  const { access, registry, sink } = await setup();
  t.teardown(() => registry.close());
  const first = request('SUBSCRIBE');
  const d = access.check({ request: first, source: from('198.51.100.4') });
  if (d.allow) return t.fail('should challenge');
  const wrong = answerChallenge(first, d.response, { username: 'console1', password: 'hunter2-guess' }, new DigestClient());
  access.check({ request: wrong!, source: from('198.51.100.4') });
  await new Promise((r) => setImmediate(r));
  t.equal(sink.lines.length, 1);
  t.equal(sink.lines[0]!['username'], 'console1');
  const text = JSON.stringify(sink.lines);
  t.notMatch(text, /hunter2|pa55/);
  t.notMatch(text, /response=/);
});

t.test('open mode lets everyone in, still naming trunks', async (t) => {
  const registry = await registryWith([{ name: 'pbx1', address: 'sip:10.0.0.5', optionsIntervalSec: 0 }]);
  t.teardown(() => registry.close());
  const access = new AccessControl({
    registry,
    config: accessSchema.parse({}),
    mode: 'open',
    logger: silentLogger(),
    digest: new DigestServer({ realm: 'x' }),
  });
  t.same(access.check({ request: request('SUBSCRIBE'), source: from('203.0.113.9') }), { allow: true });
  const d = access.check({ request: request('SUBSCRIBE'), source: from('10.0.0.5') });
  t.equal(d.allow && d.trunk?.name, 'pbx1');
  t.equal(access.mode, 'open');
});
