import t from 'tap';
import { PresenceHub } from '../../src/core/presence-hub.js';
import { Headers } from '../../src/sip/headers.js';
import { createRequest, createResponse, type SipRequest } from '../../src/sip/message.js';
import { SimpleServer, type AccessVerdict, type TrunkTraits } from '../../src/simple/simple-server.js';
import type { InboundRequest } from '../../src/simple/stack-port.js';
import { TimerWheel } from '../../src/util/timer-wheel.js';
import { silentLogger } from '../../src/util/logger.js';
import { CONFIG, FakeStack, makeDirectory, pidfBody } from './helpers.js';

function request(method: string, uri = 'sip:alice@example.com', extra: Array<[string, string]> = [], body?: string): SipRequest {
  const h = new Headers();
  h.append('via', 'SIP/2.0/UDP 198.51.100.7:5062;branch=z9hG4bKacc1');
  h.append('from', '<sip:pbx@example.com>;tag=p1');
  h.append('to', `<${uri}>`);
  h.append('call-id', `acc-${method}-${Math.random()}`);
  h.append('cseq', `1 ${method}`);
  for (const [n, v] of extra) h.append(n, v);
  return createRequest(method, uri, h, body === undefined ? undefined : Buffer.from(body));
}

function setup(verdict: (req: InboundRequest) => AccessVerdict) {
  const directory = makeDirectory();
  const store = new PresenceHub(directory);
  const stack = new FakeStack();
  const wheel = new TimerWheel({ autoStart: false });
  const unsolicited: Array<{ trunk: string; personId: string }> = [];
  const matched = new Set<string>();
  const server = new SimpleServer({
    stack,
    directory,
    store,
    config: CONFIG,
    logger: silentLogger(),
    wheel,
    access: verdict,
    upstream: {
      handleNotify: (req) => {
        if (!matched.has(req.request.headers.get('call-id') ?? '')) return false;
        req.respond(createResponse(req.request, 200));
        return true;
      },
      handleUnsolicited: (req, trunk, personId) => {
        unsolicited.push({ trunk, personId });
        req.respond(createResponse(req.request, 200));
      },
    },
  });
  t.teardown(() => server.close());
  return { stack, unsolicited, matched };
}

const forbidden = (req: InboundRequest): AccessVerdict => ({ allow: false, response: createResponse(req.request, 403, 'Forbidden') });
const cucm: TrunkTraits = { name: 'cucm', inbound: true, unsolicitedNotify: true, inboundPublish: false };

t.test('a refused source gets the access answer for every method but ACK', async (t) => {
  const { stack } = setup(forbidden);
  for (const m of ['SUBSCRIBE', 'PUBLISH', 'OPTIONS', 'NOTIFY', 'MESSAGE']) t.equal(stack.deliver(request(m))[0]?.status, 403, m);
  t.same(stack.deliver(request('ACK')), []);
});

t.test('NOTIFY of our own upstream subscription passes before the access check', async (t) => {
  const { stack, matched } = setup(forbidden);
  const notify = request('NOTIFY', 'sip:gw@example.com', [['event', 'dialog'], ['subscription-state', 'active']]);
  matched.add(notify.headers.get('call-id')!);
  t.equal(stack.deliver(notify)[0]?.status, 200);
});

t.test('unsolicited NOTIFY from a trunk that may push reaches the upstream handler with the person', async (t) => {
  const { stack, unsolicited } = setup(() => ({ allow: true, trunk: cucm }));
  const res = stack.deliver(request('NOTIFY', 'sip:alice@example.com', [['event', 'presence'], ['content-type', 'application/pidf+xml']], pidfBody()));
  t.equal(res[0]?.status, 200);
  t.same(unsolicited, [{ trunk: 'cucm', personId: 'alice' }]);
  t.equal(stack.deliver(request('NOTIFY', 'sip:nobody@example.com', [['event', 'presence']]))[0]?.status, 404, 'unknown user');
});

t.test('trunk rules: no unsolicited NOTIFY, no PUBLISH, no inbound', async (t) => {
  const plain: TrunkTraits = { name: 'pbx', inbound: true, unsolicitedNotify: false, inboundPublish: false };
  const a = setup(() => ({ allow: true, trunk: plain }));
  t.equal(a.stack.deliver(request('NOTIFY', 'sip:alice@example.com', [['event', 'presence']]))[0]?.status, 481);
  t.equal(a.stack.deliver(request('PUBLISH', 'sip:alice@example.com', [['event', 'presence'], ['expires', '60']], pidfBody()))[0]?.status, 403);
  const b = setup(() => ({ allow: true, trunk: { ...plain, inbound: false } }));
  t.equal(b.stack.deliver(request('SUBSCRIBE', 'sip:alice@example.com', [['event', 'presence']]))[0]?.status, 403);
  t.equal(b.stack.deliver(request('OPTIONS'))[0]?.status, 200, 'OPTIONS still answered (pings)');
});
