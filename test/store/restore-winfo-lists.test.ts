/**
 * Watcher information (RFC 3857) and client-defined list (RFC 5367)
 * subscriptions survive a restart like presence ones: a second gateway over
 * the same store gets them back (MemoryStore standing in for the file).
 */
import t from 'tap';
import { parseMultipartRelated, parseRlmi, parseWatcherInfo, rootPart } from '../../src/bodies/index.js';
import { PresenceHub } from '../../src/core/presence-hub.js';
import { createPersistence } from '../../src/persistence-wiring.js';
import { tagOf } from '../../src/sip/header-values.js';
import type { SipRequest, SipResponse } from '../../src/sip/message.js';
import { listsSchema } from '../../src/simple/lists-config.js';
import { attachResourceLists } from '../../src/simple/resource-lists.js';
import { SimpleServer } from '../../src/simple/simple-server.js';
import { MemoryStore } from '../../src/store/index.js';
import { silentLogger } from '../../src/util/logger.js';
import { TimerWheel } from '../../src/util/timer-wheel.js';
import { CONFIG, FakeStack, makeDirectory, settle, subscribe } from '../simple/helpers.js';

function run(db: MemoryStore, skipMs = 0) {
  let now = 1_700_000_000_000 + skipMs;
  const directory = makeDirectory();
  const store = new PresenceHub(directory, { clock: { now: () => now } });
  const stack = new FakeStack();
  const wheel = new TimerWheel({ clock: { now: () => now }, autoStart: false });
  const server = new SimpleServer({ stack, directory, store, config: { ...CONFIG, watcherInfo: true }, logger: silentLogger(), clock: { now: () => now }, wheel });
  const lists = attachResourceLists(server.notifier, (l) => store.onChange(l), listsSchema.parse({ clientLists: {} }), {
    directory,
    logger: silentLogger(),
    clock: { now: () => now },
    schedule: () => () => undefined,
  });
  const p = createPersistence({ store: db, logger: silentLogger(), always: true, sweepMs: 3_600_000, clock: { now: () => now } });
  const summary = p.restore({ notifier: server.notifier, publications: server.publications, directory, lists });
  return { stack, server, lists, summary, tick: (ms: number) => (now += ms) };
}

const LIST = `<?xml version="1.0" encoding="UTF-8"?><resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list><entry uri="sip:alice@example.com"><display-name>Alice at the desk</display-name></entry><entry uri="sip:bob@example.com"/><entry uri="sip:nobody@elsewhere.org"/></list></resource-lists>`;

function clientListSubscribe(): SipRequest {
  const req = subscribe({ user: 'my-console-list', expires: 600, accept: ['multipart/related', 'application/rlmi+xml', 'application/pidf+xml'] });
  req.headers.set('from', `<sip:list-console@example.com>;tag=lc${Math.random().toString(16).slice(2, 8)}`);
  req.headers.append('supported', 'eventlist');
  req.headers.append('require', 'recipient-list-subscribe');
  req.headers.append('content-type', 'application/resource-lists+xml');
  req.headers.append('content-disposition', 'recipient-list');
  req.body = Buffer.from(LIST);
  return req;
}

function winfoSubscribe(): SipRequest {
  const req = subscribe({ user: 'alice', event: 'presence.winfo', expires: 600 });
  req.headers.set('from', '<sip:alice@example.com>;tag=own-client');
  return req;
}

async function answerAll(stack: FakeStack): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await settle();
    const p = stack.pending();
    if (p.length === 0) return;
    for (const n of p) n.answer(200);
  }
}

t.test('winfo and client list subscriptions are restored after a restart', async (t) => {
  const db = new MemoryStore();
  const a = run(db);
  const winfoOk = a.stack.deliver(winfoSubscribe())[0] as SipResponse;
  const listOk = a.stack.deliver(clientListSubscribe())[0] as SipResponse;
  const presenceOk = a.stack.deliver(subscribe({ user: 'alice', expires: 600 }))[0] as SipResponse;
  t.same([winfoOk.status, listOk.status, presenceOk.status], [200, 200, 200]);
  await answerAll(a.stack);
  const winfoTag = tagOf(winfoOk.headers.get('to')!)!;
  const listTag = tagOf(listOk.headers.get('to')!)!;
  t.equal(db.watcherSubscriptions.get(winfoTag)?.resource, 'winfo:alice', 'the winfo target is saved');
  t.same(db.watcherSubscriptions.get(listTag)?.clientList, {
    uri: 'sip:my-console-list@example.com',
    entries: [{ uri: 'sip:alice@example.com', displayName: 'Alice at the desk' }, { uri: 'sip:bob@example.com' }, { uri: 'sip:nobody@elsewhere.org' }],
  }, 'the client list body is saved with its subscription');

  // a crash, then a new process over the same store
  const b = run(db, 30_000);
  t.same(b.summary.subscriptions, { restored: 3, dropped: 0 }, 'all three back');
  t.ok(b.server.notifier.find(winfoTag), 'winfo subscription live again');
  t.ok(b.server.notifier.find(listTag), 'client list subscription live again');
  t.equal(b.lists.clientListCount, 1, 'the client list is rebuilt');
  await settle();
  const sent = b.stack.pending();
  const winfo = sent.find((n) => n.request.headers.get('event') === 'presence.winfo');
  t.ok(winfo, 'the winfo watcher is notified at once');
  const doc = parseWatcherInfo(winfo!.request.body);
  t.equal(doc.state, 'full', 'full state first after the restart');
  t.same(doc.lists[0]!.watchers.map((w) => w.uri).sort(), ['sip:console@example.com', 'sip:list-console@example.com'], 'the restored watchers of alice are listed, the client list one too');
  const list = sent.find((n) => tagOf(n.request.headers.get('from')!) === listTag);
  t.ok(list, 'the client list watcher is notified at once');
  const mp = parseMultipartRelated(list!.request.body, list!.request.headers.get('content-type')!);
  const rlmi = parseRlmi(rootPart(mp)!.body);
  t.equal(rlmi.uri, 'sip:my-console-list@example.com');
  t.equal(rlmi.fullState, true);
  t.same(rlmi.resources.map((r) => r.uri), ['sip:alice@example.com', 'sip:bob@example.com', 'sip:nobody@elsewhere.org'], 'the same list, in order');
  t.same(rlmi.resources[0]!.names.map((n) => n.value), ['Alice at the desk'], "the console's own names");
  t.same(rlmi.resources.map((r) => r.instances[0]?.state), ['active', 'active', 'terminated']);
  await answerAll(b.stack);

  // a new client list after the restart does not take the restored one's id
  const again = b.stack.deliver(clientListSubscribe())[0] as SipResponse;
  t.equal(again.status, 200);
  t.equal(b.lists.clientListCount, 2, 'two distinct client lists');
});

t.test('an expired client list subscription is dropped with its list', async (t) => {
  const db = new MemoryStore();
  const a = run(db);
  t.equal((a.stack.deliver(clientListSubscribe())[0] as SipResponse).status, 200);
  await answerAll(a.stack);
  const b = run(db, 700_000);
  t.equal(b.summary.subscriptions.restored, 0, 'expired: pruned, not restored');
  t.equal(b.lists.clientListCount, 0, 'no orphan list left');
  t.equal(db.watcherSubscriptions.loadAll().length, 0);
});
