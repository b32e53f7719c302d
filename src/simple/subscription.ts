/**
 * One watcher's subscription: the notifier side of an RFC 6665 dialog usage.
 * Kept compact (100k of them must fit well under 400 MB): only the strings
 * needed to build NOTIFYs, never the SUBSCRIBE itself.
 */
import type { ClientListRecord, WatcherSubscriptionRecord } from '../store/records.js';
import type { Dialog } from '../sip/dialog.js';
import type { Endpoint, TransportProtocol } from '../sip/message.js';
import type { TimerHandle } from '../util/timer-wheel.js';
import type { BodyFormat, EventPackage } from './event-package.js';
import { sharedStrings } from './intern.js';

/**
 * RFC 6665 §4.2 notifier states. `pending` is not used: everyone the
 * directory knows is authorized for now.
 */
export type SubscriptionStateName = 'init' | 'active' | 'terminated';

/** Why a subscription ended; the ones with a wire reason go in Subscription-State (RFC 6665 §4.1.3). */
export type TerminationCause =
  | 'timeout' // expired without refresh (reason=timeout)
  | 'unsubscribed' // Expires: 0 from the watcher (no reason)
  | 'fetch' // Expires: 0 on a new subscription (reason=timeout, RFC 6665 §4.4.3)
  | 'noresource' // the resource went away (reason=noresource)
  | 'rejected' // authorization withdrawn (reason=rejected)
  | 'notify-failed' // NOTIFY answered 481/408/... : the watcher is gone, nothing is sent
  | 'moved'; // another gateway node of the cluster serves it now (Notifier.release): nothing is sent

const WIRE_REASON: Readonly<Record<TerminationCause, string | undefined>> = {
  timeout: 'timeout',
  unsubscribed: undefined,
  fetch: 'timeout',
  noresource: 'noresource',
  rejected: 'rejected',
  'notify-failed': undefined,
  moved: undefined,
};

/**
 * A subscription as plain data, for persistence: the store's record
 * (`id` is our tag).
 */
export type SubscriptionSnapshot = WatcherSubscriptionRecord;

/** Where the notifier reports subscriptions to keep (persistence); called synchronously, must be cheap. */
export interface SubscriptionPersistence {
  /** Created, refreshed or restored: keep `sub.snapshot()`. Also called by a sweep for subscriptions whose CSeq moved. */
  save(sub: Subscription): void;
  /** Ended: forget the subscription with our tag `id`. */
  remove(id: string): void;
}

export interface SubscriptionInit {
  pkg: EventPackage;
  eventId: string | undefined;
  resource: string;
  entity: string;
  format: BodyFormat;
  /** The dialog the SUBSCRIBE made (RFC 3261 §12.1.1), or the saved one. */
  dialog: Dialog;
  /** Our identity for the From of NOTIFYs: the SUBSCRIBE's To value with our tag. */
  localParty: string;
  /** The watcher for the To of NOTIFYs: the SUBSCRIBE's From value (with its tag). */
  remoteParty: string;
  transport: TransportProtocol;
  connectionId: string | undefined;
}

/**
 * A copy of `s` that does not keep the parsed message alive: header values are
 * slices of the whole header block, and a slice retains its parent string.
 */
export function detach(s: string): string {
  return s.length < 13 ? s : Buffer.from(s, 'utf8').toString('utf8');
}

/**
 * A list subscription's own state (RFC 4662), as the subscription and the
 * notifier use it; the resource list server (resource-lists.ts) provides it.
 */
export interface ListState {
  /** The next NOTIFY carries the full state of the list. */
  fullStateNext(): void;
  /** These members changed since the last NOTIFY. */
  changed(members: ReadonlySet<string>): void;
  /** The RLMI multipart body of the next NOTIFY. */
  render(sub: Subscription): { body: Buffer; contentType: string };
  /** A client-defined list (RFC 5367): what rebuilds it after a restart; undefined for configured lists. */
  clientList?(): ClientListRecord | undefined;
}

/** The notifier's side of the dialog is the subscription itself (no object of its own: 100k of them). */
export class Subscription implements Dialog {
  private stateName: SubscriptionStateName = 'init';
  readonly pkg: EventPackage;
  readonly eventId: string | undefined;
  readonly resource: string;
  readonly entity: string;
  readonly format: BodyFormat;
  readonly callId: string;
  readonly localTag: string;
  readonly remoteTag: string;
  /** the To value without our tag, shared by every watcher of the same resource (see localParty) */
  private readonly localBase: string;
  /** localBase is the whole From value (no tag of ours to add: restored from an unusual snapshot) */
  private readonly localWhole: boolean;
  readonly remoteParty: string;
  /** Contact of the watcher; replaced by a refresh's Contact (SUBSCRIBE is a target refresh). */
  remoteTarget: string;
  readonly routeSet: readonly string[];
  remoteCSeq: number;
  /** CSeq of our last NOTIFY (src/sip/dialog.ts nextLocalCSeq). */
  localCSeq: number;
  /** Transport the SUBSCRIBE came on (default for NOTIFYs). */
  transport: TransportProtocol;
  connectionId: string | undefined;
  /** Resolved next hop for NOTIFYs; cleared when the target changes. */
  destination: Endpoint | undefined = undefined;
  /** ms on the notifier clock */
  expiresAt = 0;
  timer: TimerHandle | undefined = undefined;
  /** Version for the next NOTIFY body (RFC 4235 §4.1: 0 first, +1 each). */
  version = 0;
  /** A NOTIFY is outstanding; the next one waits (RFC 6665 §4.2.2 ordering). */
  inFlight = false;
  /** State changed while a NOTIFY was outstanding: send the latest full state after it. */
  dirty = false;
  /** Body of the last NOTIFY sent (shared with the resource's other watchers through the body cache). */
  lastBody: Buffer | undefined = undefined;
  /** The terminating NOTIFY has gone out (or must not be sent). */
  finalSent = false;
  cause: TerminationCause | undefined = undefined;
  /** Set when the subscription is to a resource list (RFC 4662): it renders the NOTIFY bodies. */
  list: ListState | undefined = undefined;
  /** ms epoch of creation (kept across restarts). */
  createdAt = 0;

  constructor(init: SubscriptionInit) {
    this.pkg = init.pkg;
    this.eventId = init.eventId === undefined ? undefined : detach(init.eventId);
    this.resource = init.resource;
    this.entity = sharedStrings.get(init.entity);
    this.format = init.format;
    const d = init.dialog;
    this.callId = detach(d.callId);
    this.localTag = d.localTag;
    this.remoteTag = detach(d.remoteTag);
    const ours = `;tag=${d.localTag}`;
    this.localWhole = !init.localParty.endsWith(ours);
    this.localBase = this.localWhole ? detach(init.localParty) : sharedStrings.get(init.localParty.slice(0, -ours.length));
    this.remoteParty = detach(init.remoteParty);
    this.remoteTarget = detach(d.remoteTarget);
    this.routeSet = d.routeSet.length === 0 ? d.routeSet : d.routeSet.map(detach);
    this.remoteCSeq = d.remoteCSeq;
    this.localCSeq = d.localCSeq;
    this.transport = init.transport;
    this.connectionId = init.connectionId;
  }

  /** Our identity for the From of NOTIFYs: the SUBSCRIBE's To value with our tag. */
  get localParty(): string {
    return this.localWhole ? this.localBase : `${this.localBase};tag=${this.localTag}`;
  }

  get state(): SubscriptionStateName {
    return this.stateName;
  }

  get event(): string {
    return this.pkg.event;
  }

  /** init → active (accepted), or active → active (refreshed). False from terminated. */
  activate(expiresAt: number): boolean {
    if (this.stateName === 'terminated') return false;
    this.stateName = 'active';
    this.expiresAt = expiresAt;
    return true;
  }

  /** init|active → terminated. False when already terminated (the first cause stands). */
  terminate(cause: TerminationCause): boolean {
    if (this.stateName === 'terminated') return false;
    this.stateName = 'terminated';
    this.cause = cause;
    if (cause === 'notify-failed' || cause === 'moved') this.finalSent = true;
    return true;
  }

  /** Seconds left, rounded up, never negative. */
  remainingSeconds(now: number): number {
    return Math.max(0, Math.ceil((this.expiresAt - now) / 1000));
  }

  /** Subscription-State header value (RFC 6665 §8.2.3) for a NOTIFY sent now. */
  subscriptionStateValue(now: number): string {
    if (this.stateName !== 'terminated') return `active;expires=${this.remainingSeconds(now)}`;
    const reason = this.cause === undefined ? undefined : WIRE_REASON[this.cause];
    return reason === undefined ? 'terminated' : `terminated;reason=${reason}`;
  }

  /** Everything needed to rebuild this subscription after a restart (plain data, JSON-able). */
  snapshot(): SubscriptionSnapshot {
    const snap: SubscriptionSnapshot = {
      id: this.localTag,
      event: this.pkg.event,
      resource: this.resource,
      entity: this.entity,
      callId: this.callId,
      localTag: this.localTag,
      remoteTag: this.remoteTag,
      localParty: this.localParty,
      remoteParty: this.remoteParty,
      remoteTarget: this.remoteTarget,
      routeSet: this.routeSet.length === 0 ? [] : [...this.routeSet],
      localCseq: this.localCSeq,
      remoteCseq: this.remoteCSeq,
      expiresAt: this.expiresAt,
      contentType: this.format.contentType,
      variant: this.format.variant,
      transport: this.transport,
      version: this.version,
      createdAt: this.createdAt,
    };
    if (this.eventId !== undefined) snap.eventId = this.eventId;
    if (this.destination !== undefined) snap.destination = { ...this.destination };
    const clientList = this.list?.clientList?.();
    if (clientList !== undefined) snap.clientList = clientList;
    return snap;
  }

  /** Event header value for NOTIFYs: the package, and the id when the SUBSCRIBE had one. */
  eventHeaderValue(): string {
    return this.eventId === undefined ? this.pkg.event : `${this.pkg.event};id=${this.eventId}`;
  }
}
