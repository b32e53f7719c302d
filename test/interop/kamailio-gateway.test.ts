/**
 * The gateway against a real Kamailio presence server (issue 4, item 6). One Kamailio
 * (test/helpers/kamailio.ts), the Graph simulator and one gateway process with a trunk
 *   kam: { profile: kamailio, directions: [watch, publish], address: sip:127.0.0.1:<kam port>, domain: <kam domain> }
 * for the whole file. Users are carried by extension (the trunk's default userPart):
 * anna 1001, chiara 1003, dmitri 1004 at <kam domain>.
 *  a) Teams -> Kamailio: a Teams call of anna is PUBLISHed as PIDF on-the-phone at
 *     Kamailio; a SIPp watcher subscribed at Kamailio sees it, and idle after the call.
 *  b) Kamailio -> Teams: a SIPp phone PUBLISHes dialog-info at Kamailio for 1001; the
 *     gateway, watching 1001 (event dialog) there, sets anna's app session Busy/InACall;
 *     the hang-up clears it.
 *  c) Kamailio stopped and started again on the same port and database (a short outage
 *     in between, during which dmitri's Teams call starts): dmitri's call still reaches
 *     a watcher at Kamailio, and a phone state published after the restart for 1003
 *     still reaches chiara's session in the simulator, within 40 s each.
 */
import t, { type Test } from 'tap';
import { errorRecords, type GatewayProcess } from '../helpers/gateway-process.js';
import {
  assertKamailioInstalled,
  isNotOnThePhone,
  isOnThePhone,
  kamPublish,
  startKamailio,
  startKamWatcher,
  type Kamailio,
  type KamWatcher,
} from '../helpers/kamailio.js';
import { assertSippInstalled } from '../helpers/sipp.js';
import { appSession, eventually, startTeamsEnv, startTeamsGateway, TEAMS_USERS, type TeamsEnv } from '../helpers/teams-gateway.js';

const DOMAIN = 'kam.interop.test';
/** The gateway pings the trunk this often, so it notices the restart quickly. */
const OPTIONS_INTERVAL_SEC = 2;

let kamailio: Kamailio | undefined;
let env: TeamsEnv | undefined;
let gateway: GatewayProcess | undefined;
const K = (): Kamailio => {
  if (kamailio === undefined) throw new Error('kamailio not started');
  return kamailio;
};
const E = (): TeamsEnv => {
  if (env === undefined) throw new Error('simulator not started');
  return env;
};
const G = (): GatewayProcess => {
  if (gateway === undefined) throw new Error('gateway not started');
  return gateway;
};

/** The trunk exactly as an operator would write it for this Kamailio (contract: src/trunks/config.ts). */
function kamTrunk(kam: Kamailio): Record<string, unknown> {
  return {
    name: 'kam',
    profile: 'kamailio',
    directions: ['watch', 'publish'],
    address: `sip:127.0.0.1:${kam.port}`,
    domain: kam.domain,
    optionsIntervalSec: OPTIONS_INTERVAL_SEC,
  };
}

/** The gateway with the simulator as its tenant plus the trunk; a Teams change can only arrive by webhook here. */
async function startKamGateway(teams: TeamsEnv, kam: Kamailio): Promise<GatewayProcess> {
  const { gw } = await startTeamsGateway(teams, {
    stateDir: await teams.newStateDir(),
    pollIntervalSec: 60,
    overrides: { trunks: [kamTrunk(kam)] },
  });
  return gw;
}

t.before(async () => {
  assertSippInstalled();
  assertKamailioInstalled();
  kamailio = await startKamailio({ domain: DOMAIN });
  env = await startTeamsEnv();
  gateway = await startKamGateway(env, kamailio);
});
t.teardown(async () => {
  // the gateway first: it removes its publications at Kamailio on shutdown
  await gateway?.stop();
  await env?.close();
  await kamailio?.stop();
});

/** Subscriptions Kamailio holds for sip:<user>@<domain>, event `event`, from a watcher other than SIPp's. */
function gatewaySubscriptions(user: string, event: 'dialog' | 'presence'): number {
  const rows = K().query(
    `SELECT watcher_username FROM active_watchers WHERE presentity_uri = 'sip:${user}@${DOMAIN}' AND event = '${event}'`,
  );
  return rows.filter((r) => !String(r['watcher_username']).startsWith('kam-watcher-')).length;
}

const busyInACall = (s: ReturnType<typeof appSession>): boolean => s?.availability === 'Busy' && s.activity === 'InACall';

async function stopWatcher(t: Test, w: KamWatcher | undefined, what: string): Promise<void> {
  if (w === undefined) return;
  const r = await w.stop();
  t.equal(r.errors.trim(), '', `${what}: no unexpected messages`);
}

t.test('the gateway subscribes at Kamailio, event dialog, for every carried user', async (t) => {
  for (const user of TEAMS_USERS) {
    const ext = user.extension ?? user.id;
    await eventually(() => gatewaySubscriptions(ext, 'dialog'), (n) => n >= 1, 10_000, `gateway subscription for ${ext}`);
  }
  t.same(
    TEAMS_USERS.map((u) => gatewaySubscriptions(u.extension ?? u.id, 'dialog')),
    TEAMS_USERS.map(() => 1),
    'exactly one dialog subscription per user at Kamailio',
  );
  await K().waitForLog(new RegExp(`pg-kam request SUBSCRIBE sip:1001@${DOMAIN.replaceAll('.', '\\.')}\\S* .* event dialog`), 5000);
});

t.test('a) a Teams call of anna is published at Kamailio: a watcher there sees on-the-phone, then idle', async (t) => {
  const sim = E().sim;
  const watcher = await startKamWatcher(K(), 'u1', '1001', 'presence');
  try {
    const first = await watcher.waitFor(() => true, 10_000, 'initial NOTIFY');
    t.ok(isNotOnThePhone(watcher.lines()[first] ?? ''), 'anna is not on the phone before the call');

    t.equal(sim.control.call('anna').activity, 'InACall', 'the simulator shows the call');
    const busy = await watcher.waitFor(isOnThePhone, 15_000, 'on-the-phone', first);
    t.match(watcher.lines()[busy], /sub=active/, 'NOTIFY on an active subscription');
    const rows = K().query(`SELECT sender FROM presentity WHERE username = '1001' AND domain = '${DOMAIN}' AND event = 'presence'`);
    t.equal(rows.length, 1, 'one presence publication for 1001 at Kamailio (the gateway PUBLISHed it)');

    sim.control.endCall('anna');
    const idle = await watcher.waitFor(isNotOnThePhone, 15_000, 'idle after the call', busy);
    t.ok(idle > busy, 'the hang-up reached the watcher');
  } finally {
    await stopWatcher(t, watcher, 'presence watcher of 1001');
  }
});

t.test("b) a phone's dialog-info at Kamailio sets anna Busy/InACall in Teams; the hang-up clears it", async (t) => {
  const sim = E().sim;
  t.equal(appSession(sim, 'anna'), undefined, 'no gateway session for anna before');
  const { etag } = await kamPublish(K(), 'kam-publish-dialog', '1001', { dialog: 'desk-1001', dstate: 'confirmed' });
  const s = await eventually(() => appSession(sim, 'anna'), busyInACall, 15_000, "anna's gateway session Busy/InACall");
  t.equal(s?.sessionId, sim.demoApp.clientId, "the gateway's app session of anna");
  t.equal(sim.control.presence('anna').activity, 'InACall', "anna's aggregated Teams presence is InACall");

  await kamPublish(K(), 'kam-publish-dialog-modify', '1001', { dialog: 'desk-1001', dstate: 'terminated', version: '1', etag });
  await eventually(() => appSession(sim, 'anna'), (x) => x === undefined, 15_000, "anna's gateway session cleared");
  t.pass('terminated dialog -> session cleared');
  t.same(errorRecords(G()), [], 'the gateway logged no errors so far');
});

t.test('c) Kamailio restarted on the same port and database: both directions recover', async (t) => {
  const sim = E().sim;
  let watcher: KamWatcher | undefined;
  try {
    // Teams side: dmitri's call starts while Kamailio is down (the PUBLISH goes unanswered)
    await K().restart({
      whileDown: async () => {
        t.equal(sim.control.call('dmitri').activity, 'InACall', "dmitri's Teams call starts during the outage");
        await new Promise((r) => setTimeout(r, 2 * OPTIONS_INTERVAL_SEC * 1000)); // the outage: long enough for a missed ping
      },
    });
    watcher = await startKamWatcher(K(), 'u1', '1004', 'presence');
    await watcher.waitFor(isOnThePhone, 40_000, "dmitri's call, published after the restart");
    t.pass("dmitri's Teams call reached a watcher at the restarted Kamailio");

    // phone side: a new line state published after the restart reaches the simulator
    const { etag } = await kamPublish(K(), 'kam-publish-dialog', '1003', { dialog: 'desk-1003', dstate: 'confirmed' });
    await eventually(() => appSession(sim, 'chiara'), busyInACall, 40_000, "chiara's gateway session Busy/InACall after the restart");
    t.pass("the phone's confirmed dialog reached chiara's session after the restart");
    t.ok(gatewaySubscriptions('1003', 'dialog') >= 1, 'Kamailio holds a gateway subscription for 1003');

    // and both keep working: the hang-ups
    const since = watcher.lines().length - 1;
    sim.control.endCall('dmitri');
    await watcher.waitFor(isNotOnThePhone, 15_000, 'dmitri idle after the call', since);
    await kamPublish(K(), 'kam-publish-dialog-modify', '1003', { dialog: 'desk-1003', dstate: 'terminated', version: '1', etag });
    await eventually(() => appSession(sim, 'chiara'), (x) => x === undefined, 15_000, "chiara's gateway session cleared");
    t.pass('after the restart both directions keep following changes');
  } finally {
    await stopWatcher(t, watcher, 'presence watcher of 1004');
  }
});
