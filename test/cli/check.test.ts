import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../src/cli.js';
import { checkConfigFile } from '../../src/cli/check.js';
import { repoRoot } from '../helpers/gateway-process.js';

function io(env: Record<string, string | undefined> = {}, cwd?: string) {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { out: (s: string) => out.push(s), err: (s: string) => err.push(s), env, ...(cwd !== undefined ? { cwd } : {}) },
    out: () => out.join(''),
    err: () => err.join(''),
  };
}

const GOOD = `
sip:
  listen: [{ transport: udp, address: 127.0.0.1, port: 5060 }]
  domain: example.com
admin:
  token: \${ADMIN_TOKEN}
stateDir: state
users:
  - { id: anna, displayName: Anna Meier, extension: "1001" }
  - { id: ben, displayName: Ben Okafor, extension: "1002" }
lists:
  groups:
    - { name: team, uri: "sip:team@example.com", members: [anna, ben] }
`;

const BAD = `
sip:
  listen: [{ transport: tcp, address: not-an-ip, port: 70000 }]
users:
  - { id: anna, displayName: Anna, extension: "1001" }
  - { id: anna, displayName: Anna again, extension: "1001" }
admin: { token: short }
mapping: { prefer: nobody }
colour: blue
`;

t.test('check: a valid file prints a summary and exits 0', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pg-cli-check-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'good.yaml'), GOOD);
  const r = io({ ADMIN_TOKEN: 'a'.repeat(32) }, dir);
  t.equal(await runCli(['check', 'good.yaml'], r.io), 0);
  t.match(r.out(), /configuration is valid/);
  t.match(r.out(), /users: 2/);
  t.match(r.out(), /trunks: 0/);
  t.match(r.out(), /lists: 1/);
  t.match(r.out(), /graph: none \(SIP only\)/);
  t.match(r.out(), /admin API on/);
  t.equal(r.err(), '');
});

t.test('check: every problem of a bad file, with its path and the fix; exit 1', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pg-cli-check-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'bad.yaml'), BAD);
  const r = io({}, dir);
  t.equal(await runCli(['check', 'bad.yaml'], r.io), 1);
  const text = r.err();
  t.match(text, /bad\.yaml: \d+ problems/);
  t.match(text, /sip\.listen\[0\]\.address: .*IPv4 or IPv6 address/);
  t.match(text, /sip\.listen\[0\]\.port: .*0 to 65535 \(got 70000\)/);
  t.match(text, /admin\.token: .*openssl rand -hex 24/, 'the fix is named');
  t.match(text, /mapping\.prefer: .*telephony, teams/);
  t.match(text, /unknown key "colour"/);
  t.equal(r.out(), '');

  // checks across entries (duplicates) run once every entry is valid on its own
  await writeFile(join(dir, 'dup.yaml'), 'users:\n  - { id: anna, displayName: Anna, extension: "1001" }\n  - { id: anna, displayName: Anna again, extension: "1001" }\n');
  const d = io({}, dir);
  t.equal(await runCli(['check', 'dup.yaml'], d.io), 1);
  t.match(d.err(), /users\[1\]\.id: duplicate id "anna" \(also users\[0\]\)/);
  t.match(d.err(), /users\[1\]\.extension: extension 1001 is already users\[0\]'s/);
});

t.test('check: an unset ${ENV}, YAML syntax, unreadable files', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pg-cli-check-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'good.yaml'), GOOD);
  const env = checkConfigFile('good.yaml', {}, dir);
  t.equal(env.ok, false);
  t.match(env.problems.join('\n'), /admin\.token: environment variable ADMIN_TOKEN is not set/);

  await writeFile(join(dir, 'syntax.yaml'), 'sip: [unclosed\n');
  const syntax = checkConfigFile('syntax.yaml', {}, dir);
  t.equal(syntax.ok, false);
  t.match(syntax.problems[0], /line \d+, column \d+: .*fix the YAML syntax/);

  await writeFile(join(dir, 'tls.yaml'), GOOD.replace('stateDir: state', 'stateDir: state\nhttp: { tls: { certPath: missing-cert.pem, keyPath: key.pem } }'));
  await writeFile(join(dir, 'key.pem'), 'not checked for content');
  const tls = checkConfigFile('tls.yaml', { ADMIN_TOKEN: 'a'.repeat(32) }, dir);
  t.equal(tls.ok, false);
  t.same(tls.problems.length, 1, 'only the missing file');
  t.match(tls.problems[0], /^http\.tls\.certPath: missing-cert\.pem does not exist \(give the path of a readable PEM certificate/);

  const missing = checkConfigFile('nope.yaml', {}, dir);
  t.equal(missing.ok, false);
  t.match(missing.problems[0], /cannot read the file \(ENOENT\)/);
});

t.test('usage errors exit 2; --help exits 0', async (t) => {
  const a = io();
  t.equal(await runCli([], a.io), 2);
  t.match(a.err(), /no command given/);
  const b = io();
  t.equal(await runCli(['frobnicate'], b.io), 2);
  t.match(b.err(), /unknown command "frobnicate"/);
  const c = io();
  t.equal(await runCli(['users'], c.io), 2, 'no token');
  t.match(c.err(), /no admin token: pass --token or set PRESENCE_GATEWAY_TOKEN/);
  const d = io();
  t.equal(await runCli(['check'], d.io), 2);
  t.match(d.err(), /check needs exactly one configuration file/);
  const e = io();
  t.equal(await runCli(['--help'], e.io), 0);
  t.match(e.out(), /usage: presence-gateway-cli/);
});

t.test('the command as a process: check the demo config', async (t) => {
  const root = repoRoot();
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src', 'cli.ts'), 'check', join(root, 'config', 'demo.yaml')], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
  });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /configuration is valid/);
  t.match(r.stdout, /users: 5/);
  t.match(r.stdout, /graph: built-in simulator \(demo\)/);
});
