import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { harness } from './helpers.js';

const run = promisify(execFile);

t.test('graph-sim meeting <user> <minutes>: a busy block and InAMeeting; bad minutes refused', async (t) => {
  const h = await harness();
  const dir = mkdtempSync(join(tmpdir(), 'sim-cli-'));
  t.teardown(async () => {
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });
  writeFileSync(join(dir, 'ca.pem'), h.sim.caPem);
  const cli = (...args: string[]) => run(process.execPath, ['--import', 'tsx', 'src/graph-simulator/cli.ts', ...args, '--url', h.sim.origin, '--ca-dir', dir]);
  const out = await cli('meeting', 'anna', '30');
  const printed = JSON.parse(out.stdout) as { start: string; end: string; presence: { activity: string } };
  t.equal(Date.parse(printed.end) - Date.parse(printed.start), 30 * 60_000);
  t.equal(printed.presence.activity, 'InAMeeting');
  t.equal(h.sim.control.presence('anna').activity, 'InAMeeting');
  const refused = await cli('meeting', 'anna', 'soon').then(
    () => 'ran',
    (e: { stderr?: string }) => e.stderr ?? '',
  );
  t.match(refused, /usage: graph-sim meeting <user> <minutes>/);
});
