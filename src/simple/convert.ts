/**
 * Published documents to core state: PIDF → RichState, dialog-info →
 * TelephonyState. Core knows no wire format; the translation lives here.
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
