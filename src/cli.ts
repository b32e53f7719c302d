#!/usr/bin/env node
/**
 * presence-gateway-cli: the administrator's tool beside the server. `check`
 * works offline on a configuration file; the other commands use the running
 * gateway's admin API (token from --token or PRESENCE_GATEWAY_TOKEN).
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { GraphAccountInfo, TrunkInfo, GraphSubscriptionInfo } from './http/admin-source.js';
import type { UserDetail, UserRow } from './http/rows.js';
import { AdminApiError, AdminClient } from './cli/admin-client.js';
import { checkConfigFile } from './cli/check.js';
import { graphSubscriptionsTable, trunksTable, userDetailText, usersTable } from './cli/format.js';

export const USAGE = `usage: presence-gateway-cli <command> [options]

commands:
  check <config.yaml>     validate a configuration file offline; lists every problem
  users                   users with their mapping, Teams presence and telephony state
  user <id>               one user's state and recent history
  resync <id>             read the user's Teams presence again and re-send the state to watchers
  trunks                  trunks and their state (and Graph subscriptions)
  signin <account>        sign a Graph service account in (device code): prints the code and the
                          URL to enter it at, then waits until the sign-in is done or failed

options for the gateway commands:
  --url URL               the gateway's HTTP side (default $PRESENCE_GATEWAY_URL or https://127.0.0.1:8443)
  --token TOKEN           admin.token of the gateway (default $PRESENCE_GATEWAY_TOKEN)
  --ca FILE               PEM CA that signed the gateway's certificate
  --insecure              do not check the gateway's certificate
  --json                  print the admin API's JSON instead of tables
  --help                  this text

exit status: 0 fine, 1 a problem (invalid config, refused token, unreachable, unknown user), 2 bad usage
`;

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  env: Readonly<Record<string, string | undefined>>;
  cwd?: string;
  /** how often `signin` asks how the sign-in is going (default 2 s) */
  signInPollMs?: number;
}

interface Parsed {
  command: string | undefined;
  args: string[];
  url?: string;
  token?: string;
  ca?: string;
  insecure: boolean;
  json: boolean;
  help: boolean;
}

class UsageError extends Error {}

const VALUED = new Set(['--url', '--token', '--ca']);

function parse(argv: readonly string[]): Parsed {
  const p: Parsed = { command: undefined, args: [], insecure: false, json: false, help: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (VALUED.has(name)) {
      const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined || v === '') throw new UsageError(`${name} needs a value`);
      if (name === '--url') p.url = v;
      else if (name === '--token') p.token = v;
      else p.ca = v;
    } else if (a === '--insecure' || a === '-k') p.insecure = true;
    else if (a === '--json') p.json = true;
    else if (a === '--help' || a === '-h') p.help = true;
    else if (a.startsWith('-')) throw new UsageError(`unknown option "${a}"`);
    else if (p.command === undefined) p.command = a;
    else p.args.push(a);
  }
  return p;
}

function oneArg(p: Parsed, what: string): string {
  if (p.args.length !== 1) throw new UsageError(`${p.command} needs exactly one ${what}`);
  return p.args[0]!;
}

function client(p: Parsed, io: CliIo): AdminClient {
  const token = p.token ?? io.env['PRESENCE_GATEWAY_TOKEN'];
  if (token === undefined || token === '') {
    throw new UsageError('no admin token: pass --token or set PRESENCE_GATEWAY_TOKEN (the gateway\'s admin.token)');
  }
  return new AdminClient({
    url: p.url ?? io.env['PRESENCE_GATEWAY_URL'] ?? 'https://127.0.0.1:8443',
    token,
    ...(p.ca !== undefined ? { caFile: p.ca } : {}),
    insecure: p.insecure,
  });
}

async function run(p: Parsed, io: CliIo): Promise<number> {
  switch (p.command) {
    case 'check': {
      const file = oneArg(p, 'configuration file');
      const r = checkConfigFile(file, io.env, io.cwd ?? process.cwd());
      if (!r.ok) {
        io.err(`${file}: ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}\n${r.problems.map((x) => `  - ${x}`).join('\n')}\n`);
        return 1;
      }
      io.out(r.summary.join('\n') + '\n');
      return 0;
    }
    case 'users': {
      if (p.args.length > 0) throw new UsageError('users takes no arguments');
      const r = await client(p, io).get<{ users: UserRow[] }>('/users');
      io.out(p.json ? JSON.stringify(r, null, 2) + '\n' : usersTable(r.users));
      return 0;
    }
    case 'user': {
      const id = oneArg(p, 'user id');
      const r = await client(p, io).get<UserDetail>(`/users/${encodeURIComponent(id)}`);
      io.out(p.json ? JSON.stringify(r, null, 2) + '\n' : userDetailText(r));
      return 0;
    }
    case 'resync': {
      const id = oneArg(p, 'user id');
      const r = await client(p, io).post<{ id: string; ok: boolean; detail: string }>(`/users/${encodeURIComponent(id)}/resync`);
      if (p.json) io.out(JSON.stringify(r, null, 2) + '\n');
      else (r.ok ? io.out : io.err)(`resync ${r.id}: ${r.ok ? 'done' : 'incomplete'}: ${r.detail}\n`);
      return r.ok ? 0 : 1;
    }
    case 'trunks': {
      if (p.args.length > 0) throw new UsageError('trunks takes no arguments');
      const c = client(p, io);
      const [t, g] = await Promise.all([
        c.get<{ trunks: TrunkInfo[] }>('/trunks'),
        c.get<{ configured: boolean; subscriptions: GraphSubscriptionInfo[] }>('/graph/subscriptions'),
      ]);
      if (p.json) io.out(JSON.stringify({ ...t, graph: g }, null, 2) + '\n');
      else io.out(trunksTable(t.trunks) + (g.configured ? `\nGraph subscriptions:\n${graphSubscriptionsTable(g.subscriptions)}` : ''));
      return 0;
    }
    case 'signin':
      return signIn(oneArg(p, 'service account (its user principal name)'), p, io);
    case undefined:
      throw new UsageError('no command given');
    default:
      throw new UsageError(`unknown command "${p.command}"`);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `signin <account>`: start the device-code sign-in, show the code, wait for the outcome. */
async function signIn(account: string, p: Parsed, io: CliIo): Promise<number> {
  const c = client(p, io);
  const started = await c.post<GraphAccountInfo>(`/graph/accounts/${encodeURIComponent(account)}/signin`);
  if (p.json) io.out(JSON.stringify(started, null, 2) + '\n');
  const prompt = started.prompt;
  if (prompt === undefined) {
    io.err(`signin ${account}: no code to enter: ${started.reason ?? started.state}\n`);
    return 1;
  }
  if (!p.json) {
    io.out(`To sign ${started.account} in, open ${prompt.verificationUri} and enter the code ${prompt.userCode}\n`);
    io.out(`(sign in as ${started.account}; the code expires ${new Date(prompt.expiresAt).toISOString()}). Waiting...\n`);
  }
  const deadline = prompt.expiresAt + 30_000;
  for (;;) {
    await sleep(io.signInPollMs ?? 2000);
    const r = await c.get<{ accounts: GraphAccountInfo[] }>('/graph/accounts');
    const now = r.accounts.find((a) => a.account.toLowerCase() === account.toLowerCase());
    if (now === undefined) {
      io.err(`signin ${account}: the gateway no longer lists the account\n`);
      return 1;
    }
    const same = now.prompt?.userCode === prompt.userCode;
    // signed in again, or (with a code) back on the earlier sign-in because this one failed
    if (now.state === 'signed-in' && !same && now.code === undefined) {
      if (!p.json) io.out(`signin ${now.account}: signed in\n`);
      return 0;
    }
    if (now.state !== 'signing-in' || (now.prompt !== undefined && !same)) {
      io.err(`signin ${now.account}: not signed in: ${now.reason ?? now.state}\n`);
      return 1;
    }
    if (Date.now() > deadline) {
      io.err(`signin ${now.account}: still waiting after the code expired; check the gateway's log\n`);
      return 1;
    }
  }
}

/** Run the tool; resolves with the exit status. Never throws. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const p = parse(argv);
    if (p.help) {
      io.out(USAGE);
      return 0;
    }
    return await run(p, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`${err.message}\n(presence-gateway-cli --help for usage)\n`);
      return 2;
    }
    if (err instanceof AdminApiError) {
      io.err(`error: ${err.message}\n`);
      return 1;
    }
    io.err(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  const code = await runCli(process.argv.slice(2), {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    env: process.env,
  });
  process.exitCode = code;
}
