// Not part of the bench: a short rate run against the built gateway with --cpu-prof, for the hot-path notes.
import { startGateway } from '../test/helpers/gateway-process.js';
import { benchUsers, runRateStep } from './sipp-load.js';
import { freePort } from '../test/helpers/ports.js';
const users = benchUsers(1000);
const dir = process.argv[3] ?? '/tmp/h6prof';
const gw = await startGateway({ users, logLevel: 'warn', command: 'dist', readyTimeoutMs: 30000, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`],
  overrides: { store: { path: `/tmp/prof-${Date.now()}.db` }, graphSimulator: { port: await freePort(), dir: '/tmp/prof-sim' }, http: { port: await freePort() } } });
const s = await runRateStep({ gatewayPort: gw.port, rate: Number(process.argv[2] ?? 2000), seconds: 4, users });
console.log(JSON.stringify({ ...s, detail: undefined }));
await gw.stop();
