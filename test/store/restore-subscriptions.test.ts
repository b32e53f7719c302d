/**
 * Restore of watcher subscriptions and publications through the store
 * (MemoryStore standing in for the file): a gateway "restarts" by building a
 * second SimpleServer over the same store.
 */
import t from 'tap';
import { parseSubscriptionState, tagOf } from '../../src/sip/header-values.js';
import type { SipRequest, SipResponse } from '../../src/sip/message.js';
import { createPersistence, type Persistence } from '../../src/persistence-wiring.js';
import { RESTORE_NOTIFY_WINDOW, RESTORE_SEQUENCE_MARGIN } from '../../src/simple/notifier.js';
import { join } from 'node:path';
import { MemoryStore, SqliteStore, type GatewayStore, type WatcherSubscriptionRecord } from '../../src/store/index.js';
import type { RestoreSummary } from '../../src/persistence-wiring.js';
import { silentLogger } from '../../src/util/logger.js';
import { dialogInfoBody, makeServer, pidfBody, publish, resubscribe, settle, subscribe } from '../simple/helpers.js';

type Server = ReturnType<typeof makeServer>;

/** A gateway run: a server over `store`, restored and hooked. */
function run(store: GatewayStore, skipMs = 0): { s: Server; p: Persistence; summary: RestoreSummary } {
  const s = makeServer();
  if (skipMs > 0) s.advance(skipMs);
  const p = createPersistence({ store, logger: silentLogger(), always: true, sweepMs: 3_600_000, clock: { now: s.now } });
  const summary = p.restore({ notifier: s.server.notifier, publications: s.server.publications, directory: { get: (id) => (id === 'alice' || id === 'bob' ? { id } as never : undefined) } });
  return { s, p, summary };
}

function cseqOf(req: SipRequest): number {
  return Number(req.headers.get('cseq')!.split(' ')[0]);
}

function answerAll(s: Server): void {
  for (const n of s.stack.pending()) n.answer(200);
}

t.test('a watcher subscription survives a restart: same dialog, NOTIFY with the current state, CSeq above all sent before', async (t) => {
  const store = new MemoryStore();
  const a = run(store);
  const first = subscribe({ user: 'alice', event: 'dialog', expires: 600, recordRoute: ['<sip:10.0.0.1;lr>'] });
  const [ok] = a.s.stack.deliver(first) as [SipResponse];
  t.equal(ok.status, 200);
  const localTag = tagOf(ok.headers.get('to')!)!;
  await settle();
  answerAll(a.s);
  await settle();

  const saved = store.watcherSubscriptions.get(localTag);
  t.ok(saved, 'saved at create');
  t.equal(saved?.callId, first.headers.get('call-id'));
  t.equal(saved?.localCseq, 1, 'CSeq of the initial NOTIFY');
  t.same(saved?.routeSet, ['<sip:10.0.0.1;lr>']);
  t.equal(saved?.contentType, 'application/dialog-info+xml');

  // three state changes: three NOTIFYs, no writes until the sweep
  for (let i = 0; i < 3; i++) {
    a.s.stack.deliver(publish({ user: 'alice', event: 'dialog', contentType: 'application/dialog-info+xml', body: dialogInfoBody(`<dialog id="d${i}"><state>confirmed</state></dialog>`, 'full', i) }));
    await settle();
    answerAll(a.s);
    await settle();
  }
  const sentCseqs = a.s.stack.notifies().map((n) => cseqOf(n.request));
  t.same(sentCseqs, [1, 2, 3, 4], 'one NOTIFY per change');
  t.equal(store.watcherSubscriptions.get(localTag)?.localCseq, 1, 'not written per NOTIFY');
  t.equal(a.s.server.notifier.persistMoved(), 1, 'the sweep saves the one subscription that moved');
  t.equal(store.watcherSubscriptions.get(localTag)?.localCseq, 4);
  t.equal(store.watcherSubscriptions.get(localTag)?.version, 4, 'next dialog-info version saved');
  // (no close: a crash)

  const b = run(store, 60_000);
  await settle();
  const [n] = b.s.stack.notifies();
  t.ok(n, 'the restored subscription gets a NOTIFY at once');
  const h = n!.request.headers;
  t.equal(h.get('call-id'), first.headers.get('call-id'), 'same Call-ID');
  t.equal(tagOf(h.get('from')!), localTag, 'same local tag');
  t.equal(h.get('to'), first.headers.get('from'), 'same remote party and tag');
  t.same(h.getAll('route'), ['<sip:10.0.0.1;lr>'], 'same route set');
  t.equal(n!.request.uri, 'sip:console@198.51.100.7:5062', 'same remote target');
  t.same(n!.options.destination, { protocol: 'udp', address: '10.0.0.1', port: 5060 }, 'same next hop (the first route)');
  t.equal(cseqOf(n!.request), 4 + RESTORE_SEQUENCE_MARGIN + 1, 'CSeq jumps past anything sent before');
  const ss = parseSubscriptionState(h.get('subscription-state')!);
  t.equal(ss?.state, 'active');
  t.ok(ss?.expires !== undefined && ss.expires <= 540 && ss.expires > 530, 'expiry kept (600 s less the minute down)');
  t.match(n!.request.body.toString(), new RegExp(`version="${4 + RESTORE_SEQUENCE_MARGIN}"`), 'dialog-info version jumps too');
  t.equal(store.watcherSubscriptions.get(localTag)?.localCseq, 4 + RESTORE_SEQUENCE_MARGIN, 'the jump is saved at once');
  answerAll(b.s);
  await settle();

  // the watcher refreshes in its dialog: 200, not 481
  const [refreshed] = b.s.stack.deliver(resubscribe(first, ok, { expires: 600 }));
  t.equal(refreshed?.status, 200, 'refresh in the old dialog accepted');
  await settle();
  const last = b.s.stack.notifies().at(-1)!;
  t.equal(cseqOf(last.request), 4 + RESTORE_SEQUENCE_MARGIN + 2, 'CSeq keeps increasing');
  answerAll(b.s);
  await settle();

  // unsubscribe removes the record
  b.s.stack.deliver(resubscribe(first, ok, { expires: 0, cseq: 3 }));
  await settle();
  t.equal(store.watcherSubscriptions.get(localTag), undefined, 'removed when it ends');
  t.equal(b.s.server.notifier.size, 0);
});

t.test('expired records, unknown users and ws watchers are dropped (and deleted); expiry fires on the wheel', async (t) => {
  const store = new MemoryStore();
  const a = run(store);
  const [ok] = a.s.stack.deliver(subscribe({ user: 'bob', expires: 120 }));
  await settle();
  answerAll(a.s);
  const tag = tagOf(ok!.headers.get('to')!)!;
  const base = store.watcherSubscriptions.get(tag)!;
  const extra = (over: Partial<WatcherSubscriptionRecord>): void => store.watcherSubscriptions.upsert({ ...base, ...over });
  extra({ id: 'gone1', localTag: 'gone1', expiresAt: base.createdAt - 1 });
  extra({ id: 'nobody1', localTag: 'nobody1', resource: 'nobody' });
  extra({ id: 'ws1', localTag: 'ws1', transport: 'ws' });
  extra({ id: 'odd1', localTag: 'odd1', contentType: 'text/plain' });

  const b = run(store, 10_000);
  t.equal(b.s.server.notifier.size, 1, 'only the live one');
  t.same(store.watcherSubscriptions.loadAll().map((r) => r.id), [tag], 'dropped records deleted');
  await settle();
  answerAll(b.s);
  await settle();
  b.s.advance(115_000);
  await settle();
  t.equal(b.s.server.notifier.size, 0, 'expired at its saved time');
  const final = b.s.stack.notifies().at(-1)!;
  t.equal(final.request.headers.get('subscription-state'), 'terminated;reason=timeout');
  t.equal(store.watcherSubscriptions.count(), 0);
});

t.test('a publication survives a restart: its state is composed again and a refresh with SIP-If-Match gets 200', async (t) => {
  const store = new MemoryStore();
  const a = run(store);
  const [res] = a.s.stack.deliver(publish({ user: 'alice', expires: 600, body: pidfBody({ activities: '<rpid:on-the-phone/>' }) }));
  t.equal(res?.status, 200);
  const etag = res!.headers.get('sip-etag')!;
  t.equal(store.publications.get(etag)?.resource, 'alice', 'saved under its entity-tag');

  const b = run(store, 5_000);
  t.same(b.s.store.view('alice').activities, ['on-the-phone'], 'the published state is back in core');
  const [refresh] = b.s.stack.deliver(publish({ user: 'alice', expires: 600, ifMatch: etag }));
  t.equal(refresh?.status, 200, 'refresh with the old entity-tag accepted');
  const next = refresh!.headers.get('sip-etag')!;
  t.not(next, etag, 'a new entity-tag');
  t.equal(store.publications.get(etag), undefined, 'the old tag is forgotten');
  t.ok(store.publications.get(next), 'the new tag is saved');

  const [removed] = b.s.stack.deliver(publish({ user: 'alice', expires: 0, ifMatch: next }));
  t.equal(removed?.status, 200);
  t.equal(store.publications.count(), 0, 'removal deletes it');
  t.same(b.s.store.view('alice').activities, [], 'and its state');
});

t.test('a graceful stop saves the CSeqs that moved and closes the store', async (t) => {
  const store = new MemoryStore();
  const a = run(store);
  const [ok] = a.s.stack.deliver(subscribe({ user: 'alice', expires: 600 }));
  await settle();
  answerAll(a.s);
  a.s.stack.deliver(publish({ user: 'alice', body: pidfBody({ activities: '<rpid:away/>' }) }));
  await settle();
  t.equal(a.s.server.notifier.notifiesInFlight, 1, 'one NOTIFY out');
  const closing = a.p.close();
  setTimeout(() => answerAll(a.s), 30);
  await closing;
  t.equal(a.s.server.notifier.notifiesInFlight, 0, 'waited for its answer');
  const tag = tagOf(ok!.headers.get('to')!)!;
  t.equal(store.watcherSubscriptions.get(tag)?.localCseq, 2, 'the CSeq of the NOTIFY sent before the stop is saved');
  t.equal(store.status().ok, false, 'store closed');
});

t.test('without `always` a memory store is not hooked (nothing could survive)', async (t) => {
  const store = new MemoryStore();
  const s = makeServer();
  const p = createPersistence({ store, logger: silentLogger() });
  t.equal(p.persistent, false);
  p.restore({ notifier: s.server.notifier, publications: s.server.publications, directory: { get: () => undefined } });
  s.stack.deliver(subscribe({ user: 'alice' }));
  t.equal(store.watcherSubscriptions.count(), 0);
  await p.close();
});

t.test('a clean stop and restart through the SQLite file brings back every one of many subscriptions', async (t) => {
  const path = join(t.testdir(), 'gw.db');
  const count = 5000;
  const a = run(SqliteStore.open({ path }));
  const accepted = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    const [ok] = a.s.stack.deliver(subscribe({ user: i % 2 === 0 ? 'alice' : 'bob', expires: 3600 }));
    accepted.set(tagOf(ok!.headers.get('to')!)!, ok!.headers.get('call-id')!);
  }
  await settle();
  answerAll(a.s);
  t.equal(a.s.server.notifier.size, count, 'all live before the stop');
  await a.p.close(); // the SIGTERM path: the store's queue and the batch in flight are written, then the file is closed

  const b = run(SqliteStore.open({ path }));
  t.teardown(() => b.p.close());
  t.same(b.summary.subscriptions, { restored: count, dropped: 0 }, 'restored all, dropped none');
  t.equal(b.s.server.notifier.size, count);
  let sameDialog = 0;
  for (const [tag, callId] of accepted) if (b.s.server.notifier.find(tag)?.callId === callId) sameDialog++;
  t.equal(sameDialog, count, 'each comes back in its own dialog');
  // the restore NOTIFYs go out in fan-out slices, no more than the window at once, the next as answers come
  let mostInFlight = 0;
  for (let i = 0; i < 500 && b.s.stack.notifies().length < count; i++) {
    await settle();
    mostInFlight = Math.max(mostInFlight, b.s.stack.pending().length);
    answerAll(b.s);
  }
  t.equal(b.s.stack.notifies().length, count, 'one NOTIFY each with the current state');
  t.ok(mostInFlight > 0 && mostInFlight <= RESTORE_NOTIFY_WINDOW, `never more than the window in flight (most ${mostInFlight})`);
});
