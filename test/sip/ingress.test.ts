import t, { type Test } from 'tap';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { parseMessage } from '../../src/sip/parser.js';
import type { SipResponse } from '../../src/sip/message.js';
import { createResponse } from '../../src/sip/message.js';
import { SipStack, type SipStackOptions } from '../../src/sip/stack.js';
import { scanRaw } from '../../src/sip/raw-scan.js';
import { SourceLimiter } from '../../src/sip/source-limiter.js';
import { silentLogger } from '../../src/util/logger.js';
import { rawRequest } from './ingress-fixtures.js';

interface Peer {
  socket: Socket;
  address: string;
  port: number;
  /** final responses by Call-ID */
  answers: Map<string, SipResponse[]>;
}

async function peer(t: Test, address = '127.0.0.1'): Promise<Peer> {
  const socket = createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 });
  socket.bind(0, address);
  await once(socket, 'listening');
  t.teardown(() => socket.close());
  const answers = new Map<string, SipResponse[]>();
  socket.on('message', (msg: Buffer) => {
    const parsed = parseMessage(msg);
    if (!parsed.ok || parsed.message.kind !== 'response') return;
    const id = parsed.message.headers.get('call-id') ?? '';
    const list = answers.get(id) ?? [];
    list.push(parsed.message);
    answers.set(id, list);
  });
  return { socket, address, port: socket.address().port, answers };
}

function request(p: Peer, callId: string, opts: { toTag?: string; branch?: string; method?: string } = {}): Buffer {
  return rawRequest(opts.method ?? 'SUBSCRIBE', callId, p, {
    ...(opts.toTag !== undefined ? { toTag: opts.toTag } : {}),
    ...(opts.branch !== undefined ? { branch: opts.branch } : {}),
    rport: true,
    extra: ['Expires: 600', `Contact: <sip:w@${p.address}:${p.port}>`],
  });
}

function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    /* a slow TU */
  }
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A stack whose request handler costs `costMs` per request (capacity 1000/costMs a second). */
async function slowStack(t: Test, costMs: number, extra: Partial<SipStackOptions> = {}) {
  const stack = await SipStack.start({
    listen: [{ protocol: 'udp', address: '127.0.0.1', port: 0 }],
    logger: silentLogger(),
    load: false,
    udpBufferBytes: 4 * 1024 * 1024,
    retryAfterSec: 5,
    ...extra,
  });
  t.teardown(() => stack.close());
  const handled: string[] = [];
  stack.onRequest((req) => {
    busy(costMs);
    handled.push(req.request.headers.get('call-id') ?? '');
    req.respond(createResponse(req.request, 200, undefined, { toTag: 'gw' }));
  });
  return { stack, port: stack.localEndpoint('udp')!.port, handled };
}

async function settle(p: Peer[], expected: number, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const got = p.reduce((a, x) => a + x.answers.size, 0);
    if (got >= expected) break;
    await sleep(20);
  }
  await sleep(200); // late duplicates, if any, would show now
}

t.test('raw scan: method, in-dialog, the values a stateless answer copies; unusual input left to the parser', async (t) => {
  const s = scanRaw(
    Buffer.from('SUBSCRIBE sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nf: <sip:x@y>;tag=1\r\nt: <sip:a@b;tag=no>\r\ni: c1\r\nCSeq: 2 SUBSCRIBE\r\n\r\n'),
  );
  t.equal(s?.kind, 'request');
  t.equal(s?.method, 'SUBSCRIBE');
  t.equal(s?.toTagged, false, 'a tag inside the URI is not the header tag');
  t.same(s?.via, ['SIP/2.0/UDP h;branch=z9hG4bK1']);
  t.equal(s?.callId, 'c1');
  const d = scanRaw(Buffer.from('PUBLISH sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 PUBLISH\r\nSIP-If-Match: e1\r\n\r\n'));
  t.equal(d?.conditional, true);
  t.equal(scanRaw(Buffer.from('SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>;tag=2\r\nCall-ID: c\r\nCSeq: 1 NOTIFY\r\n\r\n'))?.kind, 'response');
  t.equal(scanRaw(Buffer.from('SUBSCRIBE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n folded\r\n\r\n')), null, 'folded lines: the full parser');
  t.equal(scanRaw(Buffer.from('SUBSCRIBE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n')), null, 'no end of headers');
  t.equal(scanRaw(Buffer.from('SUBSCRIBE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nCall-ID: c\r\n\r\n')), null, 'no From/To/CSeq');
});

t.test('synthetic overload: every new request answered (200 or 503 + Retry-After with a To tag), none twice, none unanswered', async (t) => {
  const { stack, port, handled } = await slowStack(t, 2); // capacity about 500/s
  const a = await peer(t);
  const total = 1500;
  for (let i = 0; i < total; i++) {
    a.socket.send(request(a, `s${i}`), port, '127.0.0.1');
    if (i % 10 === 9) await turn(); // about 10 per turn of the loop: several times the capacity
  }
  await settle([a], total, 20_000);
  let ok = 0;
  let refused = 0;
  const unanswered: string[] = [];
  for (let i = 0; i < total; i++) {
    const got = a.answers.get(`s${i}`);
    if (got === undefined) {
      unanswered.push(`s${i}`);
      continue;
    }
    t.equal(got.length, 1, `s${i}: one answer`);
    const r = got[0]!;
    if (r.status === 200) ok++;
    else if (r.status === 503) {
      refused++;
      const retry = Number(r.headers.get('retry-after'));
      if (!(retry >= 1 && retry <= 60)) t.fail(`s${i}: Retry-After ${r.headers.get('retry-after')}`);
      if (!/;tag=ov[0-9a-f]+$/.test(r.headers.get('to') ?? '')) t.fail(`s${i}: To tag on the 503: ${r.headers.get('to')}`);
      if (r.headers.get('via')?.includes('received=127.0.0.1') !== true && r.headers.get('via')?.includes('rport=') !== true) {
        t.fail(`s${i}: Via of the 503 not stamped: ${r.headers.get('via')}`);
      }
    } else t.fail(`s${i}: status ${r.status}`);
  }
  t.same(unanswered, [], 'no request left unanswered');
  t.ok(refused > 0, `some shed (${refused})`);
  t.ok(ok > 0, `some served (${ok})`);
  t.equal(ok, handled.length, 'the handler saw exactly the served ones');
  t.equal(stack.overloadRefusals, refused);
  t.ok(stack.ingressStats().maxQueued < total, `the queue stayed bounded (max ${stack.ingressStats().maxQueued})`);
});

t.test('fair across two sources: the flooding source is shed, the light one served', async (t) => {
  const { port } = await slowStack(t, 2);
  const flood = await peer(t, '127.0.0.1');
  const light = await peer(t, '127.0.0.2'); // sources are told apart by address
  const floodTotal = 1500;
  let lightSent = 0;
  for (let i = 0; i < floodTotal; i++) {
    flood.socket.send(request(flood, `f${i}`), port, '127.0.0.1');
    if (i % 30 === 0) light.socket.send(request(light, `l${lightSent++}`), port, '127.0.0.1');
    if (i % 10 === 9) await turn();
  }
  await settle([flood, light], floodTotal + lightSent, 20_000);
  const statuses = (p: Peer, prefix: string, n: number) => {
    let ok = 0;
    let shed = 0;
    let none = 0;
    for (let i = 0; i < n; i++) {
      const s = p.answers.get(`${prefix}${i}`)?.[0]?.status;
      if (s === 200) ok++;
      else if (s === 503) shed++;
      else none++;
    }
    return { ok, shed, none };
  };
  const f = statuses(flood, 'f', floodTotal);
  const l = statuses(light, 'l', lightSent);
  t.equal(f.none + l.none, 0, 'every request answered');
  t.ok(f.shed > floodTotal / 3, `the flooder is shed (${f.shed} of ${floodTotal})`);
  t.ok(l.ok >= lightSent * 0.9, `the light source is served (${l.ok} of ${lightSent}, ${l.shed} shed)`);
});

t.test('in-dialog requests and responses go first: refreshes are served during a flood', async (t) => {
  const { port, handled } = await slowStack(t, 2);
  const flood = await peer(t, '127.0.0.1');
  const console_ = await peer(t, '127.0.0.3');
  const sentAt = new Map<string, number>();
  const answeredAt = new Map<string, number>();
  console_.socket.on('message', (msg: Buffer) => {
    const p = parseMessage(msg);
    if (p.ok && p.message.kind === 'response') answeredAt.set(p.message.headers.get('call-id') ?? '', performance.now());
  });
  let refreshes = 0;
  for (let i = 0; i < 1500; i++) {
    flood.socket.send(request(flood, `n${i}`), port, '127.0.0.1');
    if (i % 25 === 0) {
      const id = `r${refreshes++}`;
      sentAt.set(id, performance.now());
      console_.socket.send(request(console_, id, { toTag: 'gw' }), port, '127.0.0.1');
    }
    if (i % 10 === 9) await turn();
  }
  await settle([flood, console_], 1500 + refreshes, 20_000);
  let served = 0;
  const delays: number[] = [];
  for (const [id, at] of sentAt) {
    if (console_.answers.get(id)?.[0]?.status === 200) served++;
    const done = answeredAt.get(id);
    if (done !== undefined) delays.push(done - at);
  }
  t.equal(served, refreshes, `every refresh served with 200 (${served}/${refreshes})`);
  t.ok(handled.filter((h) => h.startsWith('r')).length === refreshes, 'all reached the handler');
  delays.sort((x, y) => x - y);
  const p90 = delays[Math.floor(delays.length * 0.9)] ?? Infinity;
  t.ok(p90 < 250, `refreshes answered quickly under the flood (p90 ${p90.toFixed(1)} ms)`);
  const shed = [...flood.answers.values()].filter((r) => r[0]?.status === 503).length;
  t.ok(shed > 0, `while new requests were shed (${shed})`);
});

t.test('retransmissions: of a queued request dropped, of an answered one repeated by its transaction', async (t) => {
  const { stack, port, handled } = await slowStack(t, 0);
  const a = await peer(t);
  const req = request(a, 'rx1');
  a.socket.send(req, port, '127.0.0.1');
  a.socket.send(req, port, '127.0.0.1'); // arrives while the first is still queued
  await settle([a], 1, 2000);
  t.equal(a.answers.get('rx1')?.length, 1, 'one answer for both copies');
  a.socket.send(req, port, '127.0.0.1');
  await sleep(200);
  t.equal(a.answers.get('rx1')?.length, 2, 'a later copy gets the same answer again');
  t.equal(a.answers.get('rx1')?.[1]?.status, 200);
  t.same(handled, ['rx1'], 'the handler saw the request once');
  t.equal(stack.ingressStats().absorbed, 2);
});

t.test('per-source token bucket: 503 + Retry-After past the burst, exempt sources and in-dialog requests pass', async (t) => {
  const { stack, port } = await slowStack(t, 0, { rateLimit: { ratePerSec: 0.5, burst: 3 } });
  const a = await peer(t);
  for (let i = 0; i < 5; i++) a.socket.send(request(a, `b${i}`), port, '127.0.0.1');
  a.socket.send(request(a, 'dlg', { toTag: 'gw' }), port, '127.0.0.1');
  await settle([a], 6, 3000);
  const status = (id: string) => a.answers.get(id)?.[0]?.status;
  t.same([0, 1, 2, 3, 4].map((i) => status(`b${i}`)), [200, 200, 200, 503, 503]);
  const limited = a.answers.get('b3')![0]!;
  t.match(limited.reason, /rate limited/);
  t.ok(Number(limited.headers.get('retry-after')) >= 2, 'Retry-After at least the time to the next token (2 s at 0.5/s)');
  t.equal(status('dlg'), 200, 'in-dialog requests are not limited');
  t.equal(stack.ingressStats().shedRateLimited, 2);
  stack.setRateLimitExemption((s) => s.address === '127.0.0.1');
  a.socket.send(request(a, 'b5'), port, '127.0.0.1');
  await settle([a], 7, 2000);
  t.equal(status('b5'), 200, 'an exempt source (trusted network, trunk) is not limited');
});

t.test('source limiter: refill over time, table bounded', async (t) => {
  let now = 0;
  const l = new SourceLimiter({ ratePerSec: 10, burst: 2, maxSources: 4, clock: { now: () => now } });
  t.ok(l.take('a'));
  t.ok(l.take('a'));
  t.notOk(l.take('a'));
  t.equal(l.secondsUntilToken('a'), 1);
  now += 100;
  t.ok(l.take('a'), 'one token after 100 ms at 10/s');
  for (const s of ['b', 'c', 'd', 'e', 'f']) l.take(s);
  t.ok(l.sources <= 4, `bounded (${l.sources})`);
  t.equal(l.limited, 1);
});

t.test('a retransmission of a shed request gets 503 again once the load is gone; a new request (new branch) is accepted', async (t) => {
  let overloaded = true;
  const { port, handled } = await slowStack(t, 0, { load: { overloaded: () => overloaded, close: () => undefined } });
  const a = await peer(t);
  const first = request(a, 'sh1');
  a.socket.send(first, port, '127.0.0.1');
  await settle([a], 1, 2000);
  t.equal(a.answers.get('sh1')?.[0]?.status, 503);
  overloaded = false;
  a.socket.send(first, port, '127.0.0.1'); // the same transaction, retransmitted
  await sleep(200);
  t.equal(a.answers.get('sh1')?.[1]?.status, 503, 'the retransmission is not accepted after its 503');
  t.equal(a.answers.get('sh1')?.[1]?.headers.get('to'), a.answers.get('sh1')?.[0]?.headers.get('to'), 'with the same To tag');
  t.equal(a.answers.get('sh1')?.[1]?.headers.get('retry-after'), a.answers.get('sh1')?.[0]?.headers.get('retry-after'), 'and the same Retry-After');
  a.socket.send(request(a, 'sh1', { branch: 'sh1-retry' }), port, '127.0.0.1'); // the client's retry after Retry-After
  await sleep(200);
  t.equal(a.answers.get('sh1')?.[2]?.status, 200, 'the retry is a new transaction and is served');
  t.same(handled, ['sh1']);
});
