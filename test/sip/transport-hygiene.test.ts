import t from 'tap';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { createResponse } from '../../src/sip/message.js';
import { CountingSecurityLog } from '../../src/sip/security-log.js';
import { SipStack } from '../../src/sip/stack.js';
import { silentLogger } from '../../src/util/logger.js';

type Tap = { teardown(fn: () => unknown): void };
const MESSAGE_MS = 400;
const STRANGER_MS = 800;

async function stack(t: Tap, maxPerSource = 32) {
  const security = new CountingSecurityLog();
  const s = await SipStack.start({
    listen: [
      { protocol: 'tcp', address: '127.0.0.1', port: 0 },
      { protocol: 'ws', address: '127.0.0.1', port: 0 },
    ],
    logger: silentLogger(),
    timers: { t1: 20, t2: 80, t4: 50 },
    load: false,
    connections: { messageTimeoutMs: MESSAGE_MS, strangerIdleMs: STRANGER_MS, maxPerSource },
    security,
  });
  // what the access hook does above the stack: a SUBSCRIBE that is let in makes the connection trusted
  s.onRequest((r) => {
    if (r.request.method === 'SUBSCRIBE' && r.connectionId !== undefined) s.trustConnection(r.connectionId);
    r.respond(createResponse(r.request, 200));
  });
  t.teardown(() => s.close());
  return { s, security, port: s.localEndpoint('tcp')!.port, wsPort: s.localEndpoint('ws')!.port };
}

function request(method: string, n: number, body = ''): string {
  return (
    `${method} sip:1001@127.0.0.1 SIP/2.0\r\n` +
    `Via: SIP/2.0/TCP 127.0.0.1:5099;branch=z9hG4bKhy${n}${method}\r\n` +
    `From: <sip:w@127.0.0.1>;tag=h${n}\r\nTo: <sip:1001@127.0.0.1>\r\nCall-ID: hy-${n}-${method}\r\n` +
    `CSeq: ${n} ${method}\r\nMax-Forwards: 70\r\nEvent: presence\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

interface Peer {
  socket: Socket;
  text: string;
  closedAt: number | undefined;
  openedAt: number;
}

async function open(t: Tap, port: number): Promise<Peer> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  const peer: Peer = { socket, text: '', closedAt: undefined, openedAt: Date.now() };
  socket.on('data', (c: Buffer) => (peer.text += c.toString('latin1')));
  socket.on('close', () => (peer.closedAt = Date.now()));
  t.teardown(() => socket.destroy());
  return peer;
}

async function closedWithin(peer: Peer, ms: number): Promise<number | undefined> {
  const until = Date.now() + ms;
  while (peer.closedAt === undefined && Date.now() < until) await sleep(20);
  return peer.closedAt === undefined ? undefined : peer.closedAt - peer.openedAt;
}

/** the bound plus one sweep period and scheduling slack on a loaded machine */
const SLACK = 700;

t.test('a silent TCP connection is closed once the message time is up', async (t) => {
  const { security, port } = await stack(t);
  const peer = await open(t, port);
  const took = await closedWithin(peer, MESSAGE_MS + SLACK);
  t.ok(took !== undefined, `closed (after ${took} ms)`);
  t.ok(took! >= MESSAGE_MS - 50, 'not before the bound');
  t.ok(security.events.some((e) => e.event === 'connection_closed' && e.fields.reason === 'no_valid_message' && e.fields.source === '127.0.0.1'));
});

t.test('half-sent messages are closed within the message time', async (t) => {
  const { security, port } = await stack(t);
  const full = request('OPTIONS', 1);
  const halfHead = await open(t, port);
  halfHead.socket.write(full.slice(0, full.indexOf('Call-ID')));
  const noBody = await open(t, port);
  noBody.socket.write(request('OPTIONS', 2).replace('Content-Length: 0', 'Content-Length: 200') + 'only-part-of-it');
  const junk = await open(t, port);
  junk.socket.write(randomBytes(300).map((b) => (b === 0x0d || b === 0x0a ? 0x41 : b)));
  // after one good message, a slow trickle of the next one is cut off too
  const trickle = await open(t, port);
  trickle.socket.write(request('OPTIONS', 3));
  let i = 0;
  const half = request('OPTIONS', 4);
  const timer = setInterval(() => !trickle.socket.destroyed && trickle.socket.write(half[i++] ?? ''), 100);
  t.teardown(() => clearInterval(timer));
  for (const [name, peer] of Object.entries({ halfHead, noBody, junk, trickle })) {
    const took = await closedWithin(peer, MESSAGE_MS + SLACK);
    t.ok(took !== undefined && took <= MESSAGE_MS + SLACK, `${name}: closed after ${took} ms`);
  }
  clearInterval(timer);
  t.match(trickle.text, /^SIP\/2\.0 200 /, 'the complete message before the trickle was answered');
  const reasons = security.events.filter((e) => e.event === 'connection_closed').map((e) => e.fields.reason);
  t.ok(reasons.includes('incomplete_message'), `reasons: ${reasons.join(', ')}`);
});

t.test("a stranger's idle connection is closed; a trusted one and one kept alive by CRLF pings stay", async (t) => {
  const { security, port } = await stack(t);
  const stranger = await open(t, port);
  stranger.socket.write(request('OPTIONS', 10));
  const trusted = await open(t, port);
  trusted.socket.write(request('SUBSCRIBE', 11));
  const pinger = await open(t, port);
  pinger.socket.write(request('OPTIONS', 12));
  // RFC 5626 §4.4.1: a double-CRLF ping, answered by a single CRLF pong
  const ping = setInterval(() => pinger.socket.write('\r\n\r\n'), 200);
  t.teardown(() => clearInterval(ping));
  const took = await closedWithin(stranger, STRANGER_MS + SLACK + 200);
  t.ok(took !== undefined && took >= STRANGER_MS - 50, `the stranger went after ${took} ms idle`);
  await sleep(STRANGER_MS);
  t.equal(trusted.closedAt, undefined, 'the connection a SUBSCRIBE was let in on stays');
  t.equal(pinger.closedAt, undefined, 'the pinging connection stays');
  t.match(pinger.text, /\r\n\r\n\r\n$/, 'pongs came back');
  clearInterval(ping);
  t.ok(security.events.some((e) => e.event === 'connection_closed' && e.fields.reason === 'idle_stranger'));
});

t.test('per-source cap: one stranger cannot hold more; exempt sources can', async (t) => {
  const { s, security, port } = await stack(t, 3);
  const peers = [];
  for (let i = 0; i < 3; i++) peers.push(await open(t, port));
  const fourth = await open(t, port);
  t.ok((await closedWithin(fourth, 1000)) !== undefined, 'the fourth connection from 127.0.0.1 is refused');
  await sleep(50);
  t.ok(peers.every((p) => p.closedAt === undefined), 'the first three stay');
  const refused = security.events.filter((e) => e.event === 'connection_refused');
  t.equal(refused.length, 1);
  t.equal(refused[0]?.fields.reason, 'per_source_limit');
  s.setConnectionExempt((a) => a === '127.0.0.1');
  const fifth = await open(t, port);
  await sleep(150);
  t.equal(fifth.closedAt, undefined, 'an exempt source (a trunk, a trusted network) is not capped');
  t.equal(s.stats().tcpConnections, 4);
});

t.test('WebSocket: a connection without a SIP message is closed; the per-source cap holds', async (t) => {
  const { security, wsPort } = await stack(t, 2);
  const url = `ws://127.0.0.1:${wsPort}/`;
  const openWs = async () => {
    const ws = new WebSocket(url, 'sip');
    ws.on('error', () => undefined);
    const start = Date.now();
    const closed = new Promise<number>((resolve) => ws.on('close', () => resolve(Date.now() - start)));
    t.teardown(() => ws.terminate());
    return { ws, closed, start };
  };
  // half an HTTP upgrade request is cut off too
  const halfUpgrade = await open(t, wsPort);
  halfUpgrade.socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n');
  const upTook = await closedWithin(halfUpgrade, MESSAGE_MS + SLACK);
  t.ok(upTook !== undefined, `half an upgrade request: closed after ${upTook} ms`);
  const silent = await openWs();
  await once(silent.ws, 'open');
  const took = await Promise.race([silent.closed, sleep(MESSAGE_MS + SLACK + 500).then(() => -1)]);
  t.ok(took > 0 && took <= MESSAGE_MS + SLACK + 500, `the silent WebSocket went after ${took} ms`);
  const a = await openWs();
  await once(a.ws, 'open');
  a.ws.send(request('SUBSCRIBE', 20));
  const b = await openWs();
  await once(b.ws, 'open');
  const c = await openWs();
  const refused = await Promise.race([once(c.ws, 'unexpected-response').then(() => true), once(c.ws, 'open').then(() => false)]);
  t.ok(refused, 'the third WebSocket from one source is refused (503)');
  t.ok(security.events.some((e) => e.event === 'connection_refused' && e.fields.transport === 'ws' && e.fields.reason === 'per_source_limit'));
});

t.test('TLS: after the handshake, a silent connection and a half-sent message are closed in time', async (t) => {
  const { createCertificateAuthority, createServerCertificate } = await import('../../src/graph-simulator/certs.js');
  const { connect: tlsConnect } = await import('node:tls');
  const ca = createCertificateAuthority('hygiene test CA');
  const cert = createServerCertificate(ca);
  const security = new CountingSecurityLog();
  const s = await SipStack.start({
    listen: [{ protocol: 'tls', address: '127.0.0.1', port: 0, tls: { cert: cert.certPem, key: cert.keyPem } }],
    logger: silentLogger(),
    load: false,
    connections: { messageTimeoutMs: MESSAGE_MS, strangerIdleMs: STRANGER_MS, maxPerSource: 32 },
    security,
  });
  t.teardown(() => s.close());
  const port = s.localEndpoint('tls')!.port;
  const openTls = async (): Promise<Peer> => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: ca.certPem, servername: 'localhost', rejectUnauthorized: false });
    socket.on('error', () => undefined);
    await once(socket, 'secureConnect');
    const peer: Peer = { socket, text: '', closedAt: undefined, openedAt: Date.now() };
    socket.on('close', () => (peer.closedAt = Date.now()));
    t.teardown(() => socket.destroy());
    return peer;
  };
  const silent = await openTls();
  const half = await openTls();
  half.socket.write(request('OPTIONS', 30).slice(0, 60));
  for (const [name, peer] of Object.entries({ silent, half })) {
    const took = await closedWithin(peer, MESSAGE_MS + SLACK);
    t.ok(took !== undefined, `${name}: closed after ${took} ms`);
  }
  const closed = security.events.filter((e) => e.event === 'connection_closed' && e.fields.transport === 'tls');
  t.equal(closed.length, 2, 'both logged');
});
