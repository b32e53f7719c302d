import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

/**
 * The process logger: one JSON line an event. Secrets never go in; redact the
 * usual suspects anyway in case a config object is logged whole.
 */
export function createLogger(options: { level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const opts: LoggerOptions = {
    level: options.level ?? process.env['LOG_LEVEL'] ?? 'info',
    base: { app: 'presence-gateway' },
    redact: {
      paths: ['*.password', '*.secret', '*.clientSecret', '*.token', '*.authorization', 'password', 'secret'],
      censor: '[redacted]',
    },
  };
  return options.destination ? pino(opts, options.destination) : pino(opts);
}

/** A logger that writes nothing, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
