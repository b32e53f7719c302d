/**
 * The shipped configurations and the README's trunk examples pass the real
 * loader (YAML, ${ENV} substitution, the full schema), and say what they claim.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import { ConfigError, loadConfigFile, parseConfig } from '../../src/config/loader.js';
import { effectiveAccessMode } from '../../src/trunks/config.js';
import { repoRoot } from '../helpers/gateway-process.js';

const root = repoRoot();

/** Values for every ${VAR} config/example.yaml uses (invented). */
const EXAMPLE_ENV = {
  SIP_DOMAIN: 'sip.contoso.example',
  TENANT_ID: 'contoso.onmicrosoft.com',
  CLIENT_ID: '3f2b8c1e-1111-4a2b-9c3d-5e6f7a8b9c0d',
  CLIENT_SECRET: 'not-a-real-secret',
  SVC1_PASSWORD: 'svc-password',
  CONSOLE_PASS: 'console-password',
  PBX_PASS: 'pbx-password',
  ADMIN_TOKEN: '0123456789abcdef0123456789abcdef',
  METRICS_TOKEN: 'fedcba9876543210fedcba9876543210',
};

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
}

t.test('config/example.yaml passes validation with every section filled in', async (t) => {
  const c = loadConfigFile(join(root, 'config/example.yaml'), EXAMPLE_ENV);
  t.same(c.sip.listen.map((l) => l.transport), ['udp', 'tcp', 'tls', 'wss']);
  t.same(c.trunks.map((tr) => [tr.name, tr.profile]), [
    ['pbx1', 'asterisk'],
    ['cucm', 'cisco'],
    ['presence', 'kamailio'],
  ]);
  t.same(c.trunks[2]!.users, { pattern: '^10\\d\\d$' }, 'the pattern survives YAML escaping');
  t.ok(new RegExp((c.trunks[2]!.users as { pattern: string }).pattern).test('1001'));
  t.same(c.trunks[1]!.users, ['anna', 'ben']);
  t.equal(c.trunks[0]!.credentials?.password, 'pbx-password', '${PBX_PASS} substituted');
  t.equal(effectiveAccessMode(c.sip.access, c.trunks), 'restricted');
  t.same(c.sip.access.trusted, ['192.168.10.0/24']);
  t.equal(c.sip.access.realm, 'sip.contoso.example');
  t.same(c.sip.watcherProfiles, [{ userAgent: '^Grandstream', profile: 'asterisk' }]);
  t.equal(c.lists.groups[0]?.uri, 'sip:reception@sip.contoso.example');
  t.equal(c.store.path, '/var/lib/presence-gateway/gateway.db');
  t.equal(c.admin?.token, EXAMPLE_ENV.ADMIN_TOKEN);
  t.equal(c.admin?.metricsToken, EXAMPLE_ENV.METRICS_TOKEN);
  t.ok(c.graph !== undefined, 'the Teams section is there too');
  t.equal(c.http.port, 8443, 'https on 8443, what the compose healthcheck probes');
  t.ok(c.http.tls !== undefined);
});

t.test('config/example.yaml names each missing variable instead of starting half-configured', async (t) => {
  const env: Record<string, string> = { ...EXAMPLE_ENV };
  delete env['PBX_PASS'];
  delete env['ADMIN_TOKEN'];
  const p = problems(() => loadConfigFile(join(root, 'config/example.yaml'), env));
  t.ok(p.some((x) => /^trunks\[0\]\.credentials\.password: environment variable PBX_PASS is not set/.test(x)), p.join('\n'));
  t.ok(p.some((x) => /^admin\.token: environment variable ADMIN_TOKEN is not set/.test(x)), p.join('\n'));
});

t.test('config/docker.yaml (compose demo) passes validation, with and without ADMIN_TOKEN', async (t) => {
  const file = join(root, 'config/docker.yaml');
  const c = loadConfigFile(file, {});
  t.ok(c.graphSimulator !== undefined, 'demo mode: the built-in Graph simulator');
  t.equal(c.graph, undefined);
  t.same(c.sip.listen.map((l) => `${l.transport} ${l.address}:${l.port}`), ['udp 127.0.0.1:5060', 'tcp 127.0.0.1:5060', 'ws 127.0.0.1:5066']);
  t.equal(c.http.address, '127.0.0.1', 'loopback only: the demo has a well-known token');
  t.equal(c.stateDir, '/var/lib/presence-gateway', 'the volume docker-compose.yml mounts');
  t.equal(c.store.path, '/var/lib/presence-gateway/gateway.db');
  t.equal(c.admin?.token, 'demo-admin-token-for-localhost-only');
  t.same(c.users.map((u) => u.extension), ['1001', '1002', '1003', '1004', '1005'], 'the people of the README demo');
  const compose = parseYaml(readFileSync(join(root, 'docker-compose.yml'), 'utf8')) as { services: { demo: { environment: Record<string, string> } } };
  const own = loadConfigFile(file, { ADMIN_TOKEN: 'b'.repeat(40) });
  t.equal(own.admin?.token, 'b'.repeat(40), 'ADMIN_TOKEN replaces the demo token');
  t.match(compose.services.demo.environment['ADMIN_TOKEN'], /^\$\{ADMIN_TOKEN:-demo-admin-token-for-localhost-only\}$/, 'compose passes the same default');
  const short = problems(() => loadConfigFile(file, { ADMIN_TOKEN: 'short' }));
  t.match(short[0], /^admin\.token: /, 'a too-short token is refused, not accepted');
});

/** Values for the per-node and Redis variables of config/cluster-example.yaml (invented). */
const CLUSTER_ENV = { ...EXAMPLE_ENV, REDIS_PASSWORD: 'redis-password', NODE_ID: 'gw-a', SIP_ADVERTISED_HOST: 'sip.contoso.example' };

t.test('every config/*.yaml passes the real loader', async (t) => {
  const files = readdirSync(join(root, 'config')).filter((f) => f.endsWith('.yaml')).sort();
  t.ok(files.includes('cluster-node-a.yaml') && files.includes('cluster-node-b.yaml') && files.includes('cluster-example.yaml'), files.join(' '));
  for (const f of files) t.same(problems(() => loadConfigFile(join(root, 'config', f), CLUSTER_ENV)), [], `config/${f}`);
});

t.test('config/cluster-node-a.yaml and -b.yaml: one service on one Redis, each node its own id and listeners', async (t) => {
  const [a, b] = (['a', 'b'] as const).map((n) => loadConfigFile(join(root, `config/cluster-node-${n}.yaml`), {}));
  if (a === undefined || b === undefined) throw new Error('unreachable');
  t.equal(a.store.redis?.url, 'redis://127.0.0.1:6379/0', 'the compose redis service on the host loopback');
  t.same(b.store.redis, a.store.redis, 'the same Redis and key prefix');
  t.equal(a.store.path, undefined);
  t.same([a.cluster.nodeId, b.cluster.nodeId], ['gw-a', 'gw-b']);
  t.same(a.sip.listen.map((l) => `${l.transport} ${l.address}:${l.port}`), ['udp 127.0.0.1:5070', 'tcp 127.0.0.1:5070']);
  t.same(b.sip.listen.map((l) => `${l.transport} ${l.address}:${l.port}`), ['udp 127.0.0.1:5072', 'tcp 127.0.0.1:5072']);
  t.same([a.http.address, a.http.port, b.http.address, b.http.port], ['127.0.0.1', 8081, '127.0.0.1', 8082]);
  t.equal(a.http.tls, undefined, 'plain http: the compose healthcheck URL is http://');
  t.ok(a.graph === undefined && a.graphSimulator === undefined, 'no tenant: SIP presence only');
  t.same(b.users, a.users, 'the same people on both nodes');
  t.same(b.lists, a.lists);
  t.same(b.subscriptions, a.subscriptions);
  t.same(a.users.map((u) => u.extension), ['1001', '1002', '1003', '1004', '1005'], 'the people of the README demo');
  t.equal(a.admin?.token, 'demo-admin-token-for-localhost-only');
  t.equal(loadConfigFile(join(root, 'config/cluster-node-a.yaml'), { ADMIN_TOKEN: 'c'.repeat(40) }).admin?.token, 'c'.repeat(40), 'ADMIN_TOKEN replaces it');
});

t.test('config/cluster-example.yaml: production nodes on a TLS Redis, per-node id and advertised host from the environment', async (t) => {
  const file = join(root, 'config/cluster-example.yaml');
  const a = loadConfigFile(file, CLUSTER_ENV);
  const b = loadConfigFile(file, { ...CLUSTER_ENV, NODE_ID: 'gw-b', SIP_ADVERTISED_HOST: 'gw-b.contoso.example' });
  t.equal(a.store.path, undefined, 'no SQLite file');
  t.match(a.store.redis?.url, /^rediss:\/\//, 'TLS to Redis');
  t.equal(a.store.redis?.password, 'redis-password', '${REDIS_PASSWORD}');
  t.ok(a.store.redis?.tls !== undefined);
  t.same([a.cluster.nodeId, b.cluster.nodeId], ['gw-a', 'gw-b']);
  t.same([a.sip.advertisedHost, b.sip.advertisedHost], ['sip.contoso.example', 'gw-b.contoso.example']);
  t.same(a.cluster, { ...b.cluster, nodeId: 'gw-a' }, 'the same timings on every node');
  t.ok(a.sip.listen.every((l) => l.address === '0.0.0.0'), 'bound to every address (a standby cannot bind the floating one)');
  t.ok(a.graph !== undefined, 'the Teams section is there');
  t.equal(a.graph?.webhook?.publicUrl, b.graph?.webhook?.publicUrl, 'one webhook URL for the service');
  const p = problems(() => loadConfigFile(file, { ...CLUSTER_ENV, NODE_ID: 'gw a' }));
  t.match(p[0], /^cluster\.nodeId: /, 'a node id with a space is refused');
  const noId = { ...CLUSTER_ENV } as Record<string, string>;
  delete noId['NODE_ID'];
  t.ok(problems(() => loadConfigFile(file, noId)).some((x) => /NODE_ID is not set/.test(x)), 'a missing NODE_ID is named');
});

/** The ```yaml blocks of one README section. */
function readmeYamlBlocks(heading: string): Array<{ subsection: string; yaml: string }> {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const start = readme.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`README has no "## ${heading}" section`);
  const end = readme.indexOf('\n## ', start + 4);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const out: Array<{ subsection: string; yaml: string }> = [];
  let subsection = '';
  const re = /\n### ([^\n]+)|\n```yaml\n([\s\S]*?)\n```/g;
  for (const m of section.matchAll(re)) {
    if (m[1] !== undefined) subsection = m[1];
    else out.push({ subsection, yaml: m[2]! });
  }
  return out;
}

t.test('README: one trunks example per PBX family, each valid for the real loader', async (t) => {
  const blocks = readmeYamlBlocks('PBX and presence server trunks');
  t.same(
    blocks.map((b) => b.subsection),
    ['Asterisk and FreePBX (res_pjsip)', 'Cisco CUCM', 'Kamailio and OpenSIPS (presence server)', 'Other PBXs and presence servers (generic)'],
  );
  const profiles: string[] = [];
  for (const { subsection, yaml } of blocks) {
    const text = `${yaml}\nusers:\n  - { id: anna, displayName: Anna, extension: "1001" }\n  - { id: ben, displayName: Ben, extension: "2002" }\n`;
    let config;
    try {
      config = parseConfig(text, `README ${subsection}`, { PBX_PASS: 'x' });
    } catch (err) {
      t.fail(`${subsection}: ${err instanceof Error ? err.message : String(err)}`);
      continue;
    }
    t.equal(config.trunks.length, 1, `${subsection}: one trunk`);
    profiles.push(config.trunks[0]!.profile);
  }
  t.same(profiles, ['asterisk', 'cisco', 'kamailio', 'generic']);
});

t.test('README: the Cisco example pattern selects four-digit 2xxx/3xxx extensions', async (t) => {
  const cisco = readmeYamlBlocks('PBX and presence server trunks').find((b) => b.subsection === 'Cisco CUCM');
  const c = parseConfig(`${cisco?.yaml ?? ''}\nusers: []\n`);
  const pattern = new RegExp((c.trunks[0]!.users as { pattern: string }).pattern);
  t.ok(pattern.test('2002'));
  t.notOk(pattern.test('1001'));
  t.notOk(pattern.test('20021'));
});

t.test('README: the cluster example is valid for the real loader and says what the section says', async (t) => {
  const blocks = readmeYamlBlocks('Several gateways as one service (Redis)');
  t.equal(blocks.length, 1, 'one yaml block');
  const c = parseConfig(`${blocks[0]?.yaml ?? ''}\nusers: []\n`, 'README cluster', { REDIS_PASSWORD: 'secret' });
  t.match(c.store.redis?.url, /^redis:\/\/[^/]+:6379\/0$/);
  t.equal(c.store.redis?.password, 'secret');
  t.equal(c.store.path, undefined);
  t.equal(c.cluster.nodeId, 'gw-a');
  t.same([c.cluster.heartbeatMs, c.cluster.nodeTtlMs, c.cluster.leaseTtlMs], [1000, 5000, 5000], 'the defaults the comment names');
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  t.notMatch(readme, /not (used|use it) yet/i, 'no text left saying Redis is unused');
});
