/**
 * scripts/build-diagnostics-page.mjs, run by `npm run build`: it writes the
 * diagnostics page's three files where dist/src/http/diagnostics-page.js reads
 * them, the same as the source run serves, and refuses a script that does not
 * type-check.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { appendFile, cp, mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { DIAGNOSTICS_ASSETS, loadDiagnosticsAssets } from '../../src/http/diagnostics-page.js';
import { repoRoot } from '../helpers/gateway-process.js';

t.test('the build writes the three files to dist/ as the source run serves them', async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'pg-diag-build-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  const root = repoRoot();
  await promisify(execFile)(process.execPath, [join(root, 'scripts', 'build-diagnostics-page.mjs'), out], { cwd: tmpdir() });
  const builtDir = join(out, 'src', 'http', 'diagnostics-page');
  const built = await loadDiagnosticsAssets(pathToFileURL(builtDir + '/'));
  const fromSource = await loadDiagnosticsAssets(DIAGNOSTICS_ASSETS);
  t.equal(built.html, fromSource.html, 'the markup');
  t.equal(built.css, fromSource.css, 'the style');
  t.equal(await readFile(join(builtDir, 'diagnostics.js'), 'utf8'), await fromSource.script(), 'the script, compiled as the source run compiles it');
  t.match(await built.script(), /new EventSource\(/, 'and it is the page script');
});

t.test('the build refuses a script that does not type-check, naming the place', async (t) => {
  // a copy of what the build reads, with one type error added to the page script
  const copy = await mkdtemp(join(tmpdir(), 'pg-diag-broken-'));
  t.teardown(() => rm(copy, { recursive: true, force: true }));
  const root = repoRoot();
  await mkdir(join(copy, 'scripts'));
  await cp(join(root, 'scripts', 'build-diagnostics-page.mjs'), join(copy, 'scripts', 'build-diagnostics-page.mjs'));
  await cp(join(root, 'tsconfig.json'), join(copy, 'tsconfig.json'));
  await cp(join(root, 'src', 'http', 'diagnostics-page'), join(copy, 'src', 'http', 'diagnostics-page'), { recursive: true });
  await cp(join(root, 'src', 'http', 'admin-json.ts'), join(copy, 'src', 'http', 'admin-json.ts'));
  await symlink(join(root, 'node_modules'), join(copy, 'node_modules'));
  await appendFile(join(copy, 'src', 'http', 'diagnostics-page', 'diagnostics.ts'), "\n$('count').hidden = 'yes';\n");
  const run = promisify(execFile)(process.execPath, [join(copy, 'scripts', 'build-diagnostics-page.mjs'), join(copy, 'out')], { cwd: tmpdir(), env: { ...process.env, NO_COLOR: '1' } });
  const failure = await run.then(
    () => undefined,
    (e: unknown) => e as { code?: number; stderr?: string },
  );
  t.equal(failure?.code, 1, 'the build exits 1');
  t.match(failure?.stderr, /diagnostics\.ts[\s\S]*TS2322/, 'with the type error and its file');
});
