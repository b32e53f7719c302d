/**
 * State across gateway restarts (real gateway process, SIPp watchers and
 * phone, SQLite store file): SIPp watchers keep
 * getting NOTIFYs after the gateway is killed (SIGKILL) and after it is
 * stopped (SIGTERM) and started again with the same config and store file,
 * without ever subscribing again; NOTIFY CSeqs strictly increase across the
 * restarts; a phone's publication survives (its SIP-If-Match modify after
 * the restart gets 200) and its changes reach the old watchers.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { errorRecords, samePlaceOverrides, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { freePort } from '../helpers/ports.js';
import { assertSippInstalled, describeSipp, expectSippOk, runSipp, startSipp, type SippRun, type SippTransport } from '../helpers/sipp.js';

let dir = '';
let port = 0;
let httpPort = 0;
let gateway: GatewayProcess | undefined;
const watchers: SippRun[] = [];

t.before(async () => {
  assertSippInstalled();
  dir = await mkdtemp(join(tmpdir(), 'pg-persist-'));
  port = await freePort();
  httpPort = await freePort();
});
t.teardown(async () => {
  for (const w of watchers) w.kill();
  await gateway?.stop();
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

/** The gateway on the same port and store file every time. */
async function start(): Promise<GatewayProcess> {
  gateway = await startGateway({ overrides: samePlaceOverrides({ port, httpPort, dir }) });
  return gateway;
}

/**
 * SIPp watchers over UDP, one per SIPp transport mode. TCP is not driven by
 * SIPp here: after a restart the gateway opens a new connection to the
 * watcher's Contact (the old one died with the process), and SIPp's t1 mode
 * answers the NOTIFY on the call's old, dead socket (EPIPE, the call fails);
 * a real TCP phone answers on the connection the request came on (RFC 3261
 * §18.2.2). The restore of a TCP subscription is covered by
 * test/store/restore-subscriptions.test.ts (transport and destination kept).
 */
const TRANSPORTS: ReadonlyArray<readonly [string, SippTransport]> = [
  ['UDP', 'u1'],
  ['UDP (second watcher)', 'u1'],
];

interface Seen {
  cseq: number;
  busy: boolean;
}

/** The NOTIFYs a watcher logged after its initial one (its log file goes when SIPp exits: then pass result.logs). */
function seen(w: SippRun, lines: readonly string[] = w.logLines()): Seen[] {
  const out: Seen[] = [];
  for (const line of lines) {
    const m = /^notify \S+ cseq=(\d+) busy=(\S*)/.exec(line);
    if (m !== null) out.push({ cseq: Number(m[1]), busy: m[2] === 'on-the-phone' });
  }
  return out;
}

/** Resolves when every watcher has logged `count` NOTIFYs after its initial one. */
async function allSeen(count: number, timeoutMs = 15_000): Promise<void> {
  try {
    await Promise.all(watchers.map((w) => w.waitForLogLines(count + 1, timeoutMs)));
  } catch (error) {
    // say why a watcher stopped
    const details: string[] = [];
    for (const [i, w] of watchers.entries()) {
      const r = await Promise.race([w.done, new Promise<undefined>((res) => setTimeout(() => res(undefined), 100))]);
      if (r !== undefined) details.push(`${TRANSPORTS[i]![0]} watcher exited:\n${describeSipp(r)}\nlogs: ${(r.logs ?? []).join(' | ')}`);
    }
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n${details.join('\n')}`);
  }
}

/** The initial NOTIFY of each watcher is the first in its dialog. */
let initialCseq = 0;
let etag = '';

t.test('two watchers subscribe', async (t) => {
  await start();
  for (const [, transport] of TRANSPORTS) {
    const w = await startSipp({
      scenario: 'persist-watch',
      gatewayPort: port,
      transport,
      service: '1001',
      traceLogs: true,
      timeoutSec: 120,
    });
    watchers.push(w);
    await w.waitForLogLines(1, 10_000, 'subscribed');
  }
  initialCseq = 1;
  t.equal(watchers.length, 2, 'two watchers subscribed');
  t.equal(gateway!.records().filter((r) => r['msg'] === 'subscription created').length, 2, 'two subscriptions created');
});

t.test('after SIGKILL and a start with the same store, the watchers get a NOTIFY in their dialog', async (t) => {
  const before = gateway!;
  process.kill(before.pid, 'SIGKILL');
  t.equal((await before.exited).signal, 'SIGKILL', 'killed');
  await before.stop();
  const gw = await start();
  await allSeen(1);
  for (const [i, w] of watchers.entries()) {
    const [n] = seen(w);
    t.ok(n !== undefined && n.cseq > initialCseq, `${TRANSPORTS[i]![0]} watcher: restored NOTIFY with a higher CSeq (${n?.cseq})`);
  }
  const restored = gw.records().find((r) => r['msg'] === 'state restored from the store');
  t.match(restored, { subscriptions: { restored: 2 } }, 'both subscriptions restored');
  t.equal(gw.records().filter((r) => r['msg'] === 'subscription created').length, 0, 'nobody subscribed again');
});

t.test('a PUBLISH after the restart reaches the old watchers', async (t) => {
  const pub = await runSipp({ scenario: 'persist-publish', gatewayPort: port, transport: 'u1', service: '1001', traceLogs: true });
  expectSippOk(t, pub, 'persist-publish');
  etag = /^etag (\S+)/m.exec((pub.logs ?? []).join('\n'))?.[1] ?? '';
  t.ok(etag.length > 0, `entity-tag ${etag}`);
  await allSeen(2);
  for (const w of watchers) t.equal(seen(w)[1]?.busy, true, 'on-the-phone reached the watcher');
});

t.test('after SIGTERM and a start, the publication and the subscriptions are still there', async (t) => {
  const before = gateway!;
  await before.stop();
  t.equal((await before.exited).code, 0, 'clean exit on SIGTERM');
  t.notOk(
    before.records().some((r) => typeof r['msg'] === 'string' && /subscription terminated/.test(r['msg'])),
    'no subscription ended at the stop',
  );
  const gw = await start();
  await allSeen(3);
  for (const w of watchers) t.equal(seen(w)[2]?.busy, true, 'restored NOTIFY shows the restored publication (on-the-phone)');
  t.match(gw.records().find((r) => r['msg'] === 'state restored from the store'), { subscriptions: { restored: 2 }, publications: { restored: 1 } });

  const modify = await runSipp({ scenario: 'persist-publish-modify', gatewayPort: port, transport: 'u1', service: '1001', vars: { etag } });
  expectSippOk(t, modify, 'SIP-If-Match with the entity-tag from before the restart');
  // the fourth NOTIFY is the scenario's last: SIPp exits after logging it
  for (const w of watchers) {
    const result = await w.done;
    t.equal(seen(w, result.logs ?? [])[3]?.busy, false, 'the modified (idle) state reached the watcher');
  }
});

t.test('the watchers finished without re-subscribing; CSeqs strictly increased across both restarts', async (t) => {
  for (const [i, w] of watchers.entries()) {
    const result = await w.done;
    const name = TRANSPORTS[i]![0];
    t.equal(result.code, 0, `${name} watcher scenario passed`, { detail: result.code === 0 ? '' : describeSipp(result) });
    const cseqs = [initialCseq, ...seen(w, result.logs ?? []).map((s) => s.cseq)];
    t.equal(cseqs.length, 5, `${name}: initial NOTIFY and four more`);
    t.ok(cseqs.every((c, k) => k === 0 || c > cseqs[k - 1]!), `${name}: NOTIFY CSeqs strictly increase: ${cseqs.join(', ')}`);
  }
  t.same(errorRecords(gateway!), [], 'no errors logged');
});
