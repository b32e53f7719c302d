import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { Headers } from '../../src/sip/headers.js';
import { createRequest, createResponse, type Endpoint, type SipRequest, type SipResponse } from '../../src/sip/message.js';
import { TimerQueue, resolveTimers } from '../../src/sip/transaction/timers.js';
import {
  TransactionLayer,
  type NewServerRequest,
  type TransactionTransport,
} from '../../src/sip/transaction/transaction-layer.js';
import { responseTarget } from '../../src/sip/transport/routing.js';
import { parseVia } from '../../src/sip/header-values.js';
import { silentLogger } from '../../src/util/logger.js';
import { setTransactionRefusals } from '../../src/sip/transaction/state.js';

// any transaction state change the non-INVITE graph refuses fails these tests
setTransactionRefusals('throw');

interface Sent {
  text: string;
  destination: Endpoint;
  connectionId: string | undefined;
}

class FakeTransport implements TransactionTransport {
  sent: Sent[] = [];
  open = new Set<string>();
  refs = new Map<string, number>();
  newConnections = 0;
  failTcp = false;

  send(data: Buffer, destination: Endpoint, connectionId?: string): string | undefined | null {
    this.sent.push({ text: data.toString('latin1'), destination, connectionId });
    if (destination.protocol === 'udp') return undefined;
    if (this.failTcp) return null;
    if (connectionId !== undefined && this.open.has(connectionId)) return connectionId;
    const id = `new-${++this.newConnections}`;
    this.open.add(id);
    return id;
  }
  isOpen(connectionId: string | undefined): boolean {
    return connectionId !== undefined && this.open.has(connectionId);
  }
  ref(id: string): void {
    this.refs.set(id, (this.refs.get(id) ?? 0) + 1);
  }
  unref(id: string): void {
    this.refs.set(id, (this.refs.get(id) ?? 0) - 1);
  }
  sentBy(protocol: string): { host: string; port: number } | undefined {
    return protocol === 'udp' ? { host: '192.0.2.10', port: 5060 } : { host: '192.0.2.10', port: 5070 };
  }
}

async function until(check: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline) await sleep(5);
}

const T = { t1: 20, t2: 80, t4: 50 };
const UDP_SRC: Endpoint = { protocol: 'udp', address: '198.51.100.7', port: 40000 };
const LOCAL: Endpoint = { protocol: 'udp', address: '192.0.2.10', port: 5060 };

function setup(): { layer: TransactionLayer; transport: FakeTransport; requests: NewServerRequest[] } {
  const transport = new FakeTransport();
  const layer = new TransactionLayer({ transport, logger: silentLogger(), timers: resolveTimers(T), allow: ['SUBSCRIBE', 'NOTIFY'] });
  const requests: NewServerRequest[] = [];
  layer.onRequest = (r) => requests.push(r);
  return { layer, transport, requests };
}

function request(opts: { method?: string; branch?: string; via?: string; toTag?: string; cseq?: number; fromTag?: string } = {}): SipRequest {
  const method = opts.method ?? 'SUBSCRIBE';
  const via = opts.via ?? `SIP/2.0/UDP phone.example.com:5062;branch=${opts.branch ?? 'z9hG4bKaaa'};rport`;
  return createRequest(
    method,
    'sip:alice@gw.example.com',
    Headers.from([
      ['Via', via],
      ['From', `<sip:bob@example.com>;tag=${opts.fromTag ?? 'f1'}`],
      ['To', `<sip:alice@gw.example.com>${opts.toTag === undefined ? '' : `;tag=${opts.toTag}`}`],
      ['Call-ID', 'cid-1'],
      ['CSeq', `${opts.cseq ?? 1} ${method}`],
      ['Max-Forwards', '70'],
    ]),
  );
}

function statusOf(s: Sent | undefined): number | undefined {
  const m = s === undefined ? null : /^SIP\/2\.0 (\d{3}) /.exec(s.text);
  return m === null ? undefined : Number(m[1]);
}

t.test('TimerQueue fires in order, cancels, and re-arms for the head', async (t) => {
  const q = new TimerQueue();
  const fired: string[] = [];
  const target = (name: string) => ({ onTimer: (k: number) => fired.push(`${name}:${k}`) });
  q.schedule(500, target('b'), 2);
  const a = q.schedule(10, target('a'), 1);
  q.schedule(10, target('c'), 3);
  q.cancel(a);
  t.equal(q.size, 2);
  // a timer started from a callback in the same bucket must not delay the older ones
  q.schedule(10, { onTimer: () => { fired.push('d'); q.schedule(10, target('e'), 5); } }, 4);
  await until(() => fired.length >= 3);
  t.same(fired, ['c:3', 'd', 'e:5']);
  await until(() => fired.length >= 4);
  t.same(fired, ['c:3', 'd', 'e:5', 'b:2']);
  t.equal(q.size, 0);
  q.schedule(5, target('x'), 9);
  q.clear(true);
  q.schedule(5, target('y'), 9);
  await sleep(20);
  t.same(fired, ['c:3', 'd', 'e:5', 'b:2'], 'cleared and closed queue fires nothing');
});

t.test('TimerQueue drops cancelled entries once they outnumber the live ones, and still fires the rest in order', async (t) => {
  const q = new TimerQueue();
  const fired: number[] = [];
  const target = { onTimer: (k: number) => fired.push(k) };
  // a long bucket full of cancelled guards (Timer F, the TU guard), as after a burst of transactions
  const long = Array.from({ length: 10_000 }, () => q.schedule(60_000, target, 0));
  const short = Array.from({ length: 5_000 }, (_, i) => q.schedule(15, target, i + 1));
  t.equal(q.held, 15_000);
  for (const h of long) q.cancel(h);
  for (const h of short.slice(0, -2)) q.cancel(h);
  t.equal(q.size, 2, 'two live timers');
  t.ok(q.held < 4_096 + 2, `cancelled entries dropped (held ${q.held})`);
  q.cancel(long[0]);
  t.equal(q.size, 2, 'cancelling a dropped entry again changes nothing');
  await until(() => fired.length >= 2);
  t.same(fired, [4_999, 5_000], 'the live ones fire, in order, from a bucket whose head was dropped');
  t.equal(q.held, 0);
  q.schedule(5, target, 9);
  await until(() => fired.length >= 3);
  t.same(fired, [4_999, 5_000, 9], 'a bucket dropped by the sweep is made again');
  q.clear(true);
});

t.test('resolveTimers keeps RFC defaults and accepts shorter values', async (t) => {
  t.same(resolveTimers(), { t1: 500, t2: 4000, t4: 5000 });
  t.same(resolveTimers({ t1: 10 }), { t1: 10, t2: 4000, t4: 5000 });
  t.same(resolveTimers({ t1: 100, t2: 50 }), { t1: 100, t2: 100, t4: 5000 }, 'T2 never below T1');
});

t.test('Via is stamped with received and rport; responses routed per §18.2.2', async (t) => {
  const { layer, transport, requests } = setup();
  layer.receiveRequest(request(), UDP_SRC, LOCAL, undefined);
  t.equal(requests.length, 1);
  const via = requests[0]!.request.headers.get('via')!;
  t.match(via, /;received=198\.51\.100\.7/);
  t.match(via, /;rport=40000/);
  requests[0]!.transaction.respond(createResponse(requests[0]!.request, 200, undefined, { toTag: 'x' }));
  t.same(transport.sent[0]!.destination, { protocol: 'udp', address: '198.51.100.7', port: 40000 });
  t.match(transport.sent[0]!.text, /Via: SIP\/2\.0\/UDP phone\.example\.com:5062;branch=z9hG4bKaaa;rport=40000;received=198\.51\.100\.7/);
  layer.close();
});

t.test('responseTarget without rport uses sent-by port; stream keeps the connection', async (t) => {
  const via = parseVia('SIP/2.0/UDP 198.51.100.7:5062;branch=z9hG4bKx')!;
  t.same(responseTarget(via, UDP_SRC, undefined), { destination: { protocol: 'udp', address: '198.51.100.7', port: 5062 } });
  const noPort = parseVia('SIP/2.0/UDP host.example.com;branch=z9hG4bKx;received=198.51.100.9')!;
  t.same(responseTarget(noPort, UDP_SRC, undefined).destination, { protocol: 'udp', address: '198.51.100.9', port: 5060 });
  const tcp = parseVia('SIP/2.0/TCP host.example.com:5066;branch=z9hG4bKx;received=198.51.100.9')!;
  t.same(responseTarget(tcp, { protocol: 'tcp', address: '198.51.100.9', port: 50000 }, 'tcp-4'), {
    destination: { protocol: 'tcp', address: '198.51.100.9', port: 5066 },
    connectionId: 'tcp-4',
  });
});

t.test('retransmissions are absorbed: handler once, last response re-sent', async (t) => {
  const { layer, transport, requests } = setup();
  layer.receiveRequest(request(), UDP_SRC, LOCAL, undefined);
  layer.receiveRequest(request(), UDP_SRC, LOCAL, undefined);
  t.equal(requests.length, 1, 'handler called once');
  t.equal(transport.sent.length, 0, 'nothing re-sent while Trying');
  const tx = requests[0]!.transaction;
  tx.respond(createResponse(requests[0]!.request, 100));
  layer.receiveRequest(request(), UDP_SRC, LOCAL, undefined);
  t.equal(transport.sent.length, 2, 'provisional repeated in Proceeding');
  t.equal(statusOf(transport.sent[1]), 100);
  tx.respond(createResponse(requests[0]!.request, 202, undefined, { toTag: 't' }));
  layer.receiveRequest(request(), UDP_SRC, LOCAL, undefined);
  t.equal(transport.sent.length, 4);
  t.equal(statusOf(transport.sent[3]), 202, 'final repeated in Completed');
  t.equal(transport.sent[3]!.text, transport.sent[2]!.text, 'byte-identical');
  t.equal(tx.respond(createResponse(requests[0]!.request, 500)), false, 'second final refused');
  t.equal(layer.serverCount, 1);
  await sleep(64 * T.t1 - 200);
  t.equal(tx.state, 'completed', 'still absorbing before Timer J');
  await until(() => tx.state === 'terminated');
  t.equal(tx.state, 'terminated', 'Timer J ended it');
  t.equal(layer.serverCount, 0);
  layer.receiveRequest(request(), UDP_SRC, LOCAL, undefined);
  t.equal(requests.length, 2, 'after Timer J the same request is new');
  layer.close();
});

t.test('over a stream Timer J is zero and the connection is referenced meanwhile', async (t) => {
  const { layer, transport, requests } = setup();
  transport.open.add('tcp-1');
  const src: Endpoint = { protocol: 'tcp', address: '198.51.100.7', port: 40001 };
  layer.receiveRequest(request({ via: 'SIP/2.0/TCP 198.51.100.7:40001;branch=z9hG4bKtcp' }), src, LOCAL, 'tcp-1');
  t.equal(transport.refs.get('tcp-1'), 1);
  requests[0]!.transaction.respond(createResponse(requests[0]!.request, 200));
  t.equal(transport.sent[0]!.connectionId, 'tcp-1');
  t.equal(requests[0]!.transaction.state, 'terminated');
  t.equal(layer.serverCount, 0);
  t.equal(transport.refs.get('tcp-1'), 0);
  layer.close();
});

t.test('RFC 2543 requests (no magic cookie) match on the fallback key', async (t) => {
  const { layer, requests } = setup();
  const via = 'SIP/2.0/UDP 198.51.100.7:5060;branch=oldstyle1';
  layer.receiveRequest(request({ via }), UDP_SRC, LOCAL, undefined);
  layer.receiveRequest(request({ via }), UDP_SRC, LOCAL, undefined);
  t.equal(requests.length, 1);
  layer.receiveRequest(request({ via: 'SIP/2.0/UDP 198.51.100.7:5060', fromTag: 'f2' }), UDP_SRC, LOCAL, undefined);
  t.equal(requests.length, 2, 'different top Via is a different transaction');
  layer.receiveRequest(request({ via: 'SIP/2.0/UDP 198.51.100.7:5060', fromTag: 'f2', cseq: 2 }), UDP_SRC, LOCAL, undefined);
  t.equal(requests.length, 3, 'different CSeq is a different transaction');
  layer.receiveRequest(request({ via: 'SIP/2.0/UDP 198.51.100.7:5060', fromTag: 'f2', cseq: 2 }), UDP_SRC, LOCAL, undefined);
  t.equal(requests.length, 3, 'its retransmission is absorbed');
  layer.close();
});

t.test('merged request → 482, not passed up', async (t) => {
  const { layer, transport, requests } = setup();
  layer.receiveRequest(request({ branch: 'z9hG4bKfork1' }), UDP_SRC, LOCAL, undefined);
  layer.receiveRequest(request({ branch: 'z9hG4bKfork2' }), UDP_SRC, LOCAL, undefined);
  t.equal(requests.length, 1);
  t.equal(statusOf(transport.sent[0]), 482);
  // with a To tag (in-dialog) no merge check applies
  layer.receiveRequest(request({ branch: 'z9hG4bKfork3', toTag: 'dlg' }), UDP_SRC, LOCAL, undefined);
  t.equal(requests.length, 2);
  // a new CSeq is a new request
  layer.receiveRequest(request({ branch: 'z9hG4bKfork4', cseq: 2 }), UDP_SRC, LOCAL, undefined);
  t.equal(requests.length, 3);
  layer.close();
});

t.test('INVITE → 405 with Allow; ACK dropped; CANCEL → 481 or 200', async (t) => {
  const { layer, transport, requests } = setup();
  layer.receiveRequest(request({ method: 'INVITE', branch: 'z9hG4bKinv' }), UDP_SRC, LOCAL, undefined);
  t.equal(statusOf(transport.sent[0]), 405);
  t.match(transport.sent[0]!.text, /\r\nAllow: SUBSCRIBE, NOTIFY\r\n/);
  layer.receiveRequest(request({ method: 'ACK', branch: 'z9hG4bKinv' }), UDP_SRC, LOCAL, undefined);
  t.equal(transport.sent.length, 1, 'ACK dropped');
  layer.receiveRequest(request({ method: 'CANCEL', branch: 'z9hG4bKnothing' }), UDP_SRC, LOCAL, undefined);
  t.equal(statusOf(transport.sent[1]), 481);
  layer.receiveRequest(request({ branch: 'z9hG4bKlive' }), UDP_SRC, LOCAL, undefined);
  layer.receiveRequest(request({ method: 'CANCEL', branch: 'z9hG4bKlive' }), UDP_SRC, LOCAL, undefined);
  t.equal(statusOf(transport.sent[2]), 200, 'CANCEL of a live non-INVITE gets 200');
  t.equal(requests.length, 1, 'only the SUBSCRIBE reached the TU');
  t.equal(requests[0]!.transaction.state, 'trying', 'CANCEL has no effect on it');
  layer.close();
});

t.test('parse failure with a request is answered with its status and reason', async (t) => {
  const { layer, transport } = setup();
  layer.receiveParseFailure({ status: 400, reason: 'Bad Request - malformed CSeq', request: request() }, UDP_SRC, undefined);
  t.match(transport.sent[0]!.text, /^SIP\/2\.0 400 Bad Request - malformed CSeq\r\n/);
  t.equal(transport.sent[0]!.destination.port, 40000);
  layer.receiveParseFailure({ status: 400, reason: 'x' }, UDP_SRC, undefined);
  layer.receiveParseFailure({ status: 400, reason: 'x', request: request({ method: 'ACK' }) }, UDP_SRC, undefined);
  t.equal(transport.sent.length, 1, 'no request or ACK: dropped');
  layer.close();
});

function outgoing(): SipRequest {
  return createRequest(
    'NOTIFY',
    'sip:bob@198.51.100.7:5062',
    Headers.from([
      ['From', '<sip:alice@gw.example.com>;tag=n1'],
      ['To', '<sip:bob@example.com>;tag=f1'],
      ['Call-ID', 'cid-2'],
      ['CSeq', '5 NOTIFY'],
    ]),
  );
}

function responseTo(sent: Sent, status: number): SipResponse {
  // rebuild just enough of the sent request to answer it
  const via = /\r\nVia: ([^\r]+)/.exec(sent.text)![1]!;
  const req = outgoing();
  req.headers.set('via', via);
  return createResponse(req, status);
}

t.test('client: Timer E retransmits over UDP (doubling to T2), Timer F gives a local 408', async (t) => {
  const { layer, transport } = setup();
  const delays: number[] = [];
  const schedule = layer.queue.schedule.bind(layer.queue);
  layer.queue.schedule = (delay, target, kind) => {
    delays.push(delay);
    return schedule(delay, target, kind);
  };
  const started = Date.now();
  const res = await layer.sendRequest(outgoing(), { destination: { protocol: 'udp', address: '198.51.100.7', port: 5062 } });
  const elapsed = Date.now() - started;
  t.equal(res.status, 408);
  t.equal(res.reason, 'Request Timeout');
  t.equal(res.headers.get('call-id'), 'cid-2');
  t.ok(elapsed >= 64 * T.t1 - 5, 'not before Timer F');
  t.equal(delays[0], 64 * T.t1, 'Timer F = 64*T1');
  t.same(delays.slice(1, 6), [20, 40, 80, 80, 80], 'Timer E: T1 doubling, capped at T2');
  t.equal(transport.sent.length, delays.length - 1, 'one send per Timer E start (the first is the original)');
  t.ok(transport.sent.length >= 8, `retransmitted ${transport.sent.length - 1} times`);
  t.equal(new Set(transport.sent.map((s) => s.text)).size, 1, 'identical retransmissions');
  t.match(transport.sent[0]!.text, /^NOTIFY sip:bob@198\.51\.100\.7:5062 SIP\/2\.0\r\nVia: SIP\/2\.0\/UDP 192\.0\.2\.10:5060;branch=z9hG4bK[0-9a-f]{16};rport\r\n/);
  t.equal(layer.clientCount, 0);
  layer.close();
});

t.test('client: Timer E uses T2 once Proceeding', async (t) => {
  const { layer, transport } = setup();
  const delays: number[] = [];
  const schedule = layer.queue.schedule.bind(layer.queue);
  layer.queue.schedule = (delay, target, kind) => {
    delays.push(delay);
    return schedule(delay, target, kind);
  };
  const p = layer.sendRequest(outgoing(), { destination: { protocol: 'udp', address: '198.51.100.7', port: 5062 } });
  layer.receiveResponse(responseTo(transport.sent[0]!, 100), UDP_SRC);
  await sleep(T.t1 + 30);
  t.equal(delays[2], T.t2, 'after a provisional the next Timer E is T2');
  layer.receiveResponse(responseTo(transport.sent[0]!, 200), UDP_SRC);
  t.equal((await p).status, 200);
  layer.close();
});

t.test('client: provisional then final; final retransmission absorbed; Timer K', async (t) => {
  const { layer, transport } = setup();
  const provisionals: number[] = [];
  const p = layer.sendRequest(outgoing(), {
    destination: { protocol: 'udp', address: '198.51.100.7', port: 5062 },
    onProvisional: (r) => provisionals.push(r.status),
  });
  const sent = transport.sent[0]!;
  layer.receiveResponse(responseTo(sent, 100), UDP_SRC);
  layer.receiveResponse(responseTo(sent, 200), UDP_SRC);
  const res = await p;
  t.equal(res.status, 200);
  t.same(provisionals, [100]);
  t.equal(layer.clientCount, 1, 'kept for Timer K');
  layer.receiveResponse(responseTo(sent, 500), UDP_SRC); // absorbed, not an error
  const before = transport.sent.length;
  await until(() => layer.clientCount === 0);
  t.equal(layer.clientCount, 0, 'Timer K ended it');
  t.equal(transport.sent.length, before, 'no retransmission after the final response');
  layer.close();
});

t.test('client over TCP: no Timer E, connection referenced, closed connection → 503', async (t) => {
  const { layer, transport } = setup();
  const p = layer.sendRequest(outgoing(), { destination: { protocol: 'tcp', address: '198.51.100.7', port: 5062 } });
  await sleep(5 * T.t1);
  t.equal(transport.sent.length, 1, 'no retransmission over TCP');
  const conn = transport.sent[0]!.text.includes('SIP/2.0/TCP') ? 'new-1' : '';
  t.equal(conn, 'new-1');
  t.equal(transport.refs.get('new-1'), 1);
  layer.connectionClosed('new-1', new Error('reset'));
  const res = await p;
  t.equal(res.status, 503);
  t.equal(transport.refs.get('new-1'), 0);
  layer.close();
});

t.test('client: reuses an open connectionId', async (t) => {
  const { layer, transport } = setup();
  transport.open.add('tcp-9');
  const p = layer.sendRequest(outgoing(), { destination: { protocol: 'tcp', address: '198.51.100.7', port: 5062 }, connectionId: 'tcp-9' });
  t.equal(transport.sent[0]!.connectionId, 'tcp-9');
  layer.receiveResponse(responseTo(transport.sent[0]!, 200), { protocol: 'tcp', address: '198.51.100.7', port: 5062 });
  t.equal((await p).status, 200);
  t.equal(layer.clientCount, 0, 'Timer K is zero over TCP');
  layer.close();
});

t.test('§18.1.1: large UDP request goes over TCP and falls back to UDP on failure', async (t) => {
  const { layer, transport } = setup();
  const req = outgoing();
  req.body = Buffer.alloc(1400, 0x61);
  req.headers.set('content-type', 'text/plain');
  const p = layer.sendRequest(req, { destination: { protocol: 'udp', address: '198.51.100.7', port: 5062 } });
  t.equal(transport.sent[0]!.destination.protocol, 'tcp');
  t.match(transport.sent[0]!.text, /Via: SIP\/2\.0\/TCP 192\.0\.2\.10:5070;branch=/);
  layer.connectionClosed('new-1', new Error('ECONNREFUSED'));
  t.equal(transport.sent[1]!.destination.protocol, 'udp');
  t.match(transport.sent[1]!.text, /Via: SIP\/2\.0\/UDP 192\.0\.2\.10:5060;branch=/);
  const branch = (s: Sent) => /branch=([^;\r]+)/.exec(s.text)![1];
  t.equal(branch(transport.sent[1]!), branch(transport.sent[0]!), 'same transaction');
  await sleep(T.t1 + 15);
  t.ok(transport.sent.length >= 3, 'Timer E runs after the fallback');
  layer.receiveResponse(responseTo(transport.sent[1]!, 200), UDP_SRC);
  t.equal((await p).status, 200);
  layer.close();
});

t.test('close resolves pending client transactions with 503', async (t) => {
  const { layer } = setup();
  const p = layer.sendRequest(outgoing(), { destination: { protocol: 'udp', address: '198.51.100.7', port: 5062 } });
  layer.close();
  t.equal((await p).status, 503);
  t.equal((await layer.sendRequest(outgoing(), { destination: { protocol: 'udp', address: '198.51.100.7', port: 5062 } })).status, 503);
});

t.test('a server transaction the TU never answers ends after 64*T1', async (t) => {
  const { layer, transport, requests } = setup();
  layer.receiveRequest(request({ branch: 'z9hG4bKslow' }), UDP_SRC, LOCAL, undefined);
  t.equal(layer.serverCount, 1);
  await until(() => layer.serverCount === 0);
  t.equal(layer.serverCount, 0);
  t.equal(requests[0]!.transaction.respond(createResponse(requests[0]!.request, 200)), false, 'late answer ignored');
  t.equal(transport.sent.length, 0);
  layer.close();
});

t.test('client: a response with two Vias is dropped (§8.1.3.3)', async (t) => {
  const { layer, transport } = setup();
  const p = layer.sendRequest(outgoing(), { destination: { protocol: 'tcp', address: '198.51.100.7', port: 5062 } });
  const bad = responseTo(transport.sent[0]!, 200);
  bad.headers.append('via', 'SIP/2.0/UDP 203.0.113.1;branch=z9hG4bKextra');
  layer.receiveResponse(bad, UDP_SRC);
  t.equal(layer.clientCount, 1, 'still pending');
  layer.receiveResponse(responseTo(transport.sent[0]!, 202), UDP_SRC);
  t.equal((await p).status, 202);
  layer.close();
});

t.test('ids: branches carry the magic cookie; ids are unique across pool refills', async (t) => {
  const { newBranch, newTag, newCallId, randomHex } = await import('../../src/sip/ids.js');
  t.match(newBranch(), /^z9hG4bK[0-9a-f]{16}$/);
  t.match(newTag(), /^[0-9a-f]{16}$/);
  t.match(newCallId('gw.example.com'), /^[0-9a-f]{32}@gw\.example\.com$/);
  t.match(newCallId(), /^[0-9a-f]{32}$/);
  const seen = new Set<string>();
  for (let i = 0; i < 5000; i++) seen.add(newBranch()); // 40 kB of randomness: several refills of the pool
  t.equal(seen.size, 5000);
  t.throws(() => randomHex(5000));
});

t.test('completed transactions keep their final response in shared slabs, not the serialized buffer', async (t) => {
  const { layer, transport, requests } = setup();
  for (const [i, branch] of ['z9hG4bKslab1', 'z9hG4bKslab2'].entries()) {
    layer.receiveRequest(request({ branch, fromTag: `f${i}` }), UDP_SRC, LOCAL, undefined);
  }
  t.equal(requests.length, 2);
  const sentBuffers: Buffer[] = [];
  const send = transport.send.bind(transport);
  transport.send = (data, destination, connectionId) => {
    sentBuffers.push(data);
    return send(data, destination, connectionId);
  };
  for (const r of requests) r.transaction.respond(createResponse(r.request, 200, undefined, { toTag: 'gw' }));
  const [a, b] = requests.map((r) => r.transaction.answerBytes);
  t.ok(a !== undefined && b !== undefined, 'both completed transactions hold their answer');
  t.equal(a!.toString('latin1'), transport.sent[0]!.text, 'kept bytes are the response sent');
  t.equal(b!.toString('latin1'), transport.sent[1]!.text);
  t.equal(a!.buffer, b!.buffer, 'one slab holds both responses');
  // written straight into the slab and sent from there: no buffer of its own is made, so none is retained
  t.equal(sentBuffers[0]!.buffer, a!.buffer, 'the response was sent from the slab');
  t.equal(sentBuffers[1]!.buffer, a!.buffer);
  t.equal(layer.responses.slabs, 1);
  // a retransmission is answered from the slab, byte-identical
  layer.receiveRequest(request({ branch: 'z9hG4bKslab2', fromTag: 'f1' }), UDP_SRC, LOCAL, undefined);
  t.equal(transport.sent.at(-1)!.text, transport.sent[1]!.text, 'retransmission answered byte-identically');
  layer.close();
  t.equal(requests[0]!.transaction.answerBytes, undefined, 'a terminated transaction keeps nothing');
});

t.test('ResponseArena: a new slab when full; a large response keeps its own buffer', async (t) => {
  const { ResponseArena } = await import('../../src/sip/transaction/response-arena.js');
  const arena = new ResponseArena(1024);
  const small = Buffer.alloc(200, 0x41);
  const kept = [1, 2, 3, 4, 5, 6].map(() => arena.keep(small));
  t.equal(arena.slabs, 2, '200-byte copies (aligned to 8) fill a 1 KiB slab after five');
  t.equal(kept[0]!.slab, kept[4]!.slab);
  t.not(kept[4]!.slab, kept[5]!.slab);
  t.same(kept.map((k) => k.slab.subarray(k.start, k.end).equals(small)), [true, true, true, true, true, true]);
  const large = Buffer.alloc(600, 0x42);
  const own = arena.keep(large);
  t.equal(own.slab, large, 'larger than a quarter slab: not copied');
  t.equal(arena.slabs, 2);
});

t.test('serializeMessageInto: the bytes of serializeMessage, written into the arena (its own buffer when too large)', async (t) => {
  const { ResponseArena } = await import('../../src/sip/transaction/response-arena.js');
  const { serializeMessage, serializeMessageInto } = await import('../../src/sip/serializer.js');
  const arena = new ResponseArena(4096);
  const small = createResponse(request({ branch: 'z9hG4bKinto1', fromTag: 'f1' }), 200, undefined, { toTag: 'gw' });
  small.headers.append('Contact', '<sip:gateway@192.0.2.1:5060>');
  small.body = Buffer.from('Müller'); // UTF-8 in the body and, below, in a header
  small.headers.append('Subject', 'Grüße');
  const a = serializeMessageInto(small, arena);
  const b = serializeMessageInto(small, arena);
  t.ok(a.buffer.subarray(a.start, a.end).equals(serializeMessage(small)), 'same bytes');
  t.equal(a.buffer, b.buffer, 'one slab');
  t.equal(b.start, (a.end + 7) & ~7, 'the next starts after the first, aligned to 8');
  t.ok(b.buffer.subarray(b.start, b.end).equals(serializeMessage(small)));
  t.equal(arena.slabs, 1);
  const big = createResponse(request({ branch: 'z9hG4bKinto2', fromTag: 'f2' }), 200, undefined, { toTag: 'gw' });
  big.body = Buffer.alloc(2000, 0x41);
  const c = serializeMessageInto(big, arena);
  t.not(c.buffer, a.buffer, 'over a quarter slab: a buffer of its own');
  t.equal(c.start, 0);
  t.equal(c.end, c.buffer.length, 'exactly the message');
  t.ok(c.buffer.equals(serializeMessage(big)));
  const d = serializeMessageInto(small, arena);
  t.equal(d.start, (b.end + 7) & ~7, 'the slab was not used by the large one');
});

t.test('client over UDP: a request waiting for its answer keeps only what a local response copies', async (t) => {
  const { layer, transport } = setup();
  const request = outgoing();
  request.headers.append('Event', 'presence');
  request.headers.append('Subscription-State', 'active;expires=600');
  request.headers.append('Content-Type', 'application/pidf+xml');
  request.body = Buffer.from('<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@gw.example.com"/>');
  const pending = layer.sendRequest(request, { destination: { protocol: 'udp', address: '198.51.100.7', port: 5062 } });
  t.match(transport.sent[0]!.text, /Subscription-State: active;expires=600\r\n[\s\S]*\r\n\r\n<presence /, 'sent whole');
  const tx = [...(layer as unknown as { clients: Map<string, { sipRequest: SipRequest | undefined }> }).clients.values()][0]!;
  const kept = tx.sipRequest!;
  t.same([...kept.headers].map((f) => f.name), ['via', 'from', 'to', 'call-id', 'cseq'], 'only Via, From, To, Call-ID, CSeq are kept');
  t.equal(kept.body.length, 0, 'no body kept');
  t.not(kept, request, 'not the request object');
  const res = await pending;
  t.equal(res.status, 408, 'Timer F: local 408');
  t.equal(res.headers.get('call-id'), 'cid-2');
  t.equal(res.headers.get('cseq'), '5 NOTIFY');
  t.match(res.headers.get('via') ?? '', /^SIP\/2\.0\/UDP 192\.0\.2\.10:5060;branch=z9hG4bK/, 'our Via');
  layer.close();
});
