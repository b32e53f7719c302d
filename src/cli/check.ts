/**
 * `presence-gateway-cli check <config.yaml>`: validate a configuration offline
 * the way the gateway would load it (YAML, ${ENV} references, the schema),
 * then look at what the schema cannot: that the files it names can be read.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError, loadConfigFile } from '../config/loader.js';
import type { GatewayConfig } from '../config/schema.js';
import { MEMORY_STORE_PATH, resolveStorePath } from '../config/store.js';
import { GraphConfigError, resolveTokenCacheKey } from '../graph/config.js';

export interface CheckResult {
  ok: boolean;
  /** one line each: `<path>: <what is wrong> (<the fix>)` */
  problems: string[];
  /** a few lines describing a valid configuration */
  summary: string[];
}

interface NamedFile {
  where: string;
  file: string;
  what: string;
}

/** Every file path the configuration names, with where it is named. */
function namedFiles(config: GatewayConfig): NamedFile[] {
  const out: NamedFile[] = [];
  config.sip.listen.forEach((l, i) => {
    if (l.tls === undefined) return;
    out.push({ where: `sip.listen[${i}].tls.certPath`, file: l.tls.certPath, what: 'PEM certificate' });
    out.push({ where: `sip.listen[${i}].tls.keyPath`, file: l.tls.keyPath, what: 'PEM private key' });
    if (l.tls.caPath !== undefined) out.push({ where: `sip.listen[${i}].tls.caPath`, file: l.tls.caPath, what: 'PEM CA file' });
  });
  if (config.http.tls !== undefined) {
    out.push({ where: 'http.tls.certPath', file: config.http.tls.certPath, what: 'PEM certificate' });
    out.push({ where: 'http.tls.keyPath', file: config.http.tls.keyPath, what: 'PEM private key' });
  }
  const g = config.graph;
  if (g !== undefined) {
    if (g.trustedCaPath !== undefined) out.push({ where: 'graph.trustedCaPath', file: g.trustedCaPath, what: 'PEM CA file' });
    if (g.certificate !== undefined) {
      out.push({ where: 'graph.certificate.certPath', file: g.certificate.certPath, what: 'PEM certificate' });
      out.push({ where: 'graph.certificate.keyPath', file: g.certificate.keyPath, what: 'PEM private key' });
    }
  }
  config.trunks.forEach((t, i) => {
    const tls = t.tls;
    if (tls === undefined) return;
    if (tls.caPath !== undefined) out.push({ where: `trunks[${i}].tls.caPath`, file: tls.caPath, what: 'PEM CA file' });
    if (tls.certPath !== undefined) out.push({ where: `trunks[${i}].tls.certPath`, file: tls.certPath, what: 'PEM certificate' });
    if (tls.keyPath !== undefined) out.push({ where: `trunks[${i}].tls.keyPath`, file: tls.keyPath, what: 'PEM private key' });
  });
  return out;
}

function fileProblem(f: NamedFile, cwd: string): string | undefined {
  const full = resolve(cwd, f.file);
  try {
    if (!statSync(full).isFile()) return `${f.where}: ${f.file} is not a file (give the path of the ${f.what})`;
    accessSync(full, constants.R_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable' : `cannot be read (${code})`;
    return `${f.where}: ${f.file} ${why} (give the path of a readable ${f.what}; relative paths are from the gateway's working directory)`;
  }
}

/** The nearest existing directory at or above `dir`, and whether it is writable. */
function writableAncestor(dir: string): { dir: string; writable: boolean } {
  let d = dir;
  for (;;) {
    try {
      if (statSync(d).isDirectory()) {
        try {
          accessSync(d, constants.W_OK);
          return { dir: d, writable: true };
        } catch {
          return { dir: d, writable: false };
        }
      }
    } catch {
      // does not exist: look further up
    }
    const up = dirname(d);
    if (up === d) return { dir: d, writable: false };
    d = up;
  }
}

function summarize(config: GatewayConfig, file: string): string[] {
  const teams =
    config.graph !== undefined
      ? `graph: tenant ${config.graph.tenantId}, ${config.graph.serviceAccounts.length} service account(s), ${config.graph.webhook !== undefined ? 'webhook ' + config.graph.webhook.publicUrl : 'polling only'}`
      : config.graphSimulator !== undefined
        ? `graph: built-in simulator (demo) on port ${config.graphSimulator.port}`
        : 'graph: none (SIP only)';
  const listeners = config.sip.listen.map((l) => `${l.transport} ${l.address}:${l.port}`).join(', ');
  const store = resolveStorePath(config.store, config.stateDir);
  return [
    `${file}: configuration is valid`,
    `  users: ${config.users.length}`,
    `  trunks: ${config.trunks.length}${config.trunks.length > 0 ? ` (${config.trunks.map((t) => t.name).join(', ')})` : ''}`,
    `  lists: ${config.lists.groups.length}`,
    `  sip: ${listeners}; domain ${config.sip.domain}`,
    `  ${teams}`,
    `  http: ${config.http.tls !== undefined || config.graphSimulator !== undefined ? 'https' : 'http'} ${config.http.address}:${config.http.port}; admin API ${config.admin !== undefined ? 'on' : 'off (no admin: section)'}`,
    `  store: ${store === MEMORY_STORE_PATH ? 'in memory (nothing survives a restart)' : store}`,
  ];
}

/** Check a configuration file; never throws. */
export function checkConfigFile(
  file: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
  cwd: string = process.cwd(),
): CheckResult {
  let config: GatewayConfig;
  try {
    config = loadConfigFile(resolve(cwd, file), env);
  } catch (err) {
    if (err instanceof ConfigError) return { ok: false, problems: [...err.problems], summary: [] };
    return { ok: false, problems: [`(top level): ${err instanceof Error ? err.message : String(err)}`], summary: [] };
  }
  const problems: string[] = [];
  for (const f of namedFiles(config)) {
    const p = fileProblem(f, cwd);
    if (p !== undefined) problems.push(p);
  }
  if (config.graph !== undefined) {
    try {
      resolveTokenCacheKey(config.graph, env);
    } catch (err) {
      if (err instanceof GraphConfigError) problems.push(...err.problems);
      else throw err;
    }
  }
  const store = resolveStorePath(config.store, resolve(cwd, config.stateDir));
  if (store !== MEMORY_STORE_PATH) {
    const up = writableAncestor(dirname(store));
    if (!up.writable) {
      problems.push(`store.path: ${store} cannot be created (${up.dir} is not writable; choose a writable place, or set stateDir)`);
    }
  }
  if (problems.length > 0) return { ok: false, problems, summary: [] };
  return { ok: true, problems: [], summary: summarize(config, file) };
}
