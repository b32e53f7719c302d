/**
 * Failover of watcher subscriptions (issue 12, item 5): three gateway nodes
 * on one Redis (a 127.0.0.1, b 127.0.0.2, c 127.0.0.3); SIPp watchers
 * subscribe at node a; a PUBLISH at node b reaches every one of them (sent
 * by a, their subscription's owner). Node a is SIGKILLed: within 10 s the
 * next change (a PUBLISH at b) reaches every watcher from another node, in
 * the same dialog (the From tag of a's 200) with a higher CSeq; then each
 * watcher refreshes at node c and gets 200, not 481
 * (sip-fixtures/scenarios/cluster-watch.xml). Then a clean stop (SIGTERM)
 * of c hands its subscriptions to b before c's heartbeat would expire.
 */
import t from 'tap';
import { publishAt, startCluster, until, type TestCluster } from '../helpers/cluster-nodes.js';
import { assertSippInstalled, describeSipp, expectSippOk, startSipp, type SippRun } from '../helpers/sipp.js';

const WATCHERS = 20;
/** The bound: the last orphaned watcher notified within 10 s of the kill. */
const FAILOVER_MS = 10_000;

interface Seen {
  callId: string;
  cseq: number;
  from: string;
  tag: string;
  busy: boolean;
}

/** Every "notify" line of the watcher run, in order. */
function notifies(lines: readonly string[]): Seen[] {
  const out: Seen[] = [];
  for (const line of lines) {
    const m = /^notify (\S+) cseq=(\d+) from=(\S+) tag=(\S+) busy=(\S*)/.exec(line);
    if (m !== null) out.push({ callId: m[1]!, cseq: Number(m[2]), from: m[3]!, tag: m[4]!, busy: m[5] === 'on-the-phone' });
  }
  return out;
}

function byCall(lines: readonly string[]): Map<string, Seen[]> {
  const out = new Map<string, Seen[]>();
  for (const n of notifies(lines)) {
    const list = out.get(n.callId) ?? [];
    list.push(n);
    out.set(n.callId, list);
  }
  return out;
}

let cluster: TestCluster;
let watchers: SippRun;
let etag = '';

t.before(async () => {
  assertSippInstalled();
  cluster = await startCluster(t, { nodes: 3 });
});
t.teardown(() => watchers?.kill());

t.test(`${WATCHERS} watchers subscribe at node a; a PUBLISH at node b reaches all of them from a`, async (t) => {
  const [a, b, c] = cluster.nodes;
  watchers = await startSipp({
    scenario: 'cluster-watch',
    gatewayHost: a!.host,
    gatewayPort: a!.port,
    transport: 'u1',
    service: '1001',
    calls: WATCHERS,
    rate: 200,
    limit: WATCHERS,
    traceLogs: true,
    timeoutSec: 40,
    vars: { refresh_host: c!.host, refresh_port: String(c!.port) },
  });
  await watchers.waitForLogLines(WATCHERS, 10_000, 'subscribed');
  const pub = await publishAt(b!, { activity: 'on-the-phone', note: 'before the failover' });
  expectSippOk(t, pub, 'PUBLISH at node b');
  etag = pub.etag;
  t.ok(etag.length > 0, `entity-tag ${etag}`);
  await watchers.waitForLogLines(WATCHERS, 10_000, 'notify');
  const seen = byCall(watchers.logLines());
  t.equal(seen.size, WATCHERS, 'every watcher notified');
  for (const list of seen.values()) {
    t.equal(list[0]!.from, `${a!.host}:${a!.port}`, 'from node a, their owner');
    t.equal(list[0]!.busy, true, 'on the phone, as published at b');
  }
});

t.test('node a is SIGKILLed: the next change reaches every watcher from another node, same dialog, higher CSeq, within 10 s', async (t) => {
  const [a, b] = cluster.nodes;
  const before = byCall(watchers.logLines());
  await a!.kill();
  const killedAt = Date.now();
  const modify = await publishAt(b!, { etag, activity: 'away', note: 'cluster-final' });
  expectSippOk(t, modify, 'PUBLISH modify at node b');
  etag = modify.etag;
  // each watcher's last NOTIFY is the final change: after it, it refreshes
  await until(
    // the change is the first NOTIFY that is not on the phone (the initial one is not logged)
    () => watchers.logLines().filter((l) => l.startsWith('notify') && / busy=$/.test(l)).length,
    (n) => n >= WATCHERS,
    FAILOVER_MS,
    'every watcher got the change after the kill',
  ).catch(async (err: unknown) => {
    const r = await Promise.race([watchers.done, new Promise<undefined>((res) => setTimeout(() => res(undefined), 100))]);
    throw new Error(`${String(err)}\n${r === undefined ? watchers.logLines().join('\n') : describeSipp(r)}`);
  });
  t.ok(Date.now() - killedAt <= FAILOVER_MS, `every watcher notified ${Date.now() - killedAt} ms after the kill`);
  const after = byCall(watchers.logLines());
  for (const [callId, list] of after) {
    const old = before.get(callId) ?? [];
    const fresh = list.slice(old.length);
    t.ok(fresh.length >= 1, `${callId}: notified after the kill`);
    t.ok(fresh.every((n) => n.from !== `${a!.host}:${a!.port}`), `${callId}: from another node (${[...new Set(fresh.map((n) => n.from))].join(', ')})`);
    t.ok(list.every((n) => n.tag === list[0]!.tag), `${callId}: one dialog (From tag ${list[0]!.tag})`);
    const cseqs = list.map((n) => n.cseq);
    t.ok(cseqs.every((c, i) => i === 0 || c > cseqs[i - 1]!), `${callId}: CSeqs increase: ${cseqs.join(', ')}`);
    t.equal(fresh[fresh.length - 1]!.busy, false, `${callId}: the change (away, not on the phone) arrived`);
  }
});

t.test('the watchers refresh at node c: 200, not 481', async (t) => {
  const [, , c] = cluster.nodes;
  const result = await watchers.done;
  t.equal(result.code, 0, 'every watcher scenario passed (a 481 would fail it)', { detail: result.code === 0 ? '' : describeSipp(result) });
  const refreshed = (result.logs ?? []).filter((l) => l.startsWith('refreshed'));
  t.equal(refreshed.length, WATCHERS, 'every watcher refreshed');
  t.ok(refreshed.every((l) => l.endsWith(`from=${c!.host}:${c!.port}`)), 'the NOTIFY after each refresh came from node c');
});

t.test('a clean stop (SIGTERM) of node c hands its subscriptions over: its watchers notified from b at once', async (t) => {
  const [, b, c] = cluster.nodes;
  const run = await startSipp({
    scenario: 'cluster-watch',
    gatewayHost: c!.host,
    gatewayPort: c!.port,
    transport: 'u1',
    service: '1001',
    calls: 2,
    rate: 100,
    limit: 2,
    traceLogs: true,
    timeoutSec: 20,
    vars: { refresh_host: b!.host, refresh_port: String(b!.port) },
  });
  await run.waitForLogLines(2, 10_000, 'subscribed');
  const stoppedAt = Date.now();
  await c!.stop();
  t.equal((await c!.gateway.exited).code, 0, 'c stopped cleanly');
  // the takeover's NOTIFY, from b, well before c's heartbeat would have expired
  await run.waitForLogLines(2, 5000, 'notify');
  const took = Date.now() - stoppedAt;
  const lines = run.logLines().filter((l) => l.startsWith('notify'));
  t.ok(lines.every((l) => l.includes(`from=${b!.host}:${b!.port} `)), `both notified from b, ${took} ms after the SIGTERM`);
  const modify = await publishAt(b!, { etag, activity: 'on-the-phone', note: 'cluster-final' });
  expectSippOk(t, modify, 'a change at b');
  const result = await run.done;
  t.equal(result.code, 0, 'both watchers refreshed at b: 200', { detail: result.code === 0 ? '' : describeSipp(result) });
});
