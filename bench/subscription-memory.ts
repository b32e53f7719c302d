/**
 * In-process: JS heap bytes per watcher subscription held by the SIMPLE
 * server (notifier, its indexes, timers, the store's snapshots not included),
 * for the two shapes of issue 10 (all on one person; 20 each on many).
 * Run: node --expose-gc --import tsx bench/subscription-memory.ts [count] [people]
 */
import { Directory } from '../src/core/directory.js';
import { PresenceHub } from '../src/core/presence-hub.js';
import { parseMessage } from '../src/sip/parser.js';
import { SimpleServer } from '../src/simple/simple-server.js';
import { silentLogger } from '../src/util/logger.js';
import { TimerWheel } from '../src/util/timer-wheel.js';
import { CONFIG, FakeStack, settle } from '../test/simple/helpers.js';

/** A SIPp-like initial SUBSCRIBE (watcher n to `user`), as on the wire. */
export function wire(n: number, user: string): Buffer {
  return Buffer.from(
    [
      `SUBSCRIBE sip:${user}@example.com SIP/2.0`,
      `Via: SIP/2.0/UDP 198.51.100.7:5062;branch=z9hG4bK-bench-${n};rport`,
      'Max-Forwards: 70',
      `From: "SIPp watcher ${n}" <sip:watcher-${n}@198.51.100.7>;tag=${4242}W${n}`,
      `To: <sip:${user}@example.com>`,
      `Call-ID: ${n}-4242@198.51.100.7`,
      'CSeq: 1 SUBSCRIBE',
      `Contact: <sip:watcher-${n}@198.51.100.7:5062;transport=udp>`,
      'Event: presence',
      'Accept: application/pidf+xml',
      'Expires: 3600',
      'User-Agent: presence-gateway-interop/sipp',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  );
}

export async function measureSubscriptionHeap(count: number, people: number): Promise<{ bytesPerSubscription: number; subscriptions: number }> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with node --expose-gc');
  const users = Array.from({ length: people }, (_, i) => ({ id: `p${i}`, displayName: `P ${i}`, extension: String(2000 + i), sipAors: [`sip:p${i}@example.com`] }));
  const directory = new Directory(users, { domains: ['example.com'] });
  const store = new PresenceHub(directory, {});
  const stack = new FakeStack();
  const wheel = new TimerWheel({ autoStart: false });
  const server = new SimpleServer({ stack, directory, store, config: CONFIG, logger: silentLogger(), wheel });
  const answer = async () => {
    await settle();
    for (const s of stack.sent) if (!s.answered) s.answer(200);
    stack.sent.length = 0;
    stack.log.length = 0;
  };
  await answer();
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < count; i++) {
    const parsed = parseMessage(wire(i, String(2000 + (i % people))));
    if (!parsed.ok || parsed.message.kind !== 'request') throw new Error('bad request');
    stack.deliver(parsed.message);
    if (i % 1000 === 999) await answer();
  }
  await answer();
  for (let i = 0; i < 3; i++) gc();
  const after = process.memoryUsage().heapUsed;
  const subscriptions = server.notifier.size;
  void server;
  return { bytesPerSubscription: (after - before) / Math.max(1, subscriptions), subscriptions };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const count = Number(process.argv[2] ?? 50_000);
  const people = Number(process.argv[3] ?? 1);
  measureSubscriptionHeap(count, people)
    .then((r) => console.log(JSON.stringify({ count, people, ...r })))
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    });
}
