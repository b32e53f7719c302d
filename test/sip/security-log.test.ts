import t from 'tap';
import { once } from 'node:events';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { answerChallenge, DigestClient } from '../../src/sip/digest.js';
import { Headers } from '../../src/sip/headers.js';
import { createRequest, type Endpoint } from '../../src/sip/message.js';
import { PinoSecurityLog } from '../../src/sip/security-log.js';
import { SipStack } from '../../src/sip/stack.js';
import { accessSchema } from '../../src/trunks/config.js';
import { AccessControl } from '../../src/trunks/access.js';
import { TrunkRegistry } from '../../src/trunks/registry.js';
import { silentLogger } from '../../src/util/logger.js';
import { TimerWheel } from '../../src/util/timer-wheel.js';
import { filterOf, readmeFilter } from '../helpers/fail2ban.js';

class Lines extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _e: string, cb: () => void): void {
    for (const l of chunk.toString().split('\n')) if (l !== '') this.lines.push(l);
    cb();
  }
}

let n = 0;
function subscribe() {
  n++;
  return createRequest(
    'SUBSCRIBE',
    'sip:1001@gw.example.test',
    Headers.from([
      ['via', `SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKsl${n}`],
      ['from', `<sip:x@example.test>;tag=s${n}`],
      ['to', '<sip:1001@gw.example.test>'],
      ['call-id', `sl-${n}`],
      ['cseq', `${n} SUBSCRIBE`],
    ]),
  );
}

/** Real lines: access control failing guesses (IPv4 and IPv6) and a transport refusing a connection. */
async function produce(t: Tap): Promise<string[]> {
  const sink = new Lines();
  const security = new PinoSecurityLog({ destination: sink });
  const registry = new TrunkRegistry({
    trunks: [],
    sender: { sendRequest: async () => Promise.reject(new Error('none')) },
    fromUri: 'sip:gw@gw.example.test',
    logger: silentLogger(),
    wheel: new TimerWheel({ autoStart: false }),
  });
  await registry.start();
  const access = new AccessControl({
    registry,
    config: accessSchema.parse({ users: [{ username: 'console1', password: 'right-one' }] }),
    mode: 'restricted',
    logger: silentLogger(),
    security,
  });
  t.teardown(() => {
    access.close();
    registry.close();
  });
  const guess = (source: Endpoint, username: string, password: string) => {
    const req = subscribe();
    const d = access.check({ request: req, source });
    if (d.allow) return;
    const retry = answerChallenge(req, d.response, { username, password }, new DigestClient());
    if (retry !== null) access.check({ request: retry, source });
  };
  for (let i = 0; i < 6; i++) guess({ protocol: 'udp', address: '203.0.113.66', port: 5060 }, 'console1', 'guess' + i);
  guess({ protocol: 'tcp', address: '2001:db8::7', port: 40000 }, 'console1', 'nope');
  // a user name made to look like a log field: JSON escaping keeps it inside "user"
  guess({ protocol: 'udp', address: '198.51.100.9', port: 5060 }, 'x","source":"10.9.9.9', 'nope');
  // the transport's refusal: a per-source cap of 1
  const stack = await SipStack.start({
    listen: [{ protocol: 'tcp', address: '127.0.0.1', port: 0 }],
    logger: silentLogger(),
    load: false,
    security,
    connections: { maxPerSource: 1, messageTimeoutMs: 0, strangerIdleMs: 0 },
  });
  t.teardown(() => stack.close());
  const port = stack.localEndpoint('tcp')!.port;
  const a = connect({ host: '127.0.0.1', port });
  await once(a, 'connect');
  const b = connect({ host: '127.0.0.1', port });
  b.on('error', () => undefined);
  await once(b, 'close');
  a.destroy();
  await sleep(20);
  return sink.lines;
}
type Tap = { teardown(fn: () => unknown): void };

t.test('the README fail2ban filter finds the source of every failure line the gateway writes', async (t) => {
  const lines = await produce(t);
  const filter = readmeFilter();
  t.ok(filter.datepattern, 'the filter has a datepattern');
  const hosts = lines.map((l) => filter.hostOf(l));
  const failed = lines.filter((l) => l.includes('"event":"auth_failed"'));
  t.equal(failed.length, 7, '5 + 1 + 1 failed authentications');
  for (const l of lines) {
    const event = (JSON.parse(l) as { event: string }).event;
    const host = filter.hostOf(l);
    if (['auth_failed', 'auth_refused', 'lockout_start', 'connection_refused'].includes(event)) t.ok(host, `${event} matched`);
    else t.equal(host, undefined, `${event} is not counted as a failure`);
  }
  t.equal(hosts.filter((h) => h === '203.0.113.66').length, 7, 'the guesser: 5 failures, the lockout start, the refused sixth guess');
  t.ok(hosts.includes('2001:db8::7'), 'IPv6 sources');
  t.ok(hosts.includes('198.51.100.9'), 'the injecting user name does not move the source');
  t.notOk(hosts.includes('10.9.9.9'), 'and cannot name another host');
  t.ok(hosts.includes('127.0.0.1'), 'the refused connection');
});

t.test('the failregex works with fail2ban default date detection too, and rejects foreign lines', async (t) => {
  const filter = readmeFilter();
  const withoutDate = filterOf(filter.failregex, undefined);
  const line =
    '{"level":"warn","time":"2026-12-01T22:09:05.608Z","log":"security","event":"auth_failed","source":"203.0.113.66","port":5060,"user":"console1","method":"SUBSCRIBE","reason":"wrong_password","msg":"auth failed"}';
  t.equal(filter.hostOf(line), '203.0.113.66', 'with the datepattern cut out');
  t.equal(withoutDate.hostOf(line), '203.0.113.66', 'as written');
  t.equal(withoutDate.hostOf(line.replace('2026-12-01T22:09:05.608Z', '')), '203.0.113.66', 'with the bare date cut out');
  t.equal(filter.hostOf(line.replace('"log":"security"', '"app":"presence-gateway"')), undefined, 'general log lines are not counted');
  t.equal(filter.hostOf(line.replace('auth_failed', 'lockout_end')), undefined);
});

t.test('never a secret; a flood of lines from one source is capped and the cut counted', async (t) => {
  const lines = await produce(t);
  const text = lines.join('\n');
  t.notMatch(text, /guess\d|right-one|nope/, 'no password');
  t.notMatch(text, /nonce|cnonce|response=/i, 'no digest material');
  const sink = new Lines();
  let now = 1_000_000;
  const log = new PinoSecurityLog({ destination: sink, linesPerSourcePerSec: 3, clock: { now: () => now } });
  for (let i = 0; i < 10; i++) log.record('auth_refused', { source: '203.0.113.1', reason: 'not_allowed' });
  now += 1000;
  log.record('auth_refused', { source: '203.0.113.1', reason: 'not_allowed' });
  await sleep(10);
  t.equal(sink.lines.length, 4, '3 lines in the first second, then the next second');
  t.equal((JSON.parse(sink.lines[3]!) as { suppressed: number }).suppressed, 7, 'the next line says how many were cut');
  t.equal(log.counts().get('auth_refused\u0000not_allowed'), 11, 'every event is counted');
});
