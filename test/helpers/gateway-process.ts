/**
 * Starts the real gateway as a child process with a temporary YAML config, for
 * interop tests and the benchmark. Listens on UDP and TCP on one free port of
 * 127.0.0.1, waits for the `ready` log line, stops with SIGTERM (SIGKILL after 5 s).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { freePort } from './ports.js';
import { udpRequest } from './sip-udp.js';

export interface GatewayUser {
  id: string;
  displayName?: string;
  extension?: string;
  sip?: string[];
}

export interface StartGatewayOptions {
  /** Directory users; default anna (1001), ben (1002), carla (1003), dan (1004). */
  users?: GatewayUser[];
  /** Deep-merged over the generated config (objects merge, arrays and scalars replace). */
  overrides?: Record<string, unknown>;
  /** pino level; default `info`. */
  logLevel?: string;
  /** `tsx`: node --import tsx src/main.ts (tests); `dist`: node dist/src/main.js (bench, after build). */
  command?: 'tsx' | 'dist';
  /** Listener transports on the one port; default udp and tcp. */
  transports?: ReadonlyArray<'udp' | 'tcp'>;
  /** How long to wait for `ready`; default 30000 ms (a start on a loaded 2-core machine has taken over 15 s). */
  readyTimeoutMs?: number;
  /** Keep at most this many stdout lines in `logs` (oldest dropped); default 100000. */
  maxLogLines?: number;
  /** Extra node arguments (e.g. --max-old-space-size). */
  nodeArgs?: string[];
  /** Run this script instead of the gateway entry point (same --config contract); env GATEWAY_ENTRY does the same. */
  entry?: string;
}

/** A parsed pino line (unknown fields stay unknown). */
export type LogRecord = Record<string, unknown>;

export interface GatewayProcess {
  port: number;
  pid: number;
  /** SIGTERM, then SIGKILL after 5 s; resolves when the process has exited. Idempotent. */
  stop(): Promise<void>;
  /** stdout lines (pino JSON) as printed. */
  logs: string[];
  /** stderr lines. */
  errors: string[];
  /** Resident set size now, from /proc/<pid>/status VmRSS (0 when gone). */
  rssBytes(): number;
  /** stdout lines parsed as JSON (lines that are not JSON are skipped). */
  records(): LogRecord[];
  /** Resolves with the first log record (already seen or future) matching; rejects after timeoutMs. */
  waitForLog(match: (record: LogRecord) => boolean, timeoutMs?: number): Promise<LogRecord>;
  /** Exit code / signal once exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  configPath: string;
}

export const DEFAULT_DOMAIN = 'demo.presence-gateway.local';

export const DEFAULT_USERS: GatewayUser[] = [
  { id: 'anna', displayName: 'Anna Meier', extension: '1001', sip: [`sip:anna@${DEFAULT_DOMAIN}`] },
  { id: 'ben', displayName: 'Ben Okafor', extension: '1002', sip: [`sip:ben@${DEFAULT_DOMAIN}`] },
  { id: 'carla', displayName: 'Carla Rossi', extension: '1003', sip: [`sip:carla@${DEFAULT_DOMAIN}`] },
  { id: 'dan', displayName: 'Dan Novak', extension: '1004', sip: [`sip:dan@${DEFAULT_DOMAIN}`] },
];

/** The repository root: the nearest directory upwards holding package.json (works from test/ and dist/test/). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'src'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('repository root (package.json) not found above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] = isPlainObject(current) && isPlainObject(value) ? deepMerge(current, value) : value;
  }
  return out;
}

export function buildGatewayConfig(
  port: number,
  options: Pick<StartGatewayOptions, 'users' | 'overrides' | 'logLevel' | 'transports'> = {},
): Record<string, unknown> {
  const transports = options.transports ?? ['udp', 'tcp'];
  const base: Record<string, unknown> = {
    sip: {
      listen: transports.map((transport) => ({ transport, address: '127.0.0.1', port })),
      domain: DEFAULT_DOMAIN,
    },
    subscriptions: { minExpires: 60, maxExpires: 3600, defaultExpires: 3600 },
    publications: { minExpires: 60, maxExpires: 3600, defaultExpires: 3600 },
    log: { level: options.logLevel ?? 'info' },
    users: options.users ?? DEFAULT_USERS,
  };
  return options.overrides === undefined ? base : deepMerge(base, options.overrides);
}

/** Log levels at which the gateway does not print its info-level `ready` line. */
const QUIET_LEVELS = new Set(['warn', 'error', 'fatal', 'silent']);

function tcpAccepts(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** True once the gateway answers OPTIONS over UDP (any final status) and accepts TCP connections. */
async function sipAnswers(host: string, port: number, transports: ReadonlyArray<'udp' | 'tcp'>): Promise<boolean> {
  if (transports.includes('udp')) {
    try {
      await udpRequest({ method: 'OPTIONS', user: 'ready-probe', host, port, timeoutMs: 200 });
    } catch {
      return false;
    }
  }
  return transports.includes('tcp') ? tcpAccepts(port, host) : true;
}

/**
 * Where readiness is probed: the first UDP listener of the config as written (overrides may move
 * it, e.g. a cluster node on 127.0.0.2), else the generated 127.0.0.1:<port>.
 */
function probeTarget(config: Record<string, unknown>, port: number): { host: string; port: number } {
  const sip = config['sip'];
  const listen = isPlainObject(sip) && Array.isArray(sip['listen']) ? (sip['listen'] as unknown[]) : [];
  for (const l of listen) {
    if (isPlainObject(l) && l['transport'] === 'udp' && typeof l['port'] === 'number' && l['port'] > 0) {
      return { host: typeof l['address'] === 'string' ? l['address'] : '127.0.0.1', port: l['port'] };
    }
  }
  return { host: '127.0.0.1', port };
}

/** Children still running, killed if this process exits without stopping them. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

function parseLine(line: string): LogRecord | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    return isPlainObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** VmRSS of a process in bytes (0 if it is gone or /proc is unavailable). */
export function readRssBytes(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return m?.[1] === undefined ? 0 : Number(m[1]) * 1024;
  } catch {
    return 0;
  }
}

/**
 * Starts the gateway and waits until it is ready. The port is probed free
 * first; if another process takes it before the gateway binds it
 * (EADDRINUSE), it starts again on a new port (three attempts).
 */
export async function startGateway(options: StartGatewayOptions = {}): Promise<GatewayProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (err) {
      if (attempt >= 3 || !(err instanceof Error) || !/EADDRINUSE/.test(err.message)) throw err;
    }
  }
}

async function startOnce(options: StartGatewayOptions): Promise<GatewayProcess> {
  const root = repoRoot();
  const command = options.command ?? 'tsx';
  const entry =
    options.entry ??
    process.env['GATEWAY_ENTRY'] ??
    (command === 'dist' ? join(root, 'dist', 'src', 'main.js') : join(root, 'src', 'main.ts'));
  if (!existsSync(entry)) {
    throw new Error(
      command === 'dist'
        ? `${entry} is missing: run \`npm run build\` first (npm run bench does)`
        : `${entry} is missing: the gateway entry point has not been written yet`,
    );
  }
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'pg-gateway-'));
  const configPath = join(dir, 'gateway.yaml');
  const config = buildGatewayConfig(port, options);
  // Each gateway keeps its state (the SQLite store, Graph ids) in its own directory unless told otherwise:
  // a shared ./data would let one test's gateway restore another test's subscriptions.
  if (config['stateDir'] === undefined) config['stateDir'] = dir;
  const configText = stringify(config);
  await writeFile(configPath, configText);

  const nodeArgs = [...(options.nodeArgs ?? [])];
  if (command === 'tsx' && entry.endsWith('.ts')) nodeArgs.push('--import', 'tsx');
  const child = spawn(process.execPath, [...nodeArgs, entry, '--config', configPath], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_ENV: process.env['NODE_ENV'] ?? 'test' },
  });
  live.add(child);
  installExitHook();

  const maxLines = options.maxLogLines ?? 100_000;
  const logs: string[] = [];
  const errors: string[] = [];
  const waiters = new Set<{ match: (r: LogRecord) => boolean; resolve: (r: LogRecord) => void }>();

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
    child.once('error', (err) => {
      errors.push(`spawn error: ${err.message}`);
      if (child.pid === undefined) {
        live.delete(child);
        resolve({ code: null, signal: null });
      }
    });
  });

  const lineSplitter = (sink: string[], onLine?: (line: string) => void) => {
    let rest = '';
    return (chunk: Buffer) => {
      rest += chunk.toString('utf8');
      let nl = rest.indexOf('\n');
      while (nl >= 0) {
        const line = rest.slice(0, nl);
        rest = rest.slice(nl + 1);
        if (line.length > 0) {
          sink.push(line);
          if (sink.length > maxLines) sink.shift();
          onLine?.(line);
        }
        nl = rest.indexOf('\n');
      }
    };
  };

  child.stdout.on(
    'data',
    lineSplitter(logs, (line) => {
      if (waiters.size === 0) return;
      const record = parseLine(line);
      if (record === undefined) return;
      for (const w of waiters) {
        if (w.match(record)) {
          waiters.delete(w);
          w.resolve(record);
        }
      }
    }),
  );
  child.stderr.on('data', lineSplitter(errors));

  const records = (): LogRecord[] => {
    const out: LogRecord[] = [];
    for (const line of logs) {
      const r = parseLine(line);
      if (r !== undefined) out.push(r);
    }
    return out;
  };

  const waitForLog = (match: (r: LogRecord) => boolean, timeoutMs = 10_000): Promise<LogRecord> => {
    const seen = records().find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise<LogRecord>((resolve, reject) => {
      const waiter = {
        match,
        resolve: (r: LogRecord) => {
          clearTimeout(timer);
          resolve(r);
        },
      };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`no matching gateway log line within ${timeoutMs} ms`));
      }, timeoutMs);
      waiters.add(waiter);
    });
  };

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(killer);
      }
      await rm(dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000;
  const describe = (why: string): Error =>
    new Error(
      `gateway did not become ready (${why})\n--- config ---\n${configText}--- stdout ---\n${logs.join('\n')}\n--- stderr ---\n${errors.join('\n')}`,
    );
  try {
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const isReady = (r: LogRecord): boolean => r['msg'] === 'ready';
      const waiter = {
        match: isReady,
        resolve: () => finish(undefined),
      };
      const finish = (err: Error | undefined): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        waiters.delete(waiter);
        if (err === undefined) resolve();
        else reject(err);
      };
      const timer = setTimeout(() => finish(describe(`no "ready" line within ${readyTimeoutMs} ms`)), readyTimeoutMs);
      void exited.then(({ code, signal }) => finish(describe(`exited early with code ${code} signal ${signal}`)));
      if (records().some(isReady)) finish(undefined);
      else waiters.add(waiter);
      if (QUIET_LEVELS.has(options.logLevel ?? 'info')) {
        // `ready` is logged at info, so at quieter levels readiness is probed on the wire. SIP answers
        // before the rest has started (the demo tenant's keys and certificates, the HTTP server), which
        // blocks the event loop for a while: with an HTTP port configured, it must accept too.
        const transports = options.transports ?? ['udp', 'tcp'];
        const http = config['http'];
        const httpPort = isPlainObject(http) && typeof http['port'] === 'number' && http['port'] > 0 ? http['port'] : undefined;
        const probe = probeTarget(config, port);
        void (async () => {
          while (!settled) {
            if ((await sipAnswers(probe.host, probe.port, transports)) && (httpPort === undefined || (await tcpAccepts(httpPort)))) finish(undefined);
            else await new Promise((r) => setTimeout(r, 100));
          }
        })();
      }
    });
  } catch (err) {
    // Capture the output before stop() removes the temporary directory.
    await stop();
    throw err;
  }

  if (child.pid === undefined) throw describe('no pid');
  const pid = child.pid;
  return {
    port,
    pid,
    stop,
    logs,
    errors,
    rssBytes: () => readRssBytes(pid),
    records,
    waitForLog,
    exited,
    configPath,
  };
}

/** pino numeric levels at or above error (50) in the captured logs. */
export function errorRecords(gateway: Pick<GatewayProcess, 'records'>): LogRecord[] {
  return gateway.records().filter((r) => typeof r['level'] === 'number' && r['level'] >= 50);
}

/**
 * Overrides for a gateway restarted in the same place every time (restart tests): the same SIP port
 * (UDP and TCP), HTTP port and store file (flushed every 20 ms).
 */
export function samePlaceOverrides(place: { port: number; httpPort: number; dir: string }): Record<string, unknown> {
  return {
    sip: {
      listen: [
        { transport: 'udp', address: '127.0.0.1', port: place.port },
        { transport: 'tcp', address: '127.0.0.1', port: place.port },
      ],
    },
    store: { path: join(place.dir, 'gateway.db'), flushMs: 20 },
    http: { address: '127.0.0.1', port: place.httpPort },
  };
}
