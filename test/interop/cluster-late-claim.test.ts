/**
 * Every node down, one comes back (issue 12, item 3): node a's SIPp watcher
 * of anna is stored as a's; a is SIGKILLed while it runs alone; node b starts
 * only after a's heartbeat has expired, so it finds a dead before it serves
 * SIP. b claims a's subscription as soon as it does and notifies the watcher
 * in the same dialog, without waiting for the watcher's refresh.
 */
import { Redis } from 'ioredis';
import t from 'tap';
import { keyLayout } from '../../src/store/redis/keys.js';
import { notifyLines, publishAt, startCluster, TEST_TIMINGS, until, watchAt, type TestCluster } from '../helpers/cluster-nodes.js';
import { assertSippInstalled, describeSipp, type SippRun } from '../helpers/sipp.js';

let cluster: TestCluster;
let watcher: SippRun | undefined;
let raw: Redis;

t.before(async () => {
  assertSippInstalled();
  cluster = await startCluster(t, { nodes: 2, start: false });
  raw = new Redis(cluster.redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await raw.connect();
  t.teardown(() => raw.disconnect());
});
t.teardown(() => watcher?.kill());

t.test('a node started after the only other one died takes its watchers over at once', async (t) => {
  const [a, b] = cluster.nodes;
  await a!.start();
  watcher = await watchAt(a!, b!);
  const w = watcher;
  const fail = (err: unknown): never => {
    throw new Error(`${String(err)}\n--- watcher log\n${w.logLines().join('\n')}`);
  };
  await until(() => raw.scard(keyLayout().owned('node-a')), (n) => n >= 1, 5000, 'the subscription stored as owned by node-a').catch(fail);
  await a!.kill();
  // a's heartbeat gone before b starts: b sees a dead while it starts up, before it serves SIP
  await until(() => raw.exists(keyLayout().node('node-a')), (n) => n === 0, TEST_TIMINGS.nodeTtlMs + 3000, "a's heartbeat expired").catch(fail);
  await b!.start();
  const startedAt = Date.now();
  await until(() => notifyLines(w).some((l) => l.includes(`from=${b!.host}:`)), (seen) => seen, 10_000, 'the takeover NOTIFY from b').catch(fail);
  t.ok(Date.now() - startedAt < 10_000, `b notified a's watcher ${Date.now() - startedAt} ms after it was ready, before any refresh`);
  t.equal(await raw.scard(keyLayout().owned('node-b')), 1, 'the subscription is owned by node-b now');

  const final = await publishAt(b!, { activity: 'away', note: 'cluster-final' });
  t.equal(final.code, 0, 'final PUBLISH at b', { detail: final.code === 0 ? '' : describeSipp(final) });
  const result = await w.done;
  t.equal(result.code, 0, 'every NOTIFY in one dialog, the refresh at b answered 200', { detail: result.code === 0 ? '' : describeSipp(result) });
});
