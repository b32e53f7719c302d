/**
 * Presence change-notification subscriptions, one per service account (Graph
 * allows one per application and signed-in user, each naming at most 650
 * users). Users are spread over as few accounts as their number needs, and
 * stay where they are when the set changes. Each subscription is renewed at
 * two thirds of its lifetime, re-created when Graph has lost it, and a 409 on
 * create is resolved by deleting the app's stale subscription for that
 * account. Ids and expiries go to a SubscriptionStateStore so a restart
 * renews instead of colliding. An account that cannot sign in (not signed
 * in yet, refresh token revoked, password refused) is left out: its users
 * go to the other accounts or to polling until it can again.
 */
import type { Client } from '@microsoft/microsoft-graph-client';
import type { Logger } from '../util/logger.js';
import type { Clock, Timer } from '../util/clock.js';
import { graphFailure, isRecord, isTransient, type GraphFailure } from './client.js';
import { MAX_IDS_PER_CALL } from './presence-batch.js';
import type { SubscriptionRecord, SubscriptionStateStore } from './subscription-state.js';

/** Presence subscriptions may name at most this many users. */
export const MAX_USERS_PER_SUBSCRIPTION = MAX_IDS_PER_CALL;

export interface SubscriptionAccount {
  name: string;
  /** a Graph client holding the account's delegated token */
  client: Client;
  /** whether the account can get a token now (absent: always); onChange returns the unsubscribe */
  availability?: { usable(): boolean; onChange(listener: () => void): () => void };
}

interface LiveSubscription {
  id: string;
  userIds: string[];
  expiresAt: number;
  clientState: string;
  notificationUrl: string;
  /** renew at the next chance (restart, reauthorizationRequired) */
  renewNow: boolean;
  /** created with includeResourceData (undefined: taken over from an earlier run, not known) */
  rich?: boolean;
  /** replace at the next chance (it sends basic notifications where rich ones are wanted) */
  replace?: boolean;
}

interface Slot {
  name: string;
  client: Client;
  usable: () => boolean;
  wanted: string[];
  sub: LiveSubscription | undefined;
  busy: Promise<void> | undefined;
  dirty: boolean;
  timer: Timer | undefined;
  failures: number;
  retryAt: number;
  lastError: string | undefined;
  created: number;
  renewed: number;
  conflictsResolved: number;
}

export interface SubscriptionStatus {
  account: string;
  users: number;
  subscriptionId?: string;
  expiresAt?: string;
  state: 'active' | 'pending' | 'failed' | 'unused';
  failures: number;
  lastError?: string;
  /** false while the account cannot sign in (its users are polled) */
  usable: boolean;
  created: number;
  renewed: number;
  conflictsResolved: number;
}

export interface SubscriptionManagerOptions {
  accounts: SubscriptionAccount[];
  notificationUrl: string;
  clientState: string;
  stateStore: SubscriptionStateStore;
  clock: Clock;
  logger: Logger;
  /** requested lifetime (default 58 min; Graph allows 60 for presence) */
  lifetimeMs?: number;
  /** renew this far into the lifetime (default 2/3) */
  renewFraction?: number;
  /** who is covered changed */
  onCoverageChange?: () => void;
  /** these users may have changed unseen (new subscription, missed notifications): read them now */
  onResync?: (userIds: string[]) => void;
  /** rich notifications: the certificate new subscriptions carry (undefined until the key pair is loaded) */
  encryption?: () => { certificate: string; id: string } | undefined;
}

const sameSet = (a: readonly string[], b: readonly string[]): boolean => {
  if (a.length !== b.length) return false;
  const s = new Set(a);
  return b.every((x) => s.has(x));
};

function presenceResource(userIds: readonly string[]): string {
  return `/communications/presences?$filter=id in (${userIds.map((id) => `'${id}'`).join(',')})`;
}

/**
 * Spread users over slots: everyone keeps their slot, new users go to the
 * least loaded of the accounts in use, and as many accounts are used as
 * ceil(users / 650). Who does not fit is left for polling.
 */
export function assignUsers(userIds: readonly string[], slots: Array<{ wanted: string[] }>, cap = MAX_USERS_PER_SUBSCRIPTION): string[] {
  const want = new Set(userIds);
  const placed = new Set<string>();
  for (const s of slots) {
    const keep: string[] = [];
    for (const u of s.wanted) {
      if (keep.length >= cap) break;
      if (want.has(u) && !placed.has(u)) {
        keep.push(u);
        placed.add(u);
      }
    }
    s.wanted = keep;
  }
  const rest = userIds.filter((u) => !placed.has(u));
  const needed = Math.min(slots.length, Math.ceil(userIds.length / cap));
  const active = slots.filter((s) => s.wanted.length > 0);
  for (const s of slots) {
    if (active.length >= needed) break;
    if (s.wanted.length === 0) active.push(s);
  }
  let i = 0;
  while (i < rest.length) {
    const room = active.filter((s) => s.wanted.length < cap);
    if (room.length === 0) {
      const spare = slots.find((s) => !active.includes(s));
      if (spare === undefined) break;
      active.push(spare);
      continue;
    }
    // level the loads: everyone with room up to the average (or the cap)
    const total = room.reduce((n, s) => n + s.wanted.length, 0) + (rest.length - i);
    const target = Math.min(cap, Math.ceil(total / room.length));
    for (const s of room) while (s.wanted.length < target && i < rest.length) s.wanted.push(rest[i++] as string);
  }
  return rest.slice(i);
}

export class SubscriptionManager {
  private readonly slots: Slot[];
  private readonly lifetimeMs: number;
  private readonly renewFraction: number;
  private coverage = new Map<string, Slot>();
  private uncovered: string[] = [];
  private stopped = false;
  private started = false;
  private saving: Promise<void> = Promise.resolve();
  private userIds: readonly string[] = [];
  private readonly unsubscribe: Array<() => void> = [];

  constructor(private readonly o: SubscriptionManagerOptions) {
    // Graph: resources/subscription (presence lives at most 60 minutes)
    this.lifetimeMs = o.lifetimeMs ?? 58 * 60_000;
    this.renewFraction = o.renewFraction ?? 2 / 3;
    this.slots = o.accounts.map((a) => ({
      name: a.name,
      client: a.client,
      usable: a.availability !== undefined ? () => a.availability!.usable() : () => true,
      wanted: [],
      sub: undefined,
      busy: undefined,
      dirty: false,
      timer: undefined,
      failures: 0,
      retryAt: 0,
      lastError: undefined,
      created: 0,
      renewed: 0,
      conflictsResolved: 0,
    }));
    this.follow();
  }

  /** Follow each account's sign-in (from construction, and again at each start after a stop). */
  private follow(): void {
    this.o.accounts.forEach((a, i) => {
      const slot = this.slots[i];
      if (a.availability === undefined || slot === undefined) return;
      let was = slot.usable();
      this.unsubscribe.push(
        a.availability.onChange(() => {
          const now = slot.usable();
          if (now === was) return;
          was = now;
          this.accountChanged(slot, now);
        }),
      );
    });
  }

  /** An account became usable (signed in) or stopped being so (refused): spread the users again. */
  private accountChanged(slot: Slot, usable: boolean): void {
    if (this.stopped) return;
    this.o.logger.info({ account: slot.name, usable }, usable ? 'graph: service account usable again; subscribing with it' : 'graph: service account cannot sign in; its users go to other accounts or polling');
    if (!usable) this.abandon(slot);
    this.assign(this.userIds);
    if (!this.started) return;
    for (const s of this.slots) void this.reconcile(s);
  }

  /** Forget the slot's subscription without asking Graph (there is no token to ask with); it lapses there. */
  private abandon(slot: Slot): void {
    slot.timer?.cancel();
    slot.timer = undefined;
    slot.failures = 0;
    slot.retryAt = 0;
    if (slot.sub !== undefined) {
      const users = [...slot.sub.userIds];
      this.o.logger.info({ subscriptionId: slot.sub.id, account: slot.name }, 'graph: subscription of an account that cannot sign in left to expire');
      this.drop(slot);
      // its notifications stop here: read its users now, polling takes them from here on
      this.o.onResync?.(users);
    }
  }

  /**
   * Take over what a previous run left, assign `userIds`, and bring every
   * account in line. Again after stop(): what this manager knew is dropped
   * and the store read anew (another node may have renewed or replaced the
   * subscriptions meanwhile), so a stored subscription is renewed, never
   * created twice.
   */
  async start(userIds: readonly string[]): Promise<void> {
    if (this.stopped) {
      this.stopped = false;
      for (const s of this.slots) {
        s.sub = undefined;
        s.wanted = [];
        s.failures = 0;
        s.retryAt = 0;
        s.lastError = undefined;
      }
      this.coverageChanged();
      this.follow();
    }
    this.started = true;
    let records: SubscriptionRecord[] = [];
    try {
      records = await this.o.stateStore.load();
    } catch (error) {
      this.o.logger.warn({ err: error }, 'graph: cannot read the subscription state; starting without it');
    }
    const now = this.o.clock.now();
    for (const r of records) {
      const slot = this.slots.find((s) => s.name.toLowerCase() === r.account.toLowerCase());
      if (slot === undefined) {
        this.o.logger.info({ subscriptionId: r.id, account: r.account }, 'graph: subscription of an account no longer configured left to expire');
        continue;
      }
      if (r.expiresAt <= now + 60_000) continue;
      slot.sub = { id: r.id, userIds: [...r.userIds], expiresAt: r.expiresAt, clientState: r.clientState, notificationUrl: r.notificationUrl, renewNow: true };
      slot.wanted = [...r.userIds];
    }
    this.assign(userIds);
    await Promise.all(this.slots.map((s) => this.reconcile(s)));
  }

  /** The set of users to watch changed (directory sync). */
  setUsers(userIds: readonly string[]): void {
    if (this.stopped) return;
    this.assign(userIds);
    if (!this.started) return;
    for (const s of this.slots) void this.reconcile(s);
  }

  private assign(userIds: readonly string[]): void {
    this.userIds = [...userIds];
    for (const s of this.slots) if (!s.usable()) s.wanted = [];
    this.uncovered = assignUsers(userIds, this.slots.filter((s) => s.usable()));
    if (this.uncovered.length > 0) {
      this.o.logger.info({ users: this.uncovered.length, accounts: this.slots.length }, 'graph: more users than the service accounts can subscribe to; the rest are polled');
    }
  }

  /** The slot covering a user, when a live subscription does. */
  isCovered(userId: string): boolean {
    const slot = this.coverage.get(userId);
    return slot !== undefined && slot.sub !== undefined && slot.sub.expiresAt > this.o.clock.now();
  }

  /** The clientState a subscription's notifications must carry, when we know the subscription. */
  clientStateOf(subscriptionId: string): string | undefined {
    return this.slotOf(subscriptionId)?.sub?.clientState;
  }

  /**
   * A subscription sent a basic notification while rich ones are configured
   * (one created by an earlier run without includeResourceData): replace it once.
   */
  wantsResourceData(subscriptionId: string): void {
    const slot = this.slotOf(subscriptionId);
    const sub = slot?.sub;
    if (slot === undefined || sub === undefined || sub.rich === true || sub.replace === true || this.stopped) return;
    if (this.o.encryption?.() === undefined) return;
    this.o.logger.info({ subscriptionId, account: slot.name }, 'graph: subscription sends basic notifications; replacing it with one that includes resource data');
    sub.replace = true;
    void this.reconcile(slot);
  }

  private slotOf(subscriptionId: string): Slot | undefined {
    const id = subscriptionId.toLowerCase();
    return this.slots.find((s) => s.sub !== undefined && s.sub.id.toLowerCase() === id);
  }

  /** A lifecycle notification (already checked for its clientState). */
  lifecycle(subscriptionId: string, event: string): void {
    const slot = this.slotOf(subscriptionId);
    if (slot === undefined || slot.sub === undefined || this.stopped) return;
    const log = { subscriptionId, account: slot.name, event };
    if (event === 'reauthorizationRequired') {
      // Graph: change-notifications-lifecycle-events (answered by renewing with a fresh token)
      this.o.logger.info(log, 'graph: subscription needs reauthorization; renewing');
      slot.sub.renewNow = true;
      void this.reconcile(slot);
    } else if (event === 'subscriptionRemoved') {
      this.o.logger.warn(log, 'graph: subscription removed by Graph; re-creating');
      this.drop(slot);
      void this.reconcile(slot);
    } else if (event === 'missed') {
      this.o.logger.warn(log, 'graph: notifications were missed; reading the users again');
      this.o.onResync?.([...slot.sub.userIds]);
    } else {
      this.o.logger.info(log, 'graph: unknown lifecycle event ignored');
    }
  }

  private drop(slot: Slot): void {
    if (slot.sub === undefined) return;
    slot.sub = undefined;
    this.coverageChanged();
    this.persist();
  }

  private coverageChanged(): void {
    const m = new Map<string, Slot>();
    for (const s of this.slots) if (s.sub !== undefined) for (const u of s.sub.userIds) m.set(u, s);
    this.coverage = m;
    this.o.onCoverageChange?.();
  }

  private persist(): void {
    const records: SubscriptionRecord[] = [];
    for (const s of this.slots) {
      if (s.sub === undefined) continue;
      const { id, userIds, expiresAt, clientState, notificationUrl } = s.sub;
      records.push({ id, account: s.name, userIds, expiresAt, clientState, notificationUrl });
    }
    this.saving = this.o.stateStore.save(records).catch((error: unknown) => this.o.logger.warn({ err: error }, 'graph: cannot save the subscription state'));
  }

  /** Run the slot's state machine until nothing is left to do; one run at a time per slot. */
  private reconcile(slot: Slot): Promise<void> {
    if (slot.busy !== undefined) {
      slot.dirty = true;
      return slot.busy;
    }
    const run = async (): Promise<void> => {
      try {
        do {
          slot.dirty = false;
          await this.step(slot);
        } while (slot.dirty && !this.stopped);
      } catch (error) {
        this.o.logger.error({ err: error, account: slot.name }, 'graph: subscription upkeep failed');
      } finally {
        slot.busy = undefined;
      }
    };
    slot.busy = run();
    return slot.busy;
  }

  private schedule(slot: Slot, at: number): void {
    slot.timer?.cancel();
    if (this.stopped) return;
    slot.timer = this.o.clock.after(Math.max(0, at - this.o.clock.now()), () => {
      slot.timer = undefined;
      void this.reconcile(slot);
    });
  }

  private failed(slot: Slot, what: string, f: GraphFailure): void {
    slot.failures++;
    slot.lastError = `${what}: ${f.status || ''} ${f.code} ${f.message}`.trim();
    const backoff = Math.min(15 * 60_000, 30_000 * 2 ** Math.min(slot.failures - 1, 10));
    slot.retryAt = this.o.clock.now() + Math.max(f.retryAfterMs ?? 0, backoff);
    this.o.logger.warn({ account: slot.name, status: f.status, code: f.code, reason: f.message, retryInMs: slot.retryAt - this.o.clock.now() }, `graph: subscription ${what} failed`);
  }

  private async step(slot: Slot): Promise<void> {
    if (this.stopped) return;
    if (!slot.usable()) {
      // no token to be had: nothing to do until the account signs in again (accountChanged)
      this.abandon(slot);
      return;
    }
    const now = this.o.clock.now();
    if (slot.sub !== undefined && slot.sub.expiresAt <= now) {
      this.o.logger.warn({ subscriptionId: slot.sub.id, account: slot.name }, 'graph: subscription expired before renewal');
      this.drop(slot);
    }
    if (slot.retryAt > now) {
      this.schedule(slot, slot.retryAt);
      return;
    }
    const sub = slot.sub;
    if (slot.wanted.length === 0) {
      if (sub !== undefined) await this.remove(slot, sub);
      return;
    }
    if (sub !== undefined && (!sameSet(sub.userIds, slot.wanted) || sub.notificationUrl !== this.o.notificationUrl || sub.replace === true)) {
      // the resource of a subscription cannot be changed: replace it
      await this.remove(slot, sub);
      if (slot.sub !== undefined) return;
    }
    if (slot.sub === undefined) {
      await this.create(slot);
      return;
    }
    const live = slot.sub;
    const renewAt = live.expiresAt - this.lifetimeMs * (1 - this.renewFraction);
    if (live.renewNow || now >= renewAt) await this.renew(slot, live);
    else this.schedule(slot, renewAt);
  }

  private expiration(): { at: number; iso: string } {
    const at = this.o.clock.now() + this.lifetimeMs;
    return { at, iso: new Date(at).toISOString() };
  }

  private async renew(slot: Slot, sub: LiveSubscription): Promise<void> {
    const exp = this.expiration();
    try {
      await slot.client.api(`/subscriptions/${encodeURIComponent(sub.id)}`).patch({ expirationDateTime: exp.iso });
    } catch (error) {
      const f = graphFailure(error);
      if (f.status === 404) {
        this.o.logger.warn({ subscriptionId: sub.id, account: slot.name }, 'graph: subscription gone at renewal; re-creating');
        this.drop(slot);
        slot.dirty = true;
        return;
      }
      this.failed(slot, 'renewal', f);
      this.schedule(slot, Math.min(slot.retryAt, sub.expiresAt));
      return;
    }
    sub.expiresAt = exp.at;
    sub.renewNow = false;
    slot.failures = 0;
    slot.lastError = undefined;
    slot.renewed++;
    this.o.logger.debug({ subscriptionId: sub.id, account: slot.name, expiresAt: exp.iso }, 'graph: subscription renewed');
    this.persist();
    this.schedule(slot, exp.at - this.lifetimeMs * (1 - this.renewFraction));
  }

  private async remove(slot: Slot, sub: LiveSubscription): Promise<void> {
    try {
      await slot.client.api(`/subscriptions/${encodeURIComponent(sub.id)}`).delete();
    } catch (error) {
      const f = graphFailure(error);
      if (f.status !== 404) {
        if (isTransient(f)) {
          this.failed(slot, 'delete', f);
          this.schedule(slot, slot.retryAt);
          return;
        }
        this.o.logger.warn({ subscriptionId: sub.id, status: f.status, code: f.code }, 'graph: cannot delete a subscription; it will expire');
      }
    }
    this.o.logger.info({ subscriptionId: sub.id, account: slot.name }, 'graph: subscription deleted');
    this.drop(slot);
  }

  /** Delete every subscription of this app that the account holds (the 409 case). */
  private async clearStale(slot: Slot): Promise<number> {
    // Graph: subscription-list (the answer pages by @odata.nextLink): gather every page before deleting
    const list: unknown[] = [];
    let next: string | undefined = '/subscriptions';
    for (let pages = 0; next !== undefined && pages < 1000; pages++) {
      const body: unknown = await slot.client.api(next).get();
      if (isRecord(body) && Array.isArray(body['value'])) list.push(...body['value']);
      const link = isRecord(body) ? body['@odata.nextLink'] : undefined;
      next = typeof link === 'string' && link !== '' ? link : undefined;
    }
    let n = 0;
    for (const s of list) {
      if (!isRecord(s) || typeof s['id'] !== 'string') continue;
      const resource = typeof s['resource'] === 'string' ? s['resource'].replace(/^\//, '').toLowerCase() : '';
      if (!resource.startsWith('communications/presences')) continue;
      try {
        await slot.client.api(`/subscriptions/${encodeURIComponent(s['id'])}`).delete();
        n++;
        this.o.logger.info({ subscriptionId: s['id'], account: slot.name }, 'graph: stale subscription deleted');
      } catch (error) {
        if (graphFailure(error).status !== 404) throw error;
      }
    }
    return n;
  }

  private async create(slot: Slot): Promise<void> {
    const userIds = [...slot.wanted];
    const encryption = this.o.encryption?.();
    const post = async () => {
      const exp = this.expiration();
      const body: unknown = await slot.client.api('/subscriptions').post({
        changeType: 'updated',
        notificationUrl: this.o.notificationUrl,
        lifecycleNotificationUrl: this.o.notificationUrl,
        resource: presenceResource(userIds),
        expirationDateTime: exp.iso,
        clientState: this.o.clientState,
        // Graph: change-notifications-with-resource-data (creating a subscription)
        ...(encryption !== undefined
          ? { includeResourceData: true, encryptionCertificate: encryption.certificate, encryptionCertificateId: encryption.id }
          : {}),
      });
      if (!isRecord(body) || typeof body['id'] !== 'string') throw new Error('the subscription answer has no id');
      const expires = typeof body['expirationDateTime'] === 'string' ? Date.parse(body['expirationDateTime']) : NaN;
      return { id: body['id'], expiresAt: Number.isNaN(expires) ? exp.at : expires };
    };
    let made: { id: string; expiresAt: number };
    try {
      try {
        made = await post();
      } catch (error) {
        if (graphFailure(error).status !== 409) throw error;
        // Graph: subscription-post-subscriptions, presence (one subscription per app and user: 409)
        this.o.logger.info({ account: slot.name }, 'graph: subscription exists already (409); deleting the stale one');
        const n = await this.clearStale(slot);
        slot.conflictsResolved++;
        this.o.logger.info({ account: slot.name, deleted: n }, 'graph: stale subscriptions cleared; creating again');
        made = await post();
      }
    } catch (error) {
      this.failed(slot, 'creation', graphFailure(error));
      this.schedule(slot, slot.retryAt);
      return;
    }
    slot.sub = {
      id: made.id,
      userIds,
      expiresAt: made.expiresAt,
      clientState: this.o.clientState,
      notificationUrl: this.o.notificationUrl,
      renewNow: false,
      rich: encryption !== undefined,
    };
    slot.failures = 0;
    slot.lastError = undefined;
    slot.created++;
    this.o.logger.info({ subscriptionId: made.id, account: slot.name, users: userIds.length, expiresAt: new Date(made.expiresAt).toISOString() }, 'graph: subscription created');
    this.coverageChanged();
    this.persist();
    // changes before the subscription existed were not notified
    this.o.onResync?.(userIds);
    if (!sameSet(userIds, slot.wanted)) slot.dirty = true;
    else this.schedule(slot, made.expiresAt - this.lifetimeMs * (1 - this.renewFraction));
  }

  /** Users no subscription is meant to cover (beyond the accounts' capacity). */
  overflow(): readonly string[] {
    return this.uncovered;
  }

  status(): SubscriptionStatus[] {
    const now = this.o.clock.now();
    return this.slots.map((s) => {
      const st: SubscriptionStatus = {
        account: s.name,
        users: s.wanted.length,
        state: s.wanted.length === 0 && s.sub === undefined ? 'unused' : s.sub !== undefined && s.sub.expiresAt > now ? 'active' : s.failures > 0 ? 'failed' : 'pending',
        failures: s.failures,
        usable: s.usable(),
        created: s.created,
        renewed: s.renewed,
        conflictsResolved: s.conflictsResolved,
      };
      if (s.sub !== undefined) {
        st.subscriptionId = s.sub.id;
        st.expiresAt = new Date(s.sub.expiresAt).toISOString();
      }
      if (s.lastError !== undefined) st.lastError = s.lastError;
      return st;
    });
  }

  /** Wait for running upkeep (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.slots.some((s) => s.busy !== undefined)) await Promise.all(this.slots.map((s) => s.busy));
  }

  /** Stop the upkeep. Subscriptions stay (a restart renews them) unless `deleteSubscriptions`. */
  async stop(options: { deleteSubscriptions?: boolean } = {}): Promise<void> {
    this.stopped = true;
    for (const u of this.unsubscribe.splice(0)) u();
    for (const s of this.slots) {
      s.timer?.cancel();
      s.timer = undefined;
    }
    await this.idle();
    if (options.deleteSubscriptions) {
      for (const s of this.slots) {
        const sub = s.sub;
        if (sub === undefined) continue;
        try {
          await s.client.api(`/subscriptions/${encodeURIComponent(sub.id)}`).delete();
        } catch (error) {
          this.o.logger.info({ subscriptionId: sub.id, err: graphFailure(error) }, 'graph: subscription not deleted at stop');
        }
        s.sub = undefined;
      }
      this.persist();
    }
    await this.saving;
  }
}
