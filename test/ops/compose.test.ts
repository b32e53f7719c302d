/**
 * docker-compose.yml and the Dockerfile, without a Docker engine: the compose
 * file must validate with `docker-compose config` (Debian's docker-compose;
 * missing is a failure, not a skip), the services must be wired as the README
 * says, and the image must start the gateway exactly as the tests do.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import { loadConfigFile } from '../../src/config/loader.js';
import type { GatewayConfig } from '../../src/config/schema.js';
import { repoRoot, startGateway } from '../helpers/gateway-process.js';
import { execForm, parseHealthcheck, readDockerfile, resolveFrom, type Stage } from './dockerfile.js';

const root = repoRoot();

/** Variables docker-compose.yml reads from the environment: cleared so the file's defaults show. */
const COMPOSE_VARS = ['HEALTHCHECK_URL', 'LOG_LEVEL', 'ADMIN_TOKEN', 'PRESENCE_GATEWAY_CONFIG_FILE', 'COMPOSE_FILE', 'COMPOSE_PROFILES', 'COMPOSE_PROJECT_NAME'];

function composeEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of COMPOSE_VARS) delete env[name];
  return { ...env, ...extra };
}

function compose(args: string[], extra: Record<string, string> = {}): string {
  const r = spawnSync('docker-compose', ['-f', join(root, 'docker-compose.yml'), ...args], {
    cwd: root,
    env: composeEnv(extra),
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (r.error !== undefined) {
    const code = (r.error as NodeJS.ErrnoException).code;
    throw new Error(
      code === 'ENOENT'
        ? 'docker-compose is not installed: install the Debian package docker-compose (./scripts/test.sh does)'
        : `docker-compose failed to run: ${r.error.message}`,
    );
  }
  if (r.status !== 0) throw new Error(`docker-compose ${args.join(' ')} exited ${r.status}:\n${r.stderr}`);
  return r.stdout;
}

interface ComposeService {
  build?: { context?: string } | string;
  image?: string;
  command?: unknown;
  entrypoint?: unknown;
  environment?: Record<string, string | null>;
  network_mode?: string;
  profiles?: string[];
  volumes?: string[];
  ports?: string[];
  healthcheck?: { test?: unknown };
  depends_on?: Record<string, { condition?: string }>;
  user?: string;
}

interface ComposeConfig {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

function resolvedConfig(extra: Record<string, string> = {}): ComposeConfig {
  const doc: unknown = parseYaml(compose(['config'], extra));
  if (typeof doc !== 'object' || doc === null || !('services' in doc)) throw new Error('docker-compose config printed no services');
  return doc as ComposeConfig;
}

/** `source:target[:mode]` of a short-syntax volume, as docker-compose config prints it. */
function mounts(service: ComposeService): Array<{ source: string; target: string; mode: string | undefined }> {
  return (service.volumes ?? []).map((v) => {
    const [source, target, mode] = v.split(':') as [string, string, string | undefined];
    return { source, target, mode };
  });
}

const dockerfile = readDockerfile(join(root, 'Dockerfile'));
const finalStage: Stage = dockerfile.stages[dockerfile.stages.length - 1]!;

function last(stage: Stage, keyword: string): string | undefined {
  return stage.instructions.filter((i) => i.keyword === keyword).at(-1)?.args;
}

const cmd = execForm(last(finalStage, 'CMD') ?? '');

t.test('docker-compose is installed (the compose tests need it; they do not skip)', async (t) => {
  const r = spawnSync('docker-compose', ['version'], { encoding: 'utf8' });
  t.equal(r.error, undefined, 'docker-compose runs (Debian package docker-compose; ./scripts/test.sh installs it)');
  t.equal(r.status, 0);
  t.match(r.stdout, /docker-compose version/);
});

t.test('docker-compose config validates and lists the gateway, the demo, redis and its two gateways', async (t) => {
  const config = resolvedConfig();
  t.same(Object.keys(config.services).sort(), ['demo', 'gateway', 'gateway-a', 'gateway-b', 'redis']);
  t.same(Object.keys(config.volumes ?? {}).sort(), ['demo-data', 'gateway-data', 'redis-data']);
  const services = compose(['config', '--services']).trim().split('\n').sort();
  t.same(services, ['demo', 'gateway', 'gateway-a', 'gateway-b', 'redis']);
});

t.test('the gateway service: built here, state in a volume, config mounted where the image reads it', async (t) => {
  const { gateway } = resolvedConfig().services;
  if (gateway === undefined) throw new Error('no gateway service');
  const context = typeof gateway.build === 'string' ? gateway.build : gateway.build?.context;
  t.equal(context, root, 'built from this directory (the Dockerfile)');
  t.equal(gateway.profiles, undefined, 'started by a plain `docker-compose up`');
  t.equal(gateway.command, undefined, 'runs the image CMD unchanged');
  t.equal(gateway.entrypoint, undefined);
  t.equal(gateway.network_mode, 'host', 'SIP needs the host address in Via and Contact');
  const m = mounts(gateway);
  t.ok(m.some((v) => v.source === 'gateway-data' && v.target === '/var/lib/presence-gateway'), 'SQLite store in the gateway-data volume');
  t.ok(
    m.some((v) => v.source === join(root, 'gateway.yaml') && v.target === cmd?.[3] && v.mode === 'ro'),
    `./gateway.yaml mounted read-only at the CMD's --config path (${cmd?.[3]})`,
  );
  t.equal(gateway.environment?.['HEALTHCHECK_URL'], 'https://127.0.0.1:8443/healthz', 'the example config serves https on 8443');
  // every ${VAR} of config/example.yaml is passed through (else start-up stops naming it)
  const example = JSON.stringify(parseYaml(readFileSync(join(root, 'config/example.yaml'), 'utf8'))); // values, not comments
  const used = new Set([...example.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)].map((x) => x[1]!));
  t.ok(used.size >= 5);
  for (const name of used) t.ok(gateway.environment !== undefined && name in gateway.environment, `${name} is passed to the container`);

  const other = resolvedConfig({ PRESENCE_GATEWAY_CONFIG_FILE: '/srv/gw/prod.yaml', HEALTHCHECK_URL: 'https://127.0.0.1:9000/healthz' }).services.gateway!;
  t.ok(mounts(other).some((v) => v.source === '/srv/gw/prod.yaml' && v.target === cmd?.[3]), 'PRESENCE_GATEWAY_CONFIG_FILE picks another file');
  t.equal(other.environment?.['HEALTHCHECK_URL'], 'https://127.0.0.1:9000/healthz');
});

t.test('the demo profile runs the gateway in demo mode with config/docker.yaml', async (t) => {
  const { demo } = resolvedConfig().services;
  if (demo === undefined) throw new Error('no demo service');
  t.same(demo.profiles, ['demo']);
  t.equal(demo.command, undefined, 'the image CMD');
  t.equal(demo.network_mode, 'host');
  const m = mounts(demo);
  t.ok(m.some((v) => v.source === join(root, 'config/docker.yaml') && v.target === cmd?.[3] && v.mode === 'ro'));
  t.ok(m.some((v) => v.source === 'demo-data' && v.target === '/var/lib/presence-gateway'), 'its own volume, not production state');
  // config/docker.yaml: https (the demo tenant's certificate) on 127.0.0.1:8443, the healthcheck's URL
  const docker = parseYaml(readFileSync(join(root, 'config/docker.yaml'), 'utf8')) as { http: { address: string; port: number }; graphSimulator?: unknown };
  t.ok(docker.graphSimulator !== undefined, 'the built-in Graph simulator stands in for Microsoft 365');
  t.equal(demo.environment?.['HEALTHCHECK_URL'], `https://${docker.http.address}:${docker.http.port}/healthz`);
  t.ok((demo.environment?.['ADMIN_TOKEN'] ?? '').length >= 24, 'a default admin token long enough for admin.token');
});

t.test('redis is optional (profile redis), persistent (append-only file in a volume) and health-checked', async (t) => {
  const { redis } = resolvedConfig().services;
  if (redis === undefined) throw new Error('no redis service');
  t.same(redis.profiles, ['redis']);
  t.match(redis.image, /^redis:7\b/, 'Redis 7');
  t.same(redis.healthcheck?.test, ['CMD', 'redis-cli', 'ping']);
  t.ok(mounts(redis).some((v) => v.source === 'redis-data' && v.target === '/data'), 'its data in the redis-data volume');
  const command = Array.isArray(redis.command) ? (redis.command as unknown[]).map(String) : String(redis.command ?? '').split(/\s+/);
  const at = command.indexOf('--appendonly');
  t.ok(at >= 0 && command[at + 1] === 'yes', `appendonly yes (command: ${command.join(' ')})`);
  t.same(redis.ports, ['127.0.0.1:6379:6379/tcp'], 'published on loopback only');
});

/** The gateway-a / gateway-b config files, read by the real loader. */
function nodeConfig(service: ComposeService): { file: string; config: GatewayConfig } {
  const own = mounts(service).filter((v) => v.target === cmd?.[3]);
  if (own.length !== 1) throw new Error(`expected one config mounted at ${cmd?.[3]}, got ${JSON.stringify(own)}`);
  const file = own[0]!.source;
  return { file, config: loadConfigFile(file, { LOG_LEVEL: 'info' }) };
}

t.test('the redis profile: two gateways, each with its own config file, sharing the one Redis', async (t) => {
  const { services } = resolvedConfig();
  const redis = services['redis'];
  if (redis === undefined) throw new Error('no redis service');
  const names = ['gateway-a', 'gateway-b'] as const;
  const nodes = names.map((name) => {
    const s = services[name];
    if (s === undefined) throw new Error(`no ${name} service`);
    return { name, service: s, ...nodeConfig(s) };
  });
  for (const { name, service, file, config } of nodes) {
    t.same(service.profiles, ['redis'], `${name}: on the redis profile`);
    t.equal(service.network_mode, 'host', `${name}: host networking like the other gateways`);
    t.equal(service.command, undefined, `${name}: the image CMD`);
    t.equal(service.depends_on?.['redis']?.condition, 'service_healthy', `${name}: starts once Redis answers PING`);
    const context = typeof service.build === 'string' ? service.build : service.build?.context;
    t.equal(context, root, `${name}: the image built here`);
    t.ok(mounts(service).some((v) => v.source === file && v.mode === 'ro'), `${name}: ${relative(root, file)} mounted read-only`);
    t.equal(relative(root, file), `config/cluster-node-${name.slice(-1)}.yaml`);
    t.equal(config.store.path, undefined, `${name}: no SQLite file`);
    t.ok(config.graph === undefined && config.graphSimulator === undefined, `${name}: runs with no tenant and no per-node simulator`);
    t.equal(service.environment?.['HEALTHCHECK_URL'], `http://${config.http.address}:${config.http.port}/healthz`, `${name}: the healthcheck probes its own http listener`);
    t.ok((service.environment?.['ADMIN_TOKEN'] ?? '').length >= 24, `${name}: a default admin token`);
  }
  const [a, b] = nodes as [(typeof nodes)[number], (typeof nodes)[number]];
  t.not(a.file, b.file, 'a config file each');
  const url = a.config.store.redis?.url;
  t.equal(url, 'redis://127.0.0.1:6379/0', 'node a: the redis service (published on the host loopback)');
  t.equal(b.config.store.redis?.url, url, 'node b: the same Redis');
  t.equal(a.config.store.redis?.keyPrefix, b.config.store.redis?.keyPrefix, 'under the same key prefix');
  t.same(redis.ports, [`127.0.0.1:${new URL(url ?? 'redis://x').port}:6379/tcp`], 'the port the nodes use is the one published');
  t.equal(a.config.cluster.nodeId, 'gw-a');
  t.equal(b.config.cluster.nodeId, 'gw-b');
  const sipPorts = (c: GatewayConfig) => new Set(c.sip.listen.map((l) => l.port));
  for (const p of sipPorts(a.config)) t.notOk(sipPorts(b.config).has(p), `SIP port ${p} of node a is not node b's`);
  t.not(a.config.http.port, b.config.http.port, 'different HTTP ports');
  // the rest of the service is the same on both nodes
  t.same(a.config.users, b.config.users, 'the same people');
  t.same(a.config.lists, b.config.lists, 'the same lists');
  t.equal(a.config.sip.domain, b.config.sip.domain);
  // no port of theirs is another service's (all share the host's network)
  const docker = loadConfigFile(join(root, 'config/docker.yaml'), {});
  const taken = new Set([...docker.sip.listen.map((l) => l.port), docker.http.port, 9443, 6379]);
  for (const n of nodes) {
    for (const p of [...sipPorts(n.config), n.config.http.port]) t.notOk(taken.has(p), `${n.name}: port ${p} is free of the demo and redis`);
  }
  t.ok(Array.isArray(redis.profiles) && nodes.every((n) => JSON.stringify(n.service.profiles) === JSON.stringify(redis.profiles)), 'the three start together');
});

t.test('Dockerfile: two stages on one base image, native addon built in the build stage', async (t) => {
  t.ok(dockerfile.stages.length >= 2, 'multi-stage');
  const build = dockerfile.stages.find((s) => s.name === 'build');
  if (build === undefined) throw new Error('no stage named build');
  t.not(build, finalStage, 'the build stage is not the image');
  t.equal(resolveFrom(build.from, dockerfile.globalArgs), resolveFrom(finalStage.from, dockerfile.globalArgs), 'same base: better-sqlite3 built there loads here');
  t.match(resolveFrom(finalStage.from, dockerfile.globalArgs), /^node:20[-.]/, 'Node 20 (package.json engines)');
  const buildRuns = build.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args).join('\n');
  t.match(buildRuns, /\bnpm ci\b(?![^\n]*--omit=dev)/, 'dev dependencies installed for tsc');
  t.match(buildRuns, /tsc -p tsconfig\.build\.json/);
  t.match(buildRuns, /node scripts\/build-diagnostics-page\.mjs/, 'and the diagnostics page files into dist/, as npm run build does');
  t.match(buildRuns, /npm prune --omit=dev/, 'only production dependencies are carried over');
  t.match(buildRuns, /\bg\+\+/, 'a compiler for better-sqlite3');
  const buildEnv = build.instructions.filter((i) => i.keyword === 'ENV').map((i) => i.args).join(' ');
  t.match(buildEnv, /npm_config_build_from_source=true/, 'compiled from source for this image, no prebuilt download');
  const finalRuns = finalStage.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args).join('\n');
  t.notMatch(finalRuns, /npm (ci|install)/, 'the runtime stage installs nothing from npm');
  const copies = finalStage.instructions.filter((i) => i.keyword === 'COPY').map((i) => i.args);
  t.ok(copies.some((c) => /^--from=build\b.*\/app\/node_modules\b/.test(c)), 'node_modules from the build stage');
  t.ok(copies.some((c) => /^--from=build\b.*\/app\/dist\/src\b/.test(c)), 'compiled code from the build stage');
  t.notOk(copies.some((c) => /(^|\s)\.?\/?src(\s|$)/.test(c) && !c.startsWith('--from')), 'no TypeScript sources in the image');
});

t.test('Dockerfile: the image runs as a non-root user', async (t) => {
  const user = last(finalStage, 'USER');
  t.ok(user !== undefined, 'the final stage sets USER');
  const name = (user ?? 'root').split(':')[0]!;
  t.not(name, 'root');
  t.not(name, '0');
  const userIndex = finalStage.instructions.findIndex((i) => i.keyword === 'USER');
  const cmdIndex = finalStage.instructions.findIndex((i) => i.keyword === 'CMD');
  t.ok(userIndex < cmdIndex, 'USER comes before CMD');
  // the state directory is the user's, so a fresh named volume is writable
  const runs = finalStage.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args).join('\n');
  t.match(runs, new RegExp(`chown ${name}(:${name})? /var/lib/presence-gateway`));
});

t.test('Dockerfile: HEALTHCHECK probes /healthz', async (t) => {
  const hc = parseHealthcheck(last(finalStage, 'HEALTHCHECK') ?? '');
  if (hc === undefined) throw new Error('no HEALTHCHECK CMD in the final stage');
  const command = execForm(hc.command);
  t.ok(command !== undefined, 'exec form');
  t.equal(command?.[0], 'node', 'Node is in the image; curl and wget are not');
  t.match(command?.join(' ') ?? '', /\/healthz/);
  t.ok(hc.options.has('interval') && hc.options.has('timeout'));
  const env = finalStage.instructions.filter((i) => i.keyword === 'ENV').map((i) => i.args).join(' ');
  t.match(env, /HEALTHCHECK_URL=http:\/\/127\.0\.0\.1:8080\/healthz/, 'default: the http listener of the schema defaults');
});

t.test("Dockerfile CMD is the test helpers' start command: node dist/src/main.js --config FILE", async (t) => {
  if (cmd === undefined) throw new Error('CMD is not in exec form');
  // The command the helpers run, read from the live process.
  const gw = await startGateway({ logLevel: 'warn', overrides: { http: { port: 0 } } }); // http on a free port, not 8080
  t.teardown(() => gw.stop());
  const argv = readFileSync(`/proc/${gw.pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
  // tsx only loads TypeScript: drop it and map the entry to what tsc makes of it (the helpers' 'dist' command)
  const importAt = argv.indexOf('--import');
  const plain = importAt > 0 && argv[importAt + 1] === 'tsx' ? [...argv.slice(0, importAt), ...argv.slice(importAt + 2)] : argv;
  t.equal(plain.length, 4, `node <entry> --config <file> (got ${plain.join(' ')})`);
  const tsconfig = JSON.parse(readFileSync(join(root, 'tsconfig.json'), 'utf8')) as { compilerOptions: { outDir: string; rootDir: string } };
  const entry = relative(join(root, tsconfig.compilerOptions.rootDir), plain[1]!);
  t.equal(entry, 'src/main.ts');
  const compiled = join(tsconfig.compilerOptions.outDir, entry).replace(/\.ts$/, '.js');
  t.equal(basename(plain[0]!), cmd[0]);
  t.equal(cmd[1], compiled);
  t.equal(cmd[2], plain[2]);
  t.equal(plain[2], '--config');
  t.equal(cmd.length, plain.length, 'no other arguments');
  t.equal(cmd[3], '/etc/presence-gateway/gateway.yaml');
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  t.equal(pkg.bin['presence-gateway'], compiled, 'the same file as the package bin');
  t.equal(last(finalStage, 'WORKDIR'), '/app');
});
