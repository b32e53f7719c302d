/**
 * A browser watcher on WebSocket (RFC 7118) is reachable only on its own
 * connection: a quiet one that subscribed keeps it past the stranger idle
 * time and gets the next NOTIFY on it; after its un-SUBSCRIBE the stranger
 * rule closes it. Real sockets on 127.0.0.1, short limits.
 */
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { WebSocket } from 'ws';
import { PresenceHub } from '../../src/core/presence-hub.js';
import { SimpleServer } from '../../src/simple/simple-server.js';
import { SipStack } from '../../src/sip/stack.js';
import { silentLogger } from '../../src/util/logger.js';
import { CONFIG, makeDirectory } from './helpers.js';

const STRANGER_MS = 500;
const SLACK = 900;

function header(text: string, name: string): string | undefined {
  return new RegExp(`^${name}\\s*:\\s*(.*)$`, 'im').exec(text)?.[1]?.trim();
}

t.test('a quiet WebSocket watcher keeps its connection while subscribed; after un-SUBSCRIBE it is closed', async (t) => {
  const directory = makeDirectory();
  const store = new PresenceHub(directory);
  const stack = await SipStack.start({
    listen: [{ protocol: 'ws', address: '127.0.0.1', port: 0 }],
    logger: silentLogger(),
    timers: { t1: 50, t2: 200, t4: 200 },
    load: false,
    connections: { messageTimeoutMs: 5000, strangerIdleMs: STRANGER_MS, maxPerSource: 32 },
  });
  const server = new SimpleServer({ stack, directory, store, config: CONFIG, logger: silentLogger() });
  const ws = new WebSocket(`ws://127.0.0.1:${stack.localEndpoint('ws')!.port}`, 'sip');
  ws.on('error', () => undefined);
  const messages: string[] = [];
  let closedAt: number | undefined;
  ws.on('message', (d: Buffer) => {
    const text = d.toString('utf8');
    messages.push(text);
    if (text.startsWith('NOTIFY ')) {
      const lines = ['via', 'from', 'to', 'call-id', 'cseq'].map((n) => `${n}: ${header(text, n)!}`);
      ws.send(`SIP/2.0 200 OK\r\n${lines.join('\r\n')}\r\nContent-Length: 0\r\n\r\n`);
    }
  });
  ws.on('close', () => (closedAt = Date.now()));
  t.teardown(async () => {
    ws.terminate();
    server.close();
    await stack.close();
  });
  await once(ws, 'open');

  const next = async (pred: (m: string) => boolean, from: number): Promise<{ text: string; index: number }> => {
    const end = Date.now() + 3000;
    for (;;) {
      const i = messages.findIndex((m, k) => k >= from && pred(m));
      if (i >= 0) return { text: messages[i]!, index: i + 1 };
      if (Date.now() > end) throw new Error('message did not arrive');
      await sleep(10);
    }
  };
  const subscribe = (n: number, expires: number, toTag?: string): void => {
    ws.send(
      `SUBSCRIBE sip:alice@example.com SIP/2.0\r\n` +
        `Via: SIP/2.0/WS k3j2df7jal23.invalid;branch=z9hG4bK-holdws-${n}\r\n` +
        `Max-Forwards: 70\r\nFrom: <sip:console@example.com>;tag=wsw\r\n` +
        `To: <sip:alice@example.com>${toTag === undefined ? '' : `;tag=${toTag}`}\r\n` +
        `Call-ID: hold-ws-1\r\nCSeq: ${n} SUBSCRIBE\r\nContact: <sip:k3j2@df7jal23ls0d.invalid;transport=ws>\r\n` +
        `Event: presence\r\nAccept: application/pidf+xml\r\nExpires: ${expires}\r\nContent-Length: 0\r\n\r\n`,
    );
  };
  const isOk = (m: string) => m.startsWith('SIP/2.0 200');
  const isNotify = (m: string) => m.startsWith('NOTIFY ');

  subscribe(1, 3600);
  const ok = await next(isOk, 0);
  const toTag = /;tag=([^;\s]+)/.exec(header(ok.text, 'to')!)![1]!;
  let at = (await next(isNotify, ok.index)).index;
  t.equal(server.notifier.heldConnections, 1, 'the subscription holds its connection');

  await sleep(STRANGER_MS + SLACK);
  t.equal(closedAt, undefined, 'still open past the stranger idle time');
  store.setSip('alice', { basic: 'open', activities: ['away'], origin: 'test', at: Date.now() });
  const n = await next(isNotify, at);
  t.match(n.text, /away/i, 'the next NOTIFY on the same connection');
  at = n.index;

  subscribe(2, 0, toTag);
  at = (await next(isOk, at)).index;
  t.match(header((await next(isNotify, at)).text, 'subscription-state') ?? '', /^terminated/);
  t.equal(server.notifier.heldConnections, 0, 'released at the un-SUBSCRIBE');
  const end = Date.now() + STRANGER_MS + SLACK;
  while (closedAt === undefined && Date.now() < end) await sleep(20);
  t.ok(closedAt !== undefined, 'closed by the stranger rule once no subscription lives on it');
});
