/**
 * The notifier as one node of several: an in-dialog SUBSCRIBE for a
 * subscription another node holds is looked up, restored here and answered
 * as its refresh (one 200, one NOTIFY, CSeq ahead of all the old owner
 * sent); release() lets one go without a word; restore() takes over a dead
 * node's subscriptions on a running notifier. Two nodes share a "store" (a
 * Map of records) and a "bus" (each hub applies the other's inputs).
 */
import t from 'tap';
import { Directory } from '../../src/core/directory.js';
import { PresenceHub } from '../../src/core/presence-hub.js';
import { tagOf } from '../../src/sip/header-values.js';
import { createResponse, type SipMessage, type SipRequest, type SipResponse } from '../../src/sip/message.js';
import { SipStack } from '../../src/sip/stack.js';
import { listsSchema } from '../../src/simple/lists-config.js';
import { RESTORE_NOTIFY_WINDOW, RESTORE_SEQUENCE_MARGIN } from '../../src/simple/notifier.js';
import { attachResourceLists } from '../../src/simple/resource-lists.js';
import { SimpleServer, type SimpleClusterOptions } from '../../src/simple/simple-server.js';
import type { SubscriptionSnapshot } from '../../src/simple/subscription.js';
import { silentLogger } from '../../src/util/logger.js';
import { UdpClient } from '../helpers/udp-client.js';
import { CONFIG, makeDirectory, makeServer, resubscribe, settle, subscribe } from './helpers.js';

function cseqOf(m: SipMessage): number {
  return Number(m.headers.get('cseq')!.split(' ')[0]);
}

/** The shared store of watcher subscriptions, by id (our To tag), as every node's persistence hook writes it. */
class Records {
  readonly byId = new Map<string, SubscriptionSnapshot>();
  readonly removed: string[] = [];
  hook(): { save(sub: { snapshot(): SubscriptionSnapshot }): void; remove(id: string): void } {
    return {
      save: (sub) => {
        const s = sub.snapshot();
        this.byId.set(s.id, s);
      },
      remove: (id) => {
        this.removed.push(id);
        this.byId.delete(id);
      },
    };
  }
}

t.test('over UDP: a refresh that lands on node b is answered 200 there, with one NOTIFY in the same dialog', async (t) => {
  const logger = silentLogger();
  // T1 500 ms: no NOTIFY retransmission while the test answers them
  const timers = { t1: 500, t2: 4000, t4: 5000 };
  const records = new Records();
  const directory: Directory = makeDirectory();
  const hubA = new PresenceHub(directory);
  const hubB = new PresenceHub(makeDirectory());
  hubA.onInput((input) => hubB.apply(input));
  hubB.onInput((input) => hubA.apply(input));
  const sipA = await SipStack.start({ listen: [{ protocol: 'udp', address: '127.0.0.1', port: 0 }], logger, timers });
  const sipB = await SipStack.start({ listen: [{ protocol: 'udp', address: '127.0.0.1', port: 0 }], logger, timers });
  const a = new SimpleServer({ stack: sipA, directory, store: hubA, config: CONFIG, logger });
  let gate!: () => void;
  const opened = new Promise<void>((resolve) => (gate = resolve));
  let asked!: () => void;
  const lookedUp = new Promise<void>((resolve) => (asked = resolve));
  const lookups: Array<[string, string]> = [];
  const cluster: SimpleClusterOptions = {
    resolveSubscription: async (id, callId) => {
      lookups.push([id, callId]);
      asked();
      await opened;
      // what the wiring does: claim it when the Call-ID matches, and tell the old owner (BusMessage 'moved')
      const record = records.byId.get(id);
      if (record === undefined || record.callId !== callId) return undefined;
      a.notifier.release(id);
      return record;
    },
  };
  const b = new SimpleServer({ stack: sipB, directory: makeDirectory(), store: hubB, config: CONFIG, logger, cluster });
  a.notifier.onPersist(records.hook());
  b.notifier.onPersist(records.hook());
  const client = await UdpClient.open();
  t.teardown(async () => {
    a.close();
    b.close();
    await client.close();
    await sipA.close();
    await sipB.close();
  });
  const portA = sipA.localEndpoint('udp')!.port;
  const portB = sipB.localEndpoint('udp')!.port;
  const response = async (): Promise<SipResponse> => {
    const m = await client.next((x) => x.kind === 'response');
    if (m.kind !== 'response') throw new Error('not a response');
    return m;
  };
  const notified = async (port: number): Promise<SipRequest> => {
    const n = await client.next((m) => m.kind === 'request' && m.method === 'NOTIFY');
    if (n.kind !== 'request') throw new Error('not a request');
    client.send(createResponse(n, 200), port);
    return n;
  };

  const contact = `<sip:console@127.0.0.1:${client.port}>`;
  const initial = subscribe({ callId: 'takeover-1@127.0.0.1', fromTag: 'w1', accept: ['application/pidf+xml'], expires: 300, contact });
  initial.headers.set('via', `SIP/2.0/UDP 127.0.0.1:${client.port};branch=z9hG4bKtk1;rport`);
  client.send(initial, portA);
  const ok = await response();
  t.equal(ok.status, 200);
  const ourTag = tagOf(ok.headers.get('to')!)!;
  t.equal(cseqOf(await notified(portA)), 1);
  hubA.setSip('alice', { basic: 'open', activities: ['away'], origin: 'test', at: Date.now() });
  t.equal(cseqOf(await notified(portA)), 2, 'a NOTIFY the store did not see (saved at create only)');
  t.equal(records.byId.get(ourTag)?.localCseq, 1);

  // the refresh goes to node b (the floating address moved, or DNS SRV picked b)
  /** An in-dialog SUBSCRIBE from this watcher (Via: its own address, for the answer). */
  const inDialog = (branch: string, expires: number, cseq: number): SipRequest => {
    const r = resubscribe(initial, ok, { expires, cseq });
    r.headers.set('via', `SIP/2.0/UDP 127.0.0.1:${client.port};branch=${branch};rport`);
    return r;
  };
  const refresh = inDialog('z9hG4bKtk2', 600, 2);
  client.send(refresh, portB);
  await lookedUp;
  // the watcher retransmits while the lookup runs (Timer E): the transaction layer absorbs them
  client.send(refresh, portB);
  client.send(refresh, portB);
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.same(lookups, [[ourTag, 'takeover-1@127.0.0.1']], 'one lookup');
  t.same(client.messages, [], 'no answer before the lookup is done');
  gate();
  const ok2 = await response();
  t.equal(ok2.status, 200);
  t.equal(tagOf(ok2.headers.get('to')!), ourTag, 'the same dialog');
  t.match(ok2.headers.get('contact'), new RegExp(`:${portB}`), "b's Contact: in-dialog requests go to b now");
  const first = await notified(portB);
  t.equal(tagOf(first.headers.get('from')!), ourTag);
  t.equal(first.headers.get('call-id'), 'takeover-1@127.0.0.1');
  t.equal(first.headers.get('subscription-state'), 'active;expires=600');
  t.equal(cseqOf(first), 1 + RESTORE_SEQUENCE_MARGIN + 1, 'CSeq ahead of everything a sent');
  t.match(first.headers.get('via'), new RegExp(`127\\.0\\.0\\.1:${portB}`), 'sent by b');
  await new Promise((resolve) => setTimeout(resolve, 150));
  t.same(
    client.messages.map((m) => (m.kind === 'response' ? m.status : m.method)),
    [],
    'one 200 and one NOTIFY: the retransmissions got nothing more, the restore NOTIFY and the refresh NOTIFY are one',
  );
  t.equal(a.notifier.size, 0, 'a let it go');
  t.equal(b.notifier.size, 1);
  t.same(records.removed, [], 'nobody made the store forget it');
  t.equal(records.byId.get(ourTag)?.localCseq, cseqOf(first), "b saved it with b's CSeq");

  // a change made at a reaches the watcher from b, in the same dialog, next CSeq
  hubA.setSip('alice', { basic: 'open', activities: ['on-the-phone'], origin: 'test', at: Date.now() });
  const second = await notified(portB);
  t.equal(cseqOf(second), cseqOf(first) + 1);
  t.match(second.headers.get('via'), new RegExp(`:${portB}`));

  client.send(inDialog('z9hG4bKtk3', 0, 3), portB);
  t.equal((await response()).status, 200);
  const last = await notified(portB);
  t.equal(last.headers.get('subscription-state'), 'terminated');
  t.same(records.removed, [ourTag]);
});

/** Two nodes over FakeStacks: a holds subscriptions, b looks them up in the shared records. */
function pair(options: { lookup?: (id: string, callId: string) => Promise<SubscriptionSnapshot | undefined> } = {}) {
  const records = new Records();
  const lookups: string[] = [];
  let a!: ReturnType<typeof makeServer>;
  const b = makeServer({
    cluster: {
      resolveSubscription: (id, callId) => {
        lookups.push(id);
        if (options.lookup !== undefined) return options.lookup(id, callId);
        const record = records.byId.get(id);
        if (record === undefined || record.callId !== callId) return Promise.resolve(undefined);
        a.server.notifier.release(id);
        return Promise.resolve(record);
      },
    },
  });
  a = makeServer();
  a.server.notifier.onPersist(records.hook());
  b.server.notifier.onPersist(records.hook());
  a.store.onInput((input) => b.store.apply(input));
  b.store.onInput((input) => a.store.apply(input));
  return { a, b, records, lookups };
}

/** A subscription at `node`, its initial NOTIFY answered. */
async function subscribed(node: ReturnType<typeof makeServer>, spec: Parameters<typeof subscribe>[0] = {}) {
  const first = subscribe({ expires: 600, ...spec });
  const ok = node.stack.deliver(first)[0]!;
  await settle();
  for (const n of node.stack.pending()) n.answer(200);
  await settle();
  return { first, ok, id: tagOf(ok.headers.get('to')!)! };
}

t.test('an unSUBSCRIBE that lands on another node ends the subscription properly there', async (t) => {
  const { a, b, records } = pair();
  const { first, ok, id } = await subscribed(a, { event: 'dialog' });
  const answers = b.stack.deliver(resubscribe(first, ok, { expires: 0 }));
  t.same(answers, []);
  await settle();
  t.equal(answers[0]?.status, 200);
  const notifies = b.stack.notifies();
  t.equal(notifies.length, 1, 'one NOTIFY: the final one');
  t.equal(notifies[0]!.request.headers.get('subscription-state'), 'terminated');
  t.equal(cseqOf(notifies[0]!.request), 1 + RESTORE_SEQUENCE_MARGIN + 1);
  t.equal(a.stack.notifies().length, 1, 'a sent only its initial NOTIFY');
  t.same(b.server.counts().subscriptions, { presence: 0, dialog: 0 });
  t.same(a.server.counts().subscriptions, { presence: 0, dialog: 0 });
  t.same(records.removed, [id], 'ended: forgotten by the node that ended it');
});

t.test('not found, a failed lookup, a Call-ID that does not match: 481', async (t) => {
  let fail = false;
  const { a, b, records, lookups } = pair({
    lookup: (id, callId) => {
      if (fail) return Promise.reject(new Error('store unreachable'));
      const r = records.byId.get(id);
      return Promise.resolve(r?.callId === callId ? r : undefined);
    },
  });
  const { first, ok } = await subscribed(a);
  const forged = resubscribe(first, ok);
  forged.headers.set('call-id', 'other@198.51.100.7');
  const wrong = b.stack.deliver(forged);
  const unknown = b.stack.deliver(subscribe({ toTag: 'nowhere', expires: 600 }));
  await settle();
  t.equal(wrong[0]?.status, 481);
  t.equal(unknown[0]?.status, 481);
  fail = true;
  const failed = b.stack.deliver(resubscribe(first, ok));
  await settle();
  t.equal(failed[0]?.status, 481, 'the watcher subscribes afresh');
  t.equal(lookups.length, 3);
  t.equal(b.server.notifier.size, 0);
  t.equal(b.stack.notifies().length, 0);
  t.equal(a.server.notifier.size, 1, 'still live at a');
  // without the option (one node): 481 at once
  const single = makeServer();
  t.equal(single.stack.deliver(resubscribe(first, ok))[0]?.status, 481);
});

t.test('concurrent SUBSCRIBEs for one unknown tag share one lookup', async (t) => {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const { a, b, records, lookups } = pair({
    lookup: async (id) => {
      await gate;
      a.server.notifier.release(id);
      return records.byId.get(id);
    },
  });
  const { first, ok, id } = await subscribed(a);
  const one = b.stack.deliver(resubscribe(first, ok, { cseq: 2 }));
  const two = b.stack.deliver(resubscribe(first, ok, { cseq: 3 }));
  t.same(lookups, [id]);
  open();
  await settle();
  t.equal(one[0]?.status, 200);
  t.equal(two[0]?.status, 200);
  t.equal(b.server.notifier.size, 1);
  t.equal(b.server.notifier.find(id)?.remoteCSeq, 3);
  t.same(lookups, [id], 'one lookup for both');
});

t.test('a refresh through the lookup after a NOTIFY failed there still gets the restore NOTIFY', async (t) => {
  // the refresh is refused (423: too brief) after the subscription was found: it is live here and owes its watcher a NOTIFY
  const { a, b, lookups } = pair();
  const { first, ok, id } = await subscribed(a);
  const brief = resubscribe(first, ok, { expires: 5 });
  const answers = b.stack.deliver(brief);
  await settle();
  t.equal(answers[0]?.status, 423);
  t.same(lookups, [id]);
  t.equal(b.server.notifier.size, 1, 'found, so kept here');
  t.equal(b.stack.notifies().length, 1, 'the restore NOTIFY');
  t.equal(b.stack.notifies()[0]!.request.headers.get('subscription-state')?.startsWith('active'), true);
});

t.test('release: no NOTIFY, timer off, counts, indexes and the connection hold let go, the store untouched', async (t) => {
  const { a, records } = pair();
  const holds: string[] = [];
  (a.stack as unknown as { holdConnection(id: string): () => void }).holdConnection = (id: string) => {
    holds.push(`+${id}`);
    return () => holds.push(`-${id}`);
  };
  const other = await subscribed(a, { user: 'bob' });
  const first = subscribe({ expires: 600 });
  const ok = a.stack.deliver(first, { protocol: 'tcp', connectionId: 'c1' })[0]!;
  const id = tagOf(ok.headers.get('to')!)!;
  t.same(holds, ['+c1']);
  t.equal(a.server.notifier.heldConnections, 1);
  // the initial NOTIFY is still out when it moves
  const inFlight = a.stack.pending().find((n) => n.request.headers.get('call-id') === first.headers.get('call-id'))!;
  t.ok(inFlight);
  const sent = a.stack.sent.length;
  t.equal(a.server.notifier.release(id), true);
  t.equal(a.server.notifier.release(id), false, 'once');
  t.equal(a.server.notifier.release('never'), false);
  t.equal(a.server.notifier.find(id), undefined);
  t.same(a.server.notifier.watchers('alice'), []);
  t.same(a.server.counts().subscriptions, { presence: 1, dialog: 0 });
  t.same(holds, ['+c1', '-c1']);
  t.equal(a.server.notifier.heldConnections, 0);
  inFlight.answer(200);
  a.store.setSip('alice', { basic: 'open', activities: ['away'], origin: 'test', at: 1 });
  await settle();
  t.equal(a.stack.sent.length, sent, 'nothing more sent to it, change or not');
  a.advance(601_000);
  await settle();
  t.equal(a.stack.sent.length, sent + 1, 'at expiry only the other (bob) gets its final NOTIFY');
  t.equal(a.stack.sent.at(-1)!.request.headers.get('call-id'), other.first.headers.get('call-id'));
  t.same(records.removed, [other.id], 'release never made the store forget');
  t.ok(records.byId.has(id));
});

/** Event-loop turns until nothing more is sent for five turns in a row (fan-out and catch-up slices are timed). */
async function sendsSettled(sent: () => number): Promise<void> {
  const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  let last = -1;
  for (let quiet = 0, turns = 0; quiet < 5 && turns < 5000; turns++) {
    await turn();
    const n = sent();
    quiet = n === last ? quiet + 1 : 0;
    last = n;
  }
}

t.test('restore on a running notifier: a dead node\'s subscriptions, many at once, in fan-out slices', async (t) => {
  const { a } = pair();
  const live = await subscribed(a);
  const template = a.server.notifier.find(live.id)!.snapshot();
  const now = a.now();
  const snapshots: SubscriptionSnapshot[] = [];
  for (let i = 0; i < 1200; i++) {
    snapshots.push({ ...template, id: `dead${i}`, localTag: `dead${i}`, callId: `dead-${i}@198.51.100.7`, localCseq: 7, version: 3, expiresAt: now + 300_000 });
  }
  snapshots.push({ ...template, id: 'expired', localTag: 'expired', expiresAt: now - 1 });
  snapshots.push(template); // live here already
  const before = a.stack.sent.length;
  const result = a.server.notifier.restore(snapshots, (r) => (r === 'alice' || r === 'bob' ? 'resource' : undefined));
  t.same(result, { restored: 1200, dropped: 2 });
  t.same(a.server.counts().subscriptions, { presence: 1201, dialog: 0 });
  t.equal(a.stack.sent.length, before, 'nothing sent in the same turn');
  const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  let most = 0;
  let turns = 0;
  for (let last = before; a.stack.sent.length - before < 1200 && turns < 2000; turns++) {
    await turn();
    most = Math.max(most, a.stack.sent.length - last);
    last = a.stack.sent.length;
  }
  t.ok(most <= 500 && turns >= 3, `in slices of at most 500 a turn (most ${most}, ${turns} turns)`);
  await turn();
  t.equal(a.stack.sent.length - before, 1200, 'every one of them notified, once');
  const n = a.stack.sent.find((s) => s.request.headers.get('call-id') === 'dead-0@198.51.100.7')!;
  t.equal(cseqOf(n.request), 7 + RESTORE_SEQUENCE_MARGIN + 1, 'CSeq ahead of the dead node\'s');
  t.equal(a.stack.sent.filter((s) => s.request.headers.get('call-id') === live.first.headers.get('call-id')).length, 1, 'the live one was left alone');
  for (const s of a.stack.pending()) s.answer(200);
  await settle();
  // a change reaches old and taken-over watchers alike
  a.store.setSip('alice', { basic: 'open', activities: ['away'], origin: 'test', at: 2 });
  await sendsSettled(() => a.stack.sent.length);
  t.equal(a.stack.sent.length - before, 1200 + 1201);
});

t.test('a list subscription found elsewhere gets one NOTIFY for its refresh, not the restore one besides', async (t) => {
  const records = new Records();
  let a!: ReturnType<typeof makeServer>;
  const b = makeServer({
    cluster: {
      resolveSubscription: (id) => {
        a.server.notifier.release(id);
        return Promise.resolve(records.byId.get(id));
      },
      kindOf: (resource) => (resource.startsWith('list:') ? 'list' : 'resource'),
    },
  });
  a = makeServer();
  const config = listsSchema.parse({ groups: [{ name: 'sales', uri: 'sip:sales@example.com', members: ['alice', 'bob'] }] });
  for (const n of [a, b]) attachResourceLists(n.server.notifier, (l) => n.store.onChange(l), config, { directory: makeDirectory(), logger: silentLogger(), schedule: () => () => undefined });
  a.server.notifier.onPersist(records.hook());
  b.server.notifier.onPersist(records.hook());
  const list = subscribe({ user: 'sales', accept: ['multipart/related', 'application/rlmi+xml', 'application/pidf+xml'] });
  list.headers.append('supported', 'eventlist');
  const ok = a.stack.deliver(list)[0]!;
  t.equal(ok.status, 200);
  const id = tagOf(ok.headers.get('to')!)!;
  await settle();
  for (const n of a.stack.pending()) n.answer(200);
  t.equal(records.byId.get(id)?.resource, 'list:sales');
  const answers = b.stack.deliver(resubscribe(list, ok));
  await settle();
  t.equal(answers[0]?.status, 200);
  t.equal(b.server.notifier.find(id)?.list !== undefined, true, 'a list subscription at b');
  for (let i = 0; i < 3; i++) {
    for (const n of b.stack.pending()) n.answer(200);
    await settle();
  }
  t.equal(b.stack.notifies().length, 1, 'one NOTIFY, with the full state');
});

t.test('a record the lookup returns for a SUBSCRIBE of another dialog: 481, and the record is served here all the same', async (t) => {
  // Ownership.claimSubscription moves it by id alone: once claimed it is this node's, so it is made live, not orphaned
  const { a, b } = pair({ lookup: (id) => Promise.resolve(a.server.notifier.find(id)?.snapshot()) });
  const { first, ok, id } = await subscribed(a);
  const stray = resubscribe(first, ok);
  stray.headers.set('call-id', 'other@198.51.100.7');
  const answers = b.stack.deliver(stray);
  await settle();
  t.equal(answers[0]?.status, 481);
  t.equal(b.server.notifier.find(id)?.callId, first.headers.get('call-id'));
  t.equal(b.stack.notifies().length, 1, 'its watcher gets the restore NOTIFY, in its own dialog');
  t.equal(b.stack.notifies()[0]!.request.headers.get('call-id'), first.headers.get('call-id'));
});

t.test('a change that leaves a restored watcher\'s body as it was at the restore waits in the window with its catch-up', async (t) => {
  const { a } = pair();
  a.store.setSip('alice', { basic: 'open', activities: ['away'], origin: 'test', at: 1 });
  const live = await subscribed(a);
  const template = a.server.notifier.find(live.id)!.snapshot();
  const now = a.now();
  const total = RESTORE_NOTIFY_WINDOW + 1500;
  const snapshots: SubscriptionSnapshot[] = [];
  for (let i = 0; i < total; i++) snapshots.push({ ...template, id: `q${i}`, localTag: `q${i}`, callId: `q-${i}@198.51.100.7`, expiresAt: now + 300_000 });
  const before = a.stack.sent.length;
  t.same(a.server.notifier.restore(snapshots, () => 'resource'), { restored: total, dropped: 0 });
  const sent = (): number => a.stack.sent.length - before;
  await sendsSettled(sent);
  t.equal(sent(), RESTORE_NOTIFY_WINDOW);
  // a change her watchers' bodies leave out (e.g. the Graph side's first read after a start): no news for the 1,500 waiting
  a.server.notifier.resourceChanged('alice');
  await sendsSettled(sent);
  t.equal(sent(), RESTORE_NOTIFY_WINDOW, 'nothing past the window');
  t.equal(a.server.notifier.catchUpWaiting, total - RESTORE_NOTIFY_WINDOW, 'they still owe their catch-up');
  // a real change still goes at once to everybody waiting
  a.store.setSip('alice', { basic: 'closed', activities: [], origin: 'test', at: 3 });
  await sendsSettled(sent);
  t.ok(sent() > RESTORE_NOTIFY_WINDOW, 'a change goes past the window');
  t.equal(a.server.notifier.catchUpWaiting, 0, 'and pays the catch-up');
});

t.test('restored watchers get their catch-up NOTIFY within a window of RESTORE_NOTIFY_WINDOW in flight; a change goes at once', async (t) => {
  const { a } = pair();
  const live = await subscribed(a);
  const template = a.server.notifier.find(live.id)!.snapshot();
  const now = a.now();
  const total = RESTORE_NOTIFY_WINDOW + 1500;
  const snapshots: SubscriptionSnapshot[] = [];
  for (let i = 0; i < total; i++) {
    const resource = i === total - 1 ? 'bob' : 'alice';
    snapshots.push({ ...template, resource, id: `r${i}`, localTag: `r${i}`, callId: `r-${i}@198.51.100.7`, expiresAt: now + 300_000 });
  }
  const before = a.stack.sent.length;
  t.same(a.server.notifier.restore(snapshots, () => 'resource'), { restored: total, dropped: 0 });
  const sent = (): number => a.stack.sent.length - before;
  await sendsSettled(sent);
  t.equal(sent(), RESTORE_NOTIFY_WINDOW, 'no more than the window in flight while nobody answers');
  t.equal(a.server.notifier.catchUpWaiting, total - RESTORE_NOTIFY_WINDOW);
  // a change to bob: his restored watcher (the last, still waiting) is told at once, not after the queue
  a.store.setSip('bob', { basic: 'open', activities: ['away'], origin: 'test', at: 3 });
  await sendsSettled(sent);
  t.equal(sent(), RESTORE_NOTIFY_WINDOW + 1, 'the change went past the window');
  t.equal(a.stack.sent.at(-1)!.request.headers.get('call-id'), `r-${total - 1}@198.51.100.7`);
  t.equal(a.server.notifier.catchUpWaiting, total - RESTORE_NOTIFY_WINDOW - 1, 'and it owes no catch-up any more');
  // 600 answers (of 2,001 in flight, the change's included) let the window fill again: 599 more
  let answered = 0;
  for (const s of a.stack.pending()) {
    if (answered === 600) break;
    s.answer(200);
    answered++;
  }
  await sendsSettled(sent);
  t.equal(sent(), RESTORE_NOTIFY_WINDOW + 1 + 599);
  t.equal(a.stack.pending().length, RESTORE_NOTIFY_WINDOW, 'the window is full again');
  // everybody answers: every restored watcher got exactly one NOTIFY
  for (let round = 0; round < 10 && a.server.notifier.catchUpWaiting > 0; round++) {
    for (const s of a.stack.pending()) s.answer(200);
    await sendsSettled(sent);
  }
  t.equal(a.server.notifier.catchUpWaiting, 0);
  const perCall = new Map<string, number>();
  for (const s of a.stack.sent.slice(before)) {
    const id = s.request.headers.get('call-id') ?? '';
    perCall.set(id, (perCall.get(id) ?? 0) + 1);
  }
  t.equal(perCall.size, total, 'every restored watcher was notified');
  t.ok([...perCall.values()].every((n) => n === 1), 'once each');
});
