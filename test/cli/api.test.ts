/**
 * The CLI's gateway commands against a real gateway process in demo mode
 * (built-in Graph simulator, https with the simulator's CA, admin.token set).
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../src/cli.js';
import { repoRoot, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { freePort } from '../helpers/ports.js';
import { TEAMS_USERS } from '../helpers/teams-gateway.js';

const TOKEN = 'cli-test-admin-token-0123456789abcdef';

let gw: GatewayProcess;
let dir: string;
let url: string;
let simOrigin: string;
let caPath: string;

t.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pg-cli-api-'));
  const httpPort = await freePort();
  const simPort = await freePort();
  gw = await startGateway({
    users: TEAMS_USERS,
    readyTimeoutMs: 30_000,
    overrides: {
      graphSimulator: { port: simPort, dir: join(dir, 'sim') },
      http: { address: '127.0.0.1', port: httpPort },
      admin: { token: TOKEN },
      stateDir: join(dir, 'state'),
    },
  });
  url = `https://127.0.0.1:${httpPort}`;
  simOrigin = `https://127.0.0.1:${simPort}`;
  caPath = join(dir, 'sim', 'ca.pem');
});

t.teardown(async () => {
  await gw?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, { out: (s) => out.push(s), err: (s) => err.push(s), env });
  return { code, out: out.join(''), err: err.join('') };
}

const api = (extra: string[] = []) => ['--url', url, '--ca', caPath, ...extra];

async function simPost(path: string): Promise<number> {
  const ca = await readFile(caPath, 'utf8');
  return new Promise((resolve, reject) => {
    const req = request(`${simOrigin}${path}`, { method: 'POST', ca, headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end('{}');
  });
}

async function eventually(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

t.test('users: every user with mapping and both states; a Teams call shows up', async (t) => {
  const r = await cli(['users', ...api(), '--token', TOKEN]);
  t.equal(r.code, 0, r.err);
  const lines = r.out.trim().split('\n');
  t.match(lines[0], /^ID\s+NAME\s+EXT\s+SIP\s+TEAMS UPN\s+TEAMS ID\s+TEAMS\s+TELEPHONY\s+WATCHERS SEE$/, 'a header');
  t.equal(lines.length, 1 + TEAMS_USERS.length, 'one line per user');
  for (const u of TEAMS_USERS) {
    const line = lines.find((l) => l.startsWith(`${u.id} `));
    t.ok(line !== undefined, `${u.id} is listed`);
    t.match(line, u.displayName!, 'with the name');
    t.match(line, ` ${u.extension} `, 'the extension');
    t.match(line, `sip:${u.id}@`, 'the AoR');
    t.match(line, new RegExp(`${u.id}@\\S+ +[0-9a-f-]{36}`), 'the Teams UPN and id');
  }
  t.match(lines.find((l) => l.startsWith('anna ')), / (Offline|Available) +- +available$/, 'Teams presence, no telephony, what watchers see');

  t.equal(await simPost('/_sim/users/anna/teams/call'), 200, 'a Teams call starts in the simulator');
  let last = '';
  await eventually(
    async () => {
      last = (await cli(['users', ...api()], { PRESENCE_GATEWAY_TOKEN: TOKEN })).out;
      return /^anna .*Busy\/InACall\s+-\s+on-the-phone$/m.test(last);
    },
    20_000,
    'anna on the phone',
  ).catch((err: unknown) => {
    throw new Error(`${String(err)}\n${last}`);
  });
  t.pass('the token from PRESENCE_GATEWAY_TOKEN works, and the call is seen');
  const json = await cli(['users', '--json', ...api()], { PRESENCE_GATEWAY_TOKEN: TOKEN });
  const parsed = JSON.parse(json.out) as { users: Array<{ id: string; watchersSee: { state: string } }> };
  t.equal(parsed.users.find((u) => u.id === 'anna')?.watchersSee.state, 'on-the-phone', '--json gives the API answer');
});

t.test('user <id>: detail and history; an unknown user is a clear error', async (t) => {
  const r = await cli(['user', 'anna', ...api(), '--token', TOKEN]);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /^Anna Meier \(anna\)/);
  t.match(r.out, /extension: +1001/);
  t.match(r.out, /Teams user: +anna@\S+ \([0-9a-f-]{36}\)/);
  t.match(r.out, /Teams presence: Busy\/InACall/);
  t.match(r.out, /watchers see: +on-the-phone/);
  t.match(r.out, /history \(oldest first, \d+\):\nTIME +STATE +SOURCE/);
  t.match(r.out, /on-the-phone +teams/, 'the history names the cause');

  const unknown = await cli(['user', 'zoe', ...api(), '--token', TOKEN]);
  t.equal(unknown.code, 1);
  t.match(unknown.err, /^error: no user "zoe"/);
});

t.test('resync <id> and trunks', async (t) => {
  const r = await cli(['resync', 'ben', ...api(), '--token', TOKEN]);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /^resync ben: done: Teams presence read again; current state sent to 0 watchers/);
  const trunks = await cli(['trunks', ...api(), '--token', TOKEN]);
  t.equal(trunks.code, 0, trunks.err);
  t.match(trunks.out, /no trunks configured/);
  t.match(trunks.out, /Graph subscriptions:\nACCOUNT +STATE +USERS/);
  t.match(trunks.out, /active +5 /, 'the demo service account covers the five users');
});

t.test('refusals: wrong token, unreachable, untrusted certificate', async (t) => {
  const wrong = await cli(['users', ...api(), '--token', 'not-the-admin-token-at-all-000000']);
  t.equal(wrong.code, 1);
  t.match(wrong.err, /the gateway refused the token \(401 Unauthorized: the token does not match admin\.token\)/);
  t.match(wrong.err, /--token or PRESENCE_GATEWAY_TOKEN/);
  t.equal(wrong.out, '');

  const port = await freePort();
  const down = await cli(['users', '--url', `https://127.0.0.1:${port}`, '--token', TOKEN]);
  t.equal(down.code, 1);
  t.match(down.err, /cannot reach the gateway at https:\/\/127\.0\.0\.1:\d+: connection refused/);

  const untrusted = await cli(['users', '--url', url, '--token', TOKEN]);
  t.equal(untrusted.code, 1);
  t.match(untrusted.err, /certificate .* is not trusted .*--ca <file>.*--insecure/);
  const insecure = await cli(['users', '--url', url, '--token', TOKEN, '--insecure']);
  t.equal(insecure.code, 0, '--insecure skips the check');
});

t.test('the command as a process', async (t) => {
  const root = repoRoot();
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src', 'cli.ts'), 'users', '--url', url, '--ca', caPath], {
    cwd: root,
    env: { ...process.env, PRESENCE_GATEWAY_TOKEN: 'wrong-token-wrong-token-wrong-token' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  child.stdout.resume();
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  t.equal(code, 1, 'exit status 1 for a refused token');
  t.match(err, /refused the token \(401/);
});
