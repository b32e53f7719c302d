import type { Call, PersonState, PresenceView, ViewSource } from './person-state.js';

/** The content of a view, without the bookkeeping the store adds. */
export type ViewContent = Omit<PresenceView, 'personId' | 'revision' | 'changedAt'>;

const LINE_NOTE = { ringing: 'Ringing', 'in-call': 'On the phone', 'on-hold': 'On hold' } as const;

/**
 * Derive what watchers see from the person's sources. Telephony (a real line)
 * outranks published rich presence for "on the phone"; DND from any source
 * shows as busy + DND (DESIGN.md default mapping).
 */
export function deriveView(personId: string, state: PersonState): ViewContent {
  const { telephony, sip } = state;
  const activities: string[] = [];
  let note: string | undefined;
  let source: ViewSource = 'none';
  let ringing = false;
  let calls: Call[] = [];

  if (telephony !== undefined) {
    source = 'telephony';
    calls = telephony.calls.filter((c) => c.phase !== 'terminated');
    const line = telephony.line;
    if (line === 'ringing' || line === 'in-call' || line === 'on-hold') {
      activities.push('on-the-phone');
      note = LINE_NOTE[line];
      ringing = line === 'ringing';
    }
  }
  if (sip !== undefined) {
    if (activities.length === 0) source = 'sip';
    for (const a of sip.activities) if (a !== 'dnd' && !activities.includes(a)) activities.push(a);
    note ??= sip.note;
  }
  const dnd = telephony?.dnd === true || sip?.activities.includes('dnd') === true;
  if (dnd && !activities.includes('busy')) activities.push('busy');
  if (dnd) note ??= 'Do not disturb';

  if (calls.length === 0 && activities.includes('on-the-phone')) {
    calls = [{ id: `busy-${personId}`, phase: 'confirmed', synthetic: true }];
  }
  const view: ViewContent = {
    basic: sip?.basic ?? 'open',
    activities,
    dnd,
    ringing,
    calls,
    source,
  };
  if (note !== undefined) view.note = note;
  return view;
}

/** Whether two derived contents would render the same to every watcher. */
export function sameContent(a: ViewContent, b: ViewContent): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
