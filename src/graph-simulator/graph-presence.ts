import type { FastifyInstance, FastifyRequest } from 'fastify';
import { callerOf, hasPermission, type SimContext } from './context.js';
import { badRequest, forbidden, GraphHttpError, notFound } from './graph-errors.js';
import { isGuid, isRecord } from './ids.js';
import type { PresenceResource, SimUser } from './model.js';
import type { Caller } from './token-service.js';
import {
  matchPair,
  parseIsoDuration,
  preferredDefaultDuration,
  PREFERRED_PAIRS,
  SESSION_DEFAULT_DURATION,
  SESSION_MAX_DURATION,
  SESSION_MIN_DURATION,
  SESSION_PAIRS,
} from './presence-rules.js';

/** getPresencesByUserId and presence subscriptions take at most 650 ids. */
export const MAX_PRESENCE_IDS = 650;

const READ = { app: ['Presence.Read.All', 'Presence.ReadWrite.All'], delegated: ['Presence.Read.All'] };
const WRITE = { app: ['Presence.ReadWrite.All'], delegated: [] as string[] };

function canRead(caller: Caller, userId: string): boolean {
  if (hasPermission(caller, READ)) return true;
  return caller.kind === 'user' && caller.userId === userId && (caller.scopes.has('Presence.Read') || caller.scopes.has('Presence.ReadWrite'));
}

function canWrite(caller: Caller, userId: string): boolean {
  if (hasPermission(caller, WRITE)) return true;
  return caller.kind === 'user' && caller.userId === userId && caller.scopes.has('Presence.ReadWrite');
}

function body(request: FastifyRequest): Record<string, unknown> {
  const b = request.body;
  if (b === undefined || b === null) return {};
  if (!isRecord(b)) throw badRequest('The request body must be a JSON object.', 'BadRequest');
  return b;
}

export function presenceJson(ctx: SimContext, p: PresenceResource, context: string): Record<string, unknown> {
  return { '@odata.context': `${ctx.graphBase()}/$metadata#${context}`, ...p };
}

function durationArg(value: unknown, name: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw badRequest(`Invalid value for '${name}': an ISO 8601 duration is expected.`);
  const ms = parseIsoDuration(value);
  if (ms === undefined) throw badRequest(`Invalid value '${value}' for '${name}': an ISO 8601 duration is expected.`);
  return ms;
}

/** A few Windows zone names Graph takes (the docs' examples use them), as IANA names. */
export const WINDOWS_ZONES: Readonly<Record<string, string>> = {
  'pacific standard time': 'America/Los_Angeles',
  'mountain standard time': 'America/Denver',
  'central standard time': 'America/Chicago',
  'eastern standard time': 'America/New_York',
  'gmt standard time': 'Europe/London',
  'w. europe standard time': 'Europe/Berlin',
  'romance standard time': 'Europe/Paris',
  'central europe standard time': 'Europe/Budapest',
  'tokyo standard time': 'Asia/Tokyo',
};

/**
 * A dateTimeTimeZone into ms: dateTime is a local time without a zone suffix
 * or offset, the zone is in timeZone (UTC, an IANA or a Windows zone name).
 * Graph: resources/datetimetimezone
 */
export function dateTimeTimeZoneToMs(dateTime: string, timeZone: string, what = 'expiryDateTime'): number {
  if (/(?:[zZ]|[+-]\d\d:?\d\d)$/.test(dateTime)) {
    throw badRequest(`Invalid ${what}.dateTime '${dateTime}': give the time without a zone suffix or offset, and the zone in timeZone.`);
  }
  const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,7}))?)?$/.exec(dateTime);
  if (!m) throw badRequest(`Invalid ${what}.dateTime '${dateTime}'.`);
  const [y, mo, d, h, mi, sec, frac] = m.slice(1).map((x, i) => (i === 6 ? Number(`0.${x ?? '0'}`) * 1000 : Number(x ?? '0'))) as number[];
  const wall = Date.UTC(y as number, (mo as number) - 1, d, h, mi, sec) + Math.round(frac as number);
  const tz = timeZone.trim();
  if (tz.toUpperCase() === 'UTC' || tz === 'Etc/UTC') return wall;
  const iana = WINDOWS_ZONES[tz.toLowerCase()] ?? tz;
  let offsetAt: (ms: number) => number;
  try {
    const f = new Intl.DateTimeFormat('en-US', { timeZone: iana, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    offsetAt = (ms) => {
      const parts = Object.fromEntries(f.formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
      const local = Date.UTC(Number(parts['year']), Number(parts['month']) - 1, Number(parts['day']), Number(parts['hour']), Number(parts['minute']), Number(parts['second']));
      return local - Math.floor(ms / 1000) * 1000;
    };
  } catch {
    throw badRequest(`Invalid ${what}.timeZone '${timeZone}'.`);
  }
  // the offset at the guessed instant, then once more at the corrected one (DST edges)
  const first = wall - offsetAt(wall);
  return wall - offsetAt(first);
}

export function registerPresenceRoutes(app: FastifyInstance, ctx: SimContext): void {
  const target = (request: FastifyRequest, raw: string | undefined): SimUser => {
    const caller = callerOf(request);
    let key = raw;
    if (key === undefined) {
      if (caller.kind !== 'user' || !caller.userId) throw badRequest('/me request is only valid with delegated authentication flow.');
      key = caller.userId;
    }
    const user = ctx.directory.get(key);
    if (!user) throw notFound(`Resource '${key}' does not exist or one of its queried reference-property objects are not present.`);
    return user;
  };

  const getPresence = async (request: FastifyRequest, id: string | undefined, context: (u: SimUser) => string) => {
    const caller = callerOf(request);
    const user = target(request, id);
    if (!canRead(caller, user.id)) throw forbidden('Insufficient privileges to read presence.');
    return presenceJson(ctx, ctx.presence.get(user.id), context(user));
  };

  app.get('/v1.0/users/:id/presence', async (request) =>
    getPresence(request, (request.params as { id: string }).id, (u) => `users('${u.id}')/presence/$entity`),
  );
  app.get('/v1.0/me/presence', async (request) => getPresence(request, undefined, () => 'users/presence/$entity'));
  app.get('/v1.0/communications/presences/:id', async (request) =>
    getPresence(request, (request.params as { id: string }).id, () => 'communications/presences/$entity'),
  );

  app.post('/v1.0/communications/getPresencesByUserId', async (request) => {
    const caller = callerOf(request);
    if (!hasPermission(caller, READ)) throw forbidden('Insufficient privileges to read presence.');
    const ids = body(request)['ids'];
    if (!Array.isArray(ids) || ids.some((id) => typeof id !== 'string')) throw badRequest("The request body must contain 'ids', an array of user ids.");
    if (ids.length === 0) throw badRequest("'ids' must not be empty.");
    if (ids.length > MAX_PRESENCE_IDS) {
      throw badRequest(`The number of ids exceeds the limit of ${MAX_PRESENCE_IDS} per request.`);
    }
    const value: Array<Record<string, unknown>> = [];
    const seen = new Set<string>();
    for (const raw of ids as string[]) {
      if (!isGuid(raw)) throw badRequest(`Invalid user id '${raw}': a GUID is expected.`);
      const id = raw.toLowerCase();
      if (seen.has(id)) continue;
      seen.add(id);
      // what Graph does with unknown ids is not documented (cloudcommunications-getpresencesbyuserid); here they
      // are left out, and the gateway copes with that, PresenceUnknown entries and a 404 alike (presence-batch.ts)
      if (!ctx.directory.get(id)) continue;
      value.push({ ...ctx.presence.get(id) });
    }
    return { '@odata.context': `${ctx.graphBase()}/$metadata#Collection(microsoft.graph.presence)`, value };
  });

  const write = (
    path: string,
    handler: (request: FastifyRequest, user: SimUser, caller: Caller, b: Record<string, unknown>) => void,
  ): void => {
    const run = (request: FastifyRequest, id: string | undefined): void => {
      const caller = callerOf(request);
      const user = target(request, id);
      if (!canWrite(caller, user.id)) throw forbidden('Insufficient privileges to set presence.');
      handler(request, user, caller, body(request));
    };
    app.post(`/v1.0/users/:id/presence/${path}`, async (request, reply) => {
      run(request, (request.params as { id: string }).id);
      return reply.code(200).send();
    });
    app.post(`/v1.0/me/presence/${path}`, async (request, reply) => {
      run(request, undefined);
      return reply.code(200).send();
    });
  };

  write('setPresence', (_r, user, caller, b) => {
    const sessionId = b['sessionId'];
    if (typeof sessionId !== 'string' || sessionId === '') throw badRequest("The parameter 'sessionId' is required.");
    // the application's session is keyed by its app id
    if (sessionId.toLowerCase() !== caller.appId.toLowerCase()) {
      throw badRequest(`The sessionId '${sessionId}' does not match the application id of the caller.`);
    }
    const pair = matchPair(SESSION_PAIRS, b['availability'], b['activity']);
    if (!pair) {
      throw badRequest(
        `The availability '${String(b['availability'])}' and activity '${String(b['activity'])}' are not a valid pair for a presence session.`,
      );
    }
    const duration = durationArg(b['expirationDuration'], 'expirationDuration') ?? SESSION_DEFAULT_DURATION;
    if (duration < SESSION_MIN_DURATION || duration > SESSION_MAX_DURATION) {
      throw badRequest('The expirationDuration must be between PT5M and PT4H.');
    }
    ctx.presence.setSession(user.id, sessionId.toLowerCase(), 'app', pair[0], pair[1], duration);
  });

  write('clearPresence', (_r, user, caller, b) => {
    const sessionId = b['sessionId'];
    if (typeof sessionId !== 'string' || sessionId === '') throw badRequest("The parameter 'sessionId' is required.");
    if (sessionId.toLowerCase() !== caller.appId.toLowerCase() || !ctx.presence.clearSession(user.id, sessionId.toLowerCase())) {
      throw new GraphHttpError(404, 'NotFound', `The presence session '${sessionId}' was not found.`);
    }
  });

  write('setUserPreferredPresence', (_r, user, _caller, b) => {
    const pair = matchPair(PREFERRED_PAIRS, b['availability'], b['activity']);
    if (!pair) {
      throw badRequest(
        `The availability '${String(b['availability'])}' and activity '${String(b['activity'])}' are not a valid pair for a user preferred presence.`,
      );
    }
    const duration = durationArg(b['expirationDuration'], 'expirationDuration') ?? preferredDefaultDuration(pair[0]);
    if (duration <= 0) throw badRequest('The expirationDuration must be positive.');
    ctx.presence.setPreferred(user.id, pair[0], pair[1], duration);
  });

  // presence-clearuserpreferredpresence documents 200 OK; the gateway takes any 2xx (204 too), so either is safe
  write('clearUserPreferredPresence', (_r, user) => {
    ctx.presence.clearPreferred(user.id);
  });

  write('setStatusMessage', (_r, user, _caller, b) => {
    const sm = b['statusMessage'];
    if (sm === null) {
      ctx.presence.setStatusMessage(user.id, null, 'text', null);
      return;
    }
    if (!isRecord(sm)) throw badRequest("The parameter 'statusMessage' is required.");
    const message = sm['message'];
    if (message !== null && message !== undefined && !isRecord(message)) throw badRequest("'statusMessage.message' must be an itemBody.");
    const content = isRecord(message) ? message['content'] : null;
    if (content !== null && content !== undefined && typeof content !== 'string') throw badRequest("'statusMessage.message.content' must be a string.");
    const contentType = isRecord(message) && typeof message['contentType'] === 'string' ? message['contentType'] : 'text';
    // Graph: presence-setstatusmessage (the message's contentType is text; html is not accepted)
    if (contentType.toLowerCase() !== 'text') throw badRequest(`Invalid contentType '${contentType}': a status message takes contentType 'text' only.`);
    let expiresAt: number | null = null;
    const expiry = sm['expiryDateTime'];
    if (expiry !== undefined && expiry !== null) {
      if (!isRecord(expiry) || typeof expiry['dateTime'] !== 'string') throw badRequest("'expiryDateTime' must be a dateTimeTimeZone.");
      expiresAt = dateTimeTimeZoneToMs(expiry['dateTime'], typeof expiry['timeZone'] === 'string' ? expiry['timeZone'] : 'UTC');
    }
    ctx.presence.setStatusMessage(user.id, typeof content === 'string' ? content : null, contentType.toLowerCase(), expiresAt);
  });
}
