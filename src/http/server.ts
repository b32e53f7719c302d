/**
 * The gateway's HTTP side (fastify): health, the Microsoft Graph webhook,
 * Prometheus metrics, the admin API and the diagnostics page.
 * Graph only delivers to https, so production runs it with a certificate (or
 * behind a TLS-terminating reverse proxy that forwards to it).
 */
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';
import type { Logger } from '../util/logger.js';
import type { WebhookHandlers } from '../graph/webhook-handler.js';
import { graphWebhookRoute } from '../graph/webhook-route.js';
import { adminApi } from './admin.js';
import type { AdminSource } from './admin-source.js';
import { diagnosticsPage } from './diagnostics-page.js';
import type { Metrics } from './metrics.js';
import type { WebhookInfo } from './rows.js';
import { TokenCheck } from './token.js';

export interface HttpServerOptions {
  address: string;
  port: number;
  /** PEM certificate and key (paths or contents) for https. */
  tls?: { cert: string; key: string };
  logger: Logger;
  /** Mount the Graph webhook at this path. */
  graphWebhook?: { path: string; handlers: () => WebhookHandlers | undefined };
  /** Readiness: every listed component up. */
  ready?: () => Record<string, boolean>;
  /** GET /metrics (Prometheus text); with `token`, only for `Authorization: Bearer <token>`. */
  metrics?: { metrics: Metrics; token?: string };
  /** The admin API under /api and the diagnostics page at / and /diagnostics. */
  admin?: { token: string; source: AdminSource; heartbeatMs?: number; statusMs?: number };
}

export interface HttpServer {
  /** e.g. https://127.0.0.1:8443 */
  readonly origin: string;
  readonly port: number;
  close(): Promise<void>;
}

function pem(value: string): string {
  return value.includes('-----BEGIN') ? value : readFileSync(value, 'utf8');
}

export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const app = Fastify({
    ...(options.tls !== undefined ? { https: { cert: pem(options.tls.cert), key: pem(options.tls.key) } } : {}),
    // Per-request lines would drown the log (Graph posts often); errors still show.
    loggerInstance: options.logger.child({ component: 'http' }, { level: 'warn' }),
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const parts = options.ready?.() ?? {};
    const ok = Object.values(parts).every(Boolean);
    return reply.code(ok ? 200 : 503).send({ ready: ok, ...parts });
  });
  // Webhook reachability: Graph's deliveries (and validation requests) as they are answered.
  const hook: WebhookInfo | undefined = options.graphWebhook !== undefined ? { path: options.graphWebhook.path, deliveries: 0 } : undefined;
  if (hook !== undefined) {
    app.addHook('onResponse', async (request, reply) => {
      if (request.routeOptions.url !== hook.path) return;
      hook.deliveries++;
      hook.lastDeliveryAt = Date.now();
      hook.lastStatus = reply.statusCode;
      const validation = typeof (request.query as Record<string, unknown> | undefined)?.['validationToken'] === 'string';
      options.metrics?.metrics.webhookDelivery(validation ? 'validation' : reply.statusCode < 300 ? 'accepted' : 'rejected');
    });
  }
  if (options.metrics !== undefined) {
    const { metrics, token } = options.metrics;
    const check = token !== undefined ? new TokenCheck(token) : undefined;
    app.get('/metrics', async (request, reply) => {
      if (check !== undefined && !check.matches(TokenCheck.fromHeader(request.headers.authorization))) {
        return reply.code(401).header('www-authenticate', 'Bearer realm="presence-gateway metrics"').send({ error: 'unauthorized' });
      }
      return reply.type(metrics.contentType).send(await metrics.text());
    });
  }
  if (options.admin !== undefined) {
    const admin = options.admin;
    await app.register(adminApi, {
      prefix: '/api',
      source: admin.source,
      token: admin.token,
      ...(hook !== undefined ? { webhook: () => hook } : {}),
      ...(admin.heartbeatMs !== undefined ? { heartbeatMs: admin.heartbeatMs } : {}),
      ...(admin.statusMs !== undefined ? { statusMs: admin.statusMs } : {}),
    });
    await app.register(diagnosticsPage);
  }
  if (options.graphWebhook !== undefined) {
    await app.register(graphWebhookRoute, { path: options.graphWebhook.path, handlers: options.graphWebhook.handlers });
  }
  await app.listen({ host: options.address, port: options.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : options.port;
  const host = options.address.includes(':') ? `[${options.address}]` : options.address;
  return {
    port,
    origin: `${options.tls !== undefined ? 'https' : 'http'}://${host}:${port}`,
    close: () => app.close(),
  };
}
