import t from 'tap';
import { buildForwardingEvent, parseDoNotDisturbEvent, parseFeatureRequest } from '../../src/bodies/index.js';
import { PresenceHub } from '../../src/core/presence-hub.js';
import { SimpleServer } from '../../src/simple/simple-server.js';
import { silentLogger } from '../../src/util/logger.js';
import { TimerWheel } from '../../src/util/timer-wheel.js';
import { CONFIG, FakeStack, makeDirectory, resubscribe, settle, subscribe } from './helpers.js';

const NS = 'http://www.ecma-international.org/standards/ecma-323/csta/ed3';
const setDnd = (on: boolean) =>
  `<?xml version="1.0" encoding="ISO-8859-1"?>\n<SetDoNotDisturb xmlns="${NS}">\n<device>1001</device>\n<doNotDisturbOn>${on}</doNotDisturbOn>\n</SetDoNotDisturb>`;

function setup() {
  const directory = makeDirectory();
  const store = new PresenceHub(directory);
  const stack = new FakeStack();
  const server = new SimpleServer({
    stack,
    directory,
    store,
    config: { ...CONFIG, featureKeys: true },
    logger: silentLogger(),
    wheel: new TimerWheel({ autoStart: false }),
  });
  return { stack, store, server };
}

function phoneSubscribe(user = 'alice') {
  const req = subscribe({ user, event: 'as-feature-event', accept: ['application/x-as-feature-event+xml'] });
  req.headers.set('from', `<sip:${user}@example.com>;tag=ph-${user}`);
  return req;
}

/** Answer NOTIFYs until none is outstanding; the last one sent. */
async function lastNotify(stack: FakeStack) {
  let last: FakeStack['sent'][number] | undefined;
  for (let i = 0; i < 10; i++) {
    await settle();
    const p = stack.pending();
    if (p.length === 0) break;
    for (const x of p) {
      last = x;
      x.answer(200);
    }
  }
  if (last === undefined) throw new Error('no NOTIFY');
  return last.request;
}

t.test('DND pressed on the desk phone: core DND (Teams target DoNotDisturb), and the light follows', async (t) => {
  const { stack, store } = setup();
  const first = phoneSubscribe();
  const ok = stack.deliver(first)[0]!;
  t.equal(ok.status, 200);
  const initial = await lastNotify(stack);
  t.equal(initial.headers.get('content-type'), 'application/x-as-feature-event+xml');
  t.same(parseDoNotDisturbEvent(initial.body), { device: '1001', on: false });

  const press = resubscribe(first, ok);
  press.headers.set('content-type', 'application/x-as-feature-event+xml');
  press.body = Buffer.from(setDnd(true));
  t.equal(stack.deliver(press)[0]!.status, 200);
  t.same(store.teamsTarget('alice'), { kind: 'set', availability: 'DoNotDisturb', activity: 'Presenting', preferredDnd: true }, 'the Graph writer is asked for DND (its opt-in decides how)');
  t.equal(store.view('alice').dnd, true);
  t.same(parseDoNotDisturbEvent((await lastNotify(stack)).body), { device: '1001', on: true });

  const release = resubscribe(first, ok, { cseq: 3 });
  release.headers.set('content-type', 'application/x-as-feature-event+xml');
  release.body = Buffer.from(setDnd(false));
  t.equal(stack.deliver(release)[0]!.status, 200);
  t.same(store.teamsTarget('alice'), { kind: 'clear' });
  t.same(parseDoNotDisturbEvent((await lastNotify(stack)).body).on, false);
});

t.test("Teams DND lights the phone's DND key", async (t) => {
  const { stack, store } = setup();
  t.equal(stack.deliver(phoneSubscribe('bob'))[0]!.status, 200);
  await lastNotify(stack);
  store.setTeams('bob', { availability: 'DoNotDisturb', activity: 'DoNotDisturb', at: 1 });
  t.same(parseDoNotDisturbEvent((await lastNotify(stack)).body), { device: '1002', on: true });
  store.setTeams('bob', { availability: 'Available', activity: 'Available', at: 2 });
  t.equal(parseDoNotDisturbEvent((await lastNotify(stack)).body).on, false);
});

t.test('forwarding is acknowledged; bad bodies and other people are refused', async (t) => {
  const { stack } = setup();
  const fwd = phoneSubscribe();
  fwd.headers.append('content-type', 'application/x-as-feature-event+xml');
  fwd.body = Buffer.from(
    `<SetForwarding xmlns="${NS}"><device>1001</device><forwardingType>forwardImmediate</forwardingType><activateForward>true</activateForward><forwardDN>2000</forwardDN></SetForwarding>`,
  );
  t.equal(stack.deliver(fwd)[0]!.status, 200);
  t.equal((await lastNotify(stack)).body.toString(), buildForwardingEvent('1001', 'forwardImmediate', true, '2000'));

  const bad = phoneSubscribe();
  bad.headers.append('content-type', 'application/x-as-feature-event+xml');
  bad.body = Buffer.from(`<SetDoNotDisturb xmlns="${NS}"><doNotDisturbOn>maybe</doNotDisturbOn></SetDoNotDisturb>`);
  t.equal(stack.deliver(bad)[0]!.status, 400);
  const wrong = phoneSubscribe();
  wrong.headers.append('content-type', 'text/plain');
  wrong.body = Buffer.from('dnd on');
  t.equal(stack.deliver(wrong)[0]!.status, 415);
  const other = phoneSubscribe('alice');
  other.headers.set('from', '<sip:bob@example.com>;tag=x');
  t.equal(stack.deliver(other)[0]!.status, 403, "bob's phone may not set alice's DND");
  t.same(parseFeatureRequest(setDnd(true)), { kind: 'dnd', device: '1001', on: true });
});

t.test('a SUBSCRIBE refused for another reason changes nothing', async (t) => {
  const { stack, store } = setup();
  const brief = phoneSubscribe();
  brief.headers.append('expires', '5');
  brief.headers.append('content-type', 'application/x-as-feature-event+xml');
  brief.body = Buffer.from(setDnd(true));
  t.equal(stack.deliver(brief)[0]!.status, 423);
  t.equal(store.view('alice').dnd, false, 'the DND in a refused SUBSCRIBE is not applied');
});

t.test('DND set on the phone, turned off in Teams: the light goes out and the Teams target clears', async (t) => {
  const { stack, store } = setup();
  const first = phoneSubscribe();
  first.headers.set('content-type', 'application/x-as-feature-event+xml');
  first.body = Buffer.from(setDnd(true));
  t.equal(stack.deliver(first)[0]!.status, 200);
  t.same(parseDoNotDisturbEvent((await lastNotify(stack)).body).on, true);
  store.setTeams('alice', { availability: 'DoNotDisturb', activity: 'Presenting', at: 1 });
  store.setTeams('alice', { availability: 'Available', activity: 'Available', at: 2 });
  t.same(parseDoNotDisturbEvent((await lastNotify(stack)).body).on, false, 'Teams DND off reached the phone');
  t.same(store.teamsTarget('alice'), { kind: 'clear', personChose: true });
});

const setForwarding = (type: string, on: boolean, to?: string) =>
  `<?xml version="1.0" encoding="ISO-8859-1"?>\n<SetForwarding xmlns="${NS}"><device>1001</device><forwardingType>${type}</forwardingType><activateForward>${on}</activateForward>${to !== undefined ? `<forwardDN>${to}</forwardDN>` : ''}<ringCount>3</ringCount></SetForwarding>`;

/** Answer every NOTIFY until none is outstanding; the bodies sent, by Call-ID. */
async function drain(stack: FakeStack): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (let i = 0; i < 20; i++) {
    await settle();
    const p = stack.pending();
    if (p.length === 0) break;
    for (const x of p) {
      const id = x.request.headers.get('call-id')!;
      out.set(id, [...(out.get(id) ?? []), x.request.body.toString()]);
      x.answer(200);
    }
  }
  return out;
}

t.test("forwarding is kept per person and reaches every one of the person's phones", async (t) => {
  const { stack, server } = setup();
  const deskA = phoneSubscribe();
  const okA = stack.deliver(deskA)[0]!;
  const deskB = phoneSubscribe();
  deskB.headers.set('from', '<sip:alice@example.com>;tag=ph-alice-b');
  t.equal(stack.deliver(deskB)[0]!.status, 200);
  const bobs = phoneSubscribe('bob');
  t.equal(stack.deliver(bobs)[0]!.status, 200);
  await drain(stack);

  const press = resubscribe(deskA, okA);
  press.headers.set('content-type', 'application/x-as-feature-event+xml');
  press.body = Buffer.from(setForwarding('forwardImmediate', true, '2000'));
  t.equal(stack.deliver(press)[0]!.status, 200);
  const sent = await drain(stack);
  const always = buildForwardingEvent('1001', 'forwardImmediate', true, '2000', 3);
  t.ok(sent.get(deskA.headers.get('call-id')!)?.includes(always), 'the phone that set it gets the ForwardingEvent');
  t.ok(sent.get(deskB.headers.get('call-id')!)?.includes(always), "the person's other phone too");
  t.notOk(sent.has(bobs.headers.get('call-id')!), "another person's phone gets nothing");
  t.same(server.features!.forwardingOf('alice'), [{ type: 'forwardImmediate', on: true, to: '2000', ringCount: 3, at: server.features!.forwardingOf('alice')[0]!.at }]);

  const busy = resubscribe(deskA, okA, { cseq: 3 });
  busy.headers.set('content-type', 'application/x-as-feature-event+xml');
  busy.body = Buffer.from(setForwarding('forwardBusy', true, '3000'));
  t.equal(stack.deliver(busy)[0]!.status, 200);
  const second = await drain(stack);
  const whenBusy = buildForwardingEvent('1001', 'forwardBusy', true, '3000', 3);
  t.ok(second.get(deskB.headers.get('call-id')!)?.includes(whenBusy));
  t.notOk(second.get(deskB.headers.get('call-id')!)?.includes(always), 'what a phone was sent already is not sent again');

  // a phone subscribing later gets DND, then each forwarding type
  const deskC = phoneSubscribe();
  deskC.headers.set('from', '<sip:alice@example.com>;tag=ph-alice-c');
  t.equal(stack.deliver(deskC)[0]!.status, 200);
  const third = (await drain(stack)).get(deskC.headers.get('call-id')!) ?? [];
  t.match(third[0], /DoNotDisturbEvent/, 'DND first');
  t.same(third.slice(1, 3), [always, whenBusy], 'then every forwarding type known');
  t.equal(server.features!.forwardingOf('alice').length, 2);
});
