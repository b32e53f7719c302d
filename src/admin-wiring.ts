/**
 * Composition of the administrator's side (part of the composition root):
 * Prometheus metrics fed by the notifier, the PUBLISH compositor and the
 * Graph side; the change history; the AdminSource the admin API and the
 * diagnostics page read; and the readiness check. The layers are observed
 * through their own structural observer interfaces; only this module knows
 * both ends. The metrics side (wireMetrics) is built before the parts it
 * observes, which take its observers at construction; the admin side
 * (wireAdmin) after them, since it reads them.
 */
import type { GatewayConfig } from './config/schema.js';
import type { Directory } from './core/directory.js';
import { ChangeHistory } from './core/history.js';
import type { PresenceHub } from './core/presence-hub.js';
import type { GraphObserver, GraphRuntime } from './graph/index.js';
import type {
  AdminSource,
  SignInOutcome,
  TrunkInfo,
} from './http/admin-source.js';
import { adminActions } from './http/admin-actions.js';
import { ClusterRows } from './http/cluster-rows.js';
import { Metrics } from './http/metrics.js';
import { graphAuthOk } from './http/readiness.js';
import { securityInfo } from './http/security-info.js';
import { TeamsLatencyStopwatch } from './http/teams-latency.js';
import type { HttpServerOptions } from './http/server.js';
import type { FeatureEventPackage } from './simple/feature-package.js';
import type { Notifier } from './simple/notifier.js';
import type { SimpleObservers } from './simple/simple-server.js';
import type { Endpoint, TransportProtocol } from './sip/message.js';
import type { Cluster } from './store/cluster.js';
import { systemClock, type Clock } from './util/clock.js';
import type { Logger } from './util/logger.js';

export interface MetricsSideOptions {
  store: Pick<PresenceHub, 'onChange' | 'view'>;
  /** Node process metrics too (default true). */
  processMetrics?: boolean;
  clock?: Pick<Clock, 'now'>;
}

/** The Prometheus metrics and what feeds them; built before the SIMPLE server and the Graph side. */
export interface MetricsSide {
  readonly metrics: Metrics;
  /** Given to the SIMPLE server at construction. */
  readonly simple: SimpleObservers;
  /** The Graph side's observer; `watched` tells whether a person has a watcher now (the notifier knows). */
  graph(watched: (personId: string) => boolean): GraphObserver;
  /** Stop the Teams-to-SIP stopwatch. */
  close(): void;
}

export function wireMetrics(options: MetricsSideOptions): MetricsSide {
  const clock = options.clock ?? systemClock;
  const metrics = new Metrics({ processMetrics: options.processMetrics ?? true, clock });
  const teamsLatency = new TeamsLatencyStopwatch({
    store: options.store,
    observe: (seconds) => metrics.teamsToSip(seconds),
    clock,
  });
  return {
    metrics,
    simple: {
      notify: {
        notifySent(event, resource) {
          metrics.notifySent(event);
          teamsLatency.notifySent(resource);
        },
        notifyFailed(event, status) {
          metrics.notifyFailed(event, status);
        },
      },
      publish: { publish: (event, result) => metrics.publish(event, result) },
    },
    graph: (watched) => ({
      graphRequest: (status) => metrics.graphRequest(status),
      sipToTeams: (seconds) => metrics.sipToTeams(seconds),
      notificationDropped: (reason) => metrics.notificationDropped(reason),
      teamsApplied: (personId, elapsedMs) => teamsLatency.teamsApplied(personId, elapsedMs, watched),
    }),
    close: () => teamsLatency.close(),
  };
}

export interface AdminWiringOptions {
  config: GatewayConfig;
  directory: Directory;
  store: PresenceHub;
  /** The SIP stack: its listeners are up when each configured transport has a bound endpoint. */
  stack: { localEndpoint(protocol: TransportProtocol): Endpoint | undefined };
  simple: { readonly notifier: Notifier; readonly features?: Pick<FeatureEventPackage, 'forwardingOf'> | undefined };
  /** The metrics side, built before the SIMPLE server (wireMetrics). */
  metrics: Pick<MetricsSide, 'metrics' | 'graph'>;
  trunks: { statuses(): readonly TrunkInfo[] };
  /** The Graph side, built (not necessarily started) before the admin side; undefined without one. */
  graph: GraphRuntime | undefined;
  /** The persistent store is open and writing (undefined: no store configured). */
  storeOk?: () => boolean;
  /**
   * The service this node is part of: the diagnostics page's nodes and job holders; with Redis,
   * /readyz also needs the shared store reachable.
   */
  cluster?: { cluster: Pick<Cluster, 'nodeId' | 'membership' | 'leases' | 'connected'>; store: 'sqlite' | 'memory' | 'redis'; redisUrl?: string };
  logger: Logger;
  /** The security log's tally (keys "event\u0000reason") and the digest lockouts in force. */
  security?: {
    counts(): ReadonlyMap<string, number>;
    lockouts(): { lockedSources: number; lockedUsers: number };
  };
  clock?: Pick<Clock, 'now'>;
}

export interface AdminWiring {
  readonly metrics: Metrics;
  /** undefined without an `admin:` section. */
  readonly history: ChangeHistory | undefined;
  readonly source: AdminSource;
  /** Spread into startHttpServer's options: /metrics, the admin API and page (with `admin:`), /readyz. */
  readonly http: Pick<HttpServerOptions, 'metrics' | 'admin' | 'ready'>;
  /** Every readiness part: sip, store (when configured), cluster (when several nodes), graph (when configured). */
  ready(): Record<string, boolean>;
  /** Stop observing the Graph side; close the change history. */
  close(): void;
}

export function wireAdmin(options: AdminWiringOptions): AdminWiring {
  const { config, directory, store, stack, simple, trunks, logger } = options;
  const clock = options.clock ?? systemClock;
  const graph = options.graph;
  const notifier = simple.notifier;
  const metrics = options.metrics.metrics;
  const graphExpected = config.graph !== undefined || config.graphSimulator !== undefined;
  const admin = config.admin;
  const history = admin !== undefined ? new ChangeHistory(store, { size: admin.historySize, clock }) : undefined;

  metrics.collectSubscriptions(() => notifier.counts());
  metrics.collectTrunks(() => trunks.statuses());
  const security = options.security;
  if (security !== undefined) metrics.collectSecurity(() => ({ events: security.counts(), lockouts: security.lockouts() }));
  // /metrics tells how busy and how attacked the gateway is: not for everyone on the network
  const loopback = config.http.address.startsWith('127.') || config.http.address === '::1';
  if (!loopback && admin?.metricsToken === undefined) {
    logger.warn(
      { address: config.http.address },
      '/metrics is open without a token on a non-loopback address: set admin.metricsToken (e.g. `openssl rand -hex 24`) or bind http.address to 127.0.0.1',
    );
  }

  const { render, resync } = adminActions({
    directory,
    store,
    notifier,
    graph,
    graphExpected,
    domain: config.sip.domain,
    watcherProfiles: config.sip.watcherProfiles ?? [],
    logger,
  });

  // the Nodes panel: what the cluster says, read at each answer (the rows remember the nodes that went)
  const clusterSide = options.cluster;
  const clusterRows =
    clusterSide !== undefined
      ? new ClusterRows(
          () => ({
            nodeId: clusterSide.cluster.nodeId,
            store: clusterSide.store,
            ...(clusterSide.redisUrl !== undefined ? { storeUrl: clusterSide.redisUrl } : {}),
            connected: clusterSide.cluster.connected(),
            nodes: clusterSide.cluster.membership.nodes(),
            leases: clusterSide.cluster.leases.list(),
            nodeTtlMs: config.cluster.nodeTtlMs,
          }),
          { clock },
        )
      : undefined;

  const source: AdminSource = {
    persons: () => directory.all(),
    state: (id) => store.state(id),
    view: (id) => store.view(id),
    sourcePriority: (id) => store.sourcePriority(id),
    forwarding: (id) => simple.features?.forwardingOf(id) ?? [],
    history: (id) => history?.entries(id) ?? [],
    watchers(id) {
      const out: Record<string, number> = {};
      for (const sub of notifier.watchers(id)) out[sub.event] = (out[sub.event] ?? 0) + 1;
      return out;
    },
    onChange: (listener) => store.onChange((id) => listener(id)),
    trunks: () => trunks.statuses(),
    graph: () => graph?.status(),
    teamsExcluded: (id) => graph?.teamsExcluded?.(id),
    resync,
    render,
    ...(security !== undefined ? { security: () => securityInfo(security.counts(), security.lockouts()) } : {}),
    ...(clusterRows !== undefined ? { cluster: () => clusterRows.view() } : {}),
    async signIn(account): Promise<SignInOutcome> {
      if (graph === undefined) return { ok: false, status: 503, message: graphExpected ? 'the Graph side has not started yet' : 'no Teams side configured' };
      try {
        return { ok: true, account: await graph.signIn(account) };
      } catch (error) {
        // the graph module is loaded lazily: its error classes are told apart by name
        const name = error instanceof Error ? error.name : '';
        const message = error instanceof Error ? error.message : String(error);
        if (name === 'UnknownAccountError') return { ok: false, status: 404, message };
        if (name === 'SignInNotApplicableError') return { ok: false, status: 409, message };
        throw error;
      }
    },
  };

  const ready = (): Record<string, boolean> => {
    const parts: Record<string, boolean> = {
      sip: config.sip.listen.every((l) => stack.localEndpoint(l.transport) !== undefined),
    };
    if (options.storeOk !== undefined) parts['store'] = options.storeOk();
    // a node cut off from the shared store serves its own watchers but should not get new traffic
    if (options.cluster?.store === 'redis') parts['cluster'] = options.cluster.cluster.connected();
    if (graphExpected) parts['graph'] = graphAuthOk(graph?.status());
    return parts;
  };

  const http: Pick<HttpServerOptions, 'metrics' | 'admin' | 'ready'> = {
    metrics: { metrics, ...(admin?.metricsToken !== undefined ? { token: admin.metricsToken } : {}) },
    ready,
    ...(admin !== undefined ? { admin: { token: admin.token, source } } : {}),
  };

  return {
    metrics,
    history,
    source,
    http,
    ready,
    close() {
      history?.close();
    },
  };
}
