/**
 * The test Redis itself: it starts, keeps its data across a restart (append-only
 * file on), and is gone after stop. The store and cluster tests rely on this.
 */
import t from 'tap';
import { Redis } from 'ioredis';
import { startRedis } from '../helpers/redis-server.js';

t.test('a test Redis starts, keeps its data over a restart, and stops', async (t) => {
  const server = await startRedis(t);
  const a = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await a.connect();
  await a.set('k', 'v');
  a.disconnect();
  await server.stop();
  t.notOk(server.running, 'stopped');
  await server.start();
  const b = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await b.connect();
  t.equal(await b.get('k'), 'v', 'the append-only file brought the key back');
  b.disconnect();
});
