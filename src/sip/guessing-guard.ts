/**
 * Online password guessing throttle for digest authentication. Failures are
 * counted per source address + user name in a window: after `delayAfter`
 * failures the next challenges are delayed, after `maxFailures` that pair is
 * locked out (every request refused, right password or not) for a lockout
 * time that doubles with each relapse up to `maxLockoutSec`. A looser cap per
 * user name across all sources (`perUserMaxFailures`) locks the user out from
 * every source that has not authenticated as that user recently, so spraying
 * from many addresses does not help either, while a source that has never
 * failed (and a source the user succeeded from) keeps working. A success
 * clears the source's record. Every table is bounded (`maxTracked` entries,
 * the least recently touched unlocked entry goes first).
 */
import { systemClock, type Clock } from '../util/clock.js';

export interface GuessingOptions {
  /** failures are counted over this many seconds */
  windowSec: number;
  /** failures of a source+user before its challenges are delayed */
  delayAfter: number;
  /** delay of the first delayed challenge; it doubles per further failure */
  delayMs: number;
  /** failures of a source+user in the window that start its lockout */
  maxFailures: number;
  /** first lockout; doubles with each relapse */
  lockoutSec: number;
  maxLockoutSec: number;
  /** failures for one user name from all sources in the window that lock the user out (sources it succeeded from excepted) */
  perUserMaxFailures: number;
  /** entries per table (source+user, user, recent successes) */
  maxTracked: number;
  /** how long a source stays known-good for a user after a success */
  trustSuccessSec: number;
}

export const DEFAULT_GUESSING: GuessingOptions = {
  windowSec: 600,
  delayAfter: 3,
  delayMs: 1000,
  maxFailures: 5,
  lockoutSec: 60,
  maxLockoutSec: 3600,
  perUserMaxFailures: 30,
  maxTracked: 10_000,
  trustSuccessSec: 86_400,
};

export type GuardVerdict =
  | { kind: 'pass' }
  | { kind: 'refuse'; scope: 'source' | 'user'; retryAfterSec: number };

export interface LockoutEvent {
  type: 'lockout_start' | 'lockout_end';
  scope: 'source' | 'user';
  /** source address: of the pair, or of the failure that started a user lockout; undefined when a user lockout ends */
  source: string | undefined;
  user: string;
  seconds: number;
  failures: number;
}

/** Per source+user or per user: the failures in the current window and the lockout state. */
interface Record {
  failures: number;
  windowStart: number;
  /** lockouts so far (the next one lasts lockoutSec * 2^level) */
  level: number;
  /** 0 when not locked */
  lockedUntil: number;
  lastFailure: number;
  lockSeconds: number;
}

const SEP = '\u0000';

/** A Map used as an LRU: touched entries move to the end; eviction prefers unlocked ones. */
class Table {
  readonly map = new Map<string, Record>();
  constructor(private readonly max: number) {}

  get(key: string): Record | undefined {
    return this.map.get(key);
  }

  touch(key: string, now: number): Record {
    let r = this.map.get(key);
    if (r !== undefined) {
      this.map.delete(key);
      this.map.set(key, r);
      return r;
    }
    if (this.map.size >= this.max) this.evict(now);
    r = { failures: 0, windowStart: now, level: 0, lockedUntil: 0, lastFailure: now, lockSeconds: 0 };
    this.map.set(key, r);
    return r;
  }

  private evict(now: number): void {
    let scanned = 0;
    for (const [k, r] of this.map) {
      if (r.lockedUntil <= now) {
        this.map.delete(k);
        return;
      }
      if (++scanned >= 64) break;
    }
    const oldest = this.map.keys().next();
    if (oldest.done !== true) this.map.delete(oldest.value);
  }
}

export class GuessingGuard {
  private readonly o: GuessingOptions;
  private readonly pairs: Table;
  private readonly users: Table;
  /** source+user → until when that source is known-good for the user */
  private readonly good = new Map<string, number>();
  /** keys of locked records, for lockout_end */
  private readonly lockedPairs = new Set<string>();
  private readonly lockedUsers = new Set<string>();
  private lastSweep = 0;

  constructor(
    options: Partial<GuessingOptions> = {},
    private readonly clock: Pick<Clock, 'now'> = systemClock,
    private readonly onLockout: (e: LockoutEvent) => void = () => undefined,
  ) {
    this.o = { ...DEFAULT_GUESSING, ...options };
    this.pairs = new Table(this.o.maxTracked);
    this.users = new Table(this.o.maxTracked);
  }

  /** Before the credentials of `user` from `source` are looked at: refused while locked out. */
  check(source: string, user: string): GuardVerdict {
    const now = this.clock.now();
    this.sweepSometimes(now);
    const pair = this.pairs.get(source + SEP + user);
    if (pair !== undefined && pair.lockedUntil > now) {
      return { kind: 'refuse', scope: 'source', retryAfterSec: Math.ceil((pair.lockedUntil - now) / 1000) };
    }
    const u = this.users.get(user);
    if (u !== undefined && u.lockedUntil > now && !this.isGood(source, user, now)) {
      return { kind: 'refuse', scope: 'user', retryAfterSec: Math.ceil((u.lockedUntil - now) / 1000) };
    }
    return { kind: 'pass' };
  }

  /**
   * The credentials failed. Returns the delay for the challenge that answers
   * it (0: none), or 'locked' when this failure started a lockout.
   */
  failed(source: string, user: string): number | 'locked' {
    const now = this.clock.now();
    const pairKey = source + SEP + user;
    const pair = this.count(this.pairs.touch(pairKey, now), now);
    const u = this.count(this.users.touch(user, now), now);
    let locked = false;
    if (u.failures >= this.o.perUserMaxFailures && u.lockedUntil <= now) {
      this.lock(u, now, this.o.perUserMaxFailures);
      this.lockedUsers.add(user);
      this.onLockout({ type: 'lockout_start', scope: 'user', source, user, seconds: u.lockSeconds, failures: u.failures });
      locked = !this.isGood(source, user, now);
    }
    if (pair.failures >= this.o.maxFailures) {
      this.lock(pair, now, this.o.maxFailures);
      this.lockedPairs.add(pairKey);
      this.onLockout({ type: 'lockout_start', scope: 'source', source, user, seconds: pair.lockSeconds, failures: pair.failures });
      return 'locked';
    }
    if (locked) return 'locked';
    if (pair.failures < this.o.delayAfter) return 0;
    return Math.min(this.o.delayMs * 2 ** (pair.failures - this.o.delayAfter), this.o.delayMs * 8);
  }

  /** The credentials verified: the source's record is cleared and it is known-good for the user. */
  succeeded(source: string, user: string): void {
    const key = source + SEP + user;
    this.pairs.map.delete(key);
    this.lockedPairs.delete(key);
    if (!this.good.has(key) && this.good.size >= this.o.maxTracked) {
      const oldest = this.good.keys().next();
      if (oldest.done !== true) this.good.delete(oldest.value);
    }
    this.good.delete(key);
    this.good.set(key, this.clock.now() + this.o.trustSuccessSec * 1000);
  }

  /** Report lockouts that have ended (also done on the way, at most once a second). */
  sweep(): void {
    const now = this.clock.now();
    this.lastSweep = now;
    for (const key of this.lockedPairs) {
      const r = this.pairs.get(key);
      if (r === undefined) {
        this.lockedPairs.delete(key);
        continue;
      }
      if (r.lockedUntil > now) continue;
      this.lockedPairs.delete(key);
      const [source, user] = key.split(SEP) as [string, string];
      this.onLockout({ type: 'lockout_end', scope: 'source', source, user, seconds: r.lockSeconds, failures: r.failures });
    }
    for (const user of this.lockedUsers) {
      const r = this.users.get(user);
      if (r === undefined) {
        this.lockedUsers.delete(user);
        continue;
      }
      if (r.lockedUntil > now) continue;
      this.lockedUsers.delete(user);
      this.onLockout({ type: 'lockout_end', scope: 'user', source: undefined, user, seconds: r.lockSeconds, failures: r.failures });
    }
  }

  /** Table sizes and current lockouts (metrics, diagnostics, tests). */
  stats(): { tracked: number; lockedSources: number; lockedUsers: number } {
    return {
      tracked: this.pairs.map.size + this.users.map.size + this.good.size,
      lockedSources: this.lockedPairs.size,
      lockedUsers: this.lockedUsers.size,
    };
  }

  private sweepSometimes(now: number): void {
    if (now - this.lastSweep >= 1000 && (this.lockedPairs.size > 0 || this.lockedUsers.size > 0)) this.sweep();
  }

  private count(r: Record, now: number): Record {
    // a record quiet for longer than the longest lockout starts over
    if (r.lockedUntil <= now && now - r.lastFailure > this.o.maxLockoutSec * 1000) {
      r.level = 0;
      r.failures = 0;
      r.windowStart = now;
    }
    if (now - r.windowStart > this.o.windowSec * 1000) {
      r.failures = 0;
      r.windowStart = now;
    }
    r.failures++;
    r.lastFailure = now;
    return r;
  }

  private lock(r: Record, now: number, threshold: number): void {
    r.lockSeconds = Math.min(this.o.maxLockoutSec, this.o.lockoutSec * 2 ** r.level);
    r.level++;
    r.lockedUntil = now + r.lockSeconds * 1000;
    // after the lockout, one more failure starts the next (longer) one
    r.failures = Math.max(0, threshold - 1);
    r.windowStart = now;
  }

  private isGood(source: string, user: string, now: number): boolean {
    const until = this.good.get(source + SEP + user);
    return until !== undefined && until > now;
  }
}
