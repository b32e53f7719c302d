import t from 'tap';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { parseMessage } from '../../src/sip/parser.js';
import type { SipResponse } from '../../src/sip/message.js';
import { createResponse } from '../../src/sip/message.js';
import { EventLoopGuard, type LoadSignal } from '../../src/sip/overload.js';
import { SipStack } from '../../src/sip/stack.js';
import { silentLogger } from '../../src/util/logger.js';

function subscribe(branch: string, toTag?: string): Buffer {
  return Buffer.from(
    [
      'SUBSCRIBE sip:anna@example.com SIP/2.0',
      `Via: SIP/2.0/UDP 127.0.0.1:5999;rport;branch=z9hG4bK${branch}`,
      'Max-Forwards: 70',
      'From: <sip:w@example.com>;tag=w1',
      `To: <sip:anna@example.com>${toTag !== undefined ? `;tag=${toTag}` : ''}`,
      `Call-ID: ov-${branch}`,
      'CSeq: 1 SUBSCRIBE',
      'Event: presence',
      'Contact: <sip:w@127.0.0.1:5999>',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  );
}

t.test('under overload new requests get 503 + Retry-After; in-dialog requests and OPTIONS still reach the handler', async (t) => {
  let overloaded = true;
  const load: LoadSignal = { overloaded: () => overloaded, close: () => undefined };
  const stack = await SipStack.start({
    listen: [{ protocol: 'udp', address: '127.0.0.1', port: 0 }],
    logger: silentLogger(),
    load,
    retryAfterSec: 20,
  });
  t.teardown(() => stack.close());
  const handled: string[] = [];
  stack.onRequest((req) => {
    handled.push(req.request.headers.get('call-id') ?? '');
    req.respond(createResponse(req.request, 200));
  });
  const peer = createSocket('udp4');
  peer.bind(0, '127.0.0.1');
  await once(peer, 'listening');
  t.teardown(() => peer.close());
  const port = stack.localEndpoint('udp')!.port;
  const ask = async (data: Buffer): Promise<SipResponse> => {
    const got = once(peer, 'message');
    peer.send(data, port, '127.0.0.1');
    const [msg] = (await got) as [Buffer];
    const parsed = parseMessage(msg);
    if (!parsed.ok || parsed.message.kind !== 'response') throw new Error('no response');
    return parsed.message;
  };

  const refused = await ask(subscribe('a1'));
  t.equal(refused.status, 503);
  const retry = Number(refused.headers.get('retry-after'));
  t.ok(retry >= 10 && retry <= 20, `Retry-After ${retry} is 50-100% of 20`);
  t.equal(stack.overloadRefusals, 1);
  t.same(handled, [], 'the handler never saw it');

  t.equal((await ask(subscribe('a2', 'gw1'))).status, 200, 'a refresh in an existing dialog goes on');
  overloaded = false;
  t.equal((await ask(subscribe('a3'))).status, 200, 'accepted again once the load is gone');
  t.same(handled, ['ov-a2', 'ov-a3']);
});

t.test('the event-loop guard sees a saturated loop, not one long pause', async (t) => {
  const guard = new EventLoopGuard({ maxLagMs: 50, windowMs: 100_000, windows: 2 });
  t.teardown(() => guard.close());
  const busy = (ms: number) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      /* saturate the loop */
    }
  };
  // Saturated: every turn of the loop is busy, with only an immediate hand-over between turns.
  const saturate = async (n: number, ms: number) => {
    for (let i = 0; i < n; i++) {
      busy(ms);
      await new Promise((r) => setImmediate(r));
    }
  };
  // Idle: short sleeps, nothing running.
  const idle = async (n: number) => {
    for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 25));
  };
  // One long pause among normal turns: not overload.
  busy(400);
  await idle(10);
  guard.sample();
  t.equal(guard.overloaded(), false, 'a single pause is not overload');
  // Every turn late, two windows in a row: overload.
  await saturate(6, 120);
  guard.sample();
  t.equal(guard.overloaded(), false, 'one lagging window is not enough');
  await saturate(6, 120);
  guard.sample();
  t.equal(guard.overloaded(), true, 'two lagging windows are');
  await idle(10);
  guard.sample();
  t.equal(guard.overloaded(), false, 'back to normal after a quiet window');
});
