/**
 * The gateway's jobs under the leases of the Cluster it is given (app.ts,
 * src/job-wiring.ts): a trunk's upstream side and the Graph side's jobs run
 * only while their lease is held, stop on a lost lease without ending
 * anything at the peer, and the Graph webhook takes notifications on a node
 * that holds no lease. The default (no cluster given) is a single node that
 * runs everything during startGateway, as before.
 */
import t, { type Test } from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createResponse, type SipRequest } from '../src/sip/message.js';
import { SipStack } from '../src/sip/stack.js';
import { startGateway } from '../src/app.js';
import { configSchema } from '../src/config/schema.js';
import { createServerCertificate } from '../src/graph-simulator/certs.js';
import { JOBS, type Cluster } from '../src/store/cluster.js';
import { singleNodeCluster } from '../src/store/single-node.js';
import { silentLogger } from '../src/util/logger.js';
import { FakeLeases } from './helpers/fake-leases.js';
import { freePort } from './helpers/ports.js';
import { env, testCa, waitFor } from './graph/helpers.js';

const CLIENT_STATE = 'gateway-client-state-for-app-leases';
/** The gateway's webhook certificate, made once (RSA key generation is slow). */
let webhookCert: ReturnType<typeof createServerCertificate> | undefined;

/** A PBX that accepts every SUBSCRIBE (and answers OPTIONS); what it got is kept. */
async function pbx(t: Test) {
  const stack = await SipStack.start({ listen: [{ protocol: 'udp', address: '127.0.0.1', port: 0 }], logger: silentLogger(), load: false });
  t.teardown(() => stack.close());
  const subscribes: SipRequest[] = [];
  stack.onRequest((req) => {
    const res = createResponse(req.request, 200, undefined, { toTag: 'pbxtag' });
    if (req.request.method === 'SUBSCRIBE') {
      subscribes.push(req.request);
      res.headers.append('expires', '3600');
    }
    req.respond(res);
  });
  return { port: stack.localEndpoint('udp')!.port, subscribes };
}

async function setup(t: Test) {
  const e = await env();
  t.teardown(() => e.close());
  const p = await pbx(t);
  const stateDir = await mkdtemp(join(tmpdir(), 'pgw-leases-'));
  t.teardown(() => rm(stateDir, { recursive: true, force: true }));
  webhookCert ??= createServerCertificate(testCa());
  const cert = webhookCert;
  const certPath = join(e.dir, 'webhook.pem');
  const keyPath = join(e.dir, 'webhook-key.pem');
  await writeFile(certPath, cert.certPem);
  await writeFile(keyPath, cert.keyPem, { mode: 0o600 });
  const httpPort = await freePort();
  const svc = e.sim.serviceAccount;
  const config = configSchema.parse({
    sip: { listen: [{ transport: 'udp', address: '127.0.0.1', port: 0 }], domain: 'gw.example' },
    http: { address: '127.0.0.1', port: httpPort, tls: { certPath, keyPath } },
    stateDir,
    users: ['anna', 'ben', 'chiara'].map((id, i) => ({ id, displayName: id, extension: `100${i + 1}` })),
    trunks: [{ name: 'pbx', address: `sip:127.0.0.1:${p.port}`, domain: 'pbx.example.test', optionsIntervalSec: 60, directions: ['watch'], profile: 'asterisk' }],
    graph: {
      tenantId: e.sim.tenantId,
      clientId: e.sim.demoApp.clientId,
      clientSecret: e.sim.demoApp.clientSecret,
      authorityHost: e.sim.origin,
      graphBaseUrl: e.sim.graphBaseUrl,
      trustedCaPath: e.caPath,
      directory: { match: { sip: 'id', graph: 'mailNickname', stripDomain: false } },
      serviceAccounts: [{ username: svc.username, password: svc.password }],
      webhook: { publicUrl: `https://127.0.0.1:${httpPort}/graph/notify`, clientState: CLIENT_STATE },
      writer: { enabled: false },
    },
  });
  const count = (key: string) => e.sim.control.counters().requests[key] ?? 0;
  return { e, p, config, count };
}

const quiet = (): Promise<void> => new Promise((r) => setTimeout(r, 150));

t.test('jobs run only under their lease; lost ends nothing at the peer; the webhook works without a lease', async (t) => {
  const { e, p, config, count } = await setup(t);
  const leases = new FakeLeases();
  const cluster: Cluster = { ...singleNodeCluster('node-a'), leases };
  const gw = await startGateway(config, silentLogger(), { cluster });
  let stopped = false;
  t.teardown(() => (stopped ? undefined : gw.stop()));

  t.same(leases.asked, [JOBS.trunk('pbx'), JOBS.graphSubscriptions, JOBS.directorySync], 'a lease for each job (the poller goes with the subscriptions whose coverage it reads)');
  await quiet();
  t.equal(p.subscribes.length, 0, 'no upstream SUBSCRIBE before the trunk lease');
  t.equal(e.sim.control.subscriptions().length, 0, 'no Graph subscription before its lease');
  t.equal(count('POST /v1.0/communications/getPresencesByUserId 200'), 0, 'nobody polled before the poller lease');

  await leases.grantAll();
  await waitFor(() => p.subscribes.length === 3, 8000, 'a SUBSCRIBE per person');
  t.equal(e.sim.control.subscriptions().length, 1, 'one Graph subscription');
  t.ok(count('POST /v1.0/communications/getPresencesByUserId 200') > 0, 'polled');

  await leases.takeAll();
  await quiet();
  t.equal(p.subscribes.length, 3, 'lost: no unSUBSCRIBE');
  t.equal(count('DELETE /v1.0/subscriptions/:id 204'), 0, 'lost: no Graph DELETE');
  t.equal(e.sim.control.subscriptions().length, 1, 'the subscription stays in Graph');

  // holding no lease, the node's webhook still takes Graph's notifications
  e.sim.control.call('chiara');
  await waitFor(() => gw.store.state('chiara').teams?.activity === 'InACall', 8000, 'chiara in a call');
  t.ok((gw.graph?.status().reader.notifications.accepted ?? 0) >= 1);

  stopped = true;
  await gw.stop();
  t.equal(p.subscribes.length, 3, 'stop: nothing ended at the PBX');
  t.equal(count('DELETE /v1.0/subscriptions/:id 204'), 0, 'stop: nothing deleted in Graph');
});

t.test('a single node (no cluster given) has every job running when startGateway resolves', async (t) => {
  const { e, p, config } = await setup(t);
  const gw = await startGateway(config, silentLogger());
  t.teardown(() => gw.stop());
  t.equal(e.sim.control.subscriptions().length, 1, 'the Graph subscription is made during the start');
  t.equal(gw.graph?.status().reader.subscriptions[0]?.state, 'active');
  await waitFor(() => p.subscribes.length === 3, 8000, 'a SUBSCRIBE per person');
});
