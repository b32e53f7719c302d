/**
 * The Teams-to-SIP latency stopwatch behind the `teams_to_sip_seconds`
 * histogram: a Teams reading that changed a person's view starts it (back-dated
 * by how long the reading took since the change became known); the first NOTIFY
 * to a watcher of that person answered 2xx stops it.
 */
import type { PresenceHub } from '../core/presence-hub.js';
import { systemClock, type Clock } from '../util/clock.js';

/** Longest Teams-to-SIP latency still matched to a NOTIFY (the histogram's last bucket). */
export const MAX_LATENCY_MS = 120_000;

export interface TeamsLatencyOptions {
  store: Pick<PresenceHub, 'onChange' | 'view'>;
  /** A measured latency, in seconds. */
  observe: (seconds: number) => void;
  clock?: Pick<Clock, 'now'>;
}

export class TeamsLatencyStopwatch {
  private readonly started = new Map<string, number>();
  private lastChange: { personId: string; revision: number } | undefined;
  private readonly detach: () => void;
  private readonly clock: Pick<Clock, 'now'>;

  constructor(private readonly options: TeamsLatencyOptions) {
    this.clock = options.clock ?? systemClock;
    this.detach = options.store.onChange((personId, view) => {
      this.lastChange = { personId, revision: view.revision };
    });
  }

  /**
   * The Graph side applied a Teams reading of `personId`, `elapsedMs` after the change became known;
   * `watched` tells whether the person has a watcher now (asked only for a reading that changed the view).
   */
  teamsApplied(personId: string, elapsedMs: number, watched: (personId: string) => boolean): void {
    const last = this.lastChange;
    const changed = last !== undefined && last.personId === personId && last.revision === this.options.store.view(personId).revision;
    this.lastChange = undefined;
    if (!changed || !watched(personId)) return;
    const t = this.clock.now();
    // drop clocks nobody stopped (a watcher that went away meanwhile)
    if (this.started.size > 1000) for (const [id, at] of this.started) if (t - at > MAX_LATENCY_MS) this.started.delete(id);
    this.started.set(personId, t - elapsedMs);
  }

  /** A NOTIFY about `resource` was answered 2xx. */
  notifySent(resource: string): void {
    if (this.started.size === 0) return;
    const started = this.started.get(resource);
    if (started === undefined) return;
    this.started.delete(resource);
    const ms = this.clock.now() - started;
    if (ms <= MAX_LATENCY_MS) this.options.observe(ms / 1000);
  }

  close(): void {
    this.detach();
  }
}
