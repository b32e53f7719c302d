/**
 * POST /users/{id}/calendar/getSchedule (and /me/calendar/getSchedule), as
 * Microsoft documents it (Graph: calendar-getschedule;
 * outlook-get-free-busy-schedule):
 * - permissions (its permissions table): application Calendars.ReadBasic.All
 *   (least privileged), Calendars.Read, Calendars.ReadWrite; delegated
 *   Calendars.ReadBasic, Calendars.Read, Calendars.ReadWrite; anything else is 403;
 * - body: schedules (SMTP addresses), startTime and endTime as
 *   dateTimeTimeZone, availabilityViewInterval in minutes (5 to 1440,
 *   default 30);
 * - at most 20 schedules a request (outlook-get-free-busy-schedule: "up to
 *   20 entities at once"; the live service is reported to take 100, the
 *   stricter documented figure is kept);
 * - answer: value[] of scheduleInformation (scheduleId, availabilityView,
 *   scheduleItems with status/start/end, subject and location when the block
 *   is not private); times in UTC unless `Prefer: outlook.timezone` names a zone;
 *   an address that is no mailbox gets an entry with `error`; addresses are
 *   matched to users' mail (the SMTP address), not their UPN.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { CalendarBlock, FreeBusyStatus } from './calendar.js';
import { callerOf, hasPermission, type SimContext } from './context.js';
import { badRequest, forbidden, notFound } from './graph-errors.js';
import { dateTimeTimeZoneToMs, WINDOWS_ZONES } from './graph-presence.js';
import { isRecord } from './ids.js';

export const MAX_SCHEDULES = 20;
const READ = {
  app: ['Calendars.ReadBasic.All', 'Calendars.Read', 'Calendars.ReadWrite'],
  delegated: ['Calendars.ReadBasic', 'Calendars.Read', 'Calendars.ReadWrite'],
};

const VIEW_DIGIT: Readonly<Record<FreeBusyStatus, string>> = { free: '0', tentative: '1', busy: '2', oof: '3', workingElsewhere: '4' };
const RANK: Readonly<Record<FreeBusyStatus, number>> = { free: 0, workingElsewhere: 1, tentative: 2, busy: 3, oof: 4 };

function dateTimeTimeZone(value: unknown, name: string): number {
  if (!isRecord(value) || typeof value['dateTime'] !== 'string' || typeof value['timeZone'] !== 'string') {
    throw badRequest(`'${name}' is required: a dateTimeTimeZone with dateTime and timeZone.`, 'ErrorInvalidParameter');
  }
  return dateTimeTimeZoneToMs(value['dateTime'], value['timeZone'], name);
}

/** The wall time of `ms` in `zone`, as Graph writes dateTime (seven fraction digits, no suffix). */
function wallTime(ms: number, zone: string): string {
  const iana = zone.toUpperCase() === 'UTC' ? 'UTC' : (WINDOWS_ZONES[zone.toLowerCase()] ?? zone);
  const f = new Intl.DateTimeFormat('en-US', { timeZone: iana, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  const p = Object.fromEntries(f.formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  return `${p['year']}-${p['month']}-${p['day']}T${p['hour']}:${p['minute']}:${p['second']}.0000000`;
}

function responseZone(request: FastifyRequest): string {
  const prefer = request.headers['prefer'];
  const text = Array.isArray(prefer) ? prefer.join(',') : (prefer ?? '');
  const m = /outlook\.timezone\s*=\s*"([^"]+)"/i.exec(text);
  if (m === null) return 'UTC';
  const zone = m[1] ?? 'UTC';
  try {
    wallTime(0, zone);
    return zone;
  } catch {
    throw badRequest(`The time zone '${zone}' in the Prefer header is not valid.`, 'ErrorTimeZoneNotSupported');
  }
}

function availabilityView(blocks: readonly CalendarBlock[], from: number, to: number, intervalMs: number): string {
  let out = '';
  for (let at = from; at < to; at += intervalMs) {
    let best: FreeBusyStatus = 'free';
    for (const b of blocks) if (b.start < at + intervalMs && b.end > at && RANK[b.status] > RANK[best]) best = b.status;
    out += VIEW_DIGIT[best];
  }
  return out;
}

export function registerCalendarRoutes(app: FastifyInstance, ctx: SimContext): void {
  const getSchedule = (request: FastifyRequest, id: string | undefined): Record<string, unknown> => {
    const caller = callerOf(request);
    const key = id ?? (caller.kind === 'user' ? caller.userId : undefined);
    if (key === undefined || key === '') throw badRequest('/me request is only valid with delegated authentication flow.');
    if (!ctx.directory.get(key)) throw notFound(`Resource '${key}' does not exist or one of its queried reference-property objects are not present.`, 'ErrorInvalidUser');
    if (!hasPermission(caller, READ)) throw forbidden('Access is denied. Check credentials and try again.', 'ErrorAccessDenied');
    const b = request.body;
    if (!isRecord(b)) throw badRequest('The request body must be a JSON object.', 'ErrorInvalidRequest');
    const schedules = b['schedules'];
    if (!Array.isArray(schedules) || schedules.length === 0 || schedules.some((s) => typeof s !== 'string' || s === '')) {
      throw badRequest("'schedules' is required: a non-empty collection of SMTP addresses.", 'ErrorInvalidParameter');
    }
    if (schedules.length > MAX_SCHEDULES) {
      throw badRequest(`There are too many target users in the EmailAddress array. The allowed size = ${MAX_SCHEDULES}; the actual size = ${schedules.length}.`, 'ErrorMailboxDataArrayTooBig');
    }
    const start = dateTimeTimeZone(b['startTime'], 'startTime');
    const end = dateTimeTimeZone(b['endTime'], 'endTime');
    if (end <= start) throw badRequest("'endTime' must be later than 'startTime'.", 'ErrorInvalidParameter');
    const rawInterval = b['availabilityViewInterval'] ?? 30;
    const interval = typeof rawInterval === 'string' && /^\d+$/.test(rawInterval) ? Number(rawInterval) : rawInterval;
    if (typeof interval !== 'number' || !Number.isInteger(interval) || interval < 5 || interval > 1440) {
      throw badRequest("'availabilityViewInterval' must be a whole number of minutes from 5 to 1440.", 'ErrorInvalidParameter');
    }
    const zone = responseZone(request);
    const value = (schedules as string[]).map((address) => {
      const user = /^[^@\s]+@[^@\s]+$/.test(address) ? ctx.directory.byMail(address) : undefined;
      if (user === undefined) {
        return { scheduleId: address, availabilityView: '', scheduleItems: [], error: { message: `The SMTP address '${address}' has no mailbox associated with it.`, responseCode: 'ErrorMailRecipientNotFound' } };
      }
      const blocks = ctx.calendars.between(user.id, start, end).filter((x) => x.status !== 'free');
      return {
        scheduleId: address,
        availabilityView: availabilityView(blocks, start, end, interval * 60_000),
        scheduleItems: blocks.map((x) => {
          const item: Record<string, unknown> = {
            isPrivate: x.isPrivate === true,
            status: x.status,
            start: { dateTime: wallTime(x.start, zone), timeZone: zone },
            end: { dateTime: wallTime(x.end, zone), timeZone: zone },
          };
          if (x.isPrivate !== true && x.subject !== undefined) item['subject'] = x.subject;
          if (x.isPrivate !== true && x.location !== undefined) item['location'] = x.location;
          return item;
        }),
      };
    });
    return { '@odata.context': `${ctx.graphBase()}/$metadata#Collection(microsoft.graph.scheduleInformation)`, value };
  };
  app.post('/v1.0/users/:id/calendar/getSchedule', async (request) => getSchedule(request, (request.params as { id: string }).id));
  app.post('/v1.0/me/calendar/getSchedule', async (request) => getSchedule(request, undefined));
}

