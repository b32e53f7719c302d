/**
 * The layers of ARCHITECTURE.md as data: which folder of src/ is which layer,
 * and which layers each may import. Keep this table and ARCHITECTURE.md in step.
 */
export type Layer =
  | 'util'
  | 'core'
  | 'sip'
  | 'bodies'
  | 'trunks'
  | 'store'
  | 'simple'
  | 'graph'
  | 'http'
  | 'config'
  | 'cli'
  | 'wiring'
  | 'graph-simulator';

const FOLDERS: Record<string, Layer> = {
  util: 'util',
  core: 'core',
  sip: 'sip',
  bodies: 'bodies',
  trunks: 'trunks',
  store: 'store',
  simple: 'simple',
  graph: 'graph',
  http: 'http',
  config: 'config',
  cli: 'cli',
  'graph-simulator': 'graph-simulator',
};

/** The layer of a path relative to the repository root, or undefined when it has no place yet. */
export function layerOf(path: string): Layer | undefined {
  const parts = path.split('/');
  if (parts[0] !== 'src') return undefined;
  if (parts.length === 2) return 'wiring'; // src/app.ts, src/main.ts, src/cli.ts and the *-wiring.ts files
  return FOLDERS[parts[1]!];
}

const pure: Layer[] = ['util', 'core'];
const wire: Layer[] = [...pure, 'sip'];
const peers: Layer[] = [...wire, 'bodies', 'trunks'];
const persisted: Layer[] = [...peers, 'store'];
const sides: Layer[] = [...persisted, 'simple', 'graph'];

/** What each layer may import (besides itself). */
export const ALLOWED_IMPORTS: Record<Layer, readonly Layer[]> = {
  util: [],
  core: ['util'],
  sip: ['util'],
  bodies: ['util', 'sip'],
  trunks: ['util', 'sip'],
  store: persisted.filter((l) => l !== 'store'),
  simple: persisted,
  graph: persisted,
  http: sides,
  config: [...sides, 'http'],
  cli: [...sides, 'http', 'config'],
  wiring: [...sides, 'http', 'config', 'cli', 'graph-simulator'],
  'graph-simulator': ['util'],
};

/** Imports that run against ALLOWED_IMPORTS, as "from (layer) imports to (layer)". */
export function brokenImports(graph: ReadonlyMap<string, readonly string[]>): { checked: number; broken: string[] } {
  const broken: string[] = [];
  let checked = 0;
  for (const [file, deps] of graph) {
    const from = layerOf(file);
    if (from === undefined) continue;
    for (const dep of deps) {
      const to = layerOf(dep);
      if (to === undefined || to === from) continue;
      checked++;
      if (!ALLOWED_IMPORTS[from].includes(to)) broken.push(`${file} (${from}) imports ${dep} (${to})`);
    }
  }
  return { checked, broken };
}

/** Files that import each other around a loop (Tarjan's strongly connected components), each circle sorted. */
export function importCircles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let index = 0;
  const stack: string[] = [];
  const onStack = new Set<string>();
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const circles: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        c.push(w);
      } while (w !== v);
      if (c.length > 1 || (graph.get(v) ?? []).includes(v)) circles.push(c.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return circles;
}

/**
 * The barrel policy of ARCHITECTURE.md: a folder has an index.ts only when
 * other folders use it as one unit (these four), and no file imports the
 * barrel of its own folder.
 */
export const BARRELS: readonly string[] = ['src/bodies/index.ts', 'src/store/index.ts', 'src/graph/index.ts', 'src/graph-simulator/index.ts'];

/** Barrels against the policy: not listed, imported by no other folder (dead), or imported from inside their folder. */
export function barrelProblems(graph: ReadonlyMap<string, readonly string[]>): string[] {
  const problems: string[] = [];
  const folderOf = (path: string): string => path.slice(0, path.lastIndexOf('/'));
  const barrels = [...graph.keys()].filter((f) => /^src\/[^/]+\/index\.ts$/.test(f));
  for (const b of barrels) if (!BARRELS.includes(b)) problems.push(`${b} is a barrel the policy does not list`);
  for (const b of BARRELS) {
    if (!graph.has(b)) continue;
    const users = [...graph].filter(([file, deps]) => deps.includes(b)).map(([file]) => file);
    if (!users.some((u) => folderOf(u) !== folderOf(b))) problems.push(`${b} is imported by no other folder`);
    for (const u of users) if (folderOf(u) === folderOf(b)) problems.push(`${u} imports its own folder's barrel`);
  }
  return problems;
}
