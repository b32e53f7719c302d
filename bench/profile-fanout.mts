// Not part of the bench: one PUBLISH to N watchers against the built gateway with --cpu-prof, for the fan-out notes.
// Usage: npx tsx bench/profile-fanout.mts [watchers=10000] [dir] [--no-prof]
import { startGateway } from '../test/helpers/gateway-process.js';
import { benchUsers, runFanout } from './sipp-load.js';
import { freePort } from '../test/helpers/ports.js';
const users = benchUsers(1);
const watchers = Number(process.argv[2] ?? 10_000);
const dir = process.argv[3] ?? '/tmp/fanout-prof';
const prof = !process.argv.includes('--no-prof');
const gw = await startGateway({ users, logLevel: 'warn', command: 'dist', readyTimeoutMs: 30000, nodeArgs: prof ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [],
  overrides: { store: { path: `/tmp/prof-${Date.now()}.db` }, graphSimulator: { port: await freePort(), dir: '/tmp/prof-sim' }, http: { port: await freePort() } } });
const r = await runFanout({ gatewayPort: gw.port, watchers, extension: users[0]!.extension ?? "2000", instances: 4, subscribeRate: 600 });
console.log(JSON.stringify({ ...r, detail: undefined })); if (r.detail !== undefined) console.log(r.detail);
await gw.stop();
