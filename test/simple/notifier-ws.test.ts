/**
 * Where NOTIFYs of WebSocket watchers (RFC 7118) and of stream watchers with
 * an unresolvable Contact go: over the connection the SUBSCRIBE came on,
 * without DNS; and what happens when that connection is gone.
 */
import t from 'tap';
import { once } from 'node:events';
import WebSocket from 'ws';
import type { TelephonyState } from '../../src/core/person-state.js';
import { Headers } from '../../src/sip/headers.js';
import { parseSubscriptionState, tagOf } from '../../src/sip/header-values.js';
import { createRequest, createResponse, type SipRequest } from '../../src/sip/message.js';
import { parseMessage } from '../../src/sip/parser.js';
import { serializeMessage } from '../../src/sip/serializer.js';
import { SipStack } from '../../src/sip/stack.js';
import { SimpleServer } from '../../src/simple/simple-server.js';
import { silentLogger } from '../../src/util/logger.js';
import { TimerWheel } from '../../src/util/timer-wheel.js';
import { PresenceHub } from '../../src/core/presence-hub.js';
import { CONFIG, makeDirectory, makeServer, resubscribe, settle, subscribe } from './helpers.js';

function lookupSpy(fail = true) {
  const asked: string[] = [];
  const lookup = async (host: string): Promise<string> => {
    asked.push(host);
    if (fail) throw new Error(`getaddrinfo ENOTFOUND ${host}`);
    return '203.0.113.50';
  };
  return { asked, lookup };
}

function inCall(at: number): TelephonyState {
  return {
    line: 'in-call',
    dnd: false,
    calls: [{ id: 'c1', phase: 'confirmed', direction: 'initiator', remote: { identity: 'sip:bob@example.com' } }],
    origin: 'test',
    at,
  };
}

t.test('a wss watcher with a ".invalid" Contact gets its NOTIFYs on its connection, no DNS', async (t) => {
  const { asked, lookup } = lookupSpy();
  const { stack, store, now } = makeServer({ lookup });
  const req = subscribe({ contact: '<sip:k3j2@df7jal23ls0d.invalid;transport=ws>', expires: 600 });
  const [ok] = stack.deliver(req, { protocol: 'wss', connectionId: 'wss-7' });
  t.equal(ok?.status, 200);
  t.equal(ok?.headers.get('contact'), '<sip:192.0.2.10:5070;transport=wss>', 'our Contact names the wss listener');
  await settle();
  const [first] = stack.notifies();
  t.ok(first, 'initial NOTIFY sent');
  t.same(first!.options, { destination: { protocol: 'wss', address: 'df7jal23ls0d.invalid', port: 5060 }, connectionId: 'wss-7' },
    'the listener protocol (wss, not the Contact\'s ws) and the connection id');
  t.equal(first!.request.uri, 'sip:k3j2@df7jal23ls0d.invalid;transport=ws', 'Request-URI is the watcher Contact');
  t.equal(first!.request.headers.get('contact'), '<sip:192.0.2.10:5070;transport=wss>');
  first!.answer(200);
  await settle();

  store.setTelephony('alice', inCall(now()));
  await settle();
  const second = stack.notifies()[1];
  t.ok(second, 'the change is notified');
  t.equal(second!.options.connectionId, 'wss-7');
  t.equal(second!.options.destination.protocol, 'wss');
  t.same(asked, [], 'no host lookup at all');
});

t.test('a ws watcher with an IP Contact still gets the connection and the listener protocol', async (t) => {
  const { asked, lookup } = lookupSpy();
  const { stack } = makeServer({ lookup });
  stack.deliver(subscribe({ contact: '<sip:console@198.51.100.7:49152;transport=wss>' }), { protocol: 'ws', connectionId: 'ws-3' });
  await settle();
  const [n] = stack.notifies();
  t.equal(n?.options.destination.protocol, 'ws', 'a Contact saying wss does not pick the wss transport for a ws connection');
  t.equal(n?.options.connectionId, 'ws-3');
  t.same(asked, []);
});

t.test('the WebSocket connection is gone: the NOTIFY fails with 503 and the subscription ends', async (t) => {
  const { asked, lookup } = lookupSpy();
  const { stack, server, store, now } = makeServer({ lookup });
  const [ok] = stack.deliver(subscribe({ contact: '<sip:x@abc.invalid;transport=ws>' }), { protocol: 'ws', connectionId: 'ws-1' });
  const localTag = tagOf(ok!.headers.get('to')!)!;
  await settle();
  stack.notifies()[0]!.answer(200);
  await settle();
  t.ok(server.notifier.find(localTag), 'subscribed');
  store.setTelephony('alice', inCall(now()));
  await settle();
  const n = stack.notifies()[1]!;
  t.equal(n.options.connectionId, 'ws-1');
  n.answer(503); // what the stack answers for a closed WebSocket connection
  await settle();
  t.equal(server.notifier.find(localTag), undefined, 'subscription ended');
  t.equal(server.notifier.size, 0);
  t.same(asked, []);
});

t.test('a refresh over a new WebSocket connection moves the NOTIFYs to it', async (t) => {
  const { stack } = makeServer();
  const req = subscribe({ contact: '<sip:x@abc.invalid;transport=ws>' });
  const [ok] = stack.deliver(req, { protocol: 'ws', connectionId: 'ws-1' });
  await settle();
  stack.notifies()[0]!.answer(200);
  stack.deliver(resubscribe(req, ok!, { expires: 600 }), { protocol: 'ws', connectionId: 'ws-2' });
  await settle();
  const n = stack.notifies()[1]!;
  t.equal(n.options.connectionId, 'ws-2');
  t.equal(n.options.destination.protocol, 'ws');
});

t.test('a TCP watcher with a ".invalid" Contact uses its connection without DNS', async (t) => {
  const { asked, lookup } = lookupSpy();
  const { stack } = makeServer({ lookup });
  stack.deliver(subscribe({ contact: '<sip:x@client.invalid;transport=tcp>' }), { protocol: 'tcp', connectionId: 'tcp-4' });
  await settle();
  const [n] = stack.notifies();
  t.same(n?.options, { destination: { protocol: 'tcp', address: 'client.invalid', port: 5060 }, connectionId: 'tcp-4' });
  t.same(asked, []);
});

t.test('a TCP watcher whose Contact host does not resolve falls back to its connection', async (t) => {
  const { asked, lookup } = lookupSpy();
  const { stack } = makeServer({ lookup });
  stack.deliver(subscribe({ contact: '<sip:x@pc17.corp.example:5070;transport=tcp>' }), { protocol: 'tcp', connectionId: 'tcp-9' });
  await settle();
  const [n] = stack.notifies();
  t.same(asked, ['pc17.corp.example'], 'DNS tried first');
  t.same(n?.options, { destination: { protocol: 'tcp', address: 'pc17.corp.example', port: 5070 }, connectionId: 'tcp-9' });
});

t.test('a TCP watcher whose Contact resolves gets the resolved address (and keeps its connection id)', async (t) => {
  const { asked, lookup } = lookupSpy(false);
  const { stack } = makeServer({ lookup });
  stack.deliver(subscribe({ contact: '<sip:x@pc17.corp.example;transport=tcp>' }), { protocol: 'tcp', connectionId: 'tcp-2' });
  await settle();
  t.same(asked, ['pc17.corp.example']);
  t.same(stack.notifies()[0]?.options, { destination: { protocol: 'tcp', address: '203.0.113.50', port: 5060 }, connectionId: 'tcp-2' });
});

t.test('a UDP watcher whose Contact does not resolve: no NOTIFY goes out and the subscription ends (as before)', async (t) => {
  const { lookup } = lookupSpy();
  const { stack, server } = makeServer({ lookup });
  const [ok] = stack.deliver(subscribe({ contact: '<sip:x@nowhere.invalid>' }));
  t.equal(ok?.status, 200);
  await settle();
  t.equal(stack.notifies().length, 0, 'nothing sent');
  t.equal(server.notifier.size, 0, 'subscription ended');
});

// ---------------------------------------------------------------------------
// with the real stack and a WebSocket client

interface WsClient {
  ws: WebSocket;
  /** SIP messages received, as parsed */
  next(match: (m: ReturnType<typeof parse>) => boolean, timeoutMs?: number): Promise<ReturnType<typeof parse>>;
}

function parse(data: Buffer) {
  const r = parseMessage(data, { maxSize: 65535, stream: false });
  if (!r.ok) throw new Error(`unparseable: ${r.reason}`);
  return r.message;
}

async function wsClient(url: string): Promise<WsClient> {
  const ws = new WebSocket(url, 'sip');
  const inbox: Array<ReturnType<typeof parse>> = [];
  const waiters = new Set<() => void>();
  ws.on('message', (data: Buffer) => {
    inbox.push(parse(Buffer.from(data)));
    for (const w of waiters) w();
  });
  await once(ws, 'open');
  return {
    ws,
    next(match, timeoutMs = 3000) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const i = inbox.findIndex(match);
          if (i < 0) return false;
          const [m] = inbox.splice(i, 1);
          waiters.delete(waiter);
          clearTimeout(timer);
          resolve(m!);
          return true;
        };
        const waiter = (): void => void check();
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error('no matching message'));
        }, timeoutMs);
        waiters.add(waiter);
        check();
      });
    },
  };
}

function wsSubscribe(): SipRequest {
  const h = new Headers();
  h.append('via', 'SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKws1');
  h.append('max-forwards', '70');
  h.append('from', '<sip:console@example.com>;tag=wsft');
  h.append('to', '<sip:alice@example.com>');
  h.append('call-id', 'ws-call-1');
  h.append('cseq', '1 SUBSCRIBE');
  h.append('event', 'presence');
  h.append('accept', 'application/pidf+xml');
  h.append('expires', '600');
  h.append('contact', '<sip:k3j2@df7jal23ls0d.invalid;transport=ws>');
  return createRequest('SUBSCRIBE', 'sip:alice@example.com', h);
}

t.test('over a real WebSocket: 200 and NOTIFYs on the connection; after it closes the subscription ends', async (t) => {
  const sip = await SipStack.start({
    listen: [{ protocol: 'ws', address: '127.0.0.1', port: 0 }],
    logger: silentLogger(),
    timers: { t1: 20, t2: 80, t4: 50 },
    wsPingIntervalMs: 0,
  });
  t.teardown(() => sip.close());
  const directory = makeDirectory();
  const store = new PresenceHub(directory);
  const wheel = new TimerWheel({ autoStart: false });
  t.teardown(() => wheel.close());
  const { asked, lookup } = lookupSpy();
  const server = new SimpleServer({ stack: sip, directory, store, config: CONFIG, logger: silentLogger(), wheel, lookup });
  t.teardown(() => server.close());
  const port = sip.localEndpoint('ws')!.port;

  const client = await wsClient(`ws://127.0.0.1:${port}/`);
  client.ws.send(serializeMessage(wsSubscribe()).toString('utf8'));
  const ok = await client.next((m) => m.kind === 'response');
  t.equal(ok.kind === 'response' ? ok.status : 0, 200);
  const notify = await client.next((m) => m.kind === 'request' && m.method === 'NOTIFY');
  t.equal(notify.headers.get('call-id'), 'ws-call-1', 'the initial NOTIFY came over the WebSocket');
  t.match(notify.headers.get('via'), /^SIP\/2\.0\/WS /, 'sent as WS');
  t.equal(parseSubscriptionState(notify.headers.get('subscription-state') ?? '')?.state, 'active');
  if (notify.kind === 'request') client.ws.send(serializeMessage(createResponse(notify, 200)).toString('utf8'));
  await new Promise((r) => setTimeout(r, 50));
  t.equal(server.notifier.size, 1);

  store.setTelephony('alice', inCall(Date.now()));
  const changed = await client.next((m) => m.kind === 'request' && m.method === 'NOTIFY');
  t.match(changed.body.toString('utf8'), /on-the-phone/, 'the change arrives on the same connection');
  if (changed.kind === 'request') client.ws.send(serializeMessage(createResponse(changed, 200)).toString('utf8'));
  await new Promise((r) => setTimeout(r, 50));

  client.ws.close(1000);
  await once(client.ws, 'close');
  await new Promise((r) => setTimeout(r, 50));
  store.setTelephony('alice', undefined);
  const until = Date.now() + 3000;
  while (server.notifier.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  t.equal(server.notifier.size, 0, 'the NOTIFY to the closed connection failed and ended the subscription');
  t.same(asked, [], 'never a DNS lookup for the .invalid host');
});
