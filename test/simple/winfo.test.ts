import t from 'tap';
import { parseWatcherInfo } from '../../src/bodies/index.js';
import { PresenceHub } from '../../src/core/presence-hub.js';
import { SimpleServer } from '../../src/simple/simple-server.js';
import { silentLogger } from '../../src/util/logger.js';
import { TimerWheel } from '../../src/util/timer-wheel.js';
import { CONFIG, FakeStack, makeDirectory, resubscribe, settle, subscribe } from './helpers.js';

function setup() {
  let now = 1_700_000_000_000;
  const directory = makeDirectory();
  const store = new PresenceHub(directory, { clock: { now: () => now } });
  const stack = new FakeStack();
  const wheel = new TimerWheel({ clock: { now: () => now }, autoStart: false });
  const server = new SimpleServer({
    stack,
    directory,
    store,
    config: { ...CONFIG, watcherInfo: true },
    logger: silentLogger(),
    clock: { now: () => now },
    wheel,
    // an "admin" digest user and a trusted network, as access control would mark them
    access: (req) => {
      const from = req.request.headers.get('from') ?? '';
      if (from.includes('operator@')) return { allow: true, privileged: 'admin' };
      if (req.source.address === '10.1.1.1') return { allow: true, privileged: 'trusted' };
      return { allow: true };
    },
  });
  return { stack, store, server, advance: (ms: number) => ((now += ms), wheel.advance()) };
}

function winfoSubscribe(from: string, user = 'alice') {
  const req = subscribe({ user, event: 'presence.winfo' });
  req.headers.set('from', `<${from}>;tag=w${Math.random().toString(16).slice(2, 8)}`);
  return req;
}

t.test("the person's own client sees who watches them: full state, then partial", async (t) => {
  const { stack, store, server } = setup();
  const res = stack.deliver(winfoSubscribe('sip:alice@example.com'))[0]!;
  t.equal(res.status, 200);
  await settle();
  const first = stack.pending()[0]!;
  first.answer(200);
  t.equal(first.request.headers.get('event'), 'presence.winfo');
  t.equal(first.request.headers.get('content-type'), 'application/watcherinfo+xml');
  t.same(parseWatcherInfo(first.request.body), {
    version: 0,
    state: 'full',
    lists: [{ resource: 'sip:alice@example.com', package: 'presence', watchers: [] }],
  });

  const presenceSub = subscribe({ user: 'alice', expires: 600 });
  const ok = stack.deliver(presenceSub)[0]!;
  t.equal(ok.status, 200);
  await settle();
  for (const p of stack.pending()) if (p.request.headers.get('event') === 'presence') p.answer(200);
  const winfo = stack.pending().find((p) => p.request.headers.get('event') === 'presence.winfo')!;
  t.ok(winfo, 'a winfo NOTIFY for the new watcher');
  winfo.answer(200);
  const doc = parseWatcherInfo(winfo.request.body);
  t.equal(doc.state, 'partial');
  t.equal(doc.version, 1);
  const w = doc.lists[0]!.watchers;
  t.equal(w.length, 1);
  t.match(w[0], { status: 'active', event: 'subscribe', uri: 'sip:console@example.com', displayName: 'Console', expiration: 600 });

  store.setSip('alice', { basic: 'open', activities: ['away'], origin: 'test', at: 1 });
  await settle();
  t.equal(stack.pending().filter((p) => p.request.headers.get('event') === 'presence.winfo').length, 0, "a presence change is not a watcher change");
  for (const p of stack.pending()) p.answer(200);

  t.equal(stack.deliver(resubscribe(presenceSub, ok, { expires: 0 }))[0]!.status, 200);
  await settle();
  const gone = stack.pending().find((p) => p.request.headers.get('event') === 'presence.winfo')!;
  gone.answer(200);
  const end = parseWatcherInfo(gone.request.body);
  t.equal(end.state, 'partial');
  t.match(end.lists[0]!.watchers, [{ status: 'terminated', event: 'timeout', uri: 'sip:console@example.com' }]);
  t.equal(server.counts().subscriptions['presence.winfo'], 1);
});

t.test('others get 403; an admin user and a trusted network may', async (t) => {
  const { stack } = setup();
  const stranger = stack.deliver(winfoSubscribe('sip:bob@example.com'))[0]!;
  t.equal(stranger.status, 403, 'bob may not see who watches alice');
  t.match(stranger.reason, /only for the person/);
  t.equal(stack.deliver(winfoSubscribe('sip:console@example.com'))[0]!.status, 403);
  t.equal(stack.deliver(winfoSubscribe('sip:operator@example.com'))[0]!.status, 200, 'admin digest user');
  t.equal(stack.deliver(winfoSubscribe('sip:console@example.com'), { source: { protocol: 'udp', address: '10.1.1.1', port: 5060 } })[0]!.status, 200, 'trusted network');
  const wrongAccept = winfoSubscribe('sip:alice@example.com');
  wrongAccept.headers.append('accept', 'application/pidf+xml');
  t.equal(stack.deliver(wrongAccept)[0]!.status, 406);
});

t.test('an existing watcher is in the full state of a new winfo subscription', async (t) => {
  const { stack } = setup();
  t.equal(stack.deliver(subscribe({ user: 'alice' }))[0]!.status, 200);
  await settle();
  for (const p of stack.pending()) p.answer(200);
  t.equal(stack.deliver(winfoSubscribe('sip:alice@example.com'))[0]!.status, 200);
  await settle();
  const n = stack.pending()[0]!;
  const doc = parseWatcherInfo(n.request.body);
  t.equal(doc.state, 'full');
  t.equal(doc.lists[0]!.watchers.length, 1);
  t.equal(doc.lists[0]!.watchers[0]!.status, 'active');
});
