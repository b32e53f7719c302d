// Not part of the bench: top self-time functions of a .cpuprofile (node --cpu-prof), for the hot-path notes.
// Only the load window counts: from the first to the last sample under the notifier's SUBSCRIBE handler (start-up and
// shutdown left out). Usage: npx tsx bench/profile-summary.mts <file.cpuprofile> [top=25] [marker=handleSubscribe]
import { readFileSync } from 'node:fs';

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface Profile { nodes: Node[]; samples: number[]; timeDeltas: number[] }

const file = process.argv[2];
if (file === undefined) throw new Error('usage: profile-summary.mts <file.cpuprofile> [top]');
const top = Number(process.argv[3] ?? 25);
/** the notifier function whose first and last samples bound the window: handleSubscribe (rate), drainFanout (fan-out) */
const marker = process.argv[4] ?? 'handleSubscribe';
const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const underReceive = new Map<number, boolean>();
const isUnderReceive = (id: number): boolean => {
  const known = underReceive.get(id);
  if (known !== undefined) return known;
  const n = byId.get(id)!;
  const here = n.callFrame.url.endsWith('simple/notifier.js') && n.callFrame.functionName === marker;
  const up = parent.get(id);
  const v = here || (up !== undefined && isUnderReceive(up));
  underReceive.set(id, v);
  return v;
};
let first = -1; // samples index of the window
let last = -1;
p.samples.forEach((id, i) => {
  if (isUnderReceive(id)) {
    if (first < 0) first = i;
    last = i;
  }
});
const self = new Map<string, number>();
/** self time by module: the file of the function (node internals by module name, native frames by their name) */
const byModule = new Map<string, number>();
let total = 0;
if (first < 0) throw new Error(`${file}: no sample under ${marker} (not the gateway's main thread?)`);
for (let i = first; i <= last; i++) {
  const n = byId.get(p.samples[i]!)!;
  const dt = p.timeDeltas[i + 1] ?? 0;
  const f = n.callFrame;
  const where = f.url === '' ? '' : ` ${f.url.replace(/^.*\/(dist|node_modules)\//, '$1/').replace(/^node:/, 'node:')}:${f.lineNumber + 1}`;
  const name = `${f.functionName || '(anonymous)'}${where}`;
  if (f.functionName === '(idle)') continue;
  self.set(name, (self.get(name) ?? 0) + dt);
  const module = f.url === '' ? `(native) ${f.functionName || '(anonymous)'}` : f.url.replace(/^.*\/(dist|node_modules)\//, '$1/');
  byModule.set(module, (byModule.get(module) ?? 0) + dt);
  total += dt;
}
const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, top);
console.log(`busy ${(total / 1000).toFixed(0)} ms in the load window (idle excluded)`);
for (const [name, t] of rows) console.log(`${((100 * t) / total).toFixed(1).padStart(5)} %  ${name}`);
console.log('by module (self time):');
for (const [name, t] of [...byModule].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${((100 * t) / total).toFixed(1).padStart(5)} %  ${name}`);
