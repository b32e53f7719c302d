import { X509Certificate } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { callerOf, type SimContext } from './context.js';
import { badRequest, GraphHttpError } from './graph-errors.js';
import { isGuid, isRecord, newGuid } from './ids.js';
import { parseIdInFilter } from './odata.js';
import { MAX_PRESENCE_IDS } from './graph-presence.js';
import { SubscriptionStore, subscriptionJson, type Subscription } from './subscriptions.js';
import type { Caller } from './token-service.js';

const invalid = (message: string) => badRequest(message, 'InvalidRequest');

/** Graph wraps errors from the presence subscription back end this way. */
function extensionError(status: number, statusName: string, operation: string, reason: string): GraphHttpError {
  return new GraphHttpError(status, 'ExtensionError', `Operation: ${operation}; Exception: [Status Code: ${statusName}; Reason: ${reason}]`);
}

/** The user ids a presence resource names; undefined when it is not a presence resource. */
export function presenceResourceIds(resource: string): string[] | undefined {
  const r = resource.trim().replace(/^\//, '');
  let m = /^communications\/presences\/([^/?()]+)$/i.exec(r);
  if (m) return [decodeURIComponent(m[1] as string)];
  m = /^communications\/presences\('([^']+)'\)$/i.exec(r);
  if (m) return [m[1] as string];
  m = /^communications\/presences\?\$filter=(.+)$/is.exec(r);
  if (m) {
    let filter = m[1] as string;
    try {
      filter = decodeURIComponent(filter.replace(/\+/g, ' '));
    } catch {
      return undefined;
    }
    return parseIdInFilter(filter);
  }
  return undefined;
}

function parseExpiration(ctx: SimContext, value: unknown): number {
  if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) throw invalid("The property 'expirationDateTime' must be a date and time.");
  const at = Date.parse(value);
  const now = ctx.clock.now();
  if (at <= now) throw invalid('Subscription expiration can only be in the future.');
  // presence subscriptions live at most 60 minutes
  if (at > now + ctx.maxSubscriptionMs) {
    throw invalid(`Subscription expiration can only be ${Math.round(ctx.maxSubscriptionMs / 60_000)} minutes in the future.`);
  }
  return at;
}

function checkUrl(ctx: SimContext, value: unknown, name: string): string {
  if (typeof value !== 'string' || value === '') throw invalid(`The property '${name}' is required.`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid(`The property '${name}' must be an absolute URL.`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && ctx.allowHttpNotificationUrl)) {
    throw invalid(`The property '${name}' must be an https URL.`);
  }
  return value;
}

function requireDelegated(caller: Caller, operation: string): void {
  // presence change notifications take delegated permission only
  if (caller.kind !== 'user') {
    throw extensionError(403, 'Forbidden', operation, 'The request is not authorized for this user or application.');
  }
}

export function registerSubscriptionRoutes(app: FastifyInstance, ctx: SimContext): void {
  const owned = (request: FastifyRequest, id: string): Subscription => {
    const caller = callerOf(request);
    const sub = ctx.subscriptions.get(id);
    if (!sub || sub.applicationId !== caller.appId.toLowerCase() || (caller.kind === 'user' && sub.creatorId !== caller.userId)) {
      throw new GraphHttpError(404, 'ResourceNotFound', `The subscription '${id}' was not found.`);
    }
    return sub;
  };
  const entity = (sub: Subscription) => ({ '@odata.context': `${ctx.graphBase()}/$metadata#subscriptions/$entity`, ...subscriptionJson(sub) });

  app.post('/v1.0/subscriptions', async (request, reply) => {
    const caller = callerOf(request);
    const b = request.body;
    if (!isRecord(b)) throw invalid('The request body must be a JSON object.');
    const resource = b['resource'];
    if (typeof resource !== 'string' || resource === '') throw invalid("The property 'resource' is required.");
    const ids = presenceResourceIds(resource);
    if (!ids) throw invalid(`Resource '${resource}' is not supported for change notifications by this service.`);
    const changeType = b['changeType'];
    if (typeof changeType !== 'string' || changeType.split(',').some((c) => c.trim() !== 'updated')) {
      throw invalid("The changeType for presence must be 'updated'.");
    }
    const notificationUrl = checkUrl(ctx, b['notificationUrl'], 'notificationUrl');
    const lifecycleNotificationUrl =
      b['lifecycleNotificationUrl'] === undefined || b['lifecycleNotificationUrl'] === null
        ? null
        : checkUrl(ctx, b['lifecycleNotificationUrl'], 'lifecycleNotificationUrl');
    const expiresAt = parseExpiration(ctx, b['expirationDateTime']);
    const clientState = b['clientState'] === undefined || b['clientState'] === null ? null : b['clientState'];
    if (clientState !== null && (typeof clientState !== 'string' || clientState.length > 128)) {
      throw invalid('The clientState must be a string of at most 128 characters.');
    }
    if (ids.length === 0) throw invalid('The resource must name at least one user id.');
    if (ids.length > MAX_PRESENCE_IDS) throw invalid(`The number of ids exceeds the limit of ${MAX_PRESENCE_IDS} per subscription.`);
    for (const id of ids) if (!isGuid(id)) throw invalid(`Invalid user id '${id}': a GUID is expected.`);
    const userIds = [...new Set(ids.map((id) => id.toLowerCase()))];
    const includeResourceData = b['includeResourceData'] === true;
    let encryption: X509Certificate | null = null;
    let encryptionCertificate: string | null = null;
    let encryptionCertificateId: string | null = null;
    if (includeResourceData) {
      const cert = b['encryptionCertificate'];
      const certId = b['encryptionCertificateId'];
      if (typeof cert !== 'string' || cert === '' || typeof certId !== 'string' || certId === '') {
        throw invalid('Subscriptions with includeResourceData need encryptionCertificate and encryptionCertificateId.');
      }
      try {
        const der = cert.includes('BEGIN CERTIFICATE') ? cert : `-----BEGIN CERTIFICATE-----\n${cert.replace(/\s+/g, '')}\n-----END CERTIFICATE-----\n`;
        encryption = new X509Certificate(der);
      } catch {
        encryption = null;
      }
      if (!encryption || encryption.publicKey.asymmetricKeyType !== 'rsa') {
        throw invalid('The encryptionCertificate must be a base64-encoded X.509 certificate with an RSA key.');
      }
      // Graph: change-notifications-with-resource-data (RSA, 2,048 to 4,096 bits; the id at most 128 characters)
      const bits = encryption.publicKey.asymmetricKeyDetails?.modulusLength ?? 0;
      if (bits < 2048 || bits > 4096) throw invalid(`The encryptionCertificate key must have 2048 to 4096 bits (it has ${bits}).`);
      if (certId.length > 128) throw invalid('The encryptionCertificateId must be at most 128 characters.');
      encryptionCertificate = cert;
      encryptionCertificateId = certId;
    }

    requireDelegated(caller, 'Create');
    const self = caller.userId ?? '';
    const mayRead = caller.scopes.has('Presence.Read.All') || ((caller.scopes.has('Presence.Read') || caller.scopes.has('Presence.ReadWrite')) && userIds.every((u) => u === self));
    if (!mayRead) throw extensionError(403, 'Forbidden', 'Create', 'The request is not authorized for this user or application.');

    // one presence subscription per application per signed-in user
    const ownerKey = SubscriptionStore.ownerKey(caller.appId, self);
    const id = newGuid();
    const marker = `pending:${id}`;
    if (!ctx.subscriptions.reserve(ownerKey, marker)) {
      throw extensionError(409, 'Conflict', 'Create', 'A subscription already exists for this application and user. It must be deleted before another can be created.');
    }
    let created = false;
    try {
      for (const url of lifecycleNotificationUrl ? [notificationUrl, lifecycleNotificationUrl] : [notificationUrl]) {
        const v = await ctx.notifier.validate(url);
        if (!v.ok) throw new GraphHttpError(400, 'ValidationError', `Subscription validation request failed. ${v.reason}`);
      }
      const sub: Subscription = {
        id,
        resource,
        changeType: 'updated',
        notificationUrl,
        lifecycleNotificationUrl,
        clientState,
        expiresAt,
        applicationId: caller.appId.toLowerCase(),
        creatorId: self,
        tenantId: caller.tenantId,
        userIds,
        includeResourceData,
        encryptionCertificate,
        encryptionCertificateId,
        encryption,
        latestSupportedTlsVersion: typeof b['latestSupportedTlsVersion'] === 'string' ? b['latestSupportedTlsVersion'] : 'v1_2',
        needsReauthorization: false,
        expiryTask: undefined,
      };
      if (sub.expiresAt <= ctx.clock.now()) throw invalid('Subscription expiration can only be in the future.');
      ctx.subscriptions.add(sub, ownerKey);
      created = true;
      ctx.logger.info({ subscriptionId: id, users: userIds.length, appId: sub.applicationId }, 'graph-sim: subscription created');
      return reply.code(201).send(entity(sub));
    } finally {
      if (!created) ctx.subscriptions.release(ownerKey, marker);
    }
  });

  app.get('/v1.0/subscriptions', async (request) => {
    const caller = callerOf(request);
    const appId = caller.appId.toLowerCase();
    const value = ctx.subscriptions
      .list()
      .filter((s) => s.applicationId === appId && (caller.kind === 'app' || s.creatorId === caller.userId))
      // Graph: subscription-list (clientState is never returned when subscriptions are listed)
      .map((s) => ({ ...subscriptionJson(s), clientState: null }));
    return { '@odata.context': `${ctx.graphBase()}/$metadata#subscriptions`, value };
  });

  app.get('/v1.0/subscriptions/:id', async (request) => entity(owned(request, (request.params as { id: string }).id)));

  app.patch('/v1.0/subscriptions/:id', async (request) => {
    const caller = callerOf(request);
    requireDelegated(caller, 'Update');
    const sub = owned(request, (request.params as { id: string }).id);
    const b = request.body;
    if (!isRecord(b)) throw invalid('The request body must be a JSON object.');
    const expiresAt = b['expirationDateTime'] === undefined ? undefined : parseExpiration(ctx, b['expirationDateTime']);
    let notificationUrl: string | undefined;
    if (b['notificationUrl'] !== undefined && b['notificationUrl'] !== sub.notificationUrl) {
      notificationUrl = checkUrl(ctx, b['notificationUrl'], 'notificationUrl');
      const v = await ctx.notifier.validate(notificationUrl);
      if (!v.ok) throw new GraphHttpError(400, 'ValidationError', `Subscription validation request failed. ${v.reason}`);
    }
    if (ctx.subscriptions.get(sub.id) !== sub) throw new GraphHttpError(404, 'ResourceNotFound', `The subscription '${sub.id}' was not found.`);
    if (notificationUrl !== undefined) sub.notificationUrl = notificationUrl;
    if (expiresAt !== undefined) ctx.subscriptions.renew(sub, expiresAt);
    sub.needsReauthorization = false;
    return entity(sub);
  });

  app.post('/v1.0/subscriptions/:id/reauthorize', async (request, reply) => {
    const caller = callerOf(request);
    requireDelegated(caller, 'Reauthorize');
    const sub = owned(request, (request.params as { id: string }).id);
    sub.needsReauthorization = false;
    return reply.code(204).send();
  });

  app.delete('/v1.0/subscriptions/:id', async (request, reply) => {
    const sub = owned(request, (request.params as { id: string }).id);
    ctx.subscriptions.remove(sub.id);
    ctx.logger.info({ subscriptionId: sub.id }, 'graph-sim: subscription deleted');
    return reply.code(204).send();
  });
}
