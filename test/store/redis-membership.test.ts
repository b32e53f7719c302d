/**
 * Membership on a real Redis (src/store/redis/membership.ts): nodes see each
 * other; a clean stop is seen at the others' next beat, a dead node (its
 * heartbeats stop, its key stays) after its TTL, on every survivor, once.
 */
import t from 'tap';
import { startRedis } from '../helpers/redis-server.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { probeClient, startNode, TIMINGS, until, type TestNode } from './redis-cluster-nodes.js';

function ids(node: TestNode): string[] {
  return node.cluster.membership
    .nodes()
    .map((n) => n.nodeId)
    .sort();
}

function downs(node: TestNode): string[] {
  const seen: string[] = [];
  node.cluster.membership.onNodeDown((id) => seen.push(id));
  return seen;
}

/** Three nodes that see each other, with what a and b hear of nodes going down. */
async function threeUp(t: Parameters<typeof startRedis>[0] & object) {
  const redis = await startRedis(t);
  const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((id) => startNode(t, redis.url, id)));
  await until(() => [a!, b!, c!].every((n) => ids(n).length === 3), 2000, 'all three up');
  return { redis, a: a!, b: b!, c: c!, atA: downs(a!), atB: downs(b!) };
}

t.test('three nodes see each other; setLocal shows in the next heartbeat; onNodeUp for each new one', async (t) => {
  const redis = await startRedis(t);
  const a = await startNode(t, redis.url, 'a', { local: { sip: ['udp 127.0.0.1:5060'] } });
  const upsAtA: string[] = [];
  a.cluster.membership.onNodeUp((info) => upsAtA.push(info.nodeId));
  const b = await startNode(t, redis.url, 'b');
  const c = await startNode(t, redis.url, 'c');
  await until(() => [a, b, c].every((n) => ids(n).join() === 'a,b,c'), 2000, 'every node sees a, b and c');
  t.same(upsAtA.sort(), ['b', 'c'], 'a saw b and c come up, once each');
  const aAtB = b.cluster.membership.nodes().find((n) => n.nodeId === 'a');
  t.same(aAtB?.sip, ['udp 127.0.0.1:5060'], 'the heartbeat carries what the node says of itself');

  a.cluster.membership.setLocal({ subscriptions: 7, http: 'http://127.0.0.1:8080' });
  await until(() => c.cluster.membership.nodes().find((n) => n.nodeId === 'a')?.subscriptions === 7, 1000, 'c sees a\'s new count');
  const aAtC = c.cluster.membership.nodes().find((n) => n.nodeId === 'a');
  t.equal(aAtC?.http, 'http://127.0.0.1:8080');
  t.same(aAtC?.sip, ['udp 127.0.0.1:5060'], 'setLocal merges: what was not given is kept');
});

t.test('a clean stop is seen down at the next beat of every other node, once', async (t) => {
  const { a, c, atA, atB } = await threeUp(t);
  const stoppedAt = Date.now();
  await c.cluster.close();
  await until(() => atA.length > 0 && atB.length > 0, 1000, 'a and b see c down');
  const took = Date.now() - stoppedAt;
  t.ok(took < TIMINGS.nodeTtlMs, `seen down in ${took} ms, before the heartbeat would have expired (${TIMINGS.nodeTtlMs} ms)`);
  await new Promise((r) => setTimeout(r, 4 * TIMINGS.heartbeatMs));
  t.same(atA, ['c'], 'once at a');
  t.same(atB, ['c'], 'once at b');
  t.same(ids(a), ['a', 'b']);
});

t.test('a node whose heartbeats stop (SIGKILL) is down on every survivor within its TTL and a beat, once', async (t) => {
  const { redis, a, c, atA, atB } = await threeUp(t);
  const killedAt = Date.now();
  c.kill();
  await until(() => atA.length > 0 && atB.length > 0, 3000, 'a and b see c down');
  const took = Date.now() - killedAt;
  t.ok(took <= TIMINGS.nodeTtlMs + 3 * TIMINGS.heartbeatMs, `seen down in ${took} ms (TTL ${TIMINGS.nodeTtlMs} ms, beat ${TIMINGS.heartbeatMs} ms)`);
  t.ok(took >= TIMINGS.nodeTtlMs - TIMINGS.heartbeatMs, 'not before its heartbeat could have expired');
  await new Promise((r) => setTimeout(r, 5 * TIMINGS.heartbeatMs));
  t.same(atA, ['c'], 'once at a, though c stays in the node set until claimed');
  t.same(atB, ['c'], 'once at b');

  const probe = await probeClient(t, redis.url);
  t.ok(await probe.sismember('test:nodes', 'c'), 'the dead node stays in the set until its claimer forgets it');
  await a.cluster.membership.forget('c');
  t.notOk(await probe.sismember('test:nodes', 'c'), 'forgotten after the claim');
  await a.cluster.membership.forget('b');
  t.ok(await probe.sismember('test:nodes', 'b'), 'a live node is never forgotten');
});

t.test('a node that starts after another died sees it down (in the set, no heartbeat), once, even when it listens after its first beat', async (t) => {
  const redis = await startRedis(t);
  const a = await startNode(t, redis.url, 'a');
  a.kill();
  await new Promise((r) => setTimeout(r, TIMINGS.nodeTtlMs + 2 * TIMINGS.heartbeatMs));
  const b = await startNode(t, redis.url, 'b');
  const atB = downs(b);
  await new Promise((r) => setTimeout(r, 3 * TIMINGS.heartbeatMs));
  t.same(atB, ['a'], 'a listener added after the first beat still hears of the unclaimed dead node, once');
  t.same(ids(b), ['b'], 'the dead node is not listed as live');
});

t.test('a node that was forgotten before a slower survivor read it is still seen down there', async (t) => {
  const redis = await startRedis(t);
  const a = await startNode(t, redis.url, 'a');
  const b = await startNode(t, redis.url, 'b');
  await until(() => ids(b).join() === 'a,b', 2000, 'b sees a');
  const atB = downs(b);
  const probe = await probeClient(t, redis.url);
  a.kill();
  // The claimer (elsewhere) removed it at once, key and all.
  await probe.del('test:node:a');
  await probe.srem('test:nodes', 'a');
  await until(() => atB.length > 0, 1000, 'b sees a down');
  t.same(atB, ['a']);
});

t.test('after a Redis outage longer than the TTL, a node back first takes none for down while the others come back', async (t) => {
  const redis = await startRedis(t);
  // b reaches Redis through a proxy, to come back later than a
  const pb = await startTcpProxy(t, redis);
  const [a, b] = await Promise.all([startNode(t, redis.url, 'a'), startNode(t, pb.url, 'b')]);
  await until(() => [a, b].every((n) => ids(n).length === 2), 2000, 'both up');
  const atA = downs(a);
  const atB = downs(b);
  await redis.stop();
  pb.pause();
  // longer than the heartbeats' TTL: when Redis is back (its append-only file kept them) both have expired
  await new Promise((r) => setTimeout(r, 2 * TIMINGS.nodeTtlMs));
  await redis.start();
  await until(() => a.cluster.membership.reachable(), 2000, 'a reaches Redis again');
  // a beats a few times while b's heartbeat is gone; b comes back within the TTL
  await new Promise((r) => setTimeout(r, 3 * TIMINGS.heartbeatMs));
  pb.resume();
  await until(() => [a, b].every((n) => ids(n).length === 2), 2 * TIMINGS.nodeTtlMs, 'both see each other again');
  await new Promise((r) => setTimeout(r, TIMINGS.nodeTtlMs));
  t.same(atA, [], 'a took b for nothing');
  t.same(atB, [], 'b took a for nothing');
  // a node that stays away after the outage is still seen down
  b.kill();
  await until(() => atA.length > 0, 4 * TIMINGS.nodeTtlMs, 'a sees b down');
  t.same(atA, ['b']);
});

t.test('a stalled event loop is no outage: reachability stays while no beat waits for an answer', async (t) => {
  const redis = await startRedis(t);
  const a = await startNode(t, redis.url, 'a');
  await until(() => a.cluster.connected(), 2000, 'a connected');
  const changes: boolean[] = [];
  a.cluster.onConnected((up) => changes.push(up));
  // a synchronous stall of four heartbeats (a start-up's restore on a loaded machine): no beat is sent meanwhile
  const until4 = Date.now() + 4 * TIMINGS.heartbeatMs;
  while (Date.now() < until4) {
    // busy
  }
  await new Promise((r) => setTimeout(r, 3 * TIMINGS.heartbeatMs));
  t.same(changes, [], 'never reported unreachable');
  t.ok(a.cluster.connected());
});
