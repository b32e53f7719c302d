/**
 * End to end, gateway process against the simulator: a device-code service
 * account signed in with `presence-gateway-cli signin`, its subscription
 * made, and after a restart the sealed token cache in the store signs it in
 * again without anyone entering a code.
 */
import t from 'tap';
import { runCli } from '../../src/cli.js';
import { AdminClient } from '../../src/cli/admin-client.js';
import type { GraphAccountInfo } from '../../src/http/admin-source.js';
import { eventually, startTeamsEnv, startTeamsGateway, type TeamsEnv } from '../helpers/teams-gateway.js';

const TOKEN = 'device-code-e2e-admin-token-0123456789';
const KEY = Buffer.alloc(32, 5).toString('base64');

let e: TeamsEnv;

t.before(async () => {
  e = await startTeamsEnv({ deviceCode: { intervalSec: 1 } });
  e.sim.control.registerApp({
    clientId: e.sim.demoApp.clientId,
    secrets: [e.sim.demoApp.clientSecret],
    applicationPermissions: ['Presence.ReadWrite.All', 'Presence.Read.All', 'User.Read.All'],
    delegatedPermissions: ['Presence.Read.All', 'User.Read'],
    allowPublicClient: true,
  });
});
t.teardown(async () => {
  await e?.close();
});

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, { out: (s) => out.push(s), err: (s) => err.push(s), env: { PRESENCE_GATEWAY_TOKEN: TOKEN }, signInPollMs: 200 });
  return { code, out: out.join(''), err: err.join('') };
}

t.test('signin from the CLI, subscription, restart from the stored token cache', async (t) => {
  const svc = e.sim.serviceAccount.username;
  const stateDir = await e.newStateDir();
  const options = {
    stateDir,
    graph: { serviceAccounts: [{ username: svc }], tokenCacheKey: KEY },
    overrides: { admin: { token: TOKEN } },
  };
  const first = await startTeamsGateway(e, options);
  const url = `https://127.0.0.1:${first.httpPort}`;
  try {
    t.equal(e.sim.control.subscriptions().length, 0, 'not signed in: no subscription yet');
    // act as the administrator at the verification page once the CLI shows the code
    const approving = (async () => {
      const code = await eventually(() => e.sim.control.deviceCodes().find((c) => c.state === 'pending'), (c) => c !== undefined, 20_000, 'a device code');
      e.sim.control.approveDeviceCode(code!.userCode, svc);
    })();
    const r = await cli(['signin', svc, '--url', url, '--ca', e.caPath]);
    await approving;
    t.equal(r.code, 0, r.err);
    t.match(r.out, /open https:\/\/127\.0\.0\.1:\d+\/devicelogin and enter the code [A-Z2-9]{9}/);
    await eventually(() => e.sim.control.subscriptions().length, (n) => n === 1, 20_000, 'a subscription by the signed-in account');
  } finally {
    await first.gw.stop();
  }

  const second = await startTeamsGateway(e, options);
  try {
    const signedIn = await second.gw.waitForLog((rec) => rec['msg'] === 'graph: service account signed in from the stored token cache', 20_000);
    t.ok(signedIn, 'signed in from the store after the restart');
    const admin = new AdminClient({ url: `https://127.0.0.1:${second.httpPort}`, token: TOKEN, caFile: e.caPath });
    const body = await admin.get<{ accounts: GraphAccountInfo[] }>('/graph/accounts');
    t.equal(body.accounts[0]?.state, 'signed-in');
    t.equal(body.accounts[0]?.usable, true);
    t.equal(e.sim.control.deviceCodes().filter((c) => c.state === 'pending').length, 0, 'nobody was asked for a code');
    const subs = await eventually(() => e.sim.control.subscriptions(), (s) => s.length === 1 && Date.parse(String(s[0]?.['expirationDateTime'])) > Date.now(), 20_000, 'the subscription kept up');
    t.equal(subs.length, 1, 'still one subscription, renewed with the restored sign-in');
  } finally {
    await second.gw.stop();
  }
});
