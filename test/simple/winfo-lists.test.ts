/** Watcher information counts list watchers: a console subscribed to a list holding the person watches them (RFC 3857 with RFC 4662). */
import t from 'tap';
import { parseWatcherInfo } from '../../src/bodies/index.js';
import { PresenceHub } from '../../src/core/presence-hub.js';
import type { SipRequest, SipResponse } from '../../src/sip/message.js';
import { listsSchema } from '../../src/simple/lists-config.js';
import { attachResourceLists } from '../../src/simple/resource-lists.js';
import { SimpleServer } from '../../src/simple/simple-server.js';
import { silentLogger } from '../../src/util/logger.js';
import { TimerWheel } from '../../src/util/timer-wheel.js';
import { CONFIG, FakeStack, makeDirectory, resubscribe, settle, subscribe } from './helpers.js';

function setup() {
  const directory = makeDirectory();
  const store = new PresenceHub(directory);
  const stack = new FakeStack();
  const server = new SimpleServer({ stack, directory, store, config: { ...CONFIG, watcherInfo: true }, logger: silentLogger(), wheel: new TimerWheel({ autoStart: false }) });
  attachResourceLists(
    server.notifier,
    (l) => store.onChange(l),
    listsSchema.parse({
      groups: [
        { name: 'sales', uri: 'sip:sales@example.com', members: ['alice', 'bob'] },
        { name: 'desk', uri: 'sip:desk@example.com', members: ['bob'] },
      ],
      clientLists: {},
    }),
    { directory, logger: silentLogger(), schedule: () => () => undefined },
  );
  return { stack, server };
}

const ACCEPT = ['multipart/related', 'application/rlmi+xml', 'application/pidf+xml'];

function listSubscribe(user: string, watcher: string, event = 'presence'): SipRequest {
  const req = subscribe({ user, event, accept: event === 'presence' ? ACCEPT : ['multipart/related', 'application/rlmi+xml', 'application/dialog-info+xml'] });
  req.headers.set('from', `<${watcher}>;tag=l${Math.random().toString(16).slice(2, 8)}`);
  req.headers.append('supported', 'eventlist');
  return req;
}

function clientListSubscribe(watcher: string): SipRequest {
  const req = listSubscribe('my-list', watcher);
  req.headers.append('require', 'recipient-list-subscribe');
  req.headers.append('content-type', 'application/resource-lists+xml');
  req.headers.append('content-disposition', 'recipient-list');
  req.body = Buffer.from(
    '<?xml version="1.0"?><resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list><entry uri="sip:alice@example.com"/></list></resource-lists>',
  );
  return req;
}

function winfoOf(stack: FakeStack) {
  const n = stack.pending().find((p) => p.request.headers.get('event') === 'presence.winfo');
  for (const p of stack.pending()) p.answer(200);
  return n === undefined ? undefined : parseWatcherInfo(n.request.body);
}

t.test('configured and client-defined list watchers are watchers of each member', async (t) => {
  const { stack } = setup();
  const sales = stack.deliver(listSubscribe('sales', 'sip:console1@example.com'))[0] as SipResponse;
  t.equal(sales.status, 200);
  t.equal((stack.deliver(listSubscribe('desk', 'sip:console2@example.com'))[0] as SipResponse).status, 200);
  t.equal((stack.deliver(listSubscribe('sales', 'sip:blf@example.com', 'dialog'))[0] as SipResponse).status, 200);
  t.equal((stack.deliver(clientListSubscribe('sip:console3@example.com'))[0] as SipResponse).status, 200);
  t.equal((stack.deliver(subscribe({ user: 'alice' }))[0] as SipResponse).status, 200);
  await settle();
  for (const p of stack.pending()) p.answer(200);

  const own = subscribe({ user: 'alice', event: 'presence.winfo' });
  own.headers.set('from', '<sip:alice@example.com>;tag=own');
  t.equal((stack.deliver(own)[0] as SipResponse).status, 200);
  await settle();
  const full = winfoOf(stack)!;
  t.equal(full.state, 'full');
  t.same(
    full.lists[0]!.watchers.map((w) => w.uri).sort(),
    ['sip:console1@example.com', 'sip:console3@example.com', 'sip:console@example.com'],
    'direct, configured list and client list watchers; not the dialog list nor a list alice is not in',
  );
  t.ok(full.lists[0]!.watchers.every((w) => w.status === 'active' && w.event === 'subscribe'));

  // the list watcher leaves: alice's winfo watchers hear it
  const unsub = resubscribe(listSubscribe('sales', 'sip:console1@example.com'), sales, { expires: 0 });
  unsub.headers.set('call-id', sales.headers.get('call-id')!);
  unsub.headers.set('from', stack.notifies().find((n) => n.request.headers.get('call-id') === sales.headers.get('call-id'))!.request.headers.get('to')!);
  t.equal((stack.deliver(unsub)[0] as SipResponse).status, 200);
  await settle();
  const partial = winfoOf(stack)!;
  t.equal(partial.state, 'partial');
  t.match(partial.lists[0]!.watchers, [{ status: 'terminated', event: 'timeout', uri: 'sip:console1@example.com' }]);
});

t.test('a new list watcher reaches the winfo watchers of each member as a partial state', async (t) => {
  const { stack } = setup();
  const own = subscribe({ user: 'bob', event: 'presence.winfo' });
  own.headers.set('from', '<sip:bob@example.com>;tag=own');
  t.equal((stack.deliver(own)[0] as SipResponse).status, 200);
  await settle();
  t.equal(winfoOf(stack)!.lists[0]!.watchers.length, 0);
  t.equal((stack.deliver(listSubscribe('desk', 'sip:console2@example.com'))[0] as SipResponse).status, 200);
  await settle();
  const partial = winfoOf(stack)!;
  t.equal(partial.state, 'partial');
  t.match(partial.lists[0]!.watchers, [{ status: 'active', uri: 'sip:console2@example.com' }]);
});
