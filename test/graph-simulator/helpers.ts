/** Shared fixtures for the simulator tests: a simulator, real msal / Graph clients, a webhook receiver. */
import http from 'node:http';
import { ConfidentialClientApplication } from '@azure/msal-node';
import type { Client } from '@microsoft/microsoft-graph-client';
import { startGraphSimulator, type GraphSimulator, type GraphSimulatorOptions } from '../../src/graph-simulator/index.js';
import { createCertificateAuthority, type CertificateWithKey } from '../../src/graph-simulator/certs.js';
import { graphClient, msalNetworkClient } from './tls-clients.js';

let sharedCa: CertificateWithKey | undefined;

/** One CA per test process keeps start-up fast. */
export function testCa(): CertificateWithKey {
  sharedCa ??= createCertificateAuthority('graph-sim test CA');
  return sharedCa;
}

export interface Harness {
  sim: GraphSimulator;
  /** an app token for the demo app (client secret) */
  appToken(): Promise<string>;
  /** a delegated token for the demo service account */
  userToken(username?: string, password?: string): Promise<string>;
  /** a Graph client with a token source */
  graph(getToken: () => Promise<string>, retry?: { delaySec?: number; maxRetries?: number }): Client;
  close(): Promise<void>;
}

export async function harness(options: GraphSimulatorOptions = {}): Promise<Harness> {
  // The suite's webhook is plain http; real Graph (and the simulator by default) wants https.
  const sim = await startGraphSimulator({ ca: testCa(), allowHttpNotificationUrl: true, ...options });
  const net = msalNetworkClient(sim.caPem);
  const cca = new ConfidentialClientApplication({
    auth: { clientId: sim.demoApp.clientId, clientSecret: sim.demoApp.clientSecret, authority: sim.authorityUrl, knownAuthorities: [sim.host] },
    system: { networkClient: net },
  });
  const closers: Array<() => void> = [() => net.close()];
  return {
    sim,
    async appToken() {
      const r = await cca.acquireTokenByClientCredential({ scopes: ['https://graph.microsoft.com/.default'] });
      if (!r) throw new Error('no token');
      return r.accessToken;
    },
    async userToken(username = sim.serviceAccount.username, password = sim.serviceAccount.password) {
      const r = await cca.acquireTokenByUsernamePassword({ scopes: ['https://graph.microsoft.com/Presence.Read.All'], username, password });
      if (!r) throw new Error('no token');
      return r.accessToken;
    },
    graph(getToken, retry) {
      const g = graphClient({ baseUrl: sim.graphBaseUrl, hostname: sim.hostname, caPem: sim.caPem, getToken, ...(retry ? { retry } : {}) });
      closers.push(g.close);
      return g.client;
    },
    async close() {
      for (const c of closers) c();
      await sim.close();
    },
  };
}

export interface Webhook {
  url: string;
  /** notification bodies received (validation requests excluded) */
  received: Array<{ value: Array<Record<string, unknown>>; validationTokens?: string[] }>;
  validations: number;
  /** how the next validation requests are answered */
  validationMode: 'echo' | 'wrong' | 'error' | 'json';
  /** statuses for the next notification POSTs (then 202) */
  failNext: number[];
  /** answer notification POSTs only after this many ms */
  delayMs: number;
  waitFor(predicate: () => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** A local http endpoint acting as the gateway's webhook. */
export async function webhook(): Promise<Webhook> {
  const hook: Webhook = {
    url: '',
    received: [],
    validations: 0,
    validationMode: 'echo',
    failNext: [],
    delayMs: 0,
    waitFor: (predicate, timeoutMs = 5000) => waitFor(predicate, timeoutMs),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const token = url.searchParams.get('validationToken');
      if (token !== null) {
        hook.validations++;
        if (hook.validationMode === 'error') res.writeHead(500).end();
        else if (hook.validationMode === 'wrong') res.writeHead(200, { 'content-type': 'text/plain' }).end('not the token');
        else if (hook.validationMode === 'json') res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(token));
        else res.writeHead(200, { 'content-type': 'text/plain' }).end(token);
        return;
      }
      const status = hook.failNext.shift() ?? 202;
      const answer = (): void => {
        if (status < 300 && !res.destroyed) hook.received.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Webhook['received'][number]);
        if (!res.destroyed) res.writeHead(status).end();
      };
      if (hook.delayMs > 0) setTimeout(answer, hook.delayMs);
      else answer();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const address = server.address();
  hook.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/notify`;
  return hook;
}

export async function waitFor(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The status and Graph error code of a failed Graph client call. */
export async function graphFailure(p: Promise<unknown>): Promise<{ statusCode: number; code: string; message: string; headers?: Headers }> {
  try {
    await p;
  } catch (error) {
    const e = error as { statusCode?: number; code?: string; message?: string; headers?: Headers };
    return { statusCode: e.statusCode ?? -1, code: e.code ?? '', message: e.message ?? '', ...(e.headers ? { headers: e.headers } : {}) };
  }
  throw new Error('expected the call to fail');
}

/** The claims of a JWT (no verification: the test reads what the simulator put in). */
export function claims(jwt: string): Record<string, unknown> {
  const part = jwt.split('.')[1] ?? '';
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
}
