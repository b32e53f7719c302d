import { resolve } from 'node:path';
import t from 'tap';
import { resolveStorePath, storeConfigSchema } from '../../src/config/store.js';

t.test('defaults: 50 ms batches, gateway.db in the state directory', async (t) => {
  const c = storeConfigSchema.parse(undefined);
  t.equal(c.flushMs, 50);
  t.equal(c.path, undefined);
  t.equal(resolveStorePath(c, 'data'), resolve('data', 'gateway.db'));
  t.equal(resolveStorePath(c, '/var/lib/pg'), '/var/lib/pg/gateway.db');
});

t.test('a configured path wins; ":memory:" is kept as is', async (t) => {
  t.equal(resolveStorePath(storeConfigSchema.parse({ path: '/srv/gw/state.db' }), 'data'), '/srv/gw/state.db');
  t.equal(resolveStorePath(storeConfigSchema.parse({ path: ':memory:' }), 'data'), ':memory:');
});

t.test('bad values are refused with what is expected', async (t) => {
  const flush = storeConfigSchema.safeParse({ flushMs: 0 });
  t.equal(flush.success, false);
  t.match(flush.error?.issues[0]?.message, /milliseconds from 1 to 10000/);
  const dir = storeConfigSchema.safeParse({ path: 'data/' });
  t.equal(dir.success, false);
  t.match(dir.error?.issues[0]?.message, /not a directory/);
  const unknown = storeConfigSchema.safeParse({ file: 'x.db' });
  t.equal(unknown.success, false);
});
