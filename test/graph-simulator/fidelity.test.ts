import { request } from 'node:https';
import t from 'tap';
import { ConfidentialClientApplication } from '@azure/msal-node';
import { ManualClock } from '../../src/graph-simulator/clock.js';
import { newGuid } from '../../src/graph-simulator/ids.js';
import { graphFailure, harness, webhook } from './helpers.js';
import { msalNetworkClient } from './tls-clients.js';

const MIN = 60_000;

function postForm(url: string, caPem: string, form: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const data = new URLSearchParams(form).toString();
    const req = request(url, { method: 'POST', ca: caPem, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(data) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

t.test('simulator fidelity: what Microsoft documents', async (t) => {
  const clock = new ManualClock();
  const h = await harness({ clock });
  const hook = await webhook();
  t.teardown(async () => {
    await h.close();
    await hook.close();
  });
  const { control } = h.sim;
  const token = await h.appToken();
  const graph = h.graph(async () => token);
  const anna = control.user('anna');

  await t.test('AADSTS error_description: CRLF before Trace ID, Correlation ID and Timestamp', async (t) => {
    const r = await postForm(`${h.sim.authorityUrl}/oauth2/v2.0/token`, h.sim.caPem, {
      grant_type: 'client_credentials',
      client_id: h.sim.demoApp.clientId,
      client_secret: 'wrong',
      scope: 'https://graph.microsoft.com/.default',
    });
    t.equal(r.status, 401);
    const lines = String(r.body['error_description']).split('\r\n');
    t.equal(lines.length, 4, String(r.body['error_description']));
    t.match(lines[0], /^AADSTS7000215: Invalid client secret provided/);
    t.match(lines[1], /^Trace ID: [0-9a-f-]{36}$/);
    t.match(lines[2], /^Correlation ID: [0-9a-f-]{36}$/);
    t.match(lines[3], /^Timestamp: \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
  });

  await t.test("reading others' presence needs Presence.Read.All or Presence.ReadWrite.All", async (t) => {
    const clientId = newGuid();
    control.registerApp({ clientId, secrets: ['s'], applicationPermissions: ['User.Read.All'] });
    const net = msalNetworkClient(h.sim.caPem);
    const r = await new ConfidentialClientApplication({ auth: { clientId, clientSecret: 's', authority: h.sim.authorityUrl, knownAuthorities: [h.sim.host] }, system: { networkClient: net } }).acquireTokenByClientCredential({ scopes: ['https://graph.microsoft.com/.default'] });
    net.close();
    const noPresence = h.graph(async () => r?.accessToken ?? '');
    t.equal((await graphFailure(noPresence.api(`/users/${anna.id}/presence`).get())).statusCode, 403);
    t.equal((await graphFailure(noPresence.api('/communications/getPresencesByUserId').post({ ids: [anna.id] }))).statusCode, 403);
    t.equal(((await graph.api(`/users/${anna.id}/presence`).get()) as { id: string }).id, anna.id, 'the demo app (Presence.Read.All) reads');
  });

  await t.test('workLocation is on the presence resource', async (t) => {
    const p = (await graph.api(`/communications/presences/${anna.id}`).get()) as { workLocation?: Record<string, unknown> };
    t.same(p.workLocation, { workLocationType: 'unknown', source: 'none', placeId: null });
  });

  await t.test('setStatusMessage takes contentType text only', async (t) => {
    const set = (contentType: string) =>
      graph.api(`/users/${anna.id}/presence/setStatusMessage`).post({ statusMessage: { message: { content: 'Back at 3', contentType } } });
    const html = await graphFailure(set('html'));
    t.equal(html.statusCode, 400);
    t.match(html.message, /contentType 'text' only/);
    await set('text');
    const p = (await graph.api(`/users/${anna.id}/presence`).get()) as { statusMessage: { message: { content: string; contentType: string } } };
    t.same(p.statusMessage.message, { content: 'Back at 3', contentType: 'text' });
  });

  await t.test('GET /subscriptions never returns clientState', async (t) => {
    const user = h.graph(() => h.userToken());
    const created = (await user.api('/subscriptions').post({
      changeType: 'updated',
      notificationUrl: hook.url,
      resource: `/communications/presences/${anna.id}`,
      expirationDateTime: new Date(clock.now() + 50 * MIN).toISOString(),
      clientState: 'gateway-secret-state',
    })) as { id: string; clientState: string };
    t.equal(created.clientState, 'gateway-secret-state', 'the create answer echoes it');
    const list = (await user.api('/subscriptions').get()) as { value: Array<{ id: string; clientState: unknown }> };
    t.same(list.value.map((s) => [s.id, s.clientState]), [[created.id, null]]);
  });
});
