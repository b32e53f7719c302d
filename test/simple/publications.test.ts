import t from 'tap';
import { parseDialogInfo } from '../../src/bodies/index.js';
import { dialogInfoBody, makeServer, pidfBody, publish, settle, subscribe } from './helpers.js';

t.test('PUBLISH create, refresh, modify, remove', async (t) => {
  const { stack, store, server } = makeServer();
  const created = stack.deliver(publish({ body: pidfBody({ activities: '<rpid:away/>', note: 'Lunch' }), expires: 300 }))[0]!;
  t.equal(created.status, 200);
  t.equal(created.headers.get('expires'), '300');
  const etag1 = created.headers.get('sip-etag')!;
  t.ok(etag1);
  t.same(store.view('alice').activities, ['away']);
  t.equal(store.view('alice').note, 'Lunch');
  t.equal(server.counts().publications, 1);

  const refreshed = stack.deliver(publish({ ifMatch: etag1, expires: 600 }))[0]!;
  t.equal(refreshed.status, 200);
  const etag2 = refreshed.headers.get('sip-etag')!;
  t.not(etag2, etag1, 'a refresh gets a new entity-tag');
  t.equal(refreshed.headers.get('expires'), '600');
  t.same(store.view('alice').activities, ['away'], 'refresh keeps the state');
  t.equal(stack.deliver(publish({ ifMatch: etag1 }))[0]?.status, 412, 'the old tag is spent');

  const modified = stack.deliver(publish({ ifMatch: etag2, body: pidfBody({ activities: '<rpid:meeting/>' }) }))[0]!;
  t.equal(modified.status, 200);
  const etag3 = modified.headers.get('sip-etag')!;
  t.not(etag3, etag2);
  t.same(store.view('alice').activities, ['meeting']);
  t.equal(server.counts().publications, 1);

  const removed = stack.deliver(publish({ ifMatch: etag3, expires: 0 }))[0]!;
  t.equal(removed.status, 200);
  t.same(store.view('alice').activities, []);
  t.equal(store.state('alice').sip, undefined);
  t.equal(server.counts().publications, 0);
});

t.test('PUBLISH error answers', async (t) => {
  const { stack, store } = makeServer();
  t.equal(stack.deliver(publish({ ifMatch: 'nope', expires: 60 }))[0]?.status, 412);
  const brief = stack.deliver(publish({ body: pidfBody(), expires: 5 }))[0]!;
  t.equal(brief.status, 423);
  t.equal(brief.headers.get('min-expires'), '60');
  const unsupported = stack.deliver(publish({ body: 'hello', contentType: 'text/plain' }))[0]!;
  t.equal(unsupported.status, 415);
  t.equal(unsupported.headers.get('accept'), 'application/pidf+xml, application/cpim-pidf+xml');
  t.equal(stack.deliver(publish({ event: 'dialog', body: pidfBody() }))[0]?.status, 415, 'PIDF is not dialog-info');

  const bad = stack.deliver(publish({ body: '<presence xmlns="urn:ietf:params:xml:ns:pidf"><tuple id="a"/></presence>' }))[0]!;
  t.equal(bad.status, 400);
  t.match(bad.reason, /^Bad Request - .*entity/, 'reason names the problem');
  const xxe = stack.deliver(
    publish({ body: '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><presence/>' }),
  )[0]!;
  t.equal(xxe.status, 400);

  t.equal(stack.deliver(publish({}))[0]?.status, 400, 'initial PUBLISH needs a body');
  t.equal(stack.deliver(publish({ user: 'nobody', body: pidfBody() }))[0]?.status, 404);
  const wrongEvent = stack.deliver(publish({ event: 'message-summary', body: 'x' }))[0]!;
  t.equal(wrongEvent.status, 489);
  t.equal(wrongEvent.headers.get('allow-events'), 'presence, dialog');

  const presence = stack.deliver(publish({ body: pidfBody() }))[0]!;
  const etag = presence.headers.get('sip-etag')!;
  t.equal(stack.deliver(publish({ event: 'dialog', ifMatch: etag }))[0]?.status, 412, 'tag of another event');
  t.equal(stack.deliver(publish({ user: 'bob', ifMatch: etag }))[0]?.status, 412, 'tag of another user');
  t.equal(store.state('bob').sip, undefined);
});

t.test('publications expire on the wheel', async (t) => {
  const { stack, store, server, advance } = makeServer();
  stack.deliver(publish({ body: pidfBody({ activities: '<rpid:vacation/>' }), expires: 120 }));
  t.same(store.view('alice').activities, ['vacation']);
  advance(119_000);
  t.same(store.view('alice').activities, ['vacation']);
  advance(2_000);
  t.same(store.view('alice').activities, []);
  t.equal(server.counts().publications, 0);
});

t.test('two publications compose: DND wins, removing it restores the other', async (t) => {
  const { stack, store } = makeServer();
  stack.deliver(publish({ body: pidfBody({ activities: '<rpid:away/>' }) }));
  const phone = stack.deliver(publish({ body: pidfBody({ cisco: '<ce:dnd/>' }) }))[0]!;
  const view = store.view('alice');
  t.equal(view.dnd, true, 'Cisco ce:dnd publishes DND');
  t.ok(view.activities.includes('busy'));
  stack.deliver(publish({ ifMatch: phone.headers.get('sip-etag')!, expires: 0 }));
  t.equal(store.view('alice').dnd, false);
  t.same(store.view('alice').activities, ['away']);
});

t.test('dialog PUBLISH sets telephony; partial updates merge; watchers are notified', async (t) => {
  const { stack, store } = makeServer();
  stack.deliver(subscribe({ event: 'dialog' }));
  const ring = dialogInfoBody(
    '<dialog id="d1" call-id="abc" local-tag="l1" remote-tag="r1" direction="recipient"><state>early</state>' +
      '<remote><identity display="Bob">sip:bob@example.com</identity></remote></dialog>',
  );
  const res = stack.deliver(publish({ event: 'dialog', contentType: 'application/dialog-info+xml', body: ring }))[0]!;
  t.equal(res.status, 200);
  const tel = store.state('alice').telephony!;
  t.equal(tel.line, 'ringing');
  t.same(tel.calls[0], {
    id: 'd1',
    phase: 'early',
    direction: 'recipient',
    remote: { identity: 'sip:bob@example.com', display: 'Bob' },
    callId: 'abc',
    localTag: 'l1',
    remoteTag: 'r1',
  });
  t.equal(store.view('alice').ringing, true);

  const held = dialogInfoBody(
    '<dialog id="d2" direction="initiator"><state>confirmed</state><local><target uri="sip:alice@example.com">' +
      '<param pname="+sip.rendering" pval="no"/></target></local></dialog>',
    'partial',
    1,
  );
  const etag = res.headers.get('sip-etag')!;
  const res2 = stack.deliver(
    publish({ event: 'dialog', contentType: 'application/dialog-info+xml', body: held, ifMatch: etag }),
  )[0]!;
  t.equal(res2.status, 200);
  const calls = store.state('alice').telephony!.calls;
  t.same(calls.map((c) => c.id), ['d1', 'd2'], 'partial adds to the previous dialogs');
  t.equal(calls[1]!.held, true);

  const ended = dialogInfoBody('<dialog id="d1"><state>terminated</state></dialog>', 'partial', 2);
  stack.deliver(
    publish({ event: 'dialog', contentType: 'application/dialog-info+xml', body: ended, ifMatch: res2.headers.get('sip-etag')! }),
  );
  t.equal(store.state('alice').telephony!.line, 'on-hold');
  while (stack.pending().length > 0) {
    for (const p of stack.pending()) p.answer(200);
    await settle();
  }
  const last = parseDialogInfo(stack.notifies().at(-1)!.request.body);
  t.same(last.dialogs.map((d) => [d.id, d.state]), [['d2', 'confirmed']], 'the dialog watcher converged on the latest state');
});

t.test('a PUBLISH is answered before the NOTIFYs it causes go out', async (t) => {
  const { stack } = makeServer();
  stack.deliver(subscribe());
  stack.deliver(subscribe());
  for (const p of stack.pending()) p.answer(200);
  await settle();
  stack.log.length = 0;
  const res = stack.deliver(publish({ body: pidfBody({ activities: '<rpid:on-the-phone/>' }), expires: 300 }))[0]!;
  t.equal(res.status, 200);
  t.same(stack.log, ['response 200'], 'nothing sent to watchers within the PUBLISH turn');
  await settle();
  t.same(stack.log, ['response 200', 'request NOTIFY', 'request NOTIFY'], 'then one NOTIFY per watcher');
});
