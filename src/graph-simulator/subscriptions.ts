import { X509Certificate } from 'node:crypto';
import type { ScheduledTask, SimClock } from './clock.js';
import { isoGraph } from './ids.js';

/** A change-notification subscription on presence. */
export interface Subscription {
  id: string;
  resource: string;
  changeType: string;
  notificationUrl: string;
  lifecycleNotificationUrl: string | null;
  clientState: string | null;
  expiresAt: number;
  applicationId: string;
  /** object id of the signed-in user who created it */
  creatorId: string;
  tenantId: string;
  userIds: readonly string[];
  includeResourceData: boolean;
  encryptionCertificate: string | null;
  encryptionCertificateId: string | null;
  /** parsed encryption certificate (rich notifications) */
  encryption: X509Certificate | null;
  latestSupportedTlsVersion: string;
  /** a reauthorizationRequired lifecycle event is outstanding */
  needsReauthorization: boolean;
  expiryTask: ScheduledTask | undefined;
}

/** The JSON Graph returns for a subscription. */
export function subscriptionJson(sub: Subscription): Record<string, unknown> {
  return {
    id: sub.id,
    resource: sub.resource,
    applicationId: sub.applicationId,
    changeType: sub.changeType,
    clientState: sub.clientState,
    notificationUrl: sub.notificationUrl,
    notificationQueryOptions: null,
    lifecycleNotificationUrl: sub.lifecycleNotificationUrl,
    expirationDateTime: isoGraph(sub.expiresAt),
    creatorId: sub.creatorId,
    includeResourceData: sub.includeResourceData,
    latestSupportedTlsVersion: sub.latestSupportedTlsVersion,
    encryptionCertificate: sub.encryptionCertificate,
    encryptionCertificateId: sub.encryptionCertificateId,
    notificationUrlAppId: null,
  };
}

/** Subscriptions by id and by watched user; each expires on the clock. */
export class SubscriptionStore {
  private readonly byId = new Map<string, Subscription>();
  private readonly byUser = new Map<string, Set<Subscription>>();
  /** app|user keys of presence subscriptions being created or existing (one per app per user) */
  private readonly owners = new Map<string, string>();

  constructor(
    private readonly clock: SimClock,
    private readonly onExpired: (sub: Subscription) => void = () => {},
  ) {}

  static ownerKey(appId: string, userId: string): string {
    return `${appId.toLowerCase()}|${userId.toLowerCase()}`;
  }

  /** Reserve the app+user slot; false when taken. */
  reserve(key: string, marker: string): boolean {
    const holder = this.owners.get(key);
    if (holder !== undefined && (holder !== marker)) {
      const existing = this.byId.get(holder);
      if (existing === undefined && holder.startsWith('pending:')) return false;
      if (existing && existing.expiresAt > this.clock.now()) return false;
    }
    this.owners.set(key, marker);
    return true;
  }

  release(key: string, marker: string): void {
    if (this.owners.get(key) === marker) this.owners.delete(key);
  }

  add(sub: Subscription, ownerKey: string): void {
    this.byId.set(sub.id, sub);
    this.owners.set(ownerKey, sub.id);
    for (const userId of sub.userIds) {
      let set = this.byUser.get(userId);
      if (!set) this.byUser.set(userId, (set = new Set()));
      set.add(sub);
    }
    this.scheduleExpiry(sub);
  }

  get(id: string): Subscription | undefined {
    const sub = this.byId.get(id);
    return sub && sub.expiresAt > this.clock.now() ? sub : undefined;
  }

  renew(sub: Subscription, expiresAt: number): void {
    sub.expiresAt = expiresAt;
    this.scheduleExpiry(sub);
  }

  remove(id: string): Subscription | undefined {
    const sub = this.byId.get(id);
    if (!sub) return undefined;
    sub.expiryTask?.cancel();
    this.byId.delete(id);
    for (const userId of sub.userIds) {
      const set = this.byUser.get(userId);
      set?.delete(sub);
      if (set && set.size === 0) this.byUser.delete(userId);
    }
    const key = SubscriptionStore.ownerKey(sub.applicationId, sub.creatorId);
    if (this.owners.get(key) === id) this.owners.delete(key);
    return sub;
  }

  /** Live subscriptions watching a user. */
  watching(userId: string): ReadonlySet<Subscription> | undefined {
    return this.byUser.get(userId);
  }

  list(): Subscription[] {
    const now = this.clock.now();
    return [...this.byId.values()].filter((s) => s.expiresAt > now);
  }

  get size(): number {
    return this.byId.size;
  }

  private scheduleExpiry(sub: Subscription): void {
    sub.expiryTask?.cancel();
    sub.expiryTask = this.clock.schedule(sub.expiresAt, () => {
      sub.expiryTask = undefined;
      if (this.byId.get(sub.id) !== sub) return;
      this.remove(sub.id);
      this.onExpired(sub);
    });
  }

  dispose(): void {
    for (const sub of this.byId.values()) sub.expiryTask?.cancel();
  }
}
