/**
 * The upstream watcher over real sockets: stack A (the gateway) subscribes at
 * stack B, where the real Notifier with the dialog package plays the PBX.
 */
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { Directory } from '../../src/core/directory.js';
import type { TelephonyState } from '../../src/core/person-state.js';
import { PresenceHub } from '../../src/core/presence-hub.js';
import { createResponse } from '../../src/sip/message.js';
import { SipStack } from '../../src/sip/stack.js';
import { DialogPackage } from '../../src/simple/dialog-package.js';
import { Notifier } from '../../src/simple/notifier.js';
import { UpstreamWatcher } from '../../src/simple/upstream-watcher.js';
import { silentLogger } from '../../src/util/logger.js';
import { TimerWheel } from '../../src/util/timer-wheel.js';
import { RecordingSink } from './upstream-fakes.js';
import { bodyPackages } from '../helpers/packages.js';

async function until(cond: () => boolean, ms = 3_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await sleep(10);
  }
  return true;
}

t.test('SUBSCRIBE, NOTIFYs and unsubscribe between two stacks on 127.0.0.1', async (t) => {
  const logger = silentLogger();
  const timers = { t1: 50, t2: 200, t4: 100 };
  const gw = await SipStack.start({ listen: [{ protocol: 'udp', address: '127.0.0.1', port: 0 }], logger, timers });
  const pbx = await SipStack.start({ listen: [{ protocol: 'udp', address: '127.0.0.1', port: 0 }], logger, timers });
  const wheelA = new TimerWheel({ resolutionMs: 50 });
  const wheelB = new TimerWheel({ resolutionMs: 50 });
  t.teardown(async () => {
    wheelA.close();
    wheelB.close();
    await gw.close();
    await pbx.close();
  });

  // The PBX side: a real notifier serving `dialog` for extension 1001.
  const directory = new Directory([{ id: 'alice', displayName: 'Alice', extension: '1001', sipAors: ['sip:1001@127.0.0.1'] }], {
    domains: ['127.0.0.1'],
  });
  const store = new PresenceHub(directory);
  const notifier = new Notifier({
    sender: pbx,
    wheel: wheelB,
    logger,
    expires: { minExpires: 60, maxExpires: 3600, defaultExpires: 600 },
    resolveResource: (user) => (user === '1001' ? 'alice' : undefined),
  });
  notifier.register(new DialogPackage(store));
  store.onChange((id) => notifier.resourceChanged(id));
  const seen: string[] = [];
  pbx.onRequest((req) => {
    seen.push(`${req.request.method} ${req.request.headers.get('expires') ?? ''}`);
    if (req.request.method === 'SUBSCRIBE') notifier.handleSubscribe(req);
    else req.respond(createResponse(req.request, 405));
  });

  // The gateway side.
  const sink = new RecordingSink();
  const items: string[] = [];
  const watcher = new UpstreamWatcher({
    sender: gw,
    wheel: wheelA,
    sink,
    packages: bodyPackages(),
    logger,
    onItem: (trunk, person, up) => items.push(`${trunk}/${person} ${up ? 'up' : 'down'}`),
  });
  let unmatched = 0;
  const states: string[] = [];
  gw.onRequest((req) => {
    states.push(req.request.headers.get('subscription-state')?.split(';')[0] ?? '');
    if (req.request.method === 'NOTIFY' && watcher.handleNotify(req)) return;
    unmatched++;
    req.respond(createResponse(req.request, 481));
  });

  const pbxEp = pbx.localEndpoint('udp')!;
  watcher.add({
    trunk: 'pbx1',
    personId: 'alice',
    uri: `sip:1001@127.0.0.1:${pbxEp.port}`,
    event: 'dialog',
    accept: ['application/dialog-info+xml'],
    expires: 600,
    fromUri: 'sip:gateway@127.0.0.1',
    destination: () => Promise.resolve(pbxEp),
  });

  t.ok(await until(() => sink.lastTelephony() !== undefined), 'initial NOTIFY turned into telephony state');
  t.equal(sink.lastTelephony()?.line, 'idle');
  t.equal(sink.calls[0]?.source, 'trunk:pbx1');
  t.ok(await until(() => items.includes('pbx1/alice up')), 'subscription up');
  t.same(watcher.counts(), { pbx1: { up: 1, down: 0 } });

  const inCall: TelephonyState = {
    line: 'in-call',
    dnd: false,
    calls: [{ id: 'c1', phase: 'confirmed', direction: 'initiator', remote: { identity: 'sip:2000@127.0.0.1' } }],
    origin: 'test',
    at: Date.now(),
  };
  store.setTelephony('alice', inCall, 'phone');
  t.ok(await until(() => sink.lastTelephony()?.line === 'in-call'), 'change NOTIFY → in-call');
  t.equal(sink.lastTelephony()?.origin, 'trunk:pbx1');

  store.setTelephony('alice', undefined, 'phone');
  t.ok(await until(() => sink.lastTelephony()?.line === 'idle'), 'back to idle');

  await watcher.close(true);
  t.ok(await until(() => notifier.size === 0 && states.includes('terminated')), 'the notifier ended the subscription');
  t.same(states, ['active', 'active', 'active', 'terminated']);
  t.same(seen, ['SUBSCRIBE 600', 'SUBSCRIBE 0']);
  t.equal(unmatched, 0, 'every NOTIFY matched our dialog, the final one included');
});
