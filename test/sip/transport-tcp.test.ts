import t from 'tap';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Headers } from '../../src/sip/headers.js';
import { createRequest, createResponse, type SipMessage, type SipRequest } from '../../src/sip/message.js';
import { parseMessage, StreamFramer } from '../../src/sip/parser.js';
import { serializeMessage } from '../../src/sip/serializer.js';
import { SipStack, type IncomingRequest, type SipStackOptions } from '../../src/sip/stack.js';
import { silentLogger } from '../../src/util/logger.js';

type Tap = { teardown(fn: () => unknown): void };
const TIMERS = { t1: 20, t2: 80, t4: 50 };

async function tcpStack(t: Tap, extra: Partial<SipStackOptions> = {}): Promise<SipStack> {
  const stack = await SipStack.start({
    listen: [
      { protocol: 'udp', address: '127.0.0.1', port: 0 },
      { protocol: 'tcp', address: '127.0.0.1', port: 0 },
    ],
    logger: silentLogger(),
    timers: TIMERS,
    ...extra,
  });
  t.teardown(() => stack.close());
  return stack;
}

/** A raw TCP client that frames what it receives. */
class TcpPeer {
  readonly messages: SipMessage[] = [];
  rawText = '';
  closed = false;
  private readonly framer = new StreamFramer({ maxMessageSize: 100_000 });
  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.rawText += chunk.toString('latin1');
      for (const ev of this.framer.push(chunk)) {
        if (ev.type !== 'message') continue;
        const r = parseMessage(ev.data, { stream: true });
        if (r.ok) this.messages.push(r.message);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
    });
  }
  static async open(t: Tap, port: number): Promise<TcpPeer> {
    const socket = connect({ host: '127.0.0.1', port });
    await once(socket, 'connect');
    const peer = new TcpPeer(socket);
    t.teardown(() => socket.destroy());
    return peer;
  }
  get port(): number {
    return this.socket.localPort!;
  }
  async until(check: () => boolean, ms = 2000): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!check() && Date.now() < deadline) await sleep(5);
    return check();
  }
}

function subscribeText(port: number, branch: string, cseq = 1, extraHeaders = ''): string {
  return (
    [
      'SUBSCRIBE sip:alice@127.0.0.1 SIP/2.0',
      `Via: SIP/2.0/TCP 127.0.0.1:${port};branch=${branch};rport`,
      'Max-Forwards: 70',
      `From: <sip:bob@example.com>;tag=tcp${branch}`,
      'To: <sip:alice@example.com>',
      `Call-ID: tcp-call-${branch}`,
      `CSeq: ${cseq} SUBSCRIBE`,
      'Event: presence',
      `Contact: <sip:bob@127.0.0.1:${port};transport=tcp>`,
    ].join('\r\n') +
    '\r\n' +
    extraHeaders +
    'Content-Length: 0\r\n\r\n'
  );
}

function answer(req: IncomingRequest, status = 200): void {
  req.respond(createResponse(req.request, status, undefined, { toTag: 'gw' }));
}

t.test('TCP framing across chunk boundaries and two messages in one chunk', async (t) => {
  const stack = await tcpStack(t);
  const seen: IncomingRequest[] = [];
  stack.onRequest((req) => {
    seen.push(req);
    answer(req);
  });
  const peer = await TcpPeer.open(t, stack.localEndpoint('tcp')!.port);
  const one = Buffer.from(subscribeText(peer.port, 'z9hG4bKt1'), 'latin1');
  peer.socket.write(one.subarray(0, 10));
  await sleep(15);
  peer.socket.write(one.subarray(10, 100));
  await sleep(15);
  peer.socket.write(one.subarray(100));
  t.ok(await peer.until(() => peer.messages.length === 1), 'first response');
  t.equal(seen.length, 1);
  t.equal(seen[0]!.source.protocol, 'tcp');
  t.ok(seen[0]!.connectionId, 'connectionId given');

  const two = subscribeText(peer.port, 'z9hG4bKt2', 2) + subscribeText(peer.port, 'z9hG4bKt3', 3);
  peer.socket.write(two);
  t.ok(await peer.until(() => peer.messages.length === 3), 'two more responses');
  t.equal(seen.length, 3);
  t.equal(seen[1]!.connectionId, seen[0]!.connectionId, 'same connection id');
  t.same(
    peer.messages.map((m) => m.headers.get('cseq')),
    ['1 SUBSCRIBE', '2 SUBSCRIBE', '3 SUBSCRIBE'],
  );
  t.equal(stack.stats().serverTransactions, 0, 'Timer J is zero over TCP');
});

t.test('§18.2.2: response after the connection closed goes to a new connection to the Via address', async (t) => {
  const listener = createServer();
  const accepted: Socket[] = [];
  let text = '';
  listener.on('connection', (s) => {
    accepted.push(s);
    s.on('data', (c: Buffer) => (text += c.toString('latin1')));
  });
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  t.teardown(() => closeServer(listener, accepted));
  const listenPort = (listener.address() as { port: number }).port;

  const stack = await tcpStack(t);
  const seen: IncomingRequest[] = [];
  stack.onRequest((req) => seen.push(req));
  const peer = await TcpPeer.open(t, stack.localEndpoint('tcp')!.port);
  // sent-by names the listener; the request comes from an ephemeral port
  peer.socket.write(subscribeText(listenPort, 'z9hG4bKgone'));
  t.ok(await peer.until(() => seen.length === 1));
  peer.socket.destroy();
  await sleep(30);
  answer(seen[0]!);
  const ok = await peer.until(() => /^SIP\/2\.0 200 OK\r\n/.test(text));
  t.ok(ok, 'response arrived at the Via sent-by listener');
});

t.test('double-CRLF keep-alive answered with CRLF', async (t) => {
  const stack = await tcpStack(t);
  const peer = await TcpPeer.open(t, stack.localEndpoint('tcp')!.port);
  peer.socket.write('\r\n\r\n');
  t.ok(await peer.until(() => peer.rawText.length > 0));
  await sleep(20);
  t.equal(peer.rawText, '\r\n', 'a single CRLF pong');
});

t.test('NOTIFY goes back over the subscriber connection (connectionId reuse)', async (t) => {
  const stack = await tcpStack(t);
  const seen: IncomingRequest[] = [];
  stack.onRequest((req) => {
    seen.push(req);
    answer(req);
  });
  const peer = await TcpPeer.open(t, stack.localEndpoint('tcp')!.port);
  peer.socket.write(subscribeText(peer.port, 'z9hG4bKs1'));
  t.ok(await peer.until(() => peer.messages.length === 1));
  const sub = seen[0]!;
  // the Contact port is the client's ephemeral port, not a listener; the connection must be reused
  const notify = createRequest(
    'NOTIFY',
    `sip:bob@127.0.0.1:${peer.port};transport=tcp`,
    Headers.from([
      ['From', '<sip:alice@example.com>;tag=gw'],
      ['To', `<sip:bob@example.com>;tag=tcpz9hG4bKs1`],
      ['Call-ID', 'tcp-call-z9hG4bKs1'],
      ['CSeq', '1 NOTIFY'],
      ['Event', 'presence'],
      ['Subscription-State', 'active;expires=600'],
    ]),
  );
  const pending = stack.sendRequest(notify, {
    destination: { protocol: 'tcp', address: '127.0.0.1', port: 1 },
    connectionId: sub.connectionId!,
  });
  t.ok(await peer.until(() => peer.messages.length === 2), 'NOTIFY arrived on the same socket');
  const got = peer.messages[1] as SipRequest;
  t.equal(got.method, 'NOTIFY');
  t.match(got.headers.get('via')!, /^SIP\/2\.0\/TCP /);
  peer.socket.write(serializeMessage(createResponse(got, 200)));
  t.equal((await pending).status, 200);
  t.equal(stack.stats().tcpConnections, 1, 'no second connection opened');
});

t.test('new request reuses an open connection to the same address:port', async (t) => {
  const server = createServer();
  const accepted: Socket[] = [];
  const received: SipRequest[] = [];
  server.on('connection', (s) => {
    accepted.push(s);
    const framer = new StreamFramer({ maxMessageSize: 65535 });
    s.on('data', (c: Buffer) => {
      for (const ev of framer.push(c)) {
        if (ev.type !== 'message') continue;
        const r = parseMessage(ev.data, { stream: true });
        if (r.ok && r.message.kind === 'request') {
          received.push(r.message);
          s.write(serializeMessage(createResponse(r.message, 200)));
        }
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => closeServer(server, accepted));
  const port = (server.address() as { port: number }).port;
  const stack = await tcpStack(t);
  const dest = { protocol: 'tcp' as const, address: '127.0.0.1', port };
  const [r1, r2] = await Promise.all([
    stack.sendRequest(options(1), { destination: dest }),
    stack.sendRequest(options(2), { destination: dest }),
  ]);
  const r3 = await stack.sendRequest(options(3), { destination: dest });
  t.same([r1.status, r2.status, r3.status], [200, 200, 200]);
  t.equal(received.length, 3);
  t.equal(accepted.length, 1, 'one connection for all three');
});

function options(seq: number): SipRequest {
  return createRequest(
    'OPTIONS',
    'sip:peer@127.0.0.1',
    Headers.from([
      ['From', '<sip:gw@example.com>;tag=o1'],
      ['To', '<sip:peer@example.com>'],
      ['Call-ID', `opt-${seq}`],
      ['CSeq', `${seq} OPTIONS`],
    ]),
  );
}

function closeServer(server: Server, sockets: Socket[]): Promise<void> {
  for (const s of sockets) s.destroy();
  return new Promise((r) => server.close(() => r()));
}

t.test('client over TCP: no Timer E retransmissions, Timer F → 408', async (t) => {
  const server = createServer();
  const accepted: Socket[] = [];
  let text = '';
  server.on('connection', (s) => {
    accepted.push(s);
    s.on('data', (c: Buffer) => (text += c.toString('latin1')));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => closeServer(server, accepted));
  const stack = await tcpStack(t);
  const res = await stack.sendRequest(options(1), {
    destination: { protocol: 'tcp', address: '127.0.0.1', port: (server.address() as { port: number }).port },
  });
  t.equal(res.status, 408);
  t.equal(text.split('OPTIONS sip:').length - 1, 1, 'sent exactly once');
});

t.test('connection refused → 503', async (t) => {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  const stack = await tcpStack(t);
  const res = await stack.sendRequest(options(1), { destination: { protocol: 'tcp', address: '127.0.0.1', port } });
  t.equal(res.status, 503);
  t.equal(stack.stats().clientTransactions, 0);
});

function bigNotify(): SipRequest {
  const req = options(9);
  req.method = 'NOTIFY';
  req.headers.set('cseq', '9 NOTIFY');
  req.headers.set('content-type', 'application/pidf+xml');
  req.body = Buffer.from(`<?xml version="1.0"?><presence>${'<note>x</note>'.repeat(120)}</presence>`);
  return req;
}

t.test('§18.1.1: request over 1300 bytes bound for UDP goes over TCP', async (t) => {
  const server = createServer();
  const accepted: Socket[] = [];
  let got: SipRequest | undefined;
  server.on('connection', (s) => {
    accepted.push(s);
    const framer = new StreamFramer({ maxMessageSize: 65535 });
    s.on('data', (c: Buffer) => {
      for (const ev of framer.push(c)) {
        if (ev.type !== 'message') continue;
        const r = parseMessage(ev.data, { stream: true });
        if (r.ok && r.message.kind === 'request') {
          got = r.message;
          s.write(serializeMessage(createResponse(r.message, 200)));
        }
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => closeServer(server, accepted));
  const stack = await tcpStack(t);
  const port = (server.address() as { port: number }).port;
  const res = await stack.sendRequest(bigNotify(), { destination: { protocol: 'udp', address: '127.0.0.1', port } });
  t.equal(res.status, 200);
  t.ok(got);
  t.match(got!.headers.get('via')!, new RegExp(`^SIP/2\\.0/TCP 127\\.0\\.0\\.1:${stack.localEndpoint('tcp')!.port};`));
  t.ok(got!.body.length > 1300);
});

t.test('§18.1.1: falls back to UDP when nothing listens on TCP', async (t) => {
  const udp = createSocket('udp4');
  udp.bind(0, '127.0.0.1');
  await once(udp, 'listening');
  t.teardown(() => udp.close());
  const received: SipRequest[] = [];
  udp.on('message', (msg, rinfo) => {
    const r = parseMessage(msg);
    if (r.ok && r.message.kind === 'request') {
      received.push(r.message);
      udp.send(serializeMessage(createResponse(r.message, 200)), rinfo.port, rinfo.address);
    }
  });
  const stack = await tcpStack(t);
  const res = await stack.sendRequest(bigNotify(), { destination: { protocol: 'udp', address: '127.0.0.1', port: udp.address().port } });
  t.equal(res.status, 200);
  t.equal(received.length, 1);
  t.match(received[0]!.headers.get('via')!, new RegExp(`^SIP/2\\.0/UDP 127\\.0\\.0\\.1:${stack.localEndpoint('udp')!.port};`));
});

t.test('maxConnections: extra accepted sockets are closed at once', async (t) => {
  const stack = await tcpStack(t, { maxConnections: 2 });
  const port = stack.localEndpoint('tcp')!.port;
  const a = await TcpPeer.open(t, port);
  const b = await TcpPeer.open(t, port);
  await sleep(20);
  const c = await TcpPeer.open(t, port);
  t.ok(await c.until(() => c.closed, 1000), 'third closed');
  t.equal(a.closed, false);
  t.equal(b.closed, false);
  t.equal(stack.stats().tcpConnections, 2);
});

t.test('oversize message on a stream: 513, then the connection is closed', async (t) => {
  const stack = await tcpStack(t, { maxMessageSize: 2000 });
  let called = 0;
  stack.onRequest(() => called++);
  const peer = await TcpPeer.open(t, stack.localEndpoint('tcp')!.port);
  const text = subscribeText(peer.port, 'z9hG4bKbig').replace('Content-Length: 0', 'Content-Length: 5000');
  peer.socket.write(text + 'x'.repeat(5000));
  t.ok(await peer.until(() => peer.closed), 'closed');
  t.equal(called, 0);
  t.match(peer.rawText, /^SIP\/2\.0 513 Message Too Large\r\n/);
});

t.test('idle connections are closed; ones with live transactions are kept', async (t) => {
  const stack = await tcpStack(t, { tcpIdleTimeoutMs: 80 });
  const held: IncomingRequest[] = [];
  stack.onRequest((req) => held.push(req)); // never answered: transaction stays live
  const port = stack.localEndpoint('tcp')!.port;
  const idle = await TcpPeer.open(t, port);
  const busy = await TcpPeer.open(t, port);
  busy.socket.write(subscribeText(busy.port, 'z9hG4bKbusy'));
  t.ok(await idle.until(() => idle.closed, 2000), 'idle connection closed');
  t.equal(busy.closed, false, 'connection with a live transaction kept');
  answer(held[0]!);
  t.ok(await busy.until(() => busy.closed, 2000), 'closed once idle');
  t.equal(busy.messages.length, 1, 'the response was delivered first');
});

t.test('garbage on a stream does not crash the stack', async (t) => {
  const stack = await tcpStack(t);
  const seen: IncomingRequest[] = [];
  stack.onRequest((req) => {
    seen.push(req);
    answer(req);
  });
  const port = stack.localEndpoint('tcp')!.port;
  const bad = await TcpPeer.open(t, port);
  bad.socket.write('GARBAGE\r\nContent-Length: nope\r\n\r\n');
  await bad.until(() => bad.closed, 1000);
  const good = await TcpPeer.open(t, port);
  good.socket.write(subscribeText(good.port, 'z9hG4bKok'));
  t.ok(await good.until(() => good.messages.length === 1));
  t.equal(seen.length, 1);
});
