import { Writable } from 'node:stream';
import t from 'tap';
import { GraphAuth, MemoryPasswordRefusalStore } from '../../src/graph/auth.js';
import { GraphConfigError, parseGraphConfig, resolveTokenCacheKey } from '../../src/graph/config.js';
import { createHttpTransport } from '../../src/graph/http-transport.js';
import { createGraph, type GraphRuntime } from '../../src/graph/index.js';
import { MemoryTokenCacheStore, openTokenCache, type SealedTokenCache, type TokenCacheStore } from '../../src/graph/token-cache.js';
import { createLogger, silentLogger } from '../../src/util/logger.js';
import { core, env, waitFor, webhookServer } from './helpers.js';

const KEY = Buffer.alloc(32, 7).toString('base64');
const OTHER_KEY = Buffer.alloc(32, 9).toString('base64');
const CLIENT_STATE = 'gateway-client-state-for-tests-0002';

function claims(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** A store that "survives" (the same object handed to the next GraphAuth stands for the store file). */
class KeptStore implements TokenCacheStore {
  readonly persistent = true;
  record: SealedTokenCache | undefined;
  saves = 0;
  load() {
    return this.record === undefined ? undefined : { ...this.record };
  }
  save(r: SealedTokenCache) {
    this.saves++;
    this.record = { ...r };
  }
}

const failure = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as { code?: string; message?: string },
  );

t.test('service accounts: device code sign-in, sealed token cache, refusals not retried', async (t) => {
  const e = await env({ deviceCode: { intervalSec: 1 } });
  const transport = createHttpTransport({ caPem: e.sim.caPem });
  t.teardown(async () => {
    transport.close();
    await e.close();
  });
  // the demo app with "Allow public client flows: Yes", as the README asks of a real registration
  e.sim.control.registerApp({
    clientId: e.sim.demoApp.clientId,
    secrets: [e.sim.demoApp.clientSecret],
    applicationPermissions: ['Presence.ReadWrite.All', 'Presence.Read.All', 'User.Read.All'],
    delegatedPermissions: ['Presence.Read.All', 'User.Read'],
    allowPublicClient: true,
  });
  const svc = e.sim.serviceAccount.username;
  const tokenCalls = () =>
    Object.entries(e.sim.control.counters().requests)
      .filter(([k]) => k.startsWith('POST /:tenant/oauth2/v2.0/token'))
      .reduce((n, [, v]) => n + v, 0);
  const config = e.config({ serviceAccounts: [{ username: svc }], tokenCacheKey: KEY });
  const newAuth = (store: TokenCacheStore, extra: Partial<Parameters<typeof e.config>[0]> = {}, logger = silentLogger()) =>
    new GraphAuth({ config: { ...config, ...e.config({ serviceAccounts: [{ username: svc }], tokenCacheKey: KEY, ...extra }) }, logger, networkClient: transport.msalNetworkClient, tokenCache: store });
  const approveWhenAsked = async (auth: GraphAuth, as = svc) => {
    const st = await auth.startSignIn(svc);
    t.equal(st.state, 'signing-in');
    t.ok(st.prompt?.userCode, 'a code to enter');
    e.sim.control.approveDeviceCode(st.prompt?.userCode ?? '', as);
    await waitFor(() => auth.accountStatus()[0]?.state !== 'signing-in', 15_000);
    return auth.accountStatus()[0];
  };
  const store = new KeptStore();

  await t.test('not signed in: not usable, no token request, a reason naming the fix', async (t) => {
    const auth = newAuth(new KeptStore());
    await auth.start();
    const before = tokenCalls();
    const st = auth.accountStatus()[0];
    t.equal(st?.state, 'signed-out');
    t.equal(st?.method, 'deviceCode');
    t.equal(auth.availability(svc).usable(), false);
    t.match(st?.reason ?? '', /presence-gateway-cli signin svc-presence@/);
    const err = await failure(auth.serviceAccountToken(svc).getToken());
    t.equal(err?.code, 'sign_in_required');
    t.equal(tokenCalls(), before, 'Entra is not asked');
  });

  await t.test('signed in once with a device code; the cache is stored sealed', async (t) => {
    const auth = newAuth(store);
    await auth.start();
    let changes = 0;
    auth.availability(svc).onChange(() => changes++);
    const st = await approveWhenAsked(auth);
    t.equal(st?.state, 'signed-in');
    t.equal(st?.usable, true);
    t.ok(changes > 0, 'told of the change');
    const token = await auth.serviceAccountToken(svc).getToken();
    t.equal(claims(token)['upn'], svc);
    t.match(String(claims(token)['scp']), /Presence\.Read\.All/);
    t.ok(store.record, 'the cache went to the store');
    const raw = Buffer.from(store.record?.data ?? '', 'base64').toString('latin1');
    t.notOk(raw.includes('RefreshToken') || raw.includes(svc), 'ciphertext only');
    const opened = openTokenCache(store.record!, Buffer.from(KEY, 'base64'));
    t.ok(opened.ok && opened.plaintext.includes('RefreshToken'), 'the key opens it: msal refresh token inside');
    t.same(openTokenCache(store.record!, Buffer.from(OTHER_KEY, 'base64')), { ok: false, why: 'other-key' });
    const tampered = { ...store.record!, data: Buffer.from('x' + (store.record?.data ?? '')).toString('base64') };
    t.same(openTokenCache(tampered, Buffer.from(KEY, 'base64')), { ok: false, why: 'damaged' }, 'GCM: a changed record does not open');
  });

  await t.test('after a restart the stored cache signs the account in; another key does not', async (t) => {
    const again = newAuth(store);
    await again.start();
    t.equal(again.accountStatus()[0]?.state, 'signed-in');
    t.equal(claims(await again.serviceAccountToken(svc).getToken())['upn'], svc);
    const lines: string[] = [];
    const logger = createLogger({ level: 'debug', destination: new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }) });
    const other = newAuth(store, { tokenCacheKey: OTHER_KEY }, logger);
    await other.start();
    t.equal(other.accountStatus()[0]?.state, 'signed-out');
    t.match(lines.join(''), /sealed with another key/);
    t.notOk(lines.join('').includes(KEY) || lines.join('').includes(OTHER_KEY), 'no key in the log');
  });

  await t.test('refresh token revoked: failed with the reason, not usable, not retried; a new sign-in clears it', async (t) => {
    e.sim.control.setTokenLifetime(200);
    t.teardown(() => e.sim.control.setTokenLifetime(3599));
    const auth = newAuth(new KeptStore());
    await auth.start();
    await approveWhenAsked(auth);
    const source = auth.serviceAccountToken(svc);
    await source.getToken();
    e.sim.control.revokeSessions(svc);
    let changes = 0;
    auth.availability(svc).onChange(() => changes++);
    const err = await failure(source.getToken());
    t.equal(err?.code, 'invalid_grant');
    const st = auth.accountStatus()[0];
    t.equal(st?.state, 'failed');
    t.equal(st?.usable, false);
    t.match(st?.reason ?? '', /AADSTS50173/);
    t.equal(changes, 1);
    const calls = tokenCalls();
    for (let i = 0; i < 5; i++) t.match((await failure(source.getToken()))?.message ?? '', /AADSTS50173/);
    t.equal(tokenCalls(), calls, 'the refused grant is not sent again');
    const fresh = await approveWhenAsked(auth);
    t.equal(fresh?.state, 'signed-in', 'only a new sign-in clears it');
    t.ok(await source.getToken());
  });

  await t.test('declined at the verification page: failed, with why', async (t) => {
    const auth = newAuth(new KeptStore());
    await auth.start();
    const st = await auth.startSignIn(svc);
    t.same(await auth.startSignIn(svc.toUpperCase()), { ...auth.accountStatus()[0] }, 'asking again returns the sign-in under way');
    e.sim.control.denyDeviceCode(st.prompt?.userCode ?? '');
    await waitFor(() => auth.accountStatus()[0]?.state !== 'signing-in', 15_000);
    t.equal(auth.accountStatus()[0]?.state, 'failed');
    t.match(auth.accountStatus()[0]?.reason ?? '', /declined/);
  });

  await t.test('signed in as somebody else: refused', async (t) => {
    const auth = newAuth(new KeptStore());
    await auth.start();
    const st = await approveWhenAsked(auth, 'anna@contoso.example');
    t.equal(st?.state, 'failed');
    t.match(st?.reason ?? '', /signed in as anna@contoso\.example/);
  });

  await t.test('an app without public client flows: the reason says what to enable', async (t) => {
    const clientId = 'dddd0000-0000-4000-8000-00000000000d';
    e.sim.control.registerApp({ clientId, secrets: ['x'], delegatedPermissions: ['Presence.Read.All'] });
    const auth = new GraphAuth({
      config: e.config({ clientId, clientSecret: 'x', serviceAccounts: [{ username: svc }], tokenCacheKey: KEY }),
      logger: silentLogger(),
      networkClient: transport.msalNetworkClient,
      tokenCache: new MemoryTokenCacheStore(),
    });
    await auth.start();
    const st = await approveWhenAsked(auth);
    t.equal(st?.state, 'failed');
    t.match(st?.reason ?? '', /Allow public client flows/);
  });

  await t.test('password accounts: a refused password is permanent (no Smart Lockout)', async (t) => {
    for (const [what, password, code, setup] of [
      ['wrong password', 'Wrong-Pass-1', 'AADSTS50126', () => undefined],
      ['MFA now required', e.sim.serviceAccount.password, 'AADSTS50076', () => e.sim.control.updateServiceAccount(svc, { mfa: true })],
    ] as const) {
      setup();
      const auth = new GraphAuth({ config: e.config({ serviceAccounts: [{ username: svc, password }] }), logger: silentLogger(), networkClient: transport.msalNetworkClient });
      t.equal(auth.accountStatus()[0]?.method, 'password');
      t.equal(auth.availability(svc).usable(), true, `${what}: a password account is tried once`);
      const source = auth.serviceAccountToken(svc);
      const before = tokenCalls();
      t.match((await failure(source.getToken()))?.message ?? '', new RegExp(code));
      t.equal(tokenCalls(), before + 1);
      for (let i = 0; i < 3; i++) await failure(source.getToken());
      t.equal(tokenCalls(), before + 1, `${what}: never sent again`);
      t.equal(auth.accountStatus()[0]?.state, 'failed');
      t.equal(auth.availability(svc).usable(), false);
      t.match(auth.accountStatus()[0]?.reason ?? '', /not tried again until graph\.serviceAccounts changes/);
      await t.rejects(auth.startSignIn(svc), /signIn: password/);
    }
    e.sim.control.updateServiceAccount(svc, { mfa: false });

    // disabled (AADSTS50057) and locked by Smart Lockout (AADSTS50053): permanent too
    e.sim.control.addServiceAccount({ username: 'disabled@contoso.example', password: 'Pass-1' });
    e.sim.control.updateUser('disabled@contoso.example', { accountEnabled: false });
    e.sim.control.addServiceAccount({ username: 'locked@contoso.example', password: 'Pass-2' });
    for (let i = 0; i < 10; i++) {
      await transport.msalNetworkClient.sendPostRequestAsync(`${e.sim.authorityUrl}/oauth2/v2.0/token`, {
        body: new URLSearchParams({ grant_type: 'password', client_id: e.sim.demoApp.clientId, client_secret: e.sim.demoApp.clientSecret, username: 'locked@contoso.example', password: 'guess-' + i, scope: 'Presence.Read.All' }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
    }
    for (const [username, password, code] of [
      ['disabled@contoso.example', 'Pass-1', 'AADSTS50057'],
      ['locked@contoso.example', 'Pass-2', 'AADSTS50053'],
    ] as const) {
      const auth = new GraphAuth({ config: e.config({ serviceAccounts: [{ username, password }] }), logger: silentLogger(), networkClient: transport.msalNetworkClient });
      const source = auth.serviceAccountToken(username);
      const before = tokenCalls();
      t.match((await failure(source.getToken()))?.message ?? '', new RegExp(code), `${username}: ${code}`);
      await failure(source.getToken());
      t.equal(tokenCalls(), before + 1, `${code}: not sent again`);
      t.equal(auth.accountStatus()[0]?.state, 'failed');
    }
  });

  await t.test('a refused password stays refused across a restart while the config is unchanged', async (t) => {
    const refusals = new MemoryPasswordRefusalStore();
    const make = (password: string) =>
      new GraphAuth({ config: e.config({ serviceAccounts: [{ username: svc, password }] }), logger: silentLogger(), networkClient: transport.msalNetworkClient, refusals });
    const first = make('Wrong-Pass-2');
    await failure(first.serviceAccountToken(svc).getToken());
    const kept = refusals.get(svc);
    t.ok(kept, 'remembered');
    t.notOk(JSON.stringify(kept).includes('Wrong-Pass-2'), 'as a salted hash, not the password');
    const before = tokenCalls();
    const restarted = make('Wrong-Pass-2');
    t.equal(restarted.accountStatus()[0]?.state, 'failed', 'failed from the start');
    t.match(restarted.accountStatus()[0]?.reason ?? '', /unchanged: not tried again/);
    await failure(restarted.serviceAccountToken(svc).getToken());
    t.equal(tokenCalls(), before, 'no attempt after the restart');
    const fixed = make(e.sim.serviceAccount.password);
    t.equal(fixed.accountStatus()[0]?.state, 'signed-out', 'a changed password is tried');
    t.ok(await fixed.serviceAccountToken(svc).getToken());
    t.equal(refusals.get(svc), undefined);
  });

  await t.test('subscriptions: the account is used once signed in and left when its grant is revoked (people polled)', async (t) => {
    const hook = await webhookServer();
    const runtimes: GraphRuntime[] = [];
    t.teardown(async () => {
      for (const r of runtimes) await r.stop();
      await hook.close();
    });
    const c = core();
    const graph = createGraph({
      config: e.config({ serviceAccounts: [{ username: svc }], tokenCacheKey: KEY, webhook: { publicUrl: hook.url, clientState: CLIENT_STATE }, writer: { enabled: false } }),
      directory: c.directory,
      store: c.store,
      logger: silentLogger(),
      tokenCache: new KeptStore(),
    });
    runtimes.push(graph);
    hook.handlers = graph.webhook;
    await graph.start();
    const ours = () => e.sim.control.subscriptions().filter((s) => s['notificationUrl'] === hook.url);
    t.equal(ours().length, 0, 'not signed in: no subscription');
    t.equal(graph.status().reader.polled, 5, 'everyone polled');
    // short-lived access tokens: every use of the account goes through its refresh token
    e.sim.control.setTokenLifetime(200);
    t.teardown(() => e.sim.control.setTokenLifetime(3599));
    const st = await graph.signIn(svc);
    e.sim.control.approveDeviceCode(st.prompt?.userCode ?? '', svc);
    await waitFor(() => ours().length === 1, 15_000).catch((x: unknown) => {
      t.comment(JSON.stringify(graph.status().accounts), JSON.stringify(graph.status().reader.subscriptions), JSON.stringify(graph.status().tokens));
      throw x;
    });
    await graph.idle();
    t.equal(graph.status().reader.polled, 0, 'covered by the subscription');
    t.equal(graph.status().accounts?.[0]?.state, 'signed-in');

    e.sim.control.revokeSessions(svc);
    // a reauthorization makes the gateway renew with a fresh token: the refresh is refused
    const sub = ours()[0] as { id: string };
    e.sim.control.fireLifecycle(sub.id, 'reauthorizationRequired');
    await waitFor(() => graph.status().accounts?.[0]?.state === 'failed', 15_000);
    await graph.idle();
    t.match(graph.status().accounts?.[0]?.reason ?? '', /AADSTS50173/);
    t.equal(graph.status().reader.polled, 5, "the account's people are polled again");
    const calls = tokenCalls();
    e.sim.control.fireLifecycle(sub.id, 'reauthorizationRequired');
    await new Promise((r) => setTimeout(r, 300));
    await graph.idle();
    t.equal(tokenCalls(), calls, 'no new token request for the failed account');
  });
});

t.test('config: sign-in methods and the token cache key', async (t) => {
  const base = { tenantId: 'contoso.onmicrosoft.com', clientId: '3a7c9e11-2b4d-4f60-8a1b-5c6d7e8f9a0b', clientSecret: 's' };
  const c1 = parseGraphConfig({ ...base, serviceAccounts: [{ username: 'a@contoso.com', password: 'p' }] });
  t.same(c1.serviceAccounts, [{ username: 'a@contoso.com', signIn: 'password', password: 'p' }], 'an old config with a password: ROPC');
  const c2 = parseGraphConfig({ ...base, serviceAccounts: [{ username: 'a@contoso.com' }] });
  t.same(c2.serviceAccounts, [{ username: 'a@contoso.com', signIn: 'deviceCode' }], 'no password: device code');
  t.throws(() => parseGraphConfig({ ...base, serviceAccounts: [{ username: 'a@contoso.com', signIn: 'password' }] }), /graph\.serviceAccounts\[0\]\.password: signIn: password needs the password/);
  t.throws(() => parseGraphConfig({ ...base, serviceAccounts: [{ username: 'a@contoso.com', signIn: 'deviceCode', password: 'p' }] }), /graph\.serviceAccounts\[0\]\.password: a device-code account keeps no password/);
  t.throws(() => parseGraphConfig({ ...base, serviceAccounts: [{ username: 'a@contoso.com', signIn: 'magic' }] }), /graph\.serviceAccounts\[0\]\.signIn: expected deviceCode/);
  t.throws(() => parseGraphConfig({ ...base, tokenCacheKey: 'short' }), /graph\.tokenCacheKey: expected a 32-byte key.*openssl rand -base64 32/);

  t.equal(resolveTokenCacheKey(c1, {}), undefined, 'no device-code account: no key needed');
  const err = (() => {
    try {
      resolveTokenCacheKey(c2, {});
    } catch (x) {
      return x;
    }
    return undefined;
  })();
  t.ok(err instanceof GraphConfigError);
  t.match((err as GraphConfigError).problems[0], /^graph\.tokenCacheKey: missing: graph\.serviceAccounts\[0\] \(a@contoso\.com\) signs in by device code.*PRESENCE_GATEWAY_TOKEN_CACHE_KEY/);
  t.same(resolveTokenCacheKey(c2, { PRESENCE_GATEWAY_TOKEN_CACHE_KEY: Buffer.alloc(32, 1).toString('hex') }), Buffer.alloc(32, 1), 'hex from the environment');
  t.throws(() => resolveTokenCacheKey(c2, { PRESENCE_GATEWAY_TOKEN_CACHE_KEY: 'nope' }), /environment variable PRESENCE_GATEWAY_TOKEN_CACHE_KEY is not a 32-byte key/);
  const c3 = parseGraphConfig({ ...base, serviceAccounts: [{ username: 'a@contoso.com' }], tokenCacheKey: KEY });
  t.same(resolveTokenCacheKey(c3, { PRESENCE_GATEWAY_TOKEN_CACHE_KEY: OTHER_KEY }), Buffer.from(KEY, 'base64'), 'the config wins over the environment');
});
