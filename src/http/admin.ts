/**
 * The admin API (fastify plugin, registered under /api): users with both
 * presences, one user's detail and history, trunks, Graph subscriptions, the
 * nodes of the service and who runs each job (/cluster), a
 * forced resync, "what would a watcher get now", Graph service account
 * sign-in (device code), and a server-sent event
 * stream of row changes for the diagnostics page. Every route needs
 * `Authorization: Bearer <admin.token>`; the event stream also takes
 * `?token=` because EventSource cannot send headers. All answers are JSON.
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Person } from '../core/directory.js';
import { WATCHER_EVENTS, WATCHER_PROFILES, type AdminSource, type WatcherEvent, type WatcherProfileName } from './admin-source.js';
import { withCluster } from './cluster-rows.js';
import { connectors, SEEN_STATES, userDetail, userRow, type SeenState, type UserRow, type WebhookInfo } from './rows.js';
import { EventStream } from './sse.js';
import { TokenCheck } from './token.js';
import { systemClock, type Clock } from '../util/clock.js';

export interface AdminApiOptions {
  source: AdminSource;
  token: string;
  /** Webhook delivery facts for the connector list (server.ts tracks them). */
  webhook?: () => WebhookInfo | undefined;
  /** SSE heartbeat comment interval (default 15 s). */
  heartbeatMs?: number;
  /** How often connector status is recomputed for SSE clients (default 5 s). */
  statusMs?: number;
  clock?: Pick<Clock, 'now'>;
}

const ID = /^[A-Za-z0-9._-]{1,64}$/;

function problem(reply: FastifyReply, code: number, error: string, message: string): FastifyReply {
  return reply.code(code).type('application/json; charset=utf-8').send({ error, message });
}

/** Persons by id, rebuilt only when the source hands out a different array. */
class PersonIndex {
  private list: readonly Person[] | undefined;
  private map = new Map<string, Person>();
  constructor(private readonly source: AdminSource) {}
  get(id: string): Person | undefined {
    const list = this.source.persons();
    if (list !== this.list) {
      this.list = list;
      this.map = new Map(list.map((p) => [p.id, p]));
    }
    return this.map.get(id);
  }
}

function matchesText(row: UserRow, q: string): boolean {
  const hay = [row.id, row.name, row.extension ?? '', ...row.aors, row.teams?.upn ?? ''].join('\n').toLowerCase();
  return hay.includes(q);
}

export const adminApi: FastifyPluginAsync<AdminApiOptions> = async (app: FastifyInstance, options: AdminApiOptions) => {
  const { source } = options;
  const check = new TokenCheck(options.token);
  const persons = new PersonIndex(source);
  const clock = options.clock ?? systemClock;
  // the nodes ride with the connectors: one answer, one SSE event, pushed when either changes
  const status = () => {
    const now = clock.now();
    const cluster = source.cluster?.();
    return {
      now,
      connectors: withCluster(connectors(source, options.webhook?.(), now), cluster),
      ...(cluster !== undefined ? { cluster } : {}),
    };
  };
  const stream = new EventStream({
    subscribe: (listener) => source.onChange(listener),
    row: (id) => {
      const p = persons.get(id);
      return p === undefined ? undefined : userRow(source, p);
    },
    status,
    heartbeatMs: options.heartbeatMs ?? 15_000,
    statusMs: options.statusMs ?? 5_000,
  });

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const fromHeader = TokenCheck.fromHeader(request.headers.authorization);
    let presented = fromHeader;
    if (presented === undefined && request.routeOptions.url?.endsWith('/events') === true) {
      const q = request.query as Record<string, unknown> | undefined;
      const t = q?.['token'];
      if (typeof t === 'string') presented = t;
    }
    if (!check.matches(presented)) {
      reply.header('www-authenticate', 'Bearer realm="presence-gateway admin"');
      return problem(
        reply,
        401,
        'unauthorized',
        presented === undefined ? 'send Authorization: Bearer <admin.token>' : 'the token does not match admin.token',
      );
    }
    return undefined;
  });

  app.setErrorHandler((error: unknown, _request, reply) => {
    const status = typeof error === 'object' && error !== null && 'statusCode' in error ? Number(error.statusCode) : 500;
    const message = error instanceof Error ? error.message : String(error);
    if (status >= 400 && status < 500) return problem(reply, status, 'bad request', message);
    app.log.error({ err: message }, 'admin api: request failed');
    return problem(reply, 500, 'internal', 'the gateway could not answer; see its log');
  });
  app.setNotFoundHandler((request, reply) => problem(reply, 404, 'not found', `no route ${request.method} ${request.url.split('?')[0]}`));

  const person = (request: FastifyRequest, reply: FastifyReply): Person | undefined => {
    const id = (request.params as { id?: unknown }).id;
    if (typeof id !== 'string' || !ID.test(id)) {
      problem(reply, 400, 'bad request', 'a user id is 1-64 letters, digits, dot, dash or underscore');
      return undefined;
    }
    const p = persons.get(id);
    if (p === undefined) problem(reply, 404, 'not found', `no user "${id}"`);
    return p;
  };

  app.get('/users', async (request, reply) => {
    const q = request.query as Record<string, unknown>;
    const state = q['state'];
    const text = q['q'];
    if (state !== undefined && (typeof state !== 'string' || !(SEEN_STATES as readonly string[]).includes(state))) {
      return problem(reply, 400, 'bad request', `state is one of: ${SEEN_STATES.join(', ')}`);
    }
    if (text !== undefined && (typeof text !== 'string' || text.length > 200)) {
      return problem(reply, 400, 'bad request', 'q is a text of at most 200 characters');
    }
    let users = source.persons().map((p) => userRow(source, p));
    if (typeof state === 'string') users = users.filter((u) => u.watchersSee.state === (state as SeenState));
    if (typeof text === 'string' && text.length > 0) users = users.filter((u) => matchesText(u, text.toLowerCase()));
    return { users };
  });

  app.get('/users/:id', async (request, reply) => {
    const p = person(request, reply);
    if (p === undefined) return reply;
    return userDetail(source, p);
  });

  app.get('/users/:id/render', async (request, reply) => {
    const p = person(request, reply);
    if (p === undefined) return reply;
    const q = request.query as Record<string, unknown>;
    const event = q['event'] ?? 'presence';
    const profile = q['profile'] ?? 'rfc';
    if (typeof event !== 'string' || !(WATCHER_EVENTS as readonly string[]).includes(event)) {
      return problem(reply, 400, 'bad request', `event is one of: ${WATCHER_EVENTS.join(', ')}`);
    }
    if (typeof profile !== 'string' || !(WATCHER_PROFILES as readonly string[]).includes(profile)) {
      return problem(reply, 400, 'bad request', `profile is one of: ${WATCHER_PROFILES.join(', ')}`);
    }
    const body = source.render(p.id, event as WatcherEvent, profile as WatcherProfileName);
    if (body === undefined) return problem(reply, 404, 'not found', `no user "${p.id}"`);
    return { id: p.id, event, profile, contentType: body.contentType, body: body.body };
  });

  app.post('/users/:id/resync', async (request, reply) => {
    const p = person(request, reply);
    if (p === undefined) return reply;
    const r = await source.resync(p.id);
    return reply.code(r.ok ? 200 : 503).send({ id: p.id, ok: r.ok, detail: r.detail });
  });

  app.get('/trunks', async () => ({ trunks: source.trunks() }));

  app.get('/graph/subscriptions', async () => {
    const g = source.graph();
    return { configured: g !== undefined, subscriptions: g?.reader.subscriptions ?? [] };
  });

  app.get('/graph/accounts', async () => {
    const g = source.graph();
    return { configured: g !== undefined, accounts: g?.accounts ?? [] };
  });

  // starts (or shows) the device-code sign-in; the administrator enters the code at the verification URL
  app.post('/graph/accounts/:account/signin', async (request, reply) => {
    const account = (request.params as { account?: unknown }).account;
    if (typeof account !== 'string' || !/^[^@\s/]{1,128}@[^@\s/]{1,253}$/.test(account)) {
      return problem(reply, 400, 'bad request', 'the account is a user principal name from graph.serviceAccounts, like svc-presence@contoso.com');
    }
    if (source.signIn === undefined || source.graph() === undefined) return problem(reply, 503, 'unavailable', 'no Graph side is configured or started');
    const r = await source.signIn(account);
    if (!r.ok) return problem(reply, r.status, r.status === 404 ? 'not found' : r.status === 409 ? 'conflict' : 'unavailable', r.message);
    return reply.code(202).send(r.account);
  });

  app.get('/status', async () => status());

  // the nodes of the service and who runs each job; a single node lists itself
  app.get('/cluster', async (_request, reply) => {
    const cluster = source.cluster?.();
    if (cluster === undefined) return problem(reply, 404, 'not found', 'this gateway does not describe its nodes');
    return cluster;
  });

  app.get('/events', (request, reply) => {
    reply.hijack();
    stream.add(request.raw, reply.raw);
  });

  app.addHook('preClose', async () => stream.close());
};
