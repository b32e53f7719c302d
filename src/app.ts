/**
 * The composition root: builds the directory, the canonical state, the SIP
 * stack, the SIMPLE server, the HTTP side and the Graph side from a
 * validated config, and stops them again. Graph and SIP meet only through
 * core's PresenceStore.
 */
import { readFileSync } from 'node:fs';
import type { GatewayConfig, UserConfig } from './config/schema.js';
import { Directory, normalizeAor, type Person } from './core/directory.js';
import { DEFAULT_TEAMS_TO_SIP, PRESENTING_AS_DND, type SipMeaning, type TeamsToSipTable } from './core/mapping.js';
import { PresenceStore } from './core/presence-store.js';
// The Graph side (msal-node, the Graph client) and the simulator (node-forge) are loaded only
// when configured: a SIP-only gateway should not carry them (about 20 MB of RSS).
import type { GraphConfig, GraphRuntime } from './graph/index.js';
import type { GraphSimulator } from './graph-simulator/index.js';
import { wireAdmin } from './admin-wiring.js';
import { startHttpServer, type HttpServer } from './http/server.js';
import { attachResourceLists, type ResourceLists } from './simple/resource-lists.js';
import { SimpleServer } from './simple/sip-app.js';
import { createTrunkSide, startUpstream, type TrunkSide, type UpstreamSide } from './trunk-wiring.js';
import { openPersistence } from './persistence-wiring.js';
import { TimerWheel } from './util/timer-wheel.js';
import { EventLoopGuard } from './sip/overload.js';
import { SipStack, type ListenSpec } from './sip/stack.js';
import { PinoSecurityLog } from './sip/security-log.js';
import { parseUri } from './sip/uri.js';
import type { Logger } from './util/logger.js';

export interface Gateway {
  readonly stack: SipStack;
  readonly directory: Directory;
  readonly store: PresenceStore;
  readonly simple: SimpleServer;
  readonly lists: ResourceLists;
  readonly trunks: TrunkSide;
  readonly upstream: UpstreamSide;
  readonly http: HttpServer;
  readonly graph: GraphRuntime | undefined;
  /** The built-in Graph simulator, in demo mode. */
  readonly simulator: GraphSimulator | undefined;
  stop(): Promise<void>;
}

/** A configured user as a person: AoRs normalized, sip:<id>@<domain> when none are given. */
export function personFromConfig(user: UserConfig, domain: string): Person {
  const aors = (user.sip ?? [`sip:${user.id}@${domain}`]).map((text) => {
    const uri = parseUri(text);
    if (uri === null) throw new Error(`users[${user.id}].sip: "${text}" is not a SIP URI`);
    return normalizeAor(uri.scheme, uri.user, uri.host);
  });
  const person: Person = { id: user.id, displayName: user.displayName, sipAors: aors };
  if (user.extension !== undefined) person.extension = user.extension;
  if (user.language !== undefined) person.language = user.language;
  return person;
}

/** The Teams-to-SIP table of this deployment: the defaults, the Presenting choice, then per-name overrides. */
export function teamsToSipTable(mapping: GatewayConfig['mapping']): TeamsToSipTable {
  const table: Record<string, SipMeaning> = { ...(mapping.presenting === 'dnd' ? PRESENTING_AS_DND : DEFAULT_TEAMS_TO_SIP) };
  for (const [name, meaning] of Object.entries(mapping.teamsToSip)) {
    const m: SipMeaning = { activities: meaning.activities };
    if (meaning.dnd !== undefined) m.dnd = meaning.dnd;
    if (meaning.call !== undefined) m.call = meaning.call;
    if (meaning.note !== undefined) m.note = meaning.note;
    table[name.toLowerCase()] = m;
  }
  return table;
}

interface DemoTenant {
  simulator: GraphSimulator;
  graph: GraphConfig;
  tls: { cert: string; key: string };
}

/**
 * The demo tenant: the built-in simulator seeded with one Teams user per
 * configured person (UPN <id>@<tenant domain>, extension as business phone),
 * and a Graph config pointing at it exactly as a real tenant's would.
 */
async function startDemoTenant(config: GatewayConfig, logger: Logger): Promise<DemoTenant> {
  const options = config.graphSimulator!;
  const [{ DEFAULT_TENANT_DOMAIN, DEMO_APP, DEMO_SERVICE_ACCOUNT }, { createServerCertificate }, { startRecordedSimulator }, { parseGraphConfig }] =
    await Promise.all([
      import('./graph-simulator/index.js'),
      import('./graph-simulator/certs.js'),
      import('./graph-simulator/recorded.js'),
      import('./graph/index.js'),
    ]);
  const { sim, caPath } = await startRecordedSimulator({
    port: options.port,
    ...(options.dir !== undefined ? { dir: options.dir } : {}),
    logger: logger.child({ component: 'graph-simulator' }),
    allowHttpNotificationUrl: false,
    users: config.users.map((u) => ({
      displayName: u.displayName,
      userPrincipalName: `${u.id}@${DEFAULT_TENANT_DOMAIN}`,
      mailNickname: u.id,
      ...(u.extension !== undefined ? { businessPhones: [u.extension] } : {}),
    })),
  });
  // The webhook's certificate comes from the simulator's CA, which it trusts like a public CA.
  const cert = createServerCertificate(sim.ca);
  const graph = parseGraphConfig({
    tenantId: sim.tenantId,
    clientId: DEMO_APP.clientId,
    clientSecret: DEMO_APP.secrets?.[0],
    authorityHost: sim.origin,
    graphBaseUrl: sim.graphBaseUrl,
    trustedCaPath: caPath,
    serviceAccounts: [{ username: DEMO_SERVICE_ACCOUNT.username, password: DEMO_SERVICE_ACCOUNT.password }],
    webhook: { publicUrl: `https://127.0.0.1:${config.http.port}/graph/notifications` },
    poll: { intervalSec: 30 },
  });
  logger.info({ graph: sim.graphBaseUrl, control: `${sim.origin}/_sim`, ca: caPath }, 'demo: built-in Graph simulator running');
  return { simulator: sim, graph, tls: { cert: cert.certPem, key: cert.keyPem } };
}

/** A configured listener as the stack takes it: certificate files read into PEM text. */
function listenSpecOf(l: GatewayConfig['sip']['listen'][number]): ListenSpec {
  const spec: ListenSpec = { protocol: l.transport, address: l.address, port: l.port };
  if (l.path !== undefined) spec.path = l.path;
  if (l.tls !== undefined) {
    spec.tls = {
      cert: readPem(l.tls.certPath, 'certPath'),
      key: readPem(l.tls.keyPath, 'keyPath'),
      requestClientCert: l.tls.requestClientCert,
      ...(l.tls.caPath !== undefined ? { ca: readPem(l.tls.caPath, 'caPath') } : {}),
    };
  }
  return spec;
}

/** Read a PEM file named in config, with an error naming what it was for. */
export function readPem(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new Error(`${what}: cannot read ${file} (${code}); give the path of a readable PEM file`);
  }
}

export async function startGateway(config: GatewayConfig, logger: Logger): Promise<Gateway> {
  const directory = new Directory(
    config.users.map((u) => personFromConfig(u, config.sip.domain)),
    { domains: [config.sip.domain, ...config.sip.aliases] },
  );
  const priority = new Map<string, readonly string[]>();
  for (const g of config.mapping.groups) for (const m of g.members) priority.set(m, g.prefer);
  const store = new PresenceStore(directory, {
    prefer: config.mapping.prefer,
    sourcePriority: (personId) => priority.get(personId),
    teamsToSip: teamsToSipTable(config.mapping),
    echoWindowMs: config.mapping.echoWindowSec * 1000,
    ...(config.graph?.calendar.enabled === true ? { timeZone: config.graph.calendar.timeZone } : {}),
    // busy-on-busy: the DoNotDisturb the Graph writer holds during a PBX call is its own echo
    ...(config.graph?.writer.duringCall === 'dnd' ? { callEchoes: [{ availability: 'DoNotDisturb', activity: 'DoNotDisturb' }] } : {}),
  });
  // The store first: a file that cannot be used stops the start before any socket is bound.
  const persistence = await openPersistence(config, logger);
  // The security log: its own stream at warn whatever log.level (fail2ban and SIEMs read it).
  const security = new PinoSecurityLog({
    destination: config.log.security.destination,
    linesPerSourcePerSec: config.log.security.linesPerSourcePerSec,
  });
  const conn = config.sip.connections;
  const stack = await SipStack.start({
    listen: config.sip.listen.map(listenSpecOf),
    security,
    connections: {
      messageTimeoutMs: conn.messageTimeoutSec * 1000,
      strangerIdleMs: conn.strangerIdleSec * 1000,
      maxPerSource: conn.maxPerSource,
    },
    logger,
    maxMessageSize: config.sip.maxMessageSize,
    maxConnections: config.sip.maxConnections,
    udpBufferBytes: config.sip.udpBufferBytes,
    userAgent: config.sip.userAgent,
    load: config.sip.overload.maxEventLoopLagMs === 0 ? false : new EventLoopGuard({ maxLagMs: config.sip.overload.maxEventLoopLagMs }),
    retryAfterSec: config.sip.overload.retryAfterSec,
    overload: {
      queueDelayMs: config.sip.overload.queueDelayMs,
      maxWaitMs: config.sip.overload.maxWaitMs,
      maxRetryAfterSec: config.sip.overload.maxRetryAfterSec,
    },
    rateLimit: config.sip.rateLimit.enabled
      ? { ratePerSec: config.sip.rateLimit.ratePerSec, burst: config.sip.rateLimit.burst }
      : false,
    ...(config.sip.advertisedHost !== undefined ? { viaHost: config.sip.advertisedHost } : {}),
  });
  for (const l of config.sip.listen) {
    const bound = stack.localEndpoint(l.transport);
    logger.info({ transport: l.transport, address: bound?.address ?? l.address, port: bound?.port ?? l.port }, 'sip listening');
  }
  // One timing wheel for every expiry, refresh and ping (subscriptions, publications, trunks).
  const wheel = new TimerWheel({ onError: (err: unknown) => logger.error({ err }, 'timer callback failed') });
  const trunks = createTrunkSide(config, stack, logger, wheel, security);
  const simple = new SimpleServer({
    stack,
    directory,
    store,
    config: {
      domain: config.sip.domain,
      ...(config.sip.advertisedHost !== undefined ? { contactHost: config.sip.advertisedHost } : {}),
      subscriptions: config.subscriptions,
      publications: config.publications,
      watcherProfiles: config.sip.watcherProfiles,
      watcherInfo: true,
      featureKeys: true,
    },
    logger,
    wheel,
    access: (req) => trunks.verdict(req),
  });
  const lists = attachResourceLists(simple.notifier, (l) => store.onChange(l), config.lists, { directory, logger });
  await trunks.registry.start();
  const upstream = startUpstream({ config, sender: stack, trunks, directory, store, wheel, logger, packages: simple.notifier.packages });
  simple.setUpstream(upstream.watcher);
  // Saved subscriptions, publications and upstream dialogs come back, then every change is kept (persistence-wiring.ts).
  persistence.restore({ notifier: simple.notifier, publications: simple.publications, directory, lists, upstream, ...(simple.features !== undefined ? { features: simple.features } : {}) });

  const demo = config.graphSimulator !== undefined ? await startDemoTenant(config, logger) : undefined;
  const graphConfig = demo?.graph ?? config.graph;
  let graph: GraphRuntime | undefined;
  const tls =
    demo?.tls ?? (config.http.tls !== undefined ? { cert: config.http.tls.certPath, key: config.http.tls.keyPath } : undefined);
  const graphModule = graphConfig !== undefined ? await import('./graph/index.js') : undefined;
  const hookPath = graphConfig !== undefined ? graphModule?.webhookPath(graphConfig) : undefined;
  // Metrics, the admin API's source, the change history and /readyz (admin-wiring.ts).
  const adminSide = wireAdmin({
    config,
    directory,
    store,
    stack,
    simple,
    trunks,
    graph: () => graph,
    logger,
    ...(persistence.persistent ? { storeOk: () => persistence.ok() } : {}),
    security: { counts: () => security.counts(), lockouts: () => trunks.access.guessingStats() },
  });
  const http = await startHttpServer({
    address: config.http.address,
    port: config.http.port,
    ...(tls !== undefined ? { tls } : {}),
    logger,
    ...(hookPath !== undefined ? { graphWebhook: { path: hookPath, handlers: () => graph?.webhook } } : {}),
    ...adminSide.http,
  });
  logger.info({ origin: http.origin }, 'http listening');

  if (graphConfig !== undefined && graphModule !== undefined) {
    const { createGraph } = graphModule;
    graph = createGraph({
      config: graphConfig,
      directory,
      store,
      logger: logger.child({ component: 'graph' }),
      stateStore: persistence.graphState(),
      ...persistence.graphWriterState(),
      tokenCache: persistence.graphTokenCache(),
      passwordRefusals: persistence.graphPasswordRefusals(),
    });
    adminSide.attachGraph(graph);
    await graph.start();
  }

  return {
    stack,
    directory,
    store,
    simple,
    lists,
    trunks,
    upstream,
    http,
    graph,
    simulator: demo?.simulator,
    async stop() {
      // A stop ends nothing towards watchers (no terminating NOTIFYs) nor Graph subscriptions (reused on restart).
      await graph?.stop();
      // Upstream: with a persistent store the dialogs and publications stay at the trunks and are reused at the
      // next start; without one they are ended (unSUBSCRIBE, PUBLISH Expires: 0) while the stack still runs.
      await persistence.keepUpstream(upstream);
      await upstream.close();
      trunks.registry.close();
      trunks.access.close();
      lists.close();
      simple.close();
      await persistence.close();
      wheel.close();
      await http.close();
      await stack.close();
      await demo?.simulator.close();
    },
  };
}
