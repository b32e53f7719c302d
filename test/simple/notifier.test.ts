import t from 'tap';
import { parseDialogInfo, parsePidf } from '../../src/bodies/index.js';
import type { TelephonyState } from '../../src/core/person-state.js';
import { parseSubscriptionState, tagOf } from '../../src/sip/header-values.js';
import { makeServer, resubscribe, settle, subscribe } from './helpers.js';

function ringing(at: number): TelephonyState {
  return {
    line: 'ringing',
    dnd: false,
    calls: [{ id: 'c1', phase: 'early', direction: 'recipient', remote: { identity: 'sip:bob@example.com', display: 'Bob' } }],
    origin: 'test',
    at,
  };
}

function subState(value: string | undefined) {
  return parseSubscriptionState(value ?? '');
}

t.test('SUBSCRIBE: 200 with Expires and Contact, then the initial NOTIFY with full state', async (t) => {
  const { stack } = makeServer();
  const req = subscribe({ expires: 600, accept: ['application/pidf+xml'] });
  const [res] = stack.deliver(req);
  t.equal(res?.status, 200);
  t.equal(res?.headers.get('expires'), '600');
  t.equal(res?.headers.get('contact'), '<sip:192.0.2.10:5060>');
  const localTag = tagOf(res!.headers.get('to')!);
  t.ok(localTag, 'our To tag');
  t.same(stack.log, ['response 200', 'request NOTIFY'], 'NOTIFY only after the response');

  const [n] = stack.notifies();
  const h = n!.request.headers;
  t.equal(n!.request.uri, 'sip:console@198.51.100.7:5062', 'Request-URI = watcher Contact');
  t.same(n!.options.destination, { protocol: 'udp', address: '198.51.100.7', port: 5062 });
  t.equal(tagOf(h.get('from')!), localTag, 'From carries our tag');
  t.match(h.get('from')!, /sip:alice@example\.com/);
  t.equal(h.get('to'), req.headers.get('from'), 'To is the watcher with its tag');
  t.equal(h.get('call-id'), req.headers.get('call-id'));
  t.equal(h.get('cseq'), '1 NOTIFY');
  t.equal(h.get('event'), 'presence');
  t.same(subState(h.get('subscription-state')), { state: 'active', expires: 600 });
  t.equal(h.get('content-type'), 'application/pidf+xml');
  t.equal(h.get('contact'), '<sip:192.0.2.10:5060>');
  const doc = parsePidf(n!.request.body);
  t.equal(doc.entity, 'sip:alice@example.com');
  t.equal(doc.tuples[0]?.basic, 'open');
});

t.test('SUBSCRIBE error answers', async (t) => {
  const { stack, server } = makeServer();
  const noEvent = stack.deliver(subscribe({ event: null }))[0]!;
  t.equal(noEvent.status, 489);
  t.equal(noEvent.headers.get('allow-events'), 'presence, dialog');
  t.equal(stack.deliver(subscribe({ event: 'message-summary' }))[0]?.status, 489);

  t.equal(stack.deliver(subscribe({ user: 'nobody' }))[0]?.status, 404, 'unknown user');
  t.equal(stack.deliver(subscribe({ user: 'alice', host: 'elsewhere.org' }))[0]?.status, 404, 'not our domain');

  const notAcceptable = stack.deliver(subscribe({ accept: ['text/plain', 'application/simple-message-summary'] }))[0]!;
  t.equal(notAcceptable.status, 406);
  t.equal(notAcceptable.headers.get('accept'), 'application/pidf+xml, application/cpim-pidf+xml, application/xpidf+xml');
  t.equal(stack.deliver(subscribe({ accept: ['application/pidf+xml;q=0'] }))[0]?.status, 406, 'q=0 refuses');

  const brief = stack.deliver(subscribe({ expires: 10 }))[0]!;
  t.equal(brief.status, 423);
  t.equal(brief.headers.get('min-expires'), '60');
  t.equal(stack.deliver(subscribe({ expires: 'soon' }))[0]?.status, 400);
  t.equal(stack.deliver(subscribe({ contact: null }))[0]?.status, 400, 'Contact required');

  const unknownDialog = stack.deliver(subscribe({ toTag: 'not-ours', cseq: 2 }))[0]!;
  t.equal(unknownDialog.status, 481);
  t.equal(stack.sent.length, 0, 'no NOTIFY for refused requests');
  t.same(server.counts().subscriptions, { presence: 0, dialog: 0 });
});

t.test('Expires: above max is clamped, missing gets the default, a body is ignored', async (t) => {
  const { stack } = makeServer();
  t.equal(stack.deliver(subscribe({ expires: 999_999 }))[0]?.headers.get('expires'), '3600');
  t.equal(stack.deliver(subscribe({ body: 'ignored' }))[0]?.headers.get('expires'), '1800');
  const states = stack.notifies().map((n) => subState(n.request.headers.get('subscription-state'))?.expires);
  t.same(states, [3600, 1800]);
});

t.test('extension, pres: URI and IP host resolve to the person', async (t) => {
  const { stack } = makeServer();
  const viaExtension = subscribe({ user: '1001', host: '192.0.2.10' });
  t.equal(stack.deliver(viaExtension)[0]?.status, 200);
  const pres = subscribe();
  pres.uri = 'pres:alice@example.com';
  t.equal(stack.deliver(pres)[0]?.status, 200);
  // entity is the AoR the watcher subscribed to (its To)
  t.equal(parsePidf(stack.notifies()[0]!.request.body).entity, 'sip:1001@192.0.2.10');
});

t.test('refresh in the dialog: 200 + NOTIFY, CSeq increasing, expiry moved', async (t) => {
  const { stack, server, advance } = makeServer();
  const first = subscribe({ expires: 120 });
  const ok = stack.deliver(first)[0]!;
  stack.sent[0]!.answer(200);
  await settle();

  advance(100_000);
  const refresh = resubscribe(first, ok, { expires: 300, contact: '<sip:console@198.51.100.8:5070>' });
  const res = stack.deliver(refresh)[0]!;
  t.equal(res.status, 200);
  t.equal(res.headers.get('expires'), '300');
  const second = stack.notifies()[1]!;
  t.equal(second.request.headers.get('cseq'), '2 NOTIFY');
  t.equal(second.request.uri, 'sip:console@198.51.100.8:5070', 'refresh Contact is the new remote target');
  t.equal(second.options.destination.port, 5070);
  t.same(subState(second.request.headers.get('subscription-state')), { state: 'active', expires: 300 });
  second.answer(200);
  await settle();

  advance(60_000); // past the original 120 s
  t.equal(server.counts().subscriptions['presence'], 1, 'still active');
  t.equal(stack.notifies().length, 2);

  const stale = resubscribe(first, ok, { cseq: 1 });
  t.equal(stack.deliver(stale)[0]?.status, 500, 'lower CSeq is out of order');
  const otherCall = resubscribe(first, ok);
  otherCall.headers.set('call-id', 'different');
  t.equal(stack.deliver(otherCall)[0]?.status, 481, 'tag alone does not match a dialog');
});

t.test('unsubscribe: Expires 0 gets 200 and a terminated NOTIFY', async (t) => {
  const { stack, server } = makeServer();
  const first = subscribe();
  const ok = stack.deliver(first)[0]!;
  stack.sent[0]!.answer(200);
  await settle();
  const res = stack.deliver(resubscribe(first, ok, { expires: 0 }))[0]!;
  t.equal(res.status, 200);
  t.equal(res.headers.get('expires'), '0');
  const last = stack.notifies()[1]!;
  t.equal(last.request.headers.get('subscription-state'), 'terminated');
  t.ok(last.request.body.length > 0, 'final state included');
  t.equal(server.counts().subscriptions['presence'], 0);
  t.equal(stack.deliver(resubscribe(first, ok, { cseq: 5 }))[0]?.status, 481, 'gone after');
});

t.test('fetch: Expires 0 on a new SUBSCRIBE gets one NOTIFY with state, terminated', async (t) => {
  const { stack, server } = makeServer();
  const res = stack.deliver(subscribe({ expires: 0 }))[0]!;
  t.equal(res.status, 200);
  const n = stack.notifies();
  t.equal(n.length, 1);
  t.equal(n[0]!.request.headers.get('subscription-state'), 'terminated;reason=timeout');
  t.equal(parsePidf(n[0]!.request.body).entity, 'sip:alice@example.com');
  t.equal(server.counts().subscriptions['presence'], 0);
});

t.test('expiry on the wheel sends terminated;reason=timeout', async (t) => {
  const { stack, server, advance } = makeServer();
  stack.deliver(subscribe({ expires: 60 }));
  stack.sent[0]!.answer(200);
  await settle();
  advance(59_000);
  t.equal(stack.notifies().length, 1, 'not yet');
  advance(2_000);
  const n = stack.notifies();
  t.equal(n.length, 2);
  t.equal(n[1]!.request.headers.get('subscription-state'), 'terminated;reason=timeout');
  t.equal(n[1]!.request.headers.get('cseq'), '2 NOTIFY');
  t.equal(server.counts().subscriptions['presence'], 0);
});

for (const status of [481, 408, 503]) {
  t.test(`NOTIFY answered ${status} ends the subscription`, async (t) => {
    const { stack, store, server, now } = makeServer();
    stack.deliver(subscribe());
    stack.sent[0]!.answer(status);
    await settle();
    t.equal(server.counts().subscriptions['presence'], 0);
    store.setTelephony('alice', ringing(now()));
    await settle();
    t.equal(stack.sent.length, 1, 'nothing more is sent to it');
  });
}

t.test('a NOTIFY refused with 500 keeps the subscription', async (t) => {
  const { stack, store, server, now } = makeServer();
  stack.deliver(subscribe());
  stack.sent[0]!.answer(500);
  await settle();
  t.equal(server.counts().subscriptions['presence'], 1);
  store.setTelephony('alice', ringing(now()));
  await settle();
  t.equal(stack.sent.length, 2);
});

t.test('one NOTIFY outstanding: queued changes collapse to the latest state, in order, for every watcher', async (t) => {
  const { stack, store, now } = makeServer();
  stack.deliver(subscribe());
  stack.deliver(subscribe());
  stack.deliver(subscribe());
  t.equal(stack.pending().length, 3, 'initial NOTIFYs outstanding');

  store.setTelephony('alice', ringing(now()));
  await settle();
  store.setTelephony('alice', { ...ringing(now()), line: 'in-call', calls: [{ id: 'c1', phase: 'confirmed' }] });
  await settle();
  store.setSip('alice', { basic: 'open', activities: ['dnd'], origin: 'test', at: now() });
  await settle();
  t.equal(stack.sent.length, 3, 'nothing more while each has one outstanding');

  // The watchers answer at different times.
  stack.sent[0]!.answer(200);
  await settle();
  t.equal(stack.sent.length, 4, 'first watcher gets the next one');
  for (const p of stack.pending()) p.answer(200);
  await settle();
  while (stack.pending().length > 0) {
    for (const p of stack.pending()) p.answer(200);
    await settle();
  }
  const byCall = new Map<string, string[]>();
  for (const s of stack.notifies()) {
    const id = s.request.headers.get('call-id')!;
    const list = byCall.get(id) ?? [];
    list.push(s.request.headers.get('cseq')!);
    byCall.set(id, list);
    // every watcher's last NOTIFY carries the latest state
  }
  t.equal(byCall.size, 3);
  for (const [, cseqs] of byCall) t.same(cseqs, ['1 NOTIFY', '2 NOTIFY'], 'initial, then the latest only');
  const finals = stack.notifies().filter((s) => s.request.headers.get('cseq') === '2 NOTIFY');
  for (const f of finals) {
    const doc = parsePidf(f.request.body);
    const names = doc.persons[0]!.activities.map((a) => a.name);
    t.ok(names.includes('busy') && names.includes('on-the-phone'), 'latest: on the phone + DND (busy)');
  }
});

t.test('each change sends one NOTIFY per watcher; CSeq increases by one', async (t) => {
  const { stack, store, now } = makeServer();
  stack.deliver(subscribe());
  for (let i = 0; i < 4; i++) {
    for (const p of stack.pending()) p.answer(200);
    await settle();
    store.setSip('alice', { basic: 'open', activities: i % 2 === 0 ? ['away'] : ['meeting'], origin: 't', at: now() });
    await settle();
  }
  t.same(
    stack.notifies().map((n) => n.request.headers.get('cseq')),
    ['1 NOTIFY', '2 NOTIFY', '3 NOTIFY', '4 NOTIFY', '5 NOTIFY'],
  );
  const last = parsePidf(stack.notifies()[4]!.request.body);
  t.same(last.persons[0]!.activities.map((a) => a.name), ['meeting']);
});

t.test('a change that renders the same body for a watcher sends it no NOTIFY; one that changes it does', async (t) => {
  const { stack, store, now } = makeServer();
  stack.deliver(subscribe({ accept: ['application/pidf+xml'] }));
  stack.deliver(subscribe({ accept: ['application/xpidf+xml'] })); // XPIDF: status and substatus only
  for (const p of stack.pending()) p.answer(200);
  await settle();
  const callOf = (n: { request: { headers: { get(name: string): string | undefined } } }) => n.request.headers.get('call-id');
  const pidfCall = callOf(stack.notifies()[0]!);
  const xpidfCall = callOf(stack.notifies()[1]!);

  store.setSip('alice', { basic: 'open', activities: ['away'], origin: 'test', at: now() });
  await settle();
  t.same(stack.notifies().slice(2).map(callOf).sort(), [pidfCall, xpidfCall].sort(), 'away: both documents change');
  for (const p of stack.pending()) p.answer(200);
  await settle();

  // vacation: a new PIDF activity, the same XPIDF document (open, away)
  store.setSip('alice', { basic: 'open', activities: ['vacation'], origin: 'test', at: now() });
  await settle();
  const third = stack.notifies().slice(4);
  t.same(third.map(callOf), [pidfCall], 'only the PIDF watcher is notified');
  t.equal(third[0]!.request.headers.get('cseq'), '3 NOTIFY');
  for (const p of stack.pending()) p.answer(200);
  await settle();

  // a call: the XPIDF document changes again, and its CSeq counts only what was sent
  store.setTelephony('alice', ringing(now()));
  await settle();
  const xpidf = stack.notifies().slice(5).find((n) => callOf(n) === xpidfCall);
  t.equal(xpidf?.request.headers.get('cseq'), '3 NOTIFY');
  t.match(xpidf?.request.body.toString('utf8') ?? '', /inuse/);
});

t.test('a change queued behind an outstanding NOTIFY that renders what it carried is not sent after it', async (t) => {
  const { stack, store, now } = makeServer();
  stack.deliver(subscribe({ accept: ['application/xpidf+xml'] }));
  stack.sent[0]!.answer(200);
  await settle();
  store.setSip('alice', { basic: 'open', activities: ['away'], origin: 'test', at: now() });
  await settle();
  t.equal(stack.notifies().length, 2, 'away: NOTIFY 2 outstanding');
  store.setSip('alice', { basic: 'open', activities: ['vacation'], origin: 'test', at: now() }); // XPIDF: still open, away
  await settle();
  stack.sent[1]!.answer(200);
  await settle();
  t.equal(stack.notifies().length, 2, 'nothing after it: the watcher has this state');
  store.setTelephony('alice', ringing(now()));
  await settle();
  t.equal(stack.notifies()[2]?.request.headers.get('cseq'), '3 NOTIFY', 'a real change still goes');
});

t.test('dialog package: version per subscription, dialogs from calls, hold, none when idle', async (t) => {
  const { stack, store, now } = makeServer();
  stack.deliver(subscribe({ event: 'dialog', accept: ['application/dialog-info+xml'] }));
  stack.sent[0]!.answer(200);
  await settle();
  store.setTelephony('alice', ringing(now()));
  await settle();
  stack.sent[1]!.answer(200);
  await settle();
  // a second watcher arrives later: its own version count
  stack.deliver(subscribe({ event: 'dialog', user: 'alice' }));
  stack.sent[2]!.answer(200);
  await settle();
  store.setTelephony('alice', {
    line: 'on-hold',
    dnd: false,
    calls: [{ id: 'c1', phase: 'confirmed', direction: 'recipient', held: true, remote: { identity: 'sip:bob@example.com' } }],
    origin: 'test',
    at: now(),
  });
  await settle();
  for (const p of stack.pending()) p.answer(200);
  await settle();
  store.setTelephony('alice', undefined);
  await settle();
  for (const p of stack.pending()) p.answer(200);
  await settle();

  const docs = stack.notifies().map((n) => ({
    call: n.request.headers.get('call-id'),
    ct: n.request.headers.get('content-type'),
    doc: parseDialogInfo(n.request.body),
  }));
  const firstCall = docs[0]!.call;
  const w1 = docs.filter((d) => d.call === firstCall).map((d) => d.doc);
  const w2 = docs.filter((d) => d.call !== firstCall).map((d) => d.doc);
  t.same(w1.map((d) => d.version), [0, 1, 2, 3], 'first watcher versions');
  t.same(w2.map((d) => d.version), [0, 1, 2], 'second watcher counts its own');
  t.equal(docs[0]!.ct, 'application/dialog-info+xml');
  t.equal(w1[0]!.dialogs.length, 0, 'idle: no dialog');
  t.equal(w1[0]!.entity, 'sip:alice@example.com');
  const early = w1[1]!.dialogs[0]!;
  t.equal(early.state, 'early');
  t.equal(early.direction, 'recipient');
  t.equal(early.remote?.identity, 'sip:bob@example.com');
  t.equal(early.remote?.display, 'Bob');
  const held = w1[2]!.dialogs[0]!;
  t.equal(held.state, 'confirmed');
  t.same(held.local?.targetParams, [['+sip.rendering', 'no']]);
  t.same(w2[1]!.dialogs, w1[2]!.dialogs, 'same state, different version');
  t.equal(w1[3]!.dialogs.length, 0, 'idle again');
});

t.test('presence for a cpim-pidf-only watcher uses the Cisco flavor', async (t) => {
  const { stack, store, now } = makeServer();
  stack.deliver(subscribe({ accept: ['application/cpim-pidf+xml'] }));
  stack.deliver(subscribe({ accept: ['application/cpim-pidf+xml', 'application/pidf+xml'] }));
  const [cisco, plain] = stack.notifies();
  t.equal(cisco!.request.headers.get('content-type'), 'application/cpim-pidf+xml');
  t.match(cisco!.request.body.toString(), /<rpid:activities\/>/, 'empty activities when idle');
  t.equal(plain!.request.headers.get('content-type'), 'application/pidf+xml');
  t.notMatch(plain!.request.body.toString(), /activities/);
  for (const p of stack.pending()) p.answer(200);
  await settle();

  store.setTelephony('alice', ringing(now()));
  await settle();
  const ring = stack.notifies()[2]!;
  const ringDoc = parsePidf(ring.request.body);
  t.same(ringDoc.persons[0]!.activities, [{ name: 'alerting', ns: 'cisco' }], 'ringing is ce:alerting');
  const plainRing = parsePidf(stack.notifies()[3]!.request.body);
  t.same(plainRing.persons[0]!.activities, [{ name: 'on-the-phone', ns: 'rpid' }]);
  for (const p of stack.pending()) p.answer(200);
  await settle();

  store.setTelephony('alice', undefined);
  await settle();
  store.setSip('alice', { basic: 'open', activities: ['dnd'], origin: 't', at: now() });
  await settle();
  for (const p of stack.pending()) p.answer(200);
  await settle();
  const dndDoc = parsePidf(stack.notifies().at(-2)!.request.body);
  t.same(dndDoc.persons[0]!.activities, [{ name: 'dnd', ns: 'cisco' }], 'DND is ce:dnd');
});

t.test('NOTIFY routing: Record-Route, TCP connection reuse, transport param, host names', async (t) => {
  const lookups: string[] = [];
  const { stack } = makeServer({
    lookup: async (host) => {
      lookups.push(host);
      return '203.0.113.5';
    },
  });
  const answers = stack.deliver(subscribe({ recordRoute: ['<sip:proxy.example.com;lr>', '<sip:198.51.100.1;lr>'] }));
  await settle();
  const routed = stack.notifies()[0]!;
  t.same(routed.request.headers.getAll('route'), ['<sip:proxy.example.com;lr>', '<sip:198.51.100.1;lr>']);
  t.equal(routed.request.uri, 'sip:console@198.51.100.7:5062', 'loose routing keeps the target');
  t.same(routed.options.destination, { protocol: 'udp', address: '203.0.113.5', port: 5060 }, 'first route, resolved');
  t.same(lookups, ['proxy.example.com']);
  // RFC 3261 §12.1.1: the 200 that makes the dialog carries the Record-Route values, in order
  const made = answers.find((r) => r.status === 200)!;
  t.same(made.headers.getAll('record-route'), ['<sip:proxy.example.com;lr>', '<sip:198.51.100.1;lr>'], 'the 200 copies Record-Route');

  stack.deliver(subscribe({ contact: '<sip:console@198.51.100.7:50123;transport=tcp>' }), {
    protocol: 'tcp',
    connectionId: 'conn-7',
  });
  const tcp = stack.notifies()[1]!;
  t.equal(tcp.options.connectionId, 'conn-7');
  t.same(tcp.options.destination, { protocol: 'tcp', address: '198.51.100.7', port: 50123 });
  t.equal(tcp.request.headers.get('contact'), '<sip:192.0.2.10:5070;transport=tcp>');

  stack.deliver(subscribe({ contact: '<sip:console@[2001:db8::7]>' }), { protocol: 'tcp' });
  t.same(stack.notifies()[2]!.options.destination, { protocol: 'tcp', address: '2001:db8::7', port: 5060 }, 'default: the transport it came on');

  const failing = makeServer({ lookup: async () => Promise.reject(new Error('ENOTFOUND')) });
  failing.stack.deliver(subscribe({ contact: '<sip:console@unresolvable.invalid>' }));
  await settle();
  t.equal(failing.server.counts().subscriptions['presence'], 0, 'a watcher that cannot be reached is dropped');
});

t.test('Event id is echoed and distinguishes subscriptions in refreshes', async (t) => {
  const { stack } = makeServer();
  const first = subscribe({ event: 'presence;id=42' });
  const ok = stack.deliver(first)[0]!;
  t.equal(stack.notifies()[0]!.request.headers.get('event'), 'presence;id=42');
  const wrongId = resubscribe(first, ok);
  wrongId.headers.set('event', 'presence;id=43');
  t.equal(stack.deliver(wrongId)[0]?.status, 481);
});

t.test('close(): no terminating NOTIFYs and no expiries', async (t) => {
  const { stack, server, advance, store, now } = makeServer();
  stack.deliver(subscribe({ expires: 60 }));
  stack.sent[0]!.answer(200);
  await settle();
  server.close();
  advance(120_000);
  store.setSip('alice', { basic: 'closed', activities: [], origin: 't', at: now() });
  await settle();
  t.equal(stack.sent.length, 1);
});
