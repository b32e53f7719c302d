import t from 'tap';
import {
  acceptRemoteCSeq,
  contactValue,
  earlyDialog,
  ENDS_DIALOG_USAGE,
  isEstablished,
  literalHop,
  nextHopOf,
  nextLocalCSeq,
  notifyDialog,
  ourContact,
  refreshTarget,
  remoteCSeqInOrder,
  RESTORE_CSEQ_MARGIN,
  restoredLocalCSeq,
  routeRequest,
  uacDialog,
  uasDialog,
} from '../../src/sip/dialog.js';
import { Headers } from '../../src/sip/headers.js';
import { createRequest, type SipResponse } from '../../src/sip/message.js';
import { parseUri } from '../../src/sip/uri.js';

function subscribe(extra: Array<[string, string]>) {
  return createRequest(
    'SUBSCRIBE',
    'sip:alice@gw',
    Headers.from([
      ['from', '<sip:bob@pbx>;tag=ft1'],
      ['to', '<sip:alice@gw>'],
      ['call-id', 'c1@pbx'],
      ['cseq', '7 SUBSCRIBE'],
      ...extra,
    ]),
  );
}

function response(headers: Array<[string, string]>): SipResponse {
  return { kind: 'response', status: 200, reason: 'OK', headers: Headers.from(headers), body: Buffer.alloc(0) };
}

t.test('UAS (RFC 3261 §12.1.1): Record-Route in order, Contact, From tag, the request CSeq', async (t) => {
  const req = subscribe([
    ['contact', '<sip:bob@10.0.0.5:5070;transport=tcp>'],
    ['record-route', '<sip:p1.example;lr>'],
    ['record-route', '<sip:p2.example;lr>'],
  ]);
  const d = uasDialog(req, 'our1', 7);
  t.ok(d);
  t.same(d, {
    callId: 'c1@pbx',
    localTag: 'our1',
    remoteTag: 'ft1',
    remoteTarget: 'sip:bob@10.0.0.5:5070;transport=tcp',
    routeSet: ['<sip:p1.example;lr>', '<sip:p2.example;lr>'],
    localCSeq: 0,
    remoteCSeq: 7,
  });
  t.equal(uasDialog(subscribe([]), 'our1', 7), undefined, 'no Contact: no dialog');
  t.equal(uasDialog(subscribe([['contact', '<sip:a@h>'], ['contact', '<sip:b@h>']]), 'our1', 7), undefined, 'two Contacts: no dialog');
  const copied: string[] = [];
  uasDialog(req, 'our1', 7, (s) => {
    copied.push(s);
    return s;
  });
  t.ok(copied.includes('c1@pbx') && copied.includes('<sip:p2.example;lr>'), 'values a holder keeps go through copy');
});

t.test('UAC (RFC 3261 §12.1.2): To tag, Record-Route reversed, CSeqs carry on', async (t) => {
  const early = earlyDialog('c2@gw', 'our2');
  t.equal(nextLocalCSeq(early), 1);
  t.notOk(isEstablished(early));
  const ok = response([
    ['to', '<sip:alice@pbx>;tag=tt2'],
    ['contact', '<sip:alice@10.0.0.9>'],
    ['record-route', '<sip:p1.example;lr>'],
    ['record-route', '<sip:p2.example;lr>'],
  ]);
  const d = uacDialog(early, ok);
  t.ok(isEstablished(d));
  t.same(d, {
    callId: 'c2@gw',
    localTag: 'our2',
    remoteTag: 'tt2',
    remoteTarget: 'sip:alice@10.0.0.9',
    routeSet: ['<sip:p2.example;lr>', '<sip:p1.example;lr>'],
    localCSeq: 1,
    remoteCSeq: -1,
  });
  t.equal(uacDialog(early, response([['contact', '<sip:alice@10.0.0.9>']])), undefined, 'no To tag: no dialog');
  t.equal(uacDialog(early, response([['to', '<sip:a@b>;tag=x']])), undefined, 'no Contact: no dialog');
});

t.test('NOTIFY before the 2xx (RFC 6665 §4.1.2.4): From tag, Record-Route in order, as its UAS', async (t) => {
  const early = earlyDialog('c3@gw', 'our3');
  nextLocalCSeq(early);
  t.ok(acceptRemoteCSeq(early, 4));
  const notify = createRequest(
    'NOTIFY',
    'sip:gw',
    Headers.from([
      ['from', '<sip:alice@pbx>;tag=nt3'],
      ['contact', '<sip:alice@10.0.0.9>'],
      ['record-route', '<sip:p1.example;lr>'],
      ['record-route', '<sip:p2.example;lr>'],
    ]),
  );
  const d = notifyDialog(early, notify, 'nt3');
  t.same(d, {
    callId: 'c3@gw',
    localTag: 'our3',
    remoteTag: 'nt3',
    remoteTarget: 'sip:alice@10.0.0.9',
    routeSet: ['<sip:p1.example;lr>', '<sip:p2.example;lr>'],
    localCSeq: 1,
    remoteCSeq: 4,
  });
  t.equal(notifyDialog(early, createRequest('NOTIFY', 'sip:gw', new Headers()), 'nt3'), undefined, 'no Contact: still early');
});

t.test('target refresh: one valid Contact replaces the remote target', async (t) => {
  const d = { remoteTarget: 'sip:a@10.0.0.1' };
  t.notOk(refreshTarget(d, []), 'no Contact: unchanged');
  t.notOk(refreshTarget(d, ['<sip:a@10.0.0.1>']), 'the same: unchanged');
  t.ok(refreshTarget(d, ['<sip:a@10.0.0.2>']));
  t.equal(d.remoteTarget, 'sip:a@10.0.0.2');
  t.notOk(refreshTarget(d, ['<sip:a@10.0.0.3>', '<sip:a@10.0.0.4>']), 'two Contacts: unchanged');
});

t.test('routing (RFC 3261 §12.2.1.1): loose and strict routers', async (t) => {
  const none = new Headers();
  t.equal(routeRequest('sip:pbx@10.0.0.9', [], none), 'sip:pbx@10.0.0.9');
  t.same(none.getAll('route'), []);
  const loose = new Headers();
  t.equal(routeRequest('sip:pbx@10.0.0.9', ['<sip:10.0.0.1;lr>'], loose), 'sip:pbx@10.0.0.9');
  t.same(loose.getAll('route'), ['<sip:10.0.0.1;lr>']);
  const strict = new Headers();
  t.equal(routeRequest('sip:pbx@10.0.0.9', ['<sip:10.0.0.1>', '<sip:10.0.0.2;lr>'], strict), 'sip:10.0.0.1');
  t.same(strict.getAll('route'), ['<sip:10.0.0.2;lr>', '<sip:pbx@10.0.0.9>']);
});

t.test('next hop: first route, else the remote target; literal only without DNS', async (t) => {
  t.same(literalHop('sip:pbx@10.0.0.9:5070;transport=tcp', [], 'udp'), { protocol: 'tcp', address: '10.0.0.9', port: 5070 });
  t.equal(literalHop('sip:pbx@pbx.example.com', [], 'udp'), undefined, 'a name needs the trunk resolver');
  t.same(literalHop('sip:pbx@pbx.example.com', ['<sip:10.0.0.1:5080;lr>'], 'udp'), { protocol: 'udp', address: '10.0.0.1', port: 5080 });
  t.same(nextHopOf(parseUri('sips:a@[2001:db8::1]')!, 'udp'), { host: '2001:db8::1', literal: true, port: 5061, protocol: 'tls' });
  t.same(nextHopOf(parseUri('sip:a@h.example;maddr=10.1.1.1;transport=TCP')!, 'udp'), { host: '10.1.1.1', literal: true, port: 5060, protocol: 'tcp' });
});

t.test('CSeq: local +1 per request (§12.2.1.1), a lower remote CSeq is out of order (§12.2.2)', async (t) => {
  const d = earlyDialog('c', 'l');
  t.equal(nextLocalCSeq(d), 1);
  t.equal(nextLocalCSeq(d), 2);
  t.ok(remoteCSeqInOrder(d, 0), 'anything is in order before the first');
  t.ok(acceptRemoteCSeq(d, 5));
  t.ok(remoteCSeqInOrder(d, 5), 'equal is not lower');
  t.notOk(remoteCSeqInOrder(d, 4));
  t.notOk(acceptRemoteCSeq(d, 4));
  t.equal(d.remoteCSeq, 5, 'an out-of-order CSeq changes nothing');
  t.ok(acceptRemoteCSeq(d, 9));
  t.equal(d.remoteCSeq, 9);
  t.equal(restoredLocalCSeq(12), 12 + RESTORE_CSEQ_MARGIN);
  t.ok(RESTORE_CSEQ_MARGIN >= 1000, 'the jump covers requests sent unsaved');
});

t.test('RFC 5057: the responses that end a dialog usage', async (t) => {
  for (const s of [404, 405, 408, 410, 416, 480, 481, 482, 483, 484, 485, 489, 501, 502, 503, 604]) t.ok(ENDS_DIALOG_USAGE.has(s), `${s} ends it`);
  for (const s of [200, 202, 400, 401, 403, 407, 415, 420, 423, 486, 500, 600, 603]) t.notOk(ENDS_DIALOG_USAGE.has(s), `${s} leaves it`);
});

t.test('our Contact per transport', async (t) => {
  t.equal(contactValue({ protocol: 'udp', address: '10.0.0.1', port: 5060 }), '<sip:10.0.0.1:5060>');
  t.equal(contactValue({ protocol: 'tcp', address: '::1', port: 5062 }), '<sip:[::1]:5062;transport=tcp>');
  t.equal(contactValue({ protocol: 'udp', address: '0.0.0.0', port: 5060 }), '<sip:127.0.0.1:5060>', 'a wildcard bind');
  t.equal(contactValue({ protocol: 'tls', address: '0.0.0.0', port: 5061 }, 'gw.example'), '<sip:gw.example:5061;transport=tls>');
  const stack = {
    localEndpoint: (p: 'udp' | 'tcp' | 'tls' | 'ws' | 'wss') => (p === 'udp' ? { protocol: p, address: '10.0.0.1', port: 5060 } : undefined),
    advertisedEndpoint: (p: 'udp' | 'tcp' | 'tls' | 'ws' | 'wss') => (p === 'udp' ? { protocol: p, address: '192.0.2.1', port: 5060 } : undefined),
  };
  t.equal(ourContact(stack, 'udp'), '<sip:192.0.2.1:5060>', 'advertised first');
  t.equal(ourContact({ localEndpoint: stack.localEndpoint }, 'udp'), '<sip:10.0.0.1:5060>', 'else bound');
  t.equal(ourContact(stack, 'tcp'), undefined, 'no listener on that transport');
});
