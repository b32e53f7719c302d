import t from 'tap';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { UdpTransport } from '../../src/sip/transport/udp.js';
import { silentLogger } from '../../src/util/logger.js';

t.test('UDP send: to an IP literal (answered without a DNS tick) and to a name (dns.lookup)', async (t) => {
  const peer = createSocket('udp4');
  peer.bind(0, '127.0.0.1');
  await once(peer, 'listening');
  t.teardown(() => peer.close());
  const got: string[] = [];
  peer.on('message', (m) => got.push(m.toString('latin1')));
  const udp = await UdpTransport.bind('127.0.0.1', 0, 65_535, undefined, { onDatagram: () => undefined }, silentLogger());
  t.teardown(() => udp.close());
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
