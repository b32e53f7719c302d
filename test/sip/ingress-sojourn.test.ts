/**
 * Ingress under a synthetic backlog, on a fake clock: what is queued is
 * judged by how long it waited (sojourn time), not by how many wait. A
 * request arriving behind a stale backlog is served first (adaptive LIFO),
 * the stale head is answered 503 + Retry-After, and nothing is lost or
 * answered twice.
 */
import t from 'tap';
import { Ingress } from '../../src/sip/ingress.js';
import type { Endpoint } from '../../src/sip/message.js';
import { fakeHost, rawRequest } from './ingress-fixtures.js';

const local: Endpoint = { protocol: 'udp', address: '127.0.0.1', port: 5060 };

function subscribe(callId: string, source: Endpoint, opts: { toTag?: string } = {}): Buffer {
  return rawRequest('SUBSCRIBE', callId, source, opts);
}

const drained = async (ingress: Ingress): Promise<void> => {
  for (let i = 0; i < 10_000 && ingress.stats.queued > 0; i++) await new Promise((r) => setImmediate(r));
};

t.test('a request behind a stale backlog is served first; the stale head gets 503, none lost, none twice', async (t) => {
  const clock = { now: 10_000 };
  const { host, delivered, shed } = fakeHost(clock, 1);
  const ingress = new Ingress(host, { clock: { now: () => clock.now }, random: () => 0.5, sliceMs: 5, maxWaitMs: 1000, lifoAfterMs: 50 });
  const storm: Endpoint = { protocol: 'udp', address: '127.0.0.1', port: 40000 };
  // another source: under overload it is admitted while it has fewer queued than the average source (fairness)
  const phone: Endpoint = { protocol: 'udp', address: '127.0.0.2', port: 40001 };
  // the backlog: 600 new requests queued over 600 ms while nothing was drained (the loop was busy)
  for (let i = 0; i < 600; i++) {
    ingress.receive(subscribe(`b${i}`, storm), storm, local, undefined, false);
    clock.now += 1;
  }
  // the storm is over; 500 ms later a phone subscribes
  clock.now += 500;
  ingress.receive(subscribe('fresh', phone), phone, local, undefined, false);
  await drained(ingress);

  t.equal(delivered[0], 'fresh', 'the fresh request is processed first, not after the backlog');
  const answered = new Set([...delivered, ...shed.map((s) => s.callId)]);
  t.equal(delivered.length + shed.length, answered.size, 'no request answered twice');
  for (let i = 0; i < 600; i++) if (!answered.has(`b${i}`)) t.fail(`b${i} unanswered`);
  t.ok(shed.length > 0, `the stale head was shed (${shed.length})`);
  for (const s of shed) {
    t.ok(s.callId.startsWith('b'), `${s.callId}: only backlog is shed`);
    if (!(s.retryAfter >= 1)) t.fail(`${s.callId}: Retry-After ${s.retryAfter}`);
  }
  // the oldest were shed, the backlog still young enough served newest first (LIFO)
  t.ok(shed.some((s) => s.callId === 'b0'), 'the oldest was shed');
  const served = delivered.slice(1).map((id) => Number(id.slice(1)));
  t.ok(served.length > 0, `part of the backlog was served (${served.length})`);
  t.same(served, [...served].sort((x, y) => y - x), 'newest first');
  t.equal(ingress.stats.shedOverload, shed.length);
});

t.test('no backlog: new requests are served in arrival order (FIFO)', async (t) => {
  const clock = { now: 10_000 };
  const { host, delivered, shed } = fakeHost(clock, 0);
  const ingress = new Ingress(host, { clock: { now: () => clock.now }, lifoAfterMs: 50 });
  const src: Endpoint = { protocol: 'udp', address: '127.0.0.1', port: 40000 };
  for (let i = 0; i < 100; i++) ingress.receive(subscribe(`n${i}`, src), src, local, undefined, false);
  await drained(ingress);
  t.same(delivered, Array.from({ length: 100 }, (_, i) => `n${i}`));
  t.equal(shed.length, 0);
});

t.test('in-dialog requests still go before new ones while the new lane is served newest first', async (t) => {
  const clock = { now: 10_000 };
  const { host, delivered } = fakeHost(clock, 1);
  const ingress = new Ingress(host, { clock: { now: () => clock.now }, sliceMs: 1000, lifoAfterMs: 50 });
  const src: Endpoint = { protocol: 'udp', address: '127.0.0.1', port: 40000 };
  for (let i = 0; i < 100; i++) {
    ingress.receive(subscribe(`n${i}`, src), src, local, undefined, false);
    clock.now += 1;
  }
  ingress.receive(subscribe('refresh', src, { toTag: 'gw' }), src, local, undefined, false);
  await drained(ingress);
  t.equal(delivered[0], 'refresh', 'the refresh first');
  t.equal(delivered[1], 'n99', 'then the newest new request (the head waited over 50 ms)');
  t.equal(delivered.length, 101, 'all served (none waited past maxWaitMs)');
});
