/**
 * End-to-end Teams fixtures: the Graph simulator in this process (over https,
 * its CA made here), and the gateway as a child process configured with a
 * real-tenant-style `graph:` section pointing at that simulator. The gateway's
 * webhook certificate comes from the same CA, which the simulator trusts for
 * delivery the way Graph trusts public CAs.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCertificateAuthority, createServerCertificate, type CertificateWithKey } from '../../src/graph-simulator/certs.js';
import { startGraphSimulator, type GraphSimulator, type GraphSimulatorOptions, type SessionInfo } from '../../src/graph-simulator/index.js';
import { deepMerge, DEFAULT_DOMAIN, startGateway, type GatewayProcess, type GatewayUser, type LogRecord } from './gateway-process.js';
import { freePort } from './ports.js';
import { assertSippInstalled, describeSipp, runSipp, type TapHooks, startSipp, type SippOptions, type SippResult, type SippRun, type SippTransport } from './sipp.js';

/** The simulator's seeded Teams users, as gateway people (AoR user part = UPN without domain). */
export const TEAMS_USERS: GatewayUser[] = [
  { id: 'anna', displayName: 'Anna Meier', extension: '1001', sip: [`sip:anna@${DEFAULT_DOMAIN}`] },
  { id: 'ben', displayName: 'Ben Okafor', extension: '1002', sip: [`sip:ben@${DEFAULT_DOMAIN}`] },
  { id: 'chiara', displayName: 'Chiara Rossi', extension: '1003', sip: [`sip:chiara@${DEFAULT_DOMAIN}`] },
  { id: 'dmitri', displayName: 'Dmitri Volkov', extension: '1004', sip: [`sip:dmitri@${DEFAULT_DOMAIN}`] },
  { id: 'elif', displayName: 'Elif Yilmaz', extension: '1005', sip: [`sip:elif@${DEFAULT_DOMAIN}`] },
];

export interface TeamsEnv {
  sim: GraphSimulator;
  /** temp folder holding ca.pem, webhook.pem, webhook-key.pem */
  dir: string;
  caPath: string;
  certPath: string;
  keyPath: string;
  /** a fresh, empty state directory inside `dir` */
  newStateDir(): Promise<string>;
  close(): Promise<void>;
}

let sharedCa: CertificateWithKey | undefined;

/** One CA per test process (RSA key generation is slow). */
export function teamsTestCa(): CertificateWithKey {
  sharedCa ??= createCertificateAuthority('teams e2e tests CA');
  return sharedCa;
}

/** Start the simulator with the test CA (so it trusts the gateway's webhook certificate) and write the PEM files. */
export async function startTeamsEnv(options: GraphSimulatorOptions = {}): Promise<TeamsEnv> {
  const ca = teamsTestCa();
  const sim = await startGraphSimulator({ ca, webhookCa: [ca.certPem], ...options });
  const dir = await mkdtemp(join(tmpdir(), 'pg-teams-'));
  const caPath = join(dir, 'ca.pem');
  const certPath = join(dir, 'webhook.pem');
  const keyPath = join(dir, 'webhook-key.pem');
  const cert = createServerCertificate(ca);
  await writeFile(caPath, sim.caPem);
  await writeFile(certPath, cert.certPem);
  await writeFile(keyPath, cert.keyPem, { mode: 0o600 });
  let n = 0;
  return {
    sim,
    dir,
    caPath,
    certPath,
    keyPath,
    async newStateDir() {
      const d = join(dir, `state-${++n}`);
      await rm(d, { recursive: true, force: true });
      return d;
    },
    async close() {
      await sim.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface TeamsGatewayOptions {
  stateDir: string;
  /** the gateway's https port (default: a free one) */
  httpPort?: number;
  /** the notification URL given to Graph (default https://127.0.0.1:<httpPort>/graph/notifications) */
  webhookUrl?: string;
  pollIntervalSec?: number;
  transports?: ReadonlyArray<'udp' | 'tcp'>;
  /** extra keys deep-merged into `graph:` */
  graph?: Record<string, unknown>;
  /** other config sections (trunks, sip.listen, admin, ...), deep-merged last */
  overrides?: Record<string, unknown>;
  readyTimeoutMs?: number;
}

export interface TeamsGateway {
  gw: GatewayProcess;
  httpPort: number;
}

/** A real-tenant-style `graph:` section pointing at the simulator of `env`, notifications to `webhookUrl`. */
export function simulatorGraphConfig(env: TeamsEnv, webhookUrl: string, pollIntervalSec = 5): Record<string, unknown> {
  const sim = env.sim;
  return {
    tenantId: sim.tenantId,
    clientId: sim.demoApp.clientId,
    clientSecret: sim.demoApp.clientSecret,
    authorityHost: sim.origin,
    graphBaseUrl: sim.graphBaseUrl,
    trustedCaPath: env.caPath,
    serviceAccounts: [{ username: sim.serviceAccount.username, password: sim.serviceAccount.password }],
    // clientState left to its default (random per start): a reused subscription keeps the stored one
    webhook: { publicUrl: webhookUrl },
    poll: { intervalSec: pollIntervalSec },
  };
}

/** Start the gateway process against the simulator of `env`. */
export async function startTeamsGateway(env: TeamsEnv, options: TeamsGatewayOptions): Promise<TeamsGateway> {
  const httpPort = options.httpPort ?? (await freePort());
  const graph: Record<string, unknown> = {
    ...simulatorGraphConfig(env, options.webhookUrl ?? `https://127.0.0.1:${httpPort}/graph/notifications`, options.pollIntervalSec ?? 5),
    ...(options.graph ?? {}),
  };
  const gw = await startGateway({
    users: TEAMS_USERS,
    ...(options.transports !== undefined ? { transports: options.transports } : {}),
    readyTimeoutMs: options.readyTimeoutMs ?? 30_000,
    overrides: deepMerge(
      {
        http: { address: '127.0.0.1', port: httpPort, tls: { certPath: env.certPath, keyPath: env.keyPath } },
        graph,
        stateDir: options.stateDir,
      },
      options.overrides ?? {},
    ),
  });
  return { gw, httpPort };
}

/** Poll `read` until `ok` holds; returns the last value, throws with it after timeoutMs. */
export async function eventually<T>(read: () => T, ok: (value: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = read();
    if (ok(v)) return v;
    if (Date.now() > until) throw new Error(`${what}: not within ${timeoutMs} ms (last: ${JSON.stringify(v)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The gateway's own app session of a user in the simulator (session id = the app's client id). */
export function appSession(sim: GraphSimulator, user: string): SessionInfo | undefined {
  return sim.control.sessions(user).find((s) => s.sessionId === sim.demoApp.clientId);
}

/** Log records at warn (40) or above. */
export function warnRecords(gw: GatewayProcess): LogRecord[] {
  return gw.records().filter((r) => typeof r['level'] === 'number' && r['level'] >= 40);
}

/** A SIPp watcher (sip-fixtures/scenarios/teams-watch.xml) that answers NOTIFYs until killed. */
export interface TeamsWatcher {
  run: SippRun;
  /** its "notify otp=... dialog=... sub=..." lines so far */
  lines(): string[];
  /** Resolves with the index of the first line after `from` that `match` accepts. */
  waitFor(match: (line: string) => boolean, timeoutMs: number, what: string, from?: number): Promise<number>;
  /** Kill SIPp and return its result. */
  stop(): Promise<SippResult>;
}

export const isOnThePhone = (l: string): boolean => l.includes('otp=on-the-phone');
export const isIdlePresence = (l: string): boolean => l.startsWith('notify otp= ');
export const isConfirmedDialog = (l: string): boolean => l.includes('dialog=confirmed');
export const hasNoLiveDialog = (l: string): boolean => / dialog=(terminated)? /.test(l);

export async function startWatcher(
  port: number,
  transport: SippTransport,
  service: string,
  event: 'presence' | 'dialog',
): Promise<TeamsWatcher> {
  const run = await startSipp({
    scenario: 'teams-watch',
    gatewayPort: port,
    transport,
    service,
    traceLogs: true,
    timeoutSec: 120,
    vars: { event, accept: event === 'presence' ? 'application/pidf+xml' : 'application/dialog-info+xml' },
  });
  const lines = (): string[] => run.logLines().filter((l) => l.startsWith('notify '));
  return {
    run,
    lines,
    async waitFor(match, timeoutMs, what, from = -1) {
      const found = await eventually(
        () => lines().findIndex((l, i) => i > from && match(l)),
        (i) => i >= 0,
        timeoutMs,
        `${event} watcher of ${service}: ${what}`,
      ).catch((err: unknown) => {
        throw new Error(`${err instanceof Error ? err.message : String(err)}; lines: ${JSON.stringify(lines())}`);
      });
      return found;
    },
    async stop() {
      run.kill();
      return run.done;
    },
  };
}

/** Run a publishing scenario and return the SIP-ETag it logged. */
export async function publishForEtag(
  options: Pick<SippOptions, 'scenario' | 'gatewayPort' | 'transport' | 'service' | 'vars'>,
): Promise<{ etag: string; result: SippResult }> {
  const result = await runSipp({ ...options, traceLogs: true, timeoutSec: 15 });
  const line = (result.logs ?? []).find((l) => l.startsWith('etag '));
  const etag = line?.slice('etag '.length).trim() ?? '';
  if (result.code !== 0 || etag === '') throw new Error(`${options.scenario} failed:\n${describeSipp(result)}`);
  return { etag, result };
}

/**
 * One simulator and one gateway process for a whole test file: started in
 * `before` (after checking SIPp is there), stopped in `teardown`. `options`
 * may be computed once the simulator runs (e.g. a port to leave unbound).
 */
export function teamsFixture(
  tap: TapHooks,
  options: Omit<TeamsGatewayOptions, 'stateDir'> | (() => Promise<Omit<TeamsGatewayOptions, 'stateDir'>>) = {},
): { env: () => TeamsEnv; gw: () => GatewayProcess } {
  let env: TeamsEnv | undefined;
  let gateway: GatewayProcess | undefined;
  tap.before(async () => {
    assertSippInstalled();
    env = await startTeamsEnv();
    const extra = typeof options === 'function' ? await options() : options;
    gateway = (await startTeamsGateway(env, { ...extra, stateDir: await env.newStateDir() })).gw;
  });
  tap.teardown(async () => {
    await gateway?.stop();
    await env?.close();
  });
  return {
    env: () => {
      if (env === undefined) throw new Error('simulator not started');
      return env;
    },
    gw: () => {
      if (gateway === undefined) throw new Error('gateway not started');
      return gateway;
    },
  };
}
