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

t.test('full read batches turn after turn are overload: the queue held at 64 though it is young, the rest shed; over after a light turn', async (t) => {
  const clock = { now: 10_000 };
  // 1 ms a request, 4 ms slices: a turn serves 4 of the 40 it reads
  const { host, delivered, shed } = fakeHost(clock, 1);
  const ingress = new Ingress(host, { clock: { now: () => clock.now }, random: () => 0.5, sliceMs: 4 });
  let n = 0;
  let maxQueued = 0;
  const batch = async (size: number): Promise<void> => {
    for (let i = 0; i < size; i++) {
      ingress.receive(rawRequest('SUBSCRIBE', `s${n++}`, storm), storm, local, undefined, false);
      maxQueued = Math.max(maxQueued, ingress.stats.queued);
    }
    await turn();
  };
  await batch(40);
  await batch(40);
  t.equal(shed.length, 0, 'two full turns: nothing shed yet');
  t.equal(ingress.readsSaturated(), true, 'the reads are saturated');
  t.ok(ingress.queueDelay() < 150, `though the queue is young (${ingress.queueDelay()} ms)`);
  t.equal(ingress.overloaded(), true, 'which is overload');
  maxQueued = 0;
  const atStart = ingress.stats.queued;
  await batch(40);
  await batch(40);
  t.ok(shed.length >= 40, `beyond the held queue the reads are shed, 503 + Retry-After (${shed.length})`);
  t.ok(shed.every((s) => s.retryAfter >= 1));
  t.ok(maxQueued <= Math.max(65, atStart), `once saturated the queue grows no more past 64 (max ${maxQueued}, ${atStart} at the start)`);
  await drained(ingress);
  t.equal(delivered.length + shed.length, 160, 'every request answered or served');
  await batch(5);
  t.equal(ingress.readsSaturated(), false, 'a turn that reads less than a batch ends it');
  const before = shed.length;
  await batch(5);
  await drained(ingress);
  t.equal(shed.length, before, 'accepted again');
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
