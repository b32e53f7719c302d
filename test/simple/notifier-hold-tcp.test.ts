/**
 * A watcher that subscribed over TCP and then stays quiet keeps its connection
 * for as long as the subscription lives (RFC 5626 §3.3: behind NAT the flow is
 * the only way back to it): past the stack's idle timeout and the stranger idle
 * time, the next NOTIFY comes on the same connection. Once the subscription
 * ends (un-SUBSCRIBE, expiry) or moves to another connection, the idle rules
 * close the old one. Real sockets on 127.0.0.1, short limits.
 */
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { PresenceHub } from '../../src/core/presence-hub.js';
import { SimpleServer } from '../../src/simple/simple-server.js';
import { SipStack } from '../../src/sip/stack.js';
import { silentLogger } from '../../src/util/logger.js';
import { CONFIG, makeDirectory } from './helpers.js';

type Tap = { teardown(fn: () => unknown): void };
const IDLE_MS = 600;
const STRANGER_MS = 500;
/** a sweep period and scheduling slack on a loaded machine */
const SLACK = 900;
const QUIET = Math.max(IDLE_MS, STRANGER_MS) + SLACK;

interface Message {
  head: string;
  body: string;
}

function header(head: string, name: string): string | undefined {
  return new RegExp(`^${name}\\s*:\\s*(.*)$`, 'im').exec(head)?.[1]?.trim();
}

/** A watcher's TCP connection: framed messages in arrival order, and when it closed. */
class Watcher {
  readonly messages: Message[] = [];
  closedAt: number | undefined;
  private buf = Buffer.alloc(0);

  private constructor(readonly socket: Socket) {
    socket.on('error', () => undefined);
    socket.on('close', () => (this.closedAt = Date.now()));
    socket.on('data', (chunk: Buffer) => {
      this.buf = Buffer.concat([this.buf, chunk]);
      for (;;) {
        const end = this.buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = this.buf.subarray(0, end).toString('utf8');
        const length = Number(header(head, 'content-length') ?? '0');
        if (this.buf.length < end + 4 + length) return;
        this.messages.push({ head, body: this.buf.subarray(end + 4, end + 4 + length).toString('utf8') });
        this.buf = this.buf.subarray(end + 4 + length);
      }
    });
  }

  static async open(t: Tap, port: number): Promise<Watcher> {
    const socket = connect({ host: '127.0.0.1', port });
    const w = new Watcher(socket);
    t.teardown(() => socket.destroy());
    await once(socket, 'connect');
    return w;
  }

  get port(): number {
    return this.socket.localPort!;
  }

  /** The next message matching `pred` after index `from`; answers NOTIFYs with 200. */
  async next(pred: (m: Message) => boolean, from: number, ms = 3000): Promise<{ msg: Message; index: number }> {
    const end = Date.now() + ms;
    for (;;) {
      const index = this.messages.findIndex((m, i) => i >= from && pred(m));
      if (index >= 0) {
        const msg = this.messages[index]!;
        if (msg.head.startsWith('NOTIFY ')) this.answer(msg);
        return { msg, index: index + 1 };
      }
      if (Date.now() > end) throw new Error('message did not arrive');
      await sleep(10);
    }
  }

  answer(notify: Message): void {
    const lines = ['via', 'from', 'to', 'call-id', 'cseq'].map((n) => `${n}: ${header(notify.head, n)!}`);
    this.socket.write(`SIP/2.0 200 OK\r\n${lines.join('\r\n')}\r\nContent-Length: 0\r\n\r\n`);
  }

  subscribe(n: number, expires: number, callId: string, toTag?: string): void {
    const p = this.port;
    this.socket.write(
      `SUBSCRIBE sip:alice@example.com SIP/2.0\r\n` +
        `Via: SIP/2.0/TCP 127.0.0.1:${p};branch=z9hG4bK-hold-${callId}-${n}\r\n` +
        `Max-Forwards: 70\r\nFrom: <sip:console@example.com>;tag=w-${callId}\r\n` +
        `To: <sip:alice@example.com>${toTag === undefined ? '' : `;tag=${toTag}`}\r\n` +
        `Call-ID: ${callId}\r\nCSeq: ${n} SUBSCRIBE\r\nContact: <sip:console@127.0.0.1:${p};transport=tcp>\r\n` +
        `Event: presence\r\nAccept: application/pidf+xml\r\nExpires: ${expires}\r\nContent-Length: 0\r\n\r\n`,
    );
  }
}

const isOk = (m: Message) => m.head.startsWith('SIP/2.0 200');
const isNotify = (m: Message) => m.head.startsWith('NOTIFY ');

async function gateway(t: Tap, minExpires = CONFIG.subscriptions.minExpires) {
  const directory = makeDirectory();
  const store = new PresenceHub(directory);
  const stack = await SipStack.start({
    listen: [{ protocol: 'tcp', address: '127.0.0.1', port: 0 }],
    logger: silentLogger(),
    timers: { t1: 50, t2: 200, t4: 200 },
    load: false,
    tcpIdleTimeoutMs: IDLE_MS,
    connections: { messageTimeoutMs: 5000, strangerIdleMs: STRANGER_MS, maxPerSource: 32 },
  });
  const server = new SimpleServer({
    stack,
    directory,
    store,
    config: { ...CONFIG, subscriptions: { ...CONFIG.subscriptions, minExpires } },
    logger: silentLogger(),
  });
  t.teardown(async () => {
    server.close();
    await stack.close();
  });
  return { stack, store, server, port: stack.localEndpoint('tcp')!.port };
}

async function closedWithin(w: Watcher, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (w.closedAt === undefined && Date.now() < end) await sleep(20);
  return w.closedAt !== undefined;
}

t.test('a quiet TCP watcher keeps its connection and gets the next NOTIFY on it; after un-SUBSCRIBE it is closed', async (t) => {
  const { store, server, port } = await gateway(t);
  const w = await Watcher.open(t, port);
  const other = await Watcher.open(t, port);
  w.subscribe(1, 3600, 'hold-1');
  let at = 0;
  const ok = await w.next(isOk, at);
  const toTag = /;tag=([^;\s]+)/.exec(header(ok.msg.head, 'to')!)![1]!;
  at = (await w.next(isNotify, ok.index)).index;
  t.equal(server.notifier.heldConnections, 1, 'the subscription holds its connection');

  // quiet past the stack's idle timeout and the stranger idle time
  await sleep(QUIET);
  t.ok(await closedWithin(other, 0), 'a connection without a subscription was closed meanwhile');
  t.equal(w.closedAt, undefined, "the watcher's connection is still open");

  store.setSip('alice', { basic: 'open', activities: ['away'], origin: 'test', at: Date.now() });
  const notify = await w.next(isNotify, at);
  t.match(notify.msg.body, /away/i, 'the next NOTIFY came on the same connection with the new state');
  at = notify.index;

  // un-SUBSCRIBE: the hold goes, the idle rules close the connection
  w.subscribe(2, 0, 'hold-1', toTag);
  at = (await w.next(isOk, at)).index;
  const last = await w.next(isNotify, at);
  t.match(header(last.msg.head, 'subscription-state') ?? '', /^terminated/);
  t.equal(server.notifier.heldConnections, 0, 'released at the un-SUBSCRIBE');
  t.ok(await closedWithin(w, QUIET), 'closed by the idle rules once no subscription lives on it');
});

t.test('an expired subscription lets its connection go', async (t) => {
  const { server, port } = await gateway(t, 1);
  const w = await Watcher.open(t, port);
  w.subscribe(1, 2, 'hold-exp');
  const ok = await w.next(isOk, 0);
  const first = await w.next(isNotify, ok.index);
  t.equal(server.notifier.heldConnections, 1);
  const last = await w.next((m) => isNotify(m) && /^terminated/.test(header(m.head, 'subscription-state') ?? ''), first.index, 4000);
  t.match(header(last.msg.head, 'subscription-state') ?? '', /timeout/);
  t.equal(server.notifier.heldConnections, 0, 'released at expiry');
  t.ok(await closedWithin(w, QUIET), 'closed by the idle rules after expiry');
});

t.test('a refresh on another connection moves the hold: the old connection is closed, the new one kept', async (t) => {
  const { store, server, port } = await gateway(t);
  const a = await Watcher.open(t, port);
  a.subscribe(1, 3600, 'hold-move');
  const ok = await a.next(isOk, 0);
  const toTag = /;tag=([^;\s]+)/.exec(header(ok.msg.head, 'to')!)![1]!;
  await a.next(isNotify, ok.index);

  const b = await Watcher.open(t, port);
  b.subscribe(2, 3600, 'hold-move', toTag);
  let at = (await b.next(isOk, 0)).index;
  at = (await b.next(isNotify, at)).index;
  t.equal(server.notifier.heldConnections, 1, 'one connection held');

  t.ok(await closedWithin(a, QUIET), 'the old connection is closed by the idle rules');
  await sleep(QUIET);
  t.equal(b.closedAt, undefined, 'the new connection stays');
  store.setSip('alice', { basic: 'open', activities: ['busy'], origin: 'test', at: Date.now() });
  t.match((await b.next(isNotify, at)).msg.body, /busy/i, 'the next NOTIFY on the new connection');
});
