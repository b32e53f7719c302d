/**
 * The compose demo and the image's HEALTHCHECK, run here without Docker: the
 * gateway started with config/docker.yaml (ports and directories moved to
 * free ones / a temporary folder, everything else as shipped) must come up,
 * and the Dockerfile's HEALTHCHECK command, with the demo service's
 * HEALTHCHECK_URL, must report it healthy, then unhealthy once it stopped.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parse as parseYaml, stringify } from 'yaml';
import { repoRoot } from '../helpers/gateway-process.js';
import { freePort } from '../helpers/ports.js';
import { execForm, parseHealthcheck, readDockerfile } from './dockerfile.js';

const root = repoRoot();

function healthcheckArgv(): string[] {
  const dockerfile = readDockerfile(join(root, 'Dockerfile'));
  const final = dockerfile.stages.at(-1)!;
  const hc = parseHealthcheck(final.instructions.filter((i) => i.keyword === 'HEALTHCHECK').at(-1)?.args ?? '');
  const argv = hc === undefined ? undefined : execForm(hc.command);
  if (argv === undefined || argv[0] !== 'node') throw new Error('the Dockerfile has no exec-form `node ...` HEALTHCHECK');
  return argv;
}

/** Run the image's healthcheck here (node is this Node); resolves with its exit code. */
function runHealthcheck(url: string | undefined): Promise<number | null> {
  const [, ...args] = healthcheckArgv();
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env['HEALTHCHECK_URL'];
  delete env['NODE_OPTIONS'];
  if (url !== undefined) env['HEALTHCHECK_URL'] = url;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: root, env, stdio: 'ignore' });
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', (code) => {
      clearTimeout(killer);
      resolve(code);
    });
  });
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

t.test('the healthcheck passes on 200 from /healthz and fails otherwise', async (t) => {
  const seen: string[] = [];
  let status = 200;
  const server = createServer((req, res) => {
    seen.push(req.url ?? '');
    res.writeHead(req.url === '/healthz' ? status : 404, { 'content-type': 'application/json' }).end('{}');
  });
  const port = await listen(server);
  t.teardown(() => close(server));
  t.equal(await runHealthcheck(`http://127.0.0.1:${port}/healthz`), 0);
  t.same(seen, ['/healthz']);
  t.equal(await runHealthcheck(`http://127.0.0.1:${port}/other`), 1, '404 is unhealthy');
  status = 503;
  t.equal(await runHealthcheck(`http://127.0.0.1:${port}/healthz`), 1, '503 is unhealthy');
  const closed = await freePort();
  t.equal(await runHealthcheck(`http://127.0.0.1:${closed}/healthz`), 1, 'nothing listening is unhealthy');
});

t.test('config/docker.yaml starts the demo gateway, and the demo service healthcheck sees it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pg-ops-demo-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const shipped = parseYaml(readFileSync(join(root, 'config/docker.yaml'), 'utf8')) as {
    sip: { listen: Array<{ transport: string; address: string; port: number }> };
    http: { address: string; port: number };
    graphSimulator: { port: number; dir?: string };
    stateDir: string;
    store: { path: string };
  };
  const compose = parseYaml(readFileSync(join(root, 'docker-compose.yml'), 'utf8')) as {
    services: { demo: { environment: Record<string, string> } };
  };
  const url = new URL(compose.services.demo.environment['HEALTHCHECK_URL']!);
  t.equal(url.protocol, 'https:', 'the demo serves https (its certificate comes from the simulator CA)');
  t.equal(Number(url.port), shipped.http.port, 'the healthcheck URL names the http listener of config/docker.yaml');
  t.equal(url.hostname, shipped.http.address);

  // Same file, moved to free ports and a temporary state directory.
  const sipPort = await freePort();
  const wsPort = await freePort();
  const httpPort = await freePort();
  const simPort = await freePort();
  const config = structuredClone(shipped);
  for (const l of config.sip.listen) l.port = l.transport === 'ws' ? wsPort : sipPort;
  config.http.port = httpPort;
  config.graphSimulator = { port: simPort, dir: join(dir, 'graph-sim') };
  config.stateDir = join(dir, 'state');
  config.store.path = join(dir, 'state', 'gateway.db');
  const file = join(dir, 'gateway.yaml');
  await writeFile(file, stringify(config));

  const env: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: 'test' };
  delete env['ADMIN_TOKEN'];
  delete env['LOG_LEVEL'];
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/main.ts'), '--config', file], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const ready = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 60_000);
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (/"msg":"ready"/.test(out)) {
        clearTimeout(timer);
        resolve(true);
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  t.ok(ready, `the demo gateway logs ready\n${out.slice(-3000)}\n${err.slice(-3000)}`);
  if (!ready) return;
  const listening = out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg?: string; transport?: string; port?: number })
    .filter((r) => r.msg === 'sip listening');
  t.same(listening.map((r) => r.transport).sort(), ['tcp', 'udp', 'ws'], 'UDP, TCP and WebSocket listeners');

  url.port = String(httpPort);
  t.equal(await runHealthcheck(url.href), 0, 'healthy while it runs');
  const plain = new URL(url.href);
  plain.protocol = 'http:';
  t.equal(await runHealthcheck(plain.href), 1, 'plain http to the https listener is not healthy');

  child.kill('SIGTERM');
  t.equal(await exited, 0, 'SIGTERM stops it cleanly (docker stop)');
  t.equal(await runHealthcheck(url.href), 1, 'unhealthy once stopped');
});
