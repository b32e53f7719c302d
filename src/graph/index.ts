/**
 * The gateway's Microsoft Graph side, wired: tokens, one request budget,
 * Graph clients, directory sync, the presence reader (webhook, subscriptions,
 * polling) and the presence writer.
 *
 * Mount the webhook before start() so Graph can validate subscriptions:
 *   const graph = createGraph({...});
 *   await http.register(graphWebhookRoute, { path, handlers: graph.webhook });
 *   await graph.start();
 */
import { readFileSync } from 'node:fs';
import type { Directory } from '../core/directory.js';
import type { PresenceHub } from '../core/presence-hub.js';
import type { Logger } from '../util/logger.js';
import { GraphAuth, type PasswordRefusalStore, type TokenStatus } from './auth.js';
import type { AccountStatus } from './account-sign-in.js';
import type { TokenCacheStore } from './token-cache.js';
import { RequestBudget, type BudgetStatus } from './budget.js';
import { CalendarReader, type CalendarStatus } from './calendar-reader.js';
import { createGraphClient, graphFailure } from './client.js';
import { systemClock, type Clock, type Timer } from '../util/clock.js';
import { calendarRequestsPer30s, pollRequestsPer30s, type GraphConfig } from './config.js';
import { DirectorySync, type DirectorySyncResult } from './directory-sync.js';
import { applyIdentities, identitiesOf, type TeamsIdentityStore } from './teams-identities.js';
import { createHttpTransport } from './http-transport.js';
import type { GraphObserver } from './observer.js';
import { PresenceReader, type ReaderStatus } from './presence-reader.js';
import { PresenceWriter, type WriterStatus } from './presence-writer.js';
import type { SubscriptionStateStore } from './subscription-state.js';
import type { WebhookHandlers } from './webhook-handler.js';
import { loadNotificationKeys, MemoryNotificationKeyStore, type NotificationKeyring, type NotificationKeyStore } from './notification-keys.js';
import { ValidationTokenVerifier } from './rich-notifications.js';
import type { SavedPresenceStore } from './saved-presence.js';
import { JOBS } from '../store/cluster.js';
import type { RepositoryName } from '../store/store.js';
import { StoredSubscriptions, StoreRefresh } from './webhook-state.js';

export { graphConfigSchema, parseGraphConfig, GraphConfigError, type GraphConfig, type GraphConfigInput } from './config.js';
export { graphWebhookRoute, type WebhookRouteOptions } from './webhook-route.js';
export type { WebhookHandlers, WebhookReply } from './webhook-handler.js';
export { JsonFileSubscriptionStateStore, MemorySubscriptionStateStore, type SubscriptionRecord, type SubscriptionStateStore } from './subscription-state.js';
export type { Clock, Timer } from '../util/clock.js';
export type { GraphObserver } from './observer.js';
export type { DirectorySyncResult } from './directory-sync.js';
export { MemoryNotificationKeyStore, type NotificationKeyRecord, type NotificationKeyStore } from './notification-keys.js';
export { MemorySavedPresenceStore, type SavedPresence, type SavedPresenceStore } from './saved-presence.js';
export type { TeamsIdentityEntry, TeamsIdentityStore } from './teams-identities.js';
export type { AccountStatus, DeviceCodePrompt, SignInState } from './account-sign-in.js';
export { SignInNotApplicableError, UnknownAccountError, type PasswordRefusal, type PasswordRefusalStore } from './auth.js';
export type { TokenCacheStore } from './token-cache.js';

export interface GraphOptions {
  config: GraphConfig;
  directory: Directory;
  store: PresenceHub;
  logger: Logger;
  /** where subscription ids survive restarts (default: memory only) */
  stateStore?: SubscriptionStateStore;
  /** where a generated rich-notification key pair is kept (default: memory only) */
  notificationKeys?: NotificationKeyStore;
  /** where what people had before the writer took over survives a restart (default: memory only) */
  savedPresence?: SavedPresenceStore;
  clock?: Clock;
  /** RetryHandler tuning (default 3 s first delay without Retry-After, 3 retries) */
  retry?: { delaySec?: number; maxRetries?: number };
  /** reader tuning (defaults: full read every 600 s; subscriptions live 58 min, renewed at 2/3) */
  reader?: { fullReadIntervalSec?: number; subscriptionLifetimeMs?: number; renewFraction?: number };
  /** writer tuning (default: people taken over mid-call are restored 60 s after a restart unless in a call again) */
  writer?: { restoreGraceMs?: number };
  readFile?: (path: string) => string;
  /** told request statuses and latencies (metrics); replaceable later with observe() */
  observer?: GraphObserver;
  /** where the sealed token cache of device-code accounts survives restarts (default: memory only) */
  tokenCache?: TokenCacheStore;
  /** where refused passwords are remembered across restarts (default: memory only) */
  passwordRefusals?: PasswordRefusalStore;
  /** environment for the token cache key (default process.env) */
  env?: Readonly<Record<string, string | undefined>>;
  /**
   * Read these repositories again from a store other nodes share (before a
   * job takes over from another node, and when the webhook meets a
   * subscription or certificate it does not know). Default: nothing to read,
   * the store is this process's alone.
   */
  reload?: (repositories: ReadonlyArray<RepositoryName>) => Promise<void>;
  /**
   * Where the directory sync's Teams identities are shared: saved after each sync, and read
   * again every `followMs` (default 30 s) by a node that does not run the sync job (default: not shared).
   */
  identities?: TeamsIdentityStore & { followMs?: number };
}

export interface DirectorySyncStatus {
  lastSyncAt?: string;
  lastError?: string;
  mode?: 'full' | 'delta';
  users?: number;
  matched?: number;
  unmatchedPersons?: number;
  unmatchedUsers?: number;
  conflicts?: string[];
  /** persons without a Teams identity and why (first 200) */
  excluded?: Array<{ personId: string; reason: string }>;
}

export interface GraphStatus {
  started: boolean;
  tokens: TokenStatus[];
  /** each service account's sign-in */
  accounts?: AccountStatus[];
  budget: BudgetStatus;
  directory: DirectorySyncStatus;
  reader: ReaderStatus;
  writer?: WriterStatus;
  /** the calendar reader (graph.calendar.enabled) */
  calendar?: CalendarStatus;
  /** rich notifications: the certificate subscriptions carry (absent: basic notifications) */
  notificationKey?: { certificateId: string; thumbprint: string; notAfter: string };
}

export interface GraphRuntime {
  /** for the webhook route (usable before start) */
  readonly webhook: WebhookHandlers;
  start(): Promise<void>;
  /** Stop timers and wait for requests in flight; subscriptions stay for the next run unless told. */
  stop(options?: { deleteSubscriptions?: boolean }): Promise<void>;
  status(): GraphStatus;
  /** Sync the directory now (delta when possible) and follow the changes. */
  syncDirectory(): Promise<DirectorySyncResult>;
  /** One poll cycle now. */
  pollNow(): Promise<void>;
  /** Read every calendar now (graph.calendar.enabled; otherwise nothing). */
  readCalendarsNow?(): Promise<void>;
  /** Resolves when no Graph work is running (tests). */
  idle(): Promise<void>;
  /** Report request statuses and latencies to `observer` (undefined: stop). */
  observe(observer: GraphObserver | undefined): void;
  /** Why the person has no Teams identity (unlicensed, filtered out, unmatched); undefined when mapped or unknown. */
  teamsExcluded?(personId: string): string | undefined;
  /** Read these Teams users (Graph user ids) again now; a failure is described in `error`. */
  readUsers(userIds: readonly string[]): Promise<{ read: number; error?: string }>;
  /**
   * Start a device-code sign-in of a service account (or return the one under
   * way); resolves with the code to enter. Throws UnknownAccountError or
   * SignInNotApplicableError (a password account).
   */
  signIn(account: string): Promise<AccountStatus>;
}

/**
 * The Graph side as jobs that run once in a service of several nodes, each
 * under a lease (src/store/cluster.ts, JOBS): start() is open() and then
 * every job, stop() ends them all. A job stopped (lease lost) ends nothing in
 * Graph: its subscriptions stay, to be renewed by the next holder.
 */
export interface GraphJobs {
  /** The jobs this configuration has (JOBS names), in the order start() starts them. */
  readonly jobs: readonly string[];
  /**
   * What every node needs, lease or not: sign-ins from the stored token
   * cache, one directory sync (the Teams identities), the notification keys
   * and the stored subscriptions (the webhook works on every node). Once.
   */
  open(): Promise<void>;
  /** Start one job (after open()); again after stopJob. The store's state of the job is read again first. */
  startJob(job: string): Promise<void>;
  /** Stop one job; nothing is ended in Graph. */
  stopJob(job: string): Promise<void>;
}

const STOP_GRACE_MS = 10_000;
/** The webhook asks the shared store about an unknown subscription or certificate at most this often. */
const STORE_REREAD_MS = 30_000;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function createGraph(options: GraphOptions): GraphRuntime & GraphJobs {
  const { config, directory, store, logger } = options;
  const clock = options.clock ?? systemClock;
  const read = options.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  const caPem = config.trustedCaPath !== undefined ? read(config.trustedCaPath) : undefined;
  const transport = createHttpTransport(caPem !== undefined ? { caPem } : {});
  let observer: GraphObserver | undefined = options.observer;
  const observerRef = (): GraphObserver | undefined => observer;
  const observeStatus = (status: number): void => observer?.graphRequest?.(status);
  const auth = new GraphAuth({
    config,
    logger,
    readFile: read,
    ...(caPem !== undefined ? { networkClient: transport.msalNetworkClient } : {}),
    ...(options.tokenCache !== undefined ? { tokenCache: options.tokenCache } : {}),
    ...(options.env !== undefined ? { env: options.env } : {}),
    ...(options.passwordRefusals !== undefined ? { refusals: options.passwordRefusals } : {}),
  });
  const budget = new RequestBudget(clock, config.budget.requestsPer30s);
  const clientFor = (tokens: ReturnType<GraphAuth['appToken']>) =>
    createGraphClient({
      graphBaseUrl: config.graphBaseUrl,
      tokens,
      budget,
      transport,
      observe: observeStatus,
      ...(options.retry !== undefined ? { retry: options.retry } : {}),
    });
  const appClient = clientFor(auth.appToken());
  const accounts = auth.serviceAccountNames().map((name) => ({ name, client: clientFor(auth.serviceAccountToken(name)), availability: auth.availability(name) }));

  const sync = new DirectorySync({ client: appClient, directory, config: config.directory, logger });
  const richConfig = config.webhook?.richNotifications;
  let keyring: NotificationKeyring | undefined;
  const verifier =
    richConfig === undefined
      ? undefined
      : new ValidationTokenVerifier({
          authorityHost: config.authorityHost,
          tenantId: config.tenantId,
          clientId: config.clientId,
          clock,
          logger,
          getJson: async (url) => {
            const r = await transport.request(url, { headers: { accept: 'application/json' } });
            if (!r.ok) throw new Error(`GET ${url}: HTTP ${r.status}`);
            return (await r.json()) as unknown;
          },
        });
  const reload = options.reload ?? (() => Promise.resolve());
  const stateStore = options.stateStore;
  const stored =
    stateStore !== undefined && config.webhook !== undefined
      ? new StoredSubscriptions({ load: () => stateStore.load(), reload: () => reload(['graphSubscriptions']), clock, intervalMs: STORE_REREAD_MS })
      : undefined;
  const keyStore = options.notificationKeys ?? new MemoryNotificationKeyStore();
  const loadKeys = async (): Promise<void> => {
    if (richConfig === undefined) return;
    try {
      keyring = await loadNotificationKeys({
        ...(richConfig.certPath !== undefined && richConfig.keyPath !== undefined
          ? { files: { certPem: read(richConfig.certPath), keyPem: read(richConfig.keyPath), ...(richConfig.certificateId !== undefined ? { id: richConfig.certificateId } : {}) } }
          : {}),
        store: keyStore,
        logger,
        clock,
      });
    } catch (error) {
      // subscriptions are then created basic: notifications still work, with a read-back each
      logger.error({ err: error }, 'graph: graph.webhook.richNotifications: no usable key pair (check certPath/keyPath); using basic notifications');
    }
  };
  // a rich item naming a certificate this node never loaded: another node's key pair, in the store
  const keysAgain = new StoreRefresh(async () => {
    await reload(['graphNotificationKeys']);
    await loadKeys();
  }, clock, STORE_REREAD_MS);
  const reader = new PresenceReader({
    appClient,
    accounts,
    directory,
    store,
    logger,
    clock,
    poll: {
      mode: config.poll.mode,
      requestsPer30s: pollRequestsPer30s(config.poll.share),
      intervalSec: config.poll.intervalSec,
      safetyReadSec: config.poll.safetyReadSec,
    },
    observer: observerRef,
    ...(verifier !== undefined ? { rich: { keyring: () => keyring, verifier, refreshKeys: () => keysAgain.run() } } : {}),
    ...(stored !== undefined ? { stored } : {}),
    ...(config.webhook !== undefined ? { webhook: config.webhook } : {}),
    ...(options.stateStore !== undefined ? { stateStore: options.stateStore } : {}),
    ...(GUID.test(config.tenantId) ? { tenantId: config.tenantId } : {}),
    ...(options.reader ?? {}),
  });
  // the calendar reader and the writer are made anew at each start of their job: what one knew is stale after a stop
  const newCalendar = (): CalendarReader | undefined => {
    if (!config.calendar.enabled) return undefined;
    const calendarBudget = new RequestBudget(clock, calendarRequestsPer30s(config));
    return new CalendarReader({
        client: createGraphClient({
          graphBaseUrl: config.graphBaseUrl,
          tokens: auth.appToken(),
          budget,
          share: calendarBudget,
          transport,
          observe: observeStatus,
          ...(options.retry !== undefined ? { retry: options.retry } : {}),
        }),
        directory,
        store,
        clock,
        logger,
        refreshMinutes: config.calendar.refreshMinutes,
        lookaheadHours: config.calendar.lookaheadHours,
        budget: calendarBudget,
      });
  };
  const newWriter = (): PresenceWriter | undefined =>
    config.writer.enabled
      ? new PresenceWriter({
        client: appClient,
        directory,
        store,
        logger,
        clock,
        sessionId: config.clientId,
        dnd: config.writer.dnd,
        expirationMinutes: config.writer.expirationMinutes,
        statusMessage: config.writer.statusMessage,
        duringCall: config.writer.duringCall,
        ...(options.writer?.restoreGraceMs !== undefined ? { restoreGraceMs: options.writer.restoreGraceMs } : {}),
        ...(options.savedPresence !== undefined ? { saved: options.savedPresence } : {}),
        observer: observerRef,
      })
      : undefined;
  let calendar = newCalendar();
  let writer = newWriter();
  /** Jobs started on this node and not stopped since. */
  const running = new Set<string>();
  if (config.serviceAccounts.length > 0 && config.webhook === undefined) logger.info('graph: service accounts without graph.webhook: polling only');
  for (const a of config.serviceAccounts) {
    if (a.signIn === 'password') logger.info({ account: a.username }, 'graph: service account signs in with its password (ROPC): it fails once MFA is required; signIn: deviceCode works with MFA');
  }

  const dir: DirectorySyncStatus = {};
  let excluded = new Map<string, string>();
  let syncTimer: Timer | undefined;
  let started = false;
  let stopped = false;
  let syncing: Promise<DirectorySyncResult> | undefined;

  const recordSync = (r: DirectorySyncResult): void => {
    dir.lastSyncAt = new Date(clock.now()).toISOString();
    delete dir.lastError;
    dir.mode = r.mode;
    dir.users = r.usersListed;
    dir.matched = r.matched.length;
    dir.unmatchedPersons = r.unmatchedPersons.length;
    dir.unmatchedUsers = r.unmatchedUsers.length;
    dir.conflicts = r.conflicts.slice(0, 50);
    dir.excluded = r.excluded.slice(0, 200);
    excluded = new Map(r.excluded.map((x) => [x.personId, x.reason]));
  };

  const runSync = (full: boolean): Promise<DirectorySyncResult> => {
    syncing ??= (full ? sync.fullSync() : sync.deltaSync())
      .then((r) => {
        recordSync(r);
        const at = clock.now();
        identitiesAt = at;
        options.identities?.replace(identitiesOf(directory, at));
        if (started) {
          reader.refreshUsers();
          writer?.syncAll();
        }
        return r;
      })
      .catch((error: unknown) => {
        const f = graphFailure(error);
        dir.lastError = `${f.status || ''} ${f.code} ${f.message}`.trim();
        logger.warn({ status: f.status, code: f.code, reason: f.message }, 'graph: directory sync failed');
        throw error;
      })
      .finally(() => {
        syncing = undefined;
      });
    return syncing;
  };

  /** The newest sync whose identities this node holds (its own, or one read from the shared store). */
  let identitiesAt = Number.NEGATIVE_INFINITY;
  let followTimer: Timer | undefined;
  /** A node without the sync job takes in what the node with it found (STORE_REREAD_MS). */
  const followIdentities = (): void => {
    const shared = options.identities;
    if (shared === undefined || stopped) return;
    followTimer = clock.after(shared.followMs ?? STORE_REREAD_MS, () => {
      followTimer = undefined;
      if (stopped) return;
      if (running.has(JOBS.directorySync) || syncing !== undefined) {
        followIdentities();
        return;
      }
      shared
        .load()
        .then((entries) => {
          const newest = entries.reduce((m, e) => Math.max(m, e.at), Number.NEGATIVE_INFINITY);
          if (stopped || running.has(JOBS.directorySync) || entries.length === 0 || newest <= identitiesAt) return;
          identitiesAt = newest;
          const changed = applyIdentities(directory, entries);
          if (changed === 0) return;
          logger.info({ changed, syncedAt: new Date(newest).toISOString() }, 'graph: Teams identities taken from the node that syncs the directory');
          if (started) {
            reader.refreshUsers();
            writer?.syncAll();
          }
        })
        .catch((err: unknown) => logger.warn({ err: String(err) }, 'graph: reading the shared Teams identities failed'))
        .finally(followIdentities);
    });
  };

  const armSync = (delayMs: number): void => {
    if (stopped || !running.has(JOBS.directorySync)) return;
    syncTimer?.cancel();
    syncTimer = clock.after(delayMs, () => {
      syncTimer = undefined;
      runSync(dir.lastSyncAt === undefined).then(
        () => armSync(config.directory.syncIntervalMin * 60_000),
        () => armSync(Math.min(60_000, config.directory.syncIntervalMin * 60_000)),
      );
    });
  };

  let opened: Promise<void> | undefined;
  let startedAll = false;
  let synced = true;
  const open = (): Promise<void> => {
    opened ??= (async () => {
      // device-code accounts signed in before come back from the stored token cache
      await auth.start();
      try {
        await runSync(true);
      } catch {
        // logged; persons keep identities given in the config, the sync is retried
        synced = false;
      }
      started = true;
      followIdentities();
      await loadKeys();
      // the webhook of a node without the subscriptions job knows them from the store
      if (stored !== undefined && stateStore !== undefined) stored.remember(await stateStore.load().catch(() => []));
    })();
    return opened;
  };

  // With subscriptions the poller reads the users they do not cover (and the safety reads of those they do):
  // it needs the subscriptions' coverage, so both are one job on one node. Without, the poller is its own.
  const jobs: string[] = [reader.subscribes ? JOBS.graphSubscriptions : JOBS.graphPoller];
  if (writer !== undefined) jobs.push(JOBS.graphWriter);
  if (calendar !== undefined) jobs.push(JOBS.calendar);
  jobs.push(JOBS.directorySync);
  /** Jobs started here once already: their parts are made anew at the next start. */
  const ran = new Set<string>();

  const startJob = async (job: string): Promise<void> => {
    if (stopped || running.has(job) || !jobs.includes(job)) return;
    running.add(job);
    const again = ran.has(job);
    ran.add(job);
    switch (job) {
      case JOBS.graphPoller:
        await reader.startPolling();
        return;
      case JOBS.graphSubscriptions:
        await reader.startPolling();
        // another node may have renewed or replaced them, refreshed a device-code token or made a key pair
        await reload(['graphSubscriptions', 'graphTokenCache', 'graphNotificationKeys']);
        if (again) await loadKeys();
        await reader.startSubscriptions();
        return;
      case JOBS.graphWriter:
        await reload(['graphSavedPresence']);
        if (again) writer = newWriter();
        await writer?.start();
        return;
      case JOBS.calendar:
        if (again) calendar = newCalendar();
        // the first read runs beside the rest: a missing permission must not hold the start up
        void calendar?.start();
        return;
      case JOBS.directorySync:
        armSync(synced ? config.directory.syncIntervalMin * 60_000 : 60_000);
        return;
    }
  };

  const stopJob = async (job: string): Promise<void> => {
    if (!running.delete(job)) return;
    switch (job) {
      case JOBS.graphPoller:
        await reader.stopPolling();
        return;
      case JOBS.graphSubscriptions:
        await reader.stopSubscriptions();
        await reader.stopPolling();
        return;
      case JOBS.graphWriter:
        await writer?.stop();
        return;
      case JOBS.calendar:
        await calendar?.stop();
        return;
      case JOBS.directorySync:
        syncTimer?.cancel();
        syncTimer = undefined;
        await syncing?.catch(() => undefined);
        return;
    }
  };

  return {
    webhook: {
      handleValidation: (query) => reader.handleValidation(query),
      handleNotifications: (body) => reader.handleNotifications(body),
    },
    jobs,
    open,
    startJob,
    stopJob,
    async start() {
      if (startedAll || stopped) return;
      startedAll = true;
      await open();
      for (const job of jobs) await startJob(job);
      logger.info({ users: reader.status().users, accounts: accounts.length, webhook: config.webhook !== undefined, writer: writer !== undefined }, 'graph: started');
    },
    async stop(stopOptions = {}) {
      if (stopped) return;
      stopped = true;
      running.clear();
      auth.stop();
      syncTimer?.cancel();
      syncTimer = undefined;
      followTimer?.cancel();
      followTimer = undefined;
      // nothing waits on the budget any more; what is in flight gets a bounded grace period
      budget.drain();
      let grace: Timer | undefined;
      // wall-clock on purpose: a stop is bounded in real time even when a test drives `clock` by hand
      const bounded = new Promise<void>((resolve) => {
        grace = systemClock.after(STOP_GRACE_MS, () => {
          logger.warn('graph: requests still running at stop; closing anyway');
          resolve();
        });
      });
      await Promise.race([
        (async () => {
          await syncing?.catch(() => undefined);
          await writer?.stop();
          await calendar?.stop();
          await reader.stop(stopOptions);
        })(),
        bounded,
      ]);
      grace?.cancel();
      transport.close();
    },
    status() {
      const s: GraphStatus = { started, tokens: auth.status(), accounts: auth.accountStatus(), budget: budget.status(), directory: { ...dir }, reader: reader.status() };
      if (writer !== undefined) s.writer = writer.status();
      if (calendar !== undefined) s.calendar = calendar.status();
      const key = keyring?.current;
      if (key !== undefined) s.notificationKey = { certificateId: key.id, thumbprint: key.thumbprint, notAfter: new Date(key.notAfter).toISOString() };
      return s;
    },
    syncDirectory: () => runSync(false),
    pollNow: () => reader.pollNow(),
    readCalendarsNow: () => calendar?.refresh() ?? Promise.resolve(),
    async idle() {
      await syncing?.catch(() => undefined);
      await reader.idle();
      await writer?.idle();
      await calendar?.idle();
    },
    observe(next) {
      observer = next;
    },
    readUsers: (userIds) => reader.readNow(userIds),
    teamsExcluded: (personId) => excluded.get(personId),
    signIn: (account) => auth.startSignIn(account),
  };
}

/** The path to mount graphWebhookRoute at: the path of graph.webhook.publicUrl (undefined without a webhook). */
export function webhookPath(config: GraphConfig): string | undefined {
  return config.webhook === undefined ? undefined : new URL(config.webhook.publicUrl).pathname;
}

/** Create and start; see createGraph for mounting the webhook first. */
export async function startGraph(options: GraphOptions): Promise<GraphRuntime> {
  const graph = createGraph(options);
  await graph.start();
  return graph;
}
