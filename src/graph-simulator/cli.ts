#!/usr/bin/env node
/**
 * graph-sim: run the Microsoft Graph + Entra ID simulator, or act as a Teams
 * user against a running one.
 *
 *   graph-sim start [--port N] [--users file.(json|yaml)] [--ca-dir DIR] [--log-level LEVEL]
 *   graph-sim call|conference|hangup|present|stop-presenting|dnd|clear-dnd|away|brb|available|signin|signout <user>
 *   graph-sim presence|sessions <user>
 *   graph-sim users | counters | subscriptions
 *   graph-sim lifecycle <subscription-id> reauthorizationRequired|subscriptionRemoved|missed
 *   graph-sim approve <user-code> <upn> | deny <user-code>   (as the user at the device login page)
 *   graph-sim revoke <user> | mfa <account> on|off | device-codes
 * Control commands take [--url https://127.0.0.1:N] [--ca-dir DIR]; by default they find the
 * simulator that `start` recorded in the CA directory.
 */
import { existsSync, readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { userInputSchema } from './control-routes.js';
import type { TeamsAction } from './control.js';
import type { SimUserInput } from './model.js';
import { DEFAULT_SIM_DIR, startRecordedSimulator } from './recorded.js';
import { createLogger } from '../util/logger.js';

const DEFAULT_PORT = 9443;
const DEFAULT_CA_DIR = DEFAULT_SIM_DIR;

const ACTIONS: Record<string, TeamsAction> = {
  call: 'call',
  conference: 'conference',
  hangup: 'end-call',
  'end-call': 'end-call',
  present: 'present',
  'stop-presenting': 'stop-presenting',
  dnd: 'dnd',
  'clear-dnd': 'clear-dnd',
  away: 'away',
  brb: 'brb',
  available: 'available',
  signin: 'signin',
  signout: 'signout',
};

interface Args {
  positional: string[];
  flags: Map<string, string>;
}

function parseArgs(argv: string[]): Args {
  const positional: string[] = [];
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
      else {
        const next = argv[i + 1];
        if (next !== undefined && !next.startsWith('--')) {
          flags.set(a.slice(2), next);
          i++;
        } else flags.set(a.slice(2), 'true');
      }
    } else positional.push(a);
  }
  return { positional, flags };
}

function fail(message: string): never {
  process.stderr.write(`graph-sim: ${message}\n`);
  process.exit(2);
}

function loadUsers(file: string): SimUserInput[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    fail(`cannot read users file ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
  let data: unknown;
  try {
    data = /\.ya?ml$/i.test(file) ? parseYaml(text) : JSON.parse(text);
  } catch (error) {
    fail(`users file ${file} is not valid ${/\.ya?ml$/i.test(file) ? 'YAML' : 'JSON'}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const list = Array.isArray(data) ? data : typeof data === 'object' && data !== null && Array.isArray((data as { users?: unknown }).users) ? (data as { users: unknown[] }).users : undefined;
  if (!list) fail(`users file ${file}: expected a list of users (or { users: [...] })`);
  const r = z.array(userInputSchema).safeParse(list);
  if (!r.success) {
    const issue = r.error.issues[0];
    fail(`users file ${file}: users.${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'} (each user needs displayName and userPrincipalName)`);
  }
  return r.data as SimUserInput[];
}

async function start(args: Args): Promise<void> {
  const portText = args.flags.get('port');
  const port = portText === undefined ? DEFAULT_PORT : Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port must be 0..65535, not ${portText}`);
  const caDir = args.flags.get('ca-dir') ?? DEFAULT_CA_DIR;
  const usersFile = args.flags.get('users');
  const logger = createLogger({ level: args.flags.get('log-level') ?? 'info' });
  const { sim, caPath } = await startRecordedSimulator({
    dir: caDir,
    port,
    logger,
    ...(usersFile ? { users: loadUsers(usersFile) } : {}),
  });
  const lines = [
    'Graph simulator running',
    `  Graph base URL     ${sim.graphBaseUrl}`,
    `  Authority          ${sim.authorityUrl}   (msal knownAuthorities: ["${sim.host}"])`,
    `  Tenant             ${sim.tenantId} (${sim.tenantDomain})`,
    `  Demo app           client id ${sim.demoApp.clientId}`,
    `                     secret    ${sim.demoApp.clientSecret}`,
    `  Service account    ${sim.serviceAccount.username} / ${sim.serviceAccount.password}`,
    `  CA certificate     ${caPath}   (trust it, e.g. NODE_EXTRA_CA_CERTS=${caPath})`,
    `  Control API        ${sim.origin}/_sim   (graph-sim call|present|dnd|away|available|signout <user>)`,
    `  Device code        graph-sim approve <code> <upn> | deny <code>   (as the user at ${sim.origin}/devicelogin)`,
    `  Users              ${sim.control.listUsers().map((u) => u.mailNickname).join(', ')}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  const stop = (): void => {
    void sim.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

function controlTarget(args: Args): { origin: string; ca: string | undefined } {
  const caDir = args.flags.get('ca-dir') ?? DEFAULT_CA_DIR;
  const caPath = path.join(caDir, 'ca.pem');
  const ca = existsSync(caPath) ? readFileSync(caPath, 'utf8') : undefined;
  let origin = args.flags.get('url');
  if (!origin) {
    try {
      const info = JSON.parse(readFileSync(path.join(caDir, 'sim.json'), 'utf8')) as { origin?: unknown };
      if (typeof info.origin === 'string') origin = info.origin;
    } catch {
      // no record of a running simulator: the default port
    }
  }
  return { origin: (origin ?? `https://127.0.0.1:${DEFAULT_PORT}`).replace(/\/$/, ''), ca };
}

function call(target: { origin: string; ca: string | undefined }, method: string, pathName: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = https.request(
      `${target.origin}${pathName}`,
      {
        method,
        ...(target.ca ? { ca: target.ca } : {}),
        headers: payload ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) } : {},
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown = text;
          try {
            json = text ? JSON.parse(text) : null;
          } catch {
            // keep text
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(payload);
  });
}

async function control(command: string, args: Args): Promise<void> {
  const target = controlTarget(args);
  const [, a1, a2] = args.positional;
  let result: { status: number; json: unknown };
  try {
    const action = ACTIONS[command];
    if (action) {
      if (!a1) fail(`usage: graph-sim ${command} <user>`);
      result = await call(target, 'POST', `/_sim/users/${encodeURIComponent(a1)}/teams/${action}`);
    } else if (command === 'presence' || command === 'sessions') {
      if (!a1) fail(`usage: graph-sim ${command} <user>`);
      result = await call(target, 'GET', `/_sim/users/${encodeURIComponent(a1)}/${command}`);
    } else if (command === 'users' || command === 'counters' || command === 'subscriptions') {
      result = await call(target, 'GET', `/_sim/${command}`);
    } else if (command === 'meeting') {
      const minutes = Number(a2);
      if (!a1 || !a2 || !Number.isFinite(minutes) || minutes <= 0) fail('usage: graph-sim meeting <user> <minutes>');
      result = await call(target, 'POST', `/_sim/users/${encodeURIComponent(a1)}/meeting`, { minutes });
    } else if (command === 'approve') {
      if (!a1 || !a2) fail('usage: graph-sim approve <user-code> <user principal name>');
      result = await call(target, 'POST', `/_sim/device-codes/${encodeURIComponent(a1)}/approve`, { user: a2 });
    } else if (command === 'deny') {
      if (!a1) fail('usage: graph-sim deny <user-code>');
      result = await call(target, 'POST', `/_sim/device-codes/${encodeURIComponent(a1)}/deny`);
    } else if (command === 'device-codes') {
      result = await call(target, 'GET', '/_sim/device-codes');
    } else if (command === 'revoke') {
      if (!a1) fail('usage: graph-sim revoke <user>');
      result = await call(target, 'POST', `/_sim/users/${encodeURIComponent(a1)}/revoke-sessions`);
    } else if (command === 'mfa') {
      if (!a1 || (a2 !== 'on' && a2 !== 'off')) fail('usage: graph-sim mfa <account> on|off');
      result = await call(target, 'PATCH', `/_sim/service-accounts/${encodeURIComponent(a1)}`, { mfa: a2 === 'on' });
    } else if (command === 'lifecycle') {
      if (!a1 || !a2) fail('usage: graph-sim lifecycle <subscription-id> reauthorizationRequired|subscriptionRemoved|missed');
      result = await call(target, 'POST', `/_sim/subscriptions/${encodeURIComponent(a1)}/lifecycle`, { event: a2 });
    } else {
      fail(`unknown command '${command}'`);
    }
  } catch (error) {
    fail(`cannot reach the simulator at ${target.origin}: ${error instanceof Error ? error.message : String(error)} (is \`graph-sim start\` running?)`);
  }
  if (result.status >= 400) fail(`${result.status}: ${JSON.stringify(result.json)}`);
  const j = result.json as Record<string, unknown> | null;
  if (j && typeof j === 'object' && 'availability' in j) {
    process.stdout.write(`${a1}: ${String(j['availability'])} / ${String(j['activity'])} (sequence ${String(j['sequenceNumber'])})\n`);
  } else {
    process.stdout.write(`${JSON.stringify(result.json, null, 2)}\n`);
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const command = args.positional[0];
  if (!command || command === 'help' || args.flags.has('help')) {
    process.stdout.write(
      [
        'usage:',
        '  graph-sim start [--port N] [--users file] [--ca-dir DIR] [--log-level LEVEL]',
        '  graph-sim call|conference|hangup|present|stop-presenting|dnd|clear-dnd|away|brb|available|signin|signout <user>',
        '  graph-sim presence|sessions <user>',
        '  graph-sim meeting <user> <minutes>   (a busy calendar meeting from now; Teams shows InAMeeting)',
        '  graph-sim users|counters|subscriptions',
        '  graph-sim lifecycle <subscription-id> <event>',
        '  graph-sim approve <user-code> <upn> | deny <user-code> | device-codes',
        '  graph-sim revoke <user> | mfa <account> on|off',
        '  (control commands: [--url https://127.0.0.1:N] [--ca-dir DIR])',
        '',
      ].join('\n'),
    );
    return;
  }
  if (command === 'start') await start(args);
  else await control(command, args);
}

main().catch((error: unknown) => fail(error instanceof Error ? error.message : String(error)));
