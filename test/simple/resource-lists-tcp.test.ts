/**
 * A 40-member list NOTIFY is far over the UDP size limit: the stack sends it
 * over TCP to the watcher that subscribed over UDP (RFC 3261 §18.1.1). Real
 * sockets on 127.0.0.1: the gateway's SipStack, and a watcher of our own
 * listening on UDP and TCP at the same port.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import t from 'tap';
import { parseMultipartRelated, parseRlmi, rootPart } from '../../src/bodies/index.js';
import { listsSchema } from '../../src/simple/lists-config.js';
import { Directory } from '../../src/core/directory.js';
import { PresenceHub } from '../../src/core/presence-hub.js';
import { attachResourceLists } from '../../src/simple/resource-lists.js';
import { SimpleServer } from '../../src/simple/simple-server.js';
import { SipStack } from '../../src/sip/stack.js';
import { silentLogger } from '../../src/util/logger.js';
import { CONFIG } from './helpers.js';

interface Received {
  head: string;
  body: Buffer;
}

function header(head: string, name: string): string | undefined {
  const re = new RegExp(`^${name}\\s*:\\s*(.*)$`, 'im');
  return re.exec(head)?.[1]?.trim();
}

/** Reads SIP messages off a stream (Content-Length framing). */
function onMessages(socket: Socket, handle: (m: Received) => void): void {
  let buf = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('utf8');
      const length = Number(header(head, 'content-length') ?? header(head, 'l') ?? '0');
      if (buf.length < end + 4 + length) return;
      handle({ head, body: buf.subarray(end + 4, end + 4 + length) });
      buf = buf.subarray(end + 4 + length);
    }
  });
}

async function listenBoth(): Promise<{ tcp: Server; udp: UdpSocket; port: number }> {
  for (let attempt = 0; ; attempt++) {
    const tcp = createServer();
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
    const port = (tcp.address() as { port: number }).port;
    const udp = createSocket('udp4');
    const ok = await new Promise<boolean>((resolve) => {
      udp.once('error', () => resolve(false));
      udp.bind(port, '127.0.0.1', () => resolve(true));
    });
    if (ok) return { tcp, udp, port };
    udp.close();
    await new Promise<void>((resolve) => tcp.close(() => resolve()));
    if (attempt > 10) throw new Error('no port free on both UDP and TCP');
  }
}

t.test('a 40-member list NOTIFY to a UDP subscriber arrives over TCP', async (t) => {
  const ids = Array.from({ length: 40 }, (_, i) => `p${String(i + 1).padStart(2, '0')}`);
  const directory = new Directory(
    ids.map((id, i) => ({ id, displayName: `Person ${i + 1}`, extension: String(2000 + i), sipAors: [`sip:${id}@example.com`] })),
    { domains: ['example.com'] },
  );
  const store = new PresenceHub(directory);
  const stack = await SipStack.start({
    listen: [
      { protocol: 'udp', address: '127.0.0.1', port: 0 },
      { protocol: 'tcp', address: '127.0.0.1', port: 0 },
    ],
    logger: silentLogger(),
  });
  const server = new SimpleServer({ stack, directory, store, config: CONFIG, logger: silentLogger() });
  const lists = attachResourceLists(
    server.notifier,
    (l) => store.onChange(l),
    listsSchema.parse({ groups: [{ name: 'all', uri: 'sip:all@example.com', members: ids }] }),
    { directory, logger: silentLogger() },
  );
  const watcher = await listenBoth();
  const sockets = new Set<Socket>();
  t.teardown(async () => {
    lists.close();
    server.close();
    for (const s of sockets) s.destroy();
    watcher.udp.close();
    await new Promise<void>((resolve) => watcher.tcp.close(() => resolve()));
    await stack.close();
  });

  const udpMessages: string[] = [];
  watcher.udp.on('message', (m) => udpMessages.push(m.toString('utf8')));
  const notify = new Promise<{ msg: Received; socket: Socket }>((resolve) => {
    watcher.tcp.on('connection', (socket) => {
      sockets.add(socket);
      onMessages(socket, (msg) => {
        if (msg.head.startsWith('NOTIFY ')) resolve({ msg, socket });
      });
    });
  });

  const gw = stack.localEndpoint('udp')!;
  const p = watcher.port;
  const subscribe =
    `SUBSCRIBE sip:all@example.com SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP 127.0.0.1:${p};branch=z9hG4bK-rl-tcp-1;rport\r\n` +
    `Max-Forwards: 70\r\nFrom: <sip:console@example.com>;tag=w1\r\nTo: <sip:all@example.com>\r\n` +
    `Call-ID: rl-tcp-1@127.0.0.1\r\nCSeq: 1 SUBSCRIBE\r\nContact: <sip:console@127.0.0.1:${p}>\r\n` +
    `Event: presence\r\nSupported: eventlist\r\nAccept: multipart/related, application/rlmi+xml, application/pidf+xml\r\n` +
    `Expires: 600\r\nContent-Length: 0\r\n\r\n`;
  watcher.udp.send(subscribe, gw.port, '127.0.0.1');

  const { msg, socket } = await notify;
  t.ok(msg.body.length > 1300, `the NOTIFY body (${msg.body.length} bytes) is over the UDP limit`);
  t.match(header(msg.head, 'via') ?? '', /^SIP\/2\.0\/TCP /, 'sent over TCP');
  t.equal(header(msg.head, 'require'), 'eventlist');
  const contentType = header(msg.head, 'content-type')!;
  const doc = parseMultipartRelated(msg.body, contentType);
  const rlmi = parseRlmi(rootPart(doc)!.body);
  t.equal(rlmi.resources.length, 40);
  t.equal(doc.parts.length, 41, 'RLMI and 40 member parts');
  t.ok(udpMessages.some((m) => m.startsWith('SIP/2.0 200')), 'the SUBSCRIBE was answered over UDP');
  t.notOk(udpMessages.some((m) => m.startsWith('NOTIFY')), 'no NOTIFY over UDP');

  const lines = ['via', 'from', 'to', 'call-id', 'cseq'].map((n) => `${n}: ${header(msg.head, n)!}`);
  socket.write(`SIP/2.0 200 OK\r\n${lines.join('\r\n')}\r\nContent-Length: 0\r\n\r\n`);
  await new Promise((r) => setTimeout(r, 50));
  t.equal(server.notifier.size, 1, 'the subscription is alive after the 200');
});
