import t from 'tap';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket, type RawData } from 'ws';
import { createCertificateAuthority, createServerCertificate } from '../../src/graph-simulator/certs.js';
import { Headers } from '../../src/sip/headers.js';
import { createRequest, createResponse, type SipMessage, type SipRequest, type SipResponse } from '../../src/sip/message.js';
import { parseMessage } from '../../src/sip/parser.js';
import { serializeMessage } from '../../src/sip/serializer.js';
import { SipStack, type IncomingRequest } from '../../src/sip/stack.js';
import { silentLogger } from '../../src/util/logger.js';

type Tap = { teardown(fn: () => unknown): void };
const TIMERS = { t1: 20, t2: 80, t4: 50 };

const ca = createCertificateAuthority('sip ws test CA');
const serverCert = createServerCertificate(ca);

async function wsStack(t: Tap, path?: string): Promise<SipStack> {
  const stack = await SipStack.start({
    listen: [
      { protocol: 'udp', address: '127.0.0.1', port: 0 },
      { protocol: 'ws', address: '127.0.0.1', port: 0, ...(path !== undefined ? { path } : {}) },
      { protocol: 'wss', address: '127.0.0.1', port: 0, tls: { cert: serverCert.certPem, key: serverCert.keyPem } },
    ],
    logger: silentLogger(),
    timers: TIMERS,
  });
  t.teardown(() => stack.close());
  return stack;
}

/** A browser-like SIP WebSocket client: one SIP message per frame, parsed as it arrives. */
class WsPeer {
  readonly messages: SipMessage[] = [];
  readonly frames: Array<{ text: string; binary: boolean }> = [];
  closed = false;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: RawData, binary: boolean) => {
      const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      this.frames.push({ text: buf.toString('utf8'), binary });
      const r = parseMessage(buf);
      if (r.ok) this.messages.push(r.message);
    });
    ws.on('close', () => {
      this.closed = true;
    });
    ws.on('error', () => undefined);
  }
  static async open(t: Tap, url: string, options: { ca?: string } = {}): Promise<WsPeer> {
    const ws = new WebSocket(url, 'sip', options.ca !== undefined ? { ca: options.ca } : {});
    t.teardown(() => ws.terminate());
    await once(ws, 'open');
    return new WsPeer(ws);
  }
  async until(check: () => boolean, ms = 2000): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!check() && Date.now() < deadline) await sleep(5);
    return check();
  }
}

/** What a browser UA sends: a made-up .invalid host in Via and Contact, no Content-Length. */
function subscribeText(branch: string, proto = 'WS'): string {
  return [
    'SUBSCRIBE sip:alice@example.com SIP/2.0',
    `Via: SIP/2.0/${proto} df7jal23ls0d.invalid;branch=${branch}`,
    'Max-Forwards: 70',
    `From: <sip:bob@example.com>;tag=ws${branch}`,
    'To: <sip:alice@example.com>',
    `Call-ID: ws-call-${branch}`,
    'CSeq: 1 SUBSCRIBE',
    'Event: presence',
    `Contact: <sip:k3l2j@df7jal23ls0d.invalid;transport=${proto.toLowerCase()}>`,
    'Expires: 600',
    '',
    '',
  ].join('\r\n');
}

function notifyFor(sub: SipRequest): SipRequest {
  return createRequest(
    'NOTIFY',
    'sip:k3l2j@df7jal23ls0d.invalid;transport=ws',
    Headers.from([
      ['From', '<sip:alice@example.com>;tag=gw'],
      ['To', sub.headers.get('from')!],
      ['Call-ID', sub.headers.get('call-id')!],
      ['CSeq', '1 NOTIFY'],
      ['Event', 'presence'],
      ['Subscription-State', 'active;expires=600'],
    ]),
  );
}

function url(stack: SipStack, protocol: 'ws' | 'wss', path = '/'): string {
  return `${protocol}://127.0.0.1:${stack.localEndpoint(protocol)!.port}${path}`;
}

t.test('a SUBSCRIBE over WS is answered on the connection; a NOTIFY follows over the same connection', async (t) => {
  const stack = await wsStack(t);
  const seen: IncomingRequest[] = [];
  stack.onRequest((req) => {
    seen.push(req);
    req.respond(createResponse(req.request, 200, undefined, { toTag: 'gw' }));
  });
  const peer = await WsPeer.open(t, url(stack, 'ws'));
  t.equal(peer.ws.protocol, 'sip', 'subprotocol sip negotiated');
  peer.ws.send(subscribeText('z9hG4bKw1'));
  t.ok(await peer.until(() => peer.messages.length === 1), 'response arrived');
  const res = peer.messages[0] as SipResponse;
  t.equal(res.kind, 'response');
  t.equal(res.status, 200);
  t.equal(peer.frames[0]!.binary, false, 'a text frame');
  t.match(res.headers.get('via')!, /^SIP\/2\.0\/WS df7jal23ls0d\.invalid;branch=z9hG4bKw1;received=127\.0\.0\.1/);

  const sub = seen[0]!;
  t.equal(sub.source.protocol, 'ws');
  t.equal(sub.local.protocol, 'ws');
  t.match(sub.connectionId, /^ws-\d+$/);
  t.same(stack.advertisedEndpoint('ws'), { protocol: 'ws', address: '127.0.0.1', port: stack.localEndpoint('ws')!.port });
  t.equal(stack.stats().wsConnections, 1);

  // the Contact host cannot be resolved: only the connection reaches the browser
  const pending = stack.sendRequest(notifyFor(sub.request), {
    destination: { protocol: 'ws', address: 'df7jal23ls0d.invalid', port: 5060 },
    connectionId: sub.connectionId!,
  });
  t.ok(await peer.until(() => peer.messages.length === 2), 'NOTIFY arrived on the WebSocket');
  const notify = peer.messages[1] as SipRequest;
  t.equal(notify.method, 'NOTIFY');
  t.match(notify.headers.get('via')!, /^SIP\/2\.0\/WS 127\.0\.0\.1:\d+;branch=/, 'Via transport WS');
  peer.ws.send(serializeMessage(createResponse(notify, 200)), { binary: true });
  t.equal((await pending).status, 200, 'the response came back (binary frame) and matched');
});

t.test('WSS: TLS WebSocket with Via WSS', async (t) => {
  const stack = await wsStack(t);
  const seen: IncomingRequest[] = [];
  stack.onRequest((req) => {
    seen.push(req);
    req.respond(createResponse(req.request, 202, undefined, { toTag: 'gw' }));
  });
  const peer = await WsPeer.open(t, url(stack, 'wss'), { ca: ca.certPem });
  peer.ws.send(subscribeText('z9hG4bKs1', 'WSS'));
  t.ok(await peer.until(() => peer.messages.length === 1));
  t.equal((peer.messages[0] as SipResponse).status, 202);
  t.equal(seen[0]!.source.protocol, 'wss');
  t.match(seen[0]!.connectionId, /^wss-\d+$/);
  const pending = stack.sendRequest(notifyFor(seen[0]!.request), {
    destination: { protocol: 'wss', address: 'df7jal23ls0d.invalid', port: 5061 },
    connectionId: seen[0]!.connectionId!,
  });
  t.ok(await peer.until(() => peer.messages.length === 2));
  const notify = peer.messages[1] as SipRequest;
  t.match(notify.headers.get('via')!, /^SIP\/2\.0\/WSS /);
  peer.ws.send(serializeMessage(createResponse(notify, 200)));
  t.equal((await pending).status, 200);
});

t.test('upgrades without the sip subprotocol or on another path are refused', async (t) => {
  const stack = await wsStack(t, '/sip');
  let handled = 0;
  stack.onRequest((req) => {
    handled++;
    req.respond(createResponse(req.request, 200, undefined, { toTag: 'gw' }));
  });
  const attempt = async (u: string, protocols: string[]): Promise<number | 'open'> => {
    const ws = new WebSocket(u, protocols);
    ws.on('error', () => undefined);
    t.teardown(() => ws.terminate());
    return new Promise((resolve) => {
      ws.once('open', () => resolve('open'));
      ws.once('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        res.resume();
      });
    });
  };
  t.equal(await attempt(url(stack, 'ws', '/sip'), []), 400, 'no subprotocol');
  t.equal(await attempt(url(stack, 'ws', '/sip'), ['msrp', 'xmpp']), 400, 'other subprotocols only');
  t.equal(await attempt(url(stack, 'ws', '/other'), ['sip']), 404, 'wrong path');
  t.equal(await attempt(url(stack, 'ws', '/sip?token=1'), ['xmpp', 'sip']), 'open', 'sip among others, query ignored');
  t.equal(handled, 0);
  t.equal(stack.stats().wsConnections, 1);
});

t.test('a closed WebSocket fails the pending request and later ones (no new connection is opened)', async (t) => {
  const stack = await wsStack(t);
  const seen: IncomingRequest[] = [];
  stack.onRequest((req) => {
    seen.push(req);
    req.respond(createResponse(req.request, 200, undefined, { toTag: 'gw' }));
  });
  const peer = await WsPeer.open(t, url(stack, 'ws'));
  peer.ws.send(subscribeText('z9hG4bKc1'));
  t.ok(await peer.until(() => seen.length === 1));
  const sub = seen[0]!;
  t.ok(stack.isConnectionOpen(sub.connectionId!));
  const destination = { protocol: 'ws' as const, address: 'df7jal23ls0d.invalid', port: 5060 };
  const pending = stack.sendRequest(notifyFor(sub.request), { destination, connectionId: sub.connectionId! });
  t.ok(await peer.until(() => peer.messages.length === 2), 'NOTIFY delivered');
  peer.ws.close(1001);
  t.equal((await pending).status, 503, 'connection gone before the answer: local 503');
  t.notOk(stack.isConnectionOpen(sub.connectionId!));
  t.equal(stack.stats().wsConnections, 0);
  const later = await stack.sendRequest(notifyFor(sub.request), { destination, connectionId: sub.connectionId! });
  t.equal(later.status, 503, 'nothing to send on');
  const without = await stack.sendRequest(notifyFor(sub.request), { destination });
  t.equal(without.status, 503, 'the gateway opens no WebSocket connections');
});

t.test('garbage, a bad request and a CRLF keep-alive do not break the connection', async (t) => {
  const stack = await wsStack(t);
  const seen: IncomingRequest[] = [];
  stack.onRequest((req) => {
    seen.push(req);
    req.respond(createResponse(req.request, 200, undefined, { toTag: 'gw' }));
  });
  const peer = await WsPeer.open(t, url(stack, 'ws'));
  peer.ws.send(Buffer.from([0xff, 0x00, 0x13, 0x37]), { binary: true });
  peer.ws.send('hello there');
  // a request whose CSeq is broken gets its 400 over the connection
  peer.ws.send(subscribeText('z9hG4bKbad').replace('CSeq: 1 SUBSCRIBE', 'CSeq: one SUBSCRIBE'));
  t.ok(await peer.until(() => peer.frames.length === 1), 'bad request answered');
  t.match(peer.frames[0]!.text, /^SIP\/2\.0 400 Bad Request - malformed CSeq\r\n/);
  peer.ws.send('\r\n\r\n');
  t.ok(await peer.until(() => peer.frames.some((f) => f.text === '\r\n')), 'keep-alive pong');
  peer.ws.send(subscribeText('z9hG4bKgood'));
  t.ok(await peer.until(() => peer.messages.length === 1), 'still served');
  t.equal((peer.messages[0] as SipResponse).status, 200);
  t.equal(seen.length, 1);
  t.notOk(peer.closed);
});

t.test('a wss listener without certificate is a start error', async (t) => {
  await t.rejects(
    SipStack.start({ listen: [{ protocol: 'wss', address: '127.0.0.1', port: 0 }], logger: silentLogger() }),
    /wss/,
  );
});
