/**
 * Where Teams presence readings enter the core: the newest per user only.
 * Polls, notification look-ups and resyncs race each other; a reading whose
 * sequence number is not newer than the last one taken is dropped, and so is
 * a reading equal to the last in content.
 */
import type { Directory } from '../core/directory.js';
import type { TeamsState } from '../core/person-state.js';
import type { PresenceStore } from '../core/presence-store.js';
import type { Logger } from '../util/logger.js';
import { compareSequence } from './presence-resource.js';

export interface SinkStats {
  applied: number;
  /** older or repeated sequence numbers */
  stale: number;
  /** users no person is mapped to */
  unmapped: number;
}

function sameReading(a: TeamsState, b: TeamsState): boolean {
  return a.availability === b.availability && a.activity === b.activity && a.statusMessage === b.statusMessage && a.outOfOffice === b.outOfOffice && a.outOfOfficeMessage === b.outOfOfficeMessage;
}

export class PresenceSink {
  private readonly last = new Map<string, TeamsState>();
  private readonly stats: SinkStats = { applied: 0, stale: 0, unmapped: 0 };

  constructor(
    private readonly directory: Directory,
    private readonly store: PresenceStore,
    private readonly logger: Logger,
  ) {}

  /** Offer a reading; true when it reached the store. */
  offer(userId: string, state: TeamsState): boolean {
    const key = userId.toLowerCase();
    const prev = this.last.get(key);
    if (prev !== undefined) {
      if (prev.sequenceNumber !== undefined && state.sequenceNumber !== undefined) {
        if (compareSequence(state.sequenceNumber, prev.sequenceNumber) <= 0) {
          this.stats.stale++;
          return false;
        }
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

  status(): SinkStats {
    return { ...this.stats };
  }
}
