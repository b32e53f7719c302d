import { constants, createDecipheriv, createHmac, privateDecrypt } from 'node:crypto';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import t from 'tap';
import { ResponseType } from '@microsoft/microsoft-graph-client';
import { ManualClock } from '../../src/graph-simulator/clock.js';
import { certificateDer, createSelfSignedCertificate } from '../../src/graph-simulator/certs.js';
import { newGuid } from '../../src/graph-simulator/ids.js';
import { createHttpTransport } from '../../src/graph/http-transport.js';
import { graphFailure, harness, webhook } from './helpers.js';

const MIN = 60_000;

t.test('presence change notifications', async (t) => {
  const clock = new ManualClock();
  const h = await harness({ clock, tokenLifetimeSec: 24 * 3600, notifier: { validationTimeoutMs: 1500 } });
  const hook = await webhook();
  t.teardown(async () => {
    await h.close();
    await hook.close();
  });
  const { control } = h.sim;
  const userToken = await h.userToken();
  const graph = h.graph(async () => userToken);
  const anna = control.user('anna');
  const ben = control.user('ben');
  const expiry = (minutes: number) => new Date(clock.now() + minutes * MIN).toISOString();
  const subscribe = (body: Record<string, unknown> = {}, client = graph) =>
    client.api('/subscriptions').post({
      changeType: 'updated',
      notificationUrl: hook.url,
      lifecycleNotificationUrl: `${hook.url}?lifecycle=1`,
      resource: `/communications/presences?$filter=id in ('${anna.id}','${ben.id}')`,
      expirationDateTime: expiry(55),
      clientState: 'gateway-secret-state',
      ...body,
    }) as Promise<{ id: string; expirationDateTime: string; clientState: string; resource: string }>;

  await t.test('refused: app-only token, too long, clientState > 128, bad handshake, > 650 ids', async (t) => {
    const appGraph = h.graph(() => h.appToken());
    const appOnly = await graphFailure(subscribe({}, appGraph));
    t.equal(appOnly.statusCode, 403, 'presence subscriptions need a delegated token');
    t.equal(appOnly.code, 'ExtensionError');

    const tooLong = await graphFailure(subscribe({ expirationDateTime: expiry(61) }));
    t.equal(tooLong.statusCode, 400);
    t.match(tooLong.message, /60 minutes/);

    const state = await graphFailure(subscribe({ clientState: 'x'.repeat(129) }));
    t.equal(state.statusCode, 400);

    const ids = Array.from({ length: 651 }, () => `'${newGuid()}'`).join(',');
    const many = await graphFailure(subscribe({ resource: `/communications/presences?$filter=id in (${ids})` }));
    t.equal(many.statusCode, 400);

    for (const mode of ['wrong', 'error', 'json'] as const) {
      hook.validationMode = mode;
      const v = await graphFailure(subscribe());
      t.equal(v.statusCode, 400, `validation answered '${mode}'`);
      t.equal(v.code, 'ValidationError');
    }
    hook.validationMode = 'echo';
    t.same(control.subscriptions(), [], 'nothing was created');
  });

  let subId = '';
  await t.test('create with the validation handshake; a second one for the same app and user is 409', async (t) => {
    const before = hook.validations;
    const sub = await subscribe();
    subId = sub.id;
    t.equal(hook.validations - before, 2, 'notificationUrl and lifecycleNotificationUrl were both validated');
    t.equal(sub.clientState, 'gateway-secret-state');
    t.equal(Date.parse(sub.expirationDateTime), Date.parse(expiry(55)));
    const again = await graphFailure(subscribe({ resource: `/communications/presences/${ben.id}` }));
    t.equal(again.statusCode, 409);
    t.match(again.message, /A subscription already exists/);
    const list = (await graph.api('/subscriptions').get()) as { value: Array<{ id: string }> };
    t.same(list.value.map((s) => s.id), [subId]);
  });

  await t.test('a presence change is POSTed as a basic notification with clientState', async (t) => {
    hook.received.length = 0;
    control.call('anna');
    await hook.waitFor(() => hook.received.length > 0);
    const n = hook.received[0]?.value[0] ?? {};
    t.equal(n['subscriptionId'], subId);
    t.equal(n['clientState'], 'gateway-secret-state');
    t.equal(n['changeType'], 'updated');
    t.equal(n['tenantId'], h.sim.tenantId);
    t.type(n['subscriptionExpirationDateTime'], 'string');
    const rd = n['resourceData'] as Record<string, unknown>;
    t.equal(rd['id'], anna.id);
    t.equal(rd['@odata.type'], '#microsoft.graph.presence', 'as documented');
    t.equal(rd['@odata.id'], `users/${anna.id}/presence`);
    t.equal(n['resource'], `communications/presences/${anna.id}`);
    t.equal(n['organizationId'], h.sim.tenantId);
    t.equal(rd['availability'], undefined, 'basic notifications carry no availability');
    control.signIn('chiara');
    await control.idle();
    t.equal(hook.received.length, 1, 'users outside the subscription do not notify');
  });

  await t.test('a failed delivery is retried with backoff on the clock', async (t) => {
    hook.received.length = 0;
    hook.failNext.push(500);
    control.endCall('anna');
    await control.idle();
    t.equal(hook.received.length, 0, 'the first attempt failed');
    t.equal(control.counters().notifications.retried, 1);
    clock.advance(5000);
    await hook.waitFor(() => hook.received.length === 1);
    t.equal((hook.received[0]?.value[0]?.['resourceData'] as Record<string, unknown>)['id'], anna.id);
    t.equal(control.counters().notifications.failedAttempts, 1);
  });

  await t.test('lifecycle: reauthorizationRequired goes to the lifecycle URL; PATCH renews', async (t) => {
    hook.received.length = 0;
    const sent = control.fireLifecycle(subId, 'reauthorizationRequired');
    t.ok(sent.sent);
    await hook.waitFor(() => hook.received.length === 1);
    const ev = hook.received[0]?.value[0] ?? {};
    t.equal(ev['lifecycleEvent'], 'reauthorizationRequired');
    t.equal(ev['subscriptionId'], subId);
    t.equal(ev['clientState'], 'gateway-secret-state');
    clock.advance(30 * MIN);
    const renewed = (await graph.api(`/subscriptions/${subId}`).patch({ expirationDateTime: expiry(60) })) as { expirationDateTime: string };
    t.equal(Date.parse(renewed.expirationDateTime), Date.parse(expiry(60)));
    t.equal(control.subscriptions()[0]?.['needsReauthorization'], false);
    const tooFar = await graphFailure(graph.api(`/subscriptions/${subId}`).patch({ expirationDateTime: expiry(90) }));
    t.equal(tooFar.statusCode, 400);
  });

  await t.test('expiry removes the subscription', async (t) => {
    clock.advance(61 * MIN);
    const gone = await graphFailure(graph.api(`/subscriptions/${subId}`).get());
    t.equal(gone.statusCode, 404);
    t.same(control.subscriptions(), []);
    hook.received.length = 0;
    control.call('ben');
    await control.idle();
    t.equal(hook.received.length, 0, 'no notification after expiry');
    control.endCall('ben');
  });

  await t.test('DELETE answers 204 and frees the slot', async (t) => {
    const sub = await subscribe({ resource: `/communications/presences/${ben.id}`, lifecycleNotificationUrl: null });
    const del = (await graph.api(`/subscriptions/${sub.id}`).responseType(ResponseType.RAW).delete()) as Response;
    t.equal(del.status, 204);
    const again = await subscribe({ resource: `/communications/presences/${ben.id}` });
    t.ok(again.id, 'a new subscription can be made');
    await graph.api(`/subscriptions/${again.id}`).delete();
  });

  await t.test('rich notifications: encrypted resource data the subscriber can decrypt', async (t) => {
    const enc = createSelfSignedCertificate('notification encryption');
    const sub = await subscribe({
      resource: `/communications/presences/${ben.id}`,
      includeResourceData: true,
      encryptionCertificate: certificateDer(enc.certPem).toString('base64'),
      encryptionCertificateId: 'enc-1',
    });
    hook.received.length = 0;
    control.call('ben');
    await hook.waitFor(() => hook.received.length === 1);
    const batch = hook.received[0];
    t.ok(batch?.validationTokens && batch.validationTokens.length === 1, 'validationTokens accompany rich notifications');
    const ec = batch?.value[0]?.['encryptedContent'] as Record<string, string>;
    t.equal(ec['encryptionCertificateId'], 'enc-1');
    const key = privateDecrypt({ key: enc.keyPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, Buffer.from(ec['dataKey'] ?? '', 'base64'));
    const data = Buffer.from(ec['data'] ?? '', 'base64');
    t.equal(createHmac('sha256', key).update(data).digest('base64'), ec['dataSignature'], 'HMAC-SHA256 signature verifies');
    const decipher = createDecipheriv('aes-256-cbc', key, key.subarray(0, 16));
    const resource = JSON.parse(Buffer.concat([decipher.update(data), decipher.final()]).toString('utf8')) as Record<string, unknown>;
    t.equal(resource['availability'], 'Busy');
    t.equal(resource['activity'], 'InACall');
    t.equal(resource['id'], ben.id);
    await graph.api(`/subscriptions/${sub.id}`).delete();
  });

  await t.test('rich subscriptions: refused without encryptionCertificate(Id) or with a weak key; validation tokens as Entra signs them', async (t) => {
    const enc = createSelfSignedCertificate('notification encryption');
    const cert = certificateDer(enc.certPem).toString('base64');
    for (const body of [{ encryptionCertificateId: 'enc-1' }, { encryptionCertificate: cert }, {}]) {
      const r = await graphFailure(subscribe({ resource: `/communications/presences/${ben.id}`, includeResourceData: true, ...body }));
      t.equal(r.statusCode, 400, `without ${Object.keys(body).length === 0 ? 'both' : 'one'} of encryptionCertificate / encryptionCertificateId`);
    }
    const weak = createSelfSignedCertificate('weak', 30, 1024);
    const w = await graphFailure(
      subscribe({ resource: `/communications/presences/${ben.id}`, includeResourceData: true, encryptionCertificate: certificateDer(weak.certPem).toString('base64'), encryptionCertificateId: 'weak' }),
    );
    t.equal(w.statusCode, 400, 'a 1024-bit key is refused (2048 to 4096)');
    t.same(control.subscriptions(), [], 'nothing was created');

    const sub = await subscribe({ resource: `/communications/presences/${ben.id}`, includeResourceData: true, encryptionCertificate: cert, encryptionCertificateId: 'enc-2' });
    hook.received.length = 0;
    if (control.presence('ben').activity === 'InACall') control.endCall('ben');
    else control.call('ben');
    await hook.waitFor(() => hook.received.length === 1);
    const token = hook.received[0]?.validationTokens?.[0] ?? '';
    const https = createHttpTransport({ caPem: h.sim.caPem });
    t.teardown(() => https.close());
    const oidc = (await (await https.request(`${h.sim.origin}/${h.sim.tenantId}/.well-known/openid-configuration`)).json()) as { issuer: string; jwks_uri: string };
    const keys = (await (await https.request(oidc.jwks_uri)).json()) as JSONWebKeySet;
    const { payload } = await jwtVerify(token, createLocalJWKSet(keys), { issuer: oidc.issuer, audience: h.sim.demoApp.clientId, currentDate: new Date(clock.now()) });
    t.equal(payload['appid'], '0bf30f3b-4a52-48df-9a82-234910c4a086', 'issued by the Graph change-notification publisher');
    t.equal(payload['tid'], h.sim.tenantId);
    t.equal(oidc.issuer, `${h.sim.origin}/${h.sim.tenantId}/`, 'the v1 OpenID configuration names the v1 issuer the tokens carry');
    await graph.api(`/subscriptions/${sub.id}`).delete();
  });
});
