/**
 * The layering of ARCHITECTURE.md, held against the code: every relative
 * import in src/ is read with the TypeScript parser (so comments and strings
 * cannot fool it, and `import type` counts too), mapped to its layer, and
 * checked against what that layer may import. A second check fails on any
 * import circle between files, type-only imports included: a circle of types
 * is still two modules that cannot be understood one without the other.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';
import t from 'tap';
import ts from 'typescript';
import { repoRoot } from '../helpers/gateway-process.js';
import { ALLOWED_IMPORTS, barrelProblems, brokenImports, importCircles, layerOf } from './layers.js';

const root = repoRoot();
const src = join(root, 'src');

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Relative module specifiers of one file: import/export declarations and `import('...')` types or calls. */
function relativeImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const specs: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      specs.push(node.moduleSpecifier.text);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      specs.push(node.argument.literal.text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const arg = node.arguments[0];
      if (arg !== undefined && ts.isStringLiteral(arg)) specs.push(arg.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return specs.filter((s) => s.startsWith('.'));
}

function resolveTs(from: string, spec: string): string {
  return normalize(join(dirname(from), spec)).replace(/\.js$/, '.ts');
}

const files = sourceFiles(src);
const rel = (f: string): string => relative(root, f).split(sep).join('/');
/** The import graph of src/, keyed by repository-relative path. */
const graph = new Map<string, string[]>(files.map((f) => [rel(f), relativeImports(f).map((s) => rel(resolveTs(f, s)))]));

t.test('every file of src/ belongs to a layer', async (t) => {
  const unplaced = [...graph.keys()].filter((f) => layerOf(f) === undefined);
  t.same(unplaced, [], 'a new folder under src/ needs its place in test/architecture/layers.ts and ARCHITECTURE.md');
});

t.test('no import runs against the layering', async (t) => {
  const { checked, broken } = brokenImports(graph);
  t.ok(checked > 100, `the reader found the cross-layer imports (${checked})`);
  t.same(broken, [], 'each layer imports only the layers ARCHITECTURE.md lets it');
});

t.test('no import circle between files (type-only imports included)', async (t) => {
  t.same(importCircles(graph), [], 'files that import each other, directly or around a loop');
});

t.test('barrels follow the one policy of ARCHITECTURE.md', async (t) => {
  t.same(barrelProblems(graph), [], 'an index.ts only for a folder other folders use as one unit; none imported from inside');
  const bad = new Map<string, string[]>([
    ['src/simple/index.ts', ['src/simple/a.ts']],
    ['src/simple/a.ts', []],
    ['src/bodies/index.ts', ['src/bodies/x.ts']],
    ['src/bodies/x.ts', []],
    ['src/bodies/y.ts', ['src/bodies/index.ts']],
  ]);
  t.same(barrelProblems(bad), [
    'src/simple/index.ts is a barrel the policy does not list',
    'src/bodies/index.ts is imported by no other folder',
    "src/bodies/y.ts imports its own folder's barrel",
  ]);
});

t.test('the checker itself finds a broken rule and a circle', async (t) => {
  const bad = new Map<string, string[]>([
    ['src/sip/a.ts', ['src/simple/b.ts', 'src/util/c.ts']],
    ['src/simple/b.ts', ['src/sip/a.ts']],
    ['src/util/c.ts', []],
    ['src/graph/d.ts', ['src/simple/b.ts']],
  ]);
  t.same(brokenImports(bad).broken, ['src/sip/a.ts (sip) imports src/simple/b.ts (simple)', 'src/graph/d.ts (graph) imports src/simple/b.ts (simple)']);
  t.same(importCircles(bad), [['src/simple/b.ts', 'src/sip/a.ts']]);
  t.same(importCircles(new Map([['src/x/self.ts', ['src/x/self.ts']]])), [['src/x/self.ts']], 'a file importing itself');
  t.notOk(ALLOWED_IMPORTS.core.includes('sip'), 'src/core may not import src/sip');
  t.same(ALLOWED_IMPORTS['graph-simulator'], ['util'], 'the simulator imports only src/util');
  t.equal(layerOf('src/app.ts'), 'wiring');
  t.equal(layerOf('src/unknown-folder/x.ts'), undefined);
});
