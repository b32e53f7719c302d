// Not part of the bench: the fan-out phases against the built gateway (as bench/run.ts starts it), optionally with
// --cpu-prof, then the gateway's overload warn lines (queue, shed) by second.
// Usage: npx tsx bench/fanout-diag.mts <one|many|storm> [--prof dir]   (storm: 10,000/s for 8 s on the demo config)
import { startGateway } from '../test/helpers/gateway-process.js';
import { freePort } from '../test/helpers/ports.js';
import { benchUsers, runFanout, runFanoutMany, runStorm } from './sipp-load.js';
const which = process.argv[2] ?? 'many';
const profAt = process.argv.indexOf('--prof');
const nodeArgs = profAt > 0 ? ['--cpu-prof', `--cpu-prof-dir=${process.argv[profAt + 1] ?? '/tmp/fanout-prof'}`] : [];
const users = which === 'one' ? benchUsers(1) : benchUsers(1000);
const demo = which === 'storm'
  ? { overrides: { store: { path: `/tmp/storm-diag-${Date.now()}.db` }, graphSimulator: { port: await freePort(), dir: '/tmp/storm-diag-sim' }, http: { port: await freePort() } } }
  : {};
const gw = await startGateway({ users, logLevel: 'warn', command: 'dist', readyTimeoutMs: 30000, nodeArgs, ...demo });
const t0 = Date.now();
const r =
  which === 'storm'
    ? await runStorm({ gatewayPort: gw.port, rate: 10_000, seconds: 8, users })
    : which === 'one'
    ? await runFanout({ gatewayPort: gw.port, watchers: 10_000, extension: users[0]!.extension ?? '2000', instances: 4 })
    : await runFanoutMany({ gatewayPort: gw.port, users, watchersEach: 20, instances: 4 });
console.log(JSON.stringify({ ...r, detail: undefined }));
if (r.detail !== undefined) console.log(r.detail.slice(0, 600));
for (const l of gw.logs) {
  try {
    const x = JSON.parse(l) as Record<string, unknown>;
    console.log((((x.time as number) - t0) / 1000).toFixed(1), x.msg, JSON.stringify({ q: x.queued, mq: x.maxQueued, shed: x.newlyShed }));
  } catch {}
}
await gw.stop();
