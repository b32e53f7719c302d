import type { FastifyInstance, FastifyRequest } from 'fastify';
import { callerOf, requirePermission, type SimContext } from './context.js';
import { badRequest, GraphHttpError, notFound } from './graph-errors.js';
import { base64UrlJson, isRecord, parseBase64UrlJson } from './ids.js';
import { parseTop, parseUserFilter, parseUserSelect, projectUser, type UserFilter } from './odata.js';
import type { SimUser } from './model.js';

const USERS_READ = {
  app: ['User.Read.All', 'User.ReadWrite.All', 'Directory.Read.All', 'Directory.ReadWrite.All'],
  delegated: ['User.Read.All', 'User.ReadBasic.All', 'User.ReadWrite.All', 'Directory.Read.All', 'Directory.ReadWrite.All'],
};
const DEFAULT_PAGE = 100;
const MAX_PAGE = 999;

type Query = Record<string, string | undefined>;

function query(request: FastifyRequest): Query {
  const q = request.query;
  const out: Query = {};
  if (isRecord(q)) for (const [k, v] of Object.entries(q)) out[k.toLowerCase()] = typeof v === 'string' ? v : Array.isArray(v) ? String(v[0]) : undefined;
  return out;
}

function header(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return typeof v === 'string' ? v : Array.isArray(v) ? v[0] : undefined;
}

/** Prefer: odata.maxpagesize=N */
function maxPageSize(request: FastifyRequest): number | undefined {
  const prefer = header(request, 'prefer');
  const m = prefer ? /odata\.maxpagesize=(\d+)/i.exec(prefer) : null;
  return m ? Math.min(MAX_PAGE, Math.max(1, Number(m[1]))) : undefined;
}

function contextUrl(ctx: SimContext, select: readonly string[] | undefined): string {
  return `${ctx.graphBase()}/$metadata#users${select ? `(${select.join(',')})` : ''}`;
}

/** Rebuild the request URL with a new $skiptoken/$deltatoken, keeping the other query options. */
function linkWith(ctx: SimContext, path: string, q: Query, replace: Record<string, string>): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined || k === '$skiptoken' || k === '$deltatoken') continue;
    params.set(k, v);
  }
  for (const [k, v] of Object.entries(replace)) params.set(k, v);
  return `${ctx.graphBase()}${path}?${params.toString().replace(/%24/g, '$')}`;
}

interface DeltaToken {
  s: string[] | null;
  since: number;
  upto: number;
  after: number;
}

function decodeDelta(raw: string, kind: 'skip' | 'delta'): DeltaToken {
  const t = parseBase64UrlJson(raw);
  if (!isRecord(t) || typeof t['since'] !== 'number' || (kind === 'skip' && (typeof t['upto'] !== 'number' || typeof t['after'] !== 'number'))) {
    throw badRequest(`Badly formed ${kind === 'skip' ? 'skip' : 'delta'} token.`, 'Request_BadRequest');
  }
  const s = Array.isArray(t['s']) ? t['s'].filter((x): x is string => typeof x === 'string') : null;
  return { s, since: t['since'], upto: typeof t['upto'] === 'number' ? t['upto'] : t['since'], after: typeof t['after'] === 'number' ? t['after'] : -1 };
}

export function registerUserRoutes(app: FastifyInstance, ctx: SimContext): void {
  const resolveUser = (idOrUpn: string): SimUser => {
    const user = ctx.directory.get(idOrUpn);
    if (!user) throw notFound(`Resource '${idOrUpn}' does not exist or one of its queried reference-property objects are not present.`);
    return user;
  };

  app.get('/v1.0/users', async (request, reply) => {
    const caller = callerOf(request);
    requirePermission(caller, USERS_READ, 'Insufficient privileges to complete the operation.', 'Authorization_RequestDenied');
    const q = query(request);
    const eventual = (header(request, 'consistencylevel') ?? '').toLowerCase() === 'eventual';
    const count = (q['$count'] ?? '').toLowerCase() === 'true';
    if (q['$count'] !== undefined && !eventual) throw badRequest('$count is not currently supported without the ConsistencyLevel: eventual header.', 'Request_BadRequest');
    if (q['$search'] !== undefined) throw badRequest('Request with $search query parameter only works through MSGraph with a special request header: \'ConsistencyLevel: eventual\'', 'Request_UnsupportedQuery');
    if (q['$orderby'] !== undefined) throw badRequest('Sorting not supported for current query.', 'Request_UnsupportedQuery');
    const select = parseUserSelect(q['$select']);
    const top = parseTop(q['$top'], MAX_PAGE) ?? maxPageSize(request) ?? DEFAULT_PAGE;
    let filter: UserFilter | undefined;
    if (q['$filter'] !== undefined) {
      filter = parseUserFilter(q['$filter']);
      // advanced queries need both, as Graph answers for directory objects
      if (filter.advanced && (!eventual || !count)) {
        throw badRequest(
          "Unsupported query: this filter is an advanced query and needs the 'ConsistencyLevel: eventual' header and $count=true.",
          'Request_UnsupportedQuery',
        );
      }
    }
    let after = -1;
    if (q['$skiptoken'] !== undefined) {
      const t = parseBase64UrlJson(q['$skiptoken']);
      if (!isRecord(t) || typeof t['after'] !== 'number') throw badRequest('Badly formed skip token.', 'Request_BadRequest');
      after = t['after'];
    }
    const value: Array<Record<string, unknown>> = [];
    let total = 0;
    let last = after;
    let more = false;
    for (const record of ctx.directory.live()) {
      if (filter && !filter.test(record.user)) continue;
      total++;
      if (record.order <= after) continue;
      if (value.length < top) {
        value.push(projectUser(record.user, select));
        last = record.order;
      } else more = true;
    }
    const body: Record<string, unknown> = { '@odata.context': contextUrl(ctx, select) };
    if (count) body['@odata.count'] = total;
    if (more) body['@odata.nextLink'] = linkWith(ctx, '/users', q, { $skiptoken: base64UrlJson({ after: last }) });
    body['value'] = value;
    return reply.send(body);
  });

  app.get('/v1.0/users/delta', async (request, reply) => {
    const caller = callerOf(request);
    requirePermission(caller, USERS_READ, 'Insufficient privileges to complete the operation.', 'Authorization_RequestDenied');
    const q = query(request);
    if (q['$filter'] !== undefined || q['$orderby'] !== undefined) throw badRequest('The query option is not supported on delta.', 'Request_UnsupportedQuery');
    const pageSize = maxPageSize(request) ?? DEFAULT_PAGE;
    let token: DeltaToken;
    if (q['$skiptoken'] !== undefined) token = decodeDelta(q['$skiptoken'], 'skip');
    else if (q['$deltatoken'] !== undefined && q['$deltatoken'].toLowerCase() === 'latest') {
      // start tracking from now without the initial sync
      const s = parseUserSelect(q['$select']) ?? null;
      const body = {
        '@odata.context': contextUrl(ctx, s ?? undefined),
        '@odata.deltaLink': `${ctx.graphBase()}/users/delta?$deltatoken=${base64UrlJson({ s, since: ctx.directory.version })}`,
        value: [],
      };
      return reply.send(body);
    } else if (q['$deltatoken'] !== undefined) token = { ...decodeDelta(q['$deltatoken'], 'delta'), upto: ctx.directory.version, after: -1 };
    else token = { s: parseUserSelect(q['$select']) ?? null, since: 0, upto: ctx.directory.version, after: -1 };
    const select = token.s ?? undefined;
    const initial = token.since === 0;
    const value: Array<Record<string, unknown>> = [];
    let last = token.after;
    let more = false;
    for (const record of ctx.directory.all()) {
      if (record.order <= token.after) continue;
      if (initial ? record.removed : record.version <= token.since) continue;
      if (value.length >= pageSize) {
        more = true;
        break;
      }
      value.push(
        record.removed
          ? { id: record.user.id, '@removed': { reason: record.permanent ? 'deleted' : 'changed' } }
          : projectUser(record.user, select),
      );
      last = record.order;
    }
    const body: Record<string, unknown> = { '@odata.context': contextUrl(ctx, select) };
    if (more) {
      body['@odata.nextLink'] = `${ctx.graphBase()}/users/delta?$skiptoken=${base64UrlJson({ s: token.s, since: token.since, upto: token.upto, after: last })}`;
    } else {
      body['@odata.deltaLink'] = `${ctx.graphBase()}/users/delta?$deltatoken=${base64UrlJson({ s: token.s, since: token.upto })}`;
    }
    body['value'] = value;
    return reply.send(body);
  });

  app.get('/v1.0/me', async (request, reply) => {
    const caller = callerOf(request);
    if (caller.kind !== 'user' || !caller.userId) throw badRequest('/me request is only valid with delegated authentication flow.', 'BadRequest');
    if (!caller.scopes.has('User.Read') && !caller.scopes.has('User.Read.All') && !caller.scopes.has('User.ReadBasic.All')) {
      throw new GraphHttpError(403, 'Authorization_RequestDenied', 'Insufficient privileges to complete the operation.');
    }
    const user = resolveUser(caller.userId);
    const q = query(request);
    return reply.send({ '@odata.context': `${ctx.graphBase()}/$metadata#users/$entity`, ...projectUser(user, parseUserSelect(q['$select'])) });
  });

  app.get('/v1.0/users/:id', async (request, reply) => {
    const caller = callerOf(request);
    const { id } = request.params as { id: string };
    const user = resolveUser(id);
    if (!(caller.kind === 'user' && caller.userId === user.id && caller.scopes.has('User.Read'))) {
      requirePermission(caller, USERS_READ, 'Insufficient privileges to complete the operation.', 'Authorization_RequestDenied');
    }
    const q = query(request);
    return reply.send({ '@odata.context': `${ctx.graphBase()}/$metadata#users/$entity`, ...projectUser(user, parseUserSelect(q['$select'])) });
  });
}
