import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import Fastify, { type FastifyError, type FastifyReply, type FastifyRequest } from 'fastify';
import { newCorrelationId, Aad } from './aadsts.js';
import { createSimulatorTls, type CertificateWithKey } from './certs.js';
import { RealClock, type SimClock } from './clock.js';
import { setCaller, type SimContext } from './context.js';
import { SimControl, SimControlError } from './control.js';
import { CONTROL_PREFIX, registerControlRoutes } from './control-routes.js';
import { Counters } from './counters.js';
import { DEFAULT_DEVICE_CODE_OPTIONS, DeviceCodeStore, type DeviceCodeOptions } from './device-codes.js';
import { UserDirectory } from './directory.js';
import { registerEntraRoutes } from './entra.js';
import { graphErrorBody, GraphHttpError } from './graph-errors.js';
import { registerPresenceRoutes } from './graph-presence.js';
import { registerCalendarRoutes } from './graph-calendar.js';
import { CalendarBook } from './calendar.js';
import { registerSubscriptionRoutes } from './graph-subscriptions.js';
import { registerUserRoutes } from './graph-users.js';
import type { AppRegistration, ServiceAccount, SimUserInput } from './model.js';
import { DEFAULT_NOTIFIER_OPTIONS, Notifier, type NotifierOptions } from './notifier.js';
import { PresenceEngine } from './presence-engine.js';
import { TenantRegistry } from './registry.js';
import { DEFAULT_TENANT_DOMAIN, DEFAULT_TENANT_ID, DEMO_APP, DEMO_SERVICE_ACCOUNT, DEMO_USERS } from './seed.js';
import { SubscriptionStore } from './subscriptions.js';
import { AppThrottle, FaultInjector, type ThrottleConfig } from './throttle.js';
import { TokenService } from './token-service.js';
import { WebhookClient } from './webhook-http.js';
import { silentLogger, type Logger } from '../util/logger.js';

export interface GraphSimulatorOptions {
  /** TCP port on 127.0.0.1 (default 0: ephemeral) */
  port?: number;
  tenantId?: string;
  tenantDomain?: string;
  /** real time by default; a ManualClock lets a test move time */
  clock?: SimClock;
  /** directory users (default: the demo people) */
  users?: SimUserInput[];
  /** app registrations (default: the demo app) */
  apps?: AppRegistration[];
  /** password accounts (default: the demo service account) */
  serviceAccounts?: ServiceAccount[];
  /** access token lifetime (default 3599 s) */
  tokenLifetimeSec?: number;
  /** per-app request limit (default 1,500 per 30 s) */
  throttle?: Partial<ThrottleConfig>;
  logger?: Logger;
  /** reuse a CA (certificate + key PEM) instead of making a new one */
  ca?: CertificateWithKey;
  /** delivery timings (defaults follow Graph: 3 s delivery, 10 s validation, retries for 4 h) */
  notifier?: Partial<NotifierOptions>;
  /** presence subscription maximum lifetime in minutes (default 60) */
  maxSubscriptionMinutes?: number;
  /** accept http:// notification URLs (default false: Microsoft Graph accepts https only; tests may allow it) */
  allowHttpNotificationUrl?: boolean;
  /** extra CAs (PEM) to trust for https notification URLs */
  webhookCa?: string[];
  /** device authorization grant timings (defaults as Entra: codes live 900 s, polled every 5 s) */
  deviceCode?: Partial<DeviceCodeOptions>;
}

export interface GraphSimulator {
  /** https://127.0.0.1:N/<tenant id>: the msal authority */
  authorityUrl: string;
  /** https://127.0.0.1:N/v1.0: the Graph client baseUrl */
  graphBaseUrl: string;
  /** https://127.0.0.1:N */
  origin: string;
  /** 127.0.0.1:N (for msal knownAuthorities) */
  host: string;
  /** 127.0.0.1 (for the Graph client's customHosts) */
  hostname: string;
  port: number;
  /** the CA to trust (PEM) */
  caPem: string;
  /** the CA with its key, to reuse across runs */
  ca: CertificateWithKey;
  tenantId: string;
  tenantDomain: string;
  /** the seeded demo app (when the default apps are used) */
  demoApp: { clientId: string; clientSecret: string };
  /** the seeded service account (when the default accounts are used) */
  serviceAccount: { username: string; password: string };
  clock: SimClock;
  control: SimControl;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

/** Start the Microsoft Graph + Entra ID simulator over HTTPS on 127.0.0.1. */
export async function startGraphSimulator(options: GraphSimulatorOptions = {}): Promise<GraphSimulator> {
  const logger = options.logger ?? silentLogger();
  const ownClock = options.clock === undefined;
  const clock = options.clock ?? new RealClock();
  if (clock instanceof RealClock && ownClock) clock.setErrorHandler((err) => logger.error({ err }, 'graph-sim: timer task failed'));
  const tenantId = (options.tenantId ?? DEFAULT_TENANT_ID).toLowerCase();
  const tenantDomain = options.tenantDomain ?? DEFAULT_TENANT_DOMAIN;
  const tls = createSimulatorTls(options.ca);
  let origin = 'https://127.0.0.1:0';

  const counters = new Counters();
  const directory = new UserDirectory(() => clock.now());
  const registry = new TenantRegistry();
  const tokens = new TokenService(clock, tenantId, () => origin, options.tokenLifetimeSec ?? 3599);
  const presence = new PresenceEngine(clock);
  // Graph delivers to endpoints with publicly trusted certificates; in this simulated world the
  // simulator's own CA is one of those public CAs (it issues the demo gateway's webhook certificate).
  const webhookClient = new WebhookClient({ ca: [...(options.webhookCa ?? []), tls.ca.certPem] });
  const subscriptions = new SubscriptionStore(clock, (sub) => logger.info({ subscriptionId: sub.id }, 'graph-sim: subscription expired'));
  const notifier = new Notifier(clock, webhookClient, subscriptions, tokens, counters, logger, { ...DEFAULT_NOTIFIER_OPTIONS, ...options.notifier });
  presence.onChange((userId, p) => notifier.presenceChanged(userId, p));

  const ctx: SimContext = {
    clock,
    tenantId,
    tenantDomain,
    origin: () => origin,
    graphBase: () => `${origin}/v1.0`,
    directory,
    registry,
    tokens,
    deviceCodes: new DeviceCodeStore(() => clock.now(), { ...DEFAULT_DEVICE_CODE_OPTIONS, ...options.deviceCode }),
    presence,
    calendars: new CalendarBook(),
    subscriptions,
    notifier,
    throttle: new AppThrottle(clock, options.throttle),
    faults: new FaultInjector(),
    counters,
    logger,
    maxSubscriptionMs: (options.maxSubscriptionMinutes ?? 60) * 60_000,
    allowHttpNotificationUrl: options.allowHttpNotificationUrl ?? false,
  };
  const control = new SimControl(ctx);

  // seed
  for (const u of options.users ?? DEMO_USERS) control.addUser(u);
  for (const a of options.apps ?? [DEMO_APP]) control.registerApp(a);
  for (const s of options.serviceAccounts ?? [DEMO_SERVICE_ACCOUNT]) control.addServiceAccount(s);

  const app = Fastify({
    https: { key: tls.server.keyPem, cert: tls.server.certPem },
    logger: false,
    forceCloseConnections: true,
    routerOptions: { caseSensitive: false, ignoreTrailingSlash: true },
    genReqId: () => randomUUID(),
    bodyLimit: 4 * 1024 * 1024,
  });

  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text) as unknown);
    } catch {
      const err = new Error('Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.') as FastifyError;
      (err as { statusCode?: number }).statusCode = 400;
      done(err, undefined);
    }
  });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(String(body))));
  });
  app.addContentTypeParser('text/plain', { parseAs: 'string' }, (_req, body, done) => done(null, String(body)));

  const hanging = new Set<ServerResponse>();
  const isGraph = (url: string) => url.length >= 5 && url.slice(0, 5).toLowerCase() === '/v1.0';
  const isControl = (url: string) => url.toLowerCase().startsWith(CONTROL_PREFIX);
  const clientRequestId = (request: FastifyRequest): string => newCorrelationId(request.headers['client-request-id']);

  const sendGraphError = (request: FastifyRequest, reply: FastifyReply, status: number, code: string, message: string, headers: Record<string, string> = {}) => {
    for (const [k, v] of Object.entries(headers)) reply.header(k, v);
    return reply.code(status).send(graphErrorBody(code, message, String(request.id), clientRequestId(request), clock.now()));
  };

  // ids, loopback guard and fault injection: before anything else
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('request-id', String(request.id));
    reply.header('client-request-id', clientRequestId(request));
    const url = request.url;
    if (isControl(url)) {
      if (!LOOPBACK.has(request.socket.remoteAddress ?? '')) {
        reply.code(403).send({ error: 'the control API answers on loopback only' });
        return;
      }
      done();
      return;
    }
    const fault = ctx.faults.take(request.method, url.split('?')[0] ?? url);
    if (!fault) {
      done();
      return;
    }
    logger.debug({ method: request.method, url, fault: fault.kind }, 'graph-sim: injected fault');
    if (fault.kind === 'hang') {
      // never answer: the client's timeout (or close()) ends it
      counters.request(request.method, 'hang', 0);
      reply.hijack();
      hanging.add(reply.raw);
      reply.raw.on('close', () => hanging.delete(reply.raw));
      return;
    }
    const headers: Record<string, string> = fault.retryAfterSec !== null ? { 'retry-after': String(fault.retryAfterSec) } : {};
    if (!isGraph(url)) {
      const e = Aad.serviceUnavailable({ now: clock.now(), correlationId: clientRequestId(request), origin });
      for (const [k, v] of Object.entries(headers)) reply.header(k, v);
      reply.code(Number(fault.kind)).send(e.body);
      return;
    }
    if (fault.kind === '429') sendGraphError(request, reply, 429, 'TooManyRequests', 'Too many requests.', headers);
    else if (fault.kind === '503') sendGraphError(request, reply, 503, 'ServiceNotAvailable', 'The service is temporarily unavailable.', headers);
    else sendGraphError(request, reply, 500, 'InternalServerError', 'An internal server error occurred.', headers);
  });

  // Graph: bearer token, then the per-app throttle
  app.addHook('onRequest', async (request, reply) => {
    if (!isGraph(request.url)) return;
    const r = await tokens.verifyBearer(request.headers.authorization);
    if (!r.ok) {
      return sendGraphError(request, reply, 401, 'InvalidAuthenticationToken', r.message, {
        'www-authenticate': `Bearer realm="", authorization_uri="${origin}/${tenantId}/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`,
      });
    }
    const retryAfter = ctx.throttle.take(`${r.caller.tenantId}|${r.caller.appId}`);
    if (retryAfter !== undefined) {
      return sendGraphError(request, reply, 429, 'TooManyRequests', 'Too many requests.', { 'retry-after': String(retryAfter) });
    }
    setCaller(request, r.caller);
    return undefined;
  });

  app.addHook('onResponse', (request, reply, done) => {
    counters.request(request.method, request.routeOptions.url ?? 'unmatched', reply.statusCode);
    done();
  });

  app.setNotFoundHandler((request, reply) => {
    if (isGraph(request.url)) {
      const segment = (request.url.split('?')[0] ?? '').split('/').filter(Boolean).slice(1).join('/') || 'v1.0';
      return sendGraphError(request, reply, 400, 'BadRequest', `Resource not found for the segment '${segment}'.`);
    }
    return reply.code(404).send({ error: 'not found' });
  });

  app.setErrorHandler((error: unknown, request, reply) => {
    if (error instanceof SimControlError) return reply.code(error.status).send({ error: error.message });
    const status = error instanceof GraphHttpError ? error.status : typeof (error as { statusCode?: unknown }).statusCode === 'number' ? (error as { statusCode: number }).statusCode : 500;
    const message = error instanceof Error ? error.message : 'error';
    if (status >= 500) logger.error({ err: error, url: request.url }, 'graph-sim: request failed');
    if (isGraph(request.url)) {
      if (error instanceof GraphHttpError) return sendGraphError(request, reply, error.status, error.code, error.message, error.headers);
      if (status < 500) return sendGraphError(request, reply, status, 'BadRequest', message);
      return sendGraphError(request, reply, 500, 'InternalServerError', 'An internal server error occurred.');
    }
    if (isControl(request.url)) return reply.code(status).send({ error: message });
    if (status < 500) {
      const e = Aad.missingParameter({ now: clock.now(), correlationId: clientRequestId(request), origin }, 'a valid request body');
      return reply.code(400).send(e.body);
    }
    return reply.code(500).send({ error: 'server_error', error_description: 'internal error' });
  });

  registerEntraRoutes(app, ctx);
  registerUserRoutes(app, ctx);
  registerPresenceRoutes(app, ctx);
  registerCalendarRoutes(app, ctx);
  registerSubscriptionRoutes(app, ctx);

  const demoApp = { clientId: DEMO_APP.clientId, clientSecret: DEMO_APP.secrets?.[0] ?? '' };
  const serviceAccount = { username: DEMO_SERVICE_ACCOUNT.username, password: DEMO_SERVICE_ACCOUNT.password };
  const info = (): Record<string, unknown> => ({
    tenantId,
    tenantDomain,
    authorityUrl: `${origin}/${tenantId}`,
    graphBaseUrl: `${origin}/v1.0`,
    demoApp: options.apps ? null : demoApp,
    serviceAccount: options.serviceAccounts ? null : serviceAccount,
    clock: new Date(clock.now()).toISOString(),
  });
  registerControlRoutes(app, ctx, control, info);

  await app.listen({ host: '127.0.0.1', port: options.port ?? 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : (options.port ?? 0);
  origin = `https://127.0.0.1:${port}`;
  logger.info({ origin, tenantId }, 'graph-sim: listening');

  let closed = false;
  return {
    authorityUrl: `${origin}/${tenantId}`,
    graphBaseUrl: `${origin}/v1.0`,
    origin,
    host: `127.0.0.1:${port}`,
    hostname: '127.0.0.1',
    port,
    caPem: tls.ca.certPem,
    ca: tls.ca,
    tenantId,
    tenantDomain,
    demoApp,
    serviceAccount,
    clock,
    control,
    async close() {
      if (closed) return;
      closed = true;
      notifier.close();
      presence.dispose();
      subscriptions.dispose();
      for (const res of hanging) res.destroy();
      hanging.clear();
      await app.close();
      webhookClient.close();
      if (ownClock) clock.dispose();
    },
  };
}
