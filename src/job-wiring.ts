/**
 * Jobs that run once in the service, each under its lease (part of the
 * composition root; src/store/cluster.ts): a job starts when this node
 * acquires its lease and stops when it loses it. The starts and stops of one
 * group of jobs run one at a time in the order they came, so a stop never
 * overtakes the start it ends and the jobs of a single node (where every
 * lease is acquired within hold()) start in the order given, as before.
 */
import type { LeaseHandlers, Leases } from './store/cluster.js';
import type { Logger } from './util/logger.js';

export interface LeasedJob {
  /** The lease name (JOBS). */
  job: string;
  start(token: number): void | Promise<void>;
  stop(reason: Parameters<LeaseHandlers['lost']>[0]): void | Promise<void>;
}

export interface HeldJobs {
  /** Resolves when the jobs whose lease was acquired within holdJobs() have started. */
  readonly started: Promise<void>;
  /** Which of the jobs run here now. */
  running(): string[];
  /** Release every lease (last held first): each running job stops, and another node may take it. Idempotent. */
  release(): Promise<void>;
}

export function holdJobs(leases: Leases, jobs: readonly LeasedJob[], logger: Logger): HeldJobs {
  let queue: Promise<void> = Promise.resolve();
  const running = new Set<string>();
  // one change at a time, in order; a failure is logged and does not stop the queue
  const enqueue = (what: string, job: string, step: () => void | Promise<void>): Promise<void> => {
    const next = queue.then(step).catch((err: unknown) => logger.error({ err, job }, `job ${what} failed`));
    queue = next;
    return next;
  };
  const releases: Array<() => Promise<void>> = [];
  for (const j of jobs) {
    releases.push(
      leases.hold(j.job, {
        acquired: (token) =>
          enqueue('start', j.job, async () => {
            if (running.has(j.job)) return;
            running.add(j.job);
            logger.info({ job: j.job, token }, 'job lease acquired: starting');
            await j.start(token);
          }),
        lost: (reason) =>
          enqueue('stop', j.job, async () => {
            if (!running.delete(j.job)) return;
            logger.info({ job: j.job, reason }, 'job lease lost: stopping');
            await j.stop(reason);
          }),
      }),
    );
  }
  const started = queue;
  let releasing: Promise<void> | undefined;
  return {
    started,
    running: () => [...running],
    release() {
      releasing ??= (async () => {
        for (const r of releases.reverse()) await r();
        await queue;
      })();
      return releasing;
    },
  };
}
