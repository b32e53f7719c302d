/**
 * Whether change notifications can be trusted right now, judged only from
 * what the gateway sees. Graph sends presence no `missed` or
 * `subscriptionRemoved` lifecycle events (change-notifications-lifecycle-events:
 * only reauthorizationRequired applies to presence), so a lost notification
 * shows only when a later read finds a change nobody announced. Graph's
 * presence latency is at most one minute (change-notifications-overview), so
 * a change still unannounced a minute after a read found it counts as missed.
 *
 *   healthy  --miss or refusal--> degraded  --3+ misses, no more deliveries than misses--> down
 *   degraded/down --a window without misses or refusals--> healthy
 */
import type { Clock } from '../util/clock.js';

export type WebhookHealthState = 'healthy' | 'degraded' | 'down';

export interface WebhookHealthStatus {
  state: WebhookHealthState;
  /** changes found by a read that no notification announced (in the window) */
  missed: number;
  /** notification deliveries the gateway refused (in the window) */
  refused: number;
  /** notifications accepted (in the window) */
  delivered: number;
}

const GRACE_MS = 60_000;
const DOWN_AFTER_MISSES = 3;

export class WebhookHealth {
  private readonly candidates = new Map<string, number>();
  /** users notified in the last minute: a read racing their look-up finds an announced change */
  private readonly recent = new Map<string, number>();
  private misses: number[] = [];
  private refusals: number[] = [];
  private deliveries: number[] = [];

  constructor(
    private readonly clock: Clock,
    private readonly windowMs = 15 * 60_000,
  ) {}

  /** Notifications were accepted for these users. */
  notified(userIds: readonly string[]): void {
    const now = this.clock.now();
    this.deliveries.push(now);
    for (const u of userIds) {
      this.candidates.delete(u);
      this.recent.set(u, now);
    }
  }

  /** A delivery was answered with an error. */
  refused(): void {
    this.refusals.push(this.clock.now());
  }

  /** A read found a change of a webhook-covered user; a miss unless a notification follows within a minute. */
  changeFound(userId: string): void {
    const now = this.clock.now();
    const notifiedAt = this.recent.get(userId);
    if (notifiedAt !== undefined && now - notifiedAt < GRACE_MS) return;
    if (!this.candidates.has(userId)) this.candidates.set(userId, now);
  }

  private settle(now: number): void {
    for (const [u, at] of this.recent) if (now - at >= GRACE_MS) this.recent.delete(u);
    for (const [u, at] of this.candidates) {
      if (now - at < GRACE_MS) continue;
      this.candidates.delete(u);
      this.misses.push(at);
    }
    const from = now - this.windowMs;
    const keep = (xs: number[]): number[] => (xs.length > 0 && (xs[0] ?? now) < from ? xs.filter((x) => x >= from) : xs);
    this.misses = keep(this.misses);
    this.refusals = keep(this.refusals);
    this.deliveries = keep(this.deliveries.length > 1000 ? this.deliveries.slice(-1000) : this.deliveries);
  }

  status(): WebhookHealthStatus {
    this.settle(this.clock.now());
    const missed = this.misses.length;
    const refused = this.refusals.length;
    const delivered = this.deliveries.length;
    let state: WebhookHealthState = 'healthy';
    if (missed > 0 || refused > 0) state = 'degraded';
    if (missed >= DOWN_AFTER_MISSES && missed >= delivered) state = 'down';
    return { state, missed, refused, delivered };
  }
}
