/**
 * The shipped configurations and the README's trunk examples pass the real
 * loader (YAML, ${ENV} substitution, the full schema), and say what they claim.
 */
import { readFileSync } from 'node:fs';
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
