/**
 * The PUBLISH compositor as one node of several: its state under the node's
 * own hub source, a publication held by another node looked up and adopted
 * when a PUBLISH names its entity-tag here, release() when one moved away.
 * Two nodes are two SimpleServers with their own hubs; the "bus" applies
 * each hub's inputs to the other, the "store" is a Map of records.
 */
import t from 'tap';
import type { HubInput } from '../../src/core/hub-input.js';
import { publishSourceOf } from '../../src/core/publish-source.js';
import type { PublicationSnapshot } from '../../src/simple/publications.js';
import type { SimpleClusterOptions } from '../../src/simple/simple-server.js';
import { makeServer, pidfBody, publish, settle } from './helpers.js';

/** A promise resolved from outside (a lookup that takes its time). */
function deferred<T>(): { promise: Promise<T>; resolve(value: T): void; reject(error: unknown): void } {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

type NodeServer = ReturnType<typeof makeServer> & { saved: string[]; removed: string[]; inputs: HubInput[] };

/** One node: its server, what it told its persistence hook, what its hub told onInput. */
function nodeServer(cluster: SimpleClusterOptions): NodeServer {
  const n = makeServer({ cluster });
  const node: NodeServer = Object.assign(n, { saved: [] as string[], removed: [] as string[], inputs: [] as HubInput[] });
  n.server.publications.onPersist({ save: (s) => node.saved.push(s.etag), remove: (etag) => node.removed.push(etag) });
  n.store.onInput((input) => node.inputs.push(input));
  return node;
}

/** Two nodes a and b whose hubs see each other's inputs; `records` is the shared store b looks up in. */
function cluster(options: { lookup?: (etag: string) => Promise<PublicationSnapshot | undefined> } = {}) {
  const records = new Map<string, PublicationSnapshot>();
  const lookups: string[] = [];
  let a!: NodeServer;
  const b = nodeServer({
    publishSource: publishSourceOf('b'),
    resolvePublication: (etag) => {
      lookups.push(etag);
      if (options.lookup !== undefined) return options.lookup(etag);
      // what the wiring does: claim it in the store, and tell its old owner (BusMessage 'moved')
      const record = records.get(etag);
      if (record !== undefined) a.server.publications.release(etag);
      return Promise.resolve(record);
    },
  });
  a = nodeServer({ publishSource: publishSourceOf('a') });
  a.server.publications.onPersist({ save: (s) => (a.saved.push(s.etag), records.set(s.etag, s)), remove: (etag) => (a.removed.push(etag), records.delete(etag)) });
  a.store.onInput((input) => b.store.apply(input));
  b.store.onInput((input) => a.store.apply(input));
  return { a, b, records, lookups };
}

t.test('a node composes its publications under its own source: two nodes\' PUBLISHes for one person compose', async (t) => {
  const { a, b } = cluster();
  t.equal(a.stack.deliver(publish({ body: pidfBody({ cisco: '<ce:dnd/>' }), expires: 300 }))[0]?.status, 200);
  const away = b.stack.deliver(publish({ body: pidfBody({ activities: '<rpid:away/>', note: 'Lunch' }), expires: 300 }))[0]!;
  t.equal(away.status, 200);
  t.match(a.inputs, [{ kind: 'sip', personId: 'alice', source: 'publish@a' }]);
  t.match(b.inputs, [{ kind: 'sip', personId: 'alice', source: 'publish@b' }]);
  for (const [name, n] of [['a', a], ['b', b]] as const) t.equal(n.store.view('alice').dnd, true, `${name}: a's DND stands beside b's away`);
  // b's publication goes: a's DND stays on both (one source would have been overwritten by b's)
  t.equal(b.stack.deliver(publish({ ifMatch: away.headers.get('sip-etag')!, expires: 0 }))[0]?.status, 200);
  for (const n of [a, b]) t.equal(n.store.view('alice').dnd, true);
  t.same(a.store.view('alice'), b.store.view('alice'), 'both nodes show the same');
});

t.test('without the cluster options the source is "publish", and an unknown tag is 412 at once', async (t) => {
  const n = makeServer();
  const inputs: HubInput[] = [];
  n.store.onInput((input) => inputs.push(input));
  t.equal(n.stack.deliver(publish({ body: pidfBody({ activities: '<rpid:away/>' }) }))[0]?.status, 200);
  t.match(inputs, [{ kind: 'sip', source: 'publish' }]);
  t.equal(n.stack.deliver(publish({ ifMatch: 'elsewhere', expires: 60 }))[0]?.status, 412, 'answered synchronously');
});

t.test('a refresh for a publication another node holds: looked up, adopted, answered 200 with a new entity-tag', async (t) => {
  const { a, b, records, lookups } = cluster();
  const created = a.stack.deliver(publish({ body: pidfBody({ activities: '<rpid:away/>', note: 'Lunch' }), expires: 300 }))[0]!;
  const etag = created.headers.get('sip-etag')!;
  t.ok(records.has(etag), "a's record is in the store");

  const answers = b.stack.deliver(publish({ ifMatch: etag, expires: 600 }));
  t.same(answers, [], 'not answered until the lookup is done');
  await settle();
  t.equal(answers.length, 1);
  t.equal(answers[0]!.status, 200);
  const next = answers[0]!.headers.get('sip-etag')!;
  t.ok(next);
  t.not(next, etag, 'RFC 3903 §6: a refresh gets a new entity-tag');
  t.equal(answers[0]!.headers.get('expires'), '600');
  t.same(lookups, [etag]);
  t.equal(b.server.publications.size, 1);
  t.equal(a.server.publications.size, 0, 'a released it');
  t.same(a.removed, [], 'release left the store alone: the record is b\'s now');
  t.same(b.saved, [etag, next], 'b saved it when adopted, then under its new tag');
  t.same(b.removed, [etag], 'and forgot the spent tag');
  t.same(b.store.view('alice').activities, ['away'], "b composes it under its own source");
  t.match(b.inputs, [{ kind: 'sip', source: 'publish@b', rich: { activities: ['away'] } }]);
  t.same(a.inputs.at(-1), { kind: 'sip', personId: 'alice', source: 'publish@a' }, "a's source let it go");
  t.same(a.store.view('alice'), b.store.view('alice'));
  // a refresh now is the hot path: answered synchronously, no lookup
  const again = b.stack.deliver(publish({ ifMatch: next, expires: 600 }));
  t.equal(again[0]?.status, 200);
  t.same(lookups, [etag]);
});

t.test('a modify and a removal through the lookup are handled as RFC 3903 says', async (t) => {
  const { a, b } = cluster();
  const one = a.stack.deliver(publish({ body: pidfBody({ activities: '<rpid:away/>' }) }))[0]!.headers.get('sip-etag')!;
  const two = a.stack.deliver(publish({ user: 'bob', body: pidfBody({ activities: '<rpid:away/>' }) }))[0]!.headers.get('sip-etag')!;
  const modified = b.stack.deliver(publish({ ifMatch: one, body: pidfBody({ activities: '<rpid:meeting/>' }) }));
  const removed = b.stack.deliver(publish({ user: 'bob', ifMatch: two, expires: 0 }));
  await settle();
  t.equal(modified[0]?.status, 200);
  t.same(b.store.view('alice').activities, ['meeting']);
  t.same(a.store.view('alice').activities, ['meeting'], 'a hears of it through the bus');
  t.equal(removed[0]?.status, 200);
  t.equal(removed[0]?.headers.get('expires'), '0');
  t.equal(b.store.state('bob').sip, undefined);
  t.equal(a.store.state('bob').sip, undefined);
  t.ok(b.removed.includes(two), 'the removed publication is forgotten by its new owner');
  t.equal(b.server.publications.size, 1);
});

t.test('not found: 412; a failed lookup: 412; the wrong event or person: 412', async (t) => {
  let fail = false;
  const { a, b, records } = cluster({
    lookup: (etag) => (fail ? Promise.reject(new Error('store unreachable')) : Promise.resolve(records.get(etag))),
  });
  const none = b.stack.deliver(publish({ ifMatch: 'nowhere', expires: 60 }));
  await settle();
  t.equal(none[0]?.status, 412);
  fail = true;
  const failed = b.stack.deliver(publish({ ifMatch: 'nowhere', expires: 60 }));
  await settle();
  t.equal(failed[0]?.status, 412, 'the phone publishes afresh (RFC 3903 §6 step 4)');
  fail = false;
  const etag = a.stack.deliver(publish({ body: pidfBody() }))[0]!.headers.get('sip-etag')!;
  const wrong = b.stack.deliver(publish({ user: 'bob', ifMatch: etag, expires: 60 }));
  await settle();
  t.equal(wrong[0]?.status, 412, "alice's tag does not refresh bob's");
});

t.test('concurrent PUBLISHes for one unknown tag share one lookup; the second finds the tag spent', async (t) => {
  const pending = deferred<PublicationSnapshot | undefined>();
  const { a, b, records, lookups } = cluster({ lookup: () => pending.promise });
  const etag = a.stack.deliver(publish({ body: pidfBody({ activities: '<rpid:away/>' }) }))[0]!.headers.get('sip-etag')!;
  const first = b.stack.deliver(publish({ ifMatch: etag, expires: 300 }));
  const second = b.stack.deliver(publish({ ifMatch: etag, expires: 300 }));
  await settle();
  t.same([first.length, second.length], [0, 0], 'both wait');
  t.equal(lookups.length, 1, 'one lookup');
  pending.resolve(records.get(etag));
  await settle();
  t.equal(first[0]?.status, 200);
  t.equal(second[0]?.status, 412, 'the first refresh spent the tag (as on one node)');
  t.equal(b.server.publications.size, 1);
  // a later lookup of another tag asks again
  const third = b.stack.deliver(publish({ ifMatch: 'other', expires: 300 }));
  t.equal(lookups.length, 2);
  await settle();
  t.equal(third[0]?.status, 412);
});

t.test('closed during the lookup: no answer, nothing adopted', async (t) => {
  const pending = deferred<PublicationSnapshot | undefined>();
  const { a, b, records } = cluster({ lookup: () => pending.promise });
  const etag = a.stack.deliver(publish({ body: pidfBody() }))[0]!.headers.get('sip-etag')!;
  const answers = b.stack.deliver(publish({ ifMatch: etag, expires: 300 }));
  b.server.close();
  pending.resolve(records.get(etag));
  await settle();
  t.same(answers, []);
  t.equal(b.server.publications.size, 0);
});

t.test('adopt: live, composed, saved and expiring; refused when expired, unknown or held', async (t) => {
  const { b } = cluster();
  const now = b.now();
  const record = (over: Partial<PublicationSnapshot>): PublicationSnapshot => ({
    etag: 'e1',
    resource: 'alice',
    event: 'presence',
    expiresAt: now + 120_000,
    state: { rich: { basic: 'open', activities: ['vacation'], origin: 'publish:192.0.2.5', at: now } },
    ...over,
  });
  t.equal(b.server.publications.adopt(record({})), true);
  t.same(b.store.view('alice').activities, ['vacation']);
  t.same(b.saved, ['e1'], 'saved through the persistence hook');
  t.equal(b.server.publications.get('e1')?.expiresAt, now + 120_000);
  t.equal(b.server.publications.adopt(record({})), false, 'already held');
  t.equal(b.server.publications.adopt(record({ etag: 'e2', expiresAt: now - 1 })), false, 'expired');
  t.equal(b.server.publications.adopt(record({ etag: 'e3', resource: 'zed' })), false, 'nobody here');
  t.equal(b.server.publications.adopt(record({ etag: 'e4', event: 'message-summary' })), false, 'no such package');
  t.equal(b.server.publications.adopt(record({ etag: 'e5', state: { nonsense: 1 } })), false, 'unreadable state');
  t.equal(b.server.publications.size, 1);
  b.advance(121_000);
  t.same(b.store.view('alice').activities, [], 'it expires on the wheel');
  t.same(b.removed, ['e1']);
});

t.test('release: gone without an answer, recomposed, expiry off, the store untouched', async (t) => {
  const { a } = cluster();
  const dnd = a.stack.deliver(publish({ body: pidfBody({ cisco: '<ce:dnd/>' }), expires: 120 }))[0]!.headers.get('sip-etag')!;
  a.stack.deliver(publish({ body: pidfBody({ activities: '<rpid:away/>' }), expires: 120 }));
  t.equal(a.store.view('alice').dnd, true);
  const before = a.stack.log.length;
  t.equal(a.server.publications.release(dnd), true);
  t.equal(a.server.publications.release(dnd), false, 'released once');
  t.equal(a.server.publications.release('never'), false);
  t.equal(a.stack.log.length, before, 'nothing sent');
  t.equal(a.store.view('alice').dnd, false, 'recomposed without it');
  t.same(a.store.view('alice').activities, ['away']);
  t.same(a.removed, [], 'no persistence remove');
  a.advance(121_000);
  t.same(a.removed.length, 1, 'only the other publication expired');
  t.equal(a.server.publications.size, 0);
});
