import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { FREE_BUSY_STATUSES } from './calendar.js';
import { ManualClock } from './clock.js';
import type { SimContext } from './context.js';
import { SimControlError, TEAMS_ACTIONS, type SimControl, type TeamsAction } from './control.js';

/** The prefix of the control API: not Graph-shaped, no token, loopback only. */
export const CONTROL_PREFIX = '/_sim';

export const userInputSchema = z.object({
  id: z.string().optional(),
  displayName: z.string().min(1),
  userPrincipalName: z.string().min(3),
  mail: z.string().nullable().optional(),
  mailNickname: z.string().optional(),
  givenName: z.string().nullable().optional(),
  surname: z.string().nullable().optional(),
  jobTitle: z.string().nullable().optional(),
  mobilePhone: z.string().nullable().optional(),
  officeLocation: z.string().nullable().optional(),
  preferredLanguage: z.string().nullable().optional(),
  businessPhones: z.array(z.string()).optional(),
  accountEnabled: z.boolean().optional(),
  teams: z.boolean().optional(),
});

const appInput = z.object({
  clientId: z.string(),
  displayName: z.string().optional(),
  secrets: z.array(z.string()).optional(),
  certificates: z.array(z.string()).optional(),
  applicationPermissions: z.array(z.string()).optional(),
  delegatedPermissions: z.array(z.string()).optional(),
  allowPublicClient: z.boolean().optional(),
});

const accountInput = z.object({
  username: z.string().min(3),
  password: z.string(),
  mfa: z.boolean().optional(),
  userId: z.string().optional(),
  displayName: z.string().optional(),
});

const faultInput = z.object({
  kind: z.enum(['429', '503', '500', 'hang']),
  count: z.number().int().positive().optional(),
  path: z.string().optional(),
  method: z.string().optional(),
  retryAfterSec: z.number().int().nonnegative().nullable().optional(),
});

const throttleInput = z.object({
  limit: z.number().nonnegative().optional(),
  windowSec: z.number().positive().optional(),
  enabled: z.boolean().optional(),
});

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value ?? {});
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new SimControlError(400, `invalid body${issue ? ` at ${issue.path.join('.') || '(root)'}: ${issue.message}` : ''}`);
  }
  return r.data;
}

const ref = (request: FastifyRequest): string => (request.params as { ref: string }).ref;

export function registerControlRoutes(app: FastifyInstance, ctx: SimContext, control: SimControl, info: () => Record<string, unknown>): void {
  const p = CONTROL_PREFIX;

  app.get(`${p}/info`, async () => info());

  app.get(`${p}/users`, async () => ({ value: control.listUsers() }));
  app.post(`${p}/users`, async (request, reply) => reply.code(201).send(control.addUser(parse(userInputSchema, request.body))));
  app.patch(`${p}/users/:ref`, async (request) => control.updateUser(ref(request), parse(userInputSchema.partial().omit({ id: true }), request.body)));
  app.delete(`${p}/users/:ref`, async (request, reply) => {
    const permanent = (request.query as Record<string, unknown>)['permanent'] === 'true';
    if (!control.removeUser(ref(request), { permanent })) throw new SimControlError(404, `no user '${ref(request)}'`);
    return reply.code(204).send();
  });
  app.get(`${p}/users/:ref/presence`, async (request) => control.presence(ref(request)));
  app.get(`${p}/users/:ref/sessions`, async (request) => ({ value: control.sessions(ref(request)) }));
  app.post(`${p}/users/:ref/teams/:action`, async (request) => {
    const action = (request.params as { action: string }).action.toLowerCase();
    if (!TEAMS_ACTIONS.includes(action as TeamsAction)) {
      throw new SimControlError(400, `unknown action '${action}'; one of ${TEAMS_ACTIONS.join(', ')}`);
    }
    return control.teams(ref(request), action as TeamsAction);
  });
  app.post(`${p}/users/:ref/meeting`, async (request, reply) => {
    const b = parse(z.object({ minutes: z.number().positive().max(1440), subject: z.string().optional(), status: z.enum(FREE_BUSY_STATUSES).optional() }), request.body);
    return reply.code(201).send(control.meeting(ref(request), b.minutes, { ...(b.subject !== undefined ? { subject: b.subject } : {}), ...(b.status !== undefined ? { status: b.status } : {}) }));
  });
  app.post(`${p}/users/:ref/out-of-office`, async (request) => {
    const b = parse(z.object({ on: z.boolean(), message: z.string().nullable().optional() }), request.body);
    return control.setOutOfOffice(ref(request), b.on, b.message ?? null);
  });
  app.post(`${p}/users/:ref/status-message`, async (request) => {
    const b = parse(z.object({ text: z.string().nullable(), expiresAt: z.string().nullable().optional() }), request.body);
    const at = b.expiresAt ? Date.parse(b.expiresAt) : null;
    if (at !== null && Number.isNaN(at)) throw new SimControlError(400, 'expiresAt is not a date');
    return control.setStatusMessage(ref(request), b.text, at);
  });

  app.get(`${p}/apps`, async () => ({ value: control.listApps() }));
  app.post(`${p}/apps`, async (request, reply) => reply.code(201).send(control.registerApp(parse(appInput, request.body))));
  app.delete(`${p}/apps/:ref`, async (request, reply) => {
    if (!control.removeApp(ref(request))) throw new SimControlError(404, `no app '${ref(request)}'`);
    return reply.code(204).send();
  });

  app.post(`${p}/service-accounts`, async (request, reply) => reply.code(201).send(control.addServiceAccount(parse(accountInput, request.body))));
  app.delete(`${p}/service-accounts/:ref`, async (request, reply) => {
    if (!control.removeServiceAccount(ref(request))) throw new SimControlError(404, `no account '${ref(request)}'`);
    return reply.code(204).send();
  });

  app.patch(`${p}/service-accounts/:ref`, async (request) => {
    const b = parse(z.object({ mfa: z.boolean().optional(), password: z.string().min(1).optional() }), request.body);
    return control.updateServiceAccount(ref(request), {
      ...(b.mfa !== undefined ? { mfa: b.mfa } : {}),
      ...(b.password !== undefined ? { password: b.password } : {}),
    });
  });

  app.get(`${p}/device-codes`, async () => ({ value: control.deviceCodes() }));
  app.post(`${p}/device-codes/:ref/approve`, async (request) => {
    const b = parse(z.object({ user: z.string().min(1) }), request.body);
    return control.approveDeviceCode(ref(request), b.user);
  });
  app.post(`${p}/device-codes/:ref/deny`, async (request) => control.denyDeviceCode(ref(request)));
  app.post(`${p}/users/:ref/revoke-sessions`, async (request) => control.revokeSessions(ref(request)));

  app.post(`${p}/faults`, async (request, reply) => {
    const f = parse(faultInput, request.body);
    control.injectFault({
      kind: f.kind,
      ...(f.count !== undefined ? { count: f.count } : {}),
      ...(f.path !== undefined ? { path: f.path } : {}),
      ...(f.method !== undefined ? { method: f.method } : {}),
      ...(f.retryAfterSec !== undefined ? { retryAfterSec: f.retryAfterSec } : {}),
    });
    return reply.code(201).send({ pending: ctx.faults.pending });
  });
  app.delete(`${p}/faults`, async (_request, reply) => {
    control.clearFaults();
    return reply.code(204).send();
  });

  app.put(`${p}/throttle`, async (request) => {
    const t = parse(throttleInput, request.body);
    return control.setThrottle({
      ...(t.limit !== undefined ? { limit: t.limit } : {}),
      ...(t.windowSec !== undefined ? { windowSec: t.windowSec } : {}),
      ...(t.enabled !== undefined ? { enabled: t.enabled } : {}),
    });
  });
  app.put(`${p}/token-lifetime`, async (request) => {
    const b = parse(z.object({ seconds: z.number().int().positive() }), request.body);
    control.setTokenLifetime(b.seconds);
    return { seconds: b.seconds };
  });

  app.get(`${p}/subscriptions`, async () => ({ value: control.subscriptions() }));
  app.post(`${p}/subscriptions/:ref/lifecycle`, async (request) => {
    const b = parse(z.object({ event: z.enum(['reauthorizationRequired', 'subscriptionRemoved', 'missed']) }), request.body);
    return control.fireLifecycle(ref(request), b.event);
  });

  app.get(`${p}/counters`, async () => control.counters());
  app.delete(`${p}/counters`, async (_request, reply) => {
    control.resetCounters();
    return reply.code(204).send();
  });

  app.post(`${p}/clock/advance`, async (request) => {
    const b = parse(z.object({ ms: z.number().nonnegative() }), request.body);
    if (!(ctx.clock instanceof ManualClock)) throw new SimControlError(400, 'the simulator runs on the real clock');
    ctx.clock.advance(b.ms);
    return { now: new Date(ctx.clock.now()).toISOString() };
  });
}
