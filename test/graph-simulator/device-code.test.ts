import t from 'tap';
import { ConfidentialClientApplication, PublicClientApplication } from '@azure/msal-node';
import { claims, harness } from './helpers.js';
import { msalNetworkClient } from './tls-clients.js';

const PUBLIC_APP = 'c0ffee00-0000-4000-8000-00000000d1c0';
const SCOPES = ['https://graph.microsoft.com/Presence.Read.All', 'offline_access'];

interface AadBody {
  error?: string;
  error_description?: string;
  error_codes?: number[];
  device_code?: string;
  user_code?: string;
  verification_uri?: string;
  expires_in?: number;
  interval?: number;
  message?: string;
  access_token?: string;
  refresh_token?: string;
}

t.test('device authorization grant and refresh tokens, as Entra ID runs them', async (t) => {
  const h = await harness({ deviceCode: { intervalSec: 1 } });
  const { sim } = h;
  const net = msalNetworkClient(sim.caPem);
  t.teardown(async () => {
    net.close();
    await h.close();
  });
  sim.control.registerApp({ clientId: PUBLIC_APP, displayName: 'public flows on', secrets: ['s3cret'], delegatedPermissions: ['Presence.Read.All'], allowPublicClient: true });
  const post = async (path: string, form: Record<string, string>): Promise<{ status: number; body: AadBody }> => {
    const r = await net.sendPostRequestAsync<AadBody>(`${sim.origin}/${sim.tenantId}/oauth2/v2.0/${path}`, {
      body: new URLSearchParams(form).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    return { status: r.status, body: r.body };
  };
  const pca = (clientId = PUBLIC_APP) =>
    new PublicClientApplication({ auth: { clientId, authority: sim.authorityUrl, knownAuthorities: [sim.host] }, system: { networkClient: net } });
  const svc = sim.serviceAccount.username;

  await t.test('the device code answer has every documented field', async (t) => {
    const r = await post('devicecode', { client_id: PUBLIC_APP, scope: SCOPES.join(' ') });
    t.equal(r.status, 200);
    t.match(r.body.user_code, /^[A-Z2-9]{9}$/);
    t.ok((r.body.device_code ?? '').length > 40);
    t.equal(r.body.verification_uri, `${sim.origin}/devicelogin`);
    t.equal(r.body.expires_in, 900, 'Entra: 15 minutes');
    t.equal(r.body.interval, 1, 'as configured (Entra: 5)');
    t.match(r.body.message, new RegExp(`enter the code ${r.body.user_code}`));
    t.same(sim.control.deviceCodes().find((c) => c.userCode === r.body.user_code)?.state, 'pending');
  });

  await t.test('pending, then slow_down when polled faster than the interval, then the tokens once approved', async (t) => {
    const dc = await post('devicecode', { client_id: PUBLIC_APP, scope: SCOPES.join(' ') });
    const poll = () => post('token', { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', client_id: PUBLIC_APP, device_code: dc.body.device_code ?? '' });
    const first = await poll();
    t.equal(first.status, 400);
    t.equal(first.body.error, 'authorization_pending');
    t.same(first.body.error_codes, [70016]);
    t.match(first.body.error_description, /^AADSTS70016: /);
    const fast = await poll();
    t.equal(fast.body.error, 'slow_down', 'polled again at once');
    await new Promise((r) => setTimeout(r, 6100));
    const onTime = await poll();
    t.equal(onTime.body.error, 'authorization_pending', 'after the interval grown by 5 s');
    sim.control.approveDeviceCode(dc.body.user_code ?? '', svc);
    const done = await poll();
    t.equal(done.status, 200);
    t.ok(done.body.refresh_token, 'offline_access: a refresh token');
    const c = claims(done.body.access_token ?? '');
    t.equal(c['upn'], svc);
    t.same(c['amr'], ['pwd', 'mfa'], 'an interactive sign-in satisfies MFA');
    const again = await poll();
    t.equal(again.body.error, 'bad_verification_code', 'a device code is redeemed once');
  });

  await t.test('msal-node acquireTokenByDeviceCode completes when the user approves', async (t) => {
    let seen: { userCode: string } | undefined;
    const app = pca();
    const pending = app.acquireTokenByDeviceCode({
      scopes: SCOPES,
      deviceCodeCallback: (r) => {
        seen = r;
        setTimeout(() => sim.control.approveDeviceCode(r.userCode, svc), 300);
      },
    });
    const r = await pending;
    t.ok(seen?.userCode);
    t.equal(r?.account?.username, svc);
    const cache = JSON.parse(app.getTokenCache().serialize()) as { RefreshToken: Record<string, unknown> };
    t.equal(Object.keys(cache.RefreshToken).length, 1, 'msal keeps the refresh token');
  });

  await t.test('the control API approves and denies as the user would', async (t) => {
    const control = async (path: string, body: unknown) => {
      const text = JSON.stringify(body);
      const r = await net.sendPostRequestAsync<Record<string, unknown>>(`${sim.origin}/_sim${path}`, {
        body: text,
        headers: { 'content-type': 'application/json' },
      });
      return r;
    };
    const a = await post('devicecode', { client_id: PUBLIC_APP, scope: SCOPES.join(' ') });
    const listed = await net.sendGetRequestAsync<{ value: Array<{ userCode: string; state: string }> }>(`${sim.origin}/_sim/device-codes`);
    t.ok(listed.body.value.some((c) => c.userCode === a.body.user_code && c.state === 'pending'));
    const ok = await control(`/device-codes/${a.body.user_code}/approve`, { user: svc });
    t.equal(ok.status, 200);
    t.equal(ok.body['userPrincipalName'], svc);
    t.equal((await control(`/device-codes/${a.body.user_code}/approve`, { user: svc })).status, 409, 'a code is approved once');
    t.equal((await control('/device-codes/NOSUCHCODE/deny', {})).status, 404);
    const b = await post('devicecode', { client_id: PUBLIC_APP, scope: SCOPES.join(' ') });
    t.equal((await control(`/device-codes/${b.body.user_code}/deny`, {})).status, 200);
    const refused = await post('token', { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', client_id: PUBLIC_APP, device_code: b.body.device_code ?? '' });
    t.equal(refused.body.error, 'authorization_declined');
    t.same(refused.body.error_codes, [65004]);
    t.equal((await control(`/users/${svc}/revoke-sessions`, {})).status, 200);
  });

  await t.test('declined: authorization_declined (AADSTS65004), and msal stops polling', async (t) => {
    const app = pca();
    const err = await app
      .acquireTokenByDeviceCode({ scopes: SCOPES, deviceCodeCallback: (r) => setTimeout(() => sim.control.denyDeviceCode(r.userCode), 200) })
      .then(
        () => undefined,
        (e: unknown) => e as { errorCode?: string; errorMessage?: string },
      );
    t.match(err?.errorMessage ?? '', /authorization_declined/);
  });

  await t.test('a code past expires_in: expired_token (AADSTS70019)', async (t) => {
    const short = await harness({ deviceCode: { intervalSec: 1, lifetimeSec: 1 } });
    t.teardown(() => short.close());
    short.sim.control.registerApp({ clientId: PUBLIC_APP, delegatedPermissions: ['Presence.Read.All'], allowPublicClient: true });
    const n2 = msalNetworkClient(short.sim.caPem);
    t.teardown(() => n2.close());
    const url = (p: string) => `${short.sim.origin}/${short.sim.tenantId}/oauth2/v2.0/${p}`;
    const form = (f: Record<string, string>) => ({ body: new URLSearchParams(f).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    const dc = (await n2.sendPostRequestAsync<AadBody>(url('devicecode'), form({ client_id: PUBLIC_APP, scope: SCOPES.join(' ') }))).body;
    await new Promise((r) => setTimeout(r, 1100));
    const r = await n2.sendPostRequestAsync<AadBody>(url('token'), form({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', client_id: PUBLIC_APP, device_code: dc.device_code ?? '' }));
    t.equal(r.body.error, 'expired_token');
    t.same(r.body.error_codes, [70019]);
    t.throws(() => short.sim.control.approveDeviceCode(dc.user_code ?? '', svc), /expired/);
  });

  await t.test('an app without public client flows needs a credential for the device code grant (AADSTS7000218)', async (t) => {
    const dc = await post('devicecode', { client_id: sim.demoApp.clientId, scope: SCOPES.join(' ') });
    const r = await post('token', { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', client_id: sim.demoApp.clientId, device_code: dc.body.device_code ?? '' });
    t.equal(r.body.error, 'invalid_client');
    t.same(r.body.error_codes, [7000218]);
  });

  await t.test('refresh tokens: replaced on every use, the old one not revoked; an admin revocation refuses them all (AADSTS50173)', async (t) => {
    const dc = await post('devicecode', { client_id: PUBLIC_APP, scope: SCOPES.join(' ') });
    sim.control.approveDeviceCode(dc.body.user_code ?? '', svc);
    const tokens = await post('token', { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', client_id: PUBLIC_APP, device_code: dc.body.device_code ?? '' });
    const rt1 = tokens.body.refresh_token ?? '';
    const refresh = (rt: string) => post('token', { grant_type: 'refresh_token', client_id: PUBLIC_APP, refresh_token: rt, scope: SCOPES.join(' ') });
    const r2 = await refresh(rt1);
    t.equal(r2.status, 200);
    const rt2 = r2.body.refresh_token ?? '';
    t.ok(rt2 !== '' && rt2 !== rt1, 'a new refresh token');
    t.equal((await refresh(rt1)).status, 200, 'the old one still works (Entra does not revoke it on use)');
    const revoked = sim.control.revokeSessions(svc);
    t.ok(revoked.refreshTokens >= 2);
    for (const rt of [rt1, rt2]) {
      const r = await refresh(rt);
      t.equal(r.body.error, 'invalid_grant');
      t.same(r.body.error_codes, [50173]);
    }
    // a new sign-in after the revocation works again
    const dc2 = await post('devicecode', { client_id: PUBLIC_APP, scope: SCOPES.join(' ') });
    sim.control.approveDeviceCode(dc2.body.user_code ?? '', svc);
    const fresh = await post('token', { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', client_id: PUBLIC_APP, device_code: dc2.body.device_code ?? '' });
    t.equal((await refresh(fresh.body.refresh_token ?? '')).status, 200);
  });

  await t.test('Smart Lockout: 10 wrong passwords lock the account (AADSTS50053), even for the right one', async (t) => {
    sim.control.addServiceAccount({ username: 'lockme@contoso.example', password: 'Right-Pass-1' });
    const ropc = (password: string) =>
      post('token', { grant_type: 'password', client_id: PUBLIC_APP, client_secret: 's3cret', username: 'lockme@contoso.example', password, scope: SCOPES.join(' ') });
    for (let i = 0; i < 9; i++) t.same((await ropc(`wrong-${i}`)).body.error_codes, [50126]);
    t.equal((await ropc('Right-Pass-1')).status, 200, 'nine failures: not yet locked; a success resets the count');
    for (let i = 0; i < 10; i++) await ropc(`wrong-${i}`);
    const locked = await ropc('Right-Pass-1');
    t.equal(locked.body.error, 'invalid_grant');
    t.same(locked.body.error_codes, [50053]);
  });

  await t.test('per-user MFA: the password grant gets AADSTS50076, a device code sign-in keeps refreshing', async (t) => {
    const cca = new ConfidentialClientApplication({
      auth: { clientId: PUBLIC_APP, clientSecret: 's3cret', authority: sim.authorityUrl, knownAuthorities: [sim.host] },
      system: { networkClient: net },
    });
    const ropc = await cca.acquireTokenByUsernamePassword({ scopes: SCOPES, username: svc, password: sim.serviceAccount.password });
    const dc = await post('devicecode', { client_id: PUBLIC_APP, scope: SCOPES.join(' ') });
    sim.control.approveDeviceCode(dc.body.user_code ?? '', svc);
    const viaCode = await post('token', { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', client_id: PUBLIC_APP, device_code: dc.body.device_code ?? '' });

    t.same(sim.control.updateServiceAccount(svc, { mfa: true }), { username: svc, mfa: true });
    t.teardown(() => sim.control.updateServiceAccount(svc, { mfa: false }));
    const err = await cca.acquireTokenByUsernamePassword({ scopes: SCOPES, username: svc, password: sim.serviceAccount.password }).then(
      () => undefined,
      (e: unknown) => e as { errorMessage?: string },
    );
    t.match(err?.errorMessage ?? '', /AADSTS50076/);
    const pwdRefresh = await cca.acquireTokenSilent({ account: ropc!.account!, scopes: SCOPES, forceRefresh: true }).then(
      () => undefined,
      (e: unknown) => e as { errorMessage?: string },
    );
    t.match(pwdRefresh?.errorMessage ?? '', /AADSTS50076/, 'a password grant carries no MFA');
    const codeRefresh = await post('token', { grant_type: 'refresh_token', client_id: PUBLIC_APP, refresh_token: viaCode.body.refresh_token ?? '', scope: SCOPES.join(' ') });
    t.equal(codeRefresh.status, 200, 'the MFA-backed grant still refreshes');
  });
});
