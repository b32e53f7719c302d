/**
 * A partition longer than the node TTL (issue 12, items 3 and 4): node a
 * reaches Redis through a TCP proxy that the test pauses; its SIPp watcher
 * of anna still reaches it. While a is cut off it goes on notifying its
 * watcher from memory, and node b, seeing a's heartbeat expire, takes the
 * subscription over (a NOTIFY from b in the same dialog). When the
 * partition heals, a finds the subscription owned by b and lets it go: the
 * next change reaches the watcher once, from b, not twice.
 */
import { Redis } from 'ioredis';
import t from 'tap';
import { keyLayout } from '../../src/store/redis/keys.js';
import { notifyLines, publishAt, startCluster, TEST_TIMINGS, until, watchAt, type TestCluster } from '../helpers/cluster-nodes.js';
import { startRedis } from '../helpers/redis-server.js';
import { assertSippInstalled, describeSipp, type SippRun } from '../helpers/sipp.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

let cluster: TestCluster;
let proxy: TcpProxy;
let watcher: SippRun | undefined;
let raw: Redis;

t.before(async () => {
  assertSippInstalled();
  const redis = await startRedis(t);
  proxy = await startTcpProxy(t, { host: redis.host, port: redis.port });
  raw = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await raw.connect();
  t.teardown(() => raw.disconnect());
  cluster = await startCluster(t, {
    nodes: 2,
    redis,
    overrides: (name) => (name === 'a' ? { store: { redis: { url: proxy.url } } } : {}),
  });
});
t.teardown(() => watcher?.kill());

t.test('partitioned past the TTL: after the heal one node notifies the watcher, not two', async (t) => {
  const [a, b] = cluster.nodes;
  watcher = await watchAt(a!, b!);
  const w = watcher;
  const t0 = Date.now();
  const mark = (what: string): void => void t.comment(`${Date.now() - t0} ms: ${what}`);
  const fail = (err: unknown): never => {
    const pick = (lines: string[]): string => lines.filter((l) => /cluster|took over|node|store|let go|released/i.test(l)).slice(-40).join('\n');
    throw new Error(`${String(err)}\n--- watcher log\n${w.logLines().join('\n')}\n--- a\n${pick(a!.gateway.logs)}\n--- b\n${pick(b!.gateway.logs)}`);
  };

  // a's write of the subscription (owner node-a) is in Redis before the partition
  await until(() => raw.scard(keyLayout().owned('node-a')), (n) => n >= 1, 5000, 'the subscription stored as owned by node-a').catch(fail);
  mark('partition');
  proxy.pause();
  await until(() => a!.readyz(), (r) => r.status === 503, 8000, 'node a not ready while cut off from Redis').catch(fail);
  // b sees a's heartbeat expire and takes the subscription over: its NOTIFY, same dialog
  await until(() => notifyLines(w).some((l) => l.includes(`from=${b!.host}:`)), (seen) => seen, TEST_TIMINGS.nodeTtlMs + 8000, 'the takeover NOTIFY from b').catch(fail);
  t.pass('b took the subscription over while a was cut off');

  mark('heal');
  proxy.resume();
  await until(() => a!.readyz(), (r) => r.status === 200, 10_000, 'node a ready again after the heal').catch(fail);
  // the recheck a TTL later must have run too (nodeTtl + 2 heartbeats in the wiring)
  await new Promise((r) => setTimeout(r, TEST_TIMINGS.nodeTtlMs + 2 * TEST_TIMINGS.heartbeatMs + 500));

  mark('PUBLISH after the heal');
  const before = notifyLines(w).length;
  const pub = await publishAt(b!, { activity: 'on-the-phone', note: 'after the heal' });
  t.equal(pub.code, 0, 'PUBLISH at b answered 200', { detail: pub.code === 0 ? '' : describeSipp(pub) });
  await until(() => notifyLines(w).length, (n) => n > before, 5000, 'the change after the heal notified').catch(fail);
  // give a second NOTIFY (from a) every chance to arrive
  await new Promise((r) => setTimeout(r, 1500));
  const after = notifyLines(w).slice(before);
  t.equal(after.length, 1, `one NOTIFY for the change, not one per node: ${after.join(' | ')}`);
  t.match(after[0], new RegExp(`from=${b!.host.replace(/\./g, '\\.')}:.*busy=on-the-phone`), 'from b, the owner now');
  t.equal(after.filter((l) => l.includes(`from=${a!.host}:`)).length, 0, 'nothing more from a');

  // the watcher ends: the final change, then its refresh at b answered 200 in the same dialog
  mark('final PUBLISH');
  const final = await publishAt(b!, { etag: pub.etag, activity: 'away', note: 'cluster-final' });
  t.equal(final.code, 0, 'the publication modified at b: the final change', { detail: final.code === 0 ? '' : describeSipp(final) });
  const result = await w.done;
  t.equal(result.code, 0, 'every NOTIFY in one dialog, the refresh at b answered 200', { detail: result.code === 0 ? '' : describeSipp(result) });
});
