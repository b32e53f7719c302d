import t, { type Test } from 'tap';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { UdpTransport } from '../../src/sip/transport/udp.js';
import { Writable } from 'node:stream';
import { createLogger, silentLogger } from '../../src/util/logger.js';

/** A peer socket collecting what it gets, and a transport bound to `address`; both closed at teardown. */
async function peerAndTransport(t: Test, address: string): Promise<{ peer: Socket; got: string[]; udp: UdpTransport }> {
  const peer = createSocket('udp4');
  peer.bind(0, '127.0.0.1');
  await once(peer, 'listening');
  t.teardown(() => peer.close());
  const got: string[] = [];
  peer.on('message', (m) => got.push(m.toString('latin1')));
  const udp = await UdpTransport.bind(address, 0, 65_535, undefined, { onDatagram: () => undefined }, silentLogger());
  t.teardown(() => udp.close());
  return { peer, got, udp };
}

t.test('UDP send: to an IP literal (answered without a DNS tick) and to a name (dns.lookup)', async (t) => {
  const { peer, got, udp } = await peerAndTransport(t, '127.0.0.1');
  const errors: Error[] = [];
  udp.send(Buffer.from('OPTIONS literal'), '127.0.0.1', peer.address().port, (e) => errors.push(e));
  udp.send(Buffer.from('OPTIONS name'), 'localhost', peer.address().port, (e) => errors.push(e));
  const end = Date.now() + 5000;
  while (got.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  t.same(got.sort(), ['OPTIONS literal', 'OPTIONS name']);
  udp.send(Buffer.from('OPTIONS nowhere'), 'no-such-host.invalid', peer.address().port, (e) => errors.push(e));
  while (errors.length < 1 && Date.now() < end + 5000) await new Promise((r) => setTimeout(r, 10));
  t.equal(errors.length, 1, 'a name that does not resolve reaches onError');
});

t.test('UDP receive buffer: set at bind, resized at run time (the stack bounds it during a flood)', async (t) => {
  const udp = await UdpTransport.bind('127.0.0.1', 0, 65_535, 1024 * 1024, { onDatagram: () => undefined }, silentLogger());
  t.teardown(() => udp.close());
  const configured = udp.receiveBufferBytes();
  t.ok(configured >= 1024 * 1024, `granted ${configured} (Linux doubles what is asked)`);
  udp.setReceiveBufferBytes(128 * 1024);
  const bounded = udp.receiveBufferBytes();
  t.ok(bounded < configured && bounded >= 128 * 1024, `bounded to ${bounded}`);
  udp.setReceiveBufferBytes(1024 * 1024);
  t.equal(udp.receiveBufferBytes(), configured, 'restored');
});

t.test('UDP send without onError: no callback (no tick per datagram) unless debug logs the failure', async (t) => {
  const { peer, got, udp } = await peerAndTransport(t, '0.0.0.0');
  const realNextTick = process.nextTick;
  let ticks = 0;
  process.nextTick = ((...args: Parameters<typeof process.nextTick>) => {
    ticks++;
    realNextTick(...args);
  }) as typeof process.nextTick;
  try {
    udp.send(Buffer.from('NOTIFY a'), '127.0.0.1', peer.address().port);
    t.equal(ticks, 0, 'a datagram sent at once schedules nothing');
    udp.send(Buffer.from('NOTIFY b'), '127.0.0.1', peer.address().port, () => undefined);
    t.equal(ticks, 1, 'with onError dgram reports the send on the next tick');
  } finally {
    process.nextTick = realNextTick;
  }
  const end = Date.now() + 5000;
  while (got.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  t.same(got.sort(), ['NOTIFY a', 'NOTIFY b']);

  // at debug the failure of a send nobody listens to is still logged (a broadcast without SO_BROADCAST fails)
  const lines: string[] = [];
  const debugLogger = createLogger({
    level: 'debug',
    destination: new Writable({ write: (chunk: Buffer, _enc, done) => { lines.push(chunk.toString()); done(); } }),
  });
  const loud = await UdpTransport.bind('0.0.0.0', 0, 65_535, undefined, { onDatagram: () => undefined }, debugLogger);
  t.teardown(() => loud.close());
  loud.send(Buffer.from('x'), '255.255.255.255', 9);
  while (!lines.some((l) => l.includes('udp send failed')) && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  t.ok(lines.some((l) => l.includes('udp send failed')), 'logged at debug');
});
