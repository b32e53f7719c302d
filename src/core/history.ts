/**
 * Per-person history of view changes: a fixed-size ring buffer of what SIP
 * watchers were shown, when, and which source caused it. Fed by
 * PresenceHub.onChange; read by the admin API ("why is Anna's lamp wrong").
 * Views are immutable once published by the store, so entries keep the view
 * itself (no copy).
 */
import type { PersonState, PresenceView } from './person-state.js';
import { systemClock, type Clock } from '../util/clock.js';

export interface HistoryEntry {
  at: number;
  /** What changed: `teams`, `telephony (<origin>)`, `sip (<origin>)`, or the view's own source when unclear. */
  source: string;
  view: PresenceView;
}

/** What the history needs of the store (PresenceHub fits). */
export interface HistoryFeed {
  onChange(listener: (personId: string, view: PresenceView) => void): () => void;
  state(personId: string): PersonState;
}

interface Ring {
  entries: (HistoryEntry | undefined)[];
  /** next slot to write */
  head: number;
  count: number;
  /** the source stamps seen at the last change (-1: absent) */
  teamsAt: number;
  telAt: number;
  sipAt: number;
}

const ABSENT = -1;

export class ChangeHistory {
  private readonly rings = new Map<string, Ring>();
  private readonly size: number;
  private readonly clock: Pick<Clock, 'now'>;
  private detach: (() => void) | undefined;

  constructor(
    private readonly feed: HistoryFeed,
    options: { size?: number; clock?: Pick<Clock, 'now'> } = {},
  ) {
    this.size = Math.max(1, Math.floor(options.size ?? 50));
    this.clock = options.clock ?? systemClock;
    this.detach = feed.onChange((personId, view) => this.record(personId, view));
  }

  private ring(personId: string): Ring {
    let r = this.rings.get(personId);
    if (r === undefined) {
      r = { entries: new Array<HistoryEntry | undefined>(this.size), head: 0, count: 0, teamsAt: ABSENT, telAt: ABSENT, sipAt: ABSENT };
      this.rings.set(personId, r);
    }
    return r;
  }

  /** Which source moved since the last change: the one whose stamp changed, appeared or went away. */
  private cause(r: Ring, state: PersonState, view: PresenceView): string {
    const teamsAt = state.teams?.at ?? ABSENT;
    const telAt = state.telephony?.at ?? ABSENT;
    const sipAt = state.sip?.at ?? ABSENT;
    let source: string;
    if (telAt !== r.telAt) source = state.telephony !== undefined ? `telephony (${state.telephony.origin})` : 'telephony (cleared)';
    else if (teamsAt !== r.teamsAt) source = state.teams !== undefined ? 'teams' : 'teams (cleared)';
    else if (sipAt !== r.sipAt) source = state.sip !== undefined ? `sip (${state.sip.origin})` : 'sip (cleared)';
    else source = view.source;
    r.teamsAt = teamsAt;
    r.telAt = telAt;
    r.sipAt = sipAt;
    return source;
  }

  record(personId: string, view: PresenceView): void {
    const r = this.ring(personId);
    let state: PersonState;
    try {
      state = this.feed.state(personId);
    } catch {
      state = {};
    }
    const entry: HistoryEntry = { at: view.changedAt ?? this.clock.now(), source: this.cause(r, state, view), view };
    r.entries[r.head] = entry;
    r.head = (r.head + 1) % this.size;
    if (r.count < this.size) r.count++;
  }

  /** Oldest first. */
  entries(personId: string): HistoryEntry[] {
    const r = this.rings.get(personId);
    if (r === undefined) return [];
    const out: HistoryEntry[] = [];
    for (let i = r.count; i > 0; i--) {
      const e = r.entries[(r.head - i + this.size) % this.size];
      if (e !== undefined) out.push(e);
    }
    return out;
  }

  /** The latest change, if any was seen. */
  last(personId: string): HistoryEntry | undefined {
    const r = this.rings.get(personId);
    if (r === undefined || r.count === 0) return undefined;
    return r.entries[(r.head - 1 + this.size) % this.size];
  }

  close(): void {
    this.detach?.();
    this.detach = undefined;
  }
}
