/**
 * Ingress under a storm the queue delay cannot see, on a fake clock: the kernel's receive buffer
 * backing up shows as saturated reads (a full read batch turn after turn), and a phone admitted
 * under overload (its fair share) is served before the flood's backlog, not behind it.
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

t.test('full read batches turn after turn are overload: new requests shed though the queue is young, quiet again after a light turn', async (t) => {
  const clock = { now: 10_000 };
  const { host, delivered, shed } = fakeHost(clock, 0);
  const ingress = new Ingress(host, { clock: { now: () => clock.now }, random: () => 0.5 });
  let n = 0;
  const batch = async (size: number): Promise<void> => {
    for (let i = 0; i < size; i++) ingress.receive(rawRequest('SUBSCRIBE', `s${n++}`, storm), storm, local, undefined, false);
    await turn();
  };
  await batch(40);
  await batch(40);
  t.equal(shed.length, 0, 'two full turns: nothing shed yet (the queue itself never waited)');
  t.equal(ingress.readsSaturated(), true, 'the reads are saturated');
  t.equal(ingress.overloaded(), true, 'which is overload');
  await batch(40);
  t.equal(shed.length, 40, 'the third full turn is shed, 503 + Retry-After');
  t.ok(shed.every((s) => s.retryAfter >= 1));
  t.equal(delivered.length + shed.length, 120, 'every request answered or served');
  await batch(5);
  t.equal(ingress.readsSaturated(), false, 'a turn that reads less than a batch ends it');
  t.equal(shed.length, 45, 'its requests read while still saturated were shed');
  await batch(5);
  t.equal(delivered.length, 85, 'the next are accepted again');
});

t.test('a full turn with nothing queued (all shed or absorbed) still ends in a drain that counts it', async (t) => {
  const clock = { now: 10_000 };
  const { host, shed } = fakeHost(clock, 0);
  let busy = true;
  const load: LoadSignal = { overloaded: () => busy, close: () => undefined };
  const ingress = new Ingress(host, { clock: { now: () => clock.now }, random: () => 0.5, load });
  for (let r = 0; r < 3; r++) {
    for (let i = 0; i < 40; i++) ingress.receive(rawRequest('SUBSCRIBE', `s${r}-${i}`, storm), storm, local, undefined, false);
    await turn();
  }
  t.equal(shed.length, 120, 'all shed for the event loop');
  t.equal(ingress.readsSaturated(), true);
  busy = false;
  ingress.receive(rawRequest('SUBSCRIBE', 'quiet', storm), storm, local, undefined, false);
  await turn();
  t.equal(ingress.readsSaturated(), false, 'not stuck saturated once the reads are light');
});

t.test('while the reads are saturated the processing slice shrinks, so the sockets are read more often', async (t) => {
  const clock = { now: 10_000 };
  const { host, delivered } = fakeHost(clock, 1);
  const ingress = new Ingress(host, { clock: { now: () => clock.now }, random: () => 0.5, sliceMs: 8, queueDelayMs: 1e9, maxWaitMs: 1e9 });
  const servedPerTurn: number[] = [];
  let n = 0;
  for (let r = 0; r < 4; r++) {
    const before = delivered.length;
    // in-dialog refreshes: never shed, so the slice alone bounds what one turn serves
    for (let i = 0; i < 40; i++) ingress.receive(rawRequest('SUBSCRIBE', `r${n++}`, storm, { toTag: 'x' }), storm, local, undefined, false);
    await turn();
    servedPerTurn.push(delivered.length - before);
  }
  t.equal(servedPerTurn[0], 8, 'a full slice while not yet saturated (8 ms at 1 ms each)');
  t.equal(servedPerTurn[2], 2, 'a quarter of it once saturated');
  await drained(ingress);
});

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
