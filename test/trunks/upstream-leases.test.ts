/**
 * A trunk's upstream side as a job under its lease (src/job-wiring.ts,
 * JOBS.trunk): nothing goes to the PBX before the lease is acquired; a lost
 * lease ends nothing there (no unSUBSCRIBE); the next holder, another
 * gateway on the same store, refreshes the first one's dialog in place.
 */
import t from 'tap';
import { buildDialogInfo } from '../../src/bodies/index.js';
import { configSchema } from '../../src/config/schema.js';
import { Directory } from '../../src/core/directory.js';
import { PresenceHub } from '../../src/core/presence-hub.js';
import { holdJobs } from '../../src/job-wiring.js';
import { createPersistence } from '../../src/persistence-wiring.js';
import { tagOf } from '../../src/sip/header-values.js';
import { Headers } from '../../src/sip/headers.js';
import { createRequest, createResponse, type SipRequest } from '../../src/sip/message.js';
import { SipStack, type IncomingRequest } from '../../src/sip/stack.js';
import { JOBS } from '../../src/store/cluster.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { createTrunkSide, createUpstream } from '../../src/trunk-wiring.js';
import { silentLogger } from '../../src/util/logger.js';
import { TimerWheel } from '../../src/util/timer-wheel.js';
import { FakeLeases } from '../helpers/fake-leases.js';
import { bodyPackages } from '../helpers/packages.js';
import { makeServer } from '../simple/helpers.js';

const TIMERS = { t1: 20, t2: 80, t4: 50 };
const JOB = JOBS.trunk('pbx');

async function until(what: string, test: () => boolean, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!test()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Time for anything queued to go out over loopback (showing that nothing did). */
const quiet = (): Promise<void> => new Promise((r) => setTimeout(r, 150));

t.test('trunk job: not before acquired, nothing ended when lost, the dialog refreshed by the next holder', async (t) => {
  const pbx = await SipStack.start({ listen: [{ protocol: 'udp', address: '127.0.0.1', port: 0 }], logger: silentLogger(), timers: TIMERS, load: false });
  t.teardown(() => pbx.close());
  const pbxPort = pbx.localEndpoint('udp')!.port;
  const subscribes: SipRequest[] = [];
  const sendNotify = (sub: IncomingRequest, port: number): void => {
    const h = new Headers();
    h.append('from', `${sub.request.headers.get('to')!};tag=pbxtag`);
    h.append('to', sub.request.headers.get('from')!);
    h.append('call-id', sub.request.headers.get('call-id')!);
    h.append('cseq', '1 NOTIFY');
    h.append('event', 'dialog');
    h.append('subscription-state', 'active;expires=3600');
    h.append('contact', `<sip:pbx@127.0.0.1:${pbxPort}>`);
    h.append('content-type', 'application/dialog-info+xml');
    const body = Buffer.from(buildDialogInfo({ entity: 'sip:1001@pbx.example.test', version: 1, state: 'full', dialogs: [{ id: 'd1', state: 'confirmed', direction: 'initiator' }] }));
    void pbx.sendRequest(createRequest('NOTIFY', sub.request.headers.get('contact')!.replace(/^<|>$/g, ''), h, body), { destination: { protocol: 'udp', address: '127.0.0.1', port } });
  };
  pbx.onRequest((req) => {
    const res = createResponse(req.request, 200, undefined, { toTag: 'pbxtag' });
    if (req.request.method === 'SUBSCRIBE') {
      subscribes.push(req.request);
      res.headers.append('expires', '3600');
      res.headers.append('contact', `<sip:pbx@127.0.0.1:${pbxPort}>`);
      const contact = /:(\d+)>?$/.exec(req.request.headers.get('contact') ?? '');
      // a new subscription gets its first NOTIFY
      if (tagOf(req.request.headers.get('to')!) === undefined && contact?.[1] !== undefined) setTimeout(() => sendNotify(req, Number(contact[1])), 10);
    }
    req.respond(res);
  });

  const config = configSchema.parse({
    sip: { domain: 'gw.example.test' },
    trunks: [{ name: 'pbx', address: `sip:127.0.0.1:${pbxPort}`, domain: 'pbx.example.test', optionsIntervalSec: 60, directions: ['watch'], profile: 'asterisk' }],
    users: [{ id: 'anna', displayName: 'Anna', extension: '1001' }],
  });
  // one store both gateways share (what Redis is to a cluster)
  const shared = new MemoryStore();

  const node = async () => {
    const gw = await SipStack.start({ listen: [{ protocol: 'udp', address: '127.0.0.1', port: 0 }], logger: silentLogger(), timers: TIMERS, load: false });
    const wheel = new TimerWheel({ resolutionMs: 20 });
    const side = createTrunkSide(config, gw, silentLogger(), wheel);
    const directory = new Directory([{ id: 'anna', displayName: 'Anna', extension: '1001', sipAors: ['sip:anna@gw.example.test'] }], { domains: ['gw.example.test'] });
    const hub = new PresenceHub(directory);
    const upstream = createUpstream({ config, sender: gw, trunks: side, directory, store: hub, wheel, logger: silentLogger(), packages: bodyPackages() });
    gw.onRequest((req) => {
      if (!upstream.watcher.handleNotify(req)) req.respond(createResponse(req.request, 481));
    });
    const persistence = createPersistence({ store: shared, logger: silentLogger(), always: true });
    const s = makeServer();
    persistence.restore({ notifier: s.server.notifier, publications: s.server.publications, directory, upstream: { watcher: upstream.watcher, publisher: upstream.publisher } });
    const leases = new FakeLeases();
    const jobs = holdJobs(
      leases,
      upstream.trunks.map((name) => ({ job: JOBS.trunk(name), start: async () => void upstream.startTrunk(name, await persistence.savedUpstream(name)), stop: () => upstream.stopTrunk(name) })),
      silentLogger(),
    );
    await jobs.started;
    t.teardown(async () => {
      await jobs.release();
      await upstream.close();
      side.registry.close();
      wheel.close();
      await gw.close();
    });
    return { hub, upstream, leases, jobs };
  };

  const a = await node();
  const b = await node();
  t.same(a.leases.asked, [JOB], 'one lease per trunk');

  await quiet();
  t.equal(subscribes.length, 0, 'no SUBSCRIBE before the lease is acquired');

  await a.leases.grant(JOB);
  await until('the call from the PBX on node A', () => a.hub.view('anna').activities.includes('on-the-phone'));
  t.equal(subscribes.length, 1, 'one SUBSCRIBE');
  const first = subscribes[0]!;
  await until('the dialog saved', () => shared.upstreamSubscriptions.count() === 1);

  await a.leases.take(JOB);
  await quiet();
  t.equal(subscribes.length, 1, 'lost: no unSUBSCRIBE (nothing ended at the PBX)');
  t.equal(shared.upstreamSubscriptions.count(), 1, 'the saved dialog stays for the next holder');
  t.ok(a.hub.view('anna').activities.includes('on-the-phone'), 'the state already known stays on node A');

  await b.leases.grant(JOB);
  await until('the refresh from node B', () => subscribes.length === 2);
  const refresh = subscribes[1]!;
  t.equal(refresh.headers.get('call-id'), first.headers.get('call-id'), 'in the same dialog');
  t.equal(tagOf(refresh.headers.get('to')!), 'pbxtag', 'a refresh inside it, not a new subscription');
  t.equal(tagOf(refresh.headers.get('from')!), tagOf(first.headers.get('from')!));
  t.not(refresh.headers.get('expires'), '0');

  // a clean stop of both ends nothing either: the dialog is kept for whoever holds the trunk next
  await a.jobs.release();
  await b.jobs.release();
  await quiet();
  t.equal(subscribes.length, 2, 'no unSUBSCRIBE at release');
});
