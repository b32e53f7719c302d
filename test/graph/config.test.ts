import t from 'tap';
import { parseGraphConfig } from '../../src/graph/config.js';
import { graphConfigProblems as problems } from '../helpers/config-problems.js';

const TENANT = '11111111-2222-4333-8444-555555555555';
const CLIENT = '66666666-7777-4888-9999-000000000000';

t.test('defaults fill in around the required fields', async (t) => {
  const c = parseGraphConfig({ tenantId: TENANT, clientId: CLIENT, clientSecret: 's3cret' });
  t.equal(c.authorityHost, 'https://login.microsoftonline.com');
  t.equal(c.graphBaseUrl, 'https://graph.microsoft.com/v1.0');
  t.equal(c.poll.intervalSec, 30);
  t.equal(c.writer.expirationMinutes, 5);
  t.equal(c.writer.dnd, 'session');
  t.equal(c.budget.requestsPer30s, 1200, 'a safe share below the documented 1,500 / 30 s');
  t.equal(c.poll.mode, 'budget');
  t.equal(c.poll.share, 0.4);
  t.equal(c.poll.safetyReadSec, 600);
  t.same(c.directory.teamsServicePlanIds, [
    '57ff2da0-773e-42df-b2af-ffb7a2317929',
    '304767db-7d23-49e8-a945-4a7eb65f9f28',
    '9953b155-8aef-4c56-92f3-72b0487fce41',
    'fd500458-c24c-478e-856c-a6067a8376cd',
  ]);
  t.same(c.serviceAccounts, []);
  t.equal(c.webhook, undefined);
  t.same(c.directory.match, { sip: 'aorUser', graph: 'userPrincipalName', stripDomain: true });
});

t.test('a webhook without clientState gets a random one, different each time', async (t) => {
  const a = parseGraphConfig({ tenantId: TENANT, clientId: CLIENT, clientSecret: 's', webhook: { publicUrl: 'https://gw.example.com/graph' } });
  const b = parseGraphConfig({ tenantId: TENANT, clientId: CLIENT, clientSecret: 's', webhook: { publicUrl: 'https://gw.example.com/graph' } });
  t.ok(a.webhook && a.webhook.clientState.length >= 32 && a.webhook.clientState.length <= 128);
  t.not(a.webhook?.clientState, b.webhook?.clientState);
  const given = parseGraphConfig({ tenantId: TENANT, clientId: CLIENT, clientSecret: 's', webhook: { publicUrl: 'https://gw.example.com/graph', clientState: 'x'.repeat(20) } });
  t.equal(given.webhook?.clientState, 'x'.repeat(20));
});

t.test('errors name the path and say what would be right', async (t) => {
  const p = problems({
    tenantId: 'common',
    clientId: 'not-a-guid',
    clientSecret: 's',
    graphBaseUrl: 'http://graph.example.com/v1.0',
    writer: { expirationMinutes: 2, dnd: 'maybe' },
    webhook: { publicUrl: 'http://gw.example.com/hook', clientState: 'short' },
    directory: { match: { graph: 'phone' }, static: [{ person: 'anna' }] },
    poll: { intervalSec: 1 },
  });
  const find = (path: string) => p.find((x) => x.startsWith(`${path}: `)) ?? '';
  t.match(find('graph.tenantId'), /tenant id \(a GUID\).*not "common"/);
  t.match(find('graph.clientId'), /Application \(client\) id/);
  t.match(find('graph.graphBaseUrl'), /https URL/);
  t.match(find('graph.writer.expirationMinutes'), /5 to 240/);
  t.match(find('graph.writer.dnd'), /preferred, session, off/);
  t.match(find('graph.webhook.publicUrl'), /https URL/);
  t.match(find('graph.webhook.clientState'), /16 to 128/);
  t.match(find('graph.directory.match.graph'), /mailNickname/);
  t.match(find('graph.directory.static[0]'), /exactly one of userId or upn/);
  t.match(find('graph.poll.intervalSec'), /at least 5 seconds/);
});

t.test('exactly one app credential', async (t) => {
  t.match(problems({ tenantId: TENANT, clientId: CLIENT }).join('\n'), /graph: give exactly one app credential/);
  const both = problems({ tenantId: TENANT, clientId: CLIENT, clientSecret: 's', certificate: { certPath: '/a.pem', keyPath: '/a.key' } });
  t.match(both.join('\n'), /graph\.certificate: give exactly one app credential/);
  t.same(problems({ tenantId: 'contoso.onmicrosoft.com', clientId: CLIENT, certificate: { certPath: '/a.pem', keyPath: '/a.key' } }), []);
});

t.test('unknown keys and duplicates are named', async (t) => {
  const p = problems({
    tenantId: TENANT,
    clientId: CLIENT,
    clientSecret: 's',
    pollInterval: 5,
    serviceAccounts: [
      { username: 'svc@contoso.com', password: 'a' },
      { username: 'SVC@contoso.com', password: 'b' },
    ],
    directory: { static: [{ person: 'anna', upn: 'anna@contoso.com' }, { person: 'anna', upn: 'ann@contoso.com' }] },
  });
  t.ok(p.some((x) => x.startsWith('graph: unknown key "pollInterval"')), p.join('\n'));
  t.ok(p.some((x) => x.startsWith('graph.serviceAccounts[1].username: duplicate of serviceAccounts[0]')), p.join('\n'));
  t.ok(p.some((x) => x.startsWith('graph.directory.static[1].person: "anna" is already directory.static[0]')), p.join('\n'));
});

t.test('the request budget: at most the documented 1,500 / 30 s, and polling must fit in it', async (t) => {
  const base = { tenantId: TENANT, clientId: CLIENT, clientSecret: 's' };
  const over = problems({ ...base, budget: { requestsPer30s: 1600 } });
  t.match(over.join('\n'), /graph\.budget\.requestsPer30s: expected .*at most 1500 per 30 s/);
  t.same(problems({ ...base, budget: { requestsPer30s: 1500 } }), [], '1,500 itself is allowed');
  const tight = problems({ ...base, budget: { requestsPer30s: 300 }, poll: { share: 0.5 } });
  t.match(tight.join('\n'), /graph\.poll\.share: 0\.5 of 1,500 is 750 requests \/ 30 s, more than budget\.requestsPer30s \(300\); lower poll\.share/);
  t.match(problems({ ...base, poll: { share: 0 } }).join('\n'), /graph\.poll\.share: expected .*above 0/);
  t.match(problems({ ...base, poll: { mode: 'fast' } }).join('\n'), /graph\.poll\.mode: expected .*budget, fixed/);
  t.match(problems({ ...base, directory: { teamsServicePlanIds: ['teams'] } }).join('\n'), /graph\.directory\.teamsServicePlanIds\[0\]: expected .*service plan id/);
});

t.test('rich notifications and busy-on-busy are opt-in; half a key pair is named', async (t) => {
  const base = { tenantId: TENANT, clientId: CLIENT, clientSecret: 's' };
  const hook = { publicUrl: 'https://gw.example.com/graph' };
  t.equal(parseGraphConfig({ ...base, webhook: hook }).webhook?.richNotifications, undefined, 'basic notifications by default');
  t.same(parseGraphConfig({ ...base, webhook: { ...hook, richNotifications: true } }).webhook?.richNotifications, {}, 'true: a generated key pair');
  t.same(parseGraphConfig({ ...base, webhook: { ...hook, richNotifications: { certPath: '/c.pem', keyPath: '/k.pem' } } }).webhook?.richNotifications, { certPath: '/c.pem', keyPath: '/k.pem' });
  t.match(problems({ ...base, webhook: { ...hook, richNotifications: { certPath: '/c.pem' } } }), [/^graph\.webhook\.richNotifications: give both certPath and keyPath/]);
  t.match(problems({ ...base, webhook: { ...hook, richNotifications: { certificateId: 'x'.repeat(129) } } }), [/^graph\.webhook\.richNotifications\.certificateId: expected .*128/]);
  t.equal(parseGraphConfig(base).writer.duringCall, 'busy', "default: Busy/InACall as before");
  t.equal(parseGraphConfig({ ...base, writer: { duringCall: 'dnd' } }).writer.duringCall, 'dnd');
  t.match(problems({ ...base, writer: { duringCall: 'donotdisturb' } }), [/^graph\.writer\.duringCall: expected one of: busy, dnd/]);
});
