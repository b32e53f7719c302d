/**
 * Graph presence rules (learn.microsoft.com/graph/api/presence-setpresence,
 * presence-setuserpreferredpresence, cloud-communications-manage-presence-state).
 */

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/** setPresence accepts only these availability/activity pairs. */
export const SESSION_PAIRS: ReadonlyArray<readonly [string, string]> = [
  ['Available', 'Available'],
  ['Busy', 'InACall'],
  ['Busy', 'InAConferenceCall'],
  ['Away', 'Away'],
  ['DoNotDisturb', 'Presenting'],
];

/** setUserPreferredPresence accepts only these pairs. */
export const PREFERRED_PAIRS: ReadonlyArray<readonly [string, string]> = [
  ['Available', 'Available'],
  ['Busy', 'Busy'],
  ['DoNotDisturb', 'DoNotDisturb'],
  ['BeRightBack', 'BeRightBack'],
  ['Away', 'Away'],
  ['Offline', 'OffWork'],
];

/** setPresence expirationDuration bounds and default. */
export const SESSION_MIN_DURATION = 5 * MINUTE;
export const SESSION_MAX_DURATION = 4 * HOUR;
export const SESSION_DEFAULT_DURATION = 5 * MINUTE;

/** An app session left Available fades to idle after 5 minutes, to Away after another 5. */
export const FADE_IDLE_AFTER = 5 * MINUTE;
export const FADE_AWAY_AFTER = 10 * MINUTE;

/** Canonical spelling of a pair from a list, matched case-insensitively; undefined when not allowed. */
export function matchPair(
  pairs: ReadonlyArray<readonly [string, string]>,
  availability: unknown,
  activity: unknown,
): readonly [string, string] | undefined {
  if (typeof availability !== 'string' || typeof activity !== 'string') return undefined;
  const a = availability.toLowerCase();
  const b = activity.toLowerCase();
  return pairs.find(([x, y]) => x.toLowerCase() === a && y.toLowerCase() === b);
}

/** Default expiry of a user-preferred presence: 1 day for Busy and DoNotDisturb, 7 days otherwise. */
export function preferredDefaultDuration(availability: string): number {
  return availability === 'Busy' || availability === 'DoNotDisturb' ? DAY : 7 * DAY;
}

/** Session precedence in aggregation: DoNotDisturb > Busy > Available > Away. */
export function availabilityRank(availability: string): number {
  switch (availability) {
    case 'DoNotDisturb':
      return 6;
    case 'Busy':
      return 5;
    case 'Available':
      return 4;
    case 'AvailableIdle':
      return 3;
    case 'BeRightBack':
      return 2;
    case 'Away':
      return 1;
    default:
      return 0;
  }
}

const DURATION_RE = /^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/i;

/** ISO 8601 duration (days, hours, minutes, seconds) in ms; undefined when malformed. */
export function parseIsoDuration(text: string): number | undefined {
  const m = DURATION_RE.exec(text.trim());
  if (!m || text.trim().toUpperCase() === 'P' || /T$/i.test(text.trim())) return undefined;
  const [, d, h, min, s] = m;
  const total =
    Number(d ?? 0) * DAY + Number(h ?? 0) * HOUR + Number(min ?? 0) * MINUTE + Number(s ?? 0) * 1000;
  return Number.isFinite(total) ? Math.round(total) : undefined;
}
