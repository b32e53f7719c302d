/**
 * Prometheus metrics on a registry of their own (never prom-client's global
 * one). The methods of Metrics are the observation points the notifier, the
 * Graph side and the webhook route call; those layers see it only through
 * structural interfaces of their own. Hot-path counts (one per NOTIFY) go
 * into plain maps and become counter values at scrape time.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { TrunkInfo } from './admin-source.js';
import { systemClock, type Clock } from '../util/clock.js';

/** Per event package: active subscriptions, or counts by state (active, pending, ...). */
export type SubscriptionCounts = Readonly<Record<string, number | Readonly<Record<string, number>>>>;

export interface MetricsOptions {
  /** Prefix for every metric name (default none). */
  prefix?: string;
  /** Node process metrics (memory, CPU, event loop lag) too (default true). */
  processMetrics?: boolean;
  clock?: Pick<Clock, 'now'>;
}

/** What the security collector reads: event counts keyed "event\u0000reason", and current lockouts. */
export interface SecurityCounts {
  events: ReadonlyMap<string, number>;
  lockouts?: { lockedSources: number; lockedUsers: number };
}

const LATENCY_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120];

/** key of a two-label tally; \u0000 never occurs in an event name or status */
const SEP = '\u0000';

class Tally {
  readonly counts = new Map<string, number>();
  add(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }
}

export class Metrics {
  readonly registry = new Registry();
  private readonly clock: Pick<Clock, 'now'>;
  private readonly sent = new Tally();
  private readonly failed = new Tally();
  private readonly published = new Tally();
  private readonly graphStatus = new Tally();
  private throttled = 0;
  private readonly webhook = new Tally();
  private readonly droppedNotifications = new Tally();
  private lastDelivery: { at: number; result: string } | undefined;
  private subscriptionSource: (() => SubscriptionCounts) | undefined;
  private trunkSource: (() => readonly TrunkInfo[]) | undefined;
  private securitySource: (() => SecurityCounts) | undefined;
  private readonly teamsToSipHistogram: Histogram;
  private readonly sipToTeamsHistogram: Histogram;

  constructor(options: MetricsOptions = {}) {
    const p = options.prefix ?? '';
    this.clock = options.clock ?? systemClock;
    const registers = [this.registry];
    const self = this;
    const tallied = (name: string, help: string, labelNames: string[], tally: () => Iterable<[string, number]>): void => {
      new Counter({
        name: p + name,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          for (const [key, n] of tally()) {
            const values = key.split(SEP);
            const labels: Record<string, string> = {};
            labelNames.forEach((l, i) => (labels[l] = values[i] ?? ''));
            this.inc(labels, n);
          }
        },
      });
    };
    tallied('notify_sent_total', 'NOTIFY requests answered 2xx by watchers, by event package', ['event'], () => this.sent.counts);
    tallied('notify_failed_total', 'NOTIFY requests that failed (final status, or "timeout"/"transport")', ['event', 'status'], () => this.failed.counts);
    tallied('publish_total', 'PUBLISH requests handled, by event package and result', ['event', 'result'], () => this.published.counts);
    tallied('graph_requests_total', 'Microsoft Graph requests by HTTP status (0: no response)', ['status'], () => this.graphStatus.counts);
    new Counter({
      name: p + 'graph_throttled_total',
      help: 'Microsoft Graph 429 Too Many Requests answers',
      registers,
      collect() {
        this.reset();
        if (self.throttled > 0) this.inc(self.throttled);
      },
    });
    tallied('webhook_deliveries_total', 'Graph change-notification deliveries to the webhook, by result', ['result'], () => this.webhook.counts);
    tallied(
      'graph_notifications_dropped_total',
      'Graph change notifications dropped though answered 202, by reason (clientState, tenant, validationToken, signature, decryption)',
      ['reason'],
      () => this.droppedNotifications.counts,
    );

    new Gauge({
      name: p + 'subscriptions',
      help: 'Watcher subscriptions to the gateway, by event package and state',
      labelNames: ['event', 'state'],
      registers,
      collect() {
        this.reset();
        const counts = self.subscriptionSource?.() ?? {};
        for (const [event, v] of Object.entries(counts)) {
          if (typeof v === 'number') this.set({ event, state: 'active' }, v);
          else for (const [state, n] of Object.entries(v)) this.set({ event, state }, n);
        }
      },
    });
    new Gauge({
      name: p + 'trunk_up',
      help: 'Whether the trunk answers OPTIONS (1) or not (0); absent while not known',
      labelNames: ['trunk'],
      registers,
      collect() {
        this.reset();
        for (const t of self.trunkSource?.() ?? []) if (t.reachable !== undefined) this.set({ trunk: t.name }, t.reachable ? 1 : 0);
      },
    });
    new Gauge({
      name: p + 'upstream_subscriptions',
      help: 'Subscriptions the gateway holds at trunks, by state (up, down)',
      labelNames: ['trunk', 'state'],
      registers,
      collect() {
        this.reset();
        for (const t of self.trunkSource?.() ?? []) {
          this.set({ trunk: t.name, state: 'up' }, t.subscriptions.up);
          this.set({ trunk: t.name, state: 'down' }, t.subscriptions.down);
        }
      },
    });
    new Counter({
      name: p + 'security_events_total',
      help: 'Security log events: failed authentications, refusals, lockouts, connection limits; by event and reason',
      labelNames: ['event', 'reason'],
      registers,
      collect() {
        this.reset();
        for (const [key, n] of self.securitySource?.().events ?? []) {
          const [event, reason] = key.split(SEP);
          this.inc({ event: event ?? '', reason: reason ?? '' }, n);
        }
      },
    });
    new Gauge({
      name: p + 'auth_lockouts_active',
      help: 'Digest lockouts in force now: source+user pairs (scope "source") and user names from every source (scope "user")',
      labelNames: ['scope'],
      registers,
      collect() {
        this.reset();
        const l = self.securitySource?.().lockouts;
        if (l === undefined) return;
        this.set({ scope: 'source' }, l.lockedSources);
        this.set({ scope: 'user' }, l.lockedUsers);
      },
    });
    this.teamsToSipHistogram = new Histogram({
      name: p + 'teams_to_sip_seconds',
      help: 'From a Teams presence change (Graph notification or poll) to the NOTIFYs to SIP watchers',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.sipToTeamsHistogram = new Histogram({
      name: p + 'sip_to_teams_seconds',
      help: 'From a SIP/PBX state change to Graph accepting the Teams presence',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: p });
  }

  // --- observation points ---

  /** A NOTIFY of `event` was accepted (2xx) by the watcher. */
  notifySent(event: string): void {
    this.sent.add(event);
  }

  /** A NOTIFY of `event` failed: its final status, or 'timeout' / 'transport'. */
  notifyFailed(event: string, status: number | string): void {
    this.failed.add(event + SEP + String(status));
  }

  /** A PUBLISH of `event` was handled: 'created', 'refreshed', 'modified', 'removed', or the error status. */
  publish(event: string, result: string | number): void {
    this.published.add(event + SEP + String(result));
  }

  /** A Graph request ended with `status` (0: no response). 429s also count as throttled. */
  graphRequest(status: number): void {
    this.graphStatus.add(String(status));
    if (status === 429) this.throttled++;
  }

  /** Graph delivered to the webhook: 'accepted', 'rejected', 'validation', ... */
  webhookDelivery(result: string): void {
    this.webhook.add(result);
    this.lastDelivery = { at: this.clock.now(), result };
  }

  /** A Graph notification was dropped (wrong or missing clientState, failed validation or decryption). */
  notificationDropped(reason: string): void {
    this.droppedNotifications.add(reason);
  }

  /** Seconds from a Teams change to the NOTIFYs it caused. */
  teamsToSip(seconds: number): void {
    if (Number.isFinite(seconds) && seconds >= 0) this.teamsToSipHistogram.observe(seconds);
  }

  /** Seconds from a SIP/PBX change to Graph accepting the presence. */
  sipToTeams(seconds: number): void {
    if (Number.isFinite(seconds) && seconds >= 0) this.sipToTeamsHistogram.observe(seconds);
  }

  // --- collected at scrape time ---

  collectSubscriptions(source: () => SubscriptionCounts): void {
    this.subscriptionSource = source;
  }

  collectTrunks(source: () => readonly TrunkInfo[]): void {
    this.trunkSource = source;
  }

  /** The security log's tally (keys "event\u0000reason") and the lockouts in force. */
  collectSecurity(source: () => SecurityCounts): void {
    this.securitySource = source;
  }

  // --- reading ---

  lastWebhookDelivery(): { at: number; result: string } | undefined {
    return this.lastDelivery;
  }

  /** Counts so far (tests, the diagnostics page). */
  snapshot(): { notifySent: number; notifyFailed: number; webhookDeliveries: number; graphThrottled: number } {
    let sent = 0;
    for (const n of this.sent.counts.values()) sent += n;
    let failed = 0;
    for (const n of this.failed.counts.values()) failed += n;
    let hooks = 0;
    for (const n of this.webhook.counts.values()) hooks += n;
    return { notifySent: sent, notifyFailed: failed, webhookDeliveries: hooks, graphThrottled: this.throttled };
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
