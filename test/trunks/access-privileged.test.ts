import t from 'tap';
import { accessSchema } from '../../src/trunks/config.js';
import { AccessControl } from '../../src/trunks/access.js';
import { silentLogger } from '../../src/util/logger.js';

t.test('trusted networks and admin digest users are told apart (presence.winfo authorisation)', async (t) => {
  const config = accessSchema.parse({
    trusted: ['192.168.10.0/24'],
    users: [{ username: 'op', password: 'x', admin: true }, { username: 'console1', password: 'y' }],
  });
  t.equal(config.users[1]!.admin, undefined, 'not an admin unless said');
  const access = new AccessControl({ registry: { fromSource: () => undefined }, config, logger: silentLogger() });
  t.ok(access.isTrusted('192.168.10.7'));
  t.notOk(access.isTrusted('203.0.113.9'));
  t.ok(access.isAdmin('op'));
  t.notOk(access.isAdmin('console1'));
  t.notOk(access.isAdmin(undefined));
  t.throws(() => accessSchema.parse({ users: [{ username: 'a', password: 'b', admin: 'yes' }] }));
});
