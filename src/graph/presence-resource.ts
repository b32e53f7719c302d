/**
 * Graph presence resources as the gateway reads them: availability and
 * activity parsed case-insensitively into Graph's own spelling (unknown
 * values kept, never rejected), and the sequence number compared so older
 * readings never overwrite newer ones.
 */
import type { TeamsState } from '../core/person-state.js';
import { isRecord } from './json.js';

const AVAILABILITY = [
  'Available',
  'AvailableIdle',
  'AvailableInactive',
  'Away',
  'BeRightBack',
  'Busy',
  'BusyIdle',
  'DoNotDisturb',
  'Offline',
  'PresenceUnknown',
];
const ACTIVITY = [
  'Available',
  'Away',
  'BeRightBack',
  'Busy',
  'DoNotDisturb',
  'InACall',
  'InAConferenceCall',
  'Inactive',
  'InAMeeting',
  'Offline',
  'OffWork',
  'OutOfOffice',
  'PresenceUnknown',
  'Presenting',
  'UrgentInterruptionsOnly',
];
const canonical = new Map<string, string>([...AVAILABILITY, ...ACTIVITY].map((v) => [v.toLowerCase(), v]));

/** Graph's spelling of a known value, or the value as given (trimmed, bounded). */
export function canonicalPresenceValue(v: string): string {
  const t = v.trim();
  return canonical.get(t.toLowerCase()) ?? t.slice(0, 64);
}

const MAX_STATUS = 280;

/** A presence resource into the user id and TeamsState; undefined when it is not one. */
export function parsePresence(v: unknown, at: number): { userId: string; state: TeamsState } | undefined {
  if (!isRecord(v)) return undefined;
  const id = v['id'];
  if (typeof id !== 'string' || id === '') return undefined;
  const availability = typeof v['availability'] === 'string' ? canonicalPresenceValue(v['availability']) : 'PresenceUnknown';
  const activity = typeof v['activity'] === 'string' ? canonicalPresenceValue(v['activity']) : availability;
  const state: TeamsState = { availability, activity, at };
  const sm = v['statusMessage'];
  if (isRecord(sm) && isRecord(sm['message']) && typeof sm['message']['content'] === 'string') {
    const content = sm['message']['content'].trim();
    if (content !== '') state.statusMessage = content.length > MAX_STATUS ? content.slice(0, MAX_STATUS) : content;
  }
  const ooo = v['outOfOfficeSettings'];
  if (isRecord(ooo) && typeof ooo['isOutOfOffice'] === 'boolean') state.outOfOffice = ooo['isOutOfOffice'];
  // https://learn.microsoft.com/graph/api/resources/outofofficesettings: message is the automatic reply (may be HTML)
  if (isRecord(ooo) && typeof ooo['message'] === 'string') {
    const text = ooo['message'].replace(/<[^>]*>/g, ' ').replace(/&nbsp;/g, ' ').replace(/\s+/g, ' ').trim();
    if (text !== '') state.outOfOfficeMessage = text.length > MAX_STATUS ? text.slice(0, MAX_STATUS) : text;
  }
  if (typeof v['sequenceNumber'] === 'string' && v['sequenceNumber'] !== '') state.sequenceNumber = v['sequenceNumber'];
  return { userId: id.toLowerCase(), state };
}

/**
 * Order of two sequence numbers: negative, zero or positive. Graph's
 * presence resource documents sequenceNumber as an opaque string that sorts
 * lexicographically, so it is compared as text (ordinal, no length rule).
 */
export function compareSequence(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
