/**
 * Start and stop of the parts of one process, as fastify's onClose hooks do
 * (https://fastify.dev/docs/latest/Reference/Hooks/#onclose): each part, once
 * started, registers how it is closed; close() runs the hooks in the reverse
 * order of registration, one at a time, each bounded in time. A hook that
 * throws or overruns is logged and the others still run: a stop never stops
 * half way.
 */

export interface LifecycleLog {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface LifecycleOptions {
  log: LifecycleLog;
  /** Longest wait for one close hook before the next one runs (default 10,000 ms). */
  hookTimeoutMs?: number;
}

export type CloseHook = () => void | Promise<void>;

/** What close() did with each hook, in the order they ran. */
export interface CloseOutcome {
  name: string;
  result: 'closed' | 'failed' | 'timed-out';
}

export class Lifecycle {
  private readonly hooks: { name: string; fn: CloseHook; timeoutMs: number }[] = [];
  private readonly log: LifecycleLog;
  private readonly hookTimeoutMs: number;
  private closing: Promise<readonly CloseOutcome[]> | undefined;

  constructor(options: LifecycleOptions) {
    this.log = options.log;
    this.hookTimeoutMs = options.hookTimeoutMs ?? 10_000;
  }

  /** True once close() has begun: no hook may be added any more. */
  get closed(): boolean {
    return this.closing !== undefined;
  }

  /** Register how a started part is closed; hooks run last registered first. */
  onClose(name: string, fn: CloseHook, options: { timeoutMs?: number } = {}): void {
    if (this.closing !== undefined) throw new Error(`lifecycle: onClose("${name}") after close() began`);
    this.hooks.push({ name, fn, timeoutMs: options.timeoutMs ?? this.hookTimeoutMs });
  }

  /**
   * Start a part and register its close in one step, so a part is closed only
   * if its start succeeded.
   */
  async start<T>(name: string, start: () => T | Promise<T>, close: (started: T) => void | Promise<void>): Promise<T> {
    const started = await start();
    this.onClose(name, () => close(started));
    return started;
  }

  /** Run every close hook in reverse order. Idempotent: a second call gets the first one's outcome. */
  close(): Promise<readonly CloseOutcome[]> {
    this.closing ??= this.runHooks();
    return this.closing;
  }

  private async runHooks(): Promise<readonly CloseOutcome[]> {
    const outcomes: CloseOutcome[] = [];
    for (const hook of this.hooks.splice(0).reverse()) {
      outcomes.push({ name: hook.name, result: await this.runOne(hook.name, hook.fn, hook.timeoutMs) });
    }
    return outcomes;
  }

  private async runOne(name: string, fn: CloseHook, timeoutMs: number): Promise<CloseOutcome['result']> {
    let timer: NodeJS.Timeout | undefined;
    const overrun = new Promise<'timed-out'>((resolve) => {
      // not unref'd: a stop waits out the bound (the timer is cleared as soon as the hook settles)
      timer = setTimeout(() => resolve('timed-out'), timeoutMs);
    });
    try {
      const result = await Promise.race([Promise.resolve().then(fn).then(() => 'closed' as const), overrun]);
      if (result === 'timed-out') this.log.warn({ part: name, timeoutMs }, 'close hook did not finish in time; going on with the next');
      return result;
    } catch (err) {
      this.log.error({ err, part: name }, 'close hook failed; going on with the next');
      return 'failed';
    } finally {
      clearTimeout(timer);
    }
  }
}
