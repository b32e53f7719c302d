import type { FastifyRequest } from 'fastify';
import type { CalendarBook } from './calendar.js';
import type { SimClock } from './clock.js';
import type { Counters } from './counters.js';
import type { DeviceCodeStore } from './device-codes.js';
import type { UserDirectory } from './directory.js';
import { forbidden, GraphHttpError } from './graph-errors.js';
import type { Notifier } from './notifier.js';
import type { PresenceEngine } from './presence-engine.js';
import type { TenantRegistry } from './registry.js';
import type { SubscriptionStore } from './subscriptions.js';
import type { AppThrottle, FaultInjector } from './throttle.js';
import type { Caller, TokenService } from './token-service.js';
import type { Logger } from '../util/logger.js';

/** Everything the route modules share. */
export interface SimContext {
  clock: SimClock;
  tenantId: string;
  tenantDomain: string;
  /** https://127.0.0.1:N */
  origin(): string;
  /** https://127.0.0.1:N/v1.0 */
  graphBase(): string;
  directory: UserDirectory;
  registry: TenantRegistry;
  tokens: TokenService;
  /** pending device authorization grants */
  deviceCodes: DeviceCodeStore;
  presence: PresenceEngine;
  /** free/busy blocks getSchedule reports */
  calendars: CalendarBook;
  subscriptions: SubscriptionStore;
  notifier: Notifier;
  throttle: AppThrottle;
  faults: FaultInjector;
  counters: Counters;
  logger: Logger;
  /** presence subscriptions: maximum lifetime in ms (Graph: 60 min) */
  maxSubscriptionMs: number;
  /** accept http:// notification URLs (Graph demands https) */
  allowHttpNotificationUrl: boolean;
}

const callers = new WeakMap<FastifyRequest, Caller>();

export function setCaller(request: FastifyRequest, caller: Caller): void {
  callers.set(request, caller);
}

/** The verified caller of a Graph route (set by the auth hook). */
export function callerOf(request: FastifyRequest): Caller {
  const caller = callers.get(request);
  if (!caller) throw new GraphHttpError(401, 'InvalidAuthenticationToken', 'Access token is empty.');
  return caller;
}

/** Application permissions (app tokens) or delegated scopes (user tokens) that allow an operation. */
export interface PermissionRule {
  app?: readonly string[];
  delegated?: readonly string[];
}

export function hasPermission(caller: Caller, rule: PermissionRule): boolean {
  if (caller.kind === 'app') return (rule.app ?? []).some((p) => caller.roles.has(p));
  return (rule.delegated ?? []).some((p) => caller.scopes.has(p));
}

export function requirePermission(caller: Caller, rule: PermissionRule, message = 'Insufficient privileges to complete the operation.', code = 'Forbidden'): void {
  if (!hasPermission(caller, rule)) throw forbidden(message, code);
}
