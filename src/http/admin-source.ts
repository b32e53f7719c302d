/**
 * What the admin API and the diagnostics page read and do, as one interface
 * the composition root implements (app.ts). The HTTP side imports no SIP,
 * Graph or trunk code: statuses are described here structurally, field for
 * field compatible with GraphRuntime.status() and Trunk.status().
 */
import type { Person } from '../core/directory.js';
import type { HistoryEntry } from '../core/history.js';
import type { PersonState, PresenceView } from '../core/person-state.js';
import type { ClusterView } from './admin-json.js';

export type WatcherEvent = 'presence' | 'dialog';
export type WatcherProfileName = 'rfc' | 'cisco' | 'polycom' | 'asterisk';
export const WATCHER_EVENTS: readonly WatcherEvent[] = ['presence', 'dialog'];
export const WATCHER_PROFILES: readonly WatcherProfileName[] = ['rfc', 'cisco', 'polycom', 'asterisk'];

/** One trunk's state (src/trunks TrunkStatus fits). */
export interface TrunkInfo {
  name: string;
  profile: string;
  directions: readonly string[];
  reachable: boolean | undefined;
  rttMs?: number;
  lastPingAt?: number;
  authenticated: boolean | undefined;
  subscriptions: { up: number; down: number };
  publications: { up: number; down: number };
  lastError?: { at: number; message: string };
}

/** One Graph change-notification subscription (src/graph SubscriptionStatus fits). */
export interface GraphSubscriptionInfo {
  account: string;
  users: number;
  subscriptionId?: string;
  /** ISO time */
  expiresAt?: string;
  state: 'active' | 'pending' | 'failed' | 'unused';
  failures: number;
  lastError?: string;
}

/** A service account's sign-in (src/graph AccountStatus fits). */
export interface GraphAccountInfo {
  account: string;
  method: 'deviceCode' | 'password';
  state: 'signed-out' | 'signing-in' | 'signed-in' | 'failed';
  usable: boolean;
  reason?: string;
  code?: string;
  prompt?: { userCode: string; verificationUri: string; message: string; expiresAt: number };
  signedInAt?: number;
  since: number;
}

/** What starting a sign-in gave: the account's status, or why not (404 unknown, 409 a password account, 503 no Graph side). */
export type SignInOutcome = { ok: true; account: GraphAccountInfo } | { ok: false; status: 404 | 409 | 503; message: string };

/** The Graph side's state (GraphRuntime.status() fits). */
export interface GraphInfo {
  started: boolean;
  tokens: ReadonlyArray<{ name: string; ok: boolean; lastAcquiredAt?: number; lastError?: string }>;
  accounts?: readonly GraphAccountInfo[];
  budget?: { throttled: number; pausedUntil?: number };
  reader: {
    users: number;
    lastPollAt?: string;
    lastPollError?: string;
    subscriptions: readonly GraphSubscriptionInfo[];
  };
  /** the calendar reader, when graph.calendar.enabled */
  calendar?: { state: string; people: number; busyNow: number; lastReadAt?: string; lastError?: string };
}

/** One node's heartbeat (src/store NodeInfo fits). */
export interface NodeFacts {
  nodeId: string;
  sip: readonly string[];
  http?: string;
  /** ms epoch */
  startedAt: number;
  /** ms epoch of its last heartbeat */
  seenAt: number;
  subscriptions: number;
  leases: readonly string[];
}

/** One job's lease (src/store LeaseInfo fits). */
export interface LeaseFacts {
  job: string;
  holder: string | undefined;
  token: number | undefined;
  /** ms epoch */
  expiresAt: number | undefined;
}

/** What the nodes' panel is made from (src/store Cluster: membership.nodes(), leases.list(), connected()). */
export interface ClusterFacts {
  nodeId: string;
  store: 'sqlite' | 'memory' | 'redis';
  /** the store's address as configured (credentials are taken out before it is shown) */
  storeUrl?: string;
  connected: boolean;
  nodes: readonly NodeFacts[];
  leases: readonly LeaseFacts[];
  nodeTtlMs: number;
}

/** Password-guessing and connection-limit counts since start (the security log's tally). */
export interface SecurityInfo {
  authFailures: number;
  /** requests refused with 403 (not allowed, or locked out) */
  refusals: number;
  lockouts: number;
  /** source+user pairs and users locked out now */
  activeLockouts: number;
  connectionsRefused: number;
  connectionsClosed: number;
}

export interface RenderedBody {
  contentType: string;
  body: string;
}

export interface ResyncResult {
  ok: boolean;
  /** what was done or why not, for a person */
  detail: string;
}

/** One forwarding type as a desk phone set it (kept by the gateway; not synced to Teams). */
export interface PhoneForwarding {
  type: string;
  on: boolean;
  to?: string;
  ringCount?: number;
  /** ms epoch */
  at: number;
}

export interface AdminSource {
  /** Every configured person, in directory order. */
  persons(): readonly Person[];
  /** The person's sources and the derived view (PresenceHub.state / .view). */
  state(personId: string): PersonState;
  view(personId: string): PresenceView;
  /** The source order deciding the person's view (their group's, else the global rule). */
  sourcePriority?(personId: string): readonly string[];
  /** Call forwarding the person's desk phones set (as-feature-event), per forwarding type. */
  forwarding?(personId: string): readonly PhoneForwarding[];
  /** Recent view changes, oldest first (ChangeHistory.entries). */
  history(personId: string): readonly HistoryEntry[];
  /** Live watcher subscriptions to the person, by event package. */
  watchers(personId: string): Readonly<Record<string, number>>;
  /** Called synchronously on every view change (PresenceHub.onChange); returns the unsubscribe. */
  onChange(listener: (personId: string) => void): () => void;
  trunks(): readonly TrunkInfo[];
  /** undefined: no Graph side configured. */
  graph(): GraphInfo | undefined;
  /** Why the person has no Teams identity (e.g. no usable Teams licence), when the Graph side knows. */
  teamsExcluded?(personId: string): string | undefined;
  /** Read the person's Teams presence again and re-announce the view to watchers. */
  resync(personId: string): Promise<ResyncResult>;
  /** Guessing and connection-limit counts; absent: not shown. */
  security?(): SecurityInfo;
  /** The body a new watcher of `event` with `profile` would get now; undefined: unknown person. */
  render(personId: string, event: WatcherEvent, profile: WatcherProfileName): RenderedBody | undefined;
  /** The nodes of the service and who runs each job (cluster-rows.ts); absent: not shown. */
  cluster?(): ClusterView;
  /** Start a device-code sign-in of a Graph service account (absent: no Graph side). */
  signIn?(account: string): Promise<SignInOutcome>;
}
