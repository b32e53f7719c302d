import { performance } from 'node:perf_hooks';

/** RFC 3261 §17.1.1.1 / Table 4 timer base values, in milliseconds. */
export interface TimerValues {
  t1: number;
  t2: number;
  t4: number;
}

export const RFC3261_TIMERS: Readonly<TimerValues> = { t1: 500, t2: 4000, t4: 5000 };

export function resolveTimers(partial?: Partial<TimerValues>): TimerValues {
  const t1 = positive(partial?.t1) ?? RFC3261_TIMERS.t1;
  const t2 = positive(partial?.t2) ?? Math.max(RFC3261_TIMERS.t2, t1);
  const t4 = positive(partial?.t4) ?? RFC3261_TIMERS.t4;
  return { t1, t2: Math.max(t1, t2), t4 };
}

function positive(v: number | undefined): number | undefined {
  return v !== undefined && Number.isFinite(v) && v > 0 ? v : undefined;
}

/** Something a timer fires into; `kind` tells which of its timers it was. */
export interface TimerTarget {
  onTimer(kind: number): void;
}

/** A scheduled timer; pass it to TimerQueue.cancel. */
export interface TimerHandle {
  readonly due: number;
}

interface Entry extends TimerHandle {
  due: number;
  target: TimerTarget | null; // null once cancelled or fired
  kind: number;
  next: Entry | null;
}

interface Bucket {
  readonly delay: number;
  head: Entry | null;
  tail: Entry | null;
  timer: NodeJS.Timeout | null;
  /** due time the armed timer was set for */
  armedFor: number;
}

const EARLY_TOLERANCE_MS = 1;

/**
 * Cancelled entries stay linked in their bucket until they reach its head (a
 * cancel is O(1)). Most timers are cancelled soon after they start (Timer F of
 * a NOTIFY answered in milliseconds, a server transaction's TU guard once it
 * answers), and the long buckets hold them for 32 s: at 3,000 transactions a
 * second ~200,000 dead entries. Once the cancelled outnumber the live ones
 * (and at least this many), one pass drops them from every bucket: amortized
 * O(1) per cancel.
 */
const SWEEP_MIN_CANCELLED = 4096;

/**
 * Timers grouped by duration. Every timer of one duration expires in the
 * order it was started, so each duration is a FIFO list driven by a single
 * setTimeout for its head. Cancelling only marks the entry; it is dropped
 * when its time comes. Thousands of transactions thus cost small list nodes,
 * not thousands of Timeout objects.
 */
export class TimerQueue {
  private readonly buckets = new Map<number, Bucket>();
  private live = 0;
  /** cancelled entries still linked in a bucket */
  private cancelled = 0;
  private closed = false;

  /** Number of timers scheduled and neither fired nor cancelled. */
  get size(): number {
    return this.live;
  }

  /** Entries the queue holds: the live ones and cancelled ones not yet dropped (tests, diagnostics). */
  get held(): number {
    return this.live + this.cancelled;
  }

  schedule(delayMs: number, target: TimerTarget, kind: number): TimerHandle {
    const delay = Math.max(0, Math.round(delayMs));
    const entry: Entry = { due: performance.now() + delay, target, kind, next: null };
    if (this.closed) {
      entry.target = null;
      return entry;
    }
    let bucket = this.buckets.get(delay);
    if (bucket === undefined) {
      bucket = { delay, head: null, tail: null, timer: null, armedFor: 0 };
      this.buckets.set(delay, bucket);
    }
    if (bucket.tail === null) bucket.head = entry;
    else bucket.tail.next = entry;
    bucket.tail = entry;
    this.live++;
    if (bucket.timer === null) this.arm(bucket, entry.due);
    return entry;
  }

  cancel(handle: TimerHandle | null | undefined): void {
    if (handle === null || handle === undefined) return;
    const entry = handle as Entry;
    if (entry.target !== null) {
      entry.target = null;
      this.live--;
      if (!this.closed && ++this.cancelled >= SWEEP_MIN_CANCELLED && this.cancelled > this.live) this.sweep();
    }
  }

  /** Unlink every cancelled entry; a bucket left empty is dropped with its timer. */
  private sweep(): void {
    for (const bucket of [...this.buckets.values()]) {
      let head: Entry | null = null;
      let tail: Entry | null = null;
      for (let e = bucket.head; e !== null; ) {
        const next = e.next;
        e.next = null;
        if (e.target !== null) {
          if (tail === null) head = e;
          else tail.next = e;
          tail = e;
        }
        e = next;
      }
      bucket.head = head;
      bucket.tail = tail;
      if (head === null) {
        if (bucket.timer !== null) clearTimeout(bucket.timer);
        bucket.timer = null;
        this.buckets.delete(bucket.delay);
      }
      // a bucket armed for a dropped head fires early and re-arms for the new one (fire)
    }
    this.cancelled = 0;
  }

  /** Cancel everything (stack shutdown). The queue keeps working afterwards unless `final`. */
  clear(final = false): void {
    for (const bucket of this.buckets.values()) {
      if (bucket.timer !== null) clearTimeout(bucket.timer);
      for (let e = bucket.head; e !== null; e = e.next) e.target = null;
    }
    this.buckets.clear();
    this.live = 0;
    this.cancelled = 0;
    if (final) this.closed = true;
  }

  private arm(bucket: Bucket, due: number): void {
    bucket.armedFor = due;
    bucket.timer = setTimeout(() => this.fire(bucket), Math.max(0, due - performance.now()));
  }

  private fire(bucket: Bucket): void {
    bucket.timer = null;
    const now = performance.now() + EARLY_TOLERANCE_MS;
    let e = bucket.head;
    while (e !== null && e.due <= now) {
      const target = e.target;
      const next = e.next;
      e.next = null;
      bucket.head = next;
      if (next === null) bucket.tail = null;
      if (target === null) this.cancelled--;
      else {
        e.target = null;
        this.live--;
        try {
          target.onTimer(e.kind);
        } catch {
          // a timer callback must not stop the other timers; owners log their own failures
        }
      }
      e = bucket.head;
    }
    // skip cancelled entries at the head so the next timer is armed for a live one
    while (bucket.head !== null && bucket.head.target === null) {
      this.cancelled--;
      bucket.head = bucket.head.next;
      if (bucket.head === null) bucket.tail = null;
    }
    if (bucket.head === null) {
      if (this.buckets.get(bucket.delay) === bucket) this.buckets.delete(bucket.delay);
      return;
    }
    // a callback may have armed the bucket for its new (later) entry; the head comes first
    if (bucket.timer !== null && bucket.armedFor > bucket.head.due) {
      clearTimeout(bucket.timer);
      bucket.timer = null;
    }
    if (bucket.timer === null) this.arm(bucket, bucket.head.due);
  }
}
