/**
 * The JSON shapes of the admin API: one row per user (both presences, what
 * watchers see, the last change), the connector list of the diagnostics
 * page, and the nodes of the service with the job each runs. Types only and no imports, so the diagnostics page's browser script
 * (diagnostics-page/diagnostics.ts) is checked against the same shapes.
 */

/** One word for what a watcher's lamp shows, for filtering. */
export type SeenState = 'ringing' | 'on-the-phone' | 'dnd' | 'busy' | 'meeting' | 'away' | 'offline' | 'available';

export interface UserRow {
  id: string;
  name: string;
  extension: string | null;
  aors: string[];
  teams: { userId: string | null; upn: string | null } | null;
  /** why there is no Teams identity (present only then, when known) */
  teamsExcluded?: string;
  teamsPresence: { availability: string; activity: string; statusMessage: string | null; at: number } | null;
  telephony: { line: string; dnd: boolean; calls: number; origin: string; at: number } | null;
  sip: { basic: string; activities: string[]; note: string | null; origin: string; at: number } | null;
  watchersSee: {
    state: SeenState;
    basic: string;
    activities: string[];
    dnd: boolean;
    ringing: boolean;
    note: string | null;
    calls: Array<{ id: string; phase: string; direction: string | null; synthetic: boolean }>;
    source: string;
    /** Teams status and out-of-office texts consoles get as PIDF notes. */
    consoleNotes: string[];
    /** When the shown activity ends (RPID until; a meeting's end from the calendar), ISO time; null when not known. */
    until: string | null;
  };
  revision: number;
  lastChange: { at: number; source: string };
  /** Source priority deciding the view, first wins (mapping.groups, else mapping.prefer). */
  sourcePriority: string[];
  /** Forwarding the person's desk phones set (as-feature-event): kept by the gateway, sent to all their phones, not synced to Teams. */
  phoneForwarding: Array<{ type: string; on: boolean; to: string | null; ringCount: number | null; at: number }>;
}


export interface HistoryRow {
  at: number;
  source: string;
  revision: number;
  state: SeenState;
  activities: string[];
  dnd: boolean;
  calls: number;
  note: string | null;
}


export interface UserDetail extends UserRow {
  watchers: Record<string, number>;
  history: HistoryRow[];
}


export type ConnectorKind = 'trunk' | 'graph-auth' | 'graph-subscription' | 'graph-poll' | 'graph-calendar' | 'webhook' | 'security' | 'store';

export interface Connector {
  kind: ConnectorKind;
  name: string;
  /** true: up, false: down, null: not known yet */
  ok: boolean | null;
  detail: string;
  /** ms since epoch, when the connector has a relevant time (expiry, last delivery) */
  at?: number;
  /** badge text instead of Up / Down / Unknown */
  badge?: string;
  /** what the page offers on the card: a device-code sign-in */
  action?: 'sign-in';
  /** a device-code sign-in under way: what to enter where */
  prompt?: { userCode: string; verificationUri: string; expiresAt: number };
  /** With nodes sharing one store: the job behind the card (trunk:<name>, graph:subscriptions, ...) and the node running it. */
  job?: { job: string; holder: string | null; self: boolean };
}

/** One gateway node of the service, as this node sees it (GET /api/cluster, the Nodes panel). */
export interface ClusterNodeRow {
  id: string;
  /** the node answering this request */
  self: boolean;
  /**
   * true: its heartbeat is live and was seen within the node TTL; false: gone (its heartbeat
   * expired or it stopped) or stale; null: not known, this node cannot reach the shared store.
   */
  up: boolean | null;
  sip: string[];
  http: string | null;
  /** ms epoch; null when its heartbeat did not say */
  startedAt: number | null;
  /** ms epoch of its last heartbeat seen */
  seenAt: number;
  /** watcher subscriptions it owns, as of its last heartbeat */
  subscriptions: number;
  /** the jobs whose lease it holds, as of its last heartbeat */
  leases: string[];
}

/** A job that runs once in the service and who runs it (a lease: trunk:<name>, graph:subscriptions, ...). */
export interface ClusterJobRow {
  /** the lease name */
  job: string;
  kind: 'trunk' | 'graph' | 'other';
  /** the trunk's name, or the Graph job's (subscriptions, poller, directory, writer, calendar) */
  name: string;
  /** the node holding the lease; null: nobody holds it now */
  holder: string | null;
  /** whether the holder is this node */
  self: boolean;
  /** whether the holder is among the nodes up; null when not known (store unreachable, or no holder) */
  holderUp: boolean | null;
  /** the fencing token of the grant */
  token: number | null;
  /** ms epoch the lease runs out unless renewed; null: it does not (a single node's) */
  expiresAt: number | null;
  /** ms until then, from `now` of the answer */
  expiresInMs: number | null;
}

/** The service this node is part of: its store, the nodes, and who runs each job. */
export interface ClusterView {
  /** this node's id */
  nodeId: string;
  store: 'sqlite' | 'memory' | 'redis';
  /** the shared store's address without credentials (Redis only) */
  storeUrl: string | null;
  /** whether the shared store is reachable now (always true for a single node) */
  connected: boolean;
  /** a node not seen within this is taken for down */
  nodeTtlMs: number;
  /** ms epoch the view was made */
  now: number;
  /** this node first, then by id; nodes gone recently stay listed as down for a while */
  nodes: ClusterNodeRow[];
  /** by lease name */
  jobs: ClusterJobRow[];
}
