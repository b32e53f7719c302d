/**
 * Per-source token buckets for new out-of-dialog requests from untrusted
 * sources: each address may start `ratePerSec` new requests a second, with
 * bursts up to `burst`. Beyond that it is answered 503 + Retry-After (the
 * ingress does that), so one address flooding cannot crowd out the rest.
 * Kamailio's pike/ratelimit modules play this role there.
 */
import { systemClock, type Clock } from '../util/clock.js';

export interface SourceLimiterOptions {
  ratePerSec: number;
  burst: number;
  /** bucket table bound; full (idle) buckets are forgotten first; default 100,000 */
  maxSources?: number;
  clock?: Pick<Clock, 'now'>;
}

interface Bucket {
  tokens: number;
  /** ms of the last refill */
  at: number;
}

export class SourceLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly ratePerMs: number;
  private readonly burst: number;
  private readonly maxSources: number;
  private readonly clock: Pick<Clock, 'now'>;
  private limitedCount = 0;

  constructor(options: SourceLimiterOptions) {
    this.ratePerMs = options.ratePerSec / 1000;
    this.burst = Math.max(1, options.burst);
    this.maxSources = options.maxSources ?? 100_000;
    this.clock = options.clock ?? systemClock;
  }

  /** Take one token for `address`; false when its bucket is empty. */
  take(address: string): boolean {
    const now = this.clock.now();
    let b = this.buckets.get(address);
    if (b === undefined) {
      if (this.buckets.size >= this.maxSources) this.prune(now);
      b = { tokens: this.burst, at: now };
      this.buckets.set(address, b);
    } else if (now > b.at) {
      b.tokens = Math.min(this.burst, b.tokens + (now - b.at) * this.ratePerMs);
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return true;
    }
    this.limitedCount++;
    return false;
  }

  /** Seconds until `address` has a token again (at least 1). */
  secondsUntilToken(address: string): number {
    const b = this.buckets.get(address);
    if (b === undefined || b.tokens >= 1 || this.ratePerMs <= 0) return 1;
    return Math.max(1, Math.ceil((1 - b.tokens) / this.ratePerMs / 1000));
  }

  /** Requests refused since start. */
  get limited(): number {
    return this.limitedCount;
  }

  get sources(): number {
    return this.buckets.size;
  }

  /** Forget buckets that have refilled (their source is idle), then the oldest if still full. */
  private prune(now: number): void {
    for (const [k, b] of this.buckets) {
      if (b.tokens + (now - b.at) * this.ratePerMs >= this.burst) this.buckets.delete(k);
    }
    if (this.buckets.size < this.maxSources) return;
    const excess = this.buckets.size - Math.floor(this.maxSources * 0.9);
    let n = 0;
    for (const k of this.buckets.keys()) {
      if (n++ >= excess) break;
      this.buckets.delete(k);
    }
  }
}
