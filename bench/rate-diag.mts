// Not part of the bench: one rate step against the built gateway (dist), for the hot-path notes. Optional:
//   --prof dir   --cpu-prof into dir (summarise with bench/profile-summary.mts)
//   --gc         GC counts per transaction from the gateway's --trace-gc lines
//   --alloc      bytes allocated per subscription by function (the inspector's sampling heap profiler, garbage
//                included), top 30
//   --closed N   at most N calls open at once (SIPp -l N) with the rate as a ceiling: on a busy machine the
//                gateway is never overloaded, so the counts per subscription are of the clean path only
// Usage: npx tsx bench/rate-diag.mts [rate=3000] [seconds=5] [--prof dir] [--gc] [--alloc] [--closed N]
import WebSocket from 'ws';
import { startGateway } from '../test/helpers/gateway-process.js';
import { benchUsers, runRateStep, type RateStepResult } from './sipp-load.js';
import { runSipp } from '../test/helpers/sipp.js';
import { freePort } from '../test/helpers/ports.js';

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => { const i = args.indexOf(name); return i < 0 ? undefined : args[i + 1]; };
const positional = args.filter((a, i) => !a.startsWith('--') && !(i > 0 && (args[i - 1] === '--prof' || args[i - 1] === '--closed')));
const closed = flag('--closed') === undefined ? undefined : Number(flag('--closed'));
const rate = Number(positional[0] ?? 3000);
const seconds = Number(positional[1] ?? 5);
const profDir = flag('--prof');
const gc = args.includes('--gc');
const alloc = args.includes('--alloc');
const inspectPort = alloc ? await freePort() : 0;
const users = benchUsers(1000);
const nodeArgs = [
  ...(profDir !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []),
  ...(gc ? ['--trace-gc'] : []),
  ...(alloc ? [`--inspect=127.0.0.1:${inspectPort}`] : []),
];
const gw = await startGateway({ users, logLevel: 'warn', command: 'dist', readyTimeoutMs: 30000, nodeArgs,
  overrides: { store: { path: `/tmp/rate-diag-${Date.now()}.db` }, graphSimulator: { port: await freePort(), dir: '/tmp/rate-diag-sim' }, http: { port: await freePort() } } });

interface SampleNode { callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; children: SampleNode[] }
let inspector: { call(method: string, params?: object): Promise<Record<string, unknown>>; close(): void } | undefined;
if (alloc) {
  const list = (await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`)).json()) as Array<{ webSocketDebuggerUrl: string }>;
  const ws = new WebSocket(list[0]!.webSocketDebuggerUrl);
  await new Promise((r) => ws.once('open', r));
  let id = 0;
  const waiting = new Map<number, (v: Record<string, unknown>) => void>();
  ws.on('message', (m) => { const msg = JSON.parse(String(m)) as { id?: number; result?: Record<string, unknown> }; if (msg.id !== undefined) waiting.get(msg.id)?.(msg.result ?? {}); });
  inspector = {
    call: (method, params = {}) => new Promise((resolve) => { const n = ++id; waiting.set(n, resolve); ws.send(JSON.stringify({ id: n, method, params })); }),
    close: () => ws.close(),
  };
  await inspector.call('HeapProfiler.enable');
  await inspector.call('HeapProfiler.startSampling', { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
}
const countGc = (): { scavenges: number; markCompacts: number } => ({
  scavenges: gw.logs.filter((l) => l.includes(' Scavenge ')).length,
  markCompacts: gw.logs.filter((l) => l.includes('Mark-Compact') || l.includes('Mark-sweep')).length,
});
const before = countGc();
const s: RateStepResult = closed === undefined ? await runRateStep({ gatewayPort: gw.port, rate, seconds, users }) : await closedLoop(closed);

async function closedLoop(limit: number): Promise<RateStepResult> {
  const calls = Math.round(rate * seconds);
  const r = await runSipp({
    scenario: 'bench-subscribe', gatewayPort: gw.port, transport: 'u1', calls, rate, limit, timeoutSec: seconds * 20 + 30,
    injection: ['SEQUENTIAL', ...users.map((u) => `${u.extension ?? u.id};3600`)], traceStat: true, buffSize: 4 * 1024 * 1024,
  });
  const stat = (c: string): number => { const v = Number(r.stats?.[c]); return Number.isFinite(v) ? v : 0; };
  const successful = stat('SuccessfulCall(C)');
  return { offeredPerSecond: rate, calls, achievedPerSecond: Number.NaN, successful, failures: calls - successful, retransmissions: stat('Retransmissions(C)'),
    p50Ms: Number.NaN, p99Ms: Number.NaN, maxMs: Number.NaN, sippExitCode: r.code };
}
const after = countGc();
const tx = s.successful;
const perTenK = (n: number): string => (tx > 0 ? ((10_000 * n) / tx).toFixed(1) : 'n/a');
console.log(JSON.stringify({ ...s, detail: undefined }));
if (gc) console.log(`GC during the step: ${after.scavenges - before.scavenges} scavenges, ${after.markCompacts - before.markCompacts} mark-compacts for ${tx} subscriptions: ` +
  `${perTenK(after.scavenges - before.scavenges)} scavenges and ${perTenK(after.markCompacts - before.markCompacts)} mark-compacts per 10,000`);
if (inspector !== undefined) {
  const { profile } = (await inspector.call('HeapProfiler.stopSampling')) as unknown as { profile: { head: SampleNode } };
  inspector.close();
  const bySelf = new Map<string, number>();
  let total = 0;
  const label = (f: SampleNode['callFrame']): string => `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${f.lineNumber + 1}`;
  const walk = (n: SampleNode, caller = ''): void => {
    const f = n.callFrame;
    // a builtin (Map growth, join, slice) is named with its caller
    const name = f.url === '' && caller !== '' ? `${f.functionName || '(anonymous)'} < ${caller}` : label(f);
    bySelf.set(name, (bySelf.get(name) ?? 0) + n.selfSize);
    total += n.selfSize;
    for (const c of n.children) walk(c, f.url === '' ? caller : label(f));
  };
  walk(profile.head);
  console.log(`allocated (sampled, start-up excluded): ${(total / 1e6).toFixed(1)} MB, ${tx > 0 ? (total / tx).toFixed(0) : 'n/a'} bytes per subscription`);
  for (const [name, b] of [...bySelf].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`${(tx > 0 ? b / tx : 0).toFixed(0).padStart(7)} B/sub  ${name}`);
}
if (s.detail !== undefined) console.log(s.detail.slice(0, 1500));
await gw.stop();
