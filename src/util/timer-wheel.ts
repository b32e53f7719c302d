/**
 * A hashed timing wheel for coarse expiries (subscriptions, publications).
 *
 * Entries hash into `slots` buckets by their due tick (`ceil(at / resolution)`);
 * each bucket is an intrusive doubly linked list so schedule, cancel and
 * reschedule are O(1) and allocate nothing beyond the handle itself. One timer
 * (unref'd, so it never keeps the process alive) drives the whole wheel, and
 * only while entries exist: 100k refreshing subscriptions move list nodes
 * instead of churning 100k setTimeouts.
 *
 * A callback never fires before its `at`; it fires at most one resolution late
 * (later if the event loop is blocked). Tests inject a `clock` and call `advance()`.
 */
import { systemClock, type Clock } from './clock.js';

export interface TimerHandle {
  /** The time (ms, same clock as `clock.now()`) the callback is due. */
  readonly at: number;
  /** True while scheduled (not yet fired, not cancelled). */
  readonly active: boolean;
}

export interface TimerWheelOptions {
  /** Tick length in ms (default 1000). */
  resolutionMs?: number;
  /** Number of buckets (default 1024); entries further out wait for their round. */
  slots?: number;
  /** Clock in ms (default systemClock). */
  clock?: Pick<Clock, 'now'>;
  /** Drive the wheel with a real timer (default true). False: call advance() yourself. */
  autoStart?: boolean;
  /** Called when a callback throws (the wheel keeps going). */
  onError?: (error: unknown) => void;
}

class Entry implements TimerHandle {
  at: number;
  tick: number;
  callback: (arg: unknown) => void;
  /** Passed to the callback, so one shared callback can serve many entries (no closure per entry). */
  arg: unknown;
  prev: Entry | null = null;
  next: Entry | null = null;
  /** bucket index, -1 when not scheduled */
  slot = -1;

  constructor(at: number, tick: number, callback: (arg: unknown) => void, arg: unknown) {
    this.at = at;
    this.tick = tick;
    this.callback = callback;
    this.arg = arg;
  }

  get active(): boolean {
    return this.slot >= 0;
  }
}

export class TimerWheel {
  private readonly resolution: number;
  private readonly buckets: Array<Entry | null>;
  private readonly clock: Pick<Clock, 'now'>;
  private readonly autoStart: boolean;
  private readonly onError: (error: unknown) => void;
  /** last tick processed; entries with tick <= this have fired */
  private currentTick: number;
  private count = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private running = false;

  constructor(options: TimerWheelOptions = {}) {
    this.resolution = Math.max(1, Math.floor(options.resolutionMs ?? 1000));
    const slots = Math.max(1, Math.floor(options.slots ?? 1024));
    this.buckets = new Array<Entry | null>(slots).fill(null);
    this.clock = options.clock ?? systemClock;
    this.autoStart = options.autoStart ?? true;
    this.onError = options.onError ?? (() => undefined);
    this.currentTick = Math.floor(this.clock.now() / this.resolution);
  }

  /** Number of scheduled entries. */
  get size(): number {
    return this.count;
  }

  /**
   * Run `callback(arg)` once at (or just after) time `at` (ms on the wheel's
   * clock). Pass a shared callback and the object as `arg` where many entries
   * are alive at once: a closure per entry costs ~100 bytes each.
   */
  schedule(at: number, callback: () => void): TimerHandle;
  schedule<T>(at: number, callback: (arg: T) => void, arg: T): TimerHandle;
  schedule(at: number, callback: (arg: unknown) => void, arg?: unknown): TimerHandle {
    const entry = new Entry(at, 0, callback, arg);
    this.insert(entry, at);
    return entry;
  }

  /** Stop a scheduled callback; a no-op for fired or cancelled handles. */
  cancel(handle: TimerHandle): void {
    const entry = handle as Entry;
    if (entry.slot >= 0) this.unlink(entry);
  }

  /** Move a handle to a new due time; re-arms it if it had fired or was cancelled. */
  reschedule(handle: TimerHandle, at: number): void {
    const entry = handle as Entry;
    if (entry.slot >= 0) this.unlink(entry);
    this.insert(entry, at);
  }

  /** Fire everything due at the clock's current time. Returns how many fired. */
  advance(): number {
    if (this.running) return 0;
    this.running = true;
    let fired = 0;
    try {
      const target = Math.floor(this.clock.now() / this.resolution);
      if (target <= this.currentTick) return 0;
      const slots = this.buckets.length;
      // A gap longer than a full turn only needs each bucket visited once.
      const first = target - this.currentTick > slots ? target - slots + 1 : this.currentTick + 1;
      for (let tick = first; tick <= target && this.count > 0; tick++) {
        // Advance first: entries scheduled by callbacks land on a later tick of this same pass.
        this.currentTick = tick;
        fired += this.fireBucket(tick % slots, target);
      }
      this.currentTick = target;
    } finally {
      this.running = false;
    }
    if (this.count === 0) this.stopTimer();
    return fired;
  }

  /** Stop the driving timer; scheduled entries stay but no longer fire. */
  close(): void {
    this.closed = true;
    this.stopTimer();
  }

  private fireBucket(index: number, target: number): number {
    // Collect due entries first so callbacks may schedule/cancel freely.
    let due: Entry[] | undefined;
    let e = this.buckets[index] ?? null;
    while (e !== null) {
      const next = e.next;
      if (e.tick <= target) {
        this.unlink(e);
        (due ??= []).push(e);
      }
      e = next;
    }
    if (due === undefined) return 0;
    if (due.length > 1) due.sort((a, b) => a.at - b.at);
    for (const entry of due) {
      try {
        entry.callback(entry.arg);
      } catch (error) {
        this.onError(error);
      }
    }
    return due.length;
  }

  private insert(entry: Entry, at: number): void {
    entry.at = at;
    // Never before `at`: the tick is processed once now >= tick * resolution.
    let tick = Math.ceil(at / this.resolution);
    if (tick <= this.currentTick) tick = this.currentTick + 1;
    entry.tick = tick;
    const slot = tick % this.buckets.length;
    const head = this.buckets[slot] ?? null;
    entry.prev = null;
    entry.next = head;
    if (head !== null) head.prev = entry;
    this.buckets[slot] = entry;
    entry.slot = slot;
    this.count++;
    if (this.count === 1) this.startTimer();
  }

  private unlink(entry: Entry): void {
    if (entry.prev !== null) entry.prev.next = entry.next;
    else this.buckets[entry.slot] = entry.next;
    if (entry.next !== null) entry.next.prev = entry.prev;
    entry.prev = null;
    entry.next = null;
    entry.slot = -1;
    this.count--;
  }

  private startTimer(): void {
    if (!this.autoStart || this.closed || this.timer !== undefined) return;
    this.timer = setInterval(() => this.advance(), this.resolution);
    this.timer.unref();
  }

  private stopTimer(): void {
    if (this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}
