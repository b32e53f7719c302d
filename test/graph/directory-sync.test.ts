import t from 'tap';
import type { Person } from '../../src/core/directory.js';
import { GraphAuth } from '../../src/graph/auth.js';
import { RequestBudget } from '../../src/graph/budget.js';
import { createGraphClient } from '../../src/graph/client.js';
import { systemClock } from '../../src/util/clock.js';
import { parseGraphConfig } from '../../src/graph/config.js';
import { DirectorySync, matchPersons, type GraphUser } from '../../src/graph/directory-sync.js';
import { createHttpTransport } from '../../src/graph/http-transport.js';
import { silentLogger } from '../../src/util/logger.js';
import { ANNA, BEN, core, env, PRINTER } from './helpers.js';

const dirConfig = (directory: Record<string, unknown>) =>
  parseGraphConfig({ tenantId: 'contoso.com', clientId: '66666666-7777-4888-9999-000000000000', clientSecret: 's', directory }).directory;

t.test('matchPersons: fields, phone suffixes, domains, ambiguity, static entries', async (t) => {
  const persons: Person[] = [
    { id: 'anna', displayName: 'Anna Meier', extension: '1001', sipAors: ['sip:anna.meier@pbx.example'] },
    { id: 'ben', displayName: 'Ben Okafor', extension: '1002', sipAors: ['sip:ben@pbx.example'] },
    { id: 'carl', displayName: 'Carl Twin', extension: '1003', sipAors: ['sip:carl@pbx.example'] },
    { id: 'dora', displayName: 'Dora', extension: '1004', sipAors: ['sip:dora@pbx.example'] },
  ];
  const users = new Map<string, GraphUser>(
    [
      { id: 'u1', userPrincipalName: 'Anna.Meier@contoso.com', mailNickname: 'anna', businessPhones: ['+49 30 1234 51001'] },
      { id: 'u2', userPrincipalName: 'ben@contoso.com', mailNickname: 'ben', businessPhones: ['+49 30 1234 51002'] },
      { id: 'u3', userPrincipalName: 'carl1@contoso.com', businessPhones: ['+49 30 9999 1003'] },
      { id: 'u4', userPrincipalName: 'carl2@contoso.com', businessPhones: ['+1 555 000 1003'] },
      { id: 'u5', userPrincipalName: 'dora.x@contoso.com' },
    ].map((u) => [u.id, u]),
  );
  const byPhone = matchPersons(persons, users, dirConfig({ match: { sip: 'extension', graph: 'businessPhones' } }), new Map());
  t.same(
    byPhone.matched.map((m) => [m.personId, m.userId]),
    [
      ['anna', 'u1'],
      ['ben', 'u2'],
    ],
  );
  t.same(
    byPhone.unmatchedPersons.map((p) => p.id),
    ['carl', 'dora'],
  );
  t.match(byPhone.conflicts.join('\n'), /carl: "1003" matches more than one Teams user.*directory\.static/);

  const byUpn = matchPersons(persons, users, dirConfig({ match: { sip: 'aorUser', graph: 'userPrincipalName', stripDomain: true } }), new Map());
  t.same(
    byUpn.matched.map((m) => [m.personId, m.userId, m.upn]),
    [
      ['anna', 'u1', 'Anna.Meier@contoso.com'],
      ['ben', 'u2', 'ben@contoso.com'],
    ],
    'case-insensitive, domain stripped',
  );

  const withStatic = matchPersons(persons, users, dirConfig({ match: { sip: 'extension', graph: 'businessPhones' } }), new Map([['carl', { userId: 'u4' }], ['dora', { userId: 'u1' }]]));
  t.same(
    withStatic.matched.map((m) => [m.personId, m.userId, m.via]),
    [
      ['carl', 'u4', 'static'],
      ['dora', 'u1', 'static'],
      ['ben', 'u2', 'match'],
    ],
    'static entries win and take their users out of the pool',
  );
  t.same(
    withStatic.unmatchedPersons.map((p) => p.id),
    ['anna'],
  );
  t.match(withStatic.conflicts.join('\n'), /anna: Teams user .* already mapped/);
  t.same(withStatic.unmatchedUsers.map((u) => u.id).sort(), ['u3', 'u5']);
});

t.test('directory sync against the simulator', async (t) => {
  const e = await env();
  const transport = createHttpTransport({ caPem: e.sim.caPem });
  t.teardown(async () => {
    transport.close();
    await e.close();
  });
  const client = (config = e.config()) =>
    createGraphClient({
      graphBaseUrl: config.graphBaseUrl,
      tokens: new GraphAuth({ config, logger: silentLogger(), networkClient: transport.msalNetworkClient }).appToken(),
      budget: new RequestBudget(systemClock, 1500),
      transport,
    });

  await t.test('Teams-licensed users matched by mailNickname; the unlicensed are not listed; leftovers reported', async (t) => {
    const { directory } = core();
    const config = e.config();
    const sync = new DirectorySync({ client: client(config), directory, config: config.directory, logger: silentLogger() });
    const r = await sync.fullSync();
    t.equal(r.usersListed, 5, 'the printer and the service account have no Teams licence');
    t.same(r.matched.map((m) => m.personId).sort(), ['anna', 'ben', 'chiara', 'dmitri', 'elif']);
    t.equal(directory.get('anna')?.teams?.userId, ANNA);
    t.equal(directory.get('anna')?.teams?.upn, 'anna@contoso.example');
    t.equal(directory.findByTeamsUserId(BEN)?.id, 'ben');
    t.same(r.unmatchedPersons, ['zoe']);
    t.same(r.unmatchedUsers, []);
  });

  await t.test('match by extension against businessPhones, a static UPN outside the licensed set, all users listed', async (t) => {
    const { directory } = core();
    const config = e.config({
      directory: {
        match: { sip: 'extension', graph: 'businessPhones' },
        teamsLicensedOnly: false,
        static: [{ person: 'zoe', upn: 'printer@contoso.example' }],
      },
    });
    const sync = new DirectorySync({ client: client(config), directory, config: config.directory, logger: silentLogger() });
    const r = await sync.fullSync();
    t.equal(r.usersListed, 7, 'everyone, the printer and the service account too');
    t.equal(directory.get('elif')?.teams?.userId, 'a1000000-0000-4000-8000-000000001005', 'extension 1005 ends +49 30 1234 51005');
    t.equal(directory.get('zoe')?.teams?.userId, PRINTER, 'the static entry');
    t.ok(r.matched.some((m) => m.personId === 'zoe' && m.via === 'static'));
    t.same(
      r.unmatchedUsers.map((u) => u.upn),
      [e.sim.serviceAccount.username],
    );
  });

  await t.test('static UPN of a licensed user is resolved from the listing; a UPN nobody has is a conflict', async (t) => {
    const { directory } = core();
    const config = e.config({
      directory: {
        match: { sip: 'id', graph: 'mailNickname', stripDomain: false },
        static: [
          { person: 'zoe', upn: 'ben@contoso.example' },
          { person: 'anna', upn: 'ghost@contoso.example' },
        ],
      },
    });
    const sync = new DirectorySync({ client: client(config), directory, config: config.directory, logger: silentLogger() });
    const r = await sync.fullSync();
    t.equal(directory.get('zoe')?.teams?.userId, BEN);
    t.equal(directory.get('ben')?.teams, undefined, "ben's Teams user went to zoe");
    t.match(r.conflicts.join('\n'), /ghost@contoso\.example not found in the tenant \(404\)/);
    t.match(r.conflicts.join('\n'), /ben: Teams user ben@contoso\.example is already mapped/);
  });

  await t.test('delta picks up a new user and a removed one', async (t) => {
    const { directory } = core();
    const config = e.config();
    const sync = new DirectorySync({ client: client(config), directory, config: config.directory, logger: silentLogger() });
    await sync.fullSync();
    t.equal(directory.get('zoe')?.teams, undefined);
    const zoe = e.sim.control.addUser({ displayName: 'Zoe Nobody', userPrincipalName: 'zoe@contoso.example', mailNickname: 'zoe' });
    e.sim.control.removeUser('dmitri');
    const r = await sync.deltaSync();
    t.equal(r.mode, 'delta');
    t.equal(directory.get('zoe')?.teams?.userId, zoe.id);
    t.equal(r.usersListed, 5, 'one in, one out');
    t.same(r.kept, ['dmitri'], 'a person whose Teams user left keeps the identity and is reported');
  });
});
