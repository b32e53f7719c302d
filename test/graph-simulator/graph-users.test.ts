import t from 'tap';
import { ManualClock } from '../../src/graph-simulator/clock.js';
import { TEAMS_SERVICE_PLAN_ID } from '../../src/graph-simulator/model.js';
import { newGuid } from '../../src/graph-simulator/ids.js';
import { graphFailure, harness } from './helpers.js';

const TEAMS_FILTER = `assignedPlans/any(a:a/servicePlanId eq ${TEAMS_SERVICE_PLAN_ID} and a/capabilityStatus eq 'Enabled')`;

t.test('Graph users through @microsoft/microsoft-graph-client', async (t) => {
  const clock = new ManualClock();
  const h = await harness({ clock });
  t.teardown(() => h.close());
  const token = await h.appToken();
  const graph = h.graph(async () => token);
  // 250 more users, every third one without Teams
  for (let i = 0; i < 250; i++) {
    h.sim.control.addUser({ displayName: `Load User ${i}`, userPrincipalName: `load${i}@contoso.example`, teams: i % 3 !== 0 });
  }
  const total = h.sim.control.listUsers().length;

  await t.test('paging with $top and @odata.nextLink', async (t) => {
    const seen = new Set<string>();
    let page = (await graph.api('/users').select(['id', 'displayName', 'userPrincipalName']).top(100).get()) as { value: Array<Record<string, unknown>>; '@odata.nextLink'?: string };
    let pages = 1;
    t.same(Object.keys(page.value[0] ?? {}).sort(), ['displayName', 'id', 'userPrincipalName'], '$select honoured');
    for (const u of page.value) seen.add(String(u['id']));
    while (page['@odata.nextLink']) {
      t.match(page['@odata.nextLink'], /\$skiptoken=/);
      page = (await graph.api(page['@odata.nextLink']).get()) as typeof page;
      pages++;
      for (const u of page.value) seen.add(String(u['id']));
    }
    t.equal(seen.size, total, 'every user exactly once');
    t.equal(pages, Math.ceil(total / 100));
  });

  await t.test('$top above 999 and unknown $select properties are 400', async (t) => {
    const top = await graphFailure(graph.api('/users').top(1000).get());
    t.equal(top.statusCode, 400);
    t.match(top.message, /between 1 and 999/);
    const sel = await graphFailure(graph.api('/users').select(['nonsense']).get());
    t.equal(sel.statusCode, 400);
    t.equal(sel.code, 'Request_BadRequest');
  });

  await t.test('the Teams-licence filter needs ConsistencyLevel: eventual and $count=true', async (t) => {
    const without = await graphFailure(graph.api('/users').filter(TEAMS_FILTER).get());
    t.equal(without.statusCode, 400);
    t.equal(without.code, 'Request_UnsupportedQuery');
    const noCount = await graphFailure(graph.api('/users').header('ConsistencyLevel', 'eventual').filter(TEAMS_FILTER).get());
    t.equal(noCount.statusCode, 400, 'eventual alone is not enough');
    const ok = (await graph
      .api('/users')
      .header('ConsistencyLevel', 'eventual')
      .filter(TEAMS_FILTER)
      .count(true)
      .select(['id', 'assignedPlans'])
      .top(999)
      .get()) as { value: Array<{ assignedPlans: Array<{ servicePlanId: string }> }>; '@odata.count': number };
    const expected = h.sim.control.listUsers().filter((u) => u.assignedPlans.some((p) => p.servicePlanId === TEAMS_SERVICE_PLAN_ID && p.capabilityStatus === 'Enabled')).length;
    t.equal(ok['@odata.count'], expected);
    t.equal(ok.value.length, expected);
    t.ok(expected < total, 'unlicensed users are filtered out');
    t.ok(ok.value.every((u) => u.assignedPlans.some((p) => p.servicePlanId === TEAMS_SERVICE_PLAN_ID)));
  });

  await t.test('simple filters', async (t) => {
    const r = (await graph.api('/users').filter("userPrincipalName eq 'anna@contoso.example'").get()) as { value: Array<{ displayName: string }> };
    t.same(r.value.map((u) => u.displayName), ['Anna Meier']);
    const bad = await graphFailure(graph.api('/users').filter("endswith(mail,'x')").get());
    t.equal(bad.statusCode, 400);
  });

  await t.test('/users/delta: initial sync, then changes and @removed', async (t) => {
    let link: string | undefined = '/users/delta?$select=id,displayName';
    let deltaLink = '';
    let count = 0;
    while (link) {
      const page = (await graph.api(link).header('Prefer', 'odata.maxpagesize=120').get()) as { value: unknown[]; '@odata.nextLink'?: string; '@odata.deltaLink'?: string };
      count += page.value.length;
      link = page['@odata.nextLink'];
      if (page['@odata.deltaLink']) deltaLink = page['@odata.deltaLink'];
    }
    t.equal(count, total);
    t.match(deltaLink, /\$deltatoken=/);
    const empty = (await graph.api(deltaLink).get()) as { value: unknown[]; '@odata.deltaLink': string };
    t.same(empty.value, [], 'nothing changed');
    h.sim.control.removeUser('load5@contoso.example');
    h.sim.control.updateUser('ben', { displayName: 'Ben O.' });
    const added = h.sim.control.addUser({ id: newGuid(), displayName: 'New Person', userPrincipalName: 'new@contoso.example' });
    const changes = (await graph.api(empty['@odata.deltaLink']).get()) as { value: Array<Record<string, unknown>> };
    const removed = changes.value.find((v) => v['@removed'] !== undefined);
    t.ok(removed, 'the removed user is reported');
    t.same(removed?.['@removed'], { reason: 'changed' });
    t.same(
      changes.value.filter((v) => v['@removed'] === undefined).map((v) => v['displayName']).sort(),
      ['Ben O.', 'New Person'],
    );
    t.ok(changes.value.some((v) => v['id'] === added.id));
  });

  await t.test('401 without a token or with an expired one; 403 without User.Read.All', async (t) => {
    const none = h.graph(async () => '');
    const missing = await graphFailure(none.api('/users').get());
    t.equal(missing.statusCode, 401);
    t.equal(missing.code, 'InvalidAuthenticationToken');

    // a token whose payload was altered (more roles) no longer verifies
    const [head, body, sig] = token.split('.');
    const payload = JSON.parse(Buffer.from(body ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
    payload['roles'] = ['Directory.ReadWrite.All'];
    const forged = h.graph(async () => `${head}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${sig}`);
    const bad = await graphFailure(forged.api('/users').get());
    t.equal(bad.statusCode, 401, 'signature checked');
    t.equal(bad.code, 'InvalidAuthenticationToken');

    const clientId = newGuid();
    h.sim.control.registerApp({ clientId, secrets: ['s3cret'], applicationPermissions: ['Presence.Read.All'] });
    const tok = await fetchAppToken(h.sim.authorityUrl, h.sim.host, h.sim.caPem, clientId, 's3cret');
    const limited = h.graph(async () => tok);
    const denied = await graphFailure(limited.api('/users').get());
    t.equal(denied.statusCode, 403);
    t.equal(denied.code, 'Authorization_RequestDenied');

    clock.advance(3600_000);
    const expired = await graphFailure(graph.api('/users').get());
    t.equal(expired.statusCode, 401);
    t.equal(expired.code, 'InvalidAuthenticationToken');
    t.match(expired.message, /expired/);
  });
});

async function fetchAppToken(authority: string, host: string, caPem: string, clientId: string, secret: string): Promise<string> {
  const { ConfidentialClientApplication } = await import('@azure/msal-node');
  const { msalNetworkClient } = await import('./tls-clients.js');
  const net = msalNetworkClient(caPem);
  const app = new ConfidentialClientApplication({ auth: { clientId, clientSecret: secret, authority, knownAuthorities: [host] }, system: { networkClient: net } });
  const r = await app.acquireTokenByClientCredential({ scopes: ['https://graph.microsoft.com/.default'] });
  net.close();
  return r?.accessToken ?? '';
}
