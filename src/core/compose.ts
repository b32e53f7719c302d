import type { Call, LineState, RichState, TelephonyState } from './person-state.js';

/** How much an activity set says about being unavailable; higher wins over recency. */
function richWeight(r: RichState): number {
  if (r.activities.includes('dnd')) return 2;
  if (r.activities.includes('on-the-phone')) return 1;
  return 0;
}

/**
 * Compose several SIP publications for one person (RFC 3903 leaves the
 * policy to the compositor): do-not-disturb, then on-the-phone, win over
 * anything idler; among equals the most recent wins.
 */
export function composeRich(parts: readonly RichState[]): RichState | undefined {
  let best: RichState | undefined;
  for (const p of parts) {
    if (best === undefined) {
      best = p;
      continue;
    }
    const w = richWeight(p);
    const bw = richWeight(best);
    if (w > bw || (w === bw && p.at >= best.at)) best = p;
  }
  if (best === undefined) return undefined;
  // An open tuple anywhere means reachable somewhere (RFC 3863 basic status per contact).
  const basic = parts.some((p) => p.basic === 'open') ? 'open' : 'closed';
  return basic === best.basic ? best : { ...best, basic };
}

const LINE_RANK: Readonly<Record<LineState, number>> = {
  ringing: 4,
  'in-call': 3,
  'on-hold': 2,
  idle: 1,
  unknown: 0,
};

/** The line state that a set of calls amounts to. */
export function lineOf(calls: readonly Call[]): LineState {
  let line: LineState = 'idle';
  for (const c of calls) {
    let l: LineState;
    switch (c.phase) {
      case 'terminated':
        continue;
      case 'confirmed':
        l = c.held === true ? 'on-hold' : 'in-call';
        break;
      default:
        // trying/proceeding/early: an inbound early dialog rings; an outbound one is already "in a call" for presence.
        l = c.direction === 'initiator' ? 'in-call' : 'ringing';
    }
    if (LINE_RANK[l] > LINE_RANK[line]) line = l;
  }
  return line;
}

/** Union of several telephony sources (several phones or publications of one person). */
export function composeTelephony(parts: readonly TelephonyState[]): TelephonyState | undefined {
  if (parts.length === 0) return undefined;
  if (parts.length === 1) return parts[0];
  const calls: Call[] = [];
  let line: LineState = 'unknown';
  let dnd = false;
  let latest = parts[0]!;
  for (const p of parts) {
    calls.push(...p.calls);
    if (LINE_RANK[p.line] > LINE_RANK[line]) line = p.line;
    dnd ||= p.dnd;
    if (p.at > latest.at) latest = p;
  }
  return { line, dnd, calls, origin: latest.origin, at: latest.at };
}
