/**
 * The gateway's one clock. Whatever reads the time or waits (expiries, poll
 * interval, subscription renewal, session re-set, retry after a 429) takes a
 * Clock, or its `now` alone (`Pick<Clock, 'now'>`), so a test can drive it
 * by hand. The shape matches the Graph simulator's clocks, so a test may pass
 * the simulator's ManualClock straight in (the simulator keeps its own
 * virtual clock: it simulates Microsoft's side's time, not ours).
 */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Run `fn` once, `delayMs` from now. */
  after(delayMs: number, fn: () => void): Timer;
}

/** Wall-clock time; timers are unref'd so they never hold the process open. */
export const systemClock: Clock = {
  now: () => Date.now(),
  after(delayMs, fn) {
    const t = setTimeout(fn, Math.min(Math.max(0, delayMs), 0x7fffffff));
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};

/** Resolve after `ms` on `clock`. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => {
    clock.after(ms, resolve);
  });
}
