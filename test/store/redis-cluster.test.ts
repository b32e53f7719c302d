/**
 * createRedisCluster (src/store/redis/cluster.ts): close() releases every
 * lease and deletes the heartbeat at once; a cluster created while Redis is
 * down starts disconnected and joins when Redis comes; a partition (open
 * connection, no answers) is seen as disconnected and its healing as a
 * reconnect; publishes waiting for Redis are capped.
 */
import t from 'tap';
import { RedisBus } from '../../src/store/redis/bus.js';
import { keyLayout } from '../../src/store/redis/keys.js';
import { silentLogger } from '../../src/util/logger.js';
import { startRedis } from '../helpers/redis-server.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { eventually, probeClient, startNode, testClient, TIMINGS, until } from './redis-cluster-nodes.js';

t.test('close() releases every lease and deletes the heartbeat at once', async (t) => {
  const redis = await startRedis(t);
  const a = await startNode(t, redis.url, 'a');
  const lost: string[] = [];
  for (const job of ['graph:poller', 'graph:writer']) {
    a.cluster.leases.hold(job, { acquired: () => undefined, lost: (reason) => void lost.push(`${job} ${reason}`) });
  }
  await until(() => a.cluster.leases.held('graph:poller') !== undefined && a.cluster.leases.held('graph:writer') !== undefined, 5000, 'a holds both');
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
  await until(() => a.cluster.leases.held('graph:poller') !== undefined, 5000, 'the lease is acquired');
  await eventually(async () => (await probe.exists('test:node:a')) === 1, 1000, 'the heartbeat is there');
  await lease();
});

t.test('a connection that stays open but gets no answers (a partition) counts as disconnected; its healing as a reconnect', async (t) => {
  const redis = await startRedis(t);
  const proxy = await startTcpProxy(t, { host: redis.host, port: redis.port });
  const a = await startNode(t, proxy.url, 'a');
  const b = await startNode(t, redis.url, 'b');
  const atB: string[] = [];
  b.cluster.bus.onMessage((m) => void atB.push(m.type === 'input' && m.input.kind === 'teams' ? m.input.personId : '?'));
  const changes: boolean[] = [];
  a.cluster.onConnected((up) => changes.push(up));
  let reconnects = 0;
  a.cluster.bus.onReconnect(() => reconnects++);
  t.ok(a.cluster.connected());

  proxy.pause();
  const pausedAt = Date.now();
  await until(() => !a.cluster.connected(), 5000, 'a sees Redis unreachable');
  t.ok(Date.now() - pausedAt <= 4 * TIMINGS.heartbeatMs, `within ${Date.now() - pausedAt} ms (beat ${TIMINGS.heartbeatMs} ms)`);
  a.cluster.bus.publish({ type: 'input', from: 'a', input: { kind: 'teams', personId: 'lost' } });
  t.equal(a.cluster.bus.dropped, 1, 'publish drops while unanswered');

  proxy.resume();
  await until(() => a.cluster.connected() && reconnects === 1, 5000, 'connected again, onReconnect fired');
  t.same(changes, [false, true]);
  a.cluster.bus.publish({ type: 'input', from: 'a', input: { kind: 'teams', personId: 'after' } });
  await until(() => atB.includes('after'), 5000, 'b gets the next message');
  t.notOk(atB.includes('lost'), 'the dropped one never arrives');
});

t.test('publishes waiting for an unanswering Redis are capped (no buffering without end)', async (t) => {
  const redis = await startRedis(t);
  const proxy = await startTcpProxy(t, { host: redis.host, port: redis.port });
  const client = testClient(proxy.url);
  const subscriber = testClient(proxy.url);
  t.teardown(() => {
    client.disconnect();
    subscriber.disconnect();
  });
  await until(() => client.status === 'ready' && subscriber.status === 'ready', 5000, 'connected');
  const bus = new RedisBus({ client, subscriber, keys: keyLayout('test:'), nodeId: 'a', logger: silentLogger(), maxPending: 5 });
  await bus.start();
  proxy.pause();
  for (let i = 0; i < 20; i++) bus.publish({ type: 'input', from: 'a', input: { kind: 'teams', personId: `p${i}` } });
  t.equal(bus.dropped, 15, 'five wait, fifteen dropped');
  proxy.resume();
  await bus.close();
});
