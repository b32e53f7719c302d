/**
 * NOTIFY bodies from a trunk (PBX or presence server) to core state.
 * dialog-info goes through telephonyFromDialogInfo (convert.ts); PIDF as PBXs
 * send it (Cisco CUCM, Asterisk) is read as a line state:
 *
 *   rpid on-the-phone                       → in-call (a synthetic confirmed call)
 *   on-the-phone with note "On hold"        → on-hold (Asterisk ONHOLD)
 *   on-the-phone with note "Ringing"        → ringing (Asterisk RINGING)
 *   ce:alerting                             → ringing (a synthetic early call, direction recipient)
 *   ce:dnd, or a dnd activity in any ns     → dnd
 *   an empty activities element, or open    → idle
 *   basic closed and no activity at all     → 'unknown': the device is unregistered or
 *                                             unavailable, so the PBX says nothing about the line
 *                                             (core ranks it lowest; other feeders win)
 */
import {
  BodyError,
  DIALOG_INFO_CONTENT_TYPE,
  parseDialogInfo,
  parsePidf,
  type DialogInfoDocument,
  type PidfActivity,
  type PidfDocument,
} from '../bodies/index.js';
import { lineOf } from '../core/compose.js';
import type { Call, RichState, TelephonyState } from '../core/person-state.js';
import { parseMediaType } from '../sip/header-values.js';
import type { SipRequest } from '../sip/message.js';
import { richStateFromPidf } from './convert.js';
import { CPIM_PIDF, PIDF } from './presence-package.js';
import { safeReason } from './sip-util.js';

export type NotifyBody =
  | { kind: 'none' }
  | { kind: 'dialog'; doc: DialogInfoDocument }
  | { kind: 'pidf'; doc: PidfDocument };

export type NotifyBodyOutcome =
  | { ok: true; body: NotifyBody }
  | { ok: false; status: 400 | 413 | 415; reason: string };

const NONE: NotifyBody = Object.freeze({ kind: 'none' });

/** Content types the upstream watcher can read, for Accept in a 415. */
export const UPSTREAM_CONTENT_TYPES: readonly string[] = Object.freeze([DIALOG_INFO_CONTENT_TYPE, PIDF, CPIM_PIDF]);

/** Parse a NOTIFY's body by its Content-Type. Never throws. */
export function parseNotifyBody(request: SipRequest): NotifyBodyOutcome {
  if (request.body.length === 0) return { ok: true, body: NONE };
  const ct = request.headers.get('content-type');
  const media = ct === undefined ? null : parseMediaType(ct);
  if (media === null) return { ok: false, status: 400, reason: 'Bad Request - missing or invalid Content-Type' };
  const type = `${media.type}/${media.subtype}`;
  try {
    if (type === DIALOG_INFO_CONTENT_TYPE) return { ok: true, body: { kind: 'dialog', doc: parseDialogInfo(request.body) } };
    if (type === PIDF || type === CPIM_PIDF) return { ok: true, body: { kind: 'pidf', doc: parsePidf(request.body) } };
  } catch (error) {
    const status = error instanceof BodyError && error.status === 413 ? 413 : 400;
    const detail = error instanceof Error ? error.message : 'unreadable body';
    return { ok: false, status, reason: safeReason(status === 413 ? 'Request Entity Too Large' : 'Bad Request', detail) };
  }
  return { ok: false, status: 415, reason: 'Unsupported Media Type' };
}

function allActivities(doc: PidfDocument): PidfActivity[] {
  const out: PidfActivity[] = [];
  for (const p of doc.persons) out.push(...p.activities);
  for (const t of doc.tuples) out.push(...t.activities);
  return out;
}

function allNotes(doc: PidfDocument): string[] {
  const out: string[] = [];
  for (const p of doc.persons) out.push(...p.notes);
  for (const t of doc.tuples) out.push(...t.notes);
  out.push(...doc.notes);
  return out;
}

/** Activities that describe the line or DND, read into telephony rather than rich presence. */
const LINE_ACTIVITIES: ReadonlySet<string> = new Set(['on-the-phone', 'dnd', 'alerting']);

/** Telephony state from a PBX's PIDF (see the table at the top). */
export function telephonyFromPidf(doc: PidfDocument, origin: string, at: number): TelephonyState {
  let onPhone = false;
  let alerting = false;
  let dnd = false;
  const activities = allActivities(doc);
  for (const a of activities) {
    if (a.name === 'dnd') dnd = true;
    else if (a.name === 'alerting' && a.ns === 'cisco') alerting = true;
    else if (a.name === 'on-the-phone') onPhone = true;
  }
  const notes = allNotes(doc).map((n) => n.trim().toLowerCase());
  const calls: Call[] = [];
  if (alerting || (onPhone && notes.includes('ringing'))) {
    calls.push({ id: 'pidf-line', phase: 'early', direction: 'recipient', synthetic: true });
  } else if (onPhone) {
    const call: Call = { id: 'pidf-line', phase: 'confirmed', synthetic: true };
    if (notes.includes('on hold')) call.held = true;
    calls.push(call);
  }
  let line = lineOf(calls);
  if (calls.length === 0 && !dnd && activities.length === 0 && !hasActivitiesElement(doc)) {
    // RFC 3863 §4.1.4: basic is per tuple; closed everywhere and nothing else said.
    const withBasic = doc.tuples.filter((t) => t.basic !== undefined);
    if (withBasic.length > 0 && withBasic.every((t) => t.basic === 'closed')) line = 'unknown';
  }
  return { line, dnd, calls, origin, at };
}

/**
 * Whether a person element is present at all: Cisco sends an empty
 * activities element when idle, which the parser reads as no activities; a
 * person element is taken as "the PBX spoke about the person".
 */
function hasActivitiesElement(doc: PidfDocument): boolean {
  return doc.persons.length > 0;
}

/**
 * Rich presence from the same PIDF, without what telephonyFromPidf already
 * took (on-the-phone, alerting, dnd): away, meeting, a note, basic.
 */
export function richFromUpstreamPidf(doc: PidfDocument, origin: string, at: number): RichState {
  const rich = richStateFromPidf(doc, origin, at);
  const activities = rich.activities.filter((a) => !LINE_ACTIVITIES.has(a));
  return activities.length === rich.activities.length ? rich : { ...rich, activities };
}
