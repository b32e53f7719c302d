/**
 * The diagnostics page, for the administrator who asks "why is Anna's lamp
 * wrong": markup, style and browser script are files of their own in
 * ./diagnostics-page/ (diagnostics.html, .css, .ts), served from the gateway
 * itself; nothing is fetched from elsewhere. The page holds no data: its
 * script reads the admin API with the token.
 *
 * The script is TypeScript. `npm run build` type-checks it and writes it as
 * diagnostics.js, with the HTML and CSS, next to this module in dist/
 * (scripts/build-diagnostics-page.mjs). Run from source (tsx, the tests),
 * there is no .js beside the .ts, so the .ts is compiled here on first use,
 * with the same tsconfig the build uses (and remembered in the temp folder).
 */
import { createHash } from 'node:crypto';
import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';

/** The folder holding the page's files, beside this module (src/http or dist/src/http). */
export const DIAGNOSTICS_ASSETS = new URL('./diagnostics-page/', import.meta.url);

/** The page's three files, as served. */
export interface DiagnosticsAssets {
  html: string;
  css: string;
  script(): Promise<string>;
}

/** Where the page loads its style and script from (the markup names the same paths). */
export const DIAGNOSTICS_CSS_PATH = '/diagnostics.css';
export const DIAGNOSTICS_SCRIPT_PATH = '/diagnostics.js';

/**
 * Scripts and styles from the gateway only, none inline (the page has no
 * inline script or style, nor style or event-handler attributes), requests
 * back to the gateway only. CSP Level 3: https://www.w3.org/TR/CSP3/
 */
export const DIAGNOSTICS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const isMissing = (e: unknown): boolean => typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'ENOENT';

/** The page's TypeScript, compiled the way the build compiles it (no type check here: `npm run typecheck` does that). */
async function compileScript(dir: URL): Promise<string> {
  const ts = (await import('typescript')).default;
  const configPath = fileURLToPath(new URL('tsconfig.json', dir));
  const config = ts.getParsedCommandLineOfConfigFile(configPath, {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(`${configPath}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
    },
  });
  if (config === undefined) throw new Error(`${configPath}: not readable`);
  const sourcePath = fileURLToPath(new URL('diagnostics.ts', dir));
  return ts.transpileModule(await readFile(sourcePath, 'utf8'), { compilerOptions: config.options, fileName: sourcePath }).outputText;
}

/**
 * compileScript, remembered in the temp folder under a digest of what decides
 * its output (the source, both tsconfigs, the compiler's version): loading the
 * compiler takes seconds, and every test process and gateway child run from
 * source would pay them again.
 */
async function compiledScript(dir: URL): Promise<string> {
  const digest = createHash('sha256');
  const typescript = createRequire(import.meta.url).resolve('typescript/package.json');
  for (const file of [new URL('diagnostics.ts', dir), new URL('tsconfig.json', dir), new URL('../../../tsconfig.json', dir), pathToFileURL(typescript)]) {
    digest.update(await readFile(file)).update('\0');
  }
  const cached = join(tmpdir(), `presence-gateway-diagnostics-${digest.digest('hex').slice(0, 32)}.js`);
  try {
    return await readFile(cached, 'utf8');
  } catch (e) {
    if (!isMissing(e)) throw e;
  }
  const script = await compileScript(dir);
  const partial = `${cached}.${process.pid}.tmp`;
  await writeFile(partial, script);
  await rename(partial, cached); // whole or not at all, for a process reading it meanwhile
  return script;
}

/**
 * Read the page's files from `dir`. The script is the built diagnostics.js when
 * there is one; else (running from source) diagnostics.ts, compiled on first use:
 * loading the compiler takes seconds, and a process that never serves the
 * script should not pay for it.
 */
export async function loadDiagnosticsAssets(dir: URL = DIAGNOSTICS_ASSETS): Promise<DiagnosticsAssets> {
  const [html, css] = await Promise.all([readFile(new URL('diagnostics.html', dir), 'utf8'), readFile(new URL('diagnostics.css', dir), 'utf8')]);
  let built: string | undefined;
  try {
    built = await readFile(new URL('diagnostics.js', dir), 'utf8');
  } catch (e) {
    if (!isMissing(e)) throw e;
    const source = new URL('diagnostics.ts', dir);
    const there = await stat(source).then(
      () => true,
      (s: unknown) => (isMissing(s) ? false : Promise.reject(s)),
    );
    if (!there) throw new Error(`the diagnostics page's script is missing: neither ${fileURLToPath(new URL('diagnostics.js', dir))} (npm run build writes it) nor ${fileURLToPath(source)}`);
  }
  let compiled: Promise<string> | undefined;
  const script = (): Promise<string> => {
    if (built !== undefined) return Promise.resolve(built);
    compiled ??= compiledScript(dir).catch((e: unknown) => {
      compiled = undefined;
      throw e;
    });
    return compiled;
  };
  return { html, css, script };
}

let loaded: Promise<DiagnosticsAssets> | undefined;
/** The files of this installation, read once per process. */
const assets = (): Promise<DiagnosticsAssets> => {
  loaded ??= loadDiagnosticsAssets().catch((e: unknown) => {
    loaded = undefined;
    throw e;
  });
  return loaded;
};

/** GET / and GET /diagnostics: the page; GET /diagnostics.css and /diagnostics.js: its style and script. No token needed: no data. */
export const diagnosticsPage: FastifyPluginAsync = async (app) => {
  const files = await assets();
  const send = (reply: FastifyReply, type: string, body: string) =>
    reply
      .header('content-security-policy', DIAGNOSTICS_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('cache-control', 'no-store')
      .type(type)
      .send(body);
  const page = async (_request: unknown, reply: FastifyReply) => send(reply, 'text/html; charset=utf-8', files.html);
  app.get('/', page);
  app.get('/diagnostics', page);
  app.get(DIAGNOSTICS_CSS_PATH, async (_request, reply) => send(reply, 'text/css; charset=utf-8', files.css));
  app.get(DIAGNOSTICS_SCRIPT_PATH, async (_request, reply) => send(reply, 'text/javascript; charset=utf-8', await files.script()));
};
