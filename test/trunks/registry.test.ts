import t from 'tap';
import { trunksSchema } from '../../src/trunks/config.js';
import { createResponse, type Endpoint, type SipRequest, type SipResponse } from '../../src/sip/message.js';
import { SipStack, type IncomingRequest } from '../../src/sip/stack.js';
import { TrunkRegistry, type TrunkSender } from '../../src/trunks/registry.js';
import type { TrunkStatus } from '../../src/trunks/trunk.js';
import { silentLogger } from '../../src/util/logger.js';
import { TimerWheel } from '../../src/util/timer-wheel.js';

const flush = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

type Answer = (req: SipRequest) => SipResponse;
const remote = (status: number): Answer => (req) => createResponse(req, status, undefined, { toTag: 'peer1' });
/** what our transaction layer makes on Timer F / transport failure: no To tag */
const local = (status: number): Answer => (req) => createResponse(req, status, undefined, { toTag: false });

class FakeSender implements TrunkSender {
  readonly sent: Array<{ request: SipRequest; destination: Endpoint }> = [];
  answer: Answer = remote(200);
  /** ms the clock moves while the request is out */
  delay = 0;
  constructor(private readonly clock: { now: number }) {}
  async sendRequest(request: SipRequest, options: { destination: Endpoint }): Promise<SipResponse> {
    this.sent.push({ request, destination: options.destination });
    this.clock.now += this.delay;
    return this.answer(request);
  }
}

function setup(trunks: unknown[], resolver?: (uri: string) => Promise<Endpoint[]>) {
  const clock = { now: 1_000_000 };
  const wheel = new TimerWheel({ autoStart: false, clock: { now: () => clock.now }, resolutionMs: 1000 });
  const sender = new FakeSender(clock);
  const resolved: string[] = [];
  const registry = new TrunkRegistry({
    trunks: trunksSchema.parse(trunks),
    sender,
    fromUri: 'sip:presence-gateway@gw.example.test',
    logger: silentLogger(),
    clock: { now: () => clock.now },
    wheel,
    resolver: async (uri) => {
      resolved.push(uri);
      if (resolver !== undefined) return resolver(uri);
      const host = /^sips?:([^:;]+)/.exec(uri)?.[1] ?? '';
      return [{ protocol: uri.includes('transport=tcp') ? 'tcp' : 'udp', address: host, port: 5060 }];
    },
  });
  return {
    clock,
    wheel,
    sender,
    registry,
    resolved,
    tick: async (ms: number) => {
      clock.now += ms;
      wheel.advance();
      await flush();
    },
  };
}

t.test('OPTIONS pings: request shape, rtt, reachable flips, status listener on changes only', async (t) => {
  const { sender, registry, resolved, tick, wheel } = setup([
    { name: 'pbx1', address: 'sip:10.0.0.5;transport=tcp', domain: 'pbx.example.test', optionsIntervalSec: 30 },
    { name: 'quiet', address: 'sip:10.0.0.6', optionsIntervalSec: 0 },
  ]);
  const seen: TrunkStatus[] = [];
  registry.onStatus((s) => seen.push(s));
  sender.delay = 12;
  await registry.start();
  await flush();

  t.equal(sender.sent.length, 1, 'only the trunk with an interval is pinged');
  const first = sender.sent[0]!;
  t.equal(first.request.method, 'OPTIONS');
  t.equal(first.request.uri, 'sip:pbx.example.test');
  t.match(first.request.headers.get('from'), /^<sip:presence-gateway@gw\.example\.test>;tag=\w+$/);
  t.equal(first.request.headers.get('to'), '<sip:pbx.example.test>');
  t.equal(first.request.headers.get('max-forwards'), '70');
  t.equal(first.request.headers.get('cseq'), '1 OPTIONS');
  t.ok(first.request.headers.get('call-id'));
  t.same(first.destination, { protocol: 'tcp', address: '10.0.0.5', port: 5060 });

  const pbx1 = registry.get('pbx1')!;
  t.equal(pbx1.status().reachable, true);
  t.equal(pbx1.status().rttMs, 12);
  t.equal(pbx1.status().lastPingAt, 1_000_012);
  t.equal(registry.get('quiet')!.status().reachable, undefined, 'never pinged: unknown');
  t.equal(seen.length, 1);
  t.equal(seen[0]!.name, 'pbx1');
  t.equal(seen[0]!.reachable, true);

  // not due yet
  await tick(29_000);
  t.equal(sender.sent.length, 1);
  // a 404 is an answer: still alive, nothing changes for listeners
  sender.answer = remote(404);
  sender.delay = 3;
  await tick(2_000); // due 30 s after the first answer, on the wheel's 1 s ticks
  t.equal(sender.sent.length, 2);
  t.equal(sender.sent[1]!.request.headers.get('cseq'), '2 OPTIONS');
  t.equal(pbx1.status().rttMs, 3);
  t.equal(seen.length, 1, 'no flip, no event');

  // no answer (our own 408): unreachable, error, a new resolution
  const resolvedBefore = resolved.length;
  sender.answer = local(408);
  await tick(31_000);
  t.equal(pbx1.status().reachable, false);
  t.match(pbx1.status().lastError?.message, /OPTIONS to 10\.0\.0\.5:5060\/tcp: 408 Request Timeout/);
  t.equal(seen.length, 2);
  t.equal(seen[1]!.reachable, false);
  t.ok(resolved.length > resolvedBefore, 're-resolved after a failure');
  const sentBefore = sender.sent.length;
  await tick(31_000);
  t.equal(sender.sent.length, sentBefore + 1, 'a dead trunk is still pinged');
  t.equal(seen.length, 2, 'the same failure again is no change');

  // a peer's own 503 means it is alive (overloaded), a 401 too
  sender.answer = remote(503);
  await tick(31_000);
  t.equal(pbx1.status().reachable, true);
  t.equal(seen.length, 3);
  sender.answer = remote(401);
  await tick(31_000);
  t.equal(pbx1.status().reachable, true);
  t.equal(seen.length, 3);

  // a local 503 (transport failure) means unreachable
  sender.answer = local(503);
  await tick(31_000);
  t.equal(pbx1.status().reachable, false);
  t.equal(seen.length, 4);

  t.equal(wheel.size, 1, 'one wheel entry for the one pinged trunk');
  registry.close();
  t.equal(wheel.size, 0);
  const count = sender.sent.length;
  await tick(120_000);
  t.equal(sender.sent.length, count, 'no pings after close');
});

t.test('a trunk that does not resolve does not block start and is unreachable with the error', async (t) => {
  const { sender, registry } = setup(
    [
      { name: 'gone', address: 'sip:gone.example.invalid' },
      { name: 'ok', address: 'sip:10.0.0.7' },
    ],
    async (uri) => {
      if (uri.includes('invalid')) throw new Error('getaddrinfo ENOTFOUND gone.example.invalid');
      return [{ protocol: 'udp', address: '10.0.0.7', port: 5060 }];
    },
  );
  await registry.start();
  await flush();
  const gone = registry.get('gone')!.status();
  t.equal(gone.reachable, false);
  t.match(gone.lastError?.message, /cannot resolve gone\.example\.invalid: getaddrinfo ENOTFOUND/);
  t.equal(registry.get('ok')!.status().reachable, true);
  t.equal(sender.sent.length, 1, 'only the resolvable trunk was pinged');
  t.same(
    registry.statuses().map((s) => s.name),
    ['gone', 'ok'],
  );
  registry.close();
});

t.test('start does not wait for a hanging resolver longer than startWaitMs', async (t) => {
  const registry = new TrunkRegistry({
    trunks: trunksSchema.parse([{ name: 'slow', address: 'sip:slow.example.test' }]),
    sender: new FakeSender({ now: 0 }),
    fromUri: 'sip:gw@gw.example.test',
    logger: silentLogger(),
    resolver: () => new Promise<Endpoint[]>(() => undefined),
    startWaitMs: 20,
    wheel: new TimerWheel({ autoStart: false }),
  });
  await registry.start();
  t.equal(registry.get('slow')!.status().reachable, undefined, 'still pending, start returned');
  registry.close();
});

t.test('fromSource: resolved address, IPv4-mapped form, inboundAddresses, unknown', async (t) => {
  const { registry } = setup([
    { name: 'pbx1', address: 'sip:10.0.0.5', optionsIntervalSec: 0 },
    { name: 'pbx2', address: 'sip:10.0.0.9', inboundAddresses: ['10.0.1.0/24', '2001:db8::/64'], optionsIntervalSec: 0 },
    { name: 'viaproxy', address: 'sip:10.0.0.20', outboundProxy: 'sip:10.0.0.30', optionsIntervalSec: 0 },
  ]);
  await registry.start();
  await flush();
  const src = (address: string): Endpoint => ({ protocol: 'udp', address, port: 40000 });
  t.equal(registry.fromSource(src('10.0.0.5'))?.name, 'pbx1');
  t.equal(registry.fromSource(src('::ffff:10.0.0.5'))?.name, 'pbx1');
  t.equal(registry.fromSource(src('10.0.0.9'))?.name, 'pbx2');
  t.equal(registry.fromSource(src('10.0.1.77'))?.name, 'pbx2');
  t.equal(registry.fromSource(src('2001:db8::42'))?.name, 'pbx2');
  t.equal(registry.fromSource(src('10.0.0.20'))?.name, 'viaproxy', 'the address, not the proxy, identifies the trunk');
  t.equal(registry.fromSource(src('10.0.0.30')), undefined);
  t.equal(registry.fromSource(src('10.0.2.1')), undefined);
  t.equal(registry.fromSource(src('garbage')), undefined);
  t.same(
    registry.all().map((x) => x.name),
    ['pbx1', 'pbx2', 'viaproxy'],
  );
  registry.close();
});

t.test('a real SipStack on 127.0.0.1 answering OPTIONS, then gone', async (t) => {
  const timers = { t1: 20, t2: 80, t4: 50 };
  const peer = await SipStack.start({ listen: [{ protocol: 'udp', address: '127.0.0.1', port: 0 }], logger: silentLogger(), timers });
  const gateway = await SipStack.start({ listen: [{ protocol: 'udp', address: '127.0.0.1', port: 0 }], logger: silentLogger(), timers });
  t.teardown(() => gateway.close());
  let peerClosed = false;
  t.teardown(() => (peerClosed ? undefined : peer.close()));
  const got: IncomingRequest[] = [];
  peer.onRequest((req) => {
    got.push(req);
    req.respond(createResponse(req.request, 200, 'OK', { toTag: 'peer-tag' }));
  });
  const port = peer.localEndpoint('udp')!.port;
  const registry = new TrunkRegistry({
    trunks: trunksSchema.parse([{ name: 'local', address: `sip:127.0.0.1:${port}`, optionsIntervalSec: 3600 }]),
    sender: gateway,
    fromUri: 'sip:presence-gateway@gw.example.test',
    logger: silentLogger(),
  });
  t.teardown(() => registry.close());
  const events: TrunkStatus[] = [];
  registry.onStatus((s) => events.push(s));
  await registry.start();
  const first = await registry.ping('local')!;
  t.equal(first.reachable, true);
  t.type(first.rttMs, 'number');
  t.ok(got.length >= 1);
  const req = got[0]!.request;
  t.equal(req.method, 'OPTIONS');
  t.equal(req.uri, 'sip:127.0.0.1');
  t.equal(req.headers.get('max-forwards'), '70');
  t.match(req.headers.get('from'), /^<sip:presence-gateway@gw\.example\.test>;tag=/);

  await peer.close();
  peerClosed = true;
  const second = await registry.ping('local')!;
  t.equal(second.reachable, false);
  t.match(second.lastError?.message, /OPTIONS to 127\.0\.0\.1:\d+\/udp: (408|503)/);
  t.same(
    events.map((e) => e.reachable),
    [true, false],
  );
});
