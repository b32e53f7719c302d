/**
 * Every SIPp scenario in sip-fixtures/scenarios loads in SIPp (XML, keywords,
 * variables, labels). Runs without the gateway: SIPp sends to a port nobody
 * listens on and stops at its 1 s timeout, which proves the scenario was
 * accepted; a scenario SIPp rejects ends at once with its error instead.
 */
import t from 'tap';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers/gateway-process.js';
import { freePort } from '../helpers/ports.js';
import { assertSippInstalled, runSipp } from '../helpers/sipp.js';

const dir = join(repoRoot(), 'sip-fixtures', 'scenarios');
const scenarios = readdirSync(dir).filter((f) => f.endsWith('.xml')).sort();

t.before(() => {
  assertSippInstalled();
});

t.test('the scenario folder holds the interop and bench scenarios', async (t) => {
  for (const name of [
    'subscribe-notify', 'refresh', 'unsubscribe', 'publish-then-notify-watcher', 'publish-then-notify', 'publish-refresh-412',
    'unknown-event', 'interval-too-brief', 'bad-accept', 'unknown-user', 'dialog-subscribe', 'cisco-accept',
    'bench-subscribe', 'bench-watch', 'bench-watch-many', 'kam-bench-watch',
  ]) {
    t.ok(scenarios.includes(`${name}.xml`), `${name}.xml present`);
  }
});

t.test('SIPp accepts every scenario', async (t) => {
  const deadPort = await freePort();
  const results = await Promise.all(
    scenarios.map(async (file) => {
      const result = await runSipp({
        scenario: join(dir, file),
        gatewayPort: deadPort,
        transport: 'u1',
        calls: 1,
        timeoutSec: 1,
        // bench-subscribe reads user and Expires from an injection file.
        injection: ['SEQUENTIAL', '1001;3600'],
        // The teams-* scenarios take their variable parts as -key values.
        vars: {
          event: 'presence',
          accept: 'application/pidf+xml',
          etag: 'lint-etag',
          dstate: 'confirmed',
          version: '1',
          // The kam-* scenarios address Kamailio's domain.
          domain: 'lint.example',
          dialog: 'lint-dialog',
          activity: 'on-the-phone',
          // the cluster-* scenarios: a note to publish, the node a watcher refreshes at
          note: 'lint note',
          refresh_host: '127.0.0.1',
          refresh_port: String(deadPort),
        },
      });
      return { file, result };
    }),
  );
  for (const { file, result } of results) {
    t.match(result.stderr, /timed out after/, `${file}: loaded and ran until the timeout`, {
      stderr: result.stderr.slice(0, 2000),
    });
  }
});

t.test('a broken scenario is reported, not accepted (the check above can fail)', async (t) => {
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const work = await mkdtemp(join(tmpdir(), 'pg-scenario-'));
  const broken = join(work, 'broken.xml');
  // A variable assigned and never used: SIPp refuses such a scenario.
  await writeFile(
    broken,
    '<?xml version="1.0"?>\n<scenario name="broken">\n<send><![CDATA[\nOPTIONS sip:x@[remote_ip] SIP/2.0\nContent-Length: 0\n\n]]></send>\n' +
      '<recv response="200"><action><ereg regexp="." search_in="msg" assign_to="unused"/></action></recv>\n</scenario>\n',
  );
  const result = await runSipp({ scenario: broken, gatewayPort: await freePort(), transport: 'u1', timeoutSec: 1 });
  await rm(work, { recursive: true, force: true });
  t.notMatch(result.stderr, /timed out after/, 'SIPp stopped before running it');
  t.not(result.code, 0, 'non-zero exit code');
});
