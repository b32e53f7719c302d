/**
 * The change bus on a real Redis (src/store/redis/bus.ts): every other node
 * gets one sender's messages in its order, the sender none of its own; a
 * malformed message is dropped; across a Redis restart publish() neither
 * throws nor buffers (it counts), and the bus works again with onReconnect.
 */
import t from 'tap';
import type { BusMessage } from '../../src/store/cluster.js';
import { parseBusMessage } from '../../src/store/redis/bus.js';
import { startRedis } from '../helpers/redis-server.js';
import { probeClient, startNode, until, type TestNode } from './redis-cluster-nodes.js';

function teams(from: string, i: number): BusMessage {
  return { type: 'input', from, input: { kind: 'teams', personId: `p${i}` } };
}

function received(node: TestNode): BusMessage[] {
  const got: BusMessage[] = [];
  node.cluster.bus.onMessage((m) => got.push(m));
  return got;
}

t.test('1,000 messages from one sender reach every other node in order; the sender gets none of its own', async (t) => {
  const redis = await startRedis(t);
  const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((id) => startNode(t, redis.url, id)));
  const atA = received(a!);
  const atB = received(b!);
  const atC = received(c!);
  for (let i = 0; i < 1000; i++) a!.cluster.bus.publish(teams('a', i));
  b!.cluster.bus.publish({ type: 'moved', from: 'b', what: 'subscription', id: 'tag1', to: 'b' });
  await until(() => atB.length === 1000 && atC.length === 1001, 5000, 'b and c get them all');
  const order = (got: BusMessage[]): string[] => got.flatMap((m) => (m.type === 'input' && m.input.kind === 'teams' ? [m.input.personId] : []));
  const expected = Array.from({ length: 1000 }, (_, i) => `p${i}`);
  t.same(order(atB), expected, 'b: in order');
  t.same(order(atC), expected, 'c: in order');
  await until(() => atA.length === 1, 5000, 'a gets b\'s message');
  t.same(atA, [{ type: 'moved', from: 'b', what: 'subscription', id: 'tag1', to: 'b' }], 'a got b\'s message and none of its own');
  t.equal(a!.cluster.bus.dropped, 0);
});

t.test('a malformed message is logged and dropped, and the bus goes on', async (t) => {
  const redis = await startRedis(t);
  const a = await startNode(t, redis.url, 'a');
  const atA = received(a);
  const probe = await probeClient(t, redis.url);
  await probe.publish('test:bus', 'not json {');
  await probe.publish('test:bus', JSON.stringify({ type: 'input', from: 'x', input: { kind: 'teams' } }));
  await probe.publish('test:bus', JSON.stringify({ type: 'input', from: 'x', input: { kind: 'nonsense', personId: 'p' } }));
  await probe.publish('test:bus', JSON.stringify({ type: 'moved', from: 'x', what: 'dialog', id: 'i', to: 'y' }));
  await probe.publish('test:bus', JSON.stringify([1, 2]));
  await probe.publish('test:bus', JSON.stringify(teams('x', 1)));
  await until(() => atA.length === 1, 5000, 'the good one arrives');
  t.same(atA, [teams('x', 1)]);
  t.equal(a.cluster.bus.malformed, 5, 'five dropped as malformed');
});

t.test('parseBusMessage checks the identity fields of each input kind', async (t) => {
  t.ok(parseBusMessage(JSON.stringify({ type: 'input', from: 'a', input: { kind: 'feeder-reachable', feeder: 'trunk:x', reachable: true } })));
  t.notOk(parseBusMessage(JSON.stringify({ type: 'input', from: 'a', input: { kind: 'feeder-reachable', feeder: 'trunk:x', reachable: 'yes' } })));
  t.notOk(parseBusMessage(JSON.stringify({ type: 'input', from: 'a', input: { kind: 'telephony', personId: 'p' } })), 'telephony needs its source');
  t.notOk(parseBusMessage(JSON.stringify({ type: 'input', input: { kind: 'teams', personId: 'p' } })), 'from is required');
  t.notOk(parseBusMessage(JSON.stringify({ type: 'input', from: 'a', input: { kind: 'toString', personId: 'p' } })), 'no prototype names as kinds');
});

t.test('a Redis restart: publish drops and counts meanwhile, then the bus works again and onReconnect fires', async (t) => {
  const redis = await startRedis(t);
  const a = await startNode(t, redis.url, 'a');
  const b = await startNode(t, redis.url, 'b');
  const atB = received(b);
  let reconnectsA = 0;
  let reconnectsB = 0;
  a.cluster.bus.onReconnect(() => reconnectsA++);
  b.cluster.bus.onReconnect(() => reconnectsB++);
  const changes: boolean[] = [];
  a.cluster.onConnected((up) => changes.push(up));
  a.cluster.bus.publish(teams('a', 0));
  await until(() => atB.length === 1, 5000, 'b gets the first');

  await redis.stop();
  await until(() => !a.cluster.connected(), 5000, 'a sees Redis gone');
  t.doesNotThrow(() => {
    for (let i = 1; i <= 10; i++) a.cluster.bus.publish(teams('a', i));
  }, 'publish does not throw while Redis is down');
  t.equal(a.cluster.bus.dropped, 10, 'the ten are counted as dropped');
  t.equal(reconnectsA, 0);

  await redis.start();
  await until(() => reconnectsA === 1 && reconnectsB === 1, 5000, 'onReconnect fires on both');
  t.ok(a.cluster.connected(), 'connected again');
  t.same(changes, [false, true], 'onConnected: down, then up');
  a.cluster.bus.publish(teams('a', 11));
  await until(() => atB.length === 2, 5000, 'b gets the next one');
  t.same(atB.map((m) => (m.type === 'input' && m.input.kind === 'teams' ? m.input.personId : '')), ['p0', 'p11'], 'the dropped ones never arrive later');
});
