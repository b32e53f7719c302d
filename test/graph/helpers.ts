/** Fixtures for the Graph side's tests: a simulator over https with its CA, the gateway's config, a webhook. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { Directory, type Person } from '../../src/core/directory.js';
import { PresenceHub } from '../../src/core/presence-hub.js';
import { createCertificateAuthority, createServerCertificate, type CertificateWithKey } from '../../src/graph-simulator/certs.js';
import { startGraphSimulator, type GraphSimulator, type GraphSimulatorOptions } from '../../src/graph-simulator/index.js';
import { parseGraphConfig, type GraphConfig, type GraphConfigInput } from '../../src/graph/config.js';
import { graphWebhookRoute } from '../../src/graph/webhook-route.js';
import type { WebhookHandlers } from '../../src/graph/webhook-handler.js';

let ca: CertificateWithKey | undefined;
let webhookCert: CertificateWithKey | undefined;

/** One CA per test process (RSA key generation is slow). */
export function testCa(): CertificateWithKey {
  ca ??= createCertificateAuthority('graph tests CA');
  return ca;
}

export const ANNA = 'a1000000-0000-4000-8000-000000001001';
export const BEN = 'a1000000-0000-4000-8000-000000001002';
export const CHIARA = 'a1000000-0000-4000-8000-000000001003';
export const DMITRI = 'a1000000-0000-4000-8000-000000001004';
export const ELIF = 'a1000000-0000-4000-8000-000000001005';
export const PRINTER = 'a1000000-0000-4000-8000-000000009001';

/** The gateway's people, as in the demo config (ids equal the Teams mail nicknames). */
export function people(): Person[] {
  const p = (id: string, name: string, ext: string): Person => ({ id, displayName: name, extension: ext, sipAors: [`sip:${id}@gw.example`] });
  return [
    p('anna', 'Anna Meier', '1001'),
    p('ben', 'Ben Okafor', '1002'),
    p('chiara', 'Chiara Rossi', '1003'),
    p('dmitri', 'Dmitri Volkov', '1004'),
    p('elif', 'Elif Yilmaz', '1005'),
    p('zoe', 'Zoe Nobody', '1099'),
  ];
}

export function core(persons: Person[] = people()): { directory: Directory; store: PresenceHub } {
  const directory = new Directory(persons, { domains: ['gw.example'] });
  return { directory, store: new PresenceHub(directory) };
}

/** Map the demo people to their Teams users directly (tests that are not about the directory sync). */
export function mapDemo(directory: Directory): void {
  directory.setTeamsIdentity('anna', { userId: ANNA });
  directory.setTeamsIdentity('ben', { userId: BEN });
  directory.setTeamsIdentity('chiara', { userId: CHIARA });
  directory.setTeamsIdentity('dmitri', { userId: DMITRI });
  directory.setTeamsIdentity('elif', { userId: ELIF });
}

export interface Env {
  sim: GraphSimulator;
  dir: string;
  caPath: string;
  /** a validated config pointing at the simulator */
  config(extra?: Partial<GraphConfigInput>): GraphConfig;
  close(): Promise<void>;
}

export async function env(options: GraphSimulatorOptions = {}): Promise<Env> {
  const sim = await startGraphSimulator({ ca: testCa(), webhookCa: [testCa().certPem], ...options });
  const dir = mkdtempSync(join(tmpdir(), 'graph-test-'));
  const caPath = join(dir, 'ca.pem');
  writeFileSync(caPath, sim.caPem);
  return {
    sim,
    dir,
    caPath,
    config: (extra = {}) =>
      parseGraphConfig({
        tenantId: sim.tenantId,
        clientId: sim.demoApp.clientId,
        clientSecret: sim.demoApp.clientSecret,
        authorityHost: sim.origin,
        graphBaseUrl: sim.graphBaseUrl,
        trustedCaPath: caPath,
        directory: { match: { sip: 'id', graph: 'mailNickname', stripDomain: false } },
        ...extra,
      }),
    async close() {
      await sim.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface WebhookServer {
  url: string;
  app: FastifyInstance;
  /** what the route serves; set once the gateway side exists */
  handlers: WebhookHandlers | undefined;
  /** raw notification bodies seen */
  bodies: unknown[];
  close(): Promise<void>;
}

/** The gateway's webhook route on https://127.0.0.1:<ephemeral>/graph/notify, certificate from the test CA. */
export async function webhookServer(): Promise<WebhookServer> {
  webhookCert ??= createServerCertificate(testCa());
  const app = Fastify({ https: { key: webhookCert.keyPem, cert: webhookCert.certPem }, logger: false, forceCloseConnections: true });
  const w: WebhookServer = {
    url: '',
    app,
    handlers: undefined,
    bodies: [],
    close: () => app.close(),
  };
  app.addHook('preHandler', async (request) => {
    if (request.body !== undefined) w.bodies.push(request.body);
  });
  await app.register(graphWebhookRoute, { path: '/graph/notify', handlers: () => w.handlers });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  w.url = `https://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}/graph/notify`;
  return w;
}

export async function waitFor(predicate: () => boolean, timeoutMs = 8000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > until) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The simulator and a webhook, torn down with `t`; a config subscribing through the simulator's service account. */
export async function subscribingEnv(
  t: { teardown(fn: () => unknown): void },
  clientState: string,
  extra: Partial<GraphConfigInput> = {},
  webhook: { richNotifications?: true } = {},
): Promise<{ e: Env; hook: WebhookServer; config: GraphConfig; count: (key: string) => number }> {
  const e = await env();
  const hook = await webhookServer();
  t.teardown(async () => {
    await hook.close();
    await e.close();
  });
  const svc = e.sim.serviceAccount;
  const config = e.config({ serviceAccounts: [{ username: svc.username, password: svc.password }], webhook: { publicUrl: hook.url, clientState, ...webhook }, ...extra });
  return { e, hook, config, count: (key) => e.sim.control.counters().requests[key] ?? 0 };
}
