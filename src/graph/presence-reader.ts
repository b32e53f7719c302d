/**
 * Teams presence into the core. With service accounts and a webhook, change
 * notifications (basic: they name the user, not the state) are resolved by
 * batched getPresencesByUserId, or (rich, graph.webhook.richNotifications)
 * carry the presence encrypted and go straight to the sink. Every user no
 * healthy subscription covers is polled: the interval follows the number of
 * people and the poll budget (poll-plan.ts), its batches spread evenly over it
 * (spread-read.ts). Covered users get a slower safety read whose interval
 * follows the webhook's health (webhook-health.ts). All readings pass the
 * sequence-number sink.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Client } from '@microsoft/microsoft-graph-client';
import type { Directory } from '../core/directory.js';
import type { PresenceHub } from '../core/presence-hub.js';
import type { Logger } from '../util/logger.js';
import type { Clock } from '../util/clock.js';
import type { ObserverRef } from './observer.js';
import { isRecord } from './json.js';
import { readPresences } from './presence-batch.js';
import { planPolling, type PollPlan } from './poll-plan.js';
import { SpreadRead } from './spread-read.js';
import { WebhookHealth, type WebhookHealthStatus } from './webhook-health.js';
import { parsePresence } from './presence-resource.js';
import { PresenceSink, type SinkStats } from './presence-sink.js';
import { SubscriptionManager, type SubscriptionAccount, type SubscriptionStatus } from './subscription-manager.js';
import { MemorySubscriptionStateStore, type SubscriptionStateStore } from './subscription-state.js';
import { parseNotifications, validationReply, type ChangeNotification, type ParsedNotifications, type WebhookHandlers, type WebhookReply } from './webhook-handler.js';
import { decryptContent, type DropReason, type ValidationTokenVerifier } from './rich-notifications.js';
import type { NotificationKeyring } from './notification-keys.js';
import type { StoredSubscriptions } from './webhook-state.js';

export interface PresenceReaderOptions {
  /** app-token client: polling and notification look-ups */
  appClient: Client;
  /** service accounts for subscriptions (none: polling only) */
  accounts: SubscriptionAccount[];
  directory: Directory;
  store: PresenceHub;
  logger: Logger;
  clock: Clock;
  poll: PollSettings;
  /** where Graph posts notifications; without it there are no subscriptions */
  webhook?: { publicUrl: string; clientState: string };
  stateStore?: SubscriptionStateStore;
  /** notifications naming another tenant are rejected (when the tenant is known as a GUID) */
  tenantId?: string;
  /** read covered users too, this often while the webhook is healthy (overrides poll.safetyReadSec) */
  fullReadIntervalSec?: number;
  /** subscription lifetime and renewal point (defaults 58 min, 2/3) */
  subscriptionLifetimeMs?: number;
  renewFraction?: number;
  /** told when a reading changed someone's state, and how long after it became known */
  observer?: ObserverRef;
  /** rich notifications: subscriptions carry our certificate, items their presence (no read-back) */
  rich?: {
    keyring: () => NotificationKeyring | undefined;
    verifier: ValidationTokenVerifier;
    /** read the key pairs again from the shared store (an item names a certificate the keyring lacks); throttled by the caller */
    refreshKeys?: () => Promise<void>;
  };
  /**
   * The subscriptions in the shared store: the webhook of a node that does not
   * hold them (another node's subscriptions job made them) checks clientState
   * against these, read again once when an item names an unknown id.
   */
  stored?: StoredSubscriptions;
}

export interface PollSettings {
  mode: 'budget' | 'fixed';
  /** poll requests allowed per 30 s (poll.share of Graph's 1,500) */
  requestsPer30s: number;
  /** budget: the slowest wanted interval; fixed: the interval */
  intervalSec: number;
  /** safety read of webhook-covered users while the webhook is healthy */
  safetyReadSec: number;
}

export interface ReaderStatus {
  users: number;
  polled: number;
  lastPollAt?: string;
  lastPollError?: string;
  polls: number;
  notifications: {
    received: number;
    accepted: number;
    rejected: number;
    malformed: number;
    lifecycle: number;
    /** rich items decrypted and taken without a read-back */
    decrypted?: number;
    /** items dropped (answered 202 all the same), by why */
    dropped?: Record<DropReason, number>;
  };
  lookups: { calls: number; failures: number };
  sink: SinkStats;
  subscriptions: SubscriptionStatus[];
  /** the poll interval and safety read interval now, and the requests per 30 s they spend */
  plan?: PollPlan;
  webhookHealth?: WebhookHealthStatus;
}

/** The id of a decrypted presence resource. */
function resourceIdOf(v: unknown): string | undefined {
  return isRecord(v) && typeof v['id'] === 'string' ? v['id'] : undefined;
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

export class PresenceReader implements WebhookHandlers {
  private readonly sink: PresenceSink;
  private readonly subs: SubscriptionManager | undefined;
  private userIds: string[] = [];
  private readonly health: WebhookHealth;
  private readonly pollStream: SpreadRead;
  private readonly safetyStream: SpreadRead;
  private polling: Promise<void> | undefined;
  private lastFullRead = 0;
  private stopped = false;
  /** The poller job runs here (the poll and safety streams). */
  private pollingOn = false;
  /** The subscriptions job runs here (this node's manager creates and renews them). */
  private subscribingOn = false;
  /** The subscriptions job was stopped here (stopSubscriptions) and not started again. */
  private subsHandedOver = false;
  private readonly pending = new Set<string>();
  /** When each queued user's change became known (only while an observer listens). */
  private readonly knownAt = new Map<string, number>();
  /** Users whose read failed (429 storm, outage): the next poll reads them even if a subscription covers them. */
  private readonly retryIds = new Set<string>();
  private lookup: Promise<void> | undefined;
  private lookupQueued = false;
  private readonly st = {
    polls: 0,
    lastPollAt: undefined as number | undefined,
    lastPollError: undefined as string | undefined,
    notifications: {
      received: 0,
      accepted: 0,
      rejected: 0,
      malformed: 0,
      lifecycle: 0,
      decrypted: 0,
      dropped: { clientState: 0, tenant: 0, validationToken: 0, signature: 0, decryption: 0 } as Record<DropReason, number>,
    },
    lookups: { calls: 0, failures: 0 },
    pollCalls: 0,
  };
  /** rich batches being verified and decrypted, and batches waiting for the store's subscriptions */
  private readonly richWork = new Set<Promise<void>>();

  constructor(private readonly o: PresenceReaderOptions) {
    this.sink = new PresenceSink(o.directory, o.store, o.logger);
    this.health = new WebhookHealth(o.clock);
    this.pollStream = new SpreadRead({
      clock: o.clock,
      ids: () => this.polledIds(true),
      intervalMs: () => this.plan().pollIntervalMs,
      read: (ids) => this.readBatch(ids),
    });
    this.safetyStream = new SpreadRead({
      clock: o.clock,
      ids: () => this.coveredIds(),
      intervalMs: () => this.plan().safetyIntervalMs,
      read: (ids) => this.readBatch(ids),
    });
    if (o.webhook !== undefined && o.accounts.length > 0) {
      this.subs = new SubscriptionManager({
        accounts: o.accounts,
        notificationUrl: o.webhook.publicUrl,
        clientState: o.webhook.clientState,
        stateStore: o.stateStore ?? new MemorySubscriptionStateStore(),
        clock: o.clock,
        logger: o.logger,
        ...(o.subscriptionLifetimeMs !== undefined ? { lifetimeMs: o.subscriptionLifetimeMs } : {}),
        ...(o.renewFraction !== undefined ? { renewFraction: o.renewFraction } : {}),
        onResync: (ids) => this.enqueue(ids),
        ...(o.rich !== undefined
          ? {
              encryption: () => {
                const k = o.rich?.keyring()?.current;
                return k === undefined ? undefined : { certificate: k.certificateBase64, id: k.id };
              },
            }
          : {}),
      });
    }
  }

  private mappedUsers(): string[] {
    const ids: string[] = [];
    for (const p of this.o.directory.all()) {
      const id = p.teams?.userId;
      if (id !== undefined) ids.push(id.toLowerCase());
    }
    return ids;
  }

  /** Read everyone once, start subscriptions, start polling (both jobs: startPolling, then startSubscriptions). */
  async start(): Promise<void> {
    this.userIds = this.mappedUsers();
    await this.poll(true);
    if (this.subs !== undefined) {
      this.subscribingOn = true;
      await this.subs.start(this.userIds);
    }
    if (this.stopped) return;
    this.pollingOn = true;
    this.armStreams();
  }

  /** Whether subscriptions are configured (a webhook and service accounts): the subscriptions job exists. */
  get subscribes(): boolean {
    return this.subs !== undefined;
  }

  /** The poller job: read everyone once, then the poll (and safety) streams. Again after stopPolling. */
  async startPolling(): Promise<void> {
    if (this.stopped) return;
    this.userIds = this.mappedUsers();
    this.pollingOn = true;
    await this.poll(true);
    if (this.stopped || !this.pollingOn) return;
    this.armStreams();
  }

  /** Stop the poller job (the webhook's look-ups go on). */
  async stopPolling(): Promise<void> {
    this.pollingOn = false;
    this.pollStream.stop();
    this.safetyStream.stop();
    await Promise.all([this.polling, this.pollStream.inFlight(), this.safetyStream.inFlight()]);
  }

  /**
   * The subscriptions job: take up the stored subscriptions (renewed, not made
   * again), create the missing ones, renew them. Again after stopSubscriptions.
   */
  async startSubscriptions(): Promise<void> {
    if (this.subs === undefined || this.stopped) return;
    this.userIds = this.mappedUsers();
    this.subscribingOn = true;
    this.subsHandedOver = false;
    await this.subs.start(this.userIds);
    // the poll plan follows what the subscriptions cover
    if (this.pollingOn && !this.stopped) this.armStreams();
  }

  /** Stop the subscriptions job: upkeep ends, the subscriptions stay in Graph for the next holder. */
  async stopSubscriptions(): Promise<void> {
    if (this.subs === undefined || !this.subscribingOn) return;
    this.subscribingOn = false;
    this.subsHandedOver = true;
    this.safetyStream.stop();
    await this.safetyStream.inFlight();
    await this.subs.stop();
  }

  /** The local manager, while this node runs the subscriptions job. */
  private get liveSubs(): SubscriptionManager | undefined {
    return this.subscribingOn ? this.subs : undefined;
  }

  private armStreams(): void {
    const plan = this.plan();
    this.pollStream.start(plan.pollIntervalMs);
    if (this.liveSubs !== undefined) this.safetyStream.start(plan.safetyIntervalMs);
    this.o.logger.info(
      { mode: this.o.poll.mode, pollIntervalMs: plan.pollIntervalMs, safetyIntervalMs: plan.safetyIntervalMs, requestsPer30s: Math.round(plan.requestsPer30s), limited: plan.limited },
      'graph: polling planned',
    );
    if (plan.limited) this.o.logger.warn({ budgetPer30s: this.o.poll.requestsPer30s }, 'graph: the poll budget cannot read everyone as often as poll.intervalSec asks; raise graph.poll.share or poll.intervalSec');
  }

  /** Users the poll stream reads each interval: no healthy subscription covers them (plus failed reads). */
  private polledIds(withRetries: boolean): string[] {
    const down = this.health.status().state === 'down';
    const subs = this.liveSubs;
    const base = subs === undefined || down ? this.userIds : this.userIds.filter((u) => !subs.isCovered(u));
    if (!withRetries || this.retryIds.size === 0) return base;
    const all = new Set(base);
    for (const id of this.retryIds) all.add(id);
    this.retryIds.clear();
    return [...all];
  }

  private coveredIds(): string[] {
    const subs = this.liveSubs;
    if (subs === undefined || this.health.status().state === 'down') return [];
    return this.userIds.filter((u) => subs.isCovered(u));
  }

  private safetyIntervalMs(): number {
    const healthy = (this.o.fullReadIntervalSec ?? this.o.poll.safetyReadSec) * 1000;
    // shorter while notifications are late, refused or absent
    return this.health.status().state === 'healthy' ? healthy : Math.max(30_000, Math.round(healthy / 10));
  }

  /** The poll and safety intervals for the people and the webhook's health now. */
  plan(): PollPlan {
    const covered = this.liveSubs === undefined ? 0 : this.coveredIds().length;
    return planPolling({
      mode: this.o.poll.mode,
      requestsPer30s: this.o.poll.requestsPer30s,
      polled: this.userIds.length - covered,
      covered,
      intervalMs: this.o.poll.intervalSec * 1000,
      safetyIntervalMs: this.safetyIntervalMs(),
    });
  }

  /** One batch of a poll or safety cycle. */
  private async readBatch(ids: string[]): Promise<void> {
    if (this.stopped || ids.length === 0) return;
    const startedAt = this.o.clock.now();
    try {
      this.notePoll(await readPresences(this.o.appClient, ids, (values) => this.take(values, startedAt, true), 1));
    } catch (error) {
      this.o.logger.error({ err: error }, 'graph: presence poll failed');
    }
  }

  /** Counts and the last error of a poll or safety read; users whose read failed are read again at the next one. */
  private notePoll(r: Awaited<ReturnType<typeof readPresences>>): void {
    this.st.pollCalls += r.calls;
    this.st.lastPollAt = this.o.clock.now();
    const f = r.failures[0];
    if (f === undefined) {
      this.st.lastPollError = undefined;
      return;
    }
    this.st.lastPollError = `${f.status || ''} ${f.code} ${f.message}`.trim();
    for (const id of r.failedIds) this.retryIds.add(id.toLowerCase());
    this.o.logger.warn({ failedUsers: r.failedIds.length, status: f.status, code: f.code }, 'graph: presence poll partly failed');
  }

  /** The directory's Teams identities changed: watch the new set; read newcomers at once. */
  refreshUsers(): void {
    if (this.stopped) return;
    const before = new Set(this.userIds);
    this.userIds = this.mappedUsers();
    const added = this.userIds.filter((u) => !before.has(u));
    this.subs?.setUsers(this.userIds);
    if (added.length > 0) this.enqueue(added);
  }

  /** Read every polled user now, all batches at once (covered users too when a safety read is due); tests and resyncs. */
  pollNow(): Promise<void> {
    return this.poll(this.o.clock.now() - this.lastFullRead >= this.safetyIntervalMs());
  }

  private poll(all: boolean): Promise<void> {
    if (this.polling !== undefined) return this.polling;
    const run = async (): Promise<void> => {
      const ids = all ? [...new Set([...this.userIds, ...this.polledIds(true)])] : this.polledIds(true);
      const now = this.o.clock.now();
      if (all) this.lastFullRead = now;
      this.st.polls++;
      if (ids.length === 0) return;
      this.notePoll(await readPresences(this.o.appClient, ids, (values) => this.take(values, now, true)));
    };
    this.polling = run()
      .catch((error: unknown) => this.o.logger.error({ err: error }, 'graph: presence poll failed'))
      .finally(() => {
        this.polling = undefined;
      });
    return this.polling;
  }

  /** Offer readings to the sink; `byRead`: from a poll or safety read (not a notification's look-up). */
  private take(values: unknown[], pollStartedAt?: number, byRead = false): void {
    const at = this.o.clock.now();
    const observer = this.o.observer?.();
    for (const v of values) {
      const p = parsePresence(v, at);
      if (p === undefined) continue;
      const known = this.sink.has(p.userId);
      const applied = this.sink.offer(p.userId, p.state);
      // a covered user's change found by a read, not announced (yet): the webhook's health judges it
      if (applied && byRead && known && this.liveSubs?.isCovered(p.userId) === true && !this.pending.has(p.userId)) this.health.changeFound(p.userId);
      if (observer?.teamsApplied === undefined) continue;
      const key = p.userId.toLowerCase();
      const since = this.knownAt.get(key) ?? pollStartedAt;
      this.knownAt.delete(key);
      if (!applied || since === undefined) continue;
      const person = this.o.directory.findByTeamsUserId(key);
      if (person !== undefined) observer.teamsApplied(person.id, Math.max(0, at - since));
    }
  }

  // ---- webhook

  handleValidation(query: unknown): WebhookReply {
    return validationReply(query);
  }

  private clientStateOk(subscriptionId: string, clientState: string | undefined): boolean {
    // Graph: change-notifications-delivery-webhooks (discard a notification whose clientState does not match)
    if (this.o.webhook === undefined || clientState === undefined) return false;
    const expected = this.liveSubs?.clientStateOf(subscriptionId) ?? this.o.stored?.clientStateOf(subscriptionId) ?? this.o.webhook.clientState;
    return safeEqual(clientState, expected);
  }

  private tenantOk(tenantId: string | undefined): boolean {
    const mine = this.o.tenantId;
    return tenantId === undefined || mine === undefined || tenantId.toLowerCase() === mine.toLowerCase();
  }

  private dropped(reason: DropReason, n = 1): void {
    this.st.notifications.dropped[reason] += n;
    const observer = this.o.observer?.();
    for (let i = 0; i < n; i++) observer?.notificationDropped?.(reason);
  }

  /**
   * Check and queue; the answer is immediate (Graph wants it within 3 s).
   * 202 for every notification batch, also when items are dropped for a
   * wrong or missing clientState or another tenant: any other answer makes
   * Graph retry the delivery for up to 4 hours, and tells a forger whether
   * the guess was right. 400 only for a body that is not a notification batch.
   * Graph: change-notifications-delivery-webhooks (processing the change
   * notification; respond 202 before validating)
   */
  handleNotifications(body: unknown): WebhookReply {
    const parsed = parseNotifications(body);
    const n = this.st.notifications;
    const total = parsed.changes.length + parsed.lifecycle.length;
    n.received += total;
    n.malformed += parsed.malformed;
    if (total === 0) return { status: parsed.malformed > 0 ? 400 : 202 };
    const stored = this.o.stored;
    const unknown = (id: string): boolean => this.liveSubs?.clientStateOf(id) === undefined && stored?.clientStateOf(id) === undefined;
    if (stored !== undefined && this.o.webhook !== undefined && stored.mayReload() && [...parsed.changes, ...parsed.lifecycle].some((x) => unknown(x.subscriptionId))) {
      // another node's subscription, perhaps: judged once the store has been read again (the answer is 202 either way)
      const later: ParsedNotifications = { ...parsed, changes: parsed.changes.filter((c) => unknown(c.subscriptionId)), lifecycle: parsed.lifecycle.filter((l) => unknown(l.subscriptionId)) };
      const now: ParsedNotifications = { ...parsed, changes: parsed.changes.filter((c) => !unknown(c.subscriptionId)), lifecycle: parsed.lifecycle.filter((l) => !unknown(l.subscriptionId)) };
      if (now.changes.length + now.lifecycle.length > 0) this.takeNotifications(now);
      const work: Promise<void> = stored
        .reload()
        .then(() => {
          if (!this.stopped) this.takeNotifications(later);
        })
        .finally(() => this.richWork.delete(work));
      this.richWork.add(work);
      return { status: 202 };
    }
    this.takeNotifications(parsed);
    return { status: 202 };
  }

  /** Check each item's clientState and tenant, and queue what passes. */
  private takeNotifications(parsed: ParsedNotifications): void {
    const n = this.st.notifications;
    let accepted = 0;
    const ids: string[] = [];
    const rich: ChangeNotification[] = [];
    for (const c of parsed.changes) {
      const stateOk = this.clientStateOk(c.subscriptionId, c.clientState);
      if (!stateOk || !this.tenantOk(c.tenantId)) {
        n.rejected++;
        this.dropped(stateOk ? 'tenant' : 'clientState');
        this.o.logger.warn(
          { subscriptionId: c.subscriptionId, userId: c.userId, reason: stateOk ? 'tenant' : c.clientState === undefined ? 'clientState missing' : 'clientState wrong' },
          'graph: notification dropped (clientState or tenant mismatch)',
        );
        continue;
      }
      accepted++;
      if (this.o.rich !== undefined && c.encryptedContent !== undefined) rich.push(c);
      else {
        ids.push(c.userId);
        // a basic notification while rich ones are configured: a subscription of an earlier run, replaced
        if (this.o.rich !== undefined) this.liveSubs?.wantsResourceData(c.subscriptionId);
      }
    }
    const lifecycle: Array<{ subscriptionId: string; event: string }> = [];
    for (const l of parsed.lifecycle) {
      const stateOk = this.clientStateOk(l.subscriptionId, l.clientState);
      if (!stateOk || !this.tenantOk(l.tenantId)) {
        n.rejected++;
        this.dropped(stateOk ? 'tenant' : 'clientState');
        this.o.logger.warn({ subscriptionId: l.subscriptionId, event: l.event }, 'graph: lifecycle notification dropped (clientState or tenant mismatch)');
        continue;
      }
      accepted++;
      n.lifecycle++;
      lifecycle.push(l);
    }
    n.accepted += accepted;
    if (ids.length > 0 || rich.length > 0) this.health.notified([...ids, ...rich.map((c) => c.userId)]);
    if (ids.length > 0) this.enqueue(ids);
    if (rich.length > 0) this.takeRich(rich, parsed.validationTokens);
    if (accepted === 0) this.health.refused();
    if (lifecycle.length > 0) {
      // after the answer: renewals and re-creations take longer than Graph waits
      setImmediate(() => {
        for (const l of lifecycle) this.liveSubs?.lifecycle(l.subscriptionId, l.event);
      });
    }
  }

  /**
   * Rich items, after the answer: the batch's validation tokens first, then
   * each item decrypted straight into the sink. What fails a check is
   * dropped and logged, and its user read back like a basic notification
   * (an authenticated read cannot be spoofed), so no change is lost.
   */
  private takeRich(items: ChangeNotification[], tokens: string[] | undefined): void {
    const rich = this.o.rich;
    if (rich === undefined || this.stopped) return;
    const knownAt = this.o.clock.now();
    const work = (async () => {
      const verdict = await rich.verifier.verify(tokens);
      if (!verdict.ok) {
        this.dropped('validationToken', items.length);
        this.o.logger.warn({ items: items.length, subscriptionId: items[0]?.subscriptionId, reason: verdict.detail }, 'graph: rich notifications dropped (validation token); reading the users instead');
        this.enqueue(items.map((c) => c.userId));
        return;
      }
      const known = rich.keyring();
      // a certificate of a key pair another node made (and stored): read the key pairs again once
      if (rich.refreshKeys !== undefined && items.some((c) => c.encryptedContent !== undefined && known?.key(c.encryptedContent.encryptionCertificateId) === undefined)) await rich.refreshKeys();
      const keyring = rich.keyring();
      const values: unknown[] = [];
      const readBack: string[] = [];
      for (const c of items) {
        const d = keyring === undefined || c.encryptedContent === undefined ? undefined : decryptContent(c.encryptedContent, keyring);
        if (d === undefined || !d.ok) {
          this.dropped(d?.reason ?? 'decryption');
          this.o.logger.warn({ subscriptionId: c.subscriptionId, userId: c.userId, reason: d?.detail ?? 'no key pair loaded' }, 'graph: rich notification dropped (cannot decrypt); reading the user instead');
          readBack.push(c.userId);
          continue;
        }
        const id = resourceIdOf(d.resource);
        if (id === undefined || id.toLowerCase() !== c.userId) {
          this.dropped('decryption');
          this.o.logger.warn({ subscriptionId: c.subscriptionId, userId: c.userId }, 'graph: rich notification dropped (the resource names another user); reading the user instead');
          readBack.push(c.userId);
          continue;
        }
        this.st.notifications.decrypted++;
        if (this.o.observer?.()?.teamsApplied !== undefined && !this.knownAt.has(c.userId)) this.knownAt.set(c.userId, knownAt);
        values.push(d.resource);
      }
      if (values.length > 0) this.take(values);
      if (readBack.length > 0) this.enqueue(readBack);
    })()
      .catch((error: unknown) => this.o.logger.error({ err: error }, 'graph: rich notifications failed'))
      .finally(() => this.richWork.delete(work));
    this.richWork.add(work);
  }

  /** Queue users for a batched presence look-up; repeats coalesce. */
  private enqueue(ids: readonly string[]): void {
    if (this.stopped) return;
    const observing = ids.length > 0 && this.o.observer?.()?.teamsApplied !== undefined;
    const now = observing ? this.o.clock.now() : 0;
    for (const id of ids) {
      const key = id.toLowerCase();
      this.pending.add(key);
      if (observing && !this.knownAt.has(key)) this.knownAt.set(key, now);
    }
    if (this.lookup !== undefined) {
      this.lookupQueued = true;
      return;
    }
    this.lookup = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.drainLookups());
  }

  private async drainLookups(): Promise<void> {
    try {
      do {
        this.lookupQueued = false;
        const ids = [...this.pending];
        this.pending.clear();
        if (ids.length === 0 || this.stopped) continue;
        const r = await readPresences(this.o.appClient, ids, (values) => this.take(values));
        this.st.lookups.calls += r.calls;
        if (r.failures.length > 0) {
          this.st.lookups.failures += r.failures.length;
          // the next poll reads them again: a notification is not repeated, so its change must not be lost
          for (const id of r.failedIds) this.retryIds.add(id.toLowerCase());
          this.o.logger.warn({ users: r.failedIds.length, status: r.failures[0]?.status, code: r.failures[0]?.code }, 'graph: presence look-up after notification failed');
        }
      } while ((this.lookupQueued || this.pending.size > 0) && !this.stopped);
    } catch (error) {
      this.o.logger.error({ err: error }, 'graph: presence look-up failed');
    } finally {
      this.lookup = undefined;
      if (this.pending.size > 0 && !this.stopped) this.enqueue([]);
    }
  }

  /**
   * Read these Teams users now (an administrator's resync), whatever their
   * subscription covers. Resolves with how many came back; a failure is
   * described, never thrown.
   */
  async readNow(userIds: readonly string[]): Promise<{ read: number; error?: string }> {
    if (this.stopped || userIds.length === 0) return { read: 0 };
    let read = 0;
    const r = await readPresences(this.o.appClient, userIds, (values) => {
      read += values.length;
      this.take(values, this.o.clock.now());
    });
    const f = r.failures[0];
    if (f === undefined) return { read };
    for (const id of r.failedIds) this.retryIds.add(id.toLowerCase());
    return { read, error: `${f.status || ''} ${f.code} ${f.message}`.trim() };
  }

  /** Resolves when no look-up, poll or subscription upkeep is running (tests). */
  async idle(): Promise<void> {
    for (let i = 0; i < 100; i++) {
      await new Promise<void>((r) => setImmediate(r));
      if (this.richWork.size > 0) await Promise.all([...this.richWork]);
      const reads = (): Array<Promise<void> | undefined> => [this.lookup, this.polling, this.pollStream.inFlight(), this.safetyStream.inFlight()];
      if (reads().every((r) => r === undefined) && this.pending.size === 0 && this.richWork.size === 0) {
        await this.subs?.idle();
        if (reads().every((r) => r === undefined) && this.pending.size === 0) return;
      }
      await Promise.all(reads());
    }
  }

  status(): ReaderStatus {
    const s: ReaderStatus = {
      users: this.userIds.length,
      polled: this.polledIds(false).length,
      polls: this.st.polls + this.pollStream.cycles,
      notifications: { ...this.st.notifications, dropped: { ...this.st.notifications.dropped } },
      lookups: { ...this.st.lookups },
      sink: this.sink.status(),
      subscriptions: this.subs?.status() ?? [],
      plan: this.plan(),
    };
    if (this.subs !== undefined) s.webhookHealth = this.health.status();
    if (this.st.lastPollAt !== undefined) s.lastPollAt = new Date(this.st.lastPollAt).toISOString();
    if (this.st.lastPollError !== undefined) s.lastPollError = this.st.lastPollError;
    return s;
  }

  /** Stop polling and upkeep; subscriptions stay for the next run unless asked to delete them. */
  async stop(options: { deleteSubscriptions?: boolean } = {}): Promise<void> {
    this.stopped = true;
    this.pollStream.stop();
    this.safetyStream.stop();
    await Promise.all([this.lookup, this.polling, this.pollStream.inFlight(), this.safetyStream.inFlight(), ...this.richWork]);
    this.pollingOn = false;
    // a manager stopped with its job (lease lost) holds what another node may renew by now: nothing of it is deleted
    if (!this.subsHandedOver) await this.subs?.stop(options);
    this.subscribingOn = false;
  }
}
