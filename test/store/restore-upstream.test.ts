/**
 * Upstream state across a restart through the store (MemoryStore): the
 * gateway's SUBSCRIBE dialogs at a PBX are refreshed in place (481 → a new
 * subscription), its PUBLISHed entity-tags are reused (412 → a new
 * publication), and a stop that keeps them sends nothing.
 */
import t from 'tap';
import type { PresenceView } from '../../src/core/person-state.js';
import { tagOf } from '../../src/sip/header-values.js';
import { createPersistence } from '../../src/persistence-wiring.js';
import { UpstreamPublisher, type PublishTarget } from '../../src/simple/upstream-publisher.js';
import { UpstreamWatcher, type UpstreamTarget } from '../../src/simple/upstream-watcher.js';
import { MemoryStore } from '../../src/store/index.js';
import { silentLogger } from '../../src/util/logger.js';
import { makeServer } from '../simple/helpers.js';
import { manualClock, notifyFor, inbound, dialog, dialogInfo, PBX, publishTarget as publishTargetAt, RecordingSink, ScriptedSender, settle } from '../simple/upstream-fakes.js';
import { bodyPackages } from '../helpers/packages.js';

const watchTarget: UpstreamTarget = {
  trunk: 'pbx1',
  personId: 'alice',
  uri: 'sip:1001@pbx.example.com',
  event: 'dialog',
  accept: ['application/dialog-info+xml'],
  expires: 3600,
  fromUri: 'sip:gateway@gw.example.com',
  destination: () => Promise.resolve(PBX),
};

const publishTarget: PublishTarget = publishTargetAt();

const busy: PresenceView = {
  personId: 'alice',
  basic: 'open',
  activities: ['on-the-phone'],
  dnd: false,
  ringing: false,
  calls: [],
  revision: 1,
  changedAt: 0,
  source: 'teams',
};

/** One gateway run: upstream watcher and publisher over `store`, hooked and restored. */
function run(store: MemoryStore, startAt?: number) {
  const clock = manualClock(startAt);
  const sender = new ScriptedSender();
  const common = { sender, wheel: clock.wheel, logger: silentLogger(), clock: { now: clock.now }, random: () => 0.5, backoff: { minMs: 1_000, maxMs: 60_000 } };
  const watcher = new UpstreamWatcher({ ...common, sink: new RecordingSink(), packages: bodyPackages(), refusals: 'throw' });
  const publisher = new UpstreamPublisher(common);
  const s = makeServer();
  const persistence = createPersistence({ store, logger: silentLogger(), always: true, clock: { now: clock.now } });
  const summary = persistence.restore({
    notifier: s.server.notifier,
    publications: s.server.publications,
    directory: { get: () => undefined },
    upstream: {
      watcher,
      publisher,
      start: (saved) => {
        watcher.add(watchTarget);
        return { subscriptions: watcher.restore(saved.subscriptions), publications: publisher.restore(saved.publications) };
      },
    },
  });
  return { clock, sender, watcher, publisher, persistence, summary };
}

t.test('an upstream dialog is saved when accepted and refreshed in place after a restart; 481 makes a new one', async (t) => {
  const store = new MemoryStore();
  const a = run(store);
  await settle();
  const sub = a.sender.last();
  sub.answer(200, { toTag: 'pbx-tag', headers: [['expires', '3600'], ['contact', '<sip:1001@198.51.100.5:5060>']] });
  await settle();
  const [saved] = store.upstreamSubscriptions.loadAll();
  t.equal(saved?.callId, sub.request.headers.get('call-id'), 'dialog saved at the 2xx');
  t.equal(saved?.toTag, 'pbx-tag');
  t.equal(saved?.cseq, 1);

  // a stop that keeps the dialog sends nothing and keeps the record
  await a.persistence.keepUpstream({ watcher: a.watcher, publisher: a.publisher });
  t.equal(a.sender.sent.length, 1, 'no unsubscribe sent');
  t.equal(store.upstreamSubscriptions.count(), 1, 'record kept');

  const b = run(store, 1_700_000_060_000);
  t.same(b.summary.upstreamSubscriptions, { restored: 1, dropped: 0 });
  // a NOTIFY in the old dialog is recognised before anything is sent
  const { req, responses } = inbound(notifyFor(sub.request, { body: dialogInfo(dialog('d1', 'confirmed', 'initiator'), { version: 7 }) }));
  t.equal(b.watcher.handleNotify(req), true, 'NOTIFY in the restored dialog is ours');
  t.equal(responses[0]?.status, 200);
  await settle();
  const refresh = b.sender.sent[0]!;
  const h = refresh.request.headers;
  t.equal(h.get('call-id'), saved?.callId, 'refresh in the same dialog');
  t.equal(tagOf(h.get('to')!), 'pbx-tag');
  t.equal(tagOf(h.get('from')!), saved?.fromTag);
  t.equal(h.get('cseq'), '10002 SUBSCRIBE', 'CSeq jumps past what may have gone out unsaved');
  t.equal(refresh.request.uri, 'sip:198.51.100.5:5060', 'to the remote target (the NOTIFY in the old dialog updated it)');

  refresh.answer(481);
  await settle();
  t.equal(store.upstreamSubscriptions.count(), 0, 'a lost dialog is forgotten');
  b.clock.advance(5_000);
  await settle();
  const fresh = b.sender.last();
  t.not(fresh.request.headers.get('call-id'), saved?.callId, 'a new subscription after 481');
  t.equal(tagOf(fresh.request.headers.get('to')!), undefined, 'outside any dialog');
});

t.test('an upstream entity-tag is reused after a restart (modify with SIP-If-Match); 412 publishes anew', async (t) => {
  const store = new MemoryStore();
  const a = run(store);
  a.publisher.publish(publishTarget, busy);
  await settle();
  const first = a.sender.sent.find((s) => s.request.method === 'PUBLISH')!;
  first.answer(200, { headers: [['sip-etag', 'etag-1'], ['expires', '3600']] });
  await settle();
  t.same(store.upstreamPublications.loadAll().map((r) => r.etag), ['etag-1'], 'entity-tag saved');
  await a.persistence.keepUpstream({ watcher: a.watcher, publisher: a.publisher });
  t.equal(a.sender.sent.filter((s) => s.request.method === 'PUBLISH').length, 1, 'no removal sent at stop');

  const b = run(store, 1_700_000_030_000);
  t.same(b.summary.upstreamPublications, { restored: 1, dropped: 0 });
  b.publisher.publish(publishTarget, busy);
  await settle();
  const modify = b.sender.sent.find((s) => s.request.method === 'PUBLISH')!;
  t.equal(modify.request.headers.get('sip-if-match'), 'etag-1', 'the old publication is modified');
  t.ok(modify.request.body.length > 0, 'with the current state');
  modify.answer(412);
  await settle();
  const initial = b.sender.sent.filter((s) => s.request.method === 'PUBLISH')[1];
  t.ok(initial, 'a new PUBLISH after 412');
  t.notOk(initial?.request.headers.has('sip-if-match'), 'an initial one');
  initial?.answer(200, { headers: [['sip-etag', 'etag-2'], ['expires', '3600']] });
  await settle();
  t.same(store.upstreamPublications.loadAll().map((r) => r.etag), ['etag-2']);
});

t.test('saved dialogs are given back only in the turn of the add()s: later, restore refuses', async (t) => {
  const clock = manualClock();
  const sender = new ScriptedSender();
  const watcher = new UpstreamWatcher({ sender, wheel: clock.wheel, logger: silentLogger(), clock: { now: clock.now }, random: () => 0.5, sink: new RecordingSink(), packages: bodyPackages(), refusals: 'throw' });
  t.teardown(() => watcher.close(false));
  t.same(watcher.restore([]), { restored: 0, dropped: 0 }, 'nothing added yet: nothing to refuse');
  watcher.add(watchTarget);
  t.same(watcher.restore([]), { restored: 0, dropped: 0 }, 'same turn as the add()');
  await settle();
  t.equal(sender.sent.length, 1, 'the subscription started');
  t.throws(() => watcher.restore([]), /after its subscriptions started/);
});
