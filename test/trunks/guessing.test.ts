import t from 'tap';
import { Writable } from 'node:stream';
import { accessSchema, trunksSchema } from '../../src/trunks/config.js';
import { answerChallenge, DigestClient } from '../../src/sip/digest.js';
import { Headers } from '../../src/sip/headers.js';
import { createRequest, type Endpoint, type SipRequest, type SipResponse } from '../../src/sip/message.js';
import { CountingSecurityLog, PinoSecurityLog } from '../../src/sip/security-log.js';
import { AccessControl, LOCKED_OUT_REASON } from '../../src/trunks/access.js';
import { guessingSchema } from '../../src/trunks/guessing-config.js';
import { TrunkRegistry } from '../../src/trunks/registry.js';
import { silentLogger } from '../../src/util/logger.js';
import { TimerWheel } from '../../src/util/timer-wheel.js';

const PASSWORD = 'word-0300';
/** the guesser's list: 1,000 words, the password at line 300 */
const WORDS = Array.from({ length: 1000 }, (_, i) => `word-${String(i + 1).padStart(4, '0')}`);

let seq = 0;
function subscribe(): SipRequest {
  const n = ++seq;
  return createRequest(
    'SUBSCRIBE',
    'sip:1001@gw.example.test',
    Headers.from([
      ['via', 'SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKg' + n],
      ['from', '<sip:console@example.test>;tag=g' + n],
      ['to', '<sip:1001@gw.example.test>'],
      ['call-id', 'guess-' + n],
      ['cseq', `${n} SUBSCRIBE`],
      ['event', 'presence'],
    ]),
  );
}

const from = (address: string): Endpoint => ({ protocol: 'udp', address, port: 5060 });

async function setup(guessing: unknown = {}) {
  const registry = new TrunkRegistry({
    trunks: trunksSchema.parse([]),
    sender: { sendRequest: async () => Promise.reject(new Error('no pings')) },
    fromUri: 'sip:gw@gw.example.test',
    logger: silentLogger(),
    wheel: new TimerWheel({ autoStart: false }),
  });
  await registry.start();
  let now = 1_700_000_000_000;
  const security = new CountingSecurityLog();
  const access = new AccessControl({
    registry,
    config: accessSchema.parse({ users: [{ username: 'console1', password: PASSWORD }], guessing }),
    mode: 'restricted',
    defaultRealm: 'gw.example.test',
    logger: silentLogger(),
    clock: { now: () => now },
    security,
  });
  t.teardown(() => {
    access.close();
    registry.close();
  });
  return { access, security, advance: (ms: number) => (now += ms), now: () => now };
}

/** One authentication attempt the way a client makes it: a challenge, then the answer. */
function attempt(access: AccessControl, source: string, password: string, client = new DigestClient()): { status: number; response?: SipResponse; delayMs?: number } {
  const req = subscribe();
  const first = access.check({ request: req, source: from(source) });
  if (first.allow) return { status: 200 };
  if (first.response.status !== 401) return { status: first.response.status, response: first.response };
  const retry = answerChallenge(req, first.response, { username: 'console1', password }, client);
  if (retry === null) throw new Error('no answer to the challenge');
  const d = access.check({ request: retry, source: from(source) });
  if (d.allow) return { status: 200 };
  return d.delayMs !== undefined ? { status: d.response.status, response: d.response, delayMs: d.delayMs } : { status: d.response.status, response: d.response };
}

t.test('a guesser at 200 guesses/s for 30 s does not find the password at line 300; the real user from elsewhere gets in throughout', async (t) => {
  const { access, security, advance } = await setup();
  const statuses = new Map<number, number>();
  let found = false;
  let realOk = 0;
  let realFailed = 0;
  let word = 0;
  // 30 s of simulated time in 5 ms steps: one guess per step (200/s); the real console every 500 ms
  for (let step = 0; step < 6000; step++) {
    advance(5);
    const r = attempt(access, '203.0.113.66', WORDS[word % WORDS.length]!);
    word++;
    statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    if (r.status === 200) found = true;
    if (step % 100 === 0) {
      const real = attempt(access, '198.51.100.20', PASSWORD);
      if (real.status === 200) realOk++;
      else realFailed++;
    }
  }
  t.equal(word, 6000, 'the guesser got through its list six times over');
  t.notOk(found, 'the password at line 300 was never accepted');
  t.equal(realOk, 60, 'the real user authenticated every time (60 of 60)');
  t.equal(realFailed, 0);
  t.ok((statuses.get(403) ?? 0) > 5900, `the guesser was refused (403) from its sixth guess on: ${JSON.stringify([...statuses])}`);
  const failures = security.events.filter((e) => e.event === 'auth_failed' && e.fields.source === '203.0.113.66');
  t.equal(failures.length, 5, 'only 5 guesses were ever checked against the password');
  const starts = security.events.filter((e) => e.event === 'lockout_start');
  t.equal(starts.length, 1, 'one lockout in 30 s (60 s long)');
  t.equal(starts[0]?.fields.seconds, 60);
  t.equal(starts[0]?.fields.scope, 'source');
});

t.test('the lockout grows; the right password is refused while locked; a success resets the source', async (t) => {
  const { access, security, advance } = await setup();
  const src = '203.0.113.7';
  for (let i = 0; i < 4; i++) t.equal(attempt(access, src, 'nope' + i).status, 401, `failure ${i + 1} is challenged again`);
  const fifth = attempt(access, src, 'nope5');
  t.equal(fifth.status, 403, 'the fifth failure starts the lockout');
  t.equal(fifth.response?.reason, LOCKED_OUT_REASON);
  t.equal(attempt(access, src, PASSWORD).status, 403, 'the right password is refused too while locked out');
  advance(61_000);
  t.equal(attempt(access, src, 'again').status, 403, 'after the lockout one more failure locks again');
  const starts = security.events.filter((e) => e.event === 'lockout_start').map((e) => e.fields.seconds);
  t.same(starts, [60, 120], 'the second lockout is twice as long');
  t.ok(security.events.some((e) => e.event === 'lockout_end' && e.fields.source === src), 'the end of the first lockout is logged');
  advance(121_000);
  t.equal(attempt(access, src, PASSWORD).status, 200, 'after the lockout the right password gets in');
  t.equal(attempt(access, src, 'typo').status, 401, 'and the success cleared the record: a typo is a fresh first failure');
});

t.test('challenges are delayed after a few failures', async (t) => {
  const { access } = await setup();
  const src = '203.0.113.8';
  const delays = [1, 2, 3, 4].map((i) => attempt(access, src, 'bad' + i).delayMs ?? 0);
  t.same(delays, [0, 0, 1000, 2000], 'from the third failure on, the 401 waits (doubling)');
});

t.test('per-user cap: spraying from many sources locks the user out except where it succeeded', async (t) => {
  const { access, security } = await setup({ perUserMaxFailures: 10 });
  t.equal(attempt(access, '198.51.100.20', PASSWORD).status, 200, 'the console, before the attack');
  for (let i = 0; i < 10; i++) attempt(access, `203.0.113.${100 + i}`, 'spray' + i);
  t.ok(security.events.some((e) => e.event === 'lockout_start' && e.fields.scope === 'user'), 'a user lockout started');
  t.equal(attempt(access, '203.0.113.200', PASSWORD).status, 403, 'a new source is refused for that user, right password or not');
  t.equal(attempt(access, '198.51.100.20', PASSWORD).status, 200, 'the source the user succeeded from still gets in');
});

t.test('memory stays bounded when an attacker sprays sources', async (t) => {
  const { access } = await setup({ maxTracked: 100, perUserMaxFailures: 100_000 });
  for (let i = 0; i < 5000; i++) attempt(access, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 'x');
  const stats = access.guessingStats();
  t.ok(stats.tracked <= 200, `at most maxTracked entries per table (${stats.tracked})`);
});

t.test('guessing can be switched off; config errors name the path and the fix', async (t) => {
  const { access } = await setup({ enabled: false });
  for (let i = 0; i < 20; i++) t.equal(attempt(access, '203.0.113.9', 'bad').status, 401);
  const bad = accessSchema.safeParse({ guessing: { lockoutSec: 7200, maxLockoutSec: 3600 } });
  t.notOk(bad.success);
  if (!bad.success) {
    t.same(bad.error.issues[0]?.path, ['guessing', 'lockoutSec']);
    t.match(bad.error.issues[0]?.message, /exceeds maxLockoutSec.*lower it/);
  }
  const wrongType = guessingSchema.safeParse({ maxFailures: 0 });
  t.notOk(wrongType.success);
  if (!wrongType.success) t.match(wrongType.error.issues[0]?.message, /at least 1 failures; raise it/);
  t.same(guessingSchema.parse({}).refuseWith, 403);
});

t.test('refuseWith 503 sends Retry-After with the seconds left', async (t) => {
  const { access } = await setup({ refuseWith: 503 });
  let last = attempt(access, '203.0.113.9', 'a');
  for (let i = 0; i < 5; i++) last = attempt(access, '203.0.113.9', 'b' + i);
  t.equal(last.status, 503);
  const ra = Number(last.response?.headers.get('retry-after'));
  t.ok(ra > 0 && ra <= 60, `Retry-After ${ra}`);
});

t.test('the security log line of a failure names source, user, method and reason, never the secret', async (t) => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      lines.push(...chunk.toString().split('\n').filter((l) => l !== ''));
      cb();
    },
  });
  const registry = new TrunkRegistry({
    trunks: [],
    sender: { sendRequest: async () => Promise.reject(new Error('no pings')) },
    fromUri: 'sip:gw@gw.example.test',
    logger: silentLogger(),
    wheel: new TimerWheel({ autoStart: false }),
  });
  await registry.start();
  const access = new AccessControl({
    registry,
    config: accessSchema.parse({ users: [{ username: 'console1', password: PASSWORD }] }),
    mode: 'restricted',
    logger: silentLogger(),
    security: new PinoSecurityLog({ destination: sink }),
  });
  t.teardown(() => {
    access.close();
    registry.close();
  });
  for (let i = 0; i < 6; i++) attempt(access, '203.0.113.50', 'hunter2-' + i);
  attempt(access, '203.0.113.50', PASSWORD);
  await new Promise((r) => setImmediate(r));
  const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  const failed = records.filter((r) => r['event'] === 'auth_failed');
  t.equal(failed.length, 5);
  t.match(failed[0], { level: 'warn', log: 'security', source: '203.0.113.50', port: 5060, transport: 'udp', user: 'console1', method: 'SUBSCRIBE', reason: 'wrong_password' });
  t.ok(records.some((r) => r['event'] === 'lockout_start'), 'lockout start');
  t.equal(records.filter((r) => r['event'] === 'auth_refused' && r['reason'] === 'locked_out').length, 2, 'each refused attempt while locked');
  const text = lines.join('\n');
  t.notMatch(text, /hunter2|word-0300/, 'no password');
  t.notMatch(text, /nonce|response|cnonce/i, 'no digest material');
});
