import t from 'tap';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Headers } from '../../src/sip/headers.js';
import { createRequest, createResponse, type SipMessage, type SipResponse } from '../../src/sip/message.js';
import { parseMessage } from '../../src/sip/parser.js';
import { SipStack, type IncomingRequest } from '../../src/sip/stack.js';
import { silentLogger } from '../../src/util/logger.js';

const TIMERS = { t1: 20, t2: 80, t4: 50 };

type Tap = { teardown(fn: () => unknown): void };

async function udpStack(t: Tap, extra: Partial<Parameters<typeof SipStack.start>[0]> = {}): Promise<SipStack> {
  const stack = await SipStack.start({
    listen: [{ protocol: 'udp', address: '127.0.0.1', port: 0 }],
    logger: silentLogger(),
    timers: TIMERS,
    ...extra,
  });
  t.teardown(() => stack.close());
  return stack;
}

/** A raw UDP peer that records what it receives. */
class UdpPeer {
  readonly received: SipMessage[] = [];
  readonly raw: Buffer[] = [];
  private waiters: Array<() => void> = [];
  private constructor(readonly socket: UdpSocket) {
    socket.on('message', (msg) => {
      this.raw.push(msg);
      const r = parseMessage(msg);
      if (r.ok) this.received.push(r.message);
      for (const w of this.waiters.splice(0)) w();
    });
  }
  static async open(t: Tap): Promise<UdpPeer> {
    const socket = createSocket('udp4');
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    const peer = new UdpPeer(socket);
    t.teardown(() => peer.close());
    return peer;
  }
  get port(): number {
    return this.socket.address().port;
  }
  send(text: string | Buffer, port: number): void {
    this.socket.send(typeof text === 'string' ? Buffer.from(text, 'latin1') : text, port, '127.0.0.1');
  }
  async waitFor(n: number, ms = 2000): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.raw.length < n && Date.now() < deadline) {
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), sleep(deadline - Date.now())]);
    }
  }
  private closed = false;
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.close();
  }
}

function subscribeText(o: { port: number; branch?: string; viaPort?: number; rport?: boolean; cseq?: string; method?: string; fromTag?: string } ): string {
  const method = o.method ?? 'SUBSCRIBE';
  const via = `SIP/2.0/UDP 127.0.0.1:${o.viaPort ?? o.port};branch=${o.branch ?? 'z9hG4bKraw1'}${o.rport === false ? '' : ';rport'}`;
  return [
    `${method} sip:alice@127.0.0.1 SIP/2.0`,
    `Via: ${via}`,
    'Max-Forwards: 70',
    `From: <sip:bob@example.com>;tag=${o.fromTag ?? 'ft1'}`,
    'To: <sip:alice@example.com>',
    'Call-ID: raw-call-1',
    `CSeq: ${o.cseq ?? `1 ${method}`}`,
    'Event: presence',
    'Expires: 600',
    `Contact: <sip:bob@127.0.0.1:${o.port}>`,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

function status(m: SipMessage | undefined): number | undefined {
  return m?.kind === 'response' ? m.status : undefined;
}

t.test('retransmitted request absorbed: handler once, same response re-sent', async (t) => {
  const stack = await udpStack(t, { userAgent: 'presence-gateway-test' });
  const peer = await UdpPeer.open(t);
  const seen: IncomingRequest[] = [];
  stack.onRequest((req) => {
    seen.push(req);
    req.respond(createResponse(req.request, 200, undefined, { toTag: 'gw1' }));
  });
  const port = stack.localEndpoint('udp')!.port;
  peer.send(subscribeText({ port: peer.port }), port);
  await peer.waitFor(1);
  peer.send(subscribeText({ port: peer.port }), port);
  await peer.waitFor(2);
  t.equal(seen.length, 1, 'handler called once');
  t.equal(peer.raw.length, 2);
  t.equal(peer.raw[0]!.toString(), peer.raw[1]!.toString(), 'same response re-sent');
  t.equal(status(peer.received[0]), 200);
  t.equal(peer.received[0]!.headers.get('server'), 'presence-gateway-test');
  t.same(seen[0]!.source, { protocol: 'udp', address: '127.0.0.1', port: peer.port });
  t.equal(seen[0]!.local.port, port);
  t.equal(seen[0]!.connectionId, undefined);
});

t.test('INVITE → 405 with Allow; CANCEL → 481; ACK dropped', async (t) => {
  const stack = await udpStack(t, { allow: ['SUBSCRIBE', 'OPTIONS'] });
  let called = 0;
  stack.onRequest(() => called++);
  const peer = await UdpPeer.open(t);
  const port = stack.localEndpoint('udp')!.port;
  peer.send(subscribeText({ port: peer.port, method: 'INVITE', branch: 'z9hG4bKinv' }), port);
  await peer.waitFor(1);
  t.equal(status(peer.received[0]), 405);
  t.equal(peer.received[0]!.headers.get('allow'), 'SUBSCRIBE, OPTIONS');
  peer.send(subscribeText({ port: peer.port, method: 'ACK', branch: 'z9hG4bKinv' }), port);
  peer.send(subscribeText({ port: peer.port, method: 'CANCEL', branch: 'z9hG4bKcxl' }), port);
  await peer.waitFor(2);
  await sleep(30);
  t.equal(peer.raw.length, 2, 'nothing for the ACK');
  t.equal(status(peer.received[1]), 481);
  t.equal(called, 0);
});

t.test('default Allow lists the presence methods', async (t) => {
  const stack = await udpStack(t);
  const peer = await UdpPeer.open(t);
  peer.send(subscribeText({ port: peer.port, method: 'INVITE', branch: 'z9hG4bKinv2' }), stack.localEndpoint('udp')!.port);
  await peer.waitFor(1);
  t.equal(peer.received[0]!.headers.get('allow'), 'SUBSCRIBE, NOTIFY, PUBLISH, OPTIONS');
});

t.test('bad request → 400 with the parser reason; garbage dropped', async (t) => {
  const stack = await udpStack(t);
  let called = 0;
  stack.onRequest(() => called++);
  const peer = await UdpPeer.open(t);
  const port = stack.localEndpoint('udp')!.port;
  peer.send('this is not SIP\r\n\r\n', port);
  peer.send(subscribeText({ port: peer.port, branch: 'z9hG4bKbad' }).replace('Expires: 600', 'Expires: soon'), port);
  await peer.waitFor(1);
  await sleep(30);
  t.equal(peer.raw.length, 1, 'only the answerable request got a response');
  const res = peer.received[0] as SipResponse | undefined;
  t.equal(res?.status, 400);
  t.match(res?.reason, /^Bad Request/);
  t.match(res?.reason, /Expires/i, 'reason names the problem');
  t.equal(res?.headers.get('call-id'), 'raw-call-1');
  t.equal(called, 0);
});

t.test('response routing: rport sends to the source port, otherwise to the Via port', async (t) => {
  const stack = await udpStack(t);
  stack.onRequest((req) => req.respond(createResponse(req.request, 200, undefined, { toTag: 'x' })));
  const sender = await UdpPeer.open(t);
  const other = await UdpPeer.open(t);
  const port = stack.localEndpoint('udp')!.port;
  // Via names the other socket's port; with rport the answer still comes to the sender
  sender.send(subscribeText({ port: sender.port, viaPort: other.port, branch: 'z9hG4bKr1', rport: true }), port);
  await sender.waitFor(1);
  t.equal(sender.raw.length, 1);
  t.match(sender.received[0]!.headers.get('via')!, new RegExp(`;rport=${sender.port}`));
  t.match(sender.received[0]!.headers.get('via')!, /;received=127\.0\.0\.1/);
  // without rport the Via sent-by port is used
  sender.send(subscribeText({ port: sender.port, viaPort: other.port, branch: 'z9hG4bKr2', rport: false, cseq: '2 SUBSCRIBE' }), port);
  await other.waitFor(1);
  t.equal(other.raw.length, 1);
  t.equal(sender.raw.length, 1);
  t.notMatch(other.received[0]!.headers.get('via')!, /received=/, 'no received when the source matches sent-by');
});

t.test('merged request → 482', async (t) => {
  const stack = await udpStack(t);
  const seen: IncomingRequest[] = [];
  stack.onRequest((req) => seen.push(req)); // no answer yet: the transaction stays live
  const peer = await UdpPeer.open(t);
  const port = stack.localEndpoint('udp')!.port;
  peer.send(subscribeText({ port: peer.port, branch: 'z9hG4bKm1' }), port);
  peer.send(subscribeText({ port: peer.port, branch: 'z9hG4bKm2' }), port);
  await peer.waitFor(1);
  t.equal(status(peer.received[0]), 482);
  t.equal(seen.length, 1);
});

t.test('handler that throws gets a 500 out; missing handler gives 503', async (t) => {
  const stack = await udpStack(t);
  const peer = await UdpPeer.open(t);
  const port = stack.localEndpoint('udp')!.port;
  peer.send(subscribeText({ port: peer.port, branch: 'z9hG4bKh1' }), port);
  await peer.waitFor(1);
  t.equal(status(peer.received[0]), 503);
  stack.onRequest(() => {
    throw new Error('boom');
  });
  peer.send(subscribeText({ port: peer.port, branch: 'z9hG4bKh2', cseq: '2 SUBSCRIBE' }), port);
  await peer.waitFor(2);
  t.equal(status(peer.received[1]), 500);
});

t.test('oversize datagram dropped', async (t) => {
  const stack = await udpStack(t, { maxMessageSize: 1000 });
  let called = 0;
  stack.onRequest(() => called++);
  const peer = await UdpPeer.open(t);
  const big = subscribeText({ port: peer.port, branch: 'z9hG4bKbig' }).replace('Content-Length: 0', `X-Pad: ${'p'.repeat(1200)}\r\nContent-Length: 0`);
  peer.send(big, stack.localEndpoint('udp')!.port);
  await sleep(80);
  t.equal(called, 0);
  t.equal(peer.raw.length, 0);
});

function notify(target: string): ReturnType<typeof createRequest> {
  return createRequest(
    'NOTIFY',
    target,
    Headers.from([
      ['From', '<sip:alice@example.com>;tag=gw1'],
      ['To', '<sip:bob@example.com>;tag=ft1'],
      ['Call-ID', 'n-call-1'],
      ['CSeq', '1 NOTIFY'],
      ['Event', 'presence'],
      ['Subscription-State', 'active;expires=600'],
    ]),
  );
}

t.test('client over UDP: Timer E retransmissions counted, Timer F → 408', async (t) => {
  const stack = await udpStack(t, { userAgent: 'pg/1' });
  const peer = await UdpPeer.open(t); // never answers
  const res = await stack.sendRequest(notify(`sip:bob@127.0.0.1:${peer.port}`), {
    destination: { protocol: 'udp', address: '127.0.0.1', port: peer.port },
  });
  t.equal(res.status, 408);
  // 0, 20, 60, 140, then every 80 ms until 1280 ms: about 18 sends; event-loop delay can only lower it
  t.ok(peer.raw.length >= 8 && peer.raw.length <= 18, `${peer.raw.length} sends`);
  const first = peer.received[0]!;
  t.equal(first.kind, 'request');
  t.equal(first.headers.get('max-forwards'), '70');
  t.equal(first.headers.get('user-agent'), 'pg/1');
  t.match(first.headers.get('via')!, new RegExp(`^SIP/2\\.0/UDP 127\\.0\\.0\\.1:${stack.localEndpoint('udp')!.port};branch=z9hG4bK[0-9a-f]+;rport$`));
  t.equal(stack.stats().clientTransactions, 0);
});

t.test('stack to stack: request, provisional, final; response to unknown transaction dropped', async (t) => {
  const a = await udpStack(t);
  const b = await udpStack(t);
  b.onRequest((req) => {
    req.respond(createResponse(req.request, 100));
    setTimeout(() => req.respond(createResponse(req.request, 200, undefined, { toTag: 'b1' })), 10);
  });
  const bPort = b.localEndpoint('udp')!.port;
  const prov: number[] = [];
  const res = await a.sendRequest(notify(`sip:bob@127.0.0.1:${bPort}`), {
    destination: { protocol: 'udp', address: '127.0.0.1', port: bPort },
    onProvisional: (r) => prov.push(r.status),
  });
  t.equal(res.status, 200);
  t.same(prov, [100]);
  t.equal(res.headers.get('call-id'), 'n-call-1');

  // a stray response: no crash, no effect; the stack keeps working
  const peer = await UdpPeer.open(t);
  peer.send(
    'SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKstray\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: s\r\nCSeq: 1 NOTIFY\r\nContent-Length: 0\r\n\r\n',
    a.localEndpoint('udp')!.port,
  );
  await sleep(20);
  const again = await a.sendRequest(notify(`sip:bob@127.0.0.1:${bPort}`), { destination: { protocol: 'udp', address: '127.0.0.1', port: bPort } });
  t.equal(again.status, 200);
});

t.test('close resolves pending requests with 503 and is idempotent', async (t) => {
  const stack = await udpStack(t);
  const peer = await UdpPeer.open(t);
  const p = stack.sendRequest(notify(`sip:bob@127.0.0.1:${peer.port}`), {
    destination: { protocol: 'udp', address: '127.0.0.1', port: peer.port },
  });
  await Promise.all([stack.close(), stack.close()]);
  t.equal((await p).status, 503);
});

t.test('unsupported destination protocol → local 503', async (t) => {
  const stack = await udpStack(t);
  const res = await stack.sendRequest(notify('sip:bob@127.0.0.1'), { destination: { protocol: 'ws', address: '127.0.0.1', port: 80 } });
  t.equal(res.status, 503);
});

t.test('UDP keep-alives and STUN-looking datagrams are ignored; leading CRLF tolerated', async (t) => {
  const stack = await udpStack(t);
  let called = 0;
  stack.onRequest((req) => {
    called++;
    req.respond(createResponse(req.request, 200, undefined, { toTag: 'k' }));
  });
  const peer = await UdpPeer.open(t);
  const port = stack.localEndpoint('udp')!.port;
  peer.send('\r\n\r\n', port);
  peer.send(Buffer.from([0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42]), port);
  peer.send('\r\n' + subscribeText({ port: peer.port, branch: 'z9hG4bKcrlf' }), port);
  await peer.waitFor(1);
  await sleep(20);
  t.equal(called, 1);
  t.equal(peer.raw.length, 1, 'only the SUBSCRIBE was answered');
  t.equal(status(peer.received[0]), 200);
});
