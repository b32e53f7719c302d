// Not part of the bench: one storm step against a gateway on the default config, then its overload warn lines (queue, shed, absorbed) per second.
// npx tsx bench/storm-diag.mts <rate> <tsx|dist> <seconds>
import { startGateway } from '../test/helpers/gateway-process.js';
import { benchUsers, runStorm } from './sipp-load.js';
import { freePort } from '../test/helpers/ports.js';
const users = benchUsers(1000);
const rate = Number(process.argv[2] ?? 3000);
const gw = await startGateway({ users, logLevel: 'warn', command: (process.argv[3] as 'dist') ?? 'tsx', readyTimeoutMs: 30000,
  overrides: { store: { path: `/tmp/storm-diag-${Date.now()}.db` }, graphSimulator: { port: await freePort(), dir: '/tmp/storm-diag-sim' }, http: { port: await freePort() } } });
const t0 = Date.now();
const s = await runStorm({ gatewayPort: gw.port, rate, seconds: Number(process.argv[4] ?? 3), users });
console.log(JSON.stringify({ ...s, detail: undefined }));
for (const l of gw.logs) { try { const r = JSON.parse(l); console.log(((r.time - t0)/1000).toFixed(1), r.msg, JSON.stringify({q: r.queued, mq: r.maxQueued, shed: r.newlyShed, abs: r.absorbed})); } catch {} }
await gw.stop();
