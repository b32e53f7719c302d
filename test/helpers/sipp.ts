/**
 * Runs SIPp (Debian sip-tester) against the gateway on 127.0.0.1 with a
 * scenario from sip-fixtures/scenarios. Every run is bounded: -timeout with
 * -timeout_error, plus a hard kill a little later. All SIPp sockets (SIP,
 * control) are bound to 127.0.0.1 on free ports; its files go to a temp dir.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import type { Test } from 'tap';
import { repoRoot, startGateway, type GatewayProcess } from './gateway-process.js';
import { freePort } from './ports.js';

export const SIPP_BIN = process.env['SIPP'] ?? '/usr/bin/sipp';

export type SippTransport = 'u1' | 't1' | 'un' | 'tn';

export interface SippOptions {
  /** Scenario name in sip-fixtures/scenarios (without .xml) or a path to an XML file. */
  scenario: string;
  gatewayPort: number;
  /** The gateway's address (default 127.0.0.1; a cluster test's nodes listen on 127.0.0.2, 127.0.0.3). */
  gatewayHost?: string;
  transport: SippTransport;
  /** [service]: the user part of the Request-URI (-s). Default 1001. */
  service?: string;
  /** Calls to run before exiting (-m). Default 1. */
  calls?: number;
  /** New calls per second (-r). Default 10. */
  rate?: number;
  /** With rateIncrease: stop raising at this rate (-rate_max). */
  rateMax?: number;
  /** Raise the rate by this much every rateIntervalSec (-rate_increase). */
  rateIncrease?: number;
  rateIntervalSec?: number;
  /** Most simultaneous calls (-l). */
  limit?: number;
  /** Global timeout in seconds (-timeout ... -timeout_error). Default 30. */
  timeoutSec?: number;
  /** Keywords for the scenario: each becomes `-key name value`, used as [name]. */
  vars?: Record<string, string>;
  /** Lines of an injection file (-inf); the first line is the order (SEQUENTIAL, RANDOM, USER). */
  injection?: string[];
  /** Record response times (-trace_rtt, every call) and return them. */
  traceRtt?: boolean;
  /** Record statistics (-trace_stat) and return the last row. */
  traceStat?: boolean;
  /** Record all messages (-trace_msg) and return them: small runs only. */
  traceMessages?: boolean;
  /** Socket send/receive buffer in bytes (-buff_size; the kernel caps it at net.core.rmem_max). */
  buffSize?: number;
  /** Enable <log> actions (-trace_logs); read them with logLines(). */
  traceLogs?: boolean;
  /** Socket limit for per-call transports (-max_socket). Default 1000. */
  maxSocket?: number;
  extraArgs?: string[];
}

export interface SippResult {
  /** SIPp exit code: 0 all calls succeeded, 1 some failed, 97 internal exit, 99 no calls, 255 fatal; -1 killed. */
  code: number;
  stdout: string;
  stderr: string;
  /** Text of the -trace_err error log (unexpected messages, failed checks), '' when none. */
  errors: string;
  /** With traceRtt: response times in ms, in order. */
  rtt?: number[];
  /** With traceRtt: when each of those responses came, ms since SIPp started. */
  rttTimes?: number[];
  /** With traceLogs: the <log> lines. */
  logs?: string[];
  /** With traceStat: the last statistics row, by column name. */
  stats?: Record<string, string>;
  /** With traceMessages: the message log. */
  messages?: string;
  /** Wall time from spawn to exit. */
  durationMs: number;
  /** SIPp's process id: call n has Call-ID `n-<pid>@127.0.0.1` (default -cid_str). */
  pid: number;
  /** The command line, for failure messages. */
  command: string;
}

export interface SippRun {
  pid: number;
  /** Resolves when SIPp has exited and its files have been read. */
  done: Promise<SippResult>;
  /** Current lines of the -trace_logs file (needs traceLogs). */
  logLines(): string[];
  /**
   * Resolves once the -trace_logs file has at least `count` lines (starting with `prefix` when given);
   * rejects after timeoutMs or when SIPp exits first.
   */
  waitForLogLines(count: number, timeoutMs: number, prefix?: string): Promise<void>;
  /** Ask SIPp to finish (SIGUSR1: no new calls, current calls end). */
  softStop(): void;
  /** Kill SIPp now. */
  kill(): void;
}

export class SippMissingError extends Error {}

/** SIPp processes still running, killed if this process exits without waiting for them. */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  running.add(child);
  child.once('close', () => running.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const c of running) c.kill('SIGKILL');
  });
}

/** Throws (so the test fails, never skips) when SIPp is not installed. */
export function assertSippInstalled(): void {
  try {
    accessSync(SIPP_BIN, constants.X_OK);
  } catch {
    throw new SippMissingError(
      `SIPp is not installed at ${SIPP_BIN}, and the interop tests need it. Run the README's test ` +
        'command, ./scripts/test.sh, which installs it (Debian package sip-tester) and then runs every test.',
    );
  }
}

export function scenarioPath(scenario: string): string {
  if (isAbsolute(scenario) || scenario.endsWith('.xml')) return scenario;
  return join(repoRoot(), 'sip-fixtures', 'scenarios', `${scenario}.xml`);
}

function readIfExists(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Rows of a -trace_rtt file: `date_ms;response_time_ms;rtd_no` after a header line. */
export function parseRttRows(text: string): { at: number; ms: number }[] {
  const out: { at: number; ms: number }[] = [];
  for (const line of text.split('\n')) {
    const parts = line.split(';');
    if (parts.length < 2 || parts[0] === '' || parts[1] === '') continue;
    const at = Number(parts[0]);
    const ms = Number(parts[1]);
    if (Number.isFinite(at) && Number.isFinite(ms)) out.push({ at, ms });
  }
  return out;
}

/** Response times (ms) from a -trace_rtt file. */
export function parseRttFile(text: string): number[] {
  return parseRttRows(text).map((r) => r.ms);
}

/** The last row of a -trace_stat CSV (`;`-separated, header first). */
export function parseStatFile(text: string): Record<string, string> | undefined {
  const lines = text.split('\n').filter((l) => l.trim().length > 0);
  const header = lines[0];
  const last = lines[lines.length - 1];
  if (header === undefined || last === undefined || lines.length < 2) return undefined;
  const names = header.split(';');
  const values = last.split(';');
  const out: Record<string, string> = {};
  names.forEach((name, i) => {
    if (name.length > 0) out[name] = values[i] ?? '';
  });
  return out;
}

export async function startSipp(options: SippOptions): Promise<SippRun> {
  assertSippInstalled();
  const scenario = scenarioPath(options.scenario);
  if (!existsSync(scenario)) throw new Error(`SIPp scenario not found: ${scenario}`);
  const work = await mkdtemp(join(tmpdir(), 'pg-sipp-'));
  const localPort = await freePort();
  const controlPort = await freePort();
  const timeoutSec = options.timeoutSec ?? 30;

  const args = [
    `${options.gatewayHost ?? '127.0.0.1'}:${options.gatewayPort}`,
    '-sf', scenario,
    '-t', options.transport,
    '-i', '127.0.0.1',
    '-p', String(localPort),
    '-ci', '127.0.0.1',
    '-cp', String(controlPort),
    '-s', options.service ?? '1001',
    '-m', String(options.calls ?? 1),
    '-r', String(options.rate ?? 10),
    '-max_socket', String(options.maxSocket ?? 1000),
    '-nostdin',
    '-timeout', `${timeoutSec}s`,
    '-timeout_error',
    '-trace_err', '-error_file', join(work, 'errors.log'),
  ];
  if (options.rateIncrease !== undefined) {
    args.push('-rate_increase', String(options.rateIncrease));
    if (options.rateIntervalSec !== undefined) args.push('-rate_interval', `${options.rateIntervalSec}s`);
  }
  if (options.rateMax !== undefined) args.push('-rate_max', String(options.rateMax));
  if (options.limit !== undefined) args.push('-l', String(options.limit));
  if (options.buffSize !== undefined) args.push('-buff_size', String(options.buffSize));
  if (options.traceRtt === true) args.push('-trace_rtt', '-rtt_freq', '1');
  if (options.traceStat === true) args.push('-trace_stat', '-stf', join(work, 'stat.csv'), '-fd', '1');
  if (options.traceMessages === true) args.push('-trace_msg', '-message_file', join(work, 'messages.log'));
  if (options.traceLogs === true) args.push('-trace_logs', '-log_file', join(work, 'logs.log'));
  if (options.injection !== undefined) {
    const inf = join(work, 'injection.csv');
    await writeFile(inf, options.injection.join('\n') + '\n');
    args.push('-inf', inf);
  }
  for (const [name, value] of Object.entries(options.vars ?? {})) args.push('-key', name, value);
  args.push(...(options.extraArgs ?? []));

  const command = [SIPP_BIN, ...args].join(' ');
  const started = Date.now();
  const child = spawn(SIPP_BIN, args, { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => err.push(b));

  let exitedFlag = false;
  const exited = new Promise<number>((resolve) => {
    const hardKill = setTimeout(() => child.kill('SIGKILL'), (timeoutSec + 15) * 1000);
    child.once('error', (e) => {
      err.push(Buffer.from(`spawn error: ${e.message}\n`));
      clearTimeout(hardKill);
      exitedFlag = true;
      resolve(-1);
    });
    child.once('close', (code) => {
      clearTimeout(hardKill);
      exitedFlag = true;
      resolve(code ?? -1);
    });
  });

  const logFile = join(work, 'logs.log');
  const logLines = (): string[] => readIfExists(logFile).split('\n').filter((l) => l.length > 0);

  const done = exited.then(async (code): Promise<SippResult> => {
    const durationMs = Date.now() - started;
    const result: SippResult = {
      code,
      stdout: Buffer.concat(out).toString('utf8'),
      stderr: Buffer.concat(err).toString('utf8'),
      errors: readIfExists(join(work, 'errors.log')),
      durationMs,
      pid: child.pid ?? -1,
      command,
    };
    if (options.traceRtt === true) {
      const rttFile = readdirSync(work).find((f) => f.endsWith('_rtt.csv'));
      const rows = rttFile === undefined ? [] : parseRttRows(readIfExists(join(work, rttFile)));
      result.rtt = rows.map((r) => r.ms);
      result.rttTimes = rows.map((r) => r.at);
    }
    if (options.traceStat === true) {
      const stats = parseStatFile(readIfExists(join(work, 'stat.csv')));
      if (stats !== undefined) result.stats = stats;
    }
    if (options.traceMessages === true) result.messages = readIfExists(join(work, 'messages.log'));
    if (options.traceLogs === true) result.logs = logLines();
    await rm(work, { recursive: true, force: true });
    return result;
  });

  const countLines = (prefix: string | undefined): number =>
    prefix === undefined ? logLines().length : logLines().filter((l) => l.startsWith(prefix)).length;
  const waitForLogLines = async (count: number, timeoutMs: number, prefix?: string): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const have = countLines(prefix);
      if (have >= count) return;
      if (exitedFlag) throw new Error(`SIPp exited before logging ${count} lines (got ${have})`);
      if (Date.now() > deadline) throw new Error(`SIPp logged ${have} of ${count} lines within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  return {
    pid: child.pid ?? -1,
    done,
    logLines,
    waitForLogLines,
    softStop: () => {
      if (!exitedFlag) child.kill('SIGUSR1');
    },
    kill: () => {
      if (!exitedFlag) child.kill('SIGKILL');
    },
  };
}

/** Runs SIPp to completion. */
export async function runSipp(options: SippOptions): Promise<SippResult> {
  const run = await startSipp(options);
  return run.done;
}

/** A failure message with everything needed to see why a SIPp run failed. */
export function describeSipp(result: SippResult): string {
  const tail = (s: string, n: number): string => (s.length > n ? '…' + s.slice(s.length - n) : s);
  return [
    `sipp exit code ${result.code}`,
    `command: ${result.command}`,
    `--- error log ---\n${tail(result.errors, 6000)}`,
    `--- stderr ---\n${tail(result.stderr, 3000)}`,
    result.messages === undefined ? '' : `--- messages ---\n${tail(result.messages, 8000)}`,
    `--- screen ---\n${tail(result.stdout, 3000)}`,
  ].join('\n');
}

/** The Call-ID SIPp gives call number `n` (1-based) with the default -cid_str. */
export function sippCallId(result: Pick<SippResult, 'pid'>, n = 1): string {
  return `${n}-${result.pid}@127.0.0.1`;
}

/** Asserts SIPp exit code 0; on failure prints everything describeSipp gathers. */
export function expectSippOk(t: Pick<Test, 'equal' | 'comment'>, result: SippResult, what: string): boolean {
  const ok = result.code === 0;
  if (!ok) t.comment(describeSipp(result));
  return t.equal(result.code, 0, `${what}: SIPp exit code 0`);
}

/** What a test file's hooks need of tap (the root `t`). */
export interface TapHooks {
  before(fn: () => Promise<void>): unknown;
  teardown(fn: () => Promise<void>): unknown;
}

/**
 * One gateway process (default users and config) for a whole interop test
 * file: SIPp checked and the gateway started in `before`, stopped in `teardown`.
 */
export function gatewayFixture(tap: TapHooks): () => GatewayProcess {
  let gateway: GatewayProcess | undefined;
  tap.before(async () => {
    assertSippInstalled();
    gateway = await startGateway();
  });
  tap.teardown(async () => {
    await gateway?.stop();
  });
  return () => {
    if (gateway === undefined) throw new Error('gateway not started');
    return gateway;
  };
}
