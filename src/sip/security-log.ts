/**
 * The security log: one JSON line per failed authentication, refused request,
 * lockout start and end, and connection-limit action, for fail2ban and a SIEM.
 * Its own pino logger at `warn` whatever the general log level; fixed field
 * order (event, source first) so one regular expression finds the source.
 * Never a password, digest response, nonce or token: callers pass names and
 * reasons only, and free text is cut short.
 */
import { pino, type Logger } from 'pino';
import { systemClock, type Clock } from '../util/clock.js';

export type SecurityEvent =
  /** digest credentials that did not verify (wrong user name or password) */
  | 'auth_failed'
  /** a request refused with 403 (not allowed, or locked out after failures) */
  | 'auth_refused'
  | 'lockout_start'
  | 'lockout_end'
  /** a connection refused (per-source or total connection limit) */
  | 'connection_refused'
  /** a connection closed by a hygiene limit (no valid message in time, idle stranger) */
  | 'connection_closed';

export const SECURITY_EVENTS: readonly SecurityEvent[] = [
  'auth_failed',
  'auth_refused',
  'lockout_start',
  'lockout_end',
  'connection_refused',
  'connection_closed',
];

export interface SecurityFields {
  /** source IP address (no port: that is `port`) */
  source: string;
  port?: number;
  transport?: string;
  /** user name tried (from the Authorization header), never a password */
  user?: string;
  method?: string;
  /** short fixed code, also the metrics label: wrong_password, locked_out, per_source_limit, ... */
  reason: string;
  /** lockout scope: source+user pair, or the user from every source */
  scope?: 'source' | 'user';
  seconds?: number;
  failures?: number;
  connectionId?: string;
  callId?: string;
}

export interface SecurityLog {
  record(event: SecurityEvent, fields: SecurityFields): void;
  /** events recorded since start, by event and reason (lines suppressed by the line budget included) */
  counts(): ReadonlyMap<string, number>;
}

export interface SecurityLogOptions {
  /** where the lines go: a stream (tests), "stdout", or a file path (appended) */
  destination?: NodeJS.WritableStream | string;
  /** lines per source address per second before lines are suppressed (and counted on the next line); default 10 */
  linesPerSourcePerSec?: number;
  clock?: Pick<Clock, 'now'>;
}

const MAX_SOURCES = 10_000;
const MAX_TEXT = 64;
/** key of a count: event and reason; \u0000 never occurs in either */
export const COUNT_SEP = '\u0000';

function cut(s: string | undefined): string | undefined {
  if (s === undefined) return undefined;
  return s.length > MAX_TEXT ? `${s.slice(0, MAX_TEXT)}…` : s;
}

export class PinoSecurityLog implements SecurityLog {
  private readonly logger: Logger;
  private readonly budget: number;
  private readonly clock: Pick<Clock, 'now'>;
  private readonly tally = new Map<string, number>();
  /** source → lines in the current second and lines suppressed since the last written */
  private readonly lines = new Map<string, { second: number; n: number; suppressed: number }>();

  constructor(options: SecurityLogOptions = {}) {
    this.budget = Math.max(1, options.linesPerSourcePerSec ?? 10);
    this.clock = options.clock ?? systemClock;
    const opts = {
      level: 'warn',
      base: { log: 'security' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label: string) => ({ level: label }) },
    };
    const d = options.destination;
    if (d === undefined || d === 'stdout') this.logger = pino(opts, pino.destination(1));
    else if (typeof d === 'string') this.logger = pino(opts, pino.destination({ dest: d, append: true, mkdir: true }));
    else this.logger = pino(opts, d);
  }

  record(event: SecurityEvent, f: SecurityFields): void {
    const key = event + COUNT_SEP + f.reason;
    this.tally.set(key, (this.tally.get(key) ?? 0) + 1);
    const suppressed = this.admit(f.source);
    if (suppressed < 0) return;
    // field order is the line's order: event and source first (the fail2ban filter relies on it)
    const line: Record<string, unknown> = { event, source: f.source };
    if (f.port !== undefined) line['port'] = f.port;
    if (f.transport !== undefined) line['transport'] = f.transport;
    if (f.user !== undefined) line['user'] = cut(f.user);
    if (f.method !== undefined) line['method'] = cut(f.method);
    line['reason'] = f.reason;
    if (f.scope !== undefined) line['scope'] = f.scope;
    if (f.seconds !== undefined) line['seconds'] = f.seconds;
    if (f.failures !== undefined) line['failures'] = f.failures;
    if (f.connectionId !== undefined) line['connectionId'] = f.connectionId;
    if (f.callId !== undefined) line['callId'] = cut(f.callId);
    if (suppressed > 0) line['suppressed'] = suppressed;
    this.logger.warn(line, event.replace('_', ' '));
  }

  counts(): ReadonlyMap<string, number> {
    return this.tally;
  }

  /** -1: over this second's budget (suppressed); else how many lines were suppressed before this one. */
  private admit(source: string): number {
    const second = Math.floor(this.clock.now() / 1000);
    let s = this.lines.get(source);
    if (s === undefined) {
      if (this.lines.size >= MAX_SOURCES) {
        const oldest = this.lines.keys().next();
        if (oldest.done !== true) this.lines.delete(oldest.value);
      }
      s = { second, n: 0, suppressed: 0 };
      this.lines.set(source, s);
    } else if (s.second !== second) {
      s.second = second;
      s.n = 0;
      // most recently active last, so the eviction above drops the quietest source
      this.lines.delete(source);
      this.lines.set(source, s);
    }
    if (s.n >= this.budget) {
      s.suppressed++;
      return -1;
    }
    s.n++;
    const before = s.suppressed;
    s.suppressed = 0;
    return before;
  }
}

/** A security log that writes nothing but still counts (tests, library use). */
export class CountingSecurityLog implements SecurityLog {
  readonly events: Array<{ event: SecurityEvent; fields: SecurityFields }> = [];
  private readonly tally = new Map<string, number>();
  /** `keep`: events kept for inspection (the first ones) */
  constructor(private readonly keep = 10_000) {}
  record(event: SecurityEvent, fields: SecurityFields): void {
    const key = event + COUNT_SEP + fields.reason;
    this.tally.set(key, (this.tally.get(key) ?? 0) + 1);
    if (this.events.length < this.keep) this.events.push({ event, fields });
  }
  counts(): ReadonlyMap<string, number> {
    return this.tally;
  }
}
