/**
 * The gateway's Graph request budget, shared by every caller: at most `limit`
 * requests in any `windowMs` (Graph documents 1,500 per 30 s per app per
 * tenant). A ring of the last `limit` start times answers "may one more go
 * now" in O(1); callers over the budget wait in order on one timer. A 429
 * from Graph pauses everyone until its Retry-After has passed, since the
 * limit is the app's, not the request's.
 */
import type { Clock, Timer } from '../util/clock.js';

export interface BudgetStatus {
  limit: number;
  windowMs: number;
  /** requests started in the last window */
  inWindow: number;
  waiting: number;
  /** total requests let through */
  granted: number;
  /** 429s seen */
  throttled: number;
  pausedUntil?: number;
}

// Graph: throttling-limits (presence: 1,500 requests per 30 s per app per tenant)
export class RequestBudget {
  private readonly starts: Float64Array;
  private head = 0;
  private count = 0;
  private waiters: Array<() => void> = [];
  private first = 0;
  private timer: Timer | undefined;
  private pausedUntil = 0;
  private granted = 0;
  private throttled = 0;
  private closed = false;

  constructor(
    private readonly clock: Clock,
    readonly limit: number,
    readonly windowMs = 30_000,
  ) {
    if (!Number.isInteger(limit) || limit < 1) throw new Error('budget limit must be a positive integer');
    this.starts = new Float64Array(limit);
  }

  /** Milliseconds until one more request may start (0: now). */
  private delay(now: number): number {
    let wait = this.pausedUntil > now ? this.pausedUntil - now : 0;
    if (this.count === this.limit) {
      // the oldest of the last `limit` starts must have left the window
      const oldest = this.starts[this.head] ?? 0;
      wait = Math.max(wait, oldest + this.windowMs - now);
    }
    return wait;
  }

  private record(now: number): void {
    this.starts[this.head] = now;
    this.head = (this.head + 1) % this.limit;
    if (this.count < this.limit) this.count++;
    this.granted++;
  }

  /** Resolves when one request may start; the request is counted then. */
  acquire(): Promise<void> {
    const now = this.clock.now();
    if (this.closed || (this.queued() === 0 && this.delay(now) <= 0)) {
      this.record(now);
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      this.waiters.push(resolve);
      this.arm();
    });
  }

  /** A 429 with Retry-After: nobody starts a request before it has passed. */
  throttledFor(ms: number): void {
    this.throttled++;
    if (ms <= 0) return;
    this.pausedUntil = Math.max(this.pausedUntil, this.clock.now() + ms);
  }

  private queued(): number {
    return this.waiters.length - this.first;
  }

  private arm(): void {
    if (this.timer !== undefined || this.queued() === 0) return;
    const wait = this.delay(this.clock.now());
    this.timer = this.clock.after(Math.max(wait, 1), () => {
      this.timer = undefined;
      this.release();
    });
  }

  private release(): void {
    for (;;) {
      const next = this.waiters[this.first];
      if (next === undefined) break;
      const now = this.clock.now();
      if (this.delay(now) > 0) break;
      this.first++;
      this.record(now);
      next();
    }
    if (this.first > 0 && this.first * 2 >= this.waiters.length) {
      this.waiters = this.waiters.slice(this.first);
      this.first = 0;
    }
    this.arm();
  }

  status(): BudgetStatus {
    const now = this.clock.now();
    let inWindow = 0;
    for (let i = 0; i < this.count; i++) {
      const at = this.starts[(this.head - 1 - i + this.limit) % this.limit] ?? 0;
      if (at <= now - this.windowMs) break;
      inWindow++;
    }
    const s: BudgetStatus = { limit: this.limit, windowMs: this.windowMs, inWindow, waiting: this.queued(), granted: this.granted, throttled: this.throttled };
    if (this.pausedUntil > now) s.pausedUntil = this.pausedUntil;
    return s;
  }

  /** Drained (the Graph side is stopping): requests go at once and are not retried. */
  get draining(): boolean {
    return this.closed;
  }

  /** Let every waiter go, and all later callers (shutdown): their requests then fail or finish on their own. */
  drain(): void {
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
    const all = this.waiters.slice(this.first);
    this.waiters = [];
    this.first = 0;
    for (const w of all) w();
  }
}
