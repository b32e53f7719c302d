/**
 * Ingress on a fake clock: while a flood is shed (receive buffers bounded) and the sockets hand over
 * full read batches, each processing slice is a quarter as long, so the sockets are read more often
 * and what waits in the kernel (a fresh phone's request among it) reaches the queue's fair lanes.
 */
import t, { type Test } from 'tap';
import { Ingress } from '../../src/sip/ingress.js';
import type { Endpoint } from '../../src/sip/message.js';
import { fakeHost, rawRequest } from './ingress-fixtures.js';

const local: Endpoint = { protocol: 'udp', address: '127.0.0.1', port: 5060 };
const peer: Endpoint = { protocol: 'udp', address: '127.0.0.1', port: 40000 };

function response(n: number): Buffer {
  return Buffer.from(
    [
      'SIP/2.0 200 OK',
      `Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKn${n}`,
      `From: <sip:anna@example.com>;tag=gw${n}`,
      `To: <sip:w@example.com>;tag=w${n}`,
      `Call-ID: r${n}`,
      'CSeq: 2 NOTIFY',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  );
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

async function firstSlices(t: Test, waitBeforeRequestMs: number): Promise<{ slices: number[]; shed: number; bounded: boolean[] }> {
  const clock = { now: 10_000 };
  const { host, delivered, shed, buffers } = fakeHost(clock, 1);
  const ingress = new Ingress(host, { clock: { now: () => clock.now }, random: () => 0.5, sliceMs: 8 });
  t.teardown(() => ingress.close());
  for (let i = 0; i < 100; i++) ingress.receive(response(i), peer, local, undefined, false);
  clock.now += waitBeforeRequestMs;
  ingress.receive(rawRequest('SUBSCRIBE', 'new', peer), peer, local, undefined, false);
  const slices: number[] = [];
  for (let i = 0; i < 2; i++) {
    const before = delivered.length;
    await turn();
    slices.push(delivered.length - before);
  }
  return { slices, shed: shed.length, bounded: buffers };
}

t.test('a busy but unflooded queue works in whole slices', async (t) => {
  const r = await firstSlices(t, 0);
  t.equal(r.shed, 0, 'nothing shed');
  t.same(r.bounded, [], 'buffers left alone');
  t.same(r.slices, [8, 8], 'two slices of 8 ms at 1 ms a message');
});

t.test('while a flood is shed and reads come in full batches, slices are a quarter as long', async (t) => {
  const r = await firstSlices(t, 200);
  t.equal(r.shed, 1, 'the new request behind a 200 ms backlog is shed');
  t.same(r.bounded, [true], 'the receive buffers are bounded');
  t.equal(r.slices[0], 2, 'the first slice (over 100 messages read since) is 2 ms');
  t.equal(r.slices[1], 8, 'the next, with nothing read in between, is whole again');
});
