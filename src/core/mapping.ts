import type { PersonState, TeamsState, TeamsTarget } from './person-state.js';

/** What a Teams activity means to SIP watchers (DESIGN.md default mappings). */
export interface SipMeaning {
  /** RPID activity names; empty = available (clears what Teams had set). */
  activities: string[];
  dnd?: boolean;
  /** Lights BLF with a confirmed dialog. */
  call?: boolean;
  note?: string;
}

export type TeamsToSipTable = Readonly<Record<string, SipMeaning>>;

const ON_THE_PHONE: SipMeaning = { activities: ['on-the-phone'], call: true, note: 'On the phone (Teams)' };
const AWAY: SipMeaning = { activities: ['away'] };
const AVAILABLE: SipMeaning = { activities: [] };
const DND: SipMeaning = { activities: ['busy'], dnd: true };

/** Keyed by lower-case Teams activity, then availability as a fallback (Graph values are case-insensitive). */
export const DEFAULT_TEAMS_TO_SIP: TeamsToSipTable = {
  available: AVAILABLE,
  availableidle: AVAILABLE,
  inactive: AVAILABLE,
  presenceunknown: AVAILABLE,
  offline: AVAILABLE,
  offwork: AVAILABLE,
  away: AWAY,
  berightback: AWAY,
  outofoffice: AWAY,
  busy: { activities: ['busy'] },
  busyidle: { activities: ['busy'] },
  donotdisturb: DND,
  urgentinterruptionsonly: DND,
  inameeting: { activities: ['meeting'], note: 'In a meeting (Teams)' },
  inacall: ON_THE_PHONE,
  inaconferencecall: ON_THE_PHONE,
  presenting: ON_THE_PHONE,
};

/** A profile may show presenting as DND instead of on the phone (as some consoles expect). */
export const PRESENTING_AS_DND: TeamsToSipTable = { ...DEFAULT_TEAMS_TO_SIP, presenting: DND };

export function sipMeaningOf(teams: TeamsState, table: TeamsToSipTable = DEFAULT_TEAMS_TO_SIP): SipMeaning {
  return table[teams.activity.toLowerCase()] ?? table[teams.availability.toLowerCase()] ?? AVAILABLE;
}

const CLEAR: TeamsTarget = { kind: 'clear' };

/**
 * SIP-side state to the gateway's Teams session (DESIGN.md; Graph accepts
 * only the pairs Busy/InACall, Busy/InAConferenceCall, Away/Away,
 * DoNotDisturb/Presenting, Available/Available). Teams' own state is not an
 * input: what comes from Teams never goes back to Teams.
 */
export function teamsTargetOf(state: PersonState): TeamsTarget {
  const { telephony, sip } = state;
  const line = telephony?.line;
  const inCall =
    line === 'ringing' || line === 'in-call' || line === 'on-hold' || sip?.activities.includes('on-the-phone') === true;
  if (inCall) return { kind: 'set', availability: 'Busy', activity: 'InACall' };
  if (telephony?.dnd === true || sip?.activities.includes('dnd') === true) {
    return { kind: 'set', availability: 'DoNotDisturb', activity: 'Presenting', preferredDnd: true };
  }
  if (sip !== undefined && (sip.activities.includes('away') || sip.activities.includes('vacation'))) {
    return { kind: 'set', availability: 'Away', activity: 'Away' };
  }
  return CLEAR;
}

export function sameTarget(a: TeamsTarget, b: TeamsTarget): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'clear' || b.kind === 'clear') return true;
  return a.availability === b.availability && a.activity === b.activity && a.preferredDnd === b.preferredDnd;
}

/** Whether a Teams reading is what the gateway itself set (case-insensitive, Graph spells freely). */
export function isEcho(teams: TeamsState, target: TeamsTarget): boolean {
  return (
    target.kind === 'set' &&
    teams.availability.toLowerCase() === target.availability.toLowerCase() &&
    teams.activity.toLowerCase() === target.activity.toLowerCase()
  );
}
