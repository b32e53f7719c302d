import t from 'tap';
import {
  parseDialogInfo,
  parseMultipartRelated,
  parsePidf,
  parseRlmi,
  rootPart,
  type MimePart,
  type RlmiDocument,
} from '../../src/bodies/index.js';
import { listsSchema, type ListsConfig } from '../../src/simple/lists-config.js';
import { Directory } from '../../src/core/directory.js';
import type { TelephonyState } from '../../src/core/person-state.js';
import { PresenceHub } from '../../src/core/presence-hub.js';
import { parseSubscriptionState, tagOf } from '../../src/sip/header-values.js';
import type { SipRequest } from '../../src/sip/message.js';
import { attachResourceLists, type BatchScheduler } from '../../src/simple/resource-lists.js';
import { SimpleServer } from '../../src/simple/simple-server.js';
import { silentLogger } from '../../src/util/logger.js';
import { TimerWheel } from '../../src/util/timer-wheel.js';
import { CONFIG, FakeStack, resubscribe, settle, subscribe, type SubscribeSpec } from './helpers.js';

const LIST_ACCEPT = ['multipart/related', 'application/rlmi+xml', 'application/pidf+xml'];

/** A manual batch timer: due callbacks run on fire(). */
class ManualScheduler {
  readonly queue: Array<{ fn: () => void; ms: number; cancelled: boolean }> = [];
  readonly schedule: BatchScheduler = (fn, ms) => {
    const entry = { fn, ms, cancelled: false };
    this.queue.push(entry);
    return () => {
      entry.cancelled = true;
    };
  };
  get armed(): number {
    return this.queue.filter((e) => !e.cancelled).length;
  }
  fire(): void {
    const due = this.queue.splice(0);
    for (const e of due) if (!e.cancelled) e.fn();
  }
}

function setup(lists: unknown = undefined) {
  let now = 1_700_000_000_000;
  const clock = () => now;
  const directory = new Directory(
    [
      { id: 'alice', displayName: 'Alice Adams', extension: '1001', sipAors: ['sip:alice@example.com'] },
      { id: 'bob', displayName: 'Bob Brown', extension: '1002', sipAors: ['sip:bob@example.com'] },
      { id: 'carol', displayName: 'Carol <C>', extension: '1003', sipAors: ['sip:carol@example.com'] },
      { id: 'dave', displayName: 'Dave', extension: '1004', sipAors: ['sip:dave@example.com'] },
    ],
    { domains: ['example.com'] },
  );
  const store = new PresenceHub(directory, { clock: { now: clock } });
  const stack = new FakeStack();
  const wheel = new TimerWheel({ clock: { now: clock }, autoStart: false });
  const server = new SimpleServer({ stack, directory, store, config: CONFIG, logger: silentLogger(), clock: { now: clock }, wheel });
  const config: ListsConfig = listsSchema.parse(
    lists ?? {
      batchMs: 200,
      groups: [
        { name: 'sales', uri: 'sip:sales@example.com', displayName: 'Sales', members: ['alice', 'bob', 'carol'] },
        { name: 'desk', uri: 'sip:desk@example.com', members: ['carol', 'alice'] },
      ],
    },
  );
  const timers = new ManualScheduler();
  const lists$ = attachResourceLists(server.notifier, (l) => store.onChange(l), config, {
    directory,
    logger: silentLogger(),
    schedule: timers.schedule,
  });
  return {
    stack,
    store,
    server,
    timers,
    lists: lists$,
    now: clock,
    advance(ms: number) {
      now += ms;
      wheel.advance();
    },
  };
}

function listSubscribe(spec: SubscribeSpec & { supported?: string | null } = {}): SipRequest {
  const req = subscribe({ user: 'sales', accept: LIST_ACCEPT, ...spec });
  if (spec.supported !== null) req.headers.append('supported', spec.supported ?? 'eventlist');
  return req;
}

function onCall(at: number, id = 'c1'): TelephonyState {
  return { line: 'in-call', dnd: false, calls: [{ id, phase: 'confirmed' }], origin: 'test', at };
}

interface ListNotify {
  rlmi: RlmiDocument;
  parts: Map<string, MimePart>;
  all: MimePart[];
  contentType: string;
}

function readNotify(request: SipRequest): ListNotify {
  const contentType = request.headers.get('content-type')!;
  const doc = parseMultipartRelated(request.body, contentType);
  const root = rootPart(doc)!;
  const parts = new Map<string, MimePart>();
  for (const p of doc.parts) if (p !== root && p.contentId !== undefined) parts.set(p.contentId, p);
  return { rlmi: parseRlmi(root.body), parts, all: doc.parts, contentType };
}

t.test('without Supported: eventlist the list answers 421 with Require: eventlist', async (t) => {
  const { stack, server } = setup();
  const res = stack.deliver(listSubscribe({ supported: null }))[0]!;
  t.equal(res.status, 421);
  t.equal(res.headers.get('require'), 'eventlist');
  const other = stack.deliver(listSubscribe({ supported: '100rel, timer' }))[0]!;
  t.equal(other.status, 421, 'other option tags do not count');
  t.equal(stack.sent.length, 0, 'no NOTIFY');
  t.equal(server.notifier.size, 0);
  t.equal(stack.deliver(subscribe({ user: 'alice' }))[0]?.status, 200, 'people are still served without eventlist');
});

t.test('406 unless the watcher takes multipart/related, RLMI and a member format', async (t) => {
  const { stack } = setup();
  for (const accept of [
    ['application/rlmi+xml', 'application/pidf+xml'],
    ['multipart/related', 'application/pidf+xml'],
    ['multipart/related', 'application/rlmi+xml'],
    ['multipart/related', 'application/rlmi+xml;q=0', 'application/pidf+xml'],
  ]) {
    const res = stack.deliver(listSubscribe({ accept }))[0]!;
    t.equal(res.status, 406, accept.join(', '));
    t.equal(res.headers.get('accept'), 'multipart/related, application/rlmi+xml, application/pidf+xml, application/cpim-pidf+xml, application/xpidf+xml');
  }
  t.equal(stack.deliver(listSubscribe({ accept: ['*/*'] }))[0]?.status, 200, '*/* takes everything');
  t.equal(stack.deliver(listSubscribe({ accept: [] }))[0]?.status, 200, 'no Accept: the defaults');
});

t.test('first NOTIFY: 200 and NOTIFY with Require, multipart/related, full RLMI, one part per member', async (t) => {
  const { stack, store, now } = setup();
  store.setTelephony('bob', onCall(now()));
  const req = listSubscribe({ expires: 600 });
  const res = stack.deliver(req)[0]!;
  t.equal(res.status, 200);
  t.equal(res.headers.get('require'), 'eventlist');
  t.equal(res.headers.get('expires'), '600');
  const n = stack.notifies()[0]!;
  const h = n.request.headers;
  t.equal(h.get('require'), 'eventlist');
  t.equal(h.get('event'), 'presence');
  t.same(parseSubscriptionState(h.get('subscription-state')!), { state: 'active', expires: 600 });
  const ct = h.get('content-type')!;
  t.match(ct, /^multipart\/related;type="application\/rlmi\+xml";start="<[^>]+>";boundary=[A-Za-z0-9]+$/);

  const { rlmi, parts, all } = readNotify(n.request);
  t.equal(all[0]!.contentType, 'application/rlmi+xml;charset="UTF-8"', 'RLMI is the first part');
  t.same(all[0]!.headers, [['content-transfer-encoding', 'binary']]);
  t.equal(`<${all[0]!.contentId}>`, /start="([^"]+)"/.exec(ct)![1], 'start names the RLMI part');
  t.equal(rlmi.uri, 'sip:sales@example.com');
  t.equal(rlmi.version, 0);
  t.equal(rlmi.fullState, true);
  t.same(rlmi.names, [{ value: 'Sales' }]);
  t.same(
    rlmi.resources.map((r) => [r.uri, r.names[0]?.value, r.instances[0]?.state]),
    [
      ['sip:alice@example.com', 'Alice Adams', 'active'],
      ['sip:bob@example.com', 'Bob Brown', 'active'],
      ['sip:carol@example.com', 'Carol <C>', 'active'],
    ],
  );
  t.equal(parts.size, 3, 'one part per member');
  const cids = rlmi.resources.map((r) => r.instances[0]!.cid!);
  t.equal(new Set(cids).size, 3, 'distinct Content-IDs');
  for (const [i, r] of rlmi.resources.entries()) {
    const part = parts.get(cids[i]!);
    t.ok(part, `part for ${r.uri}`);
    t.equal(part!.contentType, 'application/pidf+xml');
    t.same(part!.headers, [['content-transfer-encoding', 'binary']]);
    t.equal(parsePidf(part!.body).entity, r.uri, 'member PIDF entity is the member');
  }
  const bob = parsePidf(parts.get(cids[1]!)!.body);
  t.same(bob.persons[0]?.activities.map((a) => a.name), ['on-the-phone'], 'member state as the package renders it');
});

t.test('dialog lists carry dialog-info parts; a local IP host finds the list; Cisco Accept gives cpim-pidf parts', async (t) => {
  const { stack, store, now } = setup();
  store.setTelephony('alice', onCall(now()));
  t.equal(stack.deliver(listSubscribe({ user: 'desk', host: '192.0.2.10', event: 'dialog', accept: ['multipart/related', 'application/rlmi+xml', 'application/dialog-info+xml'] }))[0]?.status, 200);
  const { rlmi, parts } = readNotify(stack.notifies()[0]!.request);
  t.equal(rlmi.uri, 'sip:desk@example.com');
  t.same(rlmi.resources.map((r) => r.uri), ['sip:carol@example.com', 'sip:alice@example.com'], 'config order');
  const alice = parts.get(rlmi.resources[1]!.instances[0]!.cid!)!;
  t.equal(alice.contentType, 'application/dialog-info+xml');
  const di = parseDialogInfo(alice.body);
  t.equal(di.entity, 'sip:alice@example.com');
  t.equal(di.dialogs[0]?.state, 'confirmed');

  stack.deliver(listSubscribe({ accept: ['multipart/related', 'application/rlmi+xml', 'application/cpim-pidf+xml'] }));
  const cisco = readNotify(stack.notifies()[1]!.request);
  t.same([...cisco.parts.values()].map((p) => p.contentType), Array(3).fill('application/cpim-pidf+xml'));
});

t.test('partial state after the first: 5 quick changes are one batched NOTIFY with only the changed member', async (t) => {
  const { stack, store, timers, now } = setup();
  stack.deliver(listSubscribe());
  stack.notifies()[0]!.answer(200);
  await settle();
  t.equal(timers.armed, 0);

  for (let i = 0; i < 5; i++) store.setTelephony('bob', i % 2 === 0 ? onCall(now(), `c${i}`) : undefined);
  t.equal(timers.armed, 1, 'one batch timer for the list');
  t.equal(timers.queue[0]!.ms, 200, 'batchMs from config');
  await settle();
  t.equal(stack.notifies().length, 1, 'nothing sent before the batch ends');
  timers.fire();
  await settle();
  t.equal(stack.notifies().length, 2, 'one NOTIFY for five changes');
  const n = stack.notifies()[1]!;
  t.equal(n.request.headers.get('require'), 'eventlist');
  const { rlmi, parts } = readNotify(n.request);
  t.equal(rlmi.fullState, false);
  t.equal(rlmi.version, 1);
  t.same(rlmi.resources.map((r) => r.uri), ['sip:bob@example.com']);
  t.equal(parts.size, 1);
  const pidf = parsePidf(parts.get(rlmi.resources[0]!.instances[0]!.cid!)!.body);
  t.same(pidf.persons[0]?.activities.map((a) => a.name), ['on-the-phone'], 'the latest state (the fifth change)');
  n.answer(200);
  await settle();

  store.setTelephony('carol', onCall(now()));
  store.setTelephony('alice', onCall(now()));
  timers.fire();
  await settle();
  const third = readNotify(stack.notifies()[2]!.request);
  t.equal(third.rlmi.version, 2);
  t.same(third.rlmi.resources.map((r) => r.uri), ['sip:alice@example.com', 'sip:carol@example.com'], 'both, in list order');

  store.setTelephony('dave', onCall(now()));
  t.equal(timers.armed, 0, 'a person in no list arms nothing');
});

t.test('a member in two lists: each list batches it once', async (t) => {
  const { stack, store, timers, now } = setup();
  stack.deliver(listSubscribe());
  stack.deliver(listSubscribe({ user: 'desk' }));
  for (const n of stack.notifies()) n.answer(200);
  await settle();
  store.setTelephony('bob', onCall(now()));
  t.equal(timers.armed, 1, 'bob is only in sales');
  timers.fire();
  await settle();
  stack.notifies()[2]!.answer(200);
  await settle();
  store.setTelephony('carol', onCall(now()));
  t.equal(timers.armed, 2, 'carol is in sales and desk');
  timers.fire();
  await settle();
  const [, , toSalesBob, toSales, toDesk] = stack.notifies().map((n) => readNotify(n.request).rlmi);
  t.same(toSalesBob?.resources.map((r) => r.uri), ['sip:bob@example.com']);
  t.same([toSales?.uri, toDesk?.uri].sort(), ['sip:desk@example.com', 'sip:sales@example.com']);
  t.same(toSales?.resources.map((r) => r.uri), ['sip:carol@example.com']);
  t.same(toDesk?.resources.map((r) => r.uri), ['sip:carol@example.com']);
});

t.test('per subscription tracking: a NOTIFY in flight keeps collecting what that watcher missed', async (t) => {
  const { stack, store, timers, now } = setup();
  stack.deliver(listSubscribe({ fromTag: 'slow' }));
  stack.deliver(listSubscribe({ fromTag: 'fast' }));
  const [slowFirst, fastFirst] = stack.notifies();
  fastFirst!.answer(200); // slow's first NOTIFY stays outstanding
  await settle();

  store.setTelephony('alice', onCall(now()));
  timers.fire();
  await settle();
  t.equal(stack.notifies().length, 3, 'only the fast watcher got a NOTIFY');
  const fast2 = stack.notifies()[2]!;
  t.equal(tagOf(fast2.request.headers.get('to')!), 'fast');
  t.same(readNotify(fast2.request).rlmi.resources.map((r) => r.uri), ['sip:alice@example.com']);
  fast2.answer(200);
  await settle();

  store.setTelephony('bob', onCall(now()));
  timers.fire();
  await settle();
  const fast3 = stack.notifies()[3]!;
  t.same(readNotify(fast3.request).rlmi.resources.map((r) => r.uri), ['sip:bob@example.com']);
  fast3.answer(200);

  slowFirst!.answer(200);
  await settle();
  t.equal(stack.notifies().length, 5);
  const slow2 = stack.notifies()[4]!;
  t.equal(tagOf(slow2.request.headers.get('to')!), 'slow');
  const { rlmi, parts } = readNotify(slow2.request);
  t.equal(rlmi.fullState, false);
  t.equal(rlmi.version, 1);
  t.same(rlmi.resources.map((r) => r.uri), ['sip:alice@example.com', 'sip:bob@example.com'], 'both changes, none lost');
  t.equal(parts.size, 2);
});

t.test('refresh and a refused NOTIFY bring the full state back', async (t) => {
  const { stack, store, timers, now } = setup();
  const first = listSubscribe({ expires: 600 });
  const ok = stack.deliver(first)[0]!;
  stack.notifies()[0]!.answer(200);
  await settle();

  const res = stack.deliver(resubscribe(first, ok, { expires: 600 }))[0]!;
  t.equal(res.status, 200);
  t.equal(res.headers.get('require'), 'eventlist', 'Require on the refresh 200 too');
  const refreshed = readNotify(stack.notifies()[1]!.request).rlmi;
  t.equal(refreshed.fullState, true);
  t.equal(refreshed.version, 1);
  t.equal(refreshed.resources.length, 3);
  stack.notifies()[1]!.answer(200);
  await settle();

  store.setTelephony('alice', onCall(now()));
  timers.fire();
  await settle();
  t.equal(readNotify(stack.notifies()[2]!.request).rlmi.fullState, false);
  stack.notifies()[2]!.answer(500); // refused, the subscription stays
  await settle();
  store.setTelephony('bob', onCall(now()));
  timers.fire();
  await settle();
  const after = readNotify(stack.notifies()[3]!.request).rlmi;
  t.equal(after.fullState, true, 'full state after a refused partial');
  t.equal(after.version, 3);
  t.equal(after.resources.length, 3);
});

t.test('unsubscribe and expiry: a terminated NOTIFY with the list, instances terminated', async (t) => {
  const { stack, server, advance } = setup();
  const first = listSubscribe({ expires: 600 });
  const ok = stack.deliver(first)[0]!;
  stack.notifies()[0]!.answer(200);
  await settle();
  stack.deliver(resubscribe(first, ok, { expires: 0 }));
  const n = stack.notifies()[1]!;
  t.equal(parseSubscriptionState(n.request.headers.get('subscription-state')!)?.state, 'terminated');
  const { rlmi, parts } = readNotify(n.request);
  t.equal(rlmi.fullState, true);
  t.same(rlmi.resources.map((r) => r.instances[0]?.state), ['terminated', 'terminated', 'terminated']);
  t.equal(parts.size, 0, 'no member bodies');
  t.equal(server.notifier.size, 0);

  stack.deliver(listSubscribe({ expires: 60 }));
  stack.notifies()[2]!.answer(200);
  await settle();
  advance(61_000);
  const expired = stack.notifies()[3]!;
  t.same(parseSubscriptionState(expired.request.headers.get('subscription-state')!), { state: 'terminated', reason: 'timeout' });
  t.same(readNotify(expired.request).rlmi.resources.map((r) => r.instances[0]?.reason), ['timeout', 'timeout', 'timeout']);
});

t.test('a fetch (Expires: 0) gets the full state once', async (t) => {
  const { stack, server } = setup();
  t.equal(stack.deliver(listSubscribe({ expires: 0 }))[0]?.status, 200);
  const n = stack.notifies()[0]!;
  t.equal(parseSubscriptionState(n.request.headers.get('subscription-state')!)?.state, 'terminated');
  const { rlmi, parts } = readNotify(n.request);
  t.same(rlmi.resources.map((r) => r.instances[0]?.state), ['active', 'active', 'active']);
  t.equal(parts.size, 3);
  t.equal(server.notifier.size, 0);
});

t.test('close stops batching and serving lists', async (t) => {
  const { stack, store, timers, lists, now } = setup();
  stack.deliver(listSubscribe());
  t.same(lists.summary(), [
    { name: 'sales', uri: 'sip:sales@example.com', members: 3, watchers: 1 },
    { name: 'desk', uri: 'sip:desk@example.com', members: 2, watchers: 0 },
  ]);
  store.setTelephony('alice', onCall(now()));
  t.equal(timers.armed, 2, 'alice is in both lists');
  lists.close();
  t.equal(timers.armed, 0, 'pending batch cancelled');
  store.setTelephony('bob', onCall(now()));
  t.equal(timers.armed, 0, 'no longer listening');
  t.equal(stack.deliver(listSubscribe({ user: 'desk' }))[0]?.status, 404, 'list URIs are unknown again');
});

t.test('config: defaults, duplicates and unknown members are reported', async (t) => {
  const { listMemberIssues } = await import('../../src/simple/lists-config.js');
  t.same(listsSchema.parse(undefined), { batchMs: 200, groups: [] });
  const bad = listsSchema.safeParse({
    groups: [
      { name: 'a', uri: 'sip:a@h', members: ['x', 'x'] },
      { name: 'a', uri: 'sip:A@h', members: [] },
    ],
  });
  t.equal(bad.success, false);
  const messages = bad.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];
  t.match(messages.join('\n'), /groups\.0\.members\.1: "x" is listed twice/);
  t.match(messages.join('\n'), /groups\.1\.name: duplicate list name "a"/);
  t.match(messages.join('\n'), /groups\.1\.uri: duplicate list URI/);
  t.equal(listsSchema.safeParse({ groups: [{ name: 'a', uri: 'tel:123', members: [] }] }).success, false, 'SIP URI required');
  t.equal(listsSchema.safeParse({ batchMs: -1 }).success, false);
  const cfg = listsSchema.parse({ groups: [{ name: 'a', uri: 'sip:a@h', members: ['anna', 'zed'] }] });
  t.same(listMemberIssues(cfg, new Set(['anna'])), [{ path: ['groups', 0, 'members', 1], message: '"zed" is not the id of any entry in users' }]);
});

t.test('Require: eventlist is supported where lists are served; Supported lists over commas count', async (t) => {
  const { stack } = setup();
  const req = listSubscribe({ supported: 'timer, eventlist' });
  req.headers.append('require', 'eventlist');
  const res = stack.deliver(req)[0]!;
  t.equal(res.status, 200);
  t.equal(res.headers.get('require'), 'eventlist');
  const options = subscribe({ user: 'sales' });
  options.method = 'OPTIONS';
  options.headers.set('cseq', '1 OPTIONS');
  t.match(stack.deliver(options)[0]!.headers.get('supported'), /\beventlist\b/, 'OPTIONS says so (RFC 3261 §11.2)');
});
