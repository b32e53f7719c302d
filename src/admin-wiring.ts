/**
 * Composition of the administrator's side (part of the composition root):
 * Prometheus metrics fed by the notifier, the PUBLISH compositor and the
 * Graph side; the change history; the AdminSource the admin API and the
 * diagnostics page read; and the readiness check. The layers are observed
 * through their own structural observer interfaces; only this module knows
 * both ends.
 */
import type { GatewayConfig } from './config/schema.js';
import type { Directory } from './core/directory.js';
import { ChangeHistory } from './core/history.js';
import type { PresenceStore } from './core/presence-store.js';
import type { GraphObserver, GraphRuntime } from './graph/index.js';
import type {
  AdminSource,
  GraphInfo,
  RenderedBody,
  ResyncResult,
  SecurityInfo,
  SignInOutcome,
  TrunkInfo,
  WatcherEvent,
  WatcherProfileName,
} from './http/admin-source.js';
import { Metrics } from './http/metrics.js';
import type { HttpServerOptions } from './http/server.js';
import { DialogPackage } from './simple/dialog-package.js';
import type { EventPackage } from './simple/event-package.js';
import type { FeatureEventPackage } from './simple/feature-package.js';
import type { Notifier } from './simple/notifier.js';
import { PresencePackage } from './simple/presence-package.js';
import type { Publications } from './simple/publications.js';
import { WatcherProfileSelector } from './simple/watcher-profile.js';
import type { Endpoint, TransportProtocol } from './sip/message.js';
import type { Logger } from './util/logger.js';

/** Longest Teams-to-SIP latency still matched to a NOTIFY (the histogram's last bucket). */
const MAX_LATENCY_MS = 120_000;

export interface AdminWiringOptions {
  config: GatewayConfig;
  directory: Directory;
  store: PresenceStore;
  /** The SIP stack: its listeners are up when each configured transport has a bound endpoint. */
  stack: { localEndpoint(protocol: TransportProtocol): Endpoint | undefined };
  simple: { readonly notifier: Notifier; readonly publications: Publications; readonly features?: Pick<FeatureEventPackage, 'forwardingOf'> | undefined };
  trunks: { statuses(): readonly TrunkInfo[] };
  /** The Graph side once created (it is made after the HTTP server). */
  graph: () => GraphRuntime | undefined;
  /** The persistent store is open and writing (undefined: no store configured). */
  storeOk?: () => boolean;
  logger: Logger;
  /** Node process metrics too (default true). */
  processMetrics?: boolean;
  /** The security log's tally (keys "event\u0000reason") and the digest lockouts in force. */
  security?: {
    counts(): ReadonlyMap<string, number>;
    lockouts(): { lockedSources: number; lockedUsers: number };
  };
  now?: () => number;
}

export interface AdminWiring {
  readonly metrics: Metrics;
  /** undefined without an `admin:` section. */
  readonly history: ChangeHistory | undefined;
  readonly source: AdminSource;
  /** Spread into startHttpServer's options: /metrics, the admin API and page (with `admin:`), /readyz. */
  readonly http: Pick<HttpServerOptions, 'metrics' | 'admin' | 'ready'>;
  /** Every readiness part: sip, store (when configured), graph (when configured). */
  ready(): Record<string, boolean>;
  /** Observe the Graph side once it exists (request statuses, latencies). */
  attachGraph(graph: GraphRuntime | undefined): void;
  /** Stop observing. */
  close(): void;
}

/** Graph auth is up when the app token was had and no token is failing. */
export function graphAuthOk(status: Pick<GraphInfo, 'started' | 'tokens'> | undefined): boolean {
  if (status === undefined || !status.started) return false;
  const app = status.tokens.find((t) => t.name === 'app');
  if (app === undefined || !app.ok) return false;
  return status.tokens.every((t) => t.ok || t.lastError === undefined);
}

/** The diagnostics page's summary of the security log's tally. */
export function securityInfo(
  counts: ReadonlyMap<string, number>,
  lockouts: { lockedSources: number; lockedUsers: number },
): SecurityInfo {
  const info: SecurityInfo = {
    authFailures: 0,
    refusals: 0,
    lockouts: 0,
    activeLockouts: lockouts.lockedSources + lockouts.lockedUsers,
    connectionsRefused: 0,
    connectionsClosed: 0,
  };
  for (const [key, n] of counts) {
    const event = key.slice(0, key.indexOf('\u0000'));
    if (event === 'auth_failed') info.authFailures += n;
    else if (event === 'auth_refused') info.refusals += n;
    else if (event === 'lockout_start') info.lockouts += n;
    else if (event === 'connection_refused') info.connectionsRefused += n;
    else if (event === 'connection_closed') info.connectionsClosed += n;
  }
  return info;
}

export function wireAdmin(options: AdminWiringOptions): AdminWiring {
  const { config, directory, store, stack, simple, trunks, logger } = options;
  const now = options.now ?? Date.now;
  const notifier = simple.notifier;
  const metrics = new Metrics({ processMetrics: options.processMetrics ?? true, now });
  const graphExpected = config.graph !== undefined || config.graphSimulator !== undefined;
  const admin = config.admin;
  const history = admin !== undefined ? new ChangeHistory(store, { size: admin.historySize, now }) : undefined;

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

  // Teams to SIP: a Teams reading that changed the view starts the clock; the first NOTIFY
  // to a watcher of that person answered 2xx stops it.
  const teamsStarted = new Map<string, number>();
  let lastChange: { personId: string; revision: number } | undefined;
  const detachStore = store.onChange((personId, view) => {
    lastChange = { personId, revision: view.revision };
  });

  notifier.observe({
    notifySent(event, resource) {
      metrics.notifySent(event);
      if (teamsStarted.size === 0) return;
      const started = teamsStarted.get(resource);
      if (started === undefined) return;
      teamsStarted.delete(resource);
      const ms = now() - started;
      if (ms <= MAX_LATENCY_MS) metrics.teamsToSip(ms / 1000);
    },
    notifyFailed(event, status) {
      metrics.notifyFailed(event, status);
    },
  });
  simple.publications.observe({ publish: (event, result) => metrics.publish(event, result) });

  const graphObserver: GraphObserver = {
    graphRequest: (status) => metrics.graphRequest(status),
    sipToTeams: (seconds) => metrics.sipToTeams(seconds),
    notificationDropped: (reason) => metrics.notificationDropped(reason),
    teamsApplied(personId, elapsedMs) {
      const changed = lastChange !== undefined && lastChange.personId === personId && lastChange.revision === store.view(personId).revision;
      lastChange = undefined;
      if (!changed || notifier.watchers(personId).length === 0) return;
      const t = now();
      // drop clocks nobody stopped (a watcher that went away meanwhile)
      if (teamsStarted.size > 1000) for (const [id, at] of teamsStarted) if (t - at > MAX_LATENCY_MS) teamsStarted.delete(id);
      teamsStarted.set(personId, t - elapsedMs);
    },
  };
  let observedGraph: GraphRuntime | undefined;
  const attachGraph = (graph: GraphRuntime | undefined): void => {
    if (graph === observedGraph) return;
    observedGraph?.observe(undefined);
    observedGraph = graph;
    graph?.observe(graphObserver);
  };

  // What a new watcher would get: packages of our own over the same store (their caches are theirs).
  const packageOptions = {
    profiles: new WatcherProfileSelector(config.sip.watcherProfiles ?? []),
    extensionOf: (resource: string) => directory.get(resource)?.extension,
  };
  const packages: Record<WatcherEvent, EventPackage> = {
    presence: new PresencePackage(store, packageOptions),
    dialog: new DialogPackage(store, packageOptions),
  };
  const render = (personId: string, event: WatcherEvent, profile: WatcherProfileName): RenderedBody | undefined => {
    const person = directory.get(personId);
    if (person === undefined) return undefined;
    const pkg = packages[event];
    const format = pkg.negotiate(undefined, { profile });
    if (format === undefined) return undefined;
    const entity = person.sipAors[0] ?? `sip:${person.id}@${config.sip.domain}`;
    return { contentType: format.contentType, body: pkg.render(personId, { entity, format, version: 0 }).toString('utf8') };
  };

  const resync = async (personId: string): Promise<ResyncResult> => {
    const person = directory.get(personId);
    if (person === undefined) return { ok: false, detail: `no user "${personId}"` };
    const parts: string[] = [];
    let ok = true;
    const userId = person.teams?.userId;
    const graph = options.graph();
    if (!graphExpected) {
      parts.push('no Teams side configured');
    } else if (graph === undefined) {
      ok = false;
      parts.push('the Graph side has not started yet');
    } else if (userId === undefined) {
      parts.push('no Teams identity (the directory sync has not matched this user)');
    } else {
      try {
        const r = await graph.readUsers([userId]);
        if (r.error !== undefined) {
          ok = false;
          parts.push(`Teams presence could not be read: ${r.error}`);
        } else {
          parts.push(r.read > 0 ? 'Teams presence read again' : 'Graph returned no presence for this user');
        }
      } catch (error) {
        ok = false;
        parts.push(`Teams presence could not be read: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    const n = notifier.watchers(personId).length;
    notifier.resourceChanged(personId);
    parts.push(`current state sent to ${n} watcher${n === 1 ? '' : 's'}`);
    logger.info({ user: personId, ok }, 'admin: resync');
    return { ok, detail: parts.join('; ') };
  };

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
    graph: () => options.graph()?.status(),
    teamsExcluded: (id) => options.graph()?.teamsExcluded?.(id),
    resync,
    render,
    ...(security !== undefined ? { security: () => securityInfo(security.counts(), security.lockouts()) } : {}),
    async signIn(account): Promise<SignInOutcome> {
      const graph = options.graph();
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
    if (graphExpected) parts['graph'] = graphAuthOk(options.graph()?.status());
    return parts;
  };

  const http: Pick<HttpServerOptions, 'metrics' | 'admin' | 'ready'> = {
    metrics: { metrics, ...(admin?.metricsToken !== undefined ? { token: admin.metricsToken } : {}) },
    ready,
    ...(admin !== undefined ? { admin: { token: admin.token, source } } : {}),
  };

  attachGraph(options.graph());

  return {
    metrics,
    history,
    source,
    http,
    ready,
    attachGraph,
    close() {
      detachStore();
      notifier.observe(undefined);
      simple.publications.observe(undefined);
      attachGraph(undefined);
      history?.close();
    },
  };
}
