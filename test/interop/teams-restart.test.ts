/**
 * Restarts: the gateway process is stopped (SIGTERM, then SIGKILL) and started
 * again with the same stateDir and webhook URL. It must reuse its Graph
 * subscription (same id, no second one, no 409 on create), and a Teams change
 * after the restart must reach a new SIPp watcher through the webhook.
 */
import t, { type Test } from 'tap';
import { errorRecords, type GatewayProcess } from '../helpers/gateway-process.js';
import { freePort } from '../helpers/ports.js';
import { assertSippInstalled } from '../helpers/sipp.js';
import { isOnThePhone, startTeamsEnv, startTeamsGateway, startWatcher, type TeamsEnv } from '../helpers/teams-gateway.js';

let env: TeamsEnv | undefined;
let gateway: GatewayProcess | undefined;
const E = (): TeamsEnv => {
  if (env === undefined) throw new Error('simulator not started');
  return env;
};

let stateDir = '';
let httpPort = 0;

t.before(async () => {
  assertSippInstalled();
  env = await startTeamsEnv();
  stateDir = await env.newStateDir();
  httpPort = await freePort();
});
t.teardown(async () => {
  await gateway?.stop();
  await env?.close();
});

/** Subscription creations and 409 answers so far, from the simulator's request counters. */
function creates(): { created: number; conflicts: number } {
  const r = E().sim.control.counters().requests;
  return { created: r['POST /v1.0/subscriptions 201'] ?? 0, conflicts: r['POST /v1.0/subscriptions 409'] ?? 0 };
}

const ids = (): string[] => E().sim.control.subscriptions().map((s) => String(s['id']));

async function start(): Promise<GatewayProcess> {
  gateway = (await startTeamsGateway(env ?? E(), { stateDir, httpPort, pollIntervalSec: 60 })).gw;
  return gateway;
}

/** A Teams call of `user` reaches a new watcher of `ext` (poll interval 60 s: only the webhook is fast enough). */
async function callReachesWatcher(t: Test, gw: GatewayProcess, user: string, ext: string): Promise<void> {
  const watcher = await startWatcher(gw.port, 'u1', ext, 'presence');
  try {
    const first = await watcher.waitFor(() => true, 10_000, 'initial NOTIFY');
    E().sim.control.call(user);
    const busy = await watcher.waitFor(isOnThePhone, 10_000, 'on-the-phone', first);
    t.ok(busy > first, `the call of ${user} reached the new watcher of ${ext}`);
  } finally {
    await watcher.stop();
    E().sim.control.endCall(user);
  }
}

let firstId = '';

t.test('first start creates one subscription', async (t) => {
  const gw = await start();
  t.equal(ids().length, 1, 'one subscription in the simulator');
  firstId = ids()[0] ?? '';
  t.same(creates(), { created: 1, conflicts: 0 }, 'created once, no conflict');
  await callReachesWatcher(t, gw, 'anna', '1001');
});

t.test('after SIGTERM and a start with the same stateDir the subscription is reused', async (t) => {
  const before = gateway;
  await before?.stop();
  t.equal((await before?.exited)?.code, 0, 'the gateway exited cleanly on SIGTERM');
  const gw = await start();
  t.same(ids(), [firstId], 'the same subscription id, and only it');
  t.same(creates(), { created: 1, conflicts: 0 }, 'no second create, no 409');
  t.same(errorRecords(gw), [], 'no errors logged by the restarted gateway');
  await callReachesWatcher(t, gw, 'ben', '1002');
});

t.test('after SIGKILL and a start with the same stateDir the subscription is reused', async (t) => {
  const before = gateway;
  if (before === undefined) throw new Error('gateway not started');
  process.kill(before.pid, 'SIGKILL');
  t.equal((await before.exited).signal, 'SIGKILL', 'the gateway was killed');
  await before.stop(); // removes its temporary config folder
  const gw = await start();
  t.same(ids(), [firstId], 'the same subscription id, and only it');
  t.same(creates(), { created: 1, conflicts: 0 }, 'no second create, no 409');
  t.same(errorRecords(gw), [], 'no errors logged by the restarted gateway');
  await callReachesWatcher(t, gw, 'dmitri', '1004');
});
