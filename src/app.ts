/**
 * The composition root: builds the directory, the canonical state, the SIP
 * stack, the SIMPLE server, the HTTP side and the Graph side from a
 * validated config, starts them in order, and stops them in the reverse
 * order through the close hooks each registers (src/util/lifecycle.ts).
 * Graph and SIP meet only through core's PresenceHub.
 */
import { personFromConfig, presenceStoreOptions } from './config/core-config.js';
import type { GatewayConfig } from './config/schema.js';
import { sipStackOptions } from './config/sip-options.js';
import { Directory } from './core/directory.js';
import { PresenceHub } from './core/presence-hub.js';
// The Graph side (msal-node, the Graph client) and the simulator (node-forge) are loaded only
// when configured: a SIP-only gateway should not carry them (about 20 MB of RSS).
import type { GraphRuntime } from './graph/index.js';
import type { GraphSimulator } from './graph-simulator/index.js';
import { wireAdmin, wireMetrics } from './admin-wiring.js';
import { startDemoTenant } from './demo-tenant.js';
import { startHttpServer, type HttpServer } from './http/server.js';
import { attachResourceLists, type ResourceLists } from './simple/resource-lists.js';
import { PackageRegistry } from './simple/package-registry.js';
import { SimpleServer } from './simple/simple-server.js';
import { createTrunkSide, createUpstream, type TrunkSide, type UpstreamSide } from './trunk-wiring.js';
import { openPersistence } from './persistence-wiring.js';
import { openCluster, wireCluster } from './cluster-wiring.js';
import { holdJobs, type HeldJobs } from './job-wiring.js';
import { JOBS, type Cluster } from './store/cluster.js';
import { Lifecycle } from './util/lifecycle.js';
import { TimerWheel } from './util/timer-wheel.js';
import { SipStack } from './sip/stack.js';
import { PinoSecurityLog } from './sip/security-log.js';
import type { Logger } from './util/logger.js';

export interface Gateway {
  readonly stack: SipStack;
  readonly directory: Directory;
  readonly store: PresenceHub;
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

/** Ending upstream subscriptions waits for the trunks' answers: up to Timer F (64*T1 = 32 s, RFC 3261 §17.1.2.2). */
const UPSTREAM_STOP_MS = 35_000;
/** The Graph side's own stop grace is 10 s (src/graph/index.ts). */
const GRAPH_STOP_MS = 15_000;

export interface GatewayStartOptions {
  /** The close hooks' lifecycle (tests pass one to see the stop order); made here otherwise. */
  lifecycle?: Lifecycle;
  /**
   * The service this node is part of: its jobs (each trunk's upstream side, the Graph side's
   * subscriptions, poller, directory sync, writer, calendar) run under its leases. Default: this
   * node alone (every lease held at once), or with store.redis the nodes sharing that Redis
   * (cluster-wiring.ts). The caller closes a cluster it passes.
   */
  cluster?: Cluster;
}

export async function startGateway(config: GatewayConfig, logger: Logger, options: GatewayStartOptions = {}): Promise<Gateway> {
  const life = options.lifecycle ?? new Lifecycle({ log: logger });
  try {
    return await assemble(config, logger, life, options.cluster);
  } catch (err) {
    // a start that fails half way closes what it had started
    await life.close();
    throw err;
  }
}

async function assemble(config: GatewayConfig, logger: Logger, life: Lifecycle, given: Cluster | undefined): Promise<Gateway> {
  const directory = new Directory(
    config.users.map((u) => personFromConfig(u, config.sip.domain)),
    { domains: [config.sip.domain, ...config.sip.aliases] },
  );
  const store = new PresenceHub(directory, presenceStoreOptions(config));
  // The store first: a file that cannot be used stops the start before any socket is bound.
  const persistence = await openPersistence(config, logger);
  // closed here only when the start fails before the parts are built; else the 'persistence' hook below did it
  life.onClose('store', () => persistence.close());
  // The service this node is part of. One it opens it leaves last, after the store's last writes: leaving
  // ends its heartbeat, and the others take over its subscriptions as saved.
  const cluster = given ?? (await openCluster(config, persistence.store, logger));
  if (given === undefined) life.onClose('cluster', () => cluster.close());
  // Every node's inputs to the canonical state, and the state the others made, before SIP is served.
  const shared = wireCluster({ cluster, hub: store, logger, recheckMs: config.cluster.nodeTtlMs + 2 * config.cluster.heartbeatMs });
  life.onClose('cluster wiring', () => shared.close());
  await shared.load();
  const clusterOptions = shared.simpleOptions();
  // The security log: its own stream at warn whatever log.level (fail2ban and SIEMs read it).
  const security = new PinoSecurityLog({
    destination: config.log.security.destination,
    linesPerSourcePerSec: config.log.security.linesPerSourcePerSec,
  });
  const stack = await life.start('sip stack', () => SipStack.start(sipStackOptions(config, security, logger)), (s) => s.close());
  for (const l of config.sip.listen) {
    const bound = stack.localEndpoint(l.transport);
    logger.info({ transport: l.transport, address: bound?.address ?? l.address, port: bound?.port ?? l.port }, 'sip listening');
  }
  // One timing wheel for every expiry, refresh and ping (subscriptions, publications, trunks).
  const wheel = new TimerWheel({ onError: (err: unknown) => logger.error({ err }, 'timer callback failed') });
  life.onClose('timers', () => wheel.close());
  const trunks = createTrunkSide(config, stack, logger, wheel, security);
  life.onClose('trunks', () => {
    trunks.registry.close();
    trunks.access.close();
  });
  // NOTIFYs in flight are drained and the moved CSeqs saved while the stack still runs.
  life.onClose('persistence', () => persistence.close());
  // One registry of event packages: the SIMPLE server registers them, the upstream watcher reads NOTIFY bodies by them.
  const packages = new PackageRegistry();
  const upstream = createUpstream({ config, sender: stack, trunks, directory, store, wheel, logger, packages });
  // The metrics side before what it observes: the SIMPLE server and the Graph side take its observers when built.
  const observed = wireMetrics({ store });
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
    upstream: upstream.watcher,
    packages,
    observers: observed.simple,
    ...(clusterOptions !== undefined ? { cluster: clusterOptions } : {}),
  });
  life.onClose('simple server', () => simple.close());
  const lists = attachResourceLists(simple.notifier, (l) => store.onChange(l), config.lists, { directory, logger });
  life.onClose('resource lists', () => lists.close());

  await trunks.registry.start();
  // Saved state back into the parts; from then on every change is kept (persistence-wiring.ts).
  persistence.restore({ notifier: simple.notifier, publications: simple.publications, directory, lists, upstream: { watcher: upstream.watcher, publisher: upstream.publisher }, ...(simple.features !== undefined ? { features: simple.features } : {}) });
  // A dead node's subscriptions and publications are taken over here by the restore's rules; moved ones let go.
  shared.attach({
    notifier: {
      get size() {
        return simple.notifier.size;
      },
      ids: () => simple.notifier.ids(),
      restoreClaimed: (records) => persistence.restoreClaimed(records),
      release: (id) => void simple.notifier.release(id),
    },
    publications: {
      etags: () => simple.publications.etags(),
      adopt: (records) => persistence.adoptClaimed(records),
      release: (etag) => void simple.publications.release(etag),
    },
  });
  // Each trunk's upstream side is a job: it starts with the dialogs and publications saved for the trunk.
  let trunkJobs: HeldJobs | undefined;
  life.onClose(
    'upstream',
    async () => {
      // With a persistent store the dialogs and publications stay at the trunks for the next holder or the
      // next start (the leases go first); without one they are ended (unSUBSCRIBE, PUBLISH Expires: 0)
      // while the stack still runs.
      if (!persistence.persistent) await upstream.close();
      await trunkJobs?.release();
      await persistence.keepUpstream(upstream);
      await upstream.close();
    },
    { timeoutMs: UPSTREAM_STOP_MS },
  );
  upstream.open();
  trunkJobs = holdJobs(
    cluster.leases,
    upstream.trunks.map((name) => ({
      job: JOBS.trunk(name),
      start: async () => void upstream.startTrunk(name, await persistence.savedUpstream(name)),
      stop: () => upstream.stopTrunk(name),
    })),
    logger,
  );
  await trunkJobs.started;

  const demo =
    config.graphSimulator !== undefined
      ? await life.start('graph simulator', () => startDemoTenant(config, logger), (d) => d.simulator.close())
      : undefined;
  const graphConfig = demo?.graph ?? config.graph;
  // The Graph side is built before the HTTP server (its webhook handlers are served there) and started after it.
  const graphModule = graphConfig !== undefined ? await import('./graph/index.js') : undefined;
  const graph =
    graphConfig !== undefined && graphModule !== undefined
      ? graphModule.createGraph({
          config: graphConfig,
          directory,
          store,
          logger: logger.child({ component: 'graph' }),
          stateStore: persistence.graphState(),
          ...persistence.graphWriterState(),
          tokenCache: persistence.graphTokenCache(),
          passwordRefusals: persistence.graphPasswordRefusals(),
          // metrics: request statuses, and the Teams-to-SIP clock for people somebody watches
          observer: observed.graph((personId) => simple.notifier.watchers(personId).length > 0),
          reload: (repositories) => persistence.store.reload(repositories),
          // shared only with other nodes: one node alone syncs itself and would only write what nobody reads
          ...(config.store.redis !== undefined ? { identities: persistence.directoryIdentities() } : {}),
        })
      : undefined;
  const hookPath = graphConfig !== undefined ? graphModule?.webhookPath(graphConfig) : undefined;
  // Metrics, the admin API's source, the change history and /readyz (admin-wiring.ts).
  const admin = wireAdmin({
    config,
    directory,
    store,
    stack,
    simple,
    metrics: observed,
    trunks,
    graph,
    logger,
    ...(persistence.persistent ? { storeOk: () => persistence.ok() } : {}),
    cluster: { cluster, store: persistence.store.kind, ...(config.store.redis !== undefined ? { redisUrl: config.store.redis.url } : {}) },
    security: { counts: () => security.counts(), lockouts: () => trunks.access.guessingStats() },
  });
  // the metrics side closes with the admin side that serves it (/metrics)
  life.onClose('admin', () => {
    admin.close();
    observed.close();
  });
  const tls =
    demo?.tls ?? (config.http.tls !== undefined ? { cert: config.http.tls.certPath, key: config.http.tls.keyPath } : undefined);
  const http = await life.start(
    'http server',
    () =>
      startHttpServer({
        address: config.http.address,
        port: config.http.port,
        ...(tls !== undefined ? { tls } : {}),
        logger,
        ...(hookPath !== undefined && graph !== undefined ? { graphWebhook: { path: hookPath, handlers: () => graph.webhook } } : {}),
        ...admin.http,
      }),
    (h) => h.close(),
  );
  logger.info({ origin: http.origin }, 'http listening');
  // the other nodes' diagnostics pages link here
  cluster.membership.setLocal({ http: http.origin });
  // A stop ends nothing towards watchers (no terminating NOTIFYs) nor Graph subscriptions (reused on restart).
  // Its stop is registered first: a start that fails half way still has its timers stopped.
  if (graph !== undefined) {
    let graphJobs: HeldJobs | undefined;
    life.onClose(
      'graph',
      async () => {
        await graphJobs?.release();
        await graph.stop();
      },
      { timeoutMs: GRAPH_STOP_MS },
    );
    // every node serves the webhook; the jobs run where their lease is held
    await graph.open();
    graphJobs = holdJobs(cluster.leases, graph.jobs.map((job) => ({ job, start: () => graph.startJob(job), stop: () => graph.stopJob(job) })), logger);
    await graphJobs.started;
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
      await life.close();
    },
  };
}
