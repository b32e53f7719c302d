/**
 * RFC 3261 §8.2.6.2 sweep: every kind of request the gateway can refuse (and
 * the ones it accepts outside a dialog) is sent over a real UDP stack; each
 * final response must carry a To tag, and the same request sent again after
 * its transaction is gone must get the same tag. Also §8.2.2.3 (420).
 */
import t from 'tap';
import { createSocket, type Socket } from 'node:dgram';
import { PresenceHub } from '../../src/core/presence-hub.js';
import { tagOf } from '../../src/sip/header-values.js';
import { parseMessage } from '../../src/sip/parser.js';
import type { SipResponse } from '../../src/sip/message.js';
import { SipStack } from '../../src/sip/stack.js';
import { SimpleServer } from '../../src/simple/simple-server.js';
import { AccessControl } from '../../src/trunks/access.js';
import { accessSchema } from '../../src/trunks/config.js';
import { silentLogger } from '../../src/util/logger.js';
import { CONFIG, makeDirectory, makeServer, subscribe } from './helpers.js';

const PIDF =
  '<?xml version="1.0" encoding="UTF-8"?>\r\n<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@example.com">' +
  '<tuple id="t1"><status><basic>open</basic></status></tuple></presence>';

interface Case {
  name: string;
  status: number;
  method: string;
  user?: string;
  fromUser?: string;
  headers?: string[];
  body?: string;
  /** raw request text instead (a parse failure answered statelessly) */
  raw?: (port: number) => string;
}

const CASES: Case[] = [
  { name: 'OPTIONS', status: 200, method: 'OPTIONS' },
  { name: 'PUBLISH accepted', status: 200, method: 'PUBLISH', headers: ['Event: presence', 'Content-Type: application/pidf+xml', 'Expires: 300'], body: PIDF },
  { name: 'PUBLISH unknown ETag', status: 412, method: 'PUBLISH', headers: ['Event: presence', 'SIP-If-Match: nope', 'Expires: 300'] },
  { name: 'PUBLISH unknown event', status: 489, method: 'PUBLISH', headers: ['Event: frobs', 'Content-Type: application/pidf+xml'], body: PIDF },
  { name: 'PUBLISH bad media type', status: 415, method: 'PUBLISH', headers: ['Event: presence', 'Content-Type: text/plain'], body: 'hi' },
  { name: 'SUBSCRIBE unknown user', status: 404, method: 'SUBSCRIBE', user: 'nobody-here', headers: ['Event: presence'] },
  { name: 'SUBSCRIBE too brief', status: 423, method: 'SUBSCRIBE', headers: ['Event: presence', 'Expires: 5'] },
  { name: 'SUBSCRIBE nothing acceptable', status: 406, method: 'SUBSCRIBE', headers: ['Event: presence', 'Accept: text/html'] },
  { name: 'SUBSCRIBE unknown event', status: 489, method: 'SUBSCRIBE', headers: ['Event: frobs'] },
  { name: 'SUBSCRIBE unknown Require', status: 420, method: 'SUBSCRIBE', headers: ['Event: presence', 'Require: foo-ext'] },
  { name: 'SUBSCRIBE without Contact', status: 400, method: 'SUBSCRIBE', headers: ['Event: presence'] },
  { name: 'SUBSCRIBE needing digest', status: 401, method: 'SUBSCRIBE', fromUser: 'stranger', headers: ['Event: presence'] },
  { name: 'SUBSCRIBE forbidden', status: 403, method: 'SUBSCRIBE', fromUser: 'outsider', headers: ['Event: presence'] },
  { name: 'INVITE', status: 405, method: 'INVITE' },
  { name: 'unknown method', status: 501, method: 'FROBNICATE' },
  { name: 'stray NOTIFY', status: 481, method: 'NOTIFY', headers: ['Event: presence', 'Subscription-State: active'] },
  {
    name: 'Max-Forwards out of range (stateless 400)',
    status: 400,
    method: 'SUBSCRIBE',
    raw: (port) =>
      `SUBSCRIBE sip:alice@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bKsweepnan\r\nMax-Forwards: 300\r\n` +
      `From: <sip:console@example.com>;tag=fnan\r\nTo: <sip:alice@example.com>\r\nCall-ID: sweep-nan\r\nCSeq: 1 SUBSCRIBE\r\nEvent: presence\r\nContent-Length: 0\r\n\r\n`,
  },
];

function text(c: Case, i: number, port: number): string {
  if (c.raw !== undefined) return c.raw(port);
  const user = c.user ?? 'alice';
  const body = c.body ?? '';
  const lines = [
    `${c.method} sip:${user}@example.com SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bKsweep${i};rport`,
    'Max-Forwards: 70',
    `From: <sip:${c.fromUser ?? 'console'}@example.com>;tag=sw${i}`,
    `To: <sip:${user}@example.com>`,
    `Call-ID: sweep-${i}@127.0.0.1`,
    `CSeq: 1 ${c.method}`,
    ...(c.headers ?? []),
  ];
  if (c.method === 'SUBSCRIBE' && c.name !== 'SUBSCRIBE without Contact') lines.push(`Contact: <sip:console@127.0.0.1:${port}>`);
  lines.push(`Content-Length: ${Buffer.byteLength(body)}`, '', body);
  return lines.join('\r\n');
}

class Client {
  private readonly got: SipResponse[] = [];
  private constructor(readonly socket: Socket) {
    socket.on('message', (data) => {
      const p = parseMessage(data);
      if (p.ok && p.message.kind === 'response') this.got.push(p.message);
    });
  }
  static async open(): Promise<Client> {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    return new Client(s);
  }
  get port(): number {
    return this.socket.address().port;
  }
  async ask(data: string, serverPort: number, callId: string): Promise<SipResponse> {
    this.socket.send(Buffer.from(data), serverPort, '127.0.0.1');
    const deadline = Date.now() + 3000;
    for (;;) {
      const i = this.got.findIndex((r) => r.status >= 200 && r.headers.get('call-id') === callId);
      if (i >= 0) return this.got.splice(i, 1)[0]!;
      if (Date.now() > deadline) throw new Error(`no final response for ${callId}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  close(): Promise<void> {
    return new Promise((r) => this.socket.close(() => r()));
  }
}

t.test('sweep: each refusable request kind gets a To tag, stable when the request comes again', async (t) => {
  const t1 = 10;
  const sip = await SipStack.start({
    listen: [{ protocol: 'udp', address: '127.0.0.1', port: 0 }],
    logger: silentLogger(),
    timers: { t1, t2: 40, t4: 40 },
    load: false,
  });
  const directory = makeDirectory();
  const store = new PresenceHub(directory);
  const registry = { fromSource: () => undefined };
  const digest = new AccessControl({
    registry,
    config: accessSchema.parse({ mode: 'restricted', users: [{ username: 'console', password: 'pw' }] }),
    logger: silentLogger(),
  });
  const closed = new AccessControl({ registry, config: accessSchema.parse({ mode: 'restricted' }), logger: silentLogger() });
  const server = new SimpleServer({
    stack: sip,
    directory,
    store,
    config: CONFIG,
    logger: silentLogger(),
    access: (req) => {
      const from = req.request.headers.get('from') ?? '';
      const control = from.includes('stranger') ? digest : from.includes('outsider') ? closed : undefined;
      if (control === undefined) return { allow: true };
      const d = control.check(req);
      return d.allow ? { allow: true } : { allow: false, response: d.response };
    },
  });
  const client = await Client.open();
  t.teardown(async () => {
    server.close();
    await client.close();
    await sip.close();
  });
  const port = sip.localEndpoint('udp')!.port;

  const first = new Map<string, string | undefined>();
  for (const [i, c] of CASES.entries()) {
    const callId = c.raw !== undefined ? 'sweep-nan' : `sweep-${i}@127.0.0.1`;
    const res = await client.ask(text(c, i, client.port), port, callId);
    t.equal(res.status, c.status, `${c.name}: status`);
    const tag = tagOf(res.headers.get('to') ?? '');
    t.ok(tag !== undefined && tag.length >= 8, `${c.name}: To tag`);
    if (c.status === 420) t.equal(res.headers.get('unsupported'), 'foo-ext', '420 lists the unknown option tag in Unsupported');
    first.set(c.name, tag);
  }
  // The transactions end after Timer J (64*T1); the same request again is answered anew, with the same tag.
  await new Promise((r) => setTimeout(r, 64 * t1 + 200));
  for (const [i, c] of CASES.entries()) {
    const callId = c.raw !== undefined ? 'sweep-nan' : `sweep-${i}@127.0.0.1`;
    const res = await client.ask(text(c, i, client.port), port, callId);
    t.equal(tagOf(res.headers.get('to') ?? ''), first.get(c.name), `${c.name}: same tag for the same request`);
  }
});

t.test('Require: unknown tags get 420 + Unsupported; eventlist is not supported where no lists are served', async (t) => {
  const { stack } = makeServer();
  const req = subscribe();
  req.headers.append('require', 'foo, EventList');
  req.headers.append('require', 'bar');
  const res = stack.deliver(req)[0]!;
  t.equal(res.status, 420);
  t.equal(res.headers.get('unsupported'), 'foo, eventlist, bar');
  t.equal(stack.sent.length, 0, 'no subscription, no NOTIFY');
  const options = subscribe();
  options.method = 'OPTIONS';
  options.headers.set('cseq', '1 OPTIONS');
  options.headers.append('require', 'x-vendor');
  t.equal(stack.deliver(options)[0]!.status, 420, 'OPTIONS with an unknown Require is refused too (RFC 3261 §11)');
  const supported = subscribe();
  supported.headers.append('supported', 'x-vendor');
  t.equal(stack.deliver(supported)[0]!.status, 200, 'Supported is not Require');
});
