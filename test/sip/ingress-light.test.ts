/**
 * Ingress under a storm, on a fake clock: a phone admitted under overload (its fair share) is
 * served before the flood's backlog, not behind it.
 */
import t from 'tap';
import { Ingress } from '../../src/sip/ingress.js';
import type { LoadSignal } from '../../src/sip/overload.js';
import type { Endpoint } from '../../src/sip/message.js';
import { fakeHost, rawRequest } from './ingress-fixtures.js';

const local: Endpoint = { protocol: 'udp', address: '127.0.0.1', port: 5060 };
const storm: Endpoint = { protocol: 'udp', address: '127.0.0.1', port: 40000 };
const phone: Endpoint = { protocol: 'udp', address: '127.0.0.2', port: 40001 };

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
const drained = async (ingress: Ingress): Promise<void> => {
  for (let i = 0; i < 10_000 && ingress.stats.queued > 0; i++) await turn();
};

t.test('a phone admitted under overload is served before the flood already queued', async (t) => {
  const clock = { now: 10_000 };
  const { host, delivered, shed } = fakeHost(clock, 1);
  let busy = false;
  const load: LoadSignal = { overloaded: () => busy, close: () => undefined };
  const ingress = new Ingress(host, { clock: { now: () => clock.now }, random: () => 0.5, load, sliceMs: 5 });
  // the flood was queued before the overload was seen (one read's worth, young: first in, first out)
  for (let i = 0; i < 30; i++) ingress.receive(rawRequest('SUBSCRIBE', `f${i}`, storm), storm, local, undefined, false);
  busy = true;
  ingress.receive(rawRequest('SUBSCRIBE', 'more', storm), storm, local, undefined, false);
  ingress.receive(rawRequest('SUBSCRIBE', 'phone', phone), phone, local, undefined, false);
  await drained(ingress);
  t.same(shed.map((s) => s.callId), ['more'], 'the flooding source is shed');
  t.equal(delivered[0], 'phone', 'the phone goes first');
  t.same(delivered.slice(1), Array.from({ length: 30 }, (_, i) => `f${i}`), 'then the flood, in order');
});
