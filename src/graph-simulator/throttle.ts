import type { SimClock } from './clock.js';

export interface ThrottleConfig {
  /** requests allowed per window per app per tenant (default 1,500) */
  limit: number;
  /** window length in seconds (default 30) */
  windowSec: number;
  /** false: no throttling at all */
  enabled: boolean;
}

export const DEFAULT_THROTTLE: ThrottleConfig = { limit: 1500, windowSec: 30, enabled: true };

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Graph's per-app, per-tenant request limit as a token bucket: `limit` tokens,
 * refilled continuously at limit/window. Empty bucket: 429 with the seconds
 * until one token is back.
 */
export class AppThrottle {
  private readonly buckets = new Map<string, Bucket>();
  private config: ThrottleConfig;

  constructor(
    private readonly clock: SimClock,
    config: Partial<ThrottleConfig> = {},
  ) {
    this.config = { ...DEFAULT_THROTTLE, ...config };
  }

  configure(config: Partial<ThrottleConfig>): ThrottleConfig {
    this.config = { ...this.config, ...config };
    this.buckets.clear();
    return { ...this.config };
  }

  get settings(): ThrottleConfig {
    return { ...this.config };
  }

  /** Take one token for `key`; undefined when allowed, else the Retry-After seconds. */
  take(key: string): number | undefined {
    const { limit, windowSec, enabled } = this.config;
    if (!enabled || limit <= 0) return undefined;
    const now = this.clock.now();
    const rate = limit / (windowSec * 1000);
    let bucket = this.buckets.get(key);
    if (!bucket) {
      bucket = { tokens: limit, at: now };
      this.buckets.set(key, bucket);
    } else {
      bucket.tokens = Math.min(limit, bucket.tokens + (now - bucket.at) * rate);
      bucket.at = now;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return undefined;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / rate / 1000));
  }
}

export type FaultKind = '429' | '503' | '500' | 'hang';

/** A fault to inject into the next `count` matching requests. */
export interface FaultSpec {
  kind: FaultKind;
  /** how many requests it hits (default 1) */
  count?: number;
  /** only requests whose path contains this (case-insensitive) */
  path?: string;
  /** only this method */
  method?: string;
  /** 429/503: the Retry-After header in seconds; null sends none (default 2 for 429, none for 503) */
  retryAfterSec?: number | null;
}

interface ActiveFault extends Required<Pick<FaultSpec, 'kind'>> {
  remaining: number;
  path: string | undefined;
  method: string | undefined;
  retryAfterSec: number | null;
}

/** Fault injection for tests: matched in order, each used up after `count` hits. */
export class FaultInjector {
  private faults: ActiveFault[] = [];

  add(spec: FaultSpec): void {
    const count = spec.count ?? 1;
    if (!Number.isInteger(count) || count < 1) throw new Error('fault count must be a positive integer');
    if (!['429', '503', '500', 'hang'].includes(spec.kind)) throw new Error(`unknown fault kind ${String(spec.kind)}`);
    this.faults.push({
      kind: spec.kind,
      remaining: count,
      path: spec.path?.toLowerCase(),
      method: spec.method?.toUpperCase(),
      retryAfterSec: spec.retryAfterSec === undefined ? (spec.kind === '429' ? 2 : null) : spec.retryAfterSec,
    });
  }

  clear(): void {
    this.faults = [];
  }

  get pending(): number {
    return this.faults.reduce((n, f) => n + f.remaining, 0);
  }

  /** The fault for this request, if any (used up by the call). */
  take(method: string, path: string): { kind: FaultKind; retryAfterSec: number | null } | undefined {
    if (this.faults.length === 0) return undefined;
    const p = path.toLowerCase();
    for (let i = 0; i < this.faults.length; i++) {
      const f = this.faults[i] as ActiveFault;
      if (f.method !== undefined && f.method !== method.toUpperCase()) continue;
      if (f.path !== undefined && !p.includes(f.path)) continue;
      f.remaining--;
      if (f.remaining <= 0) this.faults.splice(i, 1);
      return { kind: f.kind, retryAfterSec: f.retryAfterSec };
    }
    return undefined;
  }
}
