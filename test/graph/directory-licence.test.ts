import t from 'tap';
import type { Client } from '@microsoft/microsoft-graph-client';
import { GraphAuth } from '../../src/graph/auth.js';
import { RequestBudget } from '../../src/graph/budget.js';
import { createGraphClient } from '../../src/graph/client.js';
import { systemClock } from '../../src/util/clock.js';
import { DirectorySync, teamsLicenceProblem } from '../../src/graph/directory-sync.js';
import { createHttpTransport } from '../../src/graph/http-transport.js';
import { silentLogger } from '../../src/util/logger.js';
import { core, env } from './helpers.js';

const TEAMS1 = '57ff2da0-773e-42df-b2af-ffb7a2317929';
const TEAMS_GOV = '304767db-7d23-49e8-a945-4a7eb65f9f28';

t.test('licence rule: Enabled and Warning count, on any configured Teams plan', async (t) => {
  const ids = new Set([TEAMS1, TEAMS_GOV]);
  const u = (plans: Array<[string, string]>) => ({ id: 'x', assignedPlans: plans.map(([servicePlanId, capabilityStatus]) => ({ servicePlanId, capabilityStatus })) });
  t.equal(teamsLicenceProblem(u([[TEAMS1, 'Enabled']]), ids), undefined);
  t.equal(teamsLicenceProblem(u([[TEAMS1, 'Warning']]), ids), undefined, 'grace period: still usable');
  t.equal(teamsLicenceProblem(u([[TEAMS_GOV.toUpperCase(), 'Enabled']]), ids), undefined, 'GCC plan, any case');
  t.match(teamsLicenceProblem(u([[TEAMS1, 'Suspended']]), ids), /Teams service plan Suspended/);
  t.match(teamsLicenceProblem(u([['0feaeb32-d00e-4d66-bd5a-43b5b83db82c', 'Enabled']]), ids), /no Teams service plan/);
  t.match(teamsLicenceProblem(u([[TEAMS_GOV, 'Enabled']]), new Set([TEAMS1])), /no Teams service plan/, 'only the configured plans count');
});

t.test('directory sync against the simulator: licences and the delta taken before the listing', async (t) => {
  const e = await env();
  const transport = createHttpTransport({ caPem: e.sim.caPem });
  t.teardown(async () => {
    transport.close();
    await e.close();
  });
  const config = e.config();
  const real = createGraphClient({
    graphBaseUrl: config.graphBaseUrl,
    tokens: new GraphAuth({ config, logger: silentLogger(), networkClient: transport.msalNetworkClient }).appToken(),
    budget: new RequestBudget(systemClock, 1500),
    transport,
  });

  await t.test('Warning kept, Suspended and unlicensed excluded with why', async (t) => {
    // chiara's licence is in its grace period, dmitri's suspended; zoe exists in Teams without any Teams plan
    e.sim.control.user('chiara').assignedPlans[0]!.capabilityStatus = 'Warning';
    e.sim.control.user('dmitri').assignedPlans[0]!.capabilityStatus = 'Suspended';
    e.sim.control.addUser({ displayName: 'Zoe Nobody', userPrincipalName: 'zoe@contoso.example', mailNickname: 'zoe', teams: false });
    const { directory } = core();
    const sync = new DirectorySync({ client: real, directory, config: config.directory, logger: silentLogger() });
    const r = await sync.fullSync();
    t.ok(directory.get('chiara')?.teams?.userId, 'Warning (grace period) is a usable licence');
    t.equal(directory.get('dmitri')?.teams, undefined);
    t.same(r.unmatchedPersons.sort(), ['dmitri', 'zoe']);
    const why = new Map(r.excluded.map((x) => [x.personId, x.reason]));
    t.match(why.get('dmitri'), /^Teams user dmitri@contoso\.example has its Teams service plan Suspended; filtered out by graph\.directory\.teamsLicensedOnly/);
    t.match(why.get('zoe'), /^Teams user zoe@contoso\.example has no Teams service plan/);
    e.sim.control.user('chiara').assignedPlans[0]!.capabilityStatus = 'Enabled';
    e.sim.control.user('dmitri').assignedPlans[0]!.capabilityStatus = 'Enabled';
    e.sim.control.removeUser('zoe');
  });

  await t.test('a person nobody in Teams matches is told so', async (t) => {
    const { directory } = core();
    const sync = new DirectorySync({ client: real, directory, config: config.directory, logger: silentLogger() });
    const r = await sync.fullSync();
    t.same(r.excluded, [{ personId: 'zoe', reason: "no Teams user's mailNickname matches the person's id; fix either side or add a directory.static entry" }]);
  });

  await t.test('a user added while the full listing pages is in the first delta', async (t) => {
    const calls: string[] = [];
    let added = false;
    // the same client, watched: right after the first page of the listing answers, a user joins the tenant
    const client = new Proxy(real, {
      get(target, prop, receiver) {
        if (prop !== 'api') return Reflect.get(target, prop, receiver) as unknown;
        return (path: string) => {
          const request = target.api(path);
          const get = request.get.bind(request);
          request.get = async () => {
            const body: unknown = await get();
            calls.push(path.startsWith('/users/delta') ? 'delta' : 'list');
            if (path === '/users' && !added) {
              added = true;
              e.sim.control.addUser({ displayName: 'Zoe Nobody', userPrincipalName: 'zoe@contoso.example', mailNickname: 'zoe' });
            }
            return body;
          };
          return request;
        };
      },
    }) as Client;
    const { directory } = core();
    const sync = new DirectorySync({ client, directory, config: config.directory, logger: silentLogger() });
    const full = await sync.fullSync();
    t.same(calls, ['delta', 'list'], 'the delta link is taken first');
    t.same(full.unmatchedPersons, ['zoe'], 'the listing did not see her');
    const delta = await sync.deltaSync();
    t.equal(delta.mode, 'delta');
    t.ok(directory.get('zoe')?.teams?.userId, 'the first delta brought the user added during the listing');
  });
});
