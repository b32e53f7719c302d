/**
 * A getSchedule answer (Graph: calendar-getschedule, resources/scheduleinformation,
 * resources/scheduleitem) turned into free/busy blocks per address. Only
 * status, start and end are read; subject and location (present only with
 * wider calendar rights) are never kept. Times are asked for in UTC
 * (`Prefer: outlook.timezone="UTC"`); an item in another zone is skipped.
 */
import type { CalendarBusy } from '../core/person-state.js';
import { isRecord } from './json.js';

export interface ScheduleBlock {
  status: CalendarBusy;
  start: number;
  end: number;
}

const BUSY: Readonly<Record<string, CalendarBusy>> = { busy: 'busy', tentative: 'tentative', oof: 'oof', workingelsewhere: 'workingElsewhere' };

/** dateTimeTimeZone in UTC → ms; undefined for anything else. */
function utcMs(v: unknown): number | undefined {
  if (!isRecord(v) || typeof v['dateTime'] !== 'string' || typeof v['timeZone'] !== 'string') return undefined;
  if (!/^(utc|etc\/utc)$/i.test(v['timeZone'].trim())) return undefined;
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d)?)(\.\d+)?$/.exec(v['dateTime']);
  if (m === null) return undefined;
  const ms = Date.parse(`${m[1]}${(m[2] ?? '').slice(0, 4)}Z`);
  return Number.isNaN(ms) ? undefined : ms;
}

export interface ScheduleAnswer {
  /** lower-case address → busy blocks (free ones dropped), sorted by start */
  blocks: Map<string, ScheduleBlock[]>;
  /** addresses Graph answered with an error entry (no mailbox, no access) */
  errors: Map<string, string>;
}

export function parseScheduleAnswer(body: unknown): ScheduleAnswer {
  const out: ScheduleAnswer = { blocks: new Map(), errors: new Map() };
  const value = isRecord(body) && Array.isArray(body['value']) ? body['value'] : [];
  for (const info of value) {
    if (!isRecord(info) || typeof info['scheduleId'] !== 'string') continue;
    const id = info['scheduleId'].toLowerCase();
    const error = info['error'];
    if (isRecord(error)) {
      out.errors.set(id, typeof error['responseCode'] === 'string' ? error['responseCode'] : 'error');
      continue;
    }
    const blocks: ScheduleBlock[] = [];
    const items = Array.isArray(info['scheduleItems']) ? info['scheduleItems'] : [];
    for (const item of items) {
      if (!isRecord(item) || typeof item['status'] !== 'string') continue;
      const status = BUSY[item['status'].toLowerCase()];
      const start = utcMs(item['start']);
      const end = utcMs(item['end']);
      if (status === undefined || start === undefined || end === undefined || end <= start) continue;
      blocks.push({ status, start, end });
    }
    blocks.sort((a, b) => a.start - b.start);
    out.blocks.set(id, blocks);
  }
  return out;
}

const RANK: Readonly<Record<CalendarBusy, number>> = { workingElsewhere: 1, tentative: 2, busy: 3, oof: 4 };

/**
 * The block the person is in at `now`: the strongest status among the blocks
 * that hold `now`, its end carried over back-to-back or overlapping blocks
 * (a meeting straight after a meeting ends later). Undefined when free.
 */
export function blockAt(blocks: readonly ScheduleBlock[], now: number): ScheduleBlock | undefined {
  let best: ScheduleBlock | undefined;
  for (const b of blocks) if (b.start <= now && b.end > now && (best === undefined || RANK[b.status] > RANK[best.status])) best = b;
  if (best === undefined) return undefined;
  let from = best.start;
  let until = best.end;
  for (const b of blocks) if (b.start <= now && b.end > now) from = Math.min(from, b.start);
  for (let grew = true; grew; ) {
    grew = false;
    for (const b of blocks) {
      if (b.start <= until && b.end > until && b.status !== 'workingElsewhere') {
        until = b.end;
        grew = true;
      }
    }
  }
  return { status: best.status, start: from, end: until };
}

/** When what blockAt says next changes after `now` (a block starts or ends); undefined: never within the blocks. */
export function nextBoundary(blocks: readonly ScheduleBlock[], now: number): number | undefined {
  let next: number | undefined;
  for (const b of blocks) {
    for (const at of [b.start, b.end]) if (at > now && (next === undefined || at < next)) next = at;
  }
  return next;
}
