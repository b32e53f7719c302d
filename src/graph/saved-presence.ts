/**
 * What a person had in Teams before the gateway took it over: their own
 * preferred presence (busy-on-busy) and status message. Kept in a
 * SavedPresenceStore (the gateway's store) before anything is changed, so
 * a restart in the middle of a call still restores it.
 *
 * What Graph lets us read, and so what can be restored
 * (Graph: resources/presence, presence-setuserpreferredpresence,
 * presence-setstatusmessage):
 * - The presence resource has only the aggregated availability/activity;
 *   the preferred presence a person chose cannot be read as such. It shows
 *   through as the aggregate ("user-configured state overrides others"),
 *   so it is inferred from the pair: DoNotDisturb/DoNotDisturb,
 *   Busy/Busy, BeRightBack/BeRightBack and Offline/OffWork appear only as a
 *   preferred presence; Available/Available and Away/Away also come from
 *   Teams by itself (activity, idle time), so they are taken as "no
 *   preference" and the person goes back to automatic presence rather than
 *   being pinned to a state for 7 days. Anything else (InACall, InAMeeting,
 *   Presenting, AvailableIdle, Offline/Offline, ...) is automatic.
 * - The remaining lifetime of a preferred presence is not readable either:
 *   it is restored with Graph's default (1 day for Busy and DoNotDisturb,
 *   7 days otherwise).
 * - The status message's content and contentType are readable; its
 *   expiryDateTime is documented as not returned when reading another user,
 *   so when absent the message is restored without an expiry. An expiry in a
 *   zone other than UTC is not converted and likewise dropped.
 */
export interface SavedPresence {
  personId: string;
  userId: string;
  /** their own preferred presence (null: none); absent while the gateway holds none of it */
  preferred?: { availability: string; activity: string } | null;
  /** their status message (null: none); absent while the gateway wrote none */
  statusMessage?: { content: string; contentType: string; expiresAt?: number } | null;
  /** ms epoch */
  savedAt: number;
}

export interface SavedPresenceStore {
  load(): Promise<SavedPresence[]>;
  save(record: SavedPresence): Promise<void>;
  remove(personId: string): Promise<void>;
}

export class MemorySavedPresenceStore implements SavedPresenceStore {
  private readonly records = new Map<string, SavedPresence>();
  async load(): Promise<SavedPresence[]> {
    return [...this.records.values()].map((r) => JSON.parse(JSON.stringify(r)) as SavedPresence);
  }
  async save(record: SavedPresence): Promise<void> {
    this.records.set(record.personId, JSON.parse(JSON.stringify(record)) as SavedPresence);
  }
  async remove(personId: string): Promise<void> {
    this.records.delete(personId);
  }
}

/** Pairs that only a preferred presence produces (the preferred pairs Teams itself never shows on its own). */
const ONLY_PREFERRED = new Set(['donotdisturb/donotdisturb', 'busy/busy', 'berightback/berightback', 'offline/offwork']);

/** The person's own preferred presence as far as the aggregated presence shows it; null: none (or not told apart). */
export function preferredFromPresence(availability: string | undefined, activity: string | undefined): { availability: string; activity: string } | null {
  if (availability === undefined || activity === undefined) return null;
  return ONLY_PREFERRED.has(`${availability}/${activity}`.toLowerCase()) ? { availability, activity } : null;
}

/** A status message's expiry as Graph returns it (dateTimeTimeZone), when it is in UTC. */
export function expiryFromGraph(v: unknown): number | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const r = v as Record<string, unknown>;
  const dt = r['dateTime'];
  const tz = r['timeZone'];
  if (typeof dt !== 'string' || (typeof tz === 'string' && tz.toUpperCase() !== 'UTC')) return undefined;
  const ms = Date.parse(/(?:[zZ]|[+-]\d\d:?\d\d)$/.test(dt) ? dt : `${dt}Z`);
  return Number.isNaN(ms) ? undefined : ms;
}

/** A time as Graph's dateTimeTimeZone wants it: the dateTime without a zone suffix, the zone in timeZone. */
export function graphDateTime(ms: number): { dateTime: string; timeZone: 'UTC' } {
  return { dateTime: new Date(ms).toISOString().replace(/Z$/, ''), timeZone: 'UTC' };
}
