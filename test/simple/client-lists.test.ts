/** RFC 5367 client-defined resource lists: a console's own list in one SUBSCRIBE, served like a configured list. */
import t from 'tap';
import { deflateSync, deflateRawSync } from 'node:zlib';
import { parseMultipartRelated, parsePidf, parseRlmi, rootPart } from '../../src/bodies/index.js';
import { Directory } from '../../src/core/directory.js';
import { PresenceHub } from '../../src/core/presence-hub.js';
import type { SipRequest } from '../../src/sip/message.js';
import { listsSchema } from '../../src/simple/lists-config.js';
import { attachResourceLists } from '../../src/simple/resource-lists.js';
import { SimpleServer } from '../../src/simple/simple-server.js';
import { silentLogger } from '../../src/util/logger.js';
import { TimerWheel } from '../../src/util/timer-wheel.js';
import { CONFIG, FakeStack, resubscribe, settle, subscribe } from './helpers.js';

function setup(clientLists: Record<string, unknown> = {}) {
  const directory = new Directory(
    [
      { id: 'alice', displayName: 'Alice Adams', extension: '1001', sipAors: ['sip:alice@example.com'] },
      { id: 'bob', displayName: 'Bob Brown', extension: '1002', sipAors: ['sip:bob@example.com'] },
      { id: 'carol', displayName: 'Carol', extension: '1003', sipAors: ['sip:carol@example.com'] },
    ],
    { domains: ['example.com'] },
  );
  let now = 1_700_000_000_000;
  const store = new PresenceHub(directory, { clock: { now: () => now } });
  const stack = new FakeStack();
  const wheel = new TimerWheel({ clock: { now: () => now }, autoStart: false });
  const server = new SimpleServer({ stack, directory, store, config: CONFIG, logger: silentLogger(), clock: { now: () => now }, wheel });
  const queue: Array<() => void> = [];
  const lists = attachResourceLists(server.notifier, (l) => store.onChange(l), listsSchema.parse({ clientLists }), {
    directory,
    logger: silentLogger(),
    clock: { now: () => now },
    schedule: (fn) => {
      queue.push(fn);
      return () => undefined;
    },
  });
  return { stack, store, server, lists, fire: () => queue.splice(0).forEach((f) => f()), tick: (ms: number) => (now += ms) };
}

const DOC = (entries: string) =>
  `<?xml version="1.0" encoding="UTF-8"?><resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list>${entries}</list></resource-lists>`;
const ENTRIES =
  '<entry uri="sip:alice@example.com"><display-name>Alice at the desk</display-name></entry>' +
  '<list><entry uri="sip:bob@example.com"/></list>' +
  '<entry uri="sip:stranger@elsewhere.org"/>' +
  '<entry uri="sip:alice@example.com"/>';

function clientSubscribe(body: Buffer | string, extra: Array<[string, string]> = [], opts: { require?: boolean } = {}): SipRequest {
  const req = subscribe({ user: 'my-console-list', accept: ['multipart/related', 'application/rlmi+xml', 'application/pidf+xml'] });
  req.headers.append('supported', 'eventlist');
  if (opts.require !== false) req.headers.append('require', 'recipient-list-subscribe');
  req.headers.append('content-type', 'application/resource-lists+xml');
  req.headers.append('content-disposition', 'recipient-list');
  for (const [n, v] of extra) req.headers.append(n, v);
  req.body = Buffer.isBuffer(body) ? body : Buffer.from(body);
  return req;
}

function readNotify(request: SipRequest) {
  const doc = parseMultipartRelated(request.body, request.headers.get('content-type')!);
  const root = rootPart(doc)!;
  return { rlmi: parseRlmi(root.body), parts: doc.parts.filter((p) => p !== root) };
}

t.test('a console subscribes to its own list and gets RLMI NOTIFYs: full, then partial', async (t) => {
  const { stack, store, lists, fire } = setup();
  const res = stack.deliver(clientSubscribe(DOC(ENTRIES)))[0]!;
  t.equal(res.status, 200);
  t.equal(res.headers.get('require'), 'eventlist');
  await settle();
  const n = stack.pending()[0]!;
  n.answer(200);
  t.equal(n.request.headers.get('require'), 'eventlist');
  const { rlmi, parts } = readNotify(n.request);
  t.equal(rlmi.uri, 'sip:my-console-list@example.com', 'the list is named by the Request-URI');
  t.equal(rlmi.fullState, true);
  t.same(rlmi.resources.map((r) => r.uri), ['sip:alice@example.com', 'sip:bob@example.com', 'sip:stranger@elsewhere.org'], 'flattened, duplicates dropped, in order');
  t.same(rlmi.resources[0]!.names.map((x) => x.value), ['Alice at the desk'], 'the client\'s display name');
  t.same(rlmi.resources[1]!.names.map((x) => x.value), ['Bob Brown'], 'else the directory\'s');
  t.same(rlmi.resources.map((r) => r.instances[0]?.state), ['active', 'active', 'terminated']);
  t.equal(rlmi.resources[2]!.instances[0]?.reason, 'noresource', 'an unknown entry is shown, not dropped');
  t.equal(parts.length, 2);
  t.equal(parsePidf(parts[0]!.body).entity, 'sip:alice@example.com');
  t.equal(lists.clientListCount, 1);

  store.setSip('bob', { basic: 'open', activities: ['away'], origin: 'test', at: 1 });
  fire();
  await settle();
  const partial = stack.pending()[0]!;
  partial.answer(200);
  const p = readNotify(partial.request);
  t.equal(p.rlmi.fullState, false);
  t.same(p.rlmi.resources.map((r) => r.uri), ['sip:bob@example.com'], 'only the member that changed');

  const unsub = resubscribe(clientSubscribe(DOC(ENTRIES)), res, { expires: 0 });
  unsub.headers.set('call-id', res.headers.get('call-id')!);
  unsub.headers.set('from', stack.notifies()[0]!.request.headers.get('to')!);
  t.equal(stack.deliver(unsub)[0]!.status, 200);
  await settle();
  t.equal(lists.clientListCount, 0, 'the list goes with its last subscription');
  t.same(lists.summary(), [], 'client lists are not configured lists');
});

t.test('deflate-compressed lists (zlib and raw)', async (t) => {
  for (const [name, enc] of [['zlib', deflateSync], ['raw', deflateRawSync]] as const) {
    const { stack } = setup();
    const res = stack.deliver(clientSubscribe(enc(Buffer.from(DOC(ENTRIES))), [['content-encoding', 'deflate']]))[0]!;
    t.equal(res.status, 200, name);
    await settle();
    t.equal(readNotify(stack.pending()[0]!.request).rlmi.resources.length, 3, `${name}: the whole list`);
  }
  const { stack } = setup();
  const br = stack.deliver(clientSubscribe(DOC(ENTRIES), [['content-encoding', 'br']]))[0]!;
  t.equal(br.status, 415);
  t.equal(br.headers.get('accept-encoding'), 'identity, deflate, gzip');
});

t.test('limits and bad lists get a clear 4xx and leave nothing behind', async (t) => {
  const { stack, lists, server, tick } = setup({ maxResources: 2 });
  const big = stack.deliver(clientSubscribe(DOC(ENTRIES)))[0]!;
  t.equal(big.status, 413);
  t.match(big.reason, /at most 2 resources/);
  const bomb = stack.deliver(clientSubscribe(deflateSync(Buffer.from(DOC(`<entry uri="sip:alice@example.com"/>${' '.repeat(200_000)}`))), [['content-encoding', 'deflate']]))[0]!;
  t.equal(bomb.status, 413, 'a body that inflates beyond the limit');
  t.equal(stack.deliver(clientSubscribe(''))[0]!.status, 400, 'Require without a list');
  const wrongType = clientSubscribe(DOC(ENTRIES));
  wrongType.headers.set('content-type', 'application/xcap-el+xml');
  t.equal(stack.deliver(wrongType)[0]!.status, 415);
  t.equal(stack.deliver(clientSubscribe('<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list><entry/></list></resource-lists>'))[0]!.status, 400, 'entry without uri');
  t.equal(stack.deliver(clientSubscribe('<not-xml'))[0]!.status, 400);
  const noEventlist = clientSubscribe(DOC('<entry uri="sip:alice@example.com"/>'));
  noEventlist.headers.delete('supported');
  t.equal(stack.deliver(noEventlist)[0]!.status, 421, 'RFC 4662: eventlist is still required');
  t.equal(server.notifier.size, 0);
  t.equal(stack.sent.length, 0);
  t.equal(lists.clientListCount, 1, 'the list refused after it was read (421) waits for the sweep');
  tick(61_000);
  t.equal(stack.deliver(clientSubscribe(DOC('<entry uri="sip:alice@example.com"/>')))[0]!.status, 200);
  t.equal(lists.clientListCount, 1, 'the orphan is gone, the new one is live');
});

t.test('a disabled feature refuses Require: recipient-list-subscribe with 420', async (t) => {
  const { stack } = setup({ enabled: false });
  const res = stack.deliver(clientSubscribe(DOC(ENTRIES)))[0]!;
  t.equal(res.status, 420);
  t.equal(res.headers.get('unsupported'), 'recipient-list-subscribe');
});
