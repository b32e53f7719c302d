/**
 * One stream of presence reads, spread evenly over its interval: each cycle
 * takes the current id list, cuts it into k batches of at most 650
 * (getPresencesByUserId's limit) of near equal size, and starts batch j at
 * j * interval / k into the cycle, so the requests never come as a burst. A
 * batch that runs late delays the next; batches never overlap. Between
 * cycles the interval is asked again every few seconds, so a shorter one (a
 * webhook turning unhealthy) takes effect without waiting out the longer.
 */
import type { Clock, Timer } from '../util/clock.js';
import { MAX_IDS_PER_CALL } from './presence-batch.js';

export interface SpreadReadOptions {
  clock: Clock;
  /** who to read this cycle */
  ids: () => readonly string[];
  /** the cycle length now (asked at the start of each cycle) */
  intervalMs: () => number;
  /** read one batch; must not throw */
  read: (ids: string[]) => Promise<void>;
}

/** Split `ids` into ceil(n / 650) batches whose sizes differ by at most one. */
export function evenBatches(ids: readonly string[], max = MAX_IDS_PER_CALL): string[][] {
  const k = Math.ceil(ids.length / max);
  const out: string[][] = [];
  let from = 0;
  for (let j = 0; j < k; j++) {
    const size = Math.floor(ids.length / k) + (j < ids.length % k ? 1 : 0);
    out.push(ids.slice(from, from + size));
    from += size;
  }
  return out;
}

/** How often the wait for the next cycle looks at the interval again. */
const RECHECK_MS = 5000;

export class SpreadRead {
  private timer: Timer | undefined;
  private batches: string[][] = [];
  private next = 0;
  private cycleStart = 0;
  private stepMs = 0;
  private running: Promise<void> | undefined;
  private stopped = true;
  cycles = 0;

  constructor(private readonly o: SpreadReadOptions) {}

  /** Start the first cycle after `delayMs`. */
  start(delayMs: number): void {
    this.stopped = false;
    this.arm(delayMs, () => this.newCycle());
  }

  private arm(delayMs: number, fn: () => void): void {
    this.timer?.cancel();
    this.timer = this.o.clock.after(Math.max(0, delayMs), () => {
      this.timer = undefined;
      if (!this.stopped) fn();
    });
  }

  private newCycle(): void {
    this.cycleStart = this.o.clock.now();
    const cycleMs = Math.max(1, this.o.intervalMs());
    this.batches = evenBatches(this.o.ids());
    this.next = 0;
    this.cycles++;
    this.stepMs = this.batches.length === 0 ? cycleMs : cycleMs / this.batches.length;
    if (this.batches.length === 0) this.awaitCycle();
    else this.fire();
  }

  /** Wait for the next cycle: cycleStart + the interval as it is by then. */
  private awaitCycle(): void {
    const due = this.cycleStart + Math.max(1, this.o.intervalMs());
    const wait = due - this.o.clock.now();
    if (wait <= 0) {
      this.newCycle();
      return;
    }
    this.arm(Math.min(wait, RECHECK_MS), () => this.awaitCycle());
  }

  private fire(): void {
    const batch = this.batches[this.next++];
    if (batch === undefined) return;
    this.running = this.o.read(batch).finally(() => {
      this.running = undefined;
      if (this.stopped) return;
      if (this.next < this.batches.length) this.arm(this.cycleStart + this.next * this.stepMs - this.o.clock.now(), () => this.fire());
      else this.awaitCycle();
    });
  }

  /** The batch read in flight, if any (tests, stop). */
  inFlight(): Promise<void> | undefined {
    return this.running;
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
  }
}
