/**
 * Redis trouble (issue 12, item 4): two nodes on one Redis, SIPp watchers of
 * anna at each. Redis is stopped for 5 s: each node still NOTIFYs its own
 * watchers of a change made on it (a PUBLISH there), answers new SUBSCRIBEs,
 * and says 503 on /readyz; after Redis is back, /readyz is 200 and nothing
 * acknowledged is lost: a node started afterwards has the state published
 * during the outage, and when node a is then SIGKILLed the subscription it
 * accepted during the outage is taken over (its watcher notified from
 * another node, same dialog) like the older one.
 */
import t from 'tap';
import { notifyLines, publishAt, startCluster, until, watchAt, type ClusterNode, type TestCluster } from '../helpers/cluster-nodes.js';
import { assertSippInstalled, describeSipp, expectSippOk, type SippRun } from '../helpers/sipp.js';

const OUTAGE_MS = 5000;

let cluster: TestCluster;
const watchers: Array<{ name: string; run: SippRun; at: ClusterNode }> = [];
let etagA = '';
let etagB = '';

t.before(async () => {
  assertSippInstalled();
  cluster = await startCluster(t, { nodes: 3, start: false });
  const [a, b] = cluster.nodes;
  await Promise.all([a!.start(), b!.start()]);
});
t.teardown(() => {
  for (const w of watchers) w.run.kill();
});

/** A cluster-watch watcher of anna at `at`, refreshing at b when it is done; resolves once subscribed. */
async function watch(name: string, at: ClusterNode): Promise<SippRun> {
  const run = await watchAt(at, cluster.node('b'));
  watchers.push({ name, run, at });
  return run;
}

/** What each watcher logged, or how it ended (for a failure message). */
async function report(err: unknown): Promise<never> {
  const parts: string[] = [String(err)];
  for (const w of watchers) {
    const r = await Promise.race([w.run.done, new Promise<undefined>((res) => setTimeout(() => res(undefined), 100))]);
    parts.push(`--- ${w.name} (at ${w.at.name}) ${r === undefined ? 'running' : 'exited'}\n${r === undefined ? w.run.logLines().join('\n') : describeSipp(r)}`);
  }
  throw new Error(parts.join('\n'));
}

async function publish(at: ClusterNode, activity: string, note: string): Promise<string> {
  const pub = await publishAt(at, { activity, note });
  if (pub.code !== 0) throw new Error(`PUBLISH at ${at.name} failed\n${describeSipp(pub)}`);
  return pub.etag;
}

t.test('before: a watcher of anna at each node', async (t) => {
  const [a, b] = cluster.nodes;
  await watch('a0', a!);
  await watch('b0', b!);
  for (const n of [a!, b!]) t.equal((await n.readyz()).status, 200, `node ${n.name} ready`);
});

t.test('Redis stopped for 5 s: own watchers notified of own changes, new SUBSCRIBEs answered, /readyz 503', async (t) => {
  const [a, b] = cluster.nodes;
  const [a0, b0] = watchers;
  const stoppedAt = Date.now();
  await cluster.redis.stop();
  for (const n of [a!, b!]) {
    const r = await until(() => n.readyz(), (r) => r.status === 503, 4000, `node ${n.name} not ready`);
    t.equal(r.body['cluster'], false, `node ${n.name}: /readyz 503, cluster part false`);
  }
  const notifiedA = notifyLines(a0!.run).length;
  const notifiedB = notifyLines(b0!.run).length;
  etagA = await publish(a!, 'on-the-phone', 'published at a during the outage');
  t.ok(etagA.length > 0, 'PUBLISH at a answered 200');
  etagB = await publish(b!, 'away', 'published at b during the outage');
  t.ok(etagB.length > 0, 'PUBLISH at b answered 200');
  await until(() => notifyLines(a0!.run).length, (n) => n > notifiedA, 3000, 'the watcher at a notified');
  t.match(notifyLines(a0!.run).at(-1), /from=127\.0\.0\.1:\d+ .*busy=on-the-phone/, 'the watcher at a got a\'s change from a');
  await until(() => notifyLines(b0!.run).length, (n) => n > notifiedB, 3000, 'the watcher at b notified');
  t.match(notifyLines(b0!.run).at(-1), new RegExp(`from=${b!.host.replace(/\./g, '\\.')}:`), 'the watcher at b got b\'s change from b');
  // a new subscription at each node, answered while Redis is away
  await watch('a1', a!);
  await watch('b1', b!);
  t.pass('new SUBSCRIBEs at a and b answered (200 and NOTIFY)');
  for (const n of [a!, b!]) t.equal((await n.readyz()).status, 503, `node ${n.name} still not ready`);
  const left = OUTAGE_MS - (Date.now() - stoppedAt);
  if (left > 0) await new Promise((r) => setTimeout(r, left));
  await cluster.redis.start();
  for (const n of [a!, b!]) await until(() => n.readyz(), (r) => r.status === 200, 8000, `node ${n.name} ready again`);
  t.pass(`Redis back after ${Date.now() - stoppedAt} ms: both nodes ready`);
});

t.test('nothing acknowledged is lost: a node started afterwards has the state; a\'s outage subscription is taken over', async (t) => {
  const [a, b, c] = cluster.nodes;
  // each node published its own change again on reconnect: both are in the shared state
  await c!.start();
  const row = (await c!.api('/users/anna')) as Record<string, unknown>;
  t.match(JSON.stringify(row), /during the outage/, 'node c, started after the outage, has anna\'s state published during it');
  const before = new Map(watchers.map((w) => [w.name, notifyLines(w.run).length]));
  await a!.kill();
  // the takeover's NOTIFY reaches both of a's watchers, the one subscribed during the outage included
  for (const w of watchers.filter((x) => x.at === a)) {
    await until(() => notifyLines(w.run).length, (n) => n > before.get(w.name)!, 10_000, `watcher ${w.name} notified after a died`).catch(report);
    const last = notifyLines(w.run).at(-1)!;
    t.notMatch(last, /from=127\.0\.0\.1:/, `watcher ${w.name} (subscribed at a${w.name === 'a1' ? ' during the outage' : ''}) notified from another node: ${last}`);
  }
  // both publications of the outage modified at b: a's, taken over by a survivor (its entity-tag kept),
  // then b's own, the final change (the latest of equal weight is shown): each watcher then refreshes at b
  for (const [whose, etag, note] of [['a', etagA, 'modified after the outage'], ['b', etagB, 'cluster-final']] as const) {
    const counts = new Map(watchers.map((w) => [w.name, notifyLines(w.run).length]));
    const modify = await publishAt(b!, { etag, activity: 'away', note });
    expectSippOk(t, modify, `${whose}'s publication from the outage modified at b (SIP-If-Match: 200)`);
    if (note !== 'cluster-final') {
      for (const w of watchers) await until(() => notifyLines(w.run).length, (n) => n > counts.get(w.name)!, 5000, `watcher ${w.name} notified of the modify`).catch(report);
    }
  }
  for (const w of watchers) {
    const result = await w.run.done;
    t.equal(result.code, 0, `watcher ${w.name}: every NOTIFY in one dialog, refresh at b answered 200`, { detail: result.code === 0 ? '' : describeSipp(result) });
    const tags = new Set(
      (result.logs ?? [])
        .filter((l) => l.startsWith('notify'))
        .map((l) => /tag=(\S+)/.exec(l)?.[1]),
    );
    t.equal(tags.size, 1, `watcher ${w.name}: one dialog`);
  }
});
