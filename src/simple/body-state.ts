/**
 * SIP bodies to core state, for the event packages (presence-package.ts,
 * dialog-package.ts use it for PUBLISH and upstream NOTIFY bodies): PIDF →
 * RichState, dialog-info → TelephonyState, a PBX's PIDF → TelephonyState,
 * and saved publication states checked back. Core knows no wire format;
 * the translation lives here.
 *
 * PIDF as PBXs send it in NOTIFYs (Cisco CUCM, Asterisk) is read as a line
 * state by telephonyFromPidf:
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
import type { DialogInfoDialog, DialogInfoDocument, PidfActivity, PidfDocument } from '../bodies/index.js';
import { lineOf } from '../core/compose.js';
import type { Call, RichState, TelephonyState } from '../core/person-state.js';

/** Activity names core understands from a published activity (undefined: ignored). */
function activityName(a: PidfActivity): string | undefined {
  if (a.ns === 'rpid') {
    // RFC 4480: unknown says nothing; other is free text (kept as a note).
    if (a.name === 'unknown' || a.name === 'other') return undefined;
    return a.name;
  }
  if (a.ns === 'cisco') {
    if (a.name === 'dnd') return 'dnd';
    // ce:alerting is a ringing line: busy on the phone for presence purposes.
    if (a.name === 'alerting') return 'on-the-phone';
  }
  return undefined;
}

export function richStateFromPidf(doc: PidfDocument, origin: string, at: number): RichState {
  const activities: string[] = [];
  let otherText: string | undefined;
  const add = (list: readonly PidfActivity[]): void => {
    for (const a of list) {
      const name = activityName(a);
      if (name !== undefined) {
        if (!activities.includes(name)) activities.push(name);
      } else if (a.name === 'other' && a.text !== undefined) {
        otherText ??= a.text;
      }
    }
  };
  for (const p of doc.persons) add(p.activities);
  for (const t of doc.tuples) add(t.activities);

  // RFC 3863 §4.1.4: basic is per tuple; reachable anywhere counts as open.
  let basic: 'open' | 'closed' = 'open';
  const withBasic = doc.tuples.filter((t) => t.basic !== undefined);
  if (withBasic.length > 0 && !withBasic.some((t) => t.basic === 'open')) basic = 'closed';

  const note =
    doc.persons.find((p) => p.notes.length > 0)?.notes[0] ??
    doc.tuples.find((t) => t.notes.length > 0)?.notes[0] ??
    doc.notes[0] ??
    otherText;
  const rich: RichState = { basic, activities, origin, at };
  if (note !== undefined && note.length > 0) rich.note = note;
  return rich;
}

function isHeld(d: DialogInfoDialog): boolean {
  const params = d.local?.targetParams;
  if (params === undefined) return false;
  return params.some(([name, value]) => name.toLowerCase() === '+sip.rendering' && value.trim().toLowerCase() === 'no');
}

export function callFromDialog(d: DialogInfoDialog): Call {
  const call: Call = { id: d.id, phase: d.state };
  if (d.direction !== undefined) call.direction = d.direction;
  if (isHeld(d)) call.held = true;
  if (d.remote?.identity !== undefined || d.remote?.display !== undefined) {
    const remote: { identity?: string; display?: string } = {};
    if (d.remote.identity !== undefined) remote.identity = d.remote.identity;
    if (d.remote.display !== undefined) remote.display = d.remote.display;
    call.remote = remote;
  }
  if (d.callId !== undefined) call.callId = d.callId;
  if (d.localTag !== undefined) call.localTag = d.localTag;
  if (d.remoteTag !== undefined) call.remoteTag = d.remoteTag;
  return call;
}

/**
 * Telephony state from a dialog-info document. A partial document (RFC 4235
 * §4.1) updates `previous` dialog by dialog; a full one replaces it.
 */
export function telephonyFromDialogInfo(
  doc: DialogInfoDocument,
  previous: readonly Call[] | undefined,
  origin: string,
  at: number,
): TelephonyState {
  let calls: Call[];
  if (doc.state === 'partial' && previous !== undefined) {
    const byId = new Map<string, Call>();
    for (const c of previous) byId.set(c.id, c);
    for (const d of doc.dialogs) {
      if (d.state === 'terminated') byId.delete(d.id);
      else byId.set(d.id, callFromDialog(d));
    }
    calls = [...byId.values()];
  } else {
    calls = doc.dialogs.filter((d) => d.state !== 'terminated').map(callFromDialog);
  }
  return { line: lineOf(calls), dnd: false, calls, origin, at };
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

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A saved RichState, or undefined when the value does not look like one. */
export function savedRich(v: unknown): RichState | undefined {
  if (!isObject(v) || (v['basic'] !== 'open' && v['basic'] !== 'closed') || !Array.isArray(v['activities'])) return undefined;
  if (typeof v['origin'] !== 'string' || typeof v['at'] !== 'number') return undefined;
  return v as unknown as RichState;
}

/** A saved TelephonyState, or undefined when the value does not look like one. */
export function savedTelephony(v: unknown): TelephonyState | undefined {
  if (!isObject(v) || typeof v['line'] !== 'string' || typeof v['dnd'] !== 'boolean' || !Array.isArray(v['calls'])) return undefined;
  if (typeof v['origin'] !== 'string' || typeof v['at'] !== 'number') return undefined;
  if (!v['calls'].every((c) => isObject(c) && typeof c['id'] === 'string' && typeof c['phase'] === 'string')) return undefined;
  return v as unknown as TelephonyState;
}
