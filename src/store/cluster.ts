/**
 * What several gateway nodes sharing one store need of it, as interfaces the
 * wiring uses. The Redis implementation is in ./redis/; a single node (SQLite
 * or memory store) uses ./single-node.ts, where every lease is always held
 * and the bus loops back to nothing.
 *
 *  - Membership: each node announces itself with a heartbeat that expires
 *    (a lease on its own name); the others see it go and take over what it
 *    owned (watcher subscriptions, publications).
 *  - Leases: a job that must run once in the service (a trunk's upstream
 *    side, the Graph subscriptions and their renewals, the poller, the
 *    directory sync, the Graph writer) runs only on the node holding its
 *    lease. Each grant carries a fencing token that grows with every grant,
 *    and a holder that cannot renew in time stops the job itself before the
 *    lease can have expired in the store: two nodes never both run a job,
 *    partition or not.
 *  - Bus: the canonical state's inputs (src/core/hub-input.ts) and a few
 *    control messages, delivered to every other node, in the order each
 *    node sent them.
 */
import type { HubInput } from '../core/hub-input.js';
import type { PublicationRecord, WatcherSubscriptionRecord } from './records.js';

export interface NodeInfo {
  nodeId: string;
  /** SIP listen address shown on the diagnostics page (host:port per transport). */
  sip: string[];
  /** HTTP base URL (diagnostics, admin). */
  http?: string;
  /** ms epoch */
  startedAt: number;
  /** ms epoch of the last heartbeat */
  seenAt: number;
  /** Watcher subscriptions this node owns (as of its last heartbeat). */
  subscriptions: number;
  /** Jobs whose lease this node holds. */
  leases: string[];
}

export interface Membership {
  readonly nodeId: string;
  /** Live nodes, this one included (as of the last heartbeat read). */
  nodes(): NodeInfo[];
  /** A node's heartbeat expired: called once per dead node, on every survivor. */
  onNodeDown(listener: (nodeId: string) => void): () => void;
  onNodeUp(listener: (info: NodeInfo) => void): () => void;
  /** What this node says of itself at its next heartbeat. */
  setLocal(info: Partial<Pick<NodeInfo, 'subscriptions' | 'leases' | 'sip' | 'http'>>): void;
}

export interface LeaseHandlers {
  /** This node now holds the lease; `token` is larger than every earlier grant of this job. */
  acquired(token: number): void | Promise<void>;
  /** This node no longer holds it (lost, could not renew in time, or released): stop the job now. */
  lost(reason: 'expired' | 'taken' | 'released' | 'unreachable'): void | Promise<void>;
}

export interface LeaseInfo {
  job: string;
  holder: string | undefined;
  token: number | undefined;
  /** ms epoch the lease runs out unless renewed */
  expiresAt: number | undefined;
}

export interface Leases {
  /**
   * Compete for `job` for as long as the returned function is not called:
   * acquire when free, renew while held, call the handlers on every change.
   * The returned function releases (a clean stop hands the job over at once).
   */
  hold(job: string, handlers: LeaseHandlers): () => Promise<void>;
  /** Whether this node holds `job` now (and its token). */
  held(job: string): number | undefined;
  /** Every job's holder, as last read (diagnostics page). */
  list(): LeaseInfo[];
}

/** What goes between nodes. `from` is the sending node; a node never receives its own messages. */
export type BusMessage =
  | { type: 'input'; from: string; input: HubInput }
  /** A subscription (watcher, by id = its To tag) or publication (by ETag) moved to `to`; its old owner drops it without a NOTIFY. */
  | { type: 'moved'; from: string; what: 'subscription' | 'publication'; id: string; to: string };

export interface ChangeBus {
  publish(message: BusMessage): void;
  onMessage(listener: (message: BusMessage) => void): () => void;
}

/**
 * What the store knows of ownership (watcher subscriptions and
 * publications are owned by the node that accepted them or took them over).
 */
export interface Ownership {
  /**
   * Atomically move everything `deadNode` owned to this node and return the
   * records (one survivor gets each; a second call for the same node returns
   * nothing).
   */
  claimNode(deadNode: string): Promise<{ subscriptions: WatcherSubscriptionRecord[]; publications: PublicationRecord[] }>;
  /** A watcher subscription by id (its To tag) wherever it is owned; moved to this node when found. */
  claimSubscription(id: string): Promise<WatcherSubscriptionRecord | undefined>;
  /** A publication by entity-tag wherever it is owned; moved to this node when found. */
  claimPublication(etag: string): Promise<PublicationRecord | undefined>;
  /**
   * Of `ids` (this node holds them in memory), those another node owns now: taken over while this
   * node could not reach the store (a partition longer than the node TTL). They are the other
   * node's to notify; this one lets them go.
   */
  ownedElsewhere(what: 'subscription' | 'publication', ids: readonly string[]): Promise<string[]>;
  /** Owner of a subscription (diagnostics), undefined when not stored. */
  ownerOf(what: 'subscription' | 'publication', id: string): Promise<string | undefined>;
}

/** The shared person state: the latest input per person and slot (inputSlot), to start a node with. */
export interface SharedPersonState {
  /** Every stored input, oldest first (applied in that order at start). */
  loadInputs(): Promise<HubInput[]>;
  save(input: HubInput): void;
}

export interface Cluster {
  readonly nodeId: string;
  readonly membership: Membership;
  readonly leases: Leases;
  readonly bus: ChangeBus;
  readonly ownership: Ownership | undefined;
  readonly personState: SharedPersonState | undefined;
  /** Whether the shared store is reachable now (/readyz, diagnostics page). */
  connected(): boolean;
  onConnected(listener: (connected: boolean) => void): () => void;
  close(): Promise<void>;
}

/** The jobs that run once in the service, by lease name. */
export const JOBS = {
  /** A trunk's upstream SUBSCRIBEs and PUBLISHes. */
  trunk: (name: string): string => `trunk:${name}`,
  /** The Graph presence subscriptions and their renewals (and the webhook health check). */
  graphSubscriptions: 'graph:subscriptions',
  /** The polling fallback, when there are no Graph subscriptions (with them it is part of graphSubscriptions: it reads their coverage). */
  graphPoller: 'graph:poller',
  /** The directory sync. */
  directorySync: 'graph:directory',
  /** The Graph writer (setPresence and friends): one node writes each person's Teams target. */
  graphWriter: 'graph:writer',
  /** The calendar reader. */
  calendar: 'graph:calendar',
} as const;
