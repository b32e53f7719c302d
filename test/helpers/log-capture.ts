/** A real pino logger whose JSON lines are kept for a test to look at. */
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/util/logger.js';

export function capturingLogger(level = 'info'): { lines: Array<Record<string, unknown>>; logger: Logger } {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l.length > 0) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { lines, logger: createLogger({ level, destination }) };
}
