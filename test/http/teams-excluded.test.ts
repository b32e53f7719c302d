import t from 'tap';
import Fastify from 'fastify';
import { adminApi } from '../../src/http/admin.js';
import type { UserRow } from '../../src/http/rows.js';
import { fakeSource, TOKEN } from './fake-source.js';

t.test('a person without a Teams identity shows why in the admin rows', async (t) => {
  const src = fakeSource();
  const reasons = new Map([['chiara', 'Teams user chiara@contoso.test has its Teams service plan Suspended; filtered out by graph.directory.teamsLicensedOnly']]);
  src.teamsExcluded = (id) => reasons.get(id);
  const app = Fastify();
  await app.register(adminApi, { prefix: '/api', source: src, token: TOKEN });
  await app.ready();
  t.teardown(async () => {
    await app.close();
    src.close();
  });
  const res = await app.inject({ url: '/api/users', headers: { authorization: `Bearer ${TOKEN}` } });
  t.equal(res.statusCode, 200);
  const rows = res.json() as UserRow[] | { users: UserRow[] };
  const list = Array.isArray(rows) ? rows : rows.users;
  const chiara = list.find((r) => r.id === 'chiara');
  t.equal(chiara?.teams, null);
  t.equal(chiara?.teamsExcluded, reasons.get('chiara'));
  t.equal(list.find((r) => r.id === 'anna')?.teamsExcluded, undefined, 'mapped people carry no reason');
});
