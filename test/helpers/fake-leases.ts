/** Leases a test grants and takes away by hand (src/store/cluster.ts), to drive the jobs of one node. */
import type { LeaseHandlers, LeaseInfo, Leases } from '../../src/store/cluster.js';

export class FakeLeases implements Leases {
  private readonly handlers = new Map<string, LeaseHandlers>();
  private readonly tokens = new Map<string, number>();
  private next = 1;
  /** Jobs asked for, in order. */
  readonly asked: string[] = [];

  hold(job: string, handlers: LeaseHandlers): () => Promise<void> {
    this.asked.push(job);
    this.handlers.set(job, handlers);
    return async () => {
      if (this.handlers.get(job) !== handlers) return;
      this.handlers.delete(job);
      if (this.tokens.delete(job)) await handlers.lost('released');
    };
  }

  held(job: string): number | undefined {
    return this.tokens.get(job);
  }

  list(): LeaseInfo[] {
    return [...this.handlers.keys()].map((job) => ({ job, holder: this.tokens.has(job) ? 'me' : undefined, token: this.tokens.get(job), expiresAt: undefined }));
  }

  /** This node acquires `job` (resolves once its start has run). */
  async grant(job: string): Promise<void> {
    const h = this.handlers.get(job);
    if (h === undefined) throw new Error(`nobody holds out for ${job}`);
    const token = this.next++;
    this.tokens.set(job, token);
    await h.acquired(token);
  }

  /** This node loses `job` (resolves once its stop has run). */
  async take(job: string, reason: 'expired' | 'taken' | 'unreachable' = 'taken'): Promise<void> {
    const h = this.handlers.get(job);
    if (h === undefined || !this.tokens.delete(job)) throw new Error(`${job} is not held`);
    await h.lost(reason);
  }

  async grantAll(): Promise<void> {
    for (const job of this.handlers.keys()) await this.grant(job);
  }

  async takeAll(): Promise<void> {
    for (const job of [...this.tokens.keys()]) await this.take(job);
  }
}
