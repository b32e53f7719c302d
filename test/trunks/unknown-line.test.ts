/**
 * Unknown is not idle, end to end through the wiring: a "PBX" SipStack
 * answers OPTIONS and the upstream SUBSCRIBE and NOTIFYs a call; it stops
 * answering (trunk down: the OPTIONS ping times out) and the person shows
 * unknown; it answers again (trunk back) and the person's state is known again.
 */
import t from 'tap';
import { buildDialogInfo } from '../../src/bodies/index.js';
import { configSchema } from '../../src/config/schema.js';
import { Directory } from '../../src/core/directory.js';
import { PresenceHub } from '../../src/core/presence-hub.js';
import { Headers } from '../../src/sip/headers.js';
import { createRequest, createResponse } from '../../src/sip/message.js';
import { SipStack, type IncomingRequest } from '../../src/sip/stack.js';
import { createTrunkSide, startUpstream } from '../../src/trunk-wiring.js';
import { silentLogger } from '../../src/util/logger.js';
import { TimerWheel } from '../../src/util/timer-wheel.js';
import { bodyPackages } from '../helpers/packages.js';

const TIMERS = { t1: 20, t2: 80, t4: 50 };

async function until(what: string, test: () => boolean, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!test()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

t.test('trunk down → unknown → trunk back', async (t) => {
  const pbx = await SipStack.start({ listen: [{ protocol: 'udp', address: '127.0.0.1', port: 0 }], logger: silentLogger(), timers: TIMERS, load: false });
  const gw = await SipStack.start({ listen: [{ protocol: 'udp', address: '127.0.0.1', port: 0 }], logger: silentLogger(), timers: TIMERS, load: false });
  const pbxPort = pbx.localEndpoint('udp')!.port;
  const gwPort = gw.localEndpoint('udp')!.port;
  let answering = true;
  let line: 'confirmed' | 'idle' = 'confirmed';
  let notifyCseq = 0;
  const sendNotify = (sub: IncomingRequest): void => {
    const h = new Headers();
    h.append('from', `${sub.request.headers.get('to')!};tag=pbxtag`);
    h.append('to', sub.request.headers.get('from')!);
    h.append('call-id', sub.request.headers.get('call-id')!);
    h.append('cseq', `${++notifyCseq} NOTIFY`);
    h.append('event', 'dialog');
    h.append('subscription-state', 'active;expires=3600');
    h.append('contact', `<sip:pbx@127.0.0.1:${pbxPort}>`);
    h.append('content-type', 'application/dialog-info+xml');
    const dialogs = line === 'confirmed' ? [{ id: 'd1', state: 'confirmed' as const, direction: 'initiator' as const }] : [];
    const body = Buffer.from(buildDialogInfo({ entity: 'sip:1001@pbx.example.test', version: notifyCseq, state: 'full', dialogs }));
    void pbx.sendRequest(createRequest('NOTIFY', sub.request.headers.get('contact')!.replace(/^<|>$/g, ''), h, body), {
      destination: { protocol: 'udp', address: '127.0.0.1', port: gwPort },
    });
  };
  pbx.onRequest((req) => {
    if (!answering) return; // a dead PBX: nothing comes back, the transactions time out
    const res = createResponse(req.request, 200, undefined, { toTag: 'pbxtag' });
    if (req.request.method === 'SUBSCRIBE') {
      res.headers.append('expires', '3600');
      res.headers.append('contact', `<sip:pbx@127.0.0.1:${pbxPort}>`);
    }
    req.respond(res);
    if (req.request.method === 'SUBSCRIBE') setTimeout(() => sendNotify(req), 10);
  });

  const config = configSchema.parse({
    sip: { domain: 'gw.example.test' },
    trunks: [
      { name: 'pbx', address: `sip:127.0.0.1:${pbxPort}`, domain: 'pbx.example.test', optionsIntervalSec: 1, directions: ['watch'], profile: 'asterisk' },
    ],
    users: [{ id: 'anna', displayName: 'Anna', extension: '1001' }],
  });
  const wheel = new TimerWheel({ resolutionMs: 20 });
  const side = createTrunkSide(config, gw, silentLogger(), wheel);
  const directory = new Directory([{ id: 'anna', displayName: 'Anna', extension: '1001', sipAors: ['sip:anna@gw.example.test'] }], {
    domains: ['gw.example.test'],
  });
  const store = new PresenceHub(directory);
  await side.registry.start();
  const upstream = startUpstream({ config, sender: gw, trunks: side, directory, store, wheel, logger: silentLogger(), packages: bodyPackages() });
  // the SIMPLE server's part: NOTIFYs of our upstream subscriptions go to the watcher
  gw.onRequest((req) => {
    if (!upstream.watcher.handleNotify(req)) req.respond(createResponse(req.request, 481));
  });
  t.teardown(async () => {
    await upstream.close();
    side.registry.close();
    wheel.close();
    await Promise.all([gw.close(), pbx.close()]);
  });

  await until('the call from the PBX', () => store.view('anna').activities.includes('on-the-phone'));
  t.equal(store.view('anna').phoneUnknown, undefined, 'trunk up: known');

  answering = false;
  await until('unknown after the trunk stops answering', () => store.view('anna').phoneUnknown === true);
  const down = store.view('anna');
  t.equal(down.note, 'Phone status unknown');
  t.same(down.activities, [], 'the last call from a dead trunk is not shown');
  t.equal(side.registry.get('pbx')?.status().reachable, false);

  line = 'idle';
  answering = true;
  await until('known again after the trunk is back', () => store.view('anna').phoneUnknown === undefined);
  await until('the fresh state from the PBX', () => store.state('anna').telephony?.line === 'idle');
  t.same(store.view('anna').activities, [], 'idle, now truly known');
  t.equal(store.view('anna').note, undefined);
});
