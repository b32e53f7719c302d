/**
 * Service account sign-in over the admin API: POST /api/graph/accounts/:account/signin,
 * the red Graph sign-in card with its action, and `presence-gateway-cli signin`.
 */
import t from 'tap';
import { runCli } from '../../src/cli.js';
import type { GraphAccountInfo, SignInOutcome } from '../../src/http/admin-source.js';
import { connectors } from '../../src/http/rows.js';
import { startHttpServer, type HttpServer } from '../../src/http/server.js';
import { silentLogger } from '../../src/util/logger.js';
import { fakeSource, TOKEN, type FakeSource } from '../http/fake-source.js';

const SVC = 'svc-presence@contoso.test';

function account(over: Partial<GraphAccountInfo> = {}): GraphAccountInfo {
  return { account: SVC, method: 'deviceCode', state: 'signed-out', usable: false, reason: 'not signed in: run presence-gateway-cli signin ' + SVC, since: 1, ...over };
}

/** A fake Graph side whose sign-in completes (or is declined) after `after` status reads. */
function withSignIn(src: FakeSource, outcome: 'signed-in' | 'declined', after = 2): { calls: string[] } {
  const calls: string[] = [];
  let reads = 0;
  let current = account();
  const info = src.graphInfo!;
  src.graphInfo = {
    ...info,
    tokens: [...info.tokens, { name: SVC, ok: false }],
    get accounts() {
      if (current.state === 'signing-in' && ++reads > after) {
        current = outcome === 'signed-in' ? account({ state: 'signed-in', usable: true, reason: 'signed in with a device code', signedInAt: 2 }) : account({ state: 'failed', reason: 'the sign-in was declined at the verification page; sign in again', code: 'authorization_declined' });
      }
      return [current];
    },
  };
  src.signIn = async (name: string): Promise<SignInOutcome> => {
    calls.push(name);
    if (name.toLowerCase() !== SVC) return { ok: false, status: 404, message: `no service account "${name}" in graph.serviceAccounts` };
    current = account({ state: 'signing-in', reason: 'waiting', prompt: { userCode: 'ABCD23EFG', verificationUri: 'https://microsoft.com/devicelogin', message: 'To sign in...', expiresAt: Date.now() + 900_000 } });
    return { ok: true, account: current };
  };
  return { calls };
}

async function serve(src: FakeSource): Promise<HttpServer> {
  return startHttpServer({ address: '127.0.0.1', port: 0, logger: silentLogger(), admin: { token: TOKEN, source: src } });
}

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, { out: (s) => out.push(s), err: (s) => err.push(s), env: { PRESENCE_GATEWAY_TOKEN: TOKEN }, signInPollMs: 20 });
  return { code, out: out.join(''), err: err.join('') };
}

t.test('the Graph sign-in card: red with the reason and a Sign in action; the code while signing in', async (t) => {
  const src = fakeSource();
  t.teardown(() => src.close());
  withSignIn(src, 'signed-in', 100);
  const card = () => connectors(src, undefined).find((c) => c.kind === 'graph-auth' && c.name === SVC);
  t.equal(card()?.ok, false, 'not signed in: red');
  t.match(card()?.detail, /presence-gateway-cli signin/);
  t.equal(card()?.action, 'sign-in');
  await src.signIn!(SVC);
  t.same(card()?.prompt?.userCode, 'ABCD23EFG');
  t.match(card()?.detail, /open https:\/\/microsoft\.com\/devicelogin and enter ABCD23EFG/);
  t.equal(connectors(src, undefined).filter((c) => c.kind === 'graph-auth').length, 2, 'one card for the app, one per account');
});

t.test('POST /api/graph/accounts/:account/signin and GET /api/graph/accounts', async (t) => {
  const src = fakeSource();
  const { calls } = withSignIn(src, 'signed-in');
  const http = await serve(src);
  t.teardown(async () => {
    await http.close();
    src.close();
  });
  const post = (name: string, token = TOKEN) =>
    fetch(`${http.origin}/api/graph/accounts/${encodeURIComponent(name)}/signin`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  t.equal((await post(SVC, 'wrong-token-000000000000000000000')).status, 401, 'the admin token, as every route');
  const ok = await post(SVC);
  t.equal(ok.status, 202);
  const body = (await ok.json()) as GraphAccountInfo;
  t.equal(body.prompt?.userCode, 'ABCD23EFG');
  t.equal((await post('nobody@contoso.test')).status, 404);
  t.equal((await post('not-an-upn')).status, 400);
  t.same(calls, [SVC, 'nobody@contoso.test']);
  const list = (await (await fetch(`${http.origin}/api/graph/accounts`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { accounts: GraphAccountInfo[] };
  t.equal(list.accounts[0]?.account, SVC);
  src.graphInfo = undefined;
  t.equal((await post(SVC)).status, 503, 'no Graph side');
});

t.test('presence-gateway-cli signin: prints the code and URL, waits, exits 0 when signed in', async (t) => {
  const src = fakeSource();
  withSignIn(src, 'signed-in');
  const http = await serve(src);
  t.teardown(async () => {
    await http.close();
    src.close();
  });
  const r = await cli(['signin', SVC, '--url', http.origin]);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /open https:\/\/microsoft\.com\/devicelogin and enter the code ABCD23EFG/);
  t.match(r.out, /signed in/);
});

t.test('presence-gateway-cli signin: a declined sign-in exits 1 with the reason; an unknown account too', async (t) => {
  const src = fakeSource();
  withSignIn(src, 'declined');
  const http = await serve(src);
  t.teardown(async () => {
    await http.close();
    src.close();
  });
  const r = await cli(['signin', SVC, '--url', http.origin]);
  t.equal(r.code, 1);
  t.match(r.err, /not signed in: the sign-in was declined/);
  const u = await cli(['signin', 'nobody@contoso.test', '--url', http.origin]);
  t.equal(u.code, 1);
  t.match(u.err, /no service account "nobody@contoso\.test"/);
  t.equal((await cli(['signin', '--url', http.origin])).code, 2, 'usage: the account is needed');
});
