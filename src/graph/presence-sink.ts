/**
 * Where Teams presence readings enter the core: the newest per user only.
 * Polls, notification look-ups and resyncs race each other; a reading whose
 * sequence number is not newer than the last one taken is dropped, and so is
 * a reading equal to the last in content. Since the stamps' format is not
 * documented, a person never stops updating on them: N stale readings in a
 * row whose content differs from ours are taken (and logged) as a reset.
 */
import type { Directory } from '../core/directory.js';
import type { TeamsState } from '../core/person-state.js';
import type { PresenceHub } from '../core/presence-hub.js';
import type { Logger } from '../util/logger.js';
import { compareSequence } from './presence-resource.js';

export interface SinkStats {
  applied: number;
  /** older or repeated sequence numbers */
  stale: number;
  /** users no person is mapped to */
  unmapped: number;
  /** readings accepted although their sequence number was older (the stamps had reset); absent while none */
  resets?: number;
}

/** Stale readings in a row, differing from the last one taken, after which the stamps are taken to have reset. */
export const STALE_READINGS_BEFORE_RESET = 3;

function sameReading(a: TeamsState, b: TeamsState): boolean {
  return a.availability === b.availability && a.activity === b.activity && a.statusMessage === b.statusMessage && a.outOfOffice === b.outOfOffice && a.outOfOfficeMessage === b.outOfOfficeMessage;
}

export class PresenceSink {
  private readonly last = new Map<string, TeamsState>();
  private readonly stats: SinkStats = { applied: 0, stale: 0, unmapped: 0 };
  private readonly staleRuns = new Map<string, number>();

  constructor(
    private readonly directory: Directory,
    private readonly store: PresenceHub,
    private readonly logger: Logger,
    private readonly staleLimit = STALE_READINGS_BEFORE_RESET,
  ) {}

  /** Offer a reading; true when it reached the store. */
  offer(userId: string, state: TeamsState): boolean {
    const key = userId.toLowerCase();
    const prev = this.last.get(key);
    if (prev !== undefined) {
      if (prev.sequenceNumber !== undefined && state.sequenceNumber !== undefined) {
        if (compareSequence(state.sequenceNumber, prev.sequenceNumber) <= 0) {
          if (sameReading(prev, state)) {
            this.staleRuns.delete(key);
            this.stats.stale++;
            return false;
          }
          // the stamps are undocumented and can reset: N stale readings in a row that differ from ours win
          const run = (this.staleRuns.get(key) ?? 0) + 1;
          if (run < this.staleLimit) {
            this.staleRuns.set(key, run);
            this.stats.stale++;
            return false;
          }
          this.staleRuns.delete(key);
          this.stats.resets = (this.stats.resets ?? 0) + 1;
          this.logger.warn({ userId: key, sequenceNumber: state.sequenceNumber, previous: prev.sequenceNumber, readings: run }, 'graph: presence sequence number went back; accepting the reading (stamps can reset)');
        } else this.staleRuns.delete(key);
      } else if (sameReading(prev, state)) {
        this.stats.stale++;
        return false;
      }
    }
    const person = this.directory.findByTeamsUserId(key);
    if (person === undefined) {
      this.stats.unmapped++;
      return false;
    }
    this.last.set(key, state);
    try {
      this.store.setTeams(person.id, state);
    } catch (error) {
      this.logger.error({ err: error, personId: person.id, userId: key }, 'graph: store rejected a Teams reading');
      return false;
    }
    this.stats.applied++;
    return true;
  }

  /** Whether a reading of this user was taken before. */
  has(userId: string): boolean {
    return this.last.has(userId.toLowerCase());
  }

  status(): SinkStats {
    return { ...this.stats };
  }
}
