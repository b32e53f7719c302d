import t from 'tap';
import { BodyError } from '../../src/bodies/index.js';
import type { TelephonyState } from '../../src/core/person-state.js';
import { Headers } from '../../src/sip/headers.js';
import { createRequest } from '../../src/sip/message.js';
import type { BodyFormat, EventPackage, NotifyRules, PublishRules, PublishSink } from '../../src/simple/event-package.js';
import { isReading, PackageRegistry } from '../../src/simple/package-registry.js';
import { bodyPackages } from '../helpers/packages.js';
import { makeServer, publish } from './helpers.js';

/** A package the host has never heard of: PUBLISH and upstream NOTIFY of "x-line" carry "on"/"off" text. */
const TOY_TYPE = 'application/x-line';
const FORMAT: BodyFormat = Object.freeze({ contentType: TOY_TYPE, variant: 'rfc' });

function lineOf(body: Buffer): boolean {
  const text = body.toString('utf8').trim();
  if (text !== 'on' && text !== 'off') throw new BodyError(400, `not on/off: ${text.slice(0, 20)}`);
  return text === 'on';
}

function toyPackage(composed: Array<[string, boolean[]]>): EventPackage {
  const publish: PublishRules<boolean> = {
    contentTypes: [TOY_TYPE],
    parse: (body) => lineOf(body),
    compose(sink: PublishSink, resource: string, states: readonly boolean[]) {
      composed.push([resource, [...states]]);
      const busy = states.includes(true);
      const t: TelephonyState = { line: busy ? 'in-call' : 'idle', dnd: false, calls: [], origin: 'toy', at: 0 };
      sink.setTelephony(resource, states.length === 0 ? undefined : t);
    },
    save: (state) => ({ on: state }),
    load: (saved) => (typeof saved['on'] === 'boolean' ? saved['on'] : undefined),
  };
  const upstream: NotifyRules = {
    contentTypes: [TOY_TYPE],
    read(body) {
      const on = lineOf(body);
      return { kind: 'x-line', telephony: (_p, origin, at) => ({ line: on ? 'in-call' : 'idle', dnd: false, calls: [], origin, at }) };
    },
  };
  return {
    event: 'x-line',
    contentTypes: [TOY_TYPE],
    negotiate: () => FORMAT,
    render: () => Buffer.from('off'),
    publish,
    upstream,
  };
}

t.test('the registry answers what each package declares', async (t) => {
  const packages = bodyPackages();
  t.same(packages.events, ['presence', 'dialog']);
  t.same(packages.publishEvents, ['presence', 'dialog']);
  t.same(packages.publishContentTypes, ['application/pidf+xml', 'application/cpim-pidf+xml', 'application/dialog-info+xml']);
  t.same(packages.upstreamEvents, ['presence', 'dialog']);
  t.same(packages.upstreamContentTypes, ['application/pidf+xml', 'application/cpim-pidf+xml', 'application/dialog-info+xml']);
  t.same(packages.listEvents, ['presence', 'dialog']);
  t.equal(packages.get('presence')?.lists?.restore, true, 'presence lists are restored');
  t.equal(packages.get('dialog')?.lists?.restore, false, 'dialog lists are not (member versions are not kept)');

  const empty = new PackageRegistry();
  const notify = createRequest('NOTIFY', 'sip:x', Headers.from([['content-type', 'application/pidf+xml']]), Buffer.from('<x/>'));
  const refused = empty.readNotifyBody(notify);
  t.same(refused, { ok: false, status: 415, reason: 'Unsupported Media Type' }, 'no package reads PIDF: 415');
});

t.test('a new package with publish rules takes PUBLISH with no change to the publication store', async (t) => {
  const { stack, store, server } = makeServer();
  const composed: Array<[string, boolean[]]> = [];
  t.equal(stack.deliver(publish({ event: 'x-line', body: 'on', contentType: TOY_TYPE, expires: 300 }))[0]?.status, 489, 'not registered yet: 489');

  server.notifier.register(toyPackage(composed));
  const created = stack.deliver(publish({ event: 'x-line', body: 'on', contentType: TOY_TYPE, expires: 300 }))[0]!;
  t.equal(created.status, 200);
  t.ok(created.headers.get('sip-etag'));
  t.same(composed, [['alice', [true]]], 'the package composed the one publication');
  t.equal(store.state('alice').telephony?.line, 'in-call', 'and put it into core');

  const second = stack.deliver(publish({ event: 'x-line', body: 'off', contentType: TOY_TYPE, expires: 300 }))[0]!;
  t.equal(second.status, 200);
  t.same(composed[1], ['alice', [true, false]], 'two publications composed together');

  const bad = stack.deliver(publish({ event: 'x-line', body: 'maybe', contentType: TOY_TYPE, expires: 300 }))[0]!;
  t.equal(bad.status, 400, "the package's parse error is the answer");
  const wrongType = stack.deliver(publish({ event: 'x-line', body: 'on', contentType: 'application/pidf+xml', expires: 300 }))[0]!;
  t.equal(wrongType.status, 415);
  t.equal(wrongType.headers.get('accept'), TOY_TYPE, 'Accept names what the package takes');

  const removed = stack.deliver(publish({ event: 'x-line', ifMatch: created.headers.get('sip-etag')!, expires: 0 }))[0]!;
  t.equal(removed.status, 200);
  t.same(composed.at(-1), ['alice', [false]], 'removal composes what is left');

  const noPublish = stack.deliver(publish({ event: 'presence.winfo', body: 'on', contentType: TOY_TYPE, expires: 300 }))[0]!;
  t.equal(noPublish.status, 489);
  t.equal(noPublish.headers.get('allow-events'), 'presence, dialog, x-line', 'Allow-Events lists the packages that take PUBLISH');
});

t.test("a new package's saved publications come back through its load()", async (t) => {
  const { server, now } = makeServer();
  const composed: Array<[string, boolean[]]> = [];
  server.notifier.register(toyPackage(composed));
  const later = now() + 600_000;
  const result = server.publications.restore(
    [
      { etag: 'e1', resource: 'alice', event: 'x-line', expiresAt: later, state: { on: true } },
      { etag: 'e2', resource: 'alice', event: 'x-line', expiresAt: later, state: { on: 'yes' } },
      { etag: 'e3', resource: 'alice', event: 'unknown-package', expiresAt: later, state: { on: true } },
    ],
    () => true,
  );
  t.same(result, { restored: 1, dropped: 2 }, 'unreadable state and unknown packages are dropped');
  t.same(composed, [['alice', [true]]]);
});

t.test('upstream NOTIFY bodies are read by the package whose format the Content-Type names', async (t) => {
  const packages = bodyPackages();
  packages.register(toyPackage([]));
  const mk = (ct: string, body: string) => createRequest('NOTIFY', 'sip:x', Headers.from([['content-type', ct]]), Buffer.from(body));
  const read = packages.readNotifyBody(mk(TOY_TYPE, 'on'));
  t.ok(read.ok && isReading(read.body));
  if (read.ok && isReading(read.body)) {
    t.equal(read.body.kind, 'x-line');
    t.equal(read.body.telephony(undefined, 'trunk:x', 1).line, 'in-call');
  }
  const bad = packages.readNotifyBody(mk(TOY_TYPE, 'maybe'));
  t.equal(bad.ok ? 0 : bad.status, 400);
  t.same(packages.upstreamContentTypes, ['application/pidf+xml', 'application/cpim-pidf+xml', 'application/dialog-info+xml', TOY_TYPE]);
  const dialog = packages.readNotifyBody(
    mk('application/dialog-info+xml', '<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="4" state="partial" entity="sip:a@x"/>'),
  );
  t.ok(dialog.ok && isReading(dialog.body) && dialog.body.sequence?.version === 4 && dialog.body.sequence.partial, 'dialog-info is versioned, here partial');
});

t.test("closing the server closes each registered package (winfo drops its listener)", async (t) => {
  const { server } = makeServer();
  let closed = 0;
  server.notifier.register({ ...toyPackage([]), close: () => void closed++ });
  server.close();
  t.equal(closed, 1, 'the package was closed once');
  server.close();
  t.equal(closed, 1, 'a second close does nothing');
});
