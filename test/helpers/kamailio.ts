/**
 * A real Kamailio 5.6 presence server (Debian packages kamailio, kamailio-presence-modules,
 * kamailio-sqlite-modules) for interop tests and the benchmark's kamailio phase, started and
 * stopped by the caller.
 *
 * Each instance gets a temp folder holding kamailio.cfg (from
 * sip-fixtures/kamailio/kamailio.cfg.tpl), a SQLite database made from Kamailio's own
 * schema files (version table + presence tables) in WAL mode, the pid file and the
 * runtime dir. Kamailio listens on UDP and TCP 127.0.0.1:<port>, runs in the foreground
 * (-DD -E), sized by a KamailioTuning (INTEROP_TUNING: one UDP and one TCP worker, the
 * defaults' memory; BENCH_TUNING for the benchmark), and logs to stderr, kept in logs().
 *
 * What a restart keeps (same port, same database): publications (presentity table) and
 * subscriptions (write-through to active_watchers, subs_db_mode 1), see the template.
 *
 * No process is left behind: Kamailio runs under a small sh watchdog in its own process
 * group, which reads its stdin; when stop() closes that pipe, or this test process dies
 * in any way (the pipe closes with it), the watchdog sends SIGTERM to Kamailio and
 * SIGKILLs the whole group if it has not gone within 4 s. A process-exit hook also
 * SIGKILLs every group still running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { repoRoot } from './gateway-process.js';
import { freePort } from './ports.js';
import { udpRequest } from './sip-udp.js';
import { describeSipp, runSipp, startSipp, type SippResult, type SippRun, type SippTransport } from './sipp.js';

export const KAMAILIO_BIN = process.env['KAMAILIO'] ?? '/usr/sbin/kamailio';

/** Where Kamailio's SQLite schema files may be (env KAMAILIO_SCHEMA_DIR first). */
const SCHEMA_DIRS = [
  process.env['KAMAILIO_SCHEMA_DIR'],
  '/usr/share/kamailio/db_sqlite',
  '/usr/local/share/kamailio/db_sqlite',
].filter((d): d is string => d !== undefined && d.length > 0);

/** Schema files, in order: the version table first, then the presence tables. */
const SCHEMA_FILES = ['standard-create.sql', 'presence-create.sql'];

export interface KamailioOptions {
  /** The presence domain: request URIs sip:<user>@<domain> are served (an alias of the server). */
  domain: string;
  /** UDP and TCP port on 127.0.0.1; default a free one (retried on a bind race). */
  port?: number;
  /** Kamailio `debug` level: 2 info (default; the route logs every request), 3 debug. */
  debug?: number;
  /** How long to wait for Kamailio to answer OPTIONS; default 10000 ms. */
  readyTimeoutMs?: number;
  /** Keep at most this many log lines (oldest dropped); default 50000. */
  maxLogLines?: number;
  /** Processes, memory and subscription storage; default INTEROP_TUNING. */
  tuning?: KamailioTuning;
}

/** How Kamailio is sized and keeps its state (filled into the template and the command line). */
export interface KamailioTuning {
  /** UDP worker processes (`children`); TCP workers are the same number. */
  children: number;
  /** Shared memory in MB (-m): transactions and the subscription/publication hash tables. */
  shmMb: number;
  /** Private memory per process in MB (-M). */
  pkgMb: number;
  /** presence `subs_db_mode`: 1 write-through, 2 write-back every dbUpdatePeriodSec. */
  subsDbMode: 1 | 2;
  /** presence `db_update_period` in s (write-back flush; with mode 1 only the expiry sweep). */
  dbUpdatePeriodSec: number;
  /** presence `clean_period` in s (expired publications and pending watchers deleted). */
  cleanPeriodSec: number;
  /** Folder for the SQLite file; default the instance's temp folder. */
  dbDir?: string;
}

/**
 * The interop tests' Kamailio: one UDP and one TCP worker, write-through subscriptions (a
 * restart, even after SIGKILL, finds every subscription in active_watchers), a 5 s clean-up.
 */
export const INTEROP_TUNING: KamailioTuning = { children: 1, shmMb: 64, pkgMb: 8, subsDbMode: 1, dbUpdatePeriodSec: 100, cleanPeriodSec: 5 };

/**
 * The benchmark's Kamailio (bench/run.ts, kamailio phase), sized as an administrator would size
 * a presence server for tens of thousands of subscriptions on this 2-core machine:
 * - 4 UDP workers: both cores busy while a worker waits for the SQLite write lock (SQLite lets
 *   one writer at a time; the template gives every worker a busy timeout, so they queue).
 * - 512 MB shared memory (default 64 MB): the rate steps leave 75,000 subscriptions of
 *   Expires 3600 in the hash table, and a fan-out to 10,000 watchers holds 10,000 NOTIFY
 *   transactions at once; with 64 MB both ran out ("could not allocate shared memory").
 * - 64 MB private memory per process (default 8 MB): the worker that handles the PUBLISH
 *   copies all 10,000 watcher dialogs into private memory to build their NOTIFYs.
 * - subs_db_mode 1 (write-through), not 2 (write-back): in 5.6 the write-back flush runs in a
 *   timer process whose SQLite connection cannot be given a busy timeout or synchronous=NORMAL
 *   (only the SIP workers run the script that sets them), so its per-row inserts fsync and fail
 *   "database is locked" against the workers. Measured here: mode 2 with 4 workers lost 970 of
 *   4,500 subscriptions at 1,500/s, mode 1 none. Write-through with synchronous=NORMAL in WAL is
 *   the gateway's durability (its SQLite store: WAL, synchronous=NORMAL, batched every 50 ms).
 * - clean_period and db_update_period at their defaults (100 s): nothing expires during a run.
 */
export const BENCH_TUNING: KamailioTuning = { children: 4, shmMb: 512, pkgMb: 64, subsDbMode: 1, dbUpdatePeriodSec: 100, cleanPeriodSec: 100 };

export interface Kamailio {
  readonly port: number;
  readonly domain: string;
  /** The SQLite database file (kept across restarts). */
  readonly dbPath: string;
  /** The temp folder with kamailio.cfg, the database and the runtime files. */
  readonly dir: string;
  /** Log lines so far (stderr and stdout, every run; a restart adds a `--- restart ---` line). */
  logs(): string[];
  /** The running main process id, undefined while stopped. */
  pid(): number | undefined;
  /**
   * Stop and start again on the same port with the same database; resolves when it answers
   * OPTIONS. `whileDown` runs between the two (an outage in which peers get no answer).
   */
  restart(options?: { whileDown?: () => Promise<void> }): Promise<void>;
  /** Stop Kamailio (SIGTERM, its whole process group SIGKILLed after 4 s) and remove the temp folder. Idempotent. */
  stop(): Promise<void>;
  /**
   * Resolves with the first log line at index >= `from` (default 0) that `re` matches,
   * already logged or to come; rejects after timeoutMs.
   */
  waitForLog(re: RegExp, timeoutMs: number, from?: number): Promise<string>;
  /** Rows of a table of the database (read while Kamailio runs; WAL allows it). */
  query(sql: string): Record<string, unknown>[];
}

export class KamailioMissingError extends Error {}

/** Throws (so the test fails, never skips) when Kamailio or its presence/SQLite modules are not installed. */
export function assertKamailioInstalled(): void {
  const fix =
    'Run the README\'s test command, ./scripts/test.sh, which installs the Debian packages kamailio, ' +
    'kamailio-presence-modules and kamailio-sqlite-modules and then runs every test.';
  try {
    accessSync(KAMAILIO_BIN, constants.X_OK);
  } catch {
    throw new KamailioMissingError(`Kamailio is not installed at ${KAMAILIO_BIN}, and the Kamailio interop tests need it. ${fix}`);
  }
  if (schemaDir() === undefined) {
    throw new KamailioMissingError(
      `Kamailio's SQLite schema (${SCHEMA_FILES.join(', ')}) was not found in ${SCHEMA_DIRS.join(' or ')}. ${fix}`,
    );
  }
}

function schemaDir(): string | undefined {
  return SCHEMA_DIRS.find((d) => SCHEMA_FILES.every((f) => existsSync(join(d, f))));
}

/** The config template with its placeholders filled in. */
export function renderKamailioConfig(values: { port: number; domain: string; dbPath: string; debug?: number; tuning?: KamailioTuning }): string {
  const template = readFileSync(join(repoRoot(), 'sip-fixtures', 'kamailio', 'kamailio.cfg.tpl'), 'utf8');
  const tuning = values.tuning ?? INTEROP_TUNING;
  const text = template
    .replaceAll('@PORT@', String(values.port))
    .replaceAll('@DOMAIN@', values.domain)
    .replaceAll('@DB_PATH@', values.dbPath)
    .replaceAll('@CHILDREN@', String(tuning.children))
    .replaceAll('@SUBS_DB_MODE@', String(tuning.subsDbMode))
    .replaceAll('@DB_UPDATE_PERIOD@', String(tuning.dbUpdatePeriodSec))
    .replaceAll('@CLEAN_PERIOD@', String(tuning.cleanPeriodSec));
  return values.debug === undefined ? text : text.replace(/^debug=\d+$/m, `debug=${values.debug}`);
}

/**
 * Creates the SQLite database from Kamailio's schema files and switches it to WAL.
 * SQLite stores that journal mode in the file, so Kamailio's connections use it without a
 * modparam (db_sqlite's db_set_journal_mode would race at start-up, see the template).
 * Throws when WAL could not be set.
 */
export function createKamailioDatabase(dbPath: string): void {
  const dir = schemaDir();
  if (dir === undefined) throw new KamailioMissingError(`Kamailio's SQLite schema files not found in ${SCHEMA_DIRS.join(', ')}`);
  const db = new Database(dbPath);
  try {
    const mode: unknown = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') throw new Error(`SQLite refused WAL for ${dbPath} (journal_mode ${String(mode)})`);
    for (const file of SCHEMA_FILES) db.exec(readFileSync(join(dir, file), 'utf8'));
  } finally {
    db.close();
  }
}

/** Watchdog groups still running, SIGKILLed if this process exits without stopping them. */
const liveGroups = new Set<number>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const pgid of liveGroups) killGroup(pgid, 'SIGKILL');
  });
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

/*
 * Runs "$@" (kamailio) in the background; a second background job waits for stdin to
 * close, then stops Kamailio (SIGTERM, up to 4 s) and kills the whole process group.
 * The shell prints Kamailio's pid first, so the helper knows which process is the server.
 */
const WATCHDOG = [
  'exec 3<&0', // a background job's stdin is /dev/null: keep the pipe as fd 3
  '"$@" </dev/null 3<&- &',
  'k=$!',
  'echo "pg-kam-pid $k"',
  '{ cat <&3 >/dev/null; kill -TERM "$k" 2>/dev/null; i=0;',
  '  while kill -0 "$k" 2>/dev/null && [ "$i" -lt 40 ]; do sleep 0.1; i=$((i+1)); done;',
  '  kill -KILL 0; } >/dev/null 2>&1 &',
  'exec 3<&-',
  'wait "$k"',
].join('\n');

function tcpAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

interface Run {
  child: ChildProcess;
  pgid: number;
  kamPid: number | undefined;
  exited: Promise<void>;
  hasExited(): boolean;
}

/** Starts a Kamailio presence server and waits until it answers OPTIONS over UDP and accepts TCP. */
export async function startKamailio(options: KamailioOptions): Promise<Kamailio> {
  assertKamailioInstalled();
  const tuning = options.tuning ?? INTEROP_TUNING;
  const dir = await mkdtemp(join(tmpdir(), 'pg-kamailio-'));
  const dbFolder = tuning.dbDir === undefined ? dir : await mkdtemp(join(tuning.dbDir, 'pg-kamailio-db-'));
  const removeFolders = async (): Promise<void> => {
    await rm(dir, { recursive: true, force: true });
    if (dbFolder !== dir) await rm(dbFolder, { recursive: true, force: true });
  };
  const dbPath = join(dbFolder, 'presence.db');
  const runDir = join(dir, 'run');
  await mkdir(runDir);
  createKamailioDatabase(dbPath);

  const maxLines = options.maxLogLines ?? 50_000;
  const lines: string[] = [];
  let dropped = 0;
  const waiters = new Set<{ re: RegExp; from: number; resolve: (line: string) => void }>();
  const push = (line: string): void => {
    lines.push(line);
    if (lines.length > maxLines) {
      lines.shift();
      dropped++;
    }
    const index = dropped + lines.length - 1;
    for (const w of waiters) {
      if (index >= w.from && w.re.test(line)) {
        waiters.delete(w);
        w.resolve(line);
      }
    }
  };
  const splitter = (onLine: (line: string) => void) => {
    let rest = '';
    return (chunk: Buffer): void => {
      rest += chunk.toString('utf8');
      let nl = rest.indexOf('\n');
      while (nl >= 0) {
        const line = rest.slice(0, nl);
        rest = rest.slice(nl + 1);
        if (line.length > 0) onLine(line);
        nl = rest.indexOf('\n');
      }
    };
  };

  let port = options.port ?? (await freePort());
  const configPath = join(dir, 'kamailio.cfg');
  let current: Run | undefined;

  const launch = async (): Promise<Run> => {
    await writeFile(configPath, renderKamailioConfig({ port, domain: options.domain, dbPath, tuning, ...(options.debug !== undefined ? { debug: options.debug } : {}) }));
    const args = ['-f', configPath, '-DD', '-E', '-P', join(runDir, 'kamailio.pid'), '-w', dir, '-Y', runDir, '-m', String(tuning.shmMb), '-M', String(tuning.pkgMb)];
    const child = spawn('/bin/sh', ['-c', WATCHDOG, 'pg-kamailio', KAMAILIO_BIN, ...args], {
      cwd: dir,
      detached: true, // its own process group, so the watchdog can kill the whole group
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    if (child.pid === undefined) {
      await new Promise<void>((resolve) => child.once('error', () => resolve()));
      throw new Error(`could not start ${KAMAILIO_BIN} under /bin/sh`);
    }
    const pgid = child.pid;
    liveGroups.add(pgid);
    installExitHook();
    let exitedFlag = false;
    const run: Run = {
      child,
      pgid,
      kamPid: undefined,
      exited: new Promise<void>((resolve) => {
        child.once('close', () => {
          exitedFlag = true;
          liveGroups.delete(pgid);
          resolve();
        });
      }),
      hasExited: () => exitedFlag,
    };
    child.stdin?.on('error', () => undefined);
    child.stdout?.on(
      'data',
      splitter((line) => {
        const m = /^pg-kam-pid (\d+)$/.exec(line);
        if (m?.[1] !== undefined) run.kamPid = Number(m[1]);
        else push(line);
      }),
    );
    child.stderr?.on('data', splitter(push));
    return run;
  };

  const halt = async (run: Run): Promise<void> => {
    if (!run.hasExited()) {
      run.child.stdin?.end(); // the watchdog stops Kamailio, then kills the group
      const hard = setTimeout(() => killGroup(run.pgid, 'SIGKILL'), 6000);
      await run.exited;
      clearTimeout(hard);
    }
    killGroup(run.pgid, 'SIGKILL'); // children of a crashed main process, if any
    liveGroups.delete(run.pgid);
  };

  const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
  const waitReady = async (run: Run): Promise<void> => {
    const deadline = Date.now() + readyTimeoutMs;
    for (;;) {
      if (run.hasExited()) throw new Error(`kamailio exited during start-up\n${tail(lines)}`);
      let answered = false;
      try {
        const r = await udpRequest({ method: 'OPTIONS', user: 'ready-probe', port, timeoutMs: 250 });
        answered = r.status === 200;
      } catch {
        answered = false;
      }
      if (answered && (await tcpAccepts(port))) return;
      if (Date.now() > deadline) throw new Error(`kamailio did not answer OPTIONS on 127.0.0.1:${port} within ${readyTimeoutMs} ms\n${tail(lines)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const startRun = async (mayChangePort: boolean): Promise<Run> => {
    for (let attempt = 1; ; attempt++) {
      const mark = dropped + lines.length;
      const run = await launch();
      try {
        await waitReady(run);
        return run;
      } catch (err) {
        await halt(run);
        const bindRace = lines.slice(Math.max(0, mark - dropped)).some((l) => /Address already in use|bind\(/i.test(l));
        if (!mayChangePort || !bindRace || attempt >= 3) throw err;
        port = await freePort();
      }
    }
  };

  try {
    current = await startRun(options.port === undefined);
  } catch (err) {
    await removeFolders();
    throw err;
  }

  let stopping: Promise<void> | undefined;
  const kamailio: Kamailio = {
    get port() {
      return port;
    },
    domain: options.domain,
    dbPath,
    dir,
    logs: () => lines.slice(),
    pid: () => (current === undefined || current.hasExited() ? undefined : current.kamPid),
    async restart(restartOptions) {
      if (stopping !== undefined) throw new Error('kamailio was stopped');
      if (current !== undefined) await halt(current);
      current = undefined;
      push('--- restart ---');
      if (restartOptions?.whileDown !== undefined) await restartOptions.whileDown();
      if (stopping !== undefined) return;
      const run = await startRun(false);
      if (stopping !== undefined) {
        await halt(run); // stop() was called while this run was starting
        return;
      }
      current = run;
    },
    stop() {
      stopping ??= (async () => {
        if (current !== undefined) await halt(current);
        current = undefined;
        await removeFolders();
      })();
      return stopping;
    },
    waitForLog(re, timeoutMs, from = 0) {
      const start = Math.max(0, from - dropped);
      for (let i = start; i < lines.length; i++) {
        const line = lines[i];
        if (line !== undefined && re.test(line)) return Promise.resolve(line);
      }
      return new Promise<string>((resolve, reject) => {
        const waiter = {
          re,
          from,
          resolve: (line: string) => {
            clearTimeout(timer);
            resolve(line);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`no kamailio log line matching ${String(re)} within ${timeoutMs} ms\n${tail(lines)}`));
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
    query(sql) {
      const db = new Database(dbPath, { fileMustExist: true });
      try {
        return db.prepare(sql).all() as Record<string, unknown>[];
      } finally {
        db.close();
      }
    },
  };
  return kamailio;
}

function tail(lines: readonly string[], n = 40): string {
  return `--- kamailio log (last ${Math.min(n, lines.length)} lines) ---\n${lines.slice(-n).join('\n')}`;
}

/** Polls `read` every 50 ms until `ok` holds; returns the last value; throws with it after timeoutMs. */
async function until<T>(read: () => T, ok: (value: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms (last: ${JSON.stringify(v)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A SIPp watcher subscribed at Kamailio (sip-fixtures/scenarios/kam-watch.xml), answering NOTIFYs until stopped. */
export interface KamWatcher {
  run: SippRun;
  /** Its `notify otp=... dialog=... sub=...` lines so far, one per NOTIFY. */
  lines(): string[];
  /** Resolves with the index of the first line after index `after` that `match` accepts. */
  waitFor(match: (line: string) => boolean, timeoutMs: number, what: string, after?: number): Promise<number>;
  /** Kill SIPp and return its result. */
  stop(): Promise<SippResult>;
}

export const isOnThePhone = (line: string): boolean => line.includes('otp=on-the-phone');
export const isNotOnThePhone = (line: string): boolean => line.startsWith('notify otp= ');
export const isConfirmedDialog = (line: string): boolean => line.includes('dialog=confirmed');
export const hasNoLiveDialog = (line: string): boolean => / dialog=(terminated)? /.test(line);

/** Subscribes a SIPp watcher at Kamailio to `event` of sip:<user>@<kamailio domain>. */
export async function startKamWatcher(
  kam: Pick<Kamailio, 'port' | 'domain'>,
  transport: SippTransport,
  user: string,
  event: 'presence' | 'dialog',
  timeoutSec = 120,
): Promise<KamWatcher> {
  const run = await startSipp({
    scenario: 'kam-watch',
    gatewayPort: kam.port,
    transport,
    service: user,
    traceLogs: true,
    timeoutSec,
    vars: { domain: kam.domain, event, accept: event === 'presence' ? 'application/pidf+xml' : 'application/dialog-info+xml' },
  });
  const lines = (): string[] => run.logLines().filter((l) => l.startsWith('notify '));
  return {
    run,
    lines,
    async waitFor(match, timeoutMs, what, after = -1) {
      try {
        return await until(() => lines().findIndex((l, i) => i > after && match(l)), (i) => i >= 0, timeoutMs, `${event} watcher of ${user} at Kamailio: ${what}`);
      } catch (err) {
        throw new Error(`${err instanceof Error ? err.message : String(err)}; lines: ${JSON.stringify(lines())}`);
      }
    },
    async stop() {
      run.kill();
      return run.done;
    },
  };
}

/**
 * Runs a publishing scenario (kam-publish-dialog, kam-publish-dialog-modify, kam-publish-pidf)
 * against Kamailio for sip:<user>@<domain> and returns the SIP-ETag it logged; throws with
 * SIPp's whole story when it failed.
 */
export async function kamPublish(
  kam: Pick<Kamailio, 'port' | 'domain'>,
  scenario: string,
  user: string,
  vars: Record<string, string>,
  transport: SippTransport = 'u1',
): Promise<{ etag: string; result: SippResult }> {
  const result = await runSipp({
    scenario,
    gatewayPort: kam.port,
    transport,
    service: user,
    traceLogs: true,
    timeoutSec: 15,
    vars: { domain: kam.domain, ...vars },
  });
  const line = (result.logs ?? []).find((l) => l.startsWith('etag '));
  const etag = line?.slice('etag '.length).trim() ?? '';
  if (result.code !== 0 || etag === '') throw new Error(`${scenario} at Kamailio failed:\n${describeSipp(result)}`);
  return { etag, result };
}
