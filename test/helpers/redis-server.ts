/**
 * A real Redis (Debian's redis-server, installed by scripts/test.sh) for the
 * tests of the shared store and the cluster: its own port and data folder,
 * append-only persistence on, stopped with the test. A missing redis-server
 * fails the test (never a skip).
 *
 *   const redis = await startRedis(t);   // t.teardown stops it
 *   redis.url                            // redis://127.0.0.1:<port>/0
 *   await redis.stop();  await redis.start();   // a restart, data kept
 *   redis.kill();                               // SIGKILL, as a crash
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';

export const REDIS_SERVER_BIN = '/usr/bin/redis-server';

export interface RedisServer {
  readonly port: number;
  readonly host: string;
  /** redis://host:port/0 */
  readonly url: string;
  readonly dir: string;
  readonly running: boolean;
  /** Start again on the same port and data (after stop or kill). */
  start(): Promise<void>;
  /** SIGTERM: Redis writes its append-only file and exits. */
  stop(): Promise<void>;
  /** SIGKILL (a crash). */
  kill(): Promise<void>;
  /** Stop and remove the data folder. */
  close(): Promise<void>;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

const live = new Set<ChildProcess>();
let hooked = false;

function ping(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    let got = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      got += d.toString('latin1');
      if (got.includes('\r\n')) done(got.startsWith('+PONG'));
    });
  });
}

export async function startRedis(t: Teardown | undefined, options: { host?: string; port?: number } = {}): Promise<RedisServer> {
  if (!existsSync(REDIS_SERVER_BIN)) {
    throw new Error(`${REDIS_SERVER_BIN} is missing: run ./scripts/test.sh, which installs Debian's redis-server`);
  }
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? (await freePort(host));
  const dir = await mkdtemp(join(tmpdir(), 'pg-redis-'));
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  if (!hooked) {
    hooked = true;
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }

  const start = async (): Promise<void> => {
    if (child !== undefined) return;
    const args = [
      '--port', String(port),
      '--bind', host,
      '--dir', dir,
      '--appendonly', 'yes',
      '--appendfsync', 'everysec',
      '--save', '',
      '--daemonize', 'no',
      '--protected-mode', 'no',
      '--loglevel', 'warning',
    ];
    const c = spawn(REDIS_SERVER_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    c.stdout?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
    c.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
    child = c;
    live.add(c);
    exited = new Promise<void>((resolve) =>
      c.once('exit', () => {
        live.delete(c);
        if (child === c) child = undefined;
        resolve();
      }),
    );
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (child !== c) throw new Error(`redis-server exited at start on ${host}:${port}: ${log}`);
      if (await ping(host, port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server did not answer PING on ${host}:${port} within 10 s: ${log}`);
  };

  const signal = async (sig: NodeJS.Signals): Promise<void> => {
    const c = child;
    if (c === undefined) return;
    c.kill(sig);
    await exited;
  };

  await start();
  const server: RedisServer = {
    port,
    host,
    url: `redis://${host}:${port}/0`,
    dir,
    get running() {
      return child !== undefined;
    },
    start,
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
    close: async () => {
      await signal('SIGTERM');
      await rm(dir, { recursive: true, force: true });
    },
  };
  t?.teardown(() => server.close());
  return server;
}
