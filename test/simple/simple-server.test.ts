import t from 'tap';
import { parsePidf } from '../../src/bodies/index.js';
import { PresenceHub } from '../../src/core/presence-hub.js';
import { Headers } from '../../src/sip/headers.js';
import { tagOf } from '../../src/sip/header-values.js';
import { createRequest, createResponse, type SipRequest } from '../../src/sip/message.js';
import { SipStack } from '../../src/sip/stack.js';
import { SimpleServer } from '../../src/simple/simple-server.js';
import { silentLogger } from '../../src/util/logger.js';
import { UdpClient } from '../helpers/udp-client.js';
import { CONFIG, makeDirectory, makeServer } from './helpers.js';

function request(method: string, extra: Array<[string, string]> = []): SipRequest {
  const h = new Headers();
  h.append('via', 'SIP/2.0/UDP 198.51.100.7:5062;branch=z9hG4bKopt1');
  h.append('from', '<sip:console@example.com>;tag=a1');
  h.append('to', '<sip:alice@example.com>');
  h.append('call-id', `m-${method}`);
  h.append('cseq', `1 ${method}`);
  for (const [n, v] of extra) h.append(n, v);
  return createRequest(method, 'sip:alice@example.com', h);
}

t.test('OPTIONS, stray NOTIFY, unsupported and unknown methods', async (t) => {
  const { stack } = makeServer();
  const options = stack.deliver(request('OPTIONS'))[0]!;
  t.equal(options.status, 200);
  t.equal(options.headers.get('allow'), 'SUBSCRIBE, NOTIFY, PUBLISH, OPTIONS');
  t.equal(options.headers.get('allow-events'), 'presence, dialog');
  t.same(options.headers.getAll('accept').sort(), [
    'application/cpim-pidf+xml',
    'application/dialog-info+xml',
    'application/pidf+xml',
  ]);
  t.equal(stack.deliver(request('NOTIFY', [['event', 'presence'], ['subscription-state', 'active']]))[0]?.status, 481);
  for (const m of ['MESSAGE', 'REFER', 'BYE', 'REGISTER']) {
    const res = stack.deliver(request(m))[0]!;
    t.equal(res.status, 405, m);
    t.equal(res.headers.get('allow'), 'SUBSCRIBE, NOTIFY, PUBLISH, OPTIONS');
  }
  t.equal(stack.deliver(request('FROBNICATE'))[0]?.status, 501);
  t.same(stack.deliver(request('ACK')), [], 'ACK is never answered');
});

t.test('real SipStack over UDP: SUBSCRIBE → 200 → NOTIFY, change → NOTIFY, unsubscribe', async (t) => {
  const sip = await SipStack.start({
    listen: [{ protocol: 'udp', address: '127.0.0.1', port: 0 }],
    logger: silentLogger(),
    timers: { t1: 50, t2: 200, t4: 200 },
  });
  const directory = makeDirectory();
  const store = new PresenceHub(directory);
  const server = new SimpleServer({ stack: sip, directory, store, config: CONFIG, logger: silentLogger() });
  const client = await UdpClient.open();
  t.teardown(async () => {
    server.close();
    await client.close();
    await sip.close();
  });
  const serverPort = sip.localEndpoint('udp')!.port;

  const h = new Headers();
  h.append('via', `SIP/2.0/UDP 127.0.0.1:${client.port};branch=z9hG4bKreal1;rport`);
  h.append('max-forwards', '70');
  h.append('from', '<sip:console@example.com>;tag=w1');
  h.append('to', '<sip:alice@example.com>');
  h.append('call-id', 'real-1@127.0.0.1');
  h.append('cseq', '1 SUBSCRIBE');
  h.append('event', 'presence');
  h.append('accept', 'application/pidf+xml');
  h.append('expires', '300');
  h.append('contact', `<sip:console@127.0.0.1:${client.port}>`);
  const sub = createRequest('SUBSCRIBE', 'sip:alice@example.com', h);
  client.send(sub, serverPort);

  const ok = await client.next((m) => m.kind === 'response');
  t.equal(ok.kind === 'response' && ok.status, 200);
  t.equal(ok.headers.get('expires'), '300');
  const ourTag = tagOf(ok.headers.get('to')!);
  t.ok(ourTag);

  // the next new NOTIFY, answered; a retransmission of one already answered (its 200 late on a loaded machine) is answered again and passed over
  let answeredCseq: string | undefined;
  const answer = async (): Promise<SipRequest> => {
    for (;;) {
      const n = await client.next((m) => m.kind === 'request' && m.method === 'NOTIFY');
      if (n.kind !== 'request') throw new Error('not a request');
      client.send(createResponse(n, 200), serverPort);
      if (n.headers.get('cseq') === answeredCseq) continue;
      answeredCseq = n.headers.get('cseq');
      return n;
    }
  };
  const first = await answer();
  t.equal(tagOf(first.headers.get('from')!), ourTag);
  t.equal(first.headers.get('subscription-state'), 'active;expires=300');
  t.equal(parsePidf(first.body).tuples[0]?.basic, 'open');

  store.setSip('alice', { basic: 'open', activities: ['away'], origin: 'test', at: Date.now() });
  const second = await answer();
  t.equal(second.headers.get('cseq'), '2 NOTIFY');
  t.same(parsePidf(second.body).persons[0]?.activities.map((a) => a.name), ['away']);

  const unsub = createRequest('SUBSCRIBE', 'sip:alice@example.com', h.clone());
  unsub.headers.set('via', `SIP/2.0/UDP 127.0.0.1:${client.port};branch=z9hG4bKreal2;rport`);
  unsub.headers.set('to', ok.headers.get('to')!);
  unsub.headers.set('cseq', '2 SUBSCRIBE');
  unsub.headers.set('expires', '0');
  client.send(unsub, serverPort);
  const ok2 = await client.next((m) => m.kind === 'response');
  t.equal(ok2.kind === 'response' && ok2.status, 200);
  const last = await answer();
  t.equal(last.headers.get('subscription-state'), 'terminated');
  t.equal(last.headers.get('cseq'), '3 NOTIFY');
  t.same(server.counts(), { subscriptions: { presence: 0, dialog: 0 }, publications: 0 });
});

t.test('real SipStack: an unanswered NOTIFY times out (Timer F) and ends the subscription', async (t) => {
  const sip = await SipStack.start({
    listen: [{ protocol: 'udp', address: '127.0.0.1', port: 0 }],
    logger: silentLogger(),
    timers: { t1: 10, t2: 40, t4: 40 },
  });
  const directory = makeDirectory();
  const store = new PresenceHub(directory);
  const server = new SimpleServer({ stack: sip, directory, store, config: CONFIG, logger: silentLogger() });
  const client = await UdpClient.open();
  t.teardown(async () => {
    server.close();
    await client.close();
    await sip.close();
  });
  const h = new Headers();
  h.append('via', `SIP/2.0/UDP 127.0.0.1:${client.port};branch=z9hG4bKsilent;rport`);
  h.append('from', '<sip:console@example.com>;tag=w2');
  h.append('to', '<sip:bob@example.com>');
  h.append('call-id', 'silent-1@127.0.0.1');
  h.append('cseq', '1 SUBSCRIBE');
  h.append('event', 'dialog');
  h.append('contact', `<sip:console@127.0.0.1:${client.port}>`);
  client.send(createRequest('SUBSCRIBE', 'sip:bob@example.com', h), sip.localEndpoint('udp')!.port);
  const ok = await client.next((m) => m.kind === 'response');
  t.equal(ok.kind === 'response' && ok.status, 200);
  t.equal(server.counts().subscriptions['dialog'], 1);
  // Never answer: Timer F = 64*T1 = 640 ms gives a local 408.
  const deadline = Date.now() + 5000;
  while (server.counts().subscriptions['dialog'] !== 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  t.equal(server.counts().subscriptions['dialog'], 0);
});

t.test('malformed requests get an answer, never an exception', async (t) => {
  const { stack } = makeServer();
  const cases: Array<[string, SipRequest]> = [];
  const badUri = request('SUBSCRIBE', [['event', 'presence'], ['contact', '<sip:x@198.51.100.7>']]);
  badUri.uri = 'http://example.com/alice';
  cases.push(['non-SIP Request-URI', badUri]);
  cases.push(['Contact *', request('SUBSCRIBE', [['event', 'presence'], ['contact', '*']])]);
  cases.push(['bad Event', request('SUBSCRIBE', [['event', ';;;'], ['contact', '<sip:x@198.51.100.7>']])]);
  const noCseq = request('SUBSCRIBE', [['event', 'presence'], ['contact', '<sip:x@198.51.100.7>']]);
  noCseq.headers.delete('cseq');
  cases.push(['no CSeq', noCseq]);
  const badCt = request('PUBLISH', [['event', 'presence'], ['content-type', '////']]);
  badCt.body = Buffer.from('<x/>');
  cases.push(['bad Content-Type', badCt]);
  const binary = request('PUBLISH', [['event', 'dialog'], ['content-type', 'application/dialog-info+xml']]);
  binary.body = Buffer.from([0xff, 0xfe, 0x00, 0x3c, 0x80]);
  cases.push(['binary body', binary]);
  for (const [name, req] of cases) {
    const responses = stack.deliver(req);
    t.equal(responses.length, 1, name);
    t.ok(responses[0]!.status >= 400 && responses[0]!.status < 500, `${name}: ${responses[0]?.status}`);
  }
});
