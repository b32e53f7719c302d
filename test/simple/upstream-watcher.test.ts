import t from 'tap';
import type { TelephonyState } from '../../src/core/person-state.js';
import { tagOf } from '../../src/sip/header-values.js';
import { Headers } from '../../src/sip/headers.js';
import { createRequest } from '../../src/sip/message.js';
import { UpstreamWatcher, WatchItem, type UpstreamTarget } from '../../src/simple/upstream-watcher.js';
import { capturingLogger } from '../helpers/log-capture.js';
import { silentLogger } from '../../src/util/logger.js';
import { bodyPackages } from '../helpers/packages.js';
import {
  cucmPidf,
  dialog,
  dialogInfo,
  inbound,
  manualClock,
  notifyFor,
  PBX,
  RecordingSink,
  ScriptedSender,
  settle,
  type Sent,
} from './upstream-fakes.js';

function target(over: Partial<UpstreamTarget> = {}): UpstreamTarget {
  return {
    trunk: 'pbx1',
    personId: 'alice',
    uri: 'sip:1001@pbx.example.com',
    event: 'dialog',
    accept: ['application/dialog-info+xml'],
    expires: 3600,
    fromUri: 'sip:gateway@gw.example.com',
    destination: () => Promise.resolve(PBX),
    ...over,
  };
}

function setup(opts: { graceMs?: number; closeTimeoutMs?: number } = {}) {
  const clock = manualClock();
  const sender = new ScriptedSender();
  const sink = new RecordingSink();
  const items: string[] = [];
  const auth: string[] = [];
  const watcher = new UpstreamWatcher({
    sender,
    wheel: clock.wheel,
    sink,
    packages: bodyPackages(),
    logger: silentLogger(),
    clock: { now: clock.now },
    random: () => 0.5,
    backoff: { minMs: 1_000, maxMs: 60_000 },
    onItem: (trunk, personId, up, error) => items.push(`${trunk}/${personId} ${up ? 'up' : 'down'}${error !== undefined ? ` ${error}` : ''}`),
    onAuth: (trunk, ok) => auth.push(`${trunk} ${ok}`),
    // any state change the subscriber table refuses fails the test
    refusals: 'throw',
    ...opts,
  });
  return { clock, sender, sink, watcher, items, auth };
}

/** Add a target and accept its SUBSCRIBE (200 with To tag and Contact); returns the SUBSCRIBE. */
async function established(s: ReturnType<typeof setup>, over: Partial<UpstreamTarget> = {}, headers: Array<[string, string]> = []): Promise<Sent> {
  s.watcher.add(target(over));
  await settle();
  const sub = s.sender.last();
  sub.answer(200, { toTag: 'pbx-tag', headers: [['expires', '3600'], ['contact', '<sip:1001@198.51.100.5:5060>'], ...headers] });
  await settle();
  return sub;
}

t.test('initial SUBSCRIBE: URI, From tag, To, Event, Accept, Expires, Contact, destination', async (t) => {
  const s = setup();
  s.watcher.add(target());
  await settle();
  t.equal(s.sender.sent.length, 1);
  const { request, options } = s.sender.sent[0]!;
  const h = request.headers;
  t.equal(request.method, 'SUBSCRIBE');
  t.equal(request.uri, 'sip:1001@pbx.example.com');
  t.equal(h.get('to'), '<sip:1001@pbx.example.com>', 'To without tag');
  t.match(h.get('from')!, /^<sip:gateway@gw\.example\.com>;tag=[0-9a-f]+$/);
  t.ok(h.get('call-id'));
  t.equal(h.get('cseq'), '1 SUBSCRIBE');
  t.equal(h.get('event'), 'dialog');
  t.equal(h.get('accept'), 'application/dialog-info+xml');
  t.equal(h.get('expires'), '3600');
  t.equal(h.get('contact'), '<sip:192.0.2.1:5060>', 'advertised endpoint, not the wildcard bind');
  t.notOk(h.has('authorization'));
  t.same(options.destination, PBX);
  t.same(s.watcher.counts(), { pbx1: { up: 0, down: 1 } });
});

t.test('2xx makes the dialog; NOTIFY with dialog-info feeds telephony under trunk:<name>; refresh at 85 % in the dialog', async (t) => {
  const s = setup();
  const sub = await established(s, {}, [
    ['record-route', '<sip:10.0.0.1:5060;lr>'],
    ['record-route', '<sip:10.0.0.2:5060;lr>'],
  ]);
  t.same(s.items, ['pbx1/alice up']);
  t.same(s.watcher.counts(), { pbx1: { up: 1, down: 0 } });

  const n = notifyFor(sub.request, { body: dialogInfo(dialog('d1', 'confirmed', 'initiator'), { version: 0 }) });
  const { req, responses } = inbound(n);
  t.equal(s.watcher.handleNotify(req), true);
  t.equal(responses[0]?.status, 200);
  const last = s.sink.calls.at(-1)!;
  t.equal(last.source, 'trunk:pbx1');
  t.equal(last.personId, 'alice');
  t.equal((last.value as TelephonyState).line, 'in-call');
  t.equal((last.value as TelephonyState).calls[0]?.id, 'd1');

  // 85 % of 3600 s = 3060 s
  s.clock.advance(3_059_000);
  await settle();
  t.equal(s.sender.sent.length, 1, 'no refresh before 85 %');
  s.clock.advance(2_000);
  await settle();
  t.equal(s.sender.sent.length, 2, 'refresh sent');
  const refresh = s.sender.last();
  const h = refresh.request.headers;
  t.equal(h.get('call-id'), sub.request.headers.get('call-id'), 'same Call-ID');
  t.equal(tagOf(h.get('to')!), 'pbx-tag', 'To carries the remote tag');
  t.equal(tagOf(h.get('from')!), tagOf(sub.request.headers.get('from')!));
  t.equal(h.get('cseq'), '2 SUBSCRIBE');
  t.equal(refresh.request.uri, 'sip:198.51.100.5:5060', 'Request-URI = remote target (the NOTIFY Contact refreshed it)');
  // UAC route set = Record-Route reversed (RFC 3261 §12.1.2)
  t.same(h.getAll('route'), ['<sip:10.0.0.2:5060;lr>', '<sip:10.0.0.1:5060;lr>']);
  t.same(refresh.options.destination, { protocol: 'udp', address: '10.0.0.2', port: 5060 }, 'first route is the next hop');
  refresh.answer(200, { headers: [['expires', '600']] });
  await settle();
  // next refresh at 85 % of 600 s
  s.clock.advance(509_000);
  await settle();
  t.equal(s.sender.sent.length, 2);
  s.clock.advance(2_000);
  await settle();
  t.equal(s.sender.sent.length, 3);
  t.equal(s.sender.last().request.headers.get('cseq'), '3 SUBSCRIBE');
});

t.test('Subscription-State expires smaller than the 200 Expires wins', async (t) => {
  const s = setup();
  const sub = await established(s);
  s.watcher.handleNotify(inbound(notifyFor(sub.request, { state: 'active;expires=100', body: dialogInfo('') })).req);
  s.clock.advance(84_000);
  await settle();
  t.equal(s.sender.sent.length, 1);
  s.clock.advance(2_000);
  await settle();
  t.equal(s.sender.sent.length, 2, 'refreshed at 85 % of 100 s');
});

t.test('NOTIFY before the 200 establishes the dialog; unknown dialogs are left to the caller', async (t) => {
  const s = setup();
  s.watcher.add(target());
  await settle();
  const sub = s.sender.last();
  const { req, responses } = inbound(
    notifyFor(sub.request, { remoteTag: 'early', contact: '<sip:1001@198.51.100.6:5062>', body: dialogInfo(dialog('x', 'early', 'recipient')) }),
  );
  t.equal(s.watcher.handleNotify(req), true);
  t.equal(responses[0]?.status, 200);
  t.equal(s.sink.lastTelephony()?.line, 'ringing');
  sub.answer(200, { toTag: 'early', headers: [['expires', '3600']] });
  await settle();
  t.same(s.items, ['pbx1/alice up']);

  // unknown Call-ID, and a wrong To tag: not ours
  const other = notifyFor(sub.request);
  other.headers.set('call-id', 'nope');
  t.equal(s.watcher.handleNotify(inbound(other).req), false);
  const wrongTag = notifyFor(sub.request, { remoteTag: 'early', cseq: 2 });
  wrongTag.headers.set('to', '<sip:gateway@gw.example.com>;tag=zzz');
  t.equal(s.watcher.handleNotify(inbound(wrongTag).req), false);

  // a second fork gets 481
  const fork = inbound(notifyFor(sub.request, { remoteTag: 'fork2', cseq: 1 }));
  t.equal(s.watcher.handleNotify(fork.req), true);
  t.equal(fork.responses[0]?.status, 481);

  // refresh goes to the remote target learnt from the NOTIFY
  s.clock.advance(3_061_000);
  await settle();
  t.equal(s.sender.last().request.uri, 'sip:1001@198.51.100.6:5062');
  t.same(s.sender.last().options.destination, { protocol: 'udp', address: '198.51.100.6', port: 5062 });
});

t.test('NOTIFY checks: Subscription-State required, CSeq order, bad body → 400 and the dialog stays, 415 lists Accept', async (t) => {
  const s = setup();
  const sub = await established(s);
  const noState = notifyFor(sub.request, { cseq: 5 });
  noState.headers.delete('subscription-state');
  const a = inbound(noState);
  s.watcher.handleNotify(a.req);
  t.equal(a.responses[0]?.status, 400);

  const bad = inbound(notifyFor(sub.request, { cseq: 6, body: '<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info"' }));
  t.equal(s.watcher.handleNotify(bad.req), true);
  t.equal(bad.responses[0]?.status, 400);
  t.match(bad.responses[0]?.reason, /^Bad Request - /);

  const old = inbound(notifyFor(sub.request, { cseq: 4, body: dialogInfo('') }));
  s.watcher.handleNotify(old.req);
  t.equal(old.responses[0]?.status, 500, 'lower CSeq is out of order');

  const odd = inbound(notifyFor(sub.request, { cseq: 7, body: 'hello', contentType: 'text/plain' }));
  s.watcher.handleNotify(odd.req);
  t.equal(odd.responses[0]?.status, 415);
  t.match(odd.responses[0]?.headers.get('accept'), /application\/dialog-info\+xml/);

  const good = inbound(notifyFor(sub.request, { cseq: 8, body: dialogInfo(dialog('d', 'confirmed')) }));
  s.watcher.handleNotify(good.req);
  t.equal(good.responses[0]?.status, 200);
  t.equal(s.sink.lastTelephony()?.line, 'in-call', 'the dialog survived the bad bodies');
  t.same(s.items, ['pbx1/alice up']);
});

t.test('dialog-info versions: old ignored, partial applied in order, a gap asks for full state with a refresh', async (t) => {
  const s = setup();
  const sub = await established(s);
  let cseq = 0;
  const send = (body: string) => {
    const x = inbound(notifyFor(sub.request, { cseq: ++cseq, body }));
    s.watcher.handleNotify(x.req);
    return x.responses[0]?.status;
  };
  t.equal(send(dialogInfo(dialog('a', 'confirmed'), { version: 3 })), 200);
  t.same(s.sink.lastTelephony()?.calls.map((c) => c.id), ['a']);
  const before = s.sink.calls.length;
  send(dialogInfo(dialog('b', 'confirmed'), { version: 3 }));
  send(dialogInfo('', { version: 2 }));
  t.equal(s.sink.calls.length, before, 'same and older versions ignored');

  send(dialogInfo(dialog('b', 'early', 'recipient'), { version: 4, state: 'partial' }));
  t.same(s.sink.lastTelephony()?.calls.map((c) => c.id).sort(), ['a', 'b'], 'partial merged');
  t.equal(s.sink.lastTelephony()?.line, 'ringing');
  send(dialogInfo(dialog('a', 'terminated'), { version: 5, state: 'partial' }));
  t.same(s.sink.lastTelephony()?.calls.map((c) => c.id), ['b'], 'terminated dialog removed');

  const n = s.sink.calls.length;
  send(dialogInfo(dialog('c', 'confirmed'), { version: 7, state: 'partial' }));
  t.equal(s.sink.calls.length, n, 'partial after a gap not applied');
  await settle();
  t.equal(s.sender.sent.length, 2, 'refresh SUBSCRIBE for full state');
  t.equal(s.sender.last().request.headers.get('call-id'), sub.request.headers.get('call-id'));
  s.sender.last().answer(200, { headers: [['expires', '3600']] });
  await settle();
  send(dialogInfo(dialog('c', 'confirmed'), { version: 8 }));
  t.same(s.sink.lastTelephony()?.calls.map((c) => c.id), ['c'], 'full state after the refresh');
});

t.test('CUCM PIDF over event presence: on-the-phone, alerting, dnd, idle, closed; rich presence when asked', async (t) => {
  const s = setup();
  const sub = await established(s, {
    event: 'presence',
    accept: ['application/pidf+xml', 'application/cpim-pidf+xml'],
    richPresence: true,
  });
  let cseq = 0;
  const send = (body: string, contentType = 'application/pidf+xml'): TelephonyState => {
    const x = inbound(notifyFor(sub.request, { cseq: ++cseq, body, contentType }));
    s.watcher.handleNotify(x.req);
    t.equal(x.responses[0]?.status, 200);
    return s.sink.lastTelephony()!;
  };
  let tel = send(cucmPidf({ activities: '<rpid:on-the-phone/>' }));
  t.equal(tel.line, 'in-call');
  t.same(tel.calls.map((c) => [c.phase, c.synthetic]), [['confirmed', true]]);
  tel = send(cucmPidf({ activities: '<ce:alerting/>' }), 'application/cpim-pidf+xml');
  t.equal(tel.line, 'ringing');
  t.equal(tel.calls[0]?.direction, 'recipient');
  tel = send(cucmPidf({ activities: '<ce:dnd/>' }));
  t.equal(tel.dnd, true);
  t.equal(tel.line, 'idle');
  tel = send(cucmPidf({ activities: '' }));
  t.equal(tel.line, 'idle');
  t.equal(tel.dnd, false);
  tel = send(cucmPidf({ basic: 'closed', person: false }));
  t.equal(tel.line, 'unknown', 'closed with nothing else: unknown');
  tel = send(cucmPidf({ activities: '<rpid:on-the-phone/>', note: 'On hold' }));
  t.equal(tel.line, 'on-hold', 'Asterisk-style hold note');
  send(cucmPidf({ activities: '<rpid:away/><rpid:on-the-phone/>', note: 'Back soon' }));
  const rich = s.sink.calls.filter((c) => c.kind === 'sip').at(-1)!;
  t.equal(rich.source, 'trunk:pbx1');
  t.same((rich.value as { activities: string[] }).activities, ['away'], 'line activities left to telephony');
});

t.test('401 answered once; nonce reused on refresh with nc+1; a second challenge fails auth and backs off', async (t) => {
  const s = setup();
  s.watcher.add(target({ credentials: { username: 'gw', password: 'secret' } }));
  await settle();
  const challenge: [string, string] = ['www-authenticate', 'Digest realm="pbx", nonce="n1", qop="auth", algorithm=MD5'];
  s.sender.last().answer(401, { headers: [challenge] });
  await settle();
  t.equal(s.sender.sent.length, 2);
  const second = s.sender.last().request;
  t.equal(second.headers.get('cseq'), '2 SUBSCRIBE');
  t.match(second.headers.get('authorization')!, /username="gw".*nonce="n1".*nc=00000001/);
  s.sender.last().answer(200, { toTag: 'pt', headers: [['expires', '3600'], ['contact', '<sip:1001@198.51.100.5>']] });
  await settle();
  t.same(s.auth, ['pbx1 true']);

  s.clock.advance(3_061_000);
  await settle();
  const refresh = s.sender.last().request;
  t.match(refresh.headers.get('authorization')!, /nonce="n1".*nc=00000002/, 'refresh pre-authorized');
  // the server challenges again (not stale) and again: auth failure
  s.sender.last().answer(407, { headers: [['proxy-authenticate', 'Digest realm="pbx", nonce="n2", qop="auth"']] });
  await settle();
  t.match(s.sender.last().request.headers.get('proxy-authorization')!, /nonce="n2"/);
  s.sender.last().answer(407, { headers: [['proxy-authenticate', 'Digest realm="pbx", nonce="n3", qop="auth"']] });
  await settle();
  t.same(s.auth, ['pbx1 true', 'pbx1 false']);
  t.match(s.items.at(-1), /^pbx1\/alice down 407/);
  const count = s.sender.sent.length;
  s.clock.advance(1_100);
  await settle();
  t.equal(s.sender.sent.length, count + 1, 'retried after the backoff');
  t.not(s.sender.last().request.headers.get('call-id'), refresh.headers.get('call-id'), 'as a new subscription');
});

t.test('no credentials: a challenge is an auth failure', async (t) => {
  const s = setup();
  s.watcher.add(target());
  await settle();
  s.sender.last().answer(401, { headers: [['www-authenticate', 'Digest realm="pbx", nonce="n1"']] });
  await settle();
  t.equal(s.sender.sent.length, 1, 'not answered');
  t.same(s.auth, ['pbx1 false']);
  t.match(s.items[0], /challenged, no credentials/);
});

t.test('423 → again with Min-Expires', async (t) => {
  const s = setup();
  s.watcher.add(target({ expires: 60 }));
  await settle();
  s.sender.last().answer(423, { headers: [['min-expires', '1800']] });
  await settle();
  t.equal(s.sender.sent.length, 2);
  t.equal(s.sender.last().request.headers.get('expires'), '1800');
  t.equal(s.sender.last().request.headers.get('call-id'), s.sender.sent[0]!.request.headers.get('call-id'));
});

t.test('refresh 481 → a new subscription (new Call-ID) after backoff; state cleared only after the grace period', async (t) => {
  const s = setup({ graceMs: 30_000 });
  const sub = await established(s);
  s.watcher.handleNotify(inbound(notifyFor(sub.request, { body: dialogInfo(dialog('d', 'confirmed')) })).req);
  t.equal(s.sink.lastTelephony()?.line, 'in-call');
  s.clock.advance(3_061_000);
  await settle();
  s.sender.last().answer(481);
  await settle();
  t.match(s.items.at(-1), /down 481/);
  t.same(s.watcher.counts(), { pbx1: { up: 0, down: 1 } });
  s.clock.advance(1_100);
  await settle();
  const again = s.sender.last();
  t.equal(s.sender.sent.length, 3);
  t.not(again.request.headers.get('call-id'), sub.request.headers.get('call-id'));
  t.equal(again.request.headers.get('cseq'), '1 SUBSCRIBE');
  t.equal(again.request.uri, 'sip:1001@pbx.example.com');
  again.answer(503, { headers: [['retry-after', '20']] });
  await settle();
  t.equal(s.sink.lastTelephony()?.line, 'in-call', 'last state kept during the grace period');
  s.clock.advance(19_000);
  await settle();
  t.equal(s.sender.sent.length, 3, 'Retry-After honoured');
  s.clock.advance(10_000);
  await settle();
  t.equal(s.sender.sent.length, 4);
  t.equal(s.sink.calls.at(-1)?.value, undefined, 'cleared after 30 s down');
  t.equal(s.sink.calls.at(-1)?.source, 'trunk:pbx1');
});

t.test('terminated NOTIFY: deactivated re-subscribes soon, rejected waits long', async (t) => {
  const s = setup();
  const sub = await established(s);
  const x = inbound(notifyFor(sub.request, { state: 'terminated;reason=deactivated' }));
  t.equal(s.watcher.handleNotify(x.req), true);
  t.equal(x.responses[0]?.status, 200);
  t.match(s.items.at(-1), /down terminated;reason=deactivated/);
  s.clock.advance(1_100);
  await settle();
  t.equal(s.sender.sent.length, 2, 're-subscribed within the first backoff');
  const sub2 = s.sender.last();
  t.not(sub2.request.headers.get('call-id'), sub.request.headers.get('call-id'));
  sub2.answer(200, { toTag: 'p2', headers: [['expires', '3600'], ['contact', '<sip:1001@198.51.100.5>']] });
  await settle();
  s.watcher.handleNotify(inbound(notifyFor(sub2.request, { remoteTag: 'p2', state: 'terminated;reason=rejected' })).req);
  s.clock.advance(30_000);
  await settle();
  t.equal(s.sender.sent.length, 2, 'no quick retry after rejected');
  s.clock.advance(31_000);
  await settle();
  t.equal(s.sender.sent.length, 3, 'retried after the long backoff');
});

t.test('start-up spread: 200 targets at 50/s go out in batches, never at once', async (t) => {
  const s = setup();
  for (let i = 0; i < 200; i++) s.watcher.add(target({ personId: `p${i}`, uri: `sip:${2000 + i}@pbx.example.com`, ratePerSec: 50 }));
  await settle();
  t.equal(s.sender.sent.length, 50, 'first second worth');
  s.clock.advance(500);
  await settle();
  t.ok(s.sender.sent.length > 50 && s.sender.sent.length <= 80, `about 25 more after 0.5 s (${s.sender.sent.length})`);
  s.clock.advance(3_500);
  await settle();
  t.equal(s.sender.sent.length, 200, 'all sent after ~4 s');
  t.equal(new Set(s.sender.sent.map((x) => x.request.headers.get('call-id'))).size, 200);
  t.same(s.watcher.counts(), { pbx1: { up: 0, down: 200 } });
});

t.test('refreshAll: every dialog of the trunk refreshed; 481 → new subscription', async (t) => {
  const s = setup();
  const sub = await established(s);
  s.watcher.refreshAll('other');
  await settle();
  t.equal(s.sender.sent.length, 1);
  s.watcher.refreshAll('pbx1');
  await settle();
  t.equal(s.sender.sent.length, 2);
  t.equal(s.sender.last().request.headers.get('call-id'), sub.request.headers.get('call-id'));
  s.sender.last().answer(481);
  await settle();
  s.clock.advance(1_100);
  await settle();
  t.equal(s.sender.sent.length, 3);
  t.not(s.sender.last().request.headers.get('call-id'), sub.request.headers.get('call-id'));
});

t.test('remove: Expires: 0 in the dialog, state cleared, late NOTIFY still answered 200', async (t) => {
  const s = setup();
  const sub = await established(s);
  s.watcher.handleNotify(inbound(notifyFor(sub.request, { body: dialogInfo(dialog('d', 'confirmed')) })).req);
  s.watcher.remove('pbx1', 'alice');
  await settle();
  const unsub = s.sender.last();
  t.equal(unsub.request.headers.get('expires'), '0');
  t.equal(unsub.request.headers.get('call-id'), sub.request.headers.get('call-id'));
  t.equal(tagOf(unsub.request.headers.get('to')!), 'pbx-tag');
  t.equal(s.sink.calls.at(-1)?.value, undefined, 'state cleared');
  unsub.answer(200, { headers: [['expires', '0']] });
  const late = inbound(notifyFor(sub.request, { cseq: 2, state: 'terminated', body: dialogInfo(dialog('d', 'confirmed'), { version: 1 }) }));
  t.equal(s.watcher.handleNotify(late.req), true);
  t.equal(late.responses[0]?.status, 200);
  t.equal(s.sink.calls.at(-1)?.value, undefined, 'nothing fed after removal');
  t.same(s.watcher.counts(), {});
});

t.test('close(true): Expires: 0 to every active dialog, bounded wait', async (t) => {
  const s = setup({ closeTimeoutMs: 200 });
  await established(s);
  await established(s, { personId: 'bob', uri: 'sip:1002@pbx.example.com' });
  s.watcher.add(target({ personId: 'carol', uri: 'sip:1003@pbx.example.com' }));
  await settle();
  const before = s.sender.sent.length;
  const started = Date.now();
  const closing = s.watcher.close(true);
  await settle();
  const unsubs = s.sender.sent.slice(before);
  t.equal(unsubs.length, 2, 'only established dialogs');
  t.ok(unsubs.every((u) => u.request.headers.get('expires') === '0'));
  unsubs[0]!.answer(200);
  await closing; // the second is never answered: the bound ends the wait
  t.ok(Date.now() - started >= 150);
  s.clock.advance(4_000_000);
  await settle();
  t.equal(s.sender.sent.length, before + 2, 'no timers after close');
});

t.test('handleUnsolicited: PIDF and dialog-info applied under the trunk source; other events 489', async (t) => {
  const s = setup();
  const mk = (event: string, body: string, contentType: string) => {
    const sub = notifyFor(fakeSubscribe(), { event, body, contentType });
    return inbound(sub);
  };
  const a = mk('presence', cucmPidf({ activities: '<rpid:on-the-phone/>' }), 'application/pidf+xml');
  s.watcher.handleUnsolicited(a.req, 'cucm', 'alice');
  t.equal(a.responses[0]?.status, 200);
  t.equal(s.sink.lastTelephony()?.line, 'in-call');
  t.equal(s.sink.calls.at(-1)?.source, 'trunk:cucm');
  const b = mk('dialog', dialogInfo(dialog('z', 'early', 'recipient')), 'application/dialog-info+xml');
  s.watcher.handleUnsolicited(b.req, 'cucm', 'alice');
  t.equal(s.sink.lastTelephony()?.line, 'ringing');
  const c = mk('message-summary', 'x', 'text/plain');
  s.watcher.handleUnsolicited(c.req, 'cucm', 'alice');
  t.equal(c.responses[0]?.status, 489);
  const d = mk('presence', '<presence', 'application/pidf+xml');
  s.watcher.handleUnsolicited(d.req, 'cucm', 'alice');
  t.equal(d.responses[0]?.status, 400);
});

/** A SUBSCRIBE-like request to build unsolicited NOTIFYs from (they are outside any dialog). */
function fakeSubscribe() {
  const h = new Headers();
  h.append('from', '<sip:gateway@gw.example.com>;tag=gw');
  h.append('to', '<sip:1001@cucm.example.com>');
  h.append('call-id', 'unsolicited-1');
  h.append('event', 'presence');
  return createRequest('SUBSCRIBE', 'sip:1001@cucm.example.com', h);
}

t.test('a sink that throws (unknown person) never throws out of handleNotify', async (t) => {
  const s = setup();
  const sub = await established(s);
  s.sink.setTelephony = () => {
    throw new Error('unknown person "alice"');
  };
  const x = inbound(notifyFor(sub.request, { body: dialogInfo(dialog('d', 'confirmed')) }));
  t.doesNotThrow(() => s.watcher.handleNotify(x.req));
  t.equal(x.responses[0]?.status, 200);
});

t.test('an upstream subscription changes state only as its table allows; a refused change is logged, not made', async (t) => {
  const { lines, logger } = capturingLogger();
  const item = new WatchItem(target());
  t.equal(item.state, 'initial');
  t.notOk(item.up);
  t.notOk(item.enter('refreshing', logger), 'not up yet: a SUBSCRIBE out is notify-wait');
  t.equal(item.state, 'initial', 'refused: unchanged');
  t.ok(item.enter('notify-wait', logger));
  t.notOk(item.enter('active', logger), 'up while the SUBSCRIBE is out is refreshing');
  t.ok(item.enter('refreshing', logger));
  t.ok(item.up);
  t.ok(item.enter('active', logger));
  t.ok(item.enter('terminated', logger));
  t.notOk(item.enter('active', logger), 'removed is final');
  t.equal(item.state, 'terminated');
  t.notOk(item.up);
  await new Promise((r) => setImmediate(r));
  t.same(
    lines.map((l) => [l['level'], l['msg'], l['from'], l['to'], l['trunk'], l['user']]),
    [
      [50, 'upstream subscription state change refused', 'initial', 'refreshing', 'pbx1', 'alice'],
      [50, 'upstream subscription state change refused', 'notify-wait', 'active', 'pbx1', 'alice'],
      [50, 'upstream subscription state change refused', 'terminated', 'active', 'pbx1', 'alice'],
    ],
  );
});

t.test('a refresh asked for while a refresh is out goes out once that one is accepted (refreshing-queued)', async (t) => {
  const s = setup();
  const sub = await established(s);
  s.watcher.refreshAll('pbx1');
  await settle();
  t.equal(s.sender.sent.length, 2, 'the refresh is out');
  s.watcher.refreshAll('pbx1');
  await settle();
  t.equal(s.sender.sent.length, 2, 'one SUBSCRIBE out at a time');
  t.equal(s.watcher.stateOf('pbx1', 'alice'), 'refreshing-queued');
  s.sender.last().answer(200, { toTag: 'pbx-tag', headers: [['expires', '3600']] });
  await settle();
  t.equal(s.sender.sent.length, 3, 'the queued refresh went out after the 2xx');
  t.equal(s.sender.last().request.headers.get('call-id'), sub.request.headers.get('call-id'), 'in the same dialog');
  t.equal(s.watcher.stateOf('pbx1', 'alice'), 'refreshing');
  s.sender.last().answer(200, { toTag: 'pbx-tag', headers: [['expires', '3600']] });
  await settle();
  t.equal(s.sender.sent.length, 3, 'nothing more queued');
  t.equal(s.watcher.stateOf('pbx1', 'alice'), 'active');
});

t.test('a refresh asked for before the first SUBSCRIBE is answered follows its 2xx (notify-wait-queued)', async (t) => {
  const s = setup();
  s.watcher.add(target());
  await settle();
  s.watcher.refreshAll('pbx1');
  t.equal(s.watcher.stateOf('pbx1', 'alice'), 'notify-wait-queued');
  const first = s.sender.last();
  first.answer(200, { toTag: 'pbx-tag', headers: [['expires', '3600'], ['contact', '<sip:1001@198.51.100.5:5060>']] });
  await settle();
  t.equal(s.sender.sent.length, 2, 'the queued refresh went out');
  t.equal(tagOf(s.sender.last().request.headers.get('to')!), 'pbx-tag', 'inside the dialog the 2xx made');
  t.same(s.items, ['pbx1/alice up']);
});

t.test('an answer to a superseded SUBSCRIBE (the notifier ended it while it was out) changes nothing', async (t) => {
  const s = setup();
  s.watcher.add(target());
  await settle();
  const first = s.sender.last();
  // NOTIFY before the 200 (a new dialog object), then the notifier terminates it
  s.watcher.handleNotify(inbound(notifyFor(first.request, { state: 'active', body: dialogInfo(dialog('d', 'confirmed'), { version: 0 }) })).req);
  t.equal(s.watcher.stateOf('pbx1', 'alice'), 'notify-wait', 'the 2xx will report it up');
  t.equal(s.sink.lastTelephony()?.line, 'in-call', 'its body fed');
  s.watcher.handleNotify(inbound(notifyFor(first.request, { cseq: 2, state: 'terminated;reason=deactivated' })).req);
  t.equal(s.watcher.stateOf('pbx1', 'alice'), 'retry-wait');
  first.answer(200, { toTag: 'pbx-tag', headers: [['expires', '3600']] });
  await settle();
  t.equal(s.watcher.stateOf('pbx1', 'alice'), 'retry-wait', 'the late 2xx does not bring it up');
  t.same(s.items, ['pbx1/alice down terminated;reason=deactivated'], 'never reported up');
  t.equal(s.sender.sent.length, 1, 'and no unsubscribe or refresh sent for it');
});

t.test("under the 'throw' policy a refused change throws (how the tests run the watcher)", async (t) => {
  const item = new WatchItem(target());
  t.throws(() => item.enter('refreshing', silentLogger(), 'throw'), { name: 'InvalidTransitionError', message: /initial → refreshing refused/ });
  t.equal(item.state, 'initial', 'not made');
  const request = item.begin(silentLogger(), 'throw');
  t.ok(item.answers(request), 'the SUBSCRIBE out is the current request');
  t.ok(item.enter('retry-wait', silentLogger(), 'throw'));
  t.notOk(item.answers(request), 'down: its answer is superseded');
  const newer = item.begin(silentLogger(), 'throw');
  t.ok(item.answers(newer), 'a newer SUBSCRIBE out is current');
  t.notOk(item.answers(request), 'the old one stays superseded');
});
