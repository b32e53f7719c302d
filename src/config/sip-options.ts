/**
 * The config as the SIP stack takes it: listeners with their certificate
 * files read into PEM text, connection hygiene, overload and rate limits.
 */
import { readFileSync } from 'node:fs';
import { EventLoopGuard } from '../sip/overload.js';
import type { SecurityLog } from '../sip/security-log.js';
import type { ListenSpec, SipStackOptions } from '../sip/stack.js';
import type { Logger } from '../util/logger.js';
import type { GatewayConfig } from './schema.js';

/** Read a PEM file named in config, with an error naming what it was for. */
export function readPem(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new Error(`${what}: cannot read ${file} (${code}); give the path of a readable PEM file`);
  }
}

/** A configured listener as the stack takes it: certificate files read into PEM text. */
export function listenSpecOf(l: GatewayConfig['sip']['listen'][number]): ListenSpec {
  const spec: ListenSpec = { protocol: l.transport, address: l.address, port: l.port };
  if (l.path !== undefined) spec.path = l.path;
  if (l.tls !== undefined) {
    spec.tls = {
      cert: readPem(l.tls.certPath, 'certPath'),
      key: readPem(l.tls.keyPath, 'keyPath'),
      requestClientCert: l.tls.requestClientCert,
      ...(l.tls.caPath !== undefined ? { ca: readPem(l.tls.caPath, 'caPath') } : {}),
    };
  }
  return spec;
}

/** Everything SipStack.start takes, from the `sip:` section. */
export function sipStackOptions(config: GatewayConfig, security: SecurityLog, logger: Logger): SipStackOptions {
  const sip = config.sip;
  const conn = sip.connections;
  return {
    listen: sip.listen.map(listenSpecOf),
    security,
    connections: {
      messageTimeoutMs: conn.messageTimeoutSec * 1000,
      strangerIdleMs: conn.strangerIdleSec * 1000,
      maxPerSource: conn.maxPerSource,
    },
    logger,
    maxMessageSize: sip.maxMessageSize,
    maxConnections: sip.maxConnections,
    udpBufferBytes: sip.udpBufferBytes,
    userAgent: sip.userAgent,
    load: sip.overload.maxEventLoopLagMs === 0 ? false : new EventLoopGuard({ maxLagMs: sip.overload.maxEventLoopLagMs }),
    retryAfterSec: sip.overload.retryAfterSec,
    overload: {
      queueDelayMs: sip.overload.queueDelayMs,
      maxWaitMs: sip.overload.maxWaitMs,
      maxRetryAfterSec: sip.overload.maxRetryAfterSec,
    },
    rateLimit: sip.rateLimit.enabled ? { ratePerSec: sip.rateLimit.ratePerSec, burst: sip.rateLimit.burst } : false,
    ...(sip.advertisedHost !== undefined ? { viaHost: sip.advertisedHost } : {}),
  };
}
