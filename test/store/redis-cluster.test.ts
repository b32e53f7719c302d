/**
 * createRedisCluster (src/store/redis/cluster.ts): close() releases every
 * lease and deletes the heartbeat at once; a cluster created while Redis is
 * down starts disconnected and joins when Redis comes.
 */
import t from 'tap';
import { startRedis } from '../helpers/redis-server.js';
import { probeClient, startNode, until } from './redis-cluster-nodes.js';

t.test('close() releases every lease and deletes the heartbeat at once', async (t) => {
  const redis = await startRedis(t);
  const a = await startNode(t, redis.url, 'a');
  const lost: string[] = [];
  for (const job of ['graph:poller', 'graph:writer']) {
    a.cluster.leases.hold(job, { acquired: () => undefined, lost: (reason) => void lost.push(`${job} ${reason}`) });
  }
  await until(() => a.cluster.leases.held('graph:poller') !== undefined && a.cluster.leases.held('graph:writer') !== undefined, 1000, 'a holds both');
  const probe = await probeClient(t, redis.url);
  t.ok(await probe.exists('test:node:a'), 'heartbeat there');
  await a.cluster.close();
  t.same(lost.sort(), ['graph:poller released', 'graph:writer released']);
  t.equal(await probe.exists('test:node:a', 'test:lease:graph:poller', 'test:lease:graph:writer'), 0, 'heartbeat and leases gone');
  t.ok(await probe.sismember('test:nodes', 'a'), 'still in the node set: the others claim what it owned');
  await a.cluster.close();
});

t.test('a cluster created while Redis is down starts disconnected and joins when Redis comes', async (t) => {
  const redis = await startRedis(t);
  await redis.stop();
  const a = await startNode(t, redis.url, 'a', { connectTimeoutMs: 200 });
  t.notOk(a.cluster.connected(), 'not connected');
  const changes: boolean[] = [];
  a.cluster.onConnected((up) => changes.push(up));
  const lease = a.cluster.leases.hold('graph:poller', { acquired: () => undefined, lost: () => undefined });
  await redis.start();
  await until(() => a.cluster.connected(), 3000, 'connected');
  t.same(changes, [true]);
  const probe = await probeClient(t, redis.url);
  await until(() => a.cluster.leases.held('graph:poller') !== undefined, 1000, 'the lease is acquired');
  t.ok(await probe.exists('test:node:a'), 'the heartbeat is there');
  await lease();
});
