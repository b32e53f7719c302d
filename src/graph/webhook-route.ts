/**
 * The Graph webhook as a fastify plugin: POST <path> serves both the
 * validation handshake (?validationToken=) and notification batches. The
 * handlers may come later than the route (the HTTP server starts before the
 * Graph side); until then notifications get 503 (Graph retries them) while
 * validations are answered all the same.
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { validationReply, validationToken, type WebhookHandlers } from './webhook-handler.js';

export interface WebhookRouteOptions {
  /** the path part of graph.webhook.publicUrl */
  path: string;
  handlers: WebhookHandlers | (() => WebhookHandlers | undefined);
  /** largest notification body accepted (default 1 MiB) */
  bodyLimit?: number;
}

export const graphWebhookRoute: FastifyPluginAsync<WebhookRouteOptions> = async (app: FastifyInstance, opts: WebhookRouteOptions) => {
  const current = (): WebhookHandlers | undefined => (typeof opts.handlers === 'function' ? opts.handlers() : opts.handlers);
  // in this plugin's scope only: an empty JSON body is no error (validation posts carry none)
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body);
    if (text.trim() === '') {
      done(null, undefined);
      return;
    }
    try {
      done(null, JSON.parse(text) as unknown);
    } catch {
      const err = new Error('the body is not JSON') as Error & { statusCode: number };
      err.statusCode = 400;
      done(err, undefined);
    }
  });
  app.post(opts.path, { bodyLimit: opts.bodyLimit ?? 1024 * 1024 }, async (request, reply) => {
    const handlers = current();
    // the handshake needs no state: it is answered even before the handlers exist
    const isValidation = validationToken(request.query) !== undefined;
    if (!isValidation && handlers === undefined) return reply.code(503).header('retry-after', '30').send();
    const r = isValidation ? (handlers?.handleValidation(request.query) ?? validationReply(request.query)) : (handlers as WebhookHandlers).handleNotifications(request.body);
    reply.code(r.status).header('x-content-type-options', 'nosniff');
    if (r.contentType !== undefined) reply.header('content-type', r.contentType);
    return reply.send(r.body ?? '');
  });
};
