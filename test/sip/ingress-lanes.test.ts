/**
 * Ingress lanes under a synthetic overload, on a fake clock: NOTIFY answers
 * first, then PUBLISHes (a trunk's or a phone's state, not a storm of new
 * subscriptions), then new SUBSCRIBEs; the event loop's lag alone sheds new
 * SUBSCRIBEs but no PUBLISH; a PUBLISH flood is shed by its own backlog; the
 * kernel's receive buffers are bounded while a SIP flood is shed.
 */
import t from 'tap';
import { Ingress } from '../../src/sip/ingress.js';
import type { Endpoint } from '../../src/sip/message.js';
import type { LoadSignal } from '../../src/sip/overload.js';
import { fakeHost, rawRequest } from './ingress-fixtures.js';

const local: Endpoint = { protocol: 'udp', address: '127.0.0.1', port: 5060 };
const storm: Endpoint = { protocol: 'udp', address: '127.0.0.1', port: 40000 };
const phone: Endpoint = { protocol: 'udp', address: '127.0.0.2', port: 40001 };
const trunk: Endpoint = { protocol: 'udp', address: '127.0.0.3', port: 5060 };

const request = (method: 'SUBSCRIBE' | 'PUBLISH', callId: string, source: Endpoint): Buffer => rawRequest(method, callId, source);

/** A watcher's 200 to one of our NOTIFYs. */
function notifyAnswer(callId: string, source: Endpoint): Buffer {
  return Buffer.from(
    [
      'SIP/2.0 200 OK',
      `Via: SIP/2.0/UDP ${local.address}:${local.port};branch=z9hG4bKn${callId}`,
      `From: <sip:anna@example.com>;tag=gw${callId}`,
      `To: <sip:w@${source.address}>;tag=w${callId}`,
      `Call-ID: ${callId}`,
      'CSeq: 2 NOTIFY',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  );
}

class FakeLoad implements LoadSignal {
  lagging = false;
  overloaded(): boolean {
    return this.lagging;
  }
  close(): void {}
}

const drained = async (ingress: Ingress): Promise<void> => {
  for (let i = 0; i < 10_000 && ingress.stats.queued > 0; i++) await new Promise((r) => setImmediate(r));
};

t.test('event-loop lag (a fan-out): NOTIFY answers first, then PUBLISHes, all served; only new SUBSCRIBEs shed', async (t) => {
  const clock = { now: 10_000 };
  const { host, delivered, shed: answers, buffers } = fakeHost(clock, 1);
  const shedIds = (): string[] => answers.map((a) => a.callId);
  const load = new FakeLoad();
  const ingress = new Ingress(host, { clock: { now: () => clock.now }, load, random: () => 0.5 });
  load.lagging = true;
  for (let i = 0; i < 200; i++) ingress.receive(notifyAnswer(`a${i}`, storm), storm, local, undefined, false);
  ingress.receive(request('SUBSCRIBE', 'sub-storm', storm), storm, local, undefined, false);
  ingress.receive(request('PUBLISH', 'pub-trunk', trunk), trunk, local, undefined, false);
  ingress.receive(request('SUBSCRIBE', 'sub-phone', phone), phone, local, undefined, false);
  ingress.receive(request('PUBLISH', 'pub-phone', phone), phone, local, undefined, false);
  await drained(ingress);
  t.same(delivered.slice(0, 200), Array.from({ length: 200 }, (_, i) => `a${i}`), 'the NOTIFY answers first, in order');
  // the phone's SUBSCRIBE is under its fair share (fairness across sources), so it is admitted, after the PUBLISHes
  t.same(delivered.slice(200), ['pub-trunk', 'pub-phone', 'sub-phone'], 'then the PUBLISHes, in arrival order, then new SUBSCRIBEs');
  t.ok(shedIds().includes('sub-storm'), 'the flooding source\'s new SUBSCRIBE is shed while the loop lags');
  t.notOk(shedIds().some((c) => c.startsWith('pub-')), 'no PUBLISH shed');
  t.same(buffers, [], 'lag alone is no SIP flood: the receive buffers stay as they are');
});

t.test('a queue backlog (a SUBSCRIBE flood): PUBLISHes still served, ahead of the new SUBSCRIBEs; buffers bounded, then restored', async (t) => {
  const clock = { now: 10_000 };
  const { host, delivered, shed: answers, buffers } = fakeHost(clock, 1);
  const shedIds = (): string[] => answers.map((a) => a.callId);
  const ingress = new Ingress(host, { clock: { now: () => clock.now }, random: () => 0.5, sliceMs: 1000 });
  // 300 new SUBSCRIBEs queue over 300 ms while nothing is drained (a busy loop)
  for (let i = 0; i < 300; i++) {
    ingress.receive(request('SUBSCRIBE', `s${i}`, storm), storm, local, undefined, false);
    clock.now += 1;
  }
  // a PBX on the same address as the flood's phones (one source as the ingress sees it)
  const pbx: Endpoint = { ...storm, port: 5060 };
  ingress.receive(request('PUBLISH', 'pub-trunk', pbx), pbx, local, undefined, false);
  t.ok(shedIds().length > 0, `the flood is shed once the queue's head waited past the target (${shedIds().length})`);
  t.same(buffers, [true], 'the receive buffers bounded');
  t.notOk(shedIds().includes('pub-trunk'), 'the PUBLISH is not shed');
  await drained(ingress);
  t.equal(delivered[0], 'pub-trunk', 'the PUBLISH is served before the queued SUBSCRIBEs');

  // quiet: 2 s later a NOTIFY answer, and the buffers are restored
  clock.now += 2500;
  ingress.receive(notifyAnswer('late', storm), storm, local, undefined, false);
  await drained(ingress);
  t.same(buffers, [true, false], 'restored after 2 s without shedding');
});

t.test('a PUBLISH flood is shed by its own backlog, with 503 + Retry-After', async (t) => {
  const clock = { now: 10_000 };
  const { host, shed: answers, delivered } = fakeHost(clock, 1);
  const shedIds = (): string[] => answers.map((a) => a.callId);
  const ingress = new Ingress(host, { clock: { now: () => clock.now }, random: () => 0.5 });
  for (let i = 0; i < 4400; i++) {
    ingress.receive(request('PUBLISH', `p${i}`, trunk), trunk, local, undefined, false);
    clock.now += 1;
  }
  t.ok(shedIds().length > 0, `PUBLISHes shed once their lane's head waited past the maximum wait (${shedIds().length})`);
  t.ok(Number(shedIds()[0]?.slice(1)) > 4000, `none shed while the head waited under 4 s (4 x maxWaitMs; the first shed: ${shedIds()[0]})`);
  await drained(ingress);
  const answered = new Set([...delivered, ...shedIds()]);
  t.equal(answered.size, 4400, 'every PUBLISH answered once');
  t.equal(delivered.length + shedIds().length, 4400);
});
