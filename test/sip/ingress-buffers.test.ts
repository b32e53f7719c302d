/**
 * The stack under a real UDP flood: while new requests are shed for the
 * queue's backlog, the socket's receive buffer is bounded (the kernel keeps
 * little stale backlog); 2 s after the last shed, the next message restores it.
 */
import t from 'tap';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { createResponse } from '../../src/sip/message.js';
import { SipStack } from '../../src/sip/stack.js';
import { silentLogger } from '../../src/util/logger.js';

function subscribe(port: number, callId: string): Buffer {
  return Buffer.from(
    [
      'SUBSCRIBE sip:anna@example.com SIP/2.0',
      `Via: SIP/2.0/UDP 127.0.0.1:${port};rport;branch=z9hG4bK${callId}`,
      'Max-Forwards: 70',
      `From: <sip:w@example.com>;tag=f${callId}`,
      'To: <sip:anna@example.com>',
      `Call-ID: ${callId}`,
      'CSeq: 1 SUBSCRIBE',
      'Event: presence',
      `Contact: <sip:w@127.0.0.1:${port}>`,
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  );
}

t.test('a flood bounds the UDP receive buffer; quiet restores it', async (t) => {
  const stack = await SipStack.start({
    listen: [{ protocol: 'udp', address: '127.0.0.1', port: 0 }],
    logger: silentLogger(),
    load: false,
    udpBufferBytes: 4 * 1024 * 1024,
  });
  t.teardown(() => stack.close());
  stack.onRequest((req) => {
    const end = performance.now() + 2; // 2 ms a request: capacity about 500/s
    while (performance.now() < end) {
      /* a slow TU */
    }
    req.respond(createResponse(req.request, 200, undefined, { toTag: 'gw' }));
  });
  const port = stack.localEndpoint('udp')!.port;
  const configured = stack.udpReceiveBufferBytes();
  const peer = createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 });
  peer.bind(0, '127.0.0.1');
  await once(peer, 'listening');
  t.teardown(() => peer.close());
  let answers = 0;
  let shed = 0;
  peer.on('message', (m: Buffer) => {
    answers++;
    if (m.toString('latin1').startsWith('SIP/2.0 503')) shed++;
  });
  let minimum = configured;
  for (let i = 0; i < 1000; i++) {
    peer.send(subscribe(peer.address().port, `f${i}`), port, '127.0.0.1');
    if (i % 10 === 9) {
      await new Promise((r) => setImmediate(r));
      minimum = Math.min(minimum, stack.udpReceiveBufferBytes());
    }
  }
  const end = Date.now() + 10_000;
  while (answers < 1000 && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 20));
    minimum = Math.min(minimum, stack.udpReceiveBufferBytes());
  }
  t.ok(shed > 0, `the flood was shed (${shed} of ${answers})`);
  t.ok(minimum < configured, `bounded to ${minimum} during the flood (configured ${configured})`);
  await new Promise((r) => setTimeout(r, 2100));
  peer.send(subscribe(peer.address().port, 'after'), port, '127.0.0.1');
  const until = Date.now() + 5000;
  while (stack.udpReceiveBufferBytes() !== configured && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  t.equal(stack.udpReceiveBufferBytes(), configured, 'restored');
});
