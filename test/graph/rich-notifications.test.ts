import { constants, createCipheriv, createHmac, generateKeyPairSync, publicEncrypt, randomBytes, X509Certificate } from 'node:crypto';
import { exportJWK, SignJWT } from 'jose';
import t from 'tap';
import { createSelfSignedCertificate } from '../../src/util/x509.js';
import { createGraph, MemoryNotificationKeyStore, MemorySubscriptionStateStore, type GraphRuntime } from '../../src/graph/index.js';
import { loadNotificationKeys, notificationKeyOf, NotificationKeyring } from '../../src/graph/notification-keys.js';
import { decryptContent, GRAPH_NOTIFICATION_PUBLISHER, ValidationTokenVerifier } from '../../src/graph/rich-notifications.js';
import { silentLogger } from '../../src/util/logger.js';
import { ANNA, core, env, waitFor, webhookServer } from './helpers.js';

const CLIENT_STATE = 'gateway-client-state-for-rich-0001';

/** Encrypt a resource as Graph does (independently of the simulator's code). */
function encryptAsGraph(certPem: string, certId: string, resource: unknown) {
  const key = randomBytes(32);
  const cipher = createCipheriv('aes-256-cbc', key, key.subarray(0, 16));
  const data = Buffer.concat([cipher.update(JSON.stringify(resource), 'utf8'), cipher.final()]);
  const cert = new X509Certificate(certPem);
  return {
    data: data.toString('base64'),
    dataKey: publicEncrypt({ key: cert.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, key).toString('base64'),
    dataSignature: createHmac('sha256', key).update(data).digest('base64'),
    encryptionCertificateId: certId,
    encryptionCertificateThumbprint: cert.fingerprint.replace(/:/g, ''),
  };
}

t.test('decryptContent: RSA-OAEP key, HMAC-SHA256 check, AES-256-CBC with the key as IV', async (t) => {
  const pair = createSelfSignedCertificate('rich test');
  const keyring = new NotificationKeyring(notificationKeyOf({ id: 'k1', ...pair, createdAt: 0 }));
  const enc = encryptAsGraph(pair.certPem, 'k1', { id: ANNA, availability: 'Busy', activity: 'InACall' });
  const ok = decryptContent(enc, keyring);
  t.ok(ok.ok);
  t.same(ok.ok ? ok.resource : undefined, { id: ANNA, availability: 'Busy', activity: 'InACall' });

  const data = Buffer.from(enc.data, 'base64');
  data[0] = (data[0] ?? 0) ^ 1;
  const tampered = decryptContent({ ...enc, data: data.toString('base64') }, keyring);
  t.same(tampered.ok ? 'decrypted' : tampered.reason, 'signature', 'a changed byte fails the HMAC: not decrypted');
  const otherId = decryptContent({ ...enc, encryptionCertificateId: 'k2' }, keyring);
  t.same(otherId.ok ? 'decrypted' : otherId.reason, 'decryption', 'an unknown certificate id');
  const otherPair = createSelfSignedCertificate('other');
  const foreign = decryptContent(encryptAsGraph(otherPair.certPem, 'k1', { id: ANNA }), keyring);
  t.same(foreign.ok ? 'decrypted' : foreign.reason, 'decryption', 'a key wrapped for another certificate');
});

t.test('the key pair is generated once and kept in the store; a configured pair is checked', async (t) => {
  const store = new MemoryNotificationKeyStore();
  const opts = { store, logger: silentLogger(), clock: { now: () => Date.now() } };
  const first = await loadNotificationKeys(opts);
  const again = await loadNotificationKeys(opts);
  t.equal(again.current.id, first.current.id, 'the same key after a restart');
  t.equal((await store.load()).length, 1);
  t.match(first.current.id, /^presence-gateway-[0-9a-f]{16}$/);
  const a = createSelfSignedCertificate('a');
  const b = createSelfSignedCertificate('b');
  await t.rejects(loadNotificationKeys({ ...opts, files: { certPem: a.certPem, keyPem: b.keyPem } }), /does not belong/);
  const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
  t.throws(() => notificationKeyOf({ id: 'x', certPem: a.certPem, keyPem: small.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(), createdAt: 0 }));
  const own = await loadNotificationKeys({ ...opts, files: { certPem: a.certPem, keyPem: a.keyPem, id: 'mine' } });
  t.equal(own.current.id, 'mine');
  t.ok(own.key(first.current.id), 'the stored key still decrypts older subscriptions');
});

t.test('rich notifications end to end against the simulator', async (t) => {
  const e = await env();
  const hook = await webhookServer();
  const runtimes: GraphRuntime[] = [];
  t.teardown(async () => {
    for (const r of runtimes) await r.stop();
    await hook.close();
    await e.close();
  });
  const count = (key: string) => e.sim.control.counters().requests[key] ?? 0;
  const lookups = () => count('POST /v1.0/communications/getPresencesByUserId 200');
  const svc = e.sim.serviceAccount;
  const keys = new MemoryNotificationKeyStore();
  const stateStore = new MemorySubscriptionStateStore();
  const config = e.config({
    serviceAccounts: [{ username: svc.username, password: svc.password }],
    webhook: { publicUrl: hook.url, clientState: CLIENT_STATE, richNotifications: true },
    writer: { enabled: false },
  });
  const c = core();
  const graph = createGraph({ config, directory: c.directory, store: c.store, logger: silentLogger(), notificationKeys: keys, stateStore });
  runtimes.push(graph);
  hook.handlers = graph.webhook;
  await graph.start();
  await graph.idle();
  const stored = (await keys.load())[0];

  await t.test('the subscription carries our certificate', async (t) => {
    const sub = e.sim.control.subscriptions()[0] as Record<string, unknown>;
    t.equal(sub['includeResourceData'], true);
    t.equal(sub['encryptionCertificateId'], stored?.id);
    t.equal(sub['encryptionCertificate'], new X509Certificate(stored?.certPem ?? '').raw.toString('base64'), 'base64 DER of the public certificate');
    t.equal(graph.status().notificationKey?.certificateId, stored?.id, 'shown in the status');
  });

  await t.test('a change arrives decrypted, with no read-back', async (t) => {
    const before = lookups();
    const decrypted = graph.status().reader.notifications.decrypted ?? 0;
    e.sim.control.call('ben');
    await waitFor(() => c.store.state('ben').teams?.activity === 'InACall', 8000, 'ben in a call');
    await graph.idle();
    t.equal(lookups(), before, 'no getPresencesByUserId for the change');
    t.ok((graph.status().reader.notifications.decrypted ?? 0) > decrypted);
    e.sim.control.endCall('ben');
    await waitFor(() => c.store.state('ben').teams?.activity !== 'InACall', 8000, 'call over');
  });

  const last = () => JSON.parse(JSON.stringify(hook.bodies.at(-1))) as { value: Array<Record<string, unknown>>; validationTokens: string[] };

  await t.test('a tampered item is dropped (202) and its user read back', async (t) => {
    await graph.idle();
    const body = last();
    const ec = body.value[0]?.['encryptedContent'] as Record<string, string>;
    const data = Buffer.from(ec['data'] ?? '', 'base64');
    data[3] = (data[3] ?? 0) ^ 0xff;
    ec['data'] = data.toString('base64');
    const before = lookups();
    const dropped = graph.status().reader.notifications.dropped?.signature ?? 0;
    const r = await hook.app.inject({ method: 'POST', url: '/graph/notify', payload: body });
    t.equal(r.statusCode, 202);
    await graph.idle();
    t.equal(graph.status().reader.notifications.dropped?.signature, dropped + 1);
    t.equal(lookups(), before + 1, 'read back instead');
  });

  await t.test('validation tokens: a forged signature or none at all drop the batch', async (t) => {
    await graph.idle();
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const issuer = `${e.sim.origin}/${e.sim.tenantId}/`;
    const now = Math.floor(Date.now() / 1000);
    const forged = await new SignJWT({ appid: '0bf30f3b-4a52-48df-9a82-234910c4a086', tid: e.sim.tenantId })
      .setProtectedHeader({ alg: 'RS256', kid: 'forged' })
      .setAudience(config.clientId)
      .setIssuer(issuer)
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .sign(privateKey);
    const original = last();
    const dropped = () => graph.status().reader.notifications.dropped?.validationToken ?? 0;
    for (const [what, tokens] of [
      ['forged', [forged]],
      ['none', []],
    ] as const) {
      const before = dropped();
      const body = { ...original, validationTokens: [...tokens] };
      const r = await hook.app.inject({ method: 'POST', url: '/graph/notify', payload: body });
      t.equal(r.statusCode, 202, `${what}: answered 202`);
      await graph.idle();
      t.equal(dropped(), before + 1, `${what}: dropped`);
    }
    const before = dropped();
    await hook.app.inject({ method: 'POST', url: '/graph/notify', payload: original });
    await graph.idle();
    t.equal(dropped(), before, 'the genuine batch passes');
  });

  await t.test('a restart keeps the key, so the running subscription still decrypts', async (t) => {
    const c2 = core();
    const again = createGraph({ config, directory: c2.directory, store: c2.store, logger: silentLogger(), notificationKeys: keys, stateStore });
    runtimes.push(again);
    await graph.stop();
    hook.handlers = again.webhook;
    await again.start();
    await again.idle();
    t.equal((await keys.load()).length, 1, 'no second key generated');
    t.equal(e.sim.control.subscriptions().length, 1);
    t.equal(again.status().reader.subscriptions[0]?.subscriptionId, graph.status().reader.subscriptions[0]?.subscriptionId, 'the subscription of the first run is renewed, not re-created');
    e.sim.control.call('anna');
    await waitFor(() => c2.store.state('anna').teams?.activity === 'InACall', 8000, 'anna in a call');
    t.ok((again.status().reader.notifications.decrypted ?? 0) >= 1);
    t.equal(again.status().reader.notifications.dropped?.decryption ?? 0, 0);
  });
});

t.test('ValidationTokenVerifier: signature, issuer, audience, publisher and expiry', async (t) => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', use: 'sig', alg: 'RS256' };
  const tenant = 'b0000000-0000-4000-8000-00000000000b';
  const app = 'c0000000-0000-4000-8000-00000000000c';
  const issuer = `https://sts.example.net/${tenant}/`;
  const fetched: string[] = [];
  const clock = { now: () => Date.now(), after: () => ({ cancel() {} }) };
  const verifier = new ValidationTokenVerifier({
    authorityHost: 'https://login.example.net',
    tenantId: tenant,
    clientId: app,
    clock,
    logger: silentLogger(),
    getJson: async (url) => {
      fetched.push(url);
      if (url.endsWith('/.well-known/openid-configuration')) return { issuer: 'https://sts.example.net/{tenantid}/', jwks_uri: 'https://login.example.net/common/discovery/keys' };
      return { keys: [jwk] };
    },
  });
  const now = Math.floor(Date.now() / 1000);
  const token = (claims: Record<string, unknown>, o: { aud?: string; iss?: string; exp?: number; key?: typeof privateKey } = {}) =>
    new SignJWT({ appid: GRAPH_NOTIFICATION_PUBLISHER, tid: tenant, ...claims })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setAudience(o.aud ?? app)
      .setIssuer(o.iss ?? issuer)
      .setIssuedAt(now - 60)
      .setExpirationTime(o.exp ?? now + 3600)
      .sign(o.key ?? privateKey);
  t.same(await verifier.verify([await token({})]), { ok: true }, 'a genuine token');
  t.same(fetched, [`https://login.example.net/${tenant}/.well-known/openid-configuration`, 'https://login.example.net/common/discovery/keys'], "the tenant's OpenID configuration names issuer and keys");
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  for (const [what, jwt] of [
    ['another audience', await token({}, { aud: 'd0000000-0000-4000-8000-00000000000d' })],
    ['another issuer', await token({}, { iss: 'https://sts.example.net/evil/' })],
    ['expired', await token({}, { exp: now - 3600 })],
    ['not the Graph publisher', await token({ appid: app })],
    ['signed by another key', await token({}, { key: other })],
  ] as const) {
    const r = await verifier.verify([jwt]);
    t.equal(r.ok, false, what);
  }
  t.equal((await verifier.verify([await token({}), await token({ appid: app })])).ok, false, 'every token of the batch must pass');
  t.equal((await verifier.verify([])).ok, false, 'none at all');
});

t.test('a basic subscription left by an earlier run is replaced by a rich one on its first notification', async (t) => {
  const e = await env();
  const hook = await webhookServer();
  const runtimes: GraphRuntime[] = [];
  t.teardown(async () => {
    for (const r of runtimes) await r.stop();
    await hook.close();
    await e.close();
  });
  const svc = e.sim.serviceAccount;
  const stateStore = new MemorySubscriptionStateStore();
  const config = (rich: boolean) =>
    e.config({
      serviceAccounts: [{ username: svc.username, password: svc.password }],
      webhook: { publicUrl: hook.url, clientState: CLIENT_STATE, ...(rich ? { richNotifications: true } : {}) },
      writer: { enabled: false },
    });
  const c1 = core();
  const basic = createGraph({ config: config(false), directory: c1.directory, store: c1.store, logger: silentLogger(), stateStore });
  runtimes.push(basic);
  hook.handlers = basic.webhook;
  await basic.start();
  await basic.idle();
  const firstId = e.sim.control.subscriptions()[0]?.['id'];
  t.equal(e.sim.control.subscriptions()[0]?.['includeResourceData'], false);
  await basic.stop();

  const c2 = core();
  const rich = createGraph({ config: config(true), directory: c2.directory, store: c2.store, logger: silentLogger(), stateStore });
  runtimes.push(rich);
  hook.handlers = rich.webhook;
  await rich.start();
  await rich.idle();
  t.equal(rich.status().reader.subscriptions[0]?.subscriptionId, firstId, 'taken over first (renewed, no 409)');
  e.sim.control.call('chiara');
  await waitFor(() => c2.store.state('chiara').teams?.activity === 'InACall', 8000, 'the basic notification still works');
  await waitFor(() => e.sim.control.subscriptions()[0]?.['includeResourceData'] === true, 8000, 'replaced by a rich subscription');
  t.not(e.sim.control.subscriptions()[0]?.['id'], firstId);
  await rich.idle();
  const decrypted = rich.status().reader.notifications.decrypted ?? 0;
  e.sim.control.endCall('chiara');
  await waitFor(() => c2.store.state('chiara').teams?.activity !== 'InACall', 8000, 'call over');
  await rich.idle();
  t.ok((rich.status().reader.notifications.decrypted ?? 0) > decrypted, 'now rich');
});
