/**
 * What the webhook knows of subscriptions it may not hold. In a service of
 * several nodes Graph posts to whichever node its notification URL reaches,
 * while only the holder of the subscriptions job (src/store/cluster.ts)
 * created them: every other node judges a notification's clientState by the
 * subscription records in the shared store, read again when a notification
 * names an id it does not know. The re-reads are throttled (StoreRefresh), so
 * a flood of forged or unknown ids costs one read per interval.
 */
import type { Clock } from '../util/clock.js';
import type { SubscriptionRecord } from './subscription-state.js';

/** One shared-store read at a time, and at most one per `intervalMs`; callers in between share it or are told no. */
export class StoreRefresh {
  private last = -Infinity;
  private running: Promise<void> | undefined;

  constructor(
    private readonly read: () => Promise<void>,
    private readonly clock: Pick<Clock, 'now'>,
    private readonly intervalMs: number,
  ) {}

  /** Whether run() would read (or join a read under way). */
  due(): boolean {
    return this.running !== undefined || this.clock.now() - this.last >= this.intervalMs;
  }

  /** Read now when due (else resolve at once); never rejects. */
  run(): Promise<void> {
    if (this.running !== undefined) return this.running;
    if (!this.due()) return Promise.resolve();
    this.last = this.clock.now();
    this.running = this.read()
      .catch(() => undefined)
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }
}

/** The clientState of each stored subscription (lower-case id), read through a throttled store refresh. */
export class StoredSubscriptions {
  private byId = new Map<string, string>();
  private readonly refresh: StoreRefresh;

  constructor(o: {
    /** the records as the store holds them now */
    load: () => Promise<SubscriptionRecord[]>;
    /** read the records again from the shared store (another node may have written them) */
    reload: () => Promise<void>;
    clock: Pick<Clock, 'now'>;
    /** at most one re-read per this (default 30 s) */
    intervalMs?: number;
  }) {
    this.refresh = new StoreRefresh(
      async () => {
        await o.reload();
        this.remember(await o.load());
      },
      o.clock,
      o.intervalMs ?? 30_000,
    );
  }

  remember(records: readonly SubscriptionRecord[]): void {
    this.byId = new Map(records.map((r) => [r.id.toLowerCase(), r.clientState]));
  }

  clientStateOf(subscriptionId: string): string | undefined {
    return this.byId.get(subscriptionId.toLowerCase());
  }

  /** Whether asking the store again about an unknown id is allowed now. */
  mayReload(): boolean {
    return this.refresh.due();
  }

  /** Read the store again (throttled); resolves when the answer is in. */
  reload(): Promise<void> {
    return this.refresh.run();
  }
}
