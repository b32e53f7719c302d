/**
 * The simulator's notion of time. Everything that expires, fades or retries
 * (presence sessions, subscriptions, notification retries, token lifetimes)
 * goes through a SimClock, so a test can swap in a ManualClock and advance it.
 *
 * Tasks live in one binary min-heap per clock; the real clock arms a single
 * unref'd timer for the earliest task, so thousands of sessions do not mean
 * thousands of live setTimeouts. Cancellation is lazy (a flag).
 */

export interface ScheduledTask {
  /** Stop the task if it has not run yet. */
  cancel(): void;
  readonly at: number;
}

export interface SimClock {
  /** Milliseconds since the epoch, in simulated time. */
  now(): number;
  /** Run `fn` once the clock reaches `at` (ms epoch). */
  schedule(at: number, fn: () => void): ScheduledTask;
  /** Run `fn` after `delayMs` of simulated time. */
  after(delayMs: number, fn: () => void): ScheduledTask;
  /** Drop every pending task (on simulator close). */
  dispose(): void;
}

class Task implements ScheduledTask {
  cancelled = false;
  constructor(
    readonly at: number,
    readonly seq: number,
    readonly fn: () => void,
  ) {}
  cancel(): void {
    this.cancelled = true;
  }
}

function before(a: Task, b: Task): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** Min-heap of tasks ordered by due time, then by insertion order. */
class TaskHeap {
  private items: Task[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): Task | undefined {
    return this.items[0];
  }

  push(task: Task): void {
    const items = this.items;
    items.push(task);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent] as Task;
      if (!before(task, p)) break;
      items[i] = p;
      i = parent;
    }
    items[i] = task;
  }

  pop(): Task | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    let i = 0;
    const n = items.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const child = r < n && before(items[r] as Task, items[l] as Task) ? r : l;
      const c = items[child] as Task;
      if (!before(c, last)) break;
      items[i] = c;
      i = child;
    }
    items[i] = last;
    return top;
  }

  clear(): void {
    this.items = [];
  }
}

abstract class HeapClock implements SimClock {
  protected readonly heap = new TaskHeap();
  private seq = 0;
  protected onError: (error: unknown) => void = () => {};

  abstract now(): number;
  protected abstract rearm(): void;

  /** Where a task that throws is reported (the clock keeps going). */
  setErrorHandler(handler: (error: unknown) => void): void {
    this.onError = handler;
  }

  schedule(at: number, fn: () => void): ScheduledTask {
    const task = new Task(at, this.seq++, fn);
    const head = this.heap.peek();
    this.heap.push(task);
    if (head === undefined || before(task, head)) this.rearm();
    return task;
  }

  after(delayMs: number, fn: () => void): ScheduledTask {
    return this.schedule(this.now() + Math.max(0, delayMs), fn);
  }

  /** Run every task due at or before `until`; returns how many ran. */
  protected runDue(until: number, onEach?: (task: Task) => void): number {
    let ran = 0;
    for (;;) {
      const head = this.heap.peek();
      if (head === undefined || head.at > until) break;
      this.heap.pop();
      if (head.cancelled) continue;
      head.cancelled = true;
      onEach?.(head);
      ran++;
      try {
        head.fn();
      } catch (error) {
        this.onError(error);
      }
    }
    return ran;
  }

  dispose(): void {
    this.heap.clear();
  }

  /** Number of queued tasks, cancelled ones included (diagnostics). */
  get pending(): number {
    return this.heap.size;
  }
}

/** Wall-clock time; one unref'd setTimeout drives the whole heap. */
export class RealClock extends HeapClock {
  private timer: NodeJS.Timeout | undefined;
  private armedFor = Infinity;

  now(): number {
    return Date.now();
  }

  protected rearm(): void {
    const head = this.heap.peek();
    if (head === undefined) {
      this.clearTimer();
      return;
    }
    if (this.timer !== undefined && head.at >= this.armedFor) return;
    this.clearTimer();
    // setTimeout caps at 2^31-1 ms; a far task just re-arms when the timer fires.
    const delay = Math.min(Math.max(0, head.at - Date.now()), 0x7fffffff);
    this.armedFor = head.at;
    this.timer = setTimeout(() => this.fire(), delay);
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Infinity;
  }

  private fire(): void {
    this.timer = undefined;
    this.armedFor = Infinity;
    this.runDue(Date.now());
    this.rearm();
  }

  override dispose(): void {
    this.clearTimer();
    super.dispose();
  }
}

/**
 * A clock that moves only when told. `advance` runs due tasks in time order,
 * setting `now()` to each task's due time as it runs, so work scheduled from a
 * task relative to now lands where it would in real time.
 */
export class ManualClock extends HeapClock {
  private current: number;

  constructor(start: number = Date.now()) {
    super();
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  protected rearm(): void {
    // nothing: time moves through advance()/set()
  }

  /** Move time forward by `ms`, running every task that falls due. */
  advance(ms: number): number {
    return this.set(this.current + Math.max(0, ms));
  }

  /** Move time forward to `at` (never backwards). Returns the number of tasks run. */
  set(at: number): number {
    const target = Math.max(at, this.current);
    const ran = this.runDue(target, (task) => {
      if (task.at > this.current) this.current = task.at;
    });
    this.current = target;
    return ran;
  }
}
