/**
 * Fenced leases on a real Redis (src/store/redis/leases.ts): one holder a
 * job; a dead holder's job moves within the TTL with a larger token; a
 * clean release hands over at once; handlers of one job never overlap; a
 * lease gone from Redis is lost as expired. Partitions:
 * redis-leases-partition.test.ts.
 */
import t from 'tap';
import type { LeaseHandlers } from '../../src/store/cluster.js';
import { startRedis } from '../helpers/redis-server.js';
import { probeClient, until } from './redis-cluster-nodes.js';
import { compete, JOB, leaseNode, TTL, watchForTwo } from './redis-lease-holders.js';

t.test('one holder of a job among three; the others list it', async (t) => {
  const redis = await startRedis(t);
  const nodes = await Promise.all(['a', 'b', 'c'].map((id) => leaseNode(t, redis.url, id)));
  const holders = nodes.map((n) => compete(n));
  await until(() => holders.some((h) => h.running), 2000, 'someone acquires');
  const watch = watchForTwo(t, holders);
  await new Promise((r) => setTimeout(r, TTL));
  watch.stop();
  const holder = holders.find((h) => h.running);
  t.ok(holder, 'still held');
  t.equal(holders.filter((h) => h.tokens.length > 0).length, 1, 'one node ever acquired: renewals kept it');
  const token = holder?.node.cluster.leases.held(JOB);
  t.equal(token, holder?.tokens[0], 'held() gives the token');
  await until(() => nodes.every((n) => n.cluster.leases.list().some((l) => l.job === JOB && l.holder === holder?.node.id)), 2 * TTL, 'every node lists the holder');
  const info = nodes[0]!.cluster.leases.list().find((l) => l.job === JOB);
  t.equal(info?.token, token);
  t.ok((info?.expiresAt ?? 0) > Date.now() - 50, 'expiresAt in the future');
  await until(() => holder?.node.cluster.membership.nodes().find((n) => n.nodeId === holder.node.id)?.leases.includes(JOB) === true, 1000, 'the heartbeat names the lease');
});

t.test('a job held by another node is listed by a node that does not compete for it (SCAN)', async (t) => {
  const redis = await startRedis(t);
  const a = await leaseNode(t, redis.url, 'a');
  const b = await leaseNode(t, redis.url, 'b');
  const h = compete(a, 'graph:poller');
  await until(() => h.running, 5000, 'a acquires');
  await until(() => b.cluster.leases.list().some((l) => l.job === 'graph:poller' && l.holder === 'a'), 3 * TTL, 'b lists a as the holder');
});

t.test('a killed holder: another acquires within the TTL, with a larger token', async (t) => {
  const redis = await startRedis(t);
  const nodes = await Promise.all(['a', 'b', 'c'].map((id) => leaseNode(t, redis.url, id)));
  const holders = nodes.map((n) => compete(n));
  await until(() => holders.some((h) => h.running), 2000, 'someone acquires');
  const first = holders.find((h) => h.running)!;
  const firstToken = first.tokens[0]!;
  const killedAt = Date.now();
  first.node.kill();
  const others = holders.filter((h) => h !== first);
  await until(() => others.some((h) => h.running), 3 * TTL, 'another acquires');
  const next = others.find((h) => h.running)!;
  const took = next.acquiredAt - killedAt;
  t.ok(took <= TTL + TTL / 3 + 100, `acquired ${took} ms after the kill (TTL ${TTL} ms, tries every ${TTL / 3} ms)`);
  t.ok(next.tokens[0]! > firstToken, `token ${next.tokens[0]} > ${firstToken}`);
  await until(() => first.lost.length > 0, TTL, 'the killed one (still running here) gave it up');
  t.same(first.lost, ['unreachable']);
  t.ok(first.lostAt <= next.acquiredAt, 'it gave the job up before the next holder got it');
});

t.test('a clean release hands over at once', async (t) => {
  const redis = await startRedis(t);
  const a = await leaseNode(t, redis.url, 'a');
  const ha = compete(a);
  await until(() => ha.running, 5000, 'a acquires');
  const b = await leaseNode(t, redis.url, 'b');
  const hb = compete(b);
  const watch = watchForTwo(t, [ha, hb]);
  await new Promise((r) => setTimeout(r, TTL / 2));
  const probe = await probeClient(t, redis.url);
  const releasedAt = Date.now();
  await ha.release();
  t.same(ha.lost, ['released'], 'lost(released), once the release is done');
  t.equal(await probe.get(`test:lease:${JOB}`), null, 'the lease is deleted, not left to expire');
  await until(() => hb.running, TTL, 'b acquires');
  t.ok(hb.acquiredAt - releasedAt <= TTL / 3 + 100, `b acquired ${hb.acquiredAt - releasedAt} ms after the release (its next try)`);
  watch.stop();
  await ha.release();
  t.same(ha.lost, ['released'], 'a second release does nothing');
});

t.test('acquired and lost of one job never run at the same time (async handlers)', async (t) => {
  const redis = await startRedis(t);
  const a = await leaseNode(t, redis.url, 'a');
  const probe = await probeClient(t, redis.url);
  const events: string[] = [];
  let active = 0;
  let overlapped = false;
  const slow = (what: string, ms: number) => async (): Promise<void> => {
    active++;
    if (active > 1) overlapped = true;
    events.push(`${what} start`);
    await new Promise((r) => setTimeout(r, ms));
    events.push(`${what} end`);
    active--;
  };
  let acquiredCalls = 0;
  const handlers: LeaseHandlers = {
    acquired: () => {
      acquiredCalls++;
      return slow('acquired', 300)();
    },
    lost: (reason) => slow(`lost ${reason}`, 50)(),
  };
  const release = a.cluster.leases.hold(JOB, handlers);
  await until(() => acquiredCalls === 1, 1000, 'acquired called');
  // Someone else's value: a's next renew finds it (lost taken) while acquired still runs.
  await probe.set(`test:lease:${JOB}`, 'z 999999', 'PX', TTL);
  await until(() => events.includes('lost taken end'), 2000, 'lost(taken) ran');
  t.same(events.slice(0, 4), ['acquired start', 'acquired end', 'lost taken start', 'lost taken end'], 'lost waited for acquired');
  await until(() => acquiredCalls === 2, 2000, 'acquired again once the other value expired');
  t.equal(a.cluster.leases.held(JOB), 2, 'the second grant, token 2 from INCR of the fence (not from the value found)');
  await release();
  t.notOk(overlapped, 'never two handlers at once');
  t.equal(events.at(-1), 'lost released end', 'release resolves after lost(released) ran');
});

t.test('a lease that expired in Redis is lost as expired and acquired again with a new token', async (t) => {
  const redis = await startRedis(t);
  const a = await leaseNode(t, redis.url, 'a');
  const h = compete(a);
  await until(() => h.running, 5000, 'a acquires');
  const probe = await probeClient(t, redis.url);
  await probe.del(`test:lease:${JOB}`);
  await until(() => h.tokens.length === 2, 2 * TTL, 'acquired again');
  t.same(h.lost, ['expired']);
  t.ok(h.tokens[1]! > h.tokens[0]!, 'larger token');
});
