/**
 * The gateway's HTTP side (fastify): health and the Microsoft Graph webhook.
 * Graph only delivers to https, so production runs it with a certificate (or
 * behind a TLS-terminating reverse proxy that forwards to it).
 */
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';
import type { Logger } from '../util/logger.js';
import type { WebhookHandlers } from '../graph/webhook-handler.js';
import { graphWebhookRoute } from '../graph/webhook-route.js';

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
