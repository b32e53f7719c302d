import t from 'tap';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { createResponse } from '../../src/sip/message.js';
import { CountingSecurityLog } from '../../src/sip/security-log.js';
import { SipStack } from '../../src/sip/stack.js';
import { silentLogger } from '../../src/util/logger.js';

type Tap = { teardown(fn: () => unknown): void };
const IDLE_MS = 600;
const STRANGER_MS = 500;
/** one sweep period and scheduling slack on a loaded machine */
const SLACK = 900;

async function stack(t: Tap) {
  const security = new CountingSecurityLog();
  const s = await SipStack.start({
    listen: [
      { protocol: 'tcp', address: '127.0.0.1', port: 0 },
      { protocol: 'ws', address: '127.0.0.1', port: 0 },
    ],
    logger: silentLogger(),
    timers: { t1: 20, t2: 80, t4: 50 },
    load: false,
    tcpIdleTimeoutMs: IDLE_MS,
    connections: { messageTimeoutMs: 5000, strangerIdleMs: STRANGER_MS, maxPerSource: 32 },
    security,
  });
  // connection ids by the Call-ID that arrived on them; SUBSCRIBE makes the connection trusted (as access does)
  const ids = new Map<string, string>();
  s.onRequest((r) => {
    if (r.connectionId !== undefined) {
      ids.set(r.request.headers.get('call-id') ?? '', r.connectionId);
      if (r.request.method === 'SUBSCRIBE') s.trustConnection(r.connectionId);
    }
    r.respond(createResponse(r.request, 200));
  });
  t.teardown(() => s.close());
  return { s, ids, security, port: s.localEndpoint('tcp')!.port, wsPort: s.localEndpoint('ws')!.port };
}

function request(method: string, callId: string, transport = 'TCP'): string {
  return (
    `${method} sip:1001@127.0.0.1 SIP/2.0\r\n` +
    `Via: SIP/2.0/${transport} 127.0.0.1:5099;branch=z9hG4bKho${callId}\r\n` +
    `From: <sip:w@127.0.0.1>;tag=h-${callId}\r\nTo: <sip:1001@127.0.0.1>\r\nCall-ID: ${callId}\r\n` +
    `CSeq: 1 ${method}\r\nMax-Forwards: 70\r\nEvent: presence\r\nContent-Length: 0\r\n\r\n`
  );
}

interface Peer {
  closedAt: number | undefined;
  text: string;
}

async function tcpPeer(t: Tap, port: number): Promise<{ socket: Socket; peer: Peer }> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  const peer: Peer = { closedAt: undefined, text: '' };
  socket.on('data', (c: Buffer) => (peer.text += c.toString('latin1')));
  socket.on('close', () => (peer.closedAt = Date.now()));
  t.teardown(() => socket.destroy());
  return { socket, peer };
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await sleep(20);
  return cond();
}

t.test('TCP: a held connection outlives the idle sweep and the stranger rule; released, it is closed', async (t) => {
  const { s, ids, security, port } = await stack(t);
  // a trusted connection (SUBSCRIBE let in: only the general idle timeout applies) and a stranger's (OPTIONS)
  const trusted = await tcpPeer(t, port);
  const stranger = await tcpPeer(t, port);
  const control = await tcpPeer(t, port);
  trusted.socket.write(request('SUBSCRIBE', 'hold-trusted'));
  stranger.socket.write(request('OPTIONS', 'hold-stranger'));
  control.socket.write(request('SUBSCRIBE', 'hold-control'));
  t.ok(await until(() => ids.size === 3 && [trusted, stranger, control].every((p) => p.peer.text.includes('200 OK')), 3000), 'all answered');
  const releaseTrusted = s.holdConnection(ids.get('hold-trusted')!);
  const releaseStranger = s.holdConnection(ids.get('hold-stranger')!);

  // the unheld control goes by the idle sweep; the held ones stay well past both limits
  t.ok(await until(() => control.peer.closedAt !== undefined, IDLE_MS + SLACK), 'the unheld connection is closed by the idle sweep');
  await sleep(Math.max(IDLE_MS, STRANGER_MS) + SLACK);
  t.equal(trusted.peer.closedAt, undefined, 'held trusted connection still open');
  t.equal(stranger.peer.closedAt, undefined, "held stranger's connection still open");
  t.ok(s.isConnectionOpen(ids.get('hold-trusted')!));
  t.notOk(security.events.some((e) => e.fields.connectionId === ids.get('hold-stranger')), 'no hygiene close of the held one');

  // release: each goes by its own rule; a second release call changes nothing
  const releasedAt = Date.now();
  releaseStranger();
  releaseStranger();
  releaseTrusted();
  t.ok(await until(() => stranger.peer.closedAt !== undefined, STRANGER_MS + SLACK), "released stranger's connection closed");
  t.ok(stranger.peer.closedAt! - releasedAt >= STRANGER_MS - 50, 'not before the stranger idle time from the release');
  t.ok(security.events.some((e) => e.fields.connectionId === ids.get('hold-stranger') && e.fields.reason === 'idle_stranger'));
  t.ok(await until(() => trusted.peer.closedAt !== undefined, IDLE_MS + SLACK), 'released trusted connection closed by the idle sweep');
});

t.test('TCP: holds count; the connection stays until the last one is released', async (t) => {
  const { s, ids, port } = await stack(t);
  const p = await tcpPeer(t, port);
  p.socket.write(request('SUBSCRIBE', 'hold-two'));
  t.ok(await until(() => ids.has('hold-two') && p.peer.text.includes('200 OK'), 3000));
  const id = ids.get('hold-two')!;
  const first = s.holdConnection(id);
  const second = s.holdConnection(id);
  first();
  first();
  await sleep(IDLE_MS + SLACK);
  t.equal(p.peer.closedAt, undefined, 'one hold left: still open');
  second();
  t.ok(await until(() => p.peer.closedAt !== undefined, IDLE_MS + SLACK), 'closed after the last release');
});

t.test('TCP: a held connection the peer closes is gone; the release after it is harmless', async (t) => {
  const { s, ids, port } = await stack(t);
  const p = await tcpPeer(t, port);
  p.socket.write(request('SUBSCRIBE', 'hold-gone'));
  t.ok(await until(() => ids.has('hold-gone') && p.peer.text.includes('200 OK'), 3000));
  const id = ids.get('hold-gone')!;
  const release = s.holdConnection(id);
  p.socket.destroy();
  t.ok(await until(() => !s.isConnectionOpen(id), 2000), 'closed by the peer: not open');
  release();
  t.equal(s.stats().tcpConnections, 0);
});

t.test("WebSocket: a held stranger's connection outlives the stranger rule; released, it is closed", async (t) => {
  const { s, ids, security, wsPort } = await stack(t);
  const ws = new WebSocket(`ws://127.0.0.1:${wsPort}`, 'sip');
  ws.on('error', () => undefined);
  let closedAt: number | undefined;
  let text = '';
  ws.on('message', (d: Buffer) => (text += d.toString()));
  ws.on('close', () => (closedAt = Date.now()));
  t.teardown(() => ws.terminate());
  await once(ws, 'open');
  ws.send(request('OPTIONS', 'hold-ws', 'WS'));
  t.ok(await until(() => ids.has('hold-ws') && text.includes('200 OK'), 3000), 'answered');
  const id = ids.get('hold-ws')!;
  const release = s.holdConnection(id);
  await sleep(STRANGER_MS + SLACK);
  t.equal(closedAt, undefined, 'held: still open past the stranger idle time');
  release();
  t.ok(await until(() => closedAt !== undefined, STRANGER_MS + SLACK), 'released: closed');
  t.ok(security.events.some((e) => e.fields.connectionId === id && e.fields.reason === 'idle_stranger'));
});

t.test('TLS (the TCP transport over TLS sockets): a held connection outlives the idle sweep; released, it is closed', async (t) => {
  const { createCertificateAuthority, createServerCertificate } = await import('../../src/graph-simulator/certs.js');
  const { connect: tlsConnect } = await import('node:tls');
  const ca = createCertificateAuthority('hold test CA');
  const cert = createServerCertificate(ca);
  const s = await SipStack.start({
    listen: [{ protocol: 'tls', address: '127.0.0.1', port: 0, tls: { cert: cert.certPem, key: cert.keyPem } }],
    logger: silentLogger(),
    load: false,
    tcpIdleTimeoutMs: IDLE_MS,
    connections: { messageTimeoutMs: 5000, strangerIdleMs: STRANGER_MS, maxPerSource: 32 },
  });
  t.teardown(() => s.close());
  let id: string | undefined;
  s.onRequest((r) => {
    id = r.connectionId;
    r.respond(createResponse(r.request, 200));
  });
  const socket = tlsConnect({ host: '127.0.0.1', port: s.localEndpoint('tls')!.port, ca: ca.certPem, servername: 'localhost', rejectUnauthorized: false });
  socket.on('error', () => undefined);
  let closedAt: number | undefined;
  let text = '';
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  socket.on('close', () => (closedAt = Date.now()));
  t.teardown(() => socket.destroy());
  await once(socket, 'secureConnect');
  socket.write(request('OPTIONS', 'hold-tls', 'TLS'));
  t.ok(await until(() => id !== undefined && text.includes('200 OK'), 3000), 'answered');
  t.match(id!, /^tls-/);
  const release = s.holdConnection(id!);
  await sleep(Math.max(IDLE_MS, STRANGER_MS) + SLACK);
  t.equal(closedAt, undefined, 'held: still open');
  release();
  t.ok(await until(() => closedAt !== undefined, Math.max(IDLE_MS, STRANGER_MS) + SLACK), 'released: closed');
});
