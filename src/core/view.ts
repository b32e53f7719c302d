import { DEFAULT_TEAMS_TO_SIP, sipMeaningOf, type TeamsToSipTable } from './mapping.js';
import type { Call, PersonState, PresenceView, ViewSource } from './person-state.js';
import { isPublishSource, PUBLISH_SOURCE } from './publish-source.js';

/** The content of a view, without the bookkeeping the store adds. */
export type ViewContent = Omit<PresenceView, 'personId' | 'revision' | 'changedAt'>;

export interface ViewOptions {
  teamsToSip?: TeamsToSipTable;
  /** Which source speaks first when Teams and the PBX both say something (default: the PBX line). */
  prefer?: 'telephony' | 'teams';
  /** The Teams reading is the gateway's own session read back: ignore it (echo suppression). */
  teamsIsEcho?: boolean;
  /** The Teams reading's DND was switched off on the desk phone since (PresenceHub.setFeatureKeyDnd): shown without DND. */
  teamsDndOverruled?: boolean;
  /**
   * Source priority of the person's group (source-priority.ts): names of
   * sources, first wins: 'teams', 'publish', 'trunk:<name>', or 'telephony'
   * for any trunk. Wins over `prefer`; sources it does not name keep their
   * default order after the named ones.
   */
  order?: readonly string[];
  /** The person's language (Person.language): the xml:lang of their own texts. */
  lang?: string;
  /** Now (ms): a calendar block counts only while it lasts. */
  now?: number;
  /** IANA zone meeting end times are written in ("In a meeting until 14:00"); default UTC. */
  timeZone?: string;
}

const timeFormats = new Map<string, Intl.DateTimeFormat>();

/** "14:00" in `timeZone` (24-hour clock). */
export function clockTime(ms: number, timeZone = 'UTC'): string {
  let f = timeFormats.get(timeZone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone });
    timeFormats.set(timeZone, f);
  }
  return f.format(ms);
}

/**
 * The end of the meeting the person is in, when Teams says so and the
 * calendar knows when it ends: Teams InAMeeting, or Teams Busy/Busy while the
 * calendar has a busy block now (a calendar meeting Teams shows as busy).
 */
export function meetingUntil(state: PersonState, options: ViewOptions): number | undefined {
  const t = state.teams;
  const c = state.calendar;
  if (t === undefined || c === undefined || options.teamsIsEcho === true) return undefined;
  const now = options.now ?? Date.now();
  if (c.until <= now || c.from > now) return undefined;
  const activity = t.activity.toLowerCase();
  if (activity === 'inameeting') return c.until;
  if (activity === 'busy' && t.availability.toLowerCase() === 'busy' && (c.status === 'busy' || c.status === 'tentative')) return c.until;
  return undefined;
}

export function meetingNote(until: number, timeZone?: string): string {
  return `In a meeting until ${clockTime(until, timeZone)}`;
}

const LINE_NOTE = { ringing: 'Ringing', 'in-call': 'On the phone', 'on-hold': 'On hold' } as const;
/** The note while no live telephony source speaks for the person (DESIGN.md: unknown is not idle). */
export const PHONE_UNKNOWN_NOTE = 'Phone status unknown';

interface Contribution {
  source: Exclude<ViewSource, 'none'>;
  activities: readonly string[];
  dnd: boolean;
  call: boolean;
  ringing: boolean;
  note?: string;
}

function telephonyPart(state: PersonState): Contribution | undefined {
  const t = state.telephony;
  if (t === undefined) return undefined;
  const line = t.line;
  if (line === 'unknown') {
    // A line nobody reports on may still carry a DND the phone set (its feature key): that is known.
    if (t.dnd) return { source: 'telephony', activities: [], dnd: true, call: false, ringing: false };
    return { source: 'telephony', activities: [], dnd: false, call: false, ringing: false, note: PHONE_UNKNOWN_NOTE };
  }
  const busy = line === 'ringing' || line === 'in-call' || line === 'on-hold';
  const c: Contribution = { source: 'telephony', activities: busy ? ['on-the-phone'] : [], dnd: t.dnd, call: busy, ringing: line === 'ringing' };
  if (busy) c.note = LINE_NOTE[line];
  return c;
}

function teamsPart(state: PersonState, options: ViewOptions): Contribution | undefined {
  const t = state.teams;
  if (t === undefined || options.teamsIsEcho === true) return undefined;
  const m = sipMeaningOf(t, options.teamsToSip ?? DEFAULT_TEAMS_TO_SIP);
  if (m.dnd === true && options.teamsDndOverruled === true) return undefined;
  const c: Contribution = { source: 'teams', activities: m.activities, dnd: m.dnd === true, call: m.call === true, ringing: false };
  const until = meetingUntil(state, options);
  const note = until !== undefined ? meetingNote(until, options.timeZone) : (m.note ?? t.statusMessage);
  if (note !== undefined && note.length > 0) c.note = note;
  return c;
}

function sipPart(state: PersonState): Contribution | undefined {
  const s = state.sip;
  if (s === undefined) return undefined;
  const activities = s.activities.filter((a) => a !== 'dnd');
  const c: Contribution = {
    source: 'sip',
    activities,
    dnd: s.activities.includes('dnd'),
    call: activities.includes('on-the-phone'),
    ringing: false,
  };
  if (s.note !== undefined) c.note = s.note;
  return c;
}

/**
 * Derive what SIP watchers see from the person's sources. Anything busy from
 * any source shows (a call on the desk phone and a Teams meeting are both
 * true); the preferred source names it first and gives the note. DND from any
 * source shows as busy + DND (DESIGN.md default mapping).
 */
export function deriveView(personId: string, state: PersonState, options: ViewOptions = {}): ViewContent {
  const tel = telephonyPart(state);
  const teams = teamsPart(state, options);
  let parts = (options.prefer === 'teams' ? [teams, tel, sipPart(state)] : [tel, teams, sipPart(state)]).filter(
    (p): p is Contribution => p !== undefined,
  );
  if (options.order !== undefined && options.order.length > 0) parts = orderParts(parts, state, options.order);

  const activities: string[] = [];
  let dnd = false;
  let ringing = false;
  let call = false;
  for (const p of parts) {
    for (const a of p.activities) if (!activities.includes(a)) activities.push(a);
    dnd ||= p.dnd;
    ringing ||= p.ringing;
    call ||= p.call;
  }
  if (dnd && !activities.includes('busy')) activities.push('busy');
  const speaking = parts.find((p) => p.activities.length > 0 || p.dnd);
  let note = (speaking ?? parts.find((p) => p.note !== undefined))?.note;
  if (note === undefined && dnd) note = 'Do not disturb';

  let calls: Call[] = (state.telephony?.calls ?? []).filter((c) => c.phase !== 'terminated');
  if (calls.length === 0 && call) calls = [{ id: `busy-${personId}`, phase: 'confirmed', synthetic: true }];

  const view: ViewContent = {
    basic: state.sip?.basic ?? 'open',
    activities,
    dnd,
    ringing,
    calls,
    source: speaking?.source ?? parts[0]?.source ?? 'none',
  };
  if (note !== undefined) view.note = note;
  // until speaks for every activity in the element (RFC 4480 §3.2): only when all of them are the meeting's
  const until = meetingUntil(state, options);
  if (until !== undefined && activities.length > 0 && teams !== undefined && activities.every((a) => teams.activities.includes(a))) view.activitiesUntil = until;
  if (state.telephony?.line === 'unknown' && calls.length === 0 && !dnd) view.phoneUnknown = true;
  const notes = consoleNotes(state, options);
  if (notes !== undefined) view.notes = notes;
  return view;
}

/**
 * What a console shows beside the lamp: the person's Teams status message and,
 * while out of office, their automatic reply, in the person's language when
 * known. Not shown while the Teams reading is the gateway's own echo.
 */
function consoleNotes(state: PersonState, options: ViewOptions): Array<{ text: string; lang?: string }> | undefined {
  const t = state.teams;
  if (t === undefined || options.teamsIsEcho === true) return undefined;
  const out: Array<{ text: string; lang?: string }> = [];
  const add = (text: string | undefined): void => {
    if (text === undefined || text.length === 0 || out.some((n) => n.text === text)) return;
    out.push(options.lang === undefined ? { text } : { text, lang: options.lang });
  };
  const until = meetingUntil(state, options);
  if (until !== undefined) add(meetingNote(until, options.timeZone));
  add(t.statusMessage);
  if (t.outOfOffice === true) add(t.outOfOfficeMessage);
  return out.length === 0 ? undefined : out;
}

/** Where a contribution came from, as source-priority names: teams, publish (any node's, any publisher's), trunk:<name>. */
function feederOf(p: Contribution, state: PersonState): string {
  if (p.source === 'teams') return 'teams';
  const origin = p.source === 'telephony' ? state.telephony?.origin : state.sip?.origin;
  return origin === undefined || origin === 'feature-key' || isPublishSource(origin) ? PUBLISH_SOURCE : origin;
}

function rankIn(order: readonly string[], p: Contribution, state: PersonState): number {
  const feeder = feederOf(p, state);
  for (let i = 0; i < order.length; i++) {
    const o = order[i]!;
    if (o === feeder || (o === 'telephony' && feeder.startsWith('trunk:') && p.source === 'telephony')) return i;
  }
  return order.length;
}

/** Stable sort of contributions by the group's source priority. */
function orderParts(parts: Contribution[], state: PersonState, order: readonly string[]): Contribution[] {
  return parts
    .map((p, i) => ({ p, i, r: rankIn(order, p, state) }))
    .sort((a, b) => a.r - b.r || a.i - b.i)
    .map((x) => x.p);
}

/** Whether two derived contents would render the same to every watcher. */
export function sameContent(a: ViewContent, b: ViewContent): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
