/**
 * Leases across a partition (a TCP proxy that stops forwarding without
 * closing, test/helpers/tcp-proxy.ts): the cut-off holder gives the job up
 * before its lease can expire in Redis, so no two nodes ever hold it, while
 * cut off or after the healing; a grant whose reply arrives too late is
 * handed back instead of used.
 */
import t from 'tap';
import { startRedis } from '../helpers/redis-server.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { probeClient, until } from './redis-cluster-nodes.js';
import { compete, JOB, leaseNode, TTL, watchForTwo } from './redis-lease-holders.js';

t.test('a holder cut off from Redis gives the job up before its lease expires; no two holders across the partition and its healing', async (t) => {
  const redis = await startRedis(t);
  const proxy = await startTcpProxy(t, { host: redis.host, port: redis.port });
  const a = await leaseNode(t, proxy.url, 'a');
  const ha = compete(a);
  await until(() => ha.running, 5000, 'a acquires first');
  const b = await leaseNode(t, redis.url, 'b');
  const c = await leaseNode(t, redis.url, 'c');
  const hb = compete(b);
  const hc = compete(c);
  const holders = [ha, hb, hc];
  const watch = watchForTwo(t, holders);
  await new Promise((r) => setTimeout(r, TTL / 2));
  t.ok(ha.running && !hb.running && !hc.running, 'a keeps it');

  const probe = await probeClient(t, redis.url);
  const pausedAt = Date.now();
  proxy.pause();
  await until(() => ha.lost.length > 0, 2 * TTL, 'a gives the job up');
  t.same(ha.lost, ['unreachable']);
  const pttl = await probe.pttl(`test:lease:${JOB}`);
  t.ok(pttl > 0, `a gave up ${ha.lostAt - pausedAt} ms into the partition, its lease still has ${pttl} ms in Redis`);
  await until(() => hb.running || hc.running, 2 * TTL, 'b or c acquires once the lease expired');
  const next = hb.running ? hb : hc;
  t.ok(next.acquiredAt >= ha.lostAt, 'only after a gave it up');
  t.ok(next.tokens[0]! > ha.tokens[0]!, 'with a larger token');

  proxy.resume();
  await new Promise((r) => setTimeout(r, TTL));
  t.notOk(ha.running, 'a, healed, does not take it back while it is held');
  t.equal(a.cluster.leases.held(JOB), undefined);
  t.ok(next.running, 'the new holder keeps it');
  watch.stop();
  t.ok(watch.samples() > 50, `${watch.samples()} samples`);
});

t.test('a grant whose reply comes after its own deadline (a partition healed late) is handed back, not used', async (t) => {
  const redis = await startRedis(t);
  const b = await leaseNode(t, redis.url, 'b');
  const hb = compete(b);
  await until(() => hb.running, 1000, 'b holds');
  const proxy = await startTcpProxy(t, { host: redis.host, port: redis.port });
  const a = await leaseNode(t, proxy.url, 'a');
  const ha = compete(a);
  await new Promise((r) => setTimeout(r, TTL / 2));
  proxy.pause();
  // a's tries now wait in the partition; the job becomes free meanwhile.
  await hb.release();
  await new Promise((r) => setTimeout(r, TTL + 100));
  proxy.resume();
  await until(() => ha.running, 2 * TTL, 'a acquires after the healing');
  await new Promise((r) => setTimeout(r, TTL));
  t.equal(ha.tokens.length, 1, 'one acquired: the late grants were never reported');
  t.same(ha.lost, [], 'and nothing lost right after');
  t.ok(ha.tokens[0]! > hb.tokens[0]! + 1, `token ${ha.tokens[0]}: the late grants (after ${hb.tokens[0]}) were burnt, not used`);
  t.equal(a.cluster.leases.held(JOB), ha.tokens[0]);
});
