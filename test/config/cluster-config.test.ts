/**
 * store.redis and the cluster section: defaults, and every refusal naming
 * its path and the fix.
 */
import { hostname } from 'node:os';
import t from 'tap';
import { resolveNodeId } from '../../src/config/cluster.js';
import { parseConfig } from '../../src/config/loader.js';
import { configProblems as problems } from '../helpers/config-problems.js';

t.test('store.redis: the URL alone, with the defaults', async (t) => {
  const c = parseConfig('store:\n  redis:\n    url: redis://127.0.0.1:6379/0\n');
  t.same(c.store.redis, { url: 'redis://127.0.0.1:6379/0', keyPrefix: 'pg:' });
  t.equal(c.store.path, undefined);
  const tls = parseConfig('store:\n  redis:\n    url: rediss://:pw@redis.example:6380/2\n    password: ${P}\n    tls: { caPath: /etc/ca.pem }\n', 'x.yaml', { P: 'secret' });
  t.same(tls.store.redis?.tls, { caPath: '/etc/ca.pem', rejectUnauthorized: true });
  t.equal(tls.store.redis?.password, 'secret');
  t.equal(parseConfig('').store.redis, undefined, 'SQLite stays the default');
});

t.test('store.path and store.redis together are refused, naming both', async (t) => {
  const p = problems(() => parseConfig('store:\n  path: data/gw.db\n  redis:\n    url: redis://127.0.0.1:6379/0\n'));
  t.equal(p.length, 1);
  t.match(p[0], /^store\.redis: store\.path \(SQLite\) and store\.redis are both set.*remove store\.path/);
});

t.test('store.redis: a bad URL, a lone client certificate, a glob in the prefix', async (t) => {
  t.match(problems(() => parseConfig('store:\n  redis:\n    url: http://127.0.0.1:6379\n'))[0], /^store\.redis\.url: .*redis:\/\/127\.0\.0\.1:6379\/0/);
  t.match(problems(() => parseConfig('store:\n  redis: {}\n'))[0], /^store\.redis\.url: /);
  t.match(problems(() => parseConfig('store:\n  redis:\n    url: redis://h/0\n    tls: { certPath: /c.pem }\n'))[0], /^store\.redis\.tls\.keyPath: a client certificate needs both certPath and keyPath/);
  t.match(problems(() => parseConfig('store:\n  redis:\n    url: redis://h/0\n    keyPrefix: "pg*"\n'))[0], /^store\.redis\.keyPrefix: .*no glob characters/);
  t.match(problems(() => parseConfig('store:\n  redis:\n    url: redis://h/0\n    tls: { rejectUnauthorized: nope }\n'))[0], /^store\.redis\.tls\.rejectUnauthorized: /);
});

t.test('cluster: defaults, and the node id from host and pid', async (t) => {
  const c = parseConfig('');
  t.same(c.cluster, { heartbeatMs: 1000, nodeTtlMs: 5000, leaseTtlMs: 5000 });
  t.equal(resolveNodeId(c.cluster), `${hostname().replace(/[^A-Za-z0-9._-]/g, '_')}-${process.pid}`);
  t.equal(resolveNodeId(parseConfig('cluster:\n  nodeId: gw-a\n').cluster), 'gw-a');
});

t.test('cluster: TTLs of at most two heartbeats, a bad node id, an unknown key', async (t) => {
  const p = problems(() => parseConfig('cluster:\n  heartbeatMs: 2000\n  nodeTtlMs: 4000\n  leaseTtlMs: 3000\n'));
  t.equal(p.length, 2);
  t.match(p[0], /^cluster\.nodeTtlMs: 4000 is not more than twice heartbeatMs \(2000\): set it above 4000/);
  t.match(p[1], /^cluster\.leaseTtlMs: 3000 is not more than twice heartbeatMs/);
  t.match(problems(() => parseConfig('cluster:\n  nodeId: "gw a"\n'))[0], /^cluster\.nodeId: expected letters, digits.*\(got "gw a"\)/);
  t.match(problems(() => parseConfig('cluster:\n  heartbeatMs: 0\n'))[0], /^cluster\.heartbeatMs: /);
  t.match(problems(() => parseConfig('cluster:\n  node: a\n'))[0], /^cluster: unknown key "node"/);
});
