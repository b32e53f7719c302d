import { constants, createCipheriv, createHmac, publicEncrypt, randomBytes } from 'node:crypto';
import type { SimClock } from './clock.js';
import type { Counters } from './counters.js';
import { isoGraph, newGuid } from './ids.js';
import type { PresenceResource } from './model.js';
import { certificateThumbprints } from './certs.js';
import type { Subscription, SubscriptionStore } from './subscriptions.js';
import type { TokenService } from './token-service.js';
import type { WebhookClient } from './webhook-http.js';
import type { Logger } from '../util/logger.js';

export type LifecycleEvent = 'reauthorizationRequired' | 'subscriptionRemoved' | 'missed';

export interface NotifierOptions {
  /** a delivery not answered 2xx within this many real ms fails (Graph: 3 s) */
  deliveryTimeoutMs: number;
  /** validation handshake limit (Graph: 10 s) */
  validationTimeoutMs: number;
  /** first retry delay in simulated ms; doubles up to retryMaxDelayMs */
  retryBaseMs: number;
  retryMaxDelayMs: number;
  /** give up after this much simulated time since the first attempt (Graph: 4 h) */
  retryWindowMs: number;
  /** notifications per POST */
  batchSize: number;
  /** a delivery answered later than this (real ms) counts as slow (Graph: 2,900 ms) */
  slowMs: number;
  /** the slow share is judged over this many latest deliveries (Graph: 100) */
  healthSamples: number;
}

export const DEFAULT_NOTIFIER_OPTIONS: NotifierOptions = {
  deliveryTimeoutMs: 3000,
  validationTimeoutMs: 10_000,
  retryBaseMs: 5000,
  retryMaxDelayMs: 15 * 60_000,
  retryWindowMs: 4 * 3600_000,
  batchSize: 100,
  slowMs: 2900,
  healthSamples: 100,
};

/**
 * Slow endpoints (change-notifications-delivery-webhooks, throttling): an
 * answer over 2,900 ms is slow; judged over the latest 100 deliveries, more
 * than 10 % slow delays new notifications by 10 minutes, 15 % or more drops
 * them (here for 10 minutes, then judged afresh). Presence subscriptions get
 * no `missed` lifecycle event for what was dropped.
 */
const DELAY_RATIO = 0.1;
const DROP_RATIO = 0.15;
const SLOW_DELAY_MS = 10 * 60_000;
const DROP_PERIOD_MS = 10 * 60_000;

interface Item {
  sub: Subscription;
  body: Record<string, unknown>;
}

interface Batch {
  items: Item[];
  attempt: number;
  firstAt: number;
  lifecycle: boolean;
}

interface Endpoint {
  url: string;
  lifecycle: boolean;
  pending: Item[];
  flushQueued: boolean;
  /** the latest deliveries, true = slow */
  samples: boolean[];
  dropUntil: number;
}

/** Change and lifecycle notification delivery, with retries and slow-endpoint handling. */
export class Notifier {
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private closed = false;

  constructor(
    private readonly clock: SimClock,
    private readonly client: WebhookClient,
    private readonly store: SubscriptionStore,
    private readonly tokens: TokenService,
    private readonly counters: Counters,
    private readonly logger: Logger,
    readonly options: NotifierOptions,
  ) {}

  /** The validation handshake: POST url?validationToken=…, expect 200 text/plain echoing the token. */
  async validate(url: string): Promise<{ ok: true } | { ok: false; reason: string }> {
    const token = `Validation: simulator reachability check for subscription request ${newGuid()}`;
    const target = `${url}${url.includes('?') ? '&' : '?'}validationToken=${encodeURIComponent(token)}`;
    const r = await this.track(this.client.post(target, '', 'text/plain; charset=utf-8', this.options.validationTimeoutMs));
    let reason: string | undefined;
    if (r.status !== 200) reason = r.timedOut ? 'Notification endpoint did not respond within 10 seconds.' : `Notification endpoint must respond with 200 OK to validation request (got ${r.status || r.error || 'no response'}).`;
    else if (!r.contentType.toLowerCase().startsWith('text/plain')) reason = 'Response to validation request must have Content-Type text/plain.';
    else if (r.body !== token) reason = 'Response must exactly match validationToken query parameter.';
    if (reason) {
      this.counters.notifications.validationsFailed++;
      this.logger.info({ url, reason }, 'graph-sim: validation failed');
      return { ok: false, reason };
    }
    this.counters.notifications.validationsPassed++;
    return { ok: true };
  }

  /** Queue a basic (or rich) change notification for every subscription watching the user. */
  presenceChanged(userId: string, presence: PresenceResource): void {
    const subs = this.store.watching(userId);
    if (!subs || this.closed) return;
    const now = this.clock.now();
    for (const sub of subs) {
      if (sub.expiresAt <= now) continue;
      // Graph: change-notifications-delivery-webhooks / presence change notification (basic) payload
      const resource = `communications/presences/${userId}`;
      const body: Record<string, unknown> = {
        subscriptionId: sub.id,
        clientState: sub.clientState,
        changeType: 'updated',
        resource,
        subscriptionExpirationDateTime: isoGraph(sub.expiresAt),
        resourceData: { '@odata.type': '#microsoft.graph.presence', '@odata.id': `users/${userId}/presence`, id: userId },
        tenantId: sub.tenantId,
        organizationId: sub.tenantId,
      };
      if (sub.includeResourceData && sub.encryption) {
        try {
          body['encryptedContent'] = encryptResource(sub, {
          '@odata.type': '#Microsoft.Graph.presence',
          '@odata.id': resource,
          id: userId,
          availability: presence.availability,
          activity: presence.activity,
          statusMessage: presence.statusMessage,
          outOfOfficeSettings: presence.outOfOfficeSettings,
          sequenceNumber: presence.sequenceNumber,
          });
        } catch (error) {
          this.logger.error({ err: error, subscriptionId: sub.id }, 'graph-sim: cannot encrypt resource data');
          continue;
        }
      }
      this.enqueue(sub.notificationUrl, false, { sub, body });
    }
  }

  /** Send a lifecycle event; false when the subscription has no lifecycleNotificationUrl. */
  lifecycle(sub: Subscription, event: LifecycleEvent): boolean {
    if (!sub.lifecycleNotificationUrl || this.closed) return false;
    this.enqueue(sub.lifecycleNotificationUrl, true, {
      sub,
      body: {
        subscriptionId: sub.id,
        subscriptionExpirationDateTime: isoGraph(sub.expiresAt),
        tenantId: sub.tenantId,
        clientState: sub.clientState,
        lifecycleEvent: event,
      },
    });
    return true;
  }

  private endpoint(url: string, lifecycle: boolean): Endpoint {
    const key = `${lifecycle ? 'L' : 'N'} ${url}`;
    let ep = this.endpoints.get(key);
    if (!ep) {
      ep = { url, lifecycle, pending: [], flushQueued: false, samples: [], dropUntil: 0 };
      this.endpoints.set(key, ep);
    }
    return ep;
  }

  private enqueue(url: string, lifecycle: boolean, item: Item): void {
    const ep = this.endpoint(url, lifecycle);
    ep.pending.push(item);
    if (!ep.flushQueued) {
      ep.flushQueued = true;
      // batch what arrives in the same turn of the event loop
      setImmediate(() => this.flush(ep));
    }
  }

  private flush(ep: Endpoint): void {
    ep.flushQueued = false;
    if (this.closed) return;
    while (ep.pending.length > 0) {
      const items = ep.pending.splice(0, this.options.batchSize);
      const batch: Batch = { items, attempt: 0, firstAt: this.clock.now(), lifecycle: ep.lifecycle };
      const state = this.health(ep);
      if (state === 'drop' && !ep.lifecycle) {
        this.counters.notifications.dropped += items.length;
        continue;
      }
      if (state === 'delay' && !ep.lifecycle) {
        this.counters.notifications.delayed += items.length;
        this.clock.after(SLOW_DELAY_MS, () => this.attempt(ep, batch));
        continue;
      }
      this.attempt(ep, batch);
    }
  }

  private health(ep: Endpoint): 'ok' | 'delay' | 'drop' {
    const now = this.clock.now();
    if (ep.dropUntil > now) return 'drop';
    if (ep.samples.length < this.options.healthSamples) return 'ok';
    const slow = ep.samples.reduce((n, s) => n + (s ? 1 : 0), 0) / ep.samples.length;
    if (slow >= DROP_RATIO) {
      ep.dropUntil = now + DROP_PERIOD_MS;
      ep.samples = [];
      this.logger.warn({ url: ep.url }, 'graph-sim: endpoint too slow, dropping notifications for 10 minutes');
      return 'drop';
    }
    return slow > DELAY_RATIO ? 'delay' : 'ok';
  }

  private attempt(ep: Endpoint, batch: Batch): void {
    if (this.closed) return;
    // subscriptions deleted or expired since do not get their notifications
    batch.items = batch.items.filter((i) => this.store.get(i.sub.id) === i.sub || (batch.lifecycle && i.body['lifecycleEvent'] === 'subscriptionRemoved'));
    if (batch.items.length === 0) return;
    batch.attempt++;
    const payload: Record<string, unknown> = { value: batch.items.map((i) => i.body) };
    const rich = batch.items.filter((i) => i.sub.includeResourceData);
    const send = async (): Promise<void> => {
      if (rich.length > 0) {
        const apps = [...new Set(rich.map((i) => i.sub.applicationId))];
        payload['validationTokens'] = await Promise.all(apps.map((a) => this.tokens.issueValidationToken(a)));
      }
      const r = await this.client.post(ep.url, JSON.stringify(payload), 'application/json; charset=utf-8', this.options.deliveryTimeoutMs, {
        'client-request-id': newGuid(),
      });
      if (this.closed) return;
      const ok = r.status >= 200 && r.status < 300;
      ep.samples.push(r.timedOut || r.elapsedMs > this.options.slowMs);
      if (ep.samples.length > this.options.healthSamples) ep.samples.shift();
      if (ok) {
        if (batch.lifecycle) this.counters.notifications.lifecycleDelivered += batch.items.length;
        else this.counters.notifications.delivered += batch.items.length;
        return;
      }
      this.counters.notifications.failedAttempts++;
      const delay = Math.min(this.options.retryBaseMs * 2 ** (batch.attempt - 1), this.options.retryMaxDelayMs);
      if (this.clock.now() + delay - batch.firstAt > this.options.retryWindowMs) {
        this.counters.notifications.dropped += batch.items.length;
        this.logger.warn({ url: ep.url, attempts: batch.attempt }, 'graph-sim: giving up on notifications after the retry window');
        return;
      }
      this.counters.notifications.retried++;
      this.logger.debug({ url: ep.url, status: r.status, error: r.error, attempt: batch.attempt, delayMs: delay }, 'graph-sim: delivery failed, retrying');
      this.clock.after(delay, () => this.attempt(ep, batch));
    };
    void this.track(send().catch((error: unknown) => this.logger.error({ err: error }, 'graph-sim: delivery error')));
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
    return p;
  }

  /** Wait until no POST is in flight (tests). */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0 || [...this.endpoints.values()].some((e) => e.flushQueued)) {
      await Promise.allSettled([...this.inFlight]);
      await new Promise((r) => setImmediate(r));
    }
  }

  close(): void {
    this.closed = true;
  }
}

/** Rich notification payload: AES-256-CBC data, RSA-OAEP (SHA-1) wrapped key, HMAC-SHA256 signature. */
function encryptResource(sub: Subscription, resource: Record<string, unknown>): Record<string, string> {
  const cert = sub.encryption;
  if (!cert) throw new Error('no encryption certificate');
  const key = randomBytes(32);
  const iv = key.subarray(0, 16);
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  const data = Buffer.concat([cipher.update(JSON.stringify(resource), 'utf8'), cipher.final()]);
  const dataKey = publicEncrypt({ key: cert.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, key);
  const signature = createHmac('sha256', key).update(data).digest();
  return {
    data: data.toString('base64'),
    dataSignature: signature.toString('base64'),
    dataKey: dataKey.toString('base64'),
    encryptionCertificateId: sub.encryptionCertificateId ?? '',
    encryptionCertificateThumbprint: certificateThumbprints(cert.toString()).sha1Hex,
  };
}
