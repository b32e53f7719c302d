import t from 'tap';
import { ConfidentialClientApplication, PublicClientApplication } from '@azure/msal-node';
import { certificateThumbprints, createSelfSignedCertificate } from '../../src/graph-simulator/certs.js';
import { newGuid } from '../../src/graph-simulator/ids.js';
import { claims, harness } from './helpers.js';
import { msalNetworkClient } from './tls-clients.js';

t.test('Entra ID token service through @azure/msal-node', async (t) => {
  const h = await harness();
  const { sim } = h;
  const net = msalNetworkClient(sim.caPem);
  t.teardown(async () => {
    net.close();
    await h.close();
  });
  const GRAPH_DEFAULT = ['https://graph.microsoft.com/.default'];
  const cca = (auth: Record<string, unknown>, authority = sim.authorityUrl) =>
    new ConfidentialClientApplication({
      auth: { clientId: sim.demoApp.clientId, authority, knownAuthorities: [sim.host], ...auth },
      system: { networkClient: net },
    });

  await t.test('client secret: app token with roles, tid, appid', async (t) => {
    const r = await cca({ clientSecret: sim.demoApp.clientSecret }).acquireTokenByClientCredential({ scopes: GRAPH_DEFAULT });
    t.ok(r?.accessToken);
    const c = claims(r?.accessToken ?? '');
    t.equal(c['tid'], sim.tenantId);
    t.equal(c['appid'], sim.demoApp.clientId);
    t.equal(c['azp'], sim.demoApp.clientId);
    t.equal(c['appidacr'], '1');
    t.equal(c['aud'], 'https://graph.microsoft.com');
    t.same([...(c['roles'] as string[])].sort(), ['Presence.Read.All', 'Presence.ReadWrite.All', 'User.Read.All']);
    t.equal(c['scp'], undefined);
    t.equal((c['exp'] as number) - (c['iat'] as number), 3599, 'default lifetime 3599 s');
  });

  await t.test('the tenant can also be named by its domain', async (t) => {
    const r = await cca({ clientSecret: sim.demoApp.clientSecret }, `${sim.origin}/${sim.tenantDomain}`).acquireTokenByClientCredential({ scopes: GRAPH_DEFAULT });
    t.equal(claims(r?.accessToken ?? '')['tid'], sim.tenantId);
  });

  await t.test('wrong secret: AADSTS7000215 surfaced by msal', async (t) => {
    const err = await cca({ clientSecret: 'wrong' }).acquireTokenByClientCredential({ scopes: GRAPH_DEFAULT }).then(
      () => undefined,
      (e: unknown) => e as { errorCode?: string; errorMessage?: string; errorNo?: string },
    );
    t.equal(err?.errorCode, 'invalid_client');
    t.match(err?.errorMessage ?? '', /AADSTS7000215: Invalid client secret provided/);
    t.match(err?.errorMessage ?? '', /Correlation ID: [0-9a-f-]{36}/);
  });

  await t.test('unknown client: AADSTS700016', async (t) => {
    const app = new ConfidentialClientApplication({
      auth: { clientId: newGuid(), clientSecret: 'x', authority: sim.authorityUrl, knownAuthorities: [sim.host] },
      system: { networkClient: net },
    });
    const err = await app.acquireTokenByClientCredential({ scopes: GRAPH_DEFAULT }).then(
      () => undefined,
      (e: unknown) => e as { errorCode?: string; errorMessage?: string },
    );
    t.equal(err?.errorCode, 'unauthorized_client');
    t.match(err?.errorMessage ?? '', /AADSTS700016/);
  });

  await t.test('unknown tenant: AADSTS90002 from the metadata and token endpoints', async (t) => {
    const tenant = newGuid();
    const err = await cca({ clientSecret: sim.demoApp.clientSecret }, `${sim.origin}/${tenant}`)
      .acquireTokenByClientCredential({ scopes: GRAPH_DEFAULT })
      .then(
        () => undefined,
        (e: unknown) => e as { errorCode?: string },
      );
    t.ok(err, 'msal fails: no OpenID configuration for the tenant');
    const direct = await fetchJson(net, `${sim.origin}/${tenant}/oauth2/v2.0/token`, `grant_type=client_credentials&client_id=${sim.demoApp.clientId}`);
    t.equal(direct.status, 400);
    t.equal(direct.body['error'], 'invalid_request');
    t.same(direct.body['error_codes'], [90002]);
    t.type(direct.body['trace_id'], 'string');
    t.type(direct.body['timestamp'], 'string');
  });

  await t.test('scope other than <graph>/.default is refused for client credentials', async (t) => {
    const err = await cca({ clientSecret: sim.demoApp.clientSecret })
      .acquireTokenByClientCredential({ scopes: ['https://graph.microsoft.com/User.Read.All'] })
      .then(
        () => undefined,
        (e: unknown) => e as { errorCode?: string; errorMessage?: string },
      );
    t.equal(err?.errorCode, 'invalid_scope');
  });

  await t.test('certificate assertion (x5t#S256, PS256) and legacy x5t (RS256)', async (t) => {
    const cert = createSelfSignedCertificate('gateway app cert');
    const other = createSelfSignedCertificate('unregistered');
    const clientId = newGuid();
    sim.control.registerApp({ clientId, certificates: [cert.certPem], applicationPermissions: ['Presence.Read.All'] });
    const tp = certificateThumbprints(cert.certPem);
    const app256 = new ConfidentialClientApplication({
      auth: { clientId, authority: sim.authorityUrl, knownAuthorities: [sim.host], clientCertificate: { thumbprintSha256: tp.sha256Hex, privateKey: cert.keyPem, x5c: cert.certPem } },
      system: { networkClient: net },
    });
    const r = await app256.acquireTokenByClientCredential({ scopes: GRAPH_DEFAULT });
    const c = claims(r?.accessToken ?? '');
    t.equal(c['appid'], clientId);
    t.equal(c['appidacr'], '2', 'certificate credential');
    t.same(c['roles'], ['Presence.Read.All']);

    const appSha1 = new ConfidentialClientApplication({
      auth: { clientId, authority: sim.authorityUrl, knownAuthorities: [sim.host], clientCertificate: { thumbprint: tp.sha1Hex, privateKey: cert.keyPem } },
      system: { networkClient: net },
    });
    t.ok((await appSha1.acquireTokenByClientCredential({ scopes: GRAPH_DEFAULT }))?.accessToken, 'x5t (SHA-1) accepted');

    // the registered thumbprint but the wrong key: signature fails
    const forged = new ConfidentialClientApplication({
      auth: { clientId, authority: sim.authorityUrl, knownAuthorities: [sim.host], clientCertificate: { thumbprintSha256: tp.sha256Hex, privateKey: other.keyPem } },
      system: { networkClient: net },
    });
    const err = await forged.acquireTokenByClientCredential({ scopes: GRAPH_DEFAULT }).then(
      () => undefined,
      (e: unknown) => e as { errorCode?: string; errorMessage?: string },
    );
    t.equal(err?.errorCode, 'invalid_client');
    t.match(err?.errorMessage ?? '', /AADSTS700027/);

    // a certificate the app never registered
    const unknown = new ConfidentialClientApplication({
      auth: { clientId, authority: sim.authorityUrl, knownAuthorities: [sim.host], clientCertificate: { thumbprintSha256: certificateThumbprints(other.certPem).sha256Hex, privateKey: other.keyPem } },
      system: { networkClient: net },
    });
    const err2 = await unknown.acquireTokenByClientCredential({ scopes: GRAPH_DEFAULT }).then(
      () => undefined,
      (e: unknown) => e as { errorMessage?: string },
    );
    t.match(err2?.errorMessage ?? '', /AADSTS700027.*key was not found/);
  });

  await t.test('username/password: delegated token with scp and oid', async (t) => {
    const app = cca({ clientSecret: sim.demoApp.clientSecret });
    const r = await app.acquireTokenByUsernamePassword({
      scopes: ['https://graph.microsoft.com/Presence.Read.All'],
      username: sim.serviceAccount.username,
      password: sim.serviceAccount.password,
    });
    const c = claims(r?.accessToken ?? '');
    const svc = sim.control.user(sim.serviceAccount.username);
    t.equal(c['oid'], svc.id);
    t.equal(c['upn'], sim.serviceAccount.username);
    t.match(String(c['scp']), /(^| )Presence\.Read\.All( |$)/);
    t.equal(c['roles'], undefined);
    t.equal(r?.account?.username, sim.serviceAccount.username, 'msal built the account from id_token and client_info');
    t.equal(r?.account?.tenantId, sim.tenantId);

    // the refresh token works through acquireTokenSilent with forceRefresh
    const again = await app.acquireTokenSilent({ account: r!.account!, scopes: ['https://graph.microsoft.com/Presence.Read.All'], forceRefresh: true });
    t.not(again?.accessToken, r?.accessToken);
    t.equal(claims(again?.accessToken ?? '')['oid'], svc.id);
  });

  await t.test('wrong password: AADSTS50126; MFA account: AADSTS50076; no consent: AADSTS65001', async (t) => {
    const app = cca({ clientSecret: sim.demoApp.clientSecret });
    const fail = (username: string, password: string, scope = 'https://graph.microsoft.com/Presence.Read.All') =>
      app.acquireTokenByUsernamePassword({ scopes: [scope], username, password }).then(
        () => undefined,
        (e: unknown) => e as { errorCode?: string; errorMessage?: string; subError?: string; name?: string },
      );
    const wrong = await fail(sim.serviceAccount.username, 'nope');
    t.equal(wrong?.errorCode, 'invalid_grant');
    t.match(wrong?.errorMessage ?? '', /AADSTS50126/);

    sim.control.addServiceAccount({ username: 'mfa-user@contoso.example', password: 'Secret-1', mfa: true });
    const mfa = await fail('mfa-user@contoso.example', 'Secret-1');
    t.match(mfa?.errorMessage ?? '', /AADSTS50076/);
    t.equal(mfa?.subError, 'basic_action');
    t.equal(mfa?.name, 'InteractionRequiredAuthError', 'msal treats MFA as interaction required');

    const consent = await fail(sim.serviceAccount.username, sim.serviceAccount.password, 'https://graph.microsoft.com/Mail.Read');
    t.match(consent?.errorMessage ?? '', /AADSTS65001/);

    const unknownUser = await fail('nobody@contoso.example', 'x');
    t.match(unknownUser?.errorMessage ?? '', /AADSTS50034/);
  });

  await t.test('public client password grant needs allowPublicClient', async (t) => {
    const pca = new PublicClientApplication({
      auth: { clientId: sim.demoApp.clientId, authority: sim.authorityUrl, knownAuthorities: [sim.host] },
      system: { networkClient: net },
    });
    const err = await pca
      .acquireTokenByUsernamePassword({ scopes: ['https://graph.microsoft.com/Presence.Read.All'], username: sim.serviceAccount.username, password: sim.serviceAccount.password })
      .then(
        () => undefined,
        (e: unknown) => e as { errorMessage?: string },
      );
    t.match(err?.errorMessage ?? '', /AADSTS7000218/);
  });

  await t.test('OpenID configuration and keys', async (t) => {
    const cfg = await getJson(net, `${sim.authorityUrl}/v2.0/.well-known/openid-configuration`);
    t.equal(cfg['issuer'], `${sim.authorityUrl}/v2.0`);
    t.equal(cfg['token_endpoint'], `${sim.authorityUrl}/oauth2/v2.0/token`);
    const keys = await getJson(net, String(cfg['jwks_uri']));
    const list = keys['keys'] as Array<Record<string, unknown>>;
    t.equal(list.length, 1);
    t.equal(list[0]?.['kty'], 'RSA');
  });
});

async function fetchJson(net: ReturnType<typeof msalNetworkClient>, url: string, body: string) {
  const r = await net.sendPostRequestAsync<Record<string, unknown>>(url, { body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  return { status: r.status, body: r.body };
}

async function getJson(net: ReturnType<typeof msalNetworkClient>, url: string): Promise<Record<string, unknown>> {
  return (await net.sendGetRequestAsync<Record<string, unknown>>(url)).body;
}
