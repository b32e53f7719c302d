/**
 * Event-loop overload signal for the stack: when the event loop lags behind
 * (the process cannot keep up, whatever the cause: fan-out, store, GC
 * pressure), new work is refused with 503 and Retry-After so that peers back
 * off and existing subscriptions keep being served (RFC 3261 §21.5.4; RFC 6665
 * §4.1.2.4 lets subscribers retry later). The ingress queue delay
 * (ingress.ts) is the faster signal for SIP floods; this one covers the rest.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

export interface LoadSignal {
  /** True while new out-of-dialog work should be refused. */
  overloaded(): boolean;
  close(): void;
}

export interface EventLoopGuardOptions {
  /** Refuse new work while the typical event-loop delay (median of a window) exceeds this; default 200 ms. */
  maxLagMs?: number;
  /** Window over which the delay is measured; default 100 ms (with 3 windows: a sustained lag seen within about 300 ms; SIP floods are seen sooner by the ingress queue delay). */
  windowMs?: number;
  /** Consecutive lagging windows before refusing (one long pause, e.g. a GC or a key generation, is not overload); default 3. */
  windows?: number;
}

/**
 * Measures event-loop delay with Node's histogram (sampled every 10 ms, no
 * timer of ours per request) and reports overload from the last full window.
 */
export class EventLoopGuard implements LoadSignal {
  private readonly histogram: IntervalHistogram;
  private readonly maxLagNs: number;
  private readonly timer: NodeJS.Timeout;
  private readonly windows: number;
  private laggingWindows = 0;

  constructor(options: EventLoopGuardOptions = {}) {
    this.maxLagNs = (options.maxLagMs ?? 200) * 1e6;
    this.windows = Math.max(1, options.windows ?? 3);
    this.histogram = monitorEventLoopDelay({ resolution: 10 });
    this.histogram.enable();
    this.timer = setInterval(() => this.sample(), options.windowMs ?? 100);
    this.timer.unref();
  }

  /** Close the current window (also called by the interval). */
  sample(): void {
    // The median, not the tail: under overload every turn of the loop is late, not just one.
    const lagging = this.histogram.count > 0 && this.histogram.percentile(50) > this.maxLagNs;
    this.laggingWindows = lagging ? this.laggingWindows + 1 : 0;
    this.histogram.reset();
  }

  overloaded(): boolean {
    return this.laggingWindows >= this.windows;
  }

  close(): void {
    clearInterval(this.timer);
    this.histogram.disable();
  }
}
