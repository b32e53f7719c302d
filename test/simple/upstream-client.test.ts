import t from 'tap';
import { Headers } from '../../src/sip/headers.js';
import { createRequest, createResponse } from '../../src/sip/message.js';
import {
  backoffDelay,
  pickChallenge,
  RateQueue,
  refreshDelayMs,
  retryAfterMs,
} from '../../src/simple/upstream-client.js';
import { telephonyFromPidf } from '../../src/simple/body-state.js';
import { parsePidf } from '../../src/bodies/index.js';
import { cucmPidf, manualClock } from './upstream-fakes.js';
import { bodyPackages } from '../helpers/packages.js';

t.test('backoff grows, is capped, and jitters within [exp/2, exp]', async (t) => {
  const b = { minMs: 1_000, maxMs: 8_000 };
  t.equal(backoffDelay(1, b, () => 0), 500);
  t.equal(backoffDelay(1, b, () => 1), 1_000);
  t.equal(backoffDelay(3, b, () => 1), 4_000);
  t.equal(backoffDelay(10, b, () => 1), 8_000, 'capped');
  t.equal(backoffDelay(10, b, () => 0), 4_000);
  t.equal(refreshDelayMs(3600), 3_060_000);
  t.equal(refreshDelayMs(0), 1_000, 'never sooner than 1 s');
});

t.test('Retry-After and challenges are read from responses', async (t) => {
  const req = createRequest('SUBSCRIBE', 'sip:a@b', Headers.from([['cseq', '1 SUBSCRIBE']]));
  const r = createResponse(req, 503);
  t.equal(retryAfterMs(r), undefined);
  r.headers.append('retry-after', '120 (maintenance);duration=10');
  t.equal(retryAfterMs(r), 120_000);
  const c = createResponse(req, 401);
  c.headers.append('www-authenticate', 'Digest realm="r", nonce="1", algorithm=MD5');
  c.headers.append('www-authenticate', 'Digest realm="r", nonce="2", algorithm=SHA-256');
  t.equal(pickChallenge(c, { username: 'u', password: 'p' })?.algorithm, 'SHA-256', 'SHA-256 preferred');
  t.equal(pickChallenge(c, { username: 'u', password: 'p', realm: 'other' }), null, 'realm bound credentials');
});

t.test('RateQueue: per-key rate, FIFO, one wheel entry per key', async (t) => {
  const clock = manualClock();
  const sent: string[] = [];
  const q = new RateQueue<string>(clock.wheel, { now: clock.now }, () => 0.5, (x) => sent.push(x));
  for (let i = 0; i < 10; i++) q.push('a', `a${i}`, 4);
  for (let i = 0; i < 3; i++) q.push('b', `b${i}`, 100);
  t.same(sent, ['a0', 'a1', 'a2', 'a3', 'b0', 'b1', 'b2'], 'a burst of one second worth per key');
  t.equal(clock.wheel.size, 1, 'one timer for the busy key');
  q.delete('a', 'a5');
  clock.advance(1_000);
  t.same(sent.slice(7), ['a4', 'a6', 'a7', 'a8'], 'four more a second later, a5 removed');
  clock.advance(1_000);
  t.same(sent.slice(11), ['a9']);
  t.equal(q.size(), 0);
  q.close();
});

t.test('NOTIFY bodies: content types and errors; PIDF table', async (t) => {
  const mk = (ct: string | undefined, body: string) =>
    createRequest('NOTIFY', 'sip:x', ct === undefined ? new Headers() : Headers.from([['content-type', ct]]), Buffer.from(body));
  const packages = bodyPackages();
  const parseNotifyBody = (request: ReturnType<typeof mk>) => packages.readNotifyBody(request);
  t.same(parseNotifyBody(mk(undefined, '')), { ok: true, body: { kind: 'none' } });
  const noType = parseNotifyBody(mk(undefined, '<x/>'));
  t.equal(noType.ok ? 0 : noType.status, 400);
  const wrongRoot = parseNotifyBody(mk('application/pidf+xml', '<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full"/>'));
  t.equal(wrongRoot.ok ? 0 : wrongRoot.status, 400, 'a body that is not what its type says is a bad body');
  const cpim = parseNotifyBody(mk('application/cpim-pidf+xml; charset=UTF-8', cucmPidf()));
  t.equal(cpim.ok && cpim.body.kind, 'pidf');

  const line = (body: string) => telephonyFromPidf(parsePidf(body), 'trunk:x', 1);
  t.equal(line(cucmPidf({ activities: '<rpid:on-the-phone/>', note: 'Ringing' })).line, 'ringing', 'Asterisk ringing note');
  t.equal(line(cucmPidf({ activities: '<rpid:away/>' })).line, 'idle');
  t.equal(line(cucmPidf({ basic: 'closed', activities: '' })).line, 'idle', 'closed but the person spoke: idle');
  t.equal(line(cucmPidf({ basic: 'closed', person: false })).line, 'unknown');
  t.equal(line(cucmPidf({ basic: 'open', person: false })).line, 'idle');
  const dnd = line(cucmPidf({ activities: '<ce:dnd/><rpid:on-the-phone/>' }));
  t.same([dnd.dnd, dnd.line], [true, 'in-call']);
});
