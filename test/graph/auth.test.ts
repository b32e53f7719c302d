import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import t from 'tap';
import { createSelfSignedCertificate } from '../../src/graph-simulator/certs.js';
import { GraphAuth, TokenError } from '../../src/graph/auth.js';
import { createHttpTransport } from '../../src/graph/http-transport.js';
import { createLogger, silentLogger } from '../../src/util/logger.js';
import { env } from './helpers.js';

function claims(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

t.test('tokens from the simulator through msal-node, trusting its CA via networkClient', async (t) => {
  const e = await env();
  const transport = createHttpTransport({ caPem: e.sim.caPem });
  t.teardown(async () => {
    transport.close();
    await e.close();
  });
  const tokenRequests = () =>
    Object.entries(e.sim.control.counters().requests)
      .filter(([k]) => k.startsWith('POST /:tenant/oauth2/v2.0/token 200'))
      .reduce((n, [, v]) => n + v, 0);
  const svc = e.sim.serviceAccount;

  await t.test('app token by client secret: cached, one token request', async (t) => {
    const auth = new GraphAuth({ config: e.config(), logger: silentLogger(), networkClient: transport.msalNetworkClient });
    const before = tokenRequests();
    const a = await auth.appToken().getToken();
    const b = await auth.appToken().getToken();
    t.equal(a, b, 'the second call is served from msal cache');
    t.equal(tokenRequests() - before, 1);
    const c = claims(a);
    t.equal(c['appid'], e.sim.demoApp.clientId);
    t.equal(c['tid'], e.sim.tenantId);
    t.ok((c['roles'] as string[]).includes('Presence.ReadWrite.All'));
    t.same(auth.status().find((s) => s.name === 'app')?.ok, true);
  });

  await t.test('a token within 5 minutes of expiry is renewed', async (t) => {
    e.sim.control.setTokenLifetime(200);
    t.teardown(() => e.sim.control.setTokenLifetime(3599));
    const auth = new GraphAuth({ config: e.config(), logger: silentLogger(), networkClient: transport.msalNetworkClient });
    const a = await auth.appToken().getToken();
    const b = await auth.appToken().getToken();
    t.not(a, b, 'a 200 s token is inside the 300 s renewal window: fetched again');
  });

  await t.test('app token by certificate (thumbprint computed from the PEM)', async (t) => {
    const cert = createSelfSignedCertificate('gateway cert');
    const clientId = 'b2c3d4e5-0000-4000-8000-00000000c0de';
    e.sim.control.registerApp({ clientId, certificates: [cert.certPem], applicationPermissions: ['Presence.Read.All'] });
    const certPath = join(e.dir, 'app.pem');
    const keyPath = join(e.dir, 'app.key');
    writeFileSync(certPath, cert.certPem);
    writeFileSync(keyPath, cert.keyPem);
    const config = { ...e.config({ clientId, clientSecret: undefined, certificate: { certPath, keyPath } }) };
    const auth = new GraphAuth({ config, logger: silentLogger(), networkClient: transport.msalNetworkClient });
    const c = claims(await auth.appToken().getToken());
    t.equal(c['appid'], clientId);
    t.equal(c['appidacr'], '2', 'a certificate credential');
  });

  await t.test('service account: delegated token, renewed silently with the refresh token', async (t) => {
    const config = e.config({ serviceAccounts: [{ username: svc.username, password: svc.password }] });
    const auth = new GraphAuth({ config, logger: silentLogger(), networkClient: transport.msalNetworkClient });
    t.same(auth.serviceAccountNames(), [svc.username]);
    const source = auth.serviceAccountToken(svc.username.toUpperCase());
    const a = await source.getToken();
    const c = claims(a);
    t.equal(c['upn'], svc.username);
    t.match(String(c['scp']), /(^| )Presence\.Read\.All( |$)/);
    t.equal(c['roles'], undefined, 'delegated, not an app token');
    t.equal(await source.getToken(), a, 'cached');
    e.sim.control.setTokenLifetime(200);
    t.teardown(() => e.sim.control.setTokenLifetime(3599));
    // the cached 3599 s token is fine; ask msal for one with a short life and renew it
    const short = new GraphAuth({ config, logger: silentLogger(), networkClient: transport.msalNetworkClient }).serviceAccountToken(svc.username);
    const s1 = await short.getToken();
    const s2 = await short.getToken();
    t.not(s1, s2, 'renewed');
    t.equal(claims(s2)['oid'], claims(s1)['oid']);
  });

  await t.test('a wrong password fails with the AADSTS code, never the password', async (t) => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'debug', destination: new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }) });
    const config = e.config({ serviceAccounts: [{ username: svc.username, password: 'Wrong-Pass-123' }] });
    const auth = new GraphAuth({ config, logger, networkClient: transport.msalNetworkClient });
    const err = await auth
      .serviceAccountToken(svc.username)
      .getToken()
      .then(
        () => undefined,
        (x: unknown) => x,
      );
    t.ok(err instanceof TokenError);
    t.equal((err as TokenError).code, 'invalid_grant');
    t.match((err as TokenError).message, /AADSTS50126/);
    t.match(auth.status().find((s) => s.name === svc.username)?.lastError ?? '', /AADSTS50126/);
    t.notOk(lines.join('').includes('Wrong-Pass-123'), 'the password is not logged');
    t.ok(lines.join('').includes('cannot get a token'));
  });

  await t.test('without the CA the token request fails: the trust really comes from the network client', async (t) => {
    const auth = new GraphAuth({ config: e.config(), logger: silentLogger() });
    const err = await auth.appToken().getToken().then(
      () => undefined,
      (x: unknown) => x,
    );
    t.ok(err instanceof TokenError);
  });
});
