// Builds the diagnostics page's files into dist/ (run by `npm run build`, after tsc):
// type-checks src/http/diagnostics-page/diagnostics.ts with its own tsconfig (DOM types,
// no Node types), writes it as diagnostics.js and copies diagnostics.html and .css beside it,
// where src/http/diagnostics-page.ts (built to dist/src/http/) reads them.
// Usage: node scripts/build-diagnostics-page.mjs [outDir]   (default: the tsconfig's, dist/)
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const pageDir = join(root, 'src', 'http', 'diagnostics-page');
const configPath = join(pageDir, 'tsconfig.json');
const host = { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => fail([d]) };
const config = ts.getParsedCommandLineOfConfigFile(configPath, { noEmit: false }, host);
if (process.argv[2] !== undefined) config.options.outDir = resolve(process.argv[2]);

function fail(diagnostics) {
  const format = { getCanonicalFileName: (f) => f, getCurrentDirectory: () => root, getNewLine: () => '\n' };
  process.stderr.write(ts.formatDiagnosticsWithColorAndContext(diagnostics, format));
  process.exit(1);
}

if (config.errors.length > 0) fail(config.errors);
const program = ts.createProgram(config.fileNames, config.options);
const problems = ts.getPreEmitDiagnostics(program);
if (problems.length > 0) fail(problems);
const source = program.getSourceFile(join(pageDir, 'diagnostics.ts'));
if (source === undefined) fail([{ category: ts.DiagnosticCategory.Error, code: 0, file: undefined, start: undefined, length: undefined, messageText: `${configPath} does not include diagnostics.ts` }]);
const emitted = program.emit(source);
if (emitted.emitSkipped) fail(emitted.diagnostics);

const out = join(config.options.outDir, relative(config.options.rootDir, pageDir));
mkdirSync(out, { recursive: true });
for (const file of ['diagnostics.html', 'diagnostics.css']) copyFileSync(join(pageDir, file), join(out, file));
