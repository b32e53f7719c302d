/**
 * The upstream watcher: the gateway SUBSCRIBEs at a trunk (a PBX or presence
 * server) for each carried person, to `dialog` (RFC 4235) or `presence`
 * (RFC 3856), and turns the NOTIFYs into the telephony state of core under
 * the source `trunk:<name>`. RFC 6665 subscriber side.
 *
 * Decisions:
 * - Every SUBSCRIBE (initial, refresh, re-subscription) goes through a
 *   per-trunk queue drained at the trunk's rate (default 50/s), so start-up,
 *   a trunk restart (all 481) or refreshAll never send one burst.
 * - A subscription that goes down keeps its last state for `graceMs`
 *   (default 30 s); if it is not back with fresh state by then, the trunk's
 *   telephony source for the person is cleared (not set to 'unknown'), so a
 *   stale "in call" never outlives the grace period.
 * - In-dialog requests follow the dialog (route set, else remote target) when
 *   that hop is an IP literal; otherwise, or with `target.stickyDestination`,
 *   they go to target.destination() (the trunk's outbound proxy or address).
 * - A NOTIFY whose body cannot be read is answered 400/413/415 and the dialog
 *   stays.
 */
import type { UpstreamSubscriptionRecord } from '../store/records.js';
import type { Call } from '../core/person-state.js';
import type { DigestCredentials } from '../sip/digest.js';
import {
  acceptRemoteCSeq,
  earlyDialog,
  ENDS_DIALOG_USAGE,
  isEstablished,
  literalHop,
  nextLocalCSeq,
  notifyDialog,
  ourContact,
  refreshTarget,
  remoteCSeqInOrder,
  restoredLocalCSeq,
  routeRequest,
  uacDialog,
  type Dialog,
  type EarlyDialog,
} from '../sip/dialog.js';
import { parseCSeq, parseEvent, parseExpires, parseSubscriptionState, tagOf, type SubscriptionState } from '../sip/header-values.js';
import { Headers } from '../sip/headers.js';
import { newCallId, newTag } from '../sip/ids.js';
import { createRequest, localFailure, type Endpoint, type SipRequest, type SipResponse, type TransportProtocol } from '../sip/message.js';
import type { Logger } from '../util/logger.js';
import { canTransition, throwIfStrict, type RefusalPolicy } from '../util/state-machine.js';
import type { TimerHandle } from '../util/timer-wheel.js';
import type { TelephonyState, RichState } from '../core/person-state.js';
import { reply } from './sip-util.js';
import type { InboundRequest } from './stack-port.js';
import { detach } from './subscription.js';
import {
  applyAuth,
  backoffDelay,
  longDelay,
  minExpiresOf,
  nameAddr,
  sendWithDigest,
  refreshDelayMs,
  retryAfterMs,
  UpstreamClient,
  type AuthHolder,
  type UpstreamClientOptions,
} from './upstream-client.js';
import type { NotifyReading } from './event-package.js';
import { isReading, type PackageRegistry } from './package-registry.js';
import type { DigestChallenge } from '../sip/digest.js';
import { answered, comingUp, isInFlight, isRefreshQueued, isUp, queueing, sending, SUBSCRIBER_TRANSITIONS, type SubscriberState } from './subscriber-state.js';

export interface UpstreamTarget {
  trunk: string;
  personId: string;
  /** Request-URI and To: the person at the trunk, sip:<user>@<domain>. */
  uri: string;
  event: 'dialog' | 'presence';
  accept: readonly string[];
  expires: number;
  /** Our identity in From (a tag is added). */
  fromUri: string;
  /** Next hop for requests outside a dialog: the outbound proxy or the trunk address, resolved. */
  destination: () => Promise<Endpoint>;
  credentials?: DigestCredentials;
  /** Fallback transport for in-dialog next hops without a transport parameter (default: the initial's). */
  transport?: TransportProtocol;
  /** SUBSCRIBEs per second on this trunk (default 50); the latest target of a trunk sets it. */
  ratePerSec?: number;
  /** Also feed rich presence (activities other than the line, note) from PIDF to sink.setSip. Default false. */
  richPresence?: boolean;
  /** Send in-dialog requests to destination() too (an outbound proxy that does not Record-Route). */
  stickyDestination?: boolean;
}

export interface UpstreamSink {
  setTelephony(personId: string, t: TelephonyState | undefined, source: string): void;
  setSip(personId: string, r: RichState | undefined, source: string): void;
}

/** An upstream dialog as plain data, for persistence: the store's record. */
export type UpstreamSubscriptionSnapshot = UpstreamSubscriptionRecord;

/** Where upstream dialogs to keep are reported (persistence); called synchronously. */
export interface UpstreamSubscriptionPersistence {
  /** Accepted (2xx to the SUBSCRIBE or a refresh). */
  save(snapshot: UpstreamSubscriptionSnapshot): void;
  /** The dialog is gone (down, removed, unsubscribed). */
  remove(trunk: string, personId: string, event: string): void;
}

export interface UpstreamWatcherOptions extends UpstreamClientOptions {
  sink: UpstreamSink;
  /** The event packages: NOTIFY bodies are read by the one whose format the Content-Type names. */
  packages: PackageRegistry;
  /** How long a down subscription keeps its last state before the source is cleared (default 30 s). */
  graceMs?: number;
  /** A state change the table refuses: 'log' (default: logged at error level, not made) or 'throw' (tests). */
  refusals?: RefusalPolicy;
}

type Kind = 'subscribe' | 'refresh' | 'unsubscribe';

/** Refusals that will not change soon: wait long before trying again. */
const LONG_REFUSAL: ReadonlySet<number> = new Set([403, 404, 405, 410, 415, 416, 420, 484, 488, 489, 501, 603, 604, 606]);
/** Upper bound for a Min-Expires we accept from a 423 (one day). */
const MAX_MIN_EXPIRES = 86_400;
/** Keep answering NOTIFYs of an unsubscribed dialog this long (RFC 3261 Timer F). */
const LINGER_MS = 32_000;

/** One watched person at one trunk (exported for its tests only). */
export class WatchItem implements AuthHolder {
  readonly key: string;
  readonly source: string;
  target: UpstreamTarget;
  /** Seconds asked for: target.expires, raised by a 423's Min-Expires. */
  expires: number;
  private current: SubscriberState = 'initial';
  /**
   * The identity of the SUBSCRIBE out: set when one goes out, dropped when
   * the state leaves the in-flight states (answered, down, removed), so an
   * answer to a superseded request is told apart from the current one. A
   * token, not the dialog: a NOTIFY before the 2xx replaces the dialog object.
   */
  private request: object | undefined = undefined;
  /**
   * The dialog of the current SUBSCRIBE: early until a 2xx or a NOTIFY
   * establishes it (src/sip/dialog.ts), early again once the subscription
   * went down; undefined before the first SUBSCRIBE.
   */
  dialog: EarlyDialog | Dialog | undefined = undefined;
  transport: TransportProtocol = 'udp';
  expiresAt = 0;
  /** A NOTIFY's expires= seen since the last request went out (ms), undefined when none. */
  notifyBound: number | undefined = undefined;
  failures = 0;
  timer: TimerHandle | undefined = undefined;
  graceTimer: TimerHandle | undefined = undefined;
  challenge: DigestChallenge | undefined = undefined;
  /** dialog-info version and calls of this subscription (RFC 4235 §4.1). */
  version: number | undefined = undefined;
  calls: Call[] | undefined = undefined;
  /** The sink holds state from this item. Not subscription state: it outlives the subscription through the grace period after it went down. */
  fed = false;
  /** Handed over (release): its dialog goes on at the trunk under another holder; nothing more is sent or saved for it here. */
  released = false;

  constructor(target: UpstreamTarget) {
    this.key = itemKey(target.trunk, target.personId);
    this.source = `trunk:${target.trunk}`;
    this.target = target;
    this.expires = target.expires;
  }

  get state(): SubscriberState {
    return this.current;
  }

  get up(): boolean {
    return isUp(this.current);
  }

  get callId(): string | undefined {
    return this.dialog?.callId;
  }

  /** Every state change goes through here (subscriber-state.ts); a change the table refuses is not made: logged, or thrown under 'throw'. */
  enter(next: SubscriberState, logger: Logger, refusals: RefusalPolicy = 'log'): boolean {
    if (canTransition(SUBSCRIBER_TRANSITIONS, this.current, next)) {
      this.current = next;
      if (!isInFlight(next)) this.request = undefined;
      return true;
    }
    throwIfStrict(refusals, 'upstream subscription', this.current, next);
    logger.error({ trunk: this.trunk, user: this.personId, from: this.current, to: next }, 'upstream subscription state change refused');
    return false;
  }

  /** A SUBSCRIBE goes out: enter the sending state; returns the request's identity (undefined when refused). */
  begin(logger: Logger, refusals: RefusalPolicy = 'log'): object | undefined {
    if (!this.enter(sending(this.current), logger, refusals)) return undefined;
    const request = {};
    this.request = request;
    return request;
  }

  /** True while `request` is the SUBSCRIBE out (not superseded by a newer one, a down or a removal). */
  answers(request: object | undefined): boolean {
    return request !== undefined && this.request === request;
  }

  get trunk(): string {
    return this.target.trunk;
  }

  get personId(): string {
    return this.target.personId;
  }
}

/** The early part of a dialog that went down: its Call-ID, tag and CSeqs, for answers still to come. */
function unestablished(d: EarlyDialog): EarlyDialog {
  return { callId: d.callId, localTag: d.localTag, localCSeq: d.localCSeq, remoteCSeq: d.remoteCSeq };
}

function itemKey(trunk: string, personId: string): string {
  return `${trunk}\n${personId}`;
}

interface Outcome {
  response: SipResponse;
  authTried: boolean;
}

export class UpstreamWatcher extends UpstreamClient<WatchItem> {
  private readonly byCallId = new Map<string, WatchItem>();
  /** Previous calls per trunk/person of unsolicited dialog-info (for partial documents). */
  private readonly unsolicitedCalls = new Map<string, Call[]>();
  private readonly sink: UpstreamSink;
  private readonly packages: PackageRegistry;
  private readonly graceMs: number;
  private readonly refusals: RefusalPolicy;
  private persist: UpstreamSubscriptionPersistence | undefined = undefined;
  /** Items added this turn, queued together by startItems. */
  private readonly starting: WatchItem[] = [];
  private startScheduled = false;
  private closed = false;

  constructor(options: UpstreamWatcherOptions) {
    super(options, (item) => this.send(item));
    this.sink = options.sink;
    this.packages = options.packages;
    this.graceMs = options.graceMs ?? 30_000;
    this.refusals = options.refusals ?? 'log';
  }

  /** Every state change of an item, under this watcher's refusal policy. */
  private enter(item: WatchItem, next: SubscriberState): void {
    item.enter(next, this.logger, this.refusals);
  }

  /** A refresh asked for while a SUBSCRIBE is out: it goes out once that one is accepted. */
  private queueRefresh(item: WatchItem): void {
    const next = queueing(item.state);
    if (next !== undefined) this.enter(item, next);
  }

  /** Watch a person at a trunk. A target already watched is updated; a changed URI or event starts over. */
  add(target: UpstreamTarget): void {
    if (this.closed) return;
    const key = itemKey(target.trunk, target.personId);
    const existing = this.items.get(key);
    if (existing !== undefined) {
      if (existing.target.uri === target.uri && existing.target.event === target.event) {
        existing.target = target;
        if (existing.expires < target.expires) existing.expires = target.expires;
        return;
      }
      this.remove(target.trunk, target.personId);
    }
    const item = new WatchItem(target);
    this.items.set(key, item);
    // Queued at the end of the turn, so that restore() right after the add()s can still give items their saved dialogs.
    this.starting.push(item);
    if (!this.startScheduled) {
      this.startScheduled = true;
      queueMicrotask(this.startItems);
    }
  }

  private readonly startItems = (): void => {
    this.startScheduled = false;
    const items = this.starting.splice(0);
    for (const item of items) if (item.state !== 'terminated' && !this.closed) this.queue.push(item.trunk, item, item.target.ratePerSec);
  };

  /** The subscriber state of a watched person at a trunk (undefined: not watched). */
  stateOf(trunk: string, personId: string): SubscriberState | undefined {
    return this.items.get(itemKey(trunk, personId))?.state;
  }

  /** Report dialogs to keep to `listener` (undefined: stop). */
  // A setter on purpose: the persistence side attaches it at restore only when the store persists.
  onPersist(listener: UpstreamSubscriptionPersistence | undefined): void {
    this.persist = listener;
  }

  /**
   * Reuse dialogs saved by an earlier run: each one matching a watched
   * target (same trunk, person and event) and not expired becomes the
   * target's dialog, so its queued turn is a refresh inside it (a 481 makes
   * a new subscription) and the trunk's NOTIFYs in it are recognised at
   * once. Only right after the add()s, in the same turn (createUpstream's
   * start() does both): once the added items have started it throws. Returns
   * how many were reused and dropped.
   */
  restore(snapshots: Iterable<UpstreamSubscriptionSnapshot>): { restored: number; dropped: number } {
    if (!this.startScheduled && this.items.size > 0) throw new Error('UpstreamWatcher.restore() after its subscriptions started: restore in the same turn as the add()s');
    const now = this.clock.now();
    let restored = 0;
    let dropped = 0;
    for (const s of snapshots) {
      const item = this.items.get(itemKey(s.trunk, s.personId));
      if (
        this.closed ||
        item === undefined ||
        item.target.event !== s.event ||
        item.dialog !== undefined ||
        isInFlight(item.state) ||
        s.toTag === undefined ||
        s.expiresAt <= now + 1000 ||
        this.byCallId.has(s.callId)
      ) {
        if (item === undefined || item.target.event !== s.event) this.persist?.remove(s.trunk, s.personId, s.event);
        dropped++;
        continue;
      }
      item.dialog = {
        callId: s.callId,
        localTag: s.fromTag,
        remoteTag: s.toTag,
        routeSet: s.routeSet,
        remoteTarget: s.remoteTarget,
        localCSeq: restoredLocalCSeq(s.cseq),
        remoteCSeq: -1,
      };
      item.transport = item.target.transport ?? 'udp';
      item.expiresAt = s.expiresAt;
      this.byCallId.set(s.callId, item);
      restored++;
    }
    return { restored, dropped };
  }

  private saveItem(item: WatchItem): void {
    const d = item.dialog;
    if (this.persist === undefined || !isEstablished(d)) return;
    this.persist.save({
      trunk: item.trunk,
      personId: item.personId,
      event: item.target.event,
      callId: d.callId,
      fromTag: d.localTag,
      remoteTarget: d.remoteTarget,
      routeSet: [...d.routeSet],
      cseq: d.localCSeq,
      expiresAt: item.expiresAt,
      toTag: d.remoteTag,
    });
  }

  /** Stop watching: unsubscribe (Expires: 0) an established dialog, clear the trunk's state for the person. */
  remove(trunk: string, personId: string): void {
    const item = this.items.get(itemKey(trunk, personId));
    if (item === undefined) return;
    this.items.delete(item.key);
    this.enter(item, 'terminated');
    this.persist?.remove(item.trunk, item.personId, item.target.event);
    this.queue.delete(item.trunk, item);
    if (item.graceTimer !== undefined) this.wheel.cancel(item.graceTimer);
    this.clearState(item);
    if (item.dialog === undefined) return;
    if (isEstablished(item.dialog) && !this.closed) void this.unsubscribe(item);
    // NOTIFYs of the ending dialog are still answered (200) for a while, then forgotten.
    this.armTimer(item, this.clock.now() + LINGER_MS);
  }

  /**
   * Stop watching a trunk's people without ending anything there: the
   * trunk's job moved to another node (src/store/cluster.ts), which refreshes
   * the saved dialogs in place. No unSUBSCRIBE, the saved dialogs stay in the
   * store, the state already fed stays until the new holder's NOTIFYs replace
   * it; NOTIFYs still arriving here are answered 200 for a while and ignored.
   * Returns how many were released.
   */
  release(trunk: string): number {
    let n = 0;
    for (const item of [...this.items.values()]) {
      if (item.trunk !== trunk) continue;
      n++;
      item.released = true;
      this.items.delete(item.key);
      this.enter(item, 'terminated');
      this.queue.delete(item.trunk, item);
      if (item.graceTimer !== undefined) this.wheel.cancel(item.graceTimer);
      if (item.dialog !== undefined && !this.closed) this.armTimer(item, this.clock.now() + LINGER_MS);
      else if (item.timer !== undefined) this.wheel.cancel(item.timer);
    }
    return n;
  }

  /** The trunk is reachable again: refresh every dialog (481 → a new subscription) and retry every down item now, spread. */
  refreshAll(trunk: string): void {
    if (this.closed) return;
    for (const item of this.items.values()) {
      if (item.trunk !== trunk) continue;
      item.failures = 0;
      if (isInFlight(item.state)) this.queueRefresh(item);
      else this.queue.push(trunk, item);
    }
  }


  /** Stop timers; with `unsubscribe`, end every established dialog (Expires: 0) and wait for the answers (bounded). */
  async close(unsubscribe: boolean): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.queue.close();
    const pending: Array<Promise<unknown>> = [];
    for (const item of this.items.values()) {
      if (item.timer !== undefined) this.wheel.cancel(item.timer);
      if (item.graceTimer !== undefined) this.wheel.cancel(item.graceTimer);
      if (unsubscribe && isEstablished(item.dialog)) {
        pending.push(this.unsubscribe(item));
        this.persist?.remove(item.trunk, item.personId, item.target.event);
      }
    }
    for (const item of this.byCallId.values()) if (item.timer !== undefined) this.wheel.cancel(item.timer);
    if (pending.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(pending),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.closeTimeoutMs);
      }),
    ]);
    if (timer !== undefined) clearTimeout(timer);
  }

  // -------------------------------------------------------------------------
  // Sending

  private readonly timerCallback = (item: WatchItem): void => this.onTimer(item);
  private readonly graceCallback = (item: WatchItem): void => this.onGrace(item);

  private armTimer(item: WatchItem, at: number): void {
    if (item.timer === undefined) item.timer = this.wheel.schedule(at, this.timerCallback, item);
    else this.wheel.reschedule(item.timer, at);
  }

  private onTimer(item: WatchItem): void {
    if (item.state === 'terminated') {
      // the linger after an unsubscribe is over
      if (item.callId !== undefined && this.byCallId.get(item.callId) === item) this.byCallId.delete(item.callId);
      return;
    }
    if (this.closed) return;
    this.queue.push(item.trunk, item);
  }

  /** The queue's turn for an item: a refresh when a dialog exists, else a new subscription. */
  private send(item: WatchItem): void {
    if (this.closed || item.state === 'terminated') return;
    if (isInFlight(item.state)) {
      this.queueRefresh(item);
      return;
    }
    if (isEstablished(item.dialog)) {
      void this.run(item, 'refresh');
      return;
    }
    this.newDialog(item);
    void this.run(item, 'subscribe');
  }

  private newDialog(item: WatchItem): void {
    if (item.callId !== undefined && this.byCallId.get(item.callId) === item) this.byCallId.delete(item.callId);
    const dialog = earlyDialog(newCallId(), newTag());
    item.dialog = dialog;
    item.version = undefined;
    item.calls = undefined;
    item.expiresAt = 0;
    this.byCallId.set(dialog.callId, item);
  }

  private async run(item: WatchItem, kind: 'subscribe' | 'refresh'): Promise<void> {
    const request = item.begin(this.logger, this.refusals);
    item.notifyBound = undefined;
    let outcome: Outcome;
    let rounds = 0;
    for (;;) {
      outcome = await this.transact(item, kind, item.expires);
      if (!item.answers(request) || this.closed) {
        // Superseded (down, removed, a newer SUBSCRIBE), or the watcher closed: no follow-up.
        if (item.answers(request)) this.settle(item);
        this.afterStale(item, outcome.response, kind);
        return;
      }
      const min = outcome.response.status === 423 ? minExpiresOf(outcome.response) : undefined;
      // RFC 6665 §4.1.2.1 / RFC 3261 §10.2.8: 423 → again with at least Min-Expires.
      if (min !== undefined && min > item.expires && min <= MAX_MIN_EXPIRES && rounds++ < 2) {
        item.expires = min;
        continue;
      }
      break;
    }
    const refreshQueued = isRefreshQueued(item.state);
    this.settle(item);
    if (this.closed) return;
    const { response } = outcome;
    const status = response.status;
    const log = { trunk: item.trunk, user: item.personId, callId: item.callId, status };
    if (status >= 200 && status < 300) {
      if (outcome.authTried) this.onAuth(item.trunk, true);
      this.accepted(item, response);
      this.logger.info({ ...log, expires: Math.round((item.expiresAt - this.clock.now()) / 1000) }, kind === 'subscribe' ? 'upstream subscription accepted' : 'upstream subscription refreshed');
      if (refreshQueued) this.queue.push(item.trunk, item);
      return;
    }
    if (status === 401 || status === 407) {
      const reason = item.target.credentials === undefined ? 'challenged, no credentials' : 'authentication failed';
      item.challenge = undefined;
      this.onAuth(item.trunk, false);
      this.logger.warn(log, `upstream SUBSCRIBE ${reason}`);
      this.down(item, `${status} ${reason}`);
      this.retryLater(item, backoffDelay(++item.failures, this.backoff, this.random));
      return;
    }
    const error = `${status} ${response.reason}`;
    if (kind === 'refresh' && !ENDS_DIALOG_USAGE.has(status) && item.expiresAt - this.clock.now() > 5_000) {
      // RFC 6665 §4.1.2.2: other failures leave the subscription valid until it expires; try the refresh again.
      const delay = Math.min(retryAfterMs(response) ?? backoffDelay(++item.failures, this.backoff, this.random), item.expiresAt - this.clock.now() - 2_000);
      this.logger.warn({ ...log, retryInMs: delay }, 'upstream refresh refused, retrying within the subscription');
      this.armTimer(item, this.clock.now() + Math.max(1_000, delay));
      return;
    }
    const retryAfter = retryAfterMs(response);
    const delay = retryAfter ?? (LONG_REFUSAL.has(status) && kind === 'subscribe' ? longDelay(this.backoff, this.random) : backoffDelay(++item.failures, this.backoff, this.random));
    this.logger.warn({ ...log, retryInMs: delay }, kind === 'subscribe' ? 'upstream SUBSCRIBE refused' : 'upstream refresh failed, subscribing anew');
    this.down(item, error);
    this.retryLater(item, delay);
  }

  /** An answer to a request of a replaced or removed subscription. */
  private afterStale(item: WatchItem, response: SipResponse, kind: Kind): void {
    // a released item's dialog belongs to the next holder: never ended from here
    if (kind === 'unsubscribe' || item.released) return;
    if (item.state === 'terminated' && !this.closed && response.status >= 200 && response.status < 300) {
      // Removed while the SUBSCRIBE was out: end the dialog it made.
      if (item.dialog !== undefined && !isEstablished(item.dialog)) item.dialog = uacDialog(item.dialog, response, detach) ?? item.dialog;
      if (isEstablished(item.dialog)) void this.unsubscribe(item);
    }
  }

  /** One request and its digest answers (RFC 3261 §22.2): once, again only for a stale nonce. */
  private async transact(item: WatchItem, kind: Kind, expires: number): Promise<Outcome> {
    let destination: Endpoint;
    try {
      destination = await this.destinationOf(item, kind);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.logger.warn({ trunk: item.trunk, user: item.personId, err: message }, 'upstream destination did not resolve');
      return { response: localFailure(503, 'Service Unavailable - destination did not resolve'), authTried: false };
    }
    if (kind === 'subscribe') item.transport = destination.protocol;
    return sendWithDigest(this.sender, destination, item, item.target.credentials, () => this.build(item, kind, expires, destination.protocol), (error) =>
      this.logger.debug({ err: error, callId: item.callId }, 'upstream SUBSCRIBE not sent'),
    );
  }

  private async destinationOf(item: WatchItem, kind: Kind): Promise<Endpoint> {
    const d = item.dialog;
    if (kind !== 'subscribe' && item.target.stickyDestination !== true && isEstablished(d)) {
      const hop = literalHop(d.remoteTarget, d.routeSet, item.target.transport ?? item.transport);
      if (hop !== undefined) return hop;
    }
    return item.target.destination();
  }

  private build(item: WatchItem, kind: Kind, expires: number, protocol: TransportProtocol): SipRequest {
    const headers = new Headers();
    const t = item.target;
    const d = item.dialog;
    if (d === undefined) throw new Error('upstream SUBSCRIBE without a dialog');
    const inDialog = kind !== 'subscribe' && isEstablished(d);
    const uri = inDialog ? routeRequest(d.remoteTarget, d.routeSet, headers) : t.uri;
    headers.append('from', `${nameAddr(t.fromUri)};tag=${d.localTag}`);
    headers.append('to', inDialog ? `${nameAddr(t.uri)};tag=${d.remoteTag}` : nameAddr(t.uri));
    headers.append('call-id', d.callId);
    headers.append('cseq', `${nextLocalCSeq(d)} SUBSCRIBE`);
    headers.append('event', t.event);
    if (t.accept.length > 0) headers.append('accept', t.accept.join(', '));
    headers.append('expires', String(kind === 'unsubscribe' ? 0 : expires));
    const contact = ourContact(this.sender, protocol);
    if (contact !== undefined) headers.append('contact', contact);
    applyAuth(headers, item, t.credentials, this.digest, 'SUBSCRIBE', uri);
    return createRequest('SUBSCRIBE', uri, headers);
  }

  private unsubscribe(item: WatchItem): Promise<void> {
    this.logger.info({ trunk: item.trunk, user: item.personId, callId: item.callId }, 'upstream unsubscribe');
    return this.transact(item, 'unsubscribe', 0).then(
      () => undefined,
      () => undefined,
    );
  }

  // -------------------------------------------------------------------------
  // Subscription state

  /** RFC 6665 §4.1.2.1: the 2xx establishes (or refreshes) the dialog; expiry from Expires and the NOTIFY's bound. */
  private accepted(item: WatchItem, response: SipResponse): void {
    const now = this.clock.now();
    item.failures = 0;
    const d = item.dialog;
    if (isEstablished(d)) refreshTarget(d, response.headers.getAll('contact'), detach);
    else if (d !== undefined) item.dialog = uacDialog(d, response, detach) ?? d;
    const granted = parseExpires(response.headers.get('expires')) ?? item.expires;
    if (granted === 0) {
      // Accepted and ended at once: nothing to refresh; subscribe anew later.
      this.down(item, 'granted Expires: 0');
      this.retryLater(item, backoffDelay(++item.failures, this.backoff, this.random));
      return;
    }
    let expiresAt = now + granted * 1000;
    if (item.notifyBound !== undefined && item.notifyBound > now && item.notifyBound < expiresAt) expiresAt = item.notifyBound;
    item.expiresAt = expiresAt;
    this.scheduleRefresh(item);
    this.markUp(item);
    this.saveItem(item);
  }

  private scheduleRefresh(item: WatchItem): void {
    const now = this.clock.now();
    this.armTimer(item, now + refreshDelayMs(Math.max(0, (item.expiresAt - now) / 1000)));
  }

  private markUp(item: WatchItem): void {
    if (item.up) return;
    this.enter(item, comingUp(item.state));
    this.onItem(item.trunk, item.personId, true);
  }

  /** The SUBSCRIBE out was answered (or given up on): no longer in flight. */
  private settle(item: WatchItem): void {
    const next = answered(item.state);
    if (next !== undefined) this.enter(item, next);
  }

  /** The subscription is gone: report it and start the grace period of its state. */
  private down(item: WatchItem, error: string): void {
    const d = item.dialog;
    if (isEstablished(d)) this.persist?.remove(item.trunk, item.personId, item.target.event);
    this.enter(item, 'retry-wait');
    this.onItem(item.trunk, item.personId, false, error);
    if (d !== undefined && this.byCallId.get(d.callId) === item) this.byCallId.delete(d.callId);
    if (isEstablished(d)) item.dialog = unestablished(d);
    if (item.fed && (item.graceTimer === undefined || !item.graceTimer.active)) {
      const at = this.clock.now() + this.graceMs;
      if (item.graceTimer === undefined) item.graceTimer = this.wheel.schedule(at, this.graceCallback, item);
      else this.wheel.reschedule(item.graceTimer, at);
    }
  }

  private retryLater(item: WatchItem, delayMs: number): void {
    this.armTimer(item, this.clock.now() + Math.max(1, delayMs));
  }

  private onGrace(item: WatchItem): void {
    if (item.state === 'terminated' || this.closed || item.up) return;
    this.logger.info({ trunk: item.trunk, user: item.personId }, 'upstream subscription still down, clearing its state');
    this.clearState(item);
  }

  private clearState(item: WatchItem): void {
    if (!item.fed) return;
    item.fed = false;
    item.calls = undefined;
    item.version = undefined;
    this.toSink(item.personId, undefined, item.target.richPresence === true ? null : undefined, item.source);
  }

  /** Feed the sink; a sink that throws (an unknown person) is logged, never thrown into the transport. `rich` null = clear it. */
  private toSink(personId: string, telephony: TelephonyState | undefined, rich: RichState | null | undefined, source: string): void {
    try {
      this.sink.setTelephony(personId, telephony, source);
      if (rich !== undefined) this.sink.setSip(personId, rich ?? undefined, source);
    } catch (error) {
      this.logger.error({ err: error, user: personId, source }, 'upstream state not stored');
    }
  }

  // -------------------------------------------------------------------------
  // NOTIFY (RFC 6665 §4.1.3)

  /** A NOTIFY in one of our dialogs: answered here (true). False when it matches none (the caller answers 481). */
  handleNotify(req: InboundRequest): boolean {
    const { request } = req;
    const h = request.headers;
    const callId = h.get('call-id');
    const item = callId === undefined ? undefined : this.byCallId.get(callId);
    const d = item?.dialog;
    if (item === undefined || d === undefined) return false;
    const to = h.get('to');
    if (to === undefined || tagOf(to) !== d.localTag) return false;
    const log = { trunk: item.trunk, user: item.personId, callId };
    const eventValue = h.get('event');
    const event = eventValue === undefined ? null : parseEvent(eventValue);
    const from = h.get('from');
    const fromTag = from === undefined ? undefined : tagOf(from);
    if (event === null || event.event !== item.target.event || fromTag === undefined) {
      req.respond(reply(request, 481, undefined, { reason: 'Subscription Does Not Exist' }));
      return true;
    }
    if (isEstablished(d) && fromTag !== d.remoteTag) {
      // A second fork (RFC 6665 §4.1.2.4): one dialog per person is enough.
      req.respond(reply(request, 481, undefined, { reason: 'Subscription Does Not Exist' }));
      return true;
    }
    const cseqValue = h.get('cseq');
    const cseq = cseqValue === undefined ? null : parseCSeq(cseqValue);
    if (cseq === null) {
      req.respond(reply(request, 400, undefined, { reason: 'Bad Request - invalid CSeq' }));
      return true;
    }
    if (!remoteCSeqInOrder(d, cseq.seq)) {
      req.respond(reply(request, 500, undefined, { reason: 'Server Internal Error - CSeq out of order' }));
      return true;
    }
    const ssValue = h.get('subscription-state');
    const ss = ssValue === undefined ? null : parseSubscriptionState(ssValue);
    if (ss === null) {
      req.respond(reply(request, 400, undefined, { reason: 'Bad Request - missing or invalid Subscription-State' }));
      return true;
    }
    acceptRemoteCSeq(d, cseq.seq);
    const parsed = this.packages.readNotifyBody(request);
    if (!parsed.ok) {
      this.logger.warn({ ...log, status: parsed.status, reason: parsed.reason }, 'upstream NOTIFY body refused');
      const extra: Array<[string, string]> = parsed.status === 415 ? [['accept', this.packages.upstreamContentTypes.join(', ')]] : [];
      req.respond(reply(request, parsed.status, extra, { reason: parsed.reason }));
      return true;
    }
    req.respond(reply(request, 200));

    if (item.state === 'terminated' || this.closed) {
      if (ss.state === 'terminated' && this.byCallId.get(callId!) === item) this.byCallId.delete(callId!);
      return true;
    }
    if (isEstablished(d)) refreshTarget(d, h.getAll('contact'), detach);
    else item.dialog = notifyDialog(d, request, fromTag, detach) ?? d;
    // The body first: a terminating NOTIFY's final state is kept through the grace period.
    if (isReading(parsed.body)) this.applyBody(item, parsed.body, ss.state === 'terminated');
    this.subscriptionState(item, ss);
    return true;
  }

  private subscriptionState(item: WatchItem, ss: SubscriptionState): void {
    const now = this.clock.now();
    const log = { trunk: item.trunk, user: item.personId, callId: item.callId };
    if (ss.state !== 'terminated') {
      if (ss.expires !== undefined) {
        const bound = now + ss.expires * 1000;
        item.notifyBound = bound;
        if (!isInFlight(item.state) && (bound < item.expiresAt || item.expiresAt <= now)) {
          item.expiresAt = bound;
          this.scheduleRefresh(item);
        }
      }
      if (isInFlight(item.state) && item.expiresAt <= now) return; // the 2xx will report it up
      this.markUp(item);
      return;
    }
    // RFC 6665 §4.1.3: what to do depends on the reason.
    const reason = ss.reason ?? '';
    let delay: number;
    if (ss.retryAfter !== undefined) delay = ss.retryAfter * 1000;
    else if (reason === 'rejected' || reason === 'noresource' || reason === 'invariant') delay = longDelay(this.backoff, this.random);
    else if (reason === 'deactivated' || reason === 'timeout') delay = backoffDelay(Math.max(1, item.failures), this.backoff, this.random);
    else delay = backoffDelay(++item.failures, this.backoff, this.random);
    this.logger.info({ ...log, reason, retryInMs: delay }, 'upstream subscription terminated by the notifier');
    this.down(item, `terminated${reason.length > 0 ? `;reason=${reason}` : ''}`);
    this.retryLater(item, delay);
  }

  private applyBody(item: WatchItem, body: NotifyReading, final: boolean): void {
    const now = this.clock.now();
    const doc = body.sequence;
    if (doc !== undefined) {
      if (item.version !== undefined && doc.version <= item.version) {
        this.logger.debug({ trunk: item.trunk, user: item.personId, kind: body.kind, version: doc.version, last: item.version }, 'old document version ignored');
        return;
      }
      if (doc.partial && (item.version === undefined || item.calls === undefined || doc.version !== item.version + 1)) {
        // RFC 4235 §4.1: a gap in partial state → ask for full state with a refresh.
        this.logger.info({ trunk: item.trunk, user: item.personId, kind: body.kind, version: doc.version, last: item.version }, 'partial state gap, refreshing for full state');
        if (!final) {
          if (isInFlight(item.state)) this.queueRefresh(item);
          else this.queue.push(item.trunk, item);
        }
        return;
      }
      const telephony = body.telephony(item.calls, item.source, now);
      item.version = doc.version;
      item.calls = telephony.calls;
      this.feed(item, telephony, undefined);
      return;
    }
    const rich = item.target.richPresence === true ? body.rich?.(item.source, now) : undefined;
    this.feed(item, body.telephony(undefined, item.source, now), rich);
  }

  private feed(item: WatchItem, telephony: TelephonyState, rich: RichState | undefined): void {
    item.fed = true;
    if (item.graceTimer !== undefined) this.wheel.cancel(item.graceTimer);
    this.toSink(item.personId, telephony, rich, item.source);
  }

  // -------------------------------------------------------------------------
  // Unsolicited NOTIFY

  /** A NOTIFY outside any dialog from a trunk whose profile allows it (the caller checked). Always answered. */
  handleUnsolicited(req: InboundRequest, trunk: string, personId: string): void {
    const { request } = req;
    const eventValue = request.headers.get('event');
    const event = eventValue === undefined ? null : parseEvent(eventValue);
    if (event === null || this.packages.get(event.event)?.upstream === undefined) {
      req.respond(reply(request, 489, [['allow-events', this.packages.upstreamEvents.join(', ')]]));
      return;
    }
    const parsed = this.packages.readNotifyBody(request);
    const log = { trunk, user: personId, callId: request.headers.get('call-id') };
    if (!parsed.ok) {
      this.logger.warn({ ...log, status: parsed.status, reason: parsed.reason }, 'unsolicited NOTIFY body refused');
      const extra: Array<[string, string]> = parsed.status === 415 ? [['accept', this.packages.upstreamContentTypes.join(', ')]] : [];
      req.respond(reply(request, parsed.status, extra, { reason: parsed.reason }));
      return;
    }
    req.respond(reply(request, 200));
    const source = `trunk:${trunk}`;
    const now = this.clock.now();
    const body = parsed.body;
    if (isReading(body) && body.sequence !== undefined) {
      // a versioned format (dialog-info): its calls are kept for the partial documents after it
      const key = itemKey(trunk, personId);
      const telephony = body.telephony(this.unsolicitedCalls.get(key), source, now);
      if (telephony.calls.length === 0) this.unsolicitedCalls.delete(key);
      else this.unsolicitedCalls.set(key, telephony.calls);
      this.toSink(personId, telephony, undefined, source);
    } else if (isReading(body)) {
      this.toSink(personId, body.telephony(undefined, source, now), undefined, source);
    }
    this.logger.debug({ ...log, kind: body.kind }, 'unsolicited NOTIFY applied');
  }
}
