/**
 * connectRedis's options: the URL with the username and password fields
 * winning, TLS from PEM files (a missing one names the config path and the
 * file), the capped reconnect, and no password in what is shown.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { connectRedis, reconnectDelay, redactRedisUrl, redisHealth, redisOptions } from '../../../src/store/redis/connection.js';
import { StoreError } from '../../../src/store/store.js';
import { capturingLogger } from '../../helpers/log-capture.js';
import { startRedis } from '../../helpers/redis-server.js';

const base = { keyPrefix: 'pg:' };

t.test('the URL gives host, port, database and credentials; the fields win', async (t) => {
  const o = redisOptions({ ...base, url: 'redis://alice:from%40url@redis.example:6380/3' }, 'store');
  t.match(o, { host: 'redis.example', port: 6380, db: 3, username: 'alice', password: 'from@url', enableOfflineQueue: false, maxRetriesPerRequest: 0 });
  t.equal(o.tls, undefined, 'redis:// is plain TCP');
  const fields = redisOptions({ ...base, url: 'redis://alice:from-url@redis.example/0', username: 'bob', password: 'from-field' }, 'store');
  t.equal(fields.username, 'bob');
  t.equal(fields.password, 'from-field');
  const plain = redisOptions({ ...base, url: 'redis://127.0.0.1' }, 'bus', { offlineQueue: true });
  t.match(plain, { host: '127.0.0.1', port: 6379, db: 0, enableOfflineQueue: true, maxRetriesPerRequest: null });
  t.equal(plain.password, undefined);
});

t.test('rediss:// or a tls section is TLS, with the PEM files read at start', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pg-redis-tls-'));
  const ca = join(dir, 'ca.pem');
  writeFileSync(ca, 'CA PEM');
  const o = redisOptions({ ...base, url: 'rediss://redis.example:6380/0', tls: { caPath: ca, rejectUnauthorized: true } }, 'store');
  t.match(o.tls, { servername: 'redis.example', rejectUnauthorized: true });
  t.equal(String(o.tls?.ca), 'CA PEM');
  const implied = redisOptions({ ...base, url: 'redis://redis.example/0', tls: { rejectUnauthorized: false } }, 'store');
  t.match(implied.tls, { rejectUnauthorized: false }, 'a tls section implies TLS');
  const missing = join(dir, 'nope.pem');
  let error: unknown;
  try {
    redisOptions({ ...base, url: 'rediss://h/0', tls: { certPath: missing, keyPath: ca, rejectUnauthorized: true } }, 'store');
  } catch (e) {
    error = e;
  }
  t.ok(error instanceof StoreError, 'a StoreError');
  t.match((error as Error).message, `store.redis.tls.certPath: cannot read ${missing} (ENOENT)`);
  t.match((error as Error).message, /Fix:/);
});

t.test('a bad URL is refused naming store.redis.url', async (t) => {
  t.throws(() => redisOptions({ ...base, url: 'http://h/0' }, 'store'), /store\.redis\.url: http: is not redis: or rediss:/);
  t.throws(() => redisOptions({ ...base, url: 'redis://h/x' }, 'store'), /store\.redis\.url: database "x"/);
});

t.test('reconnect: 100 ms doubling, capped at 2 s, never giving up', async (t) => {
  t.same([1, 2, 3, 4, 5, 6, 100].map(reconnectDelay), [100, 200, 400, 800, 1600, 2000, 2000]);
});

t.test('the password never shows', async (t) => {
  t.equal(redactRedisUrl('redis://alice:secret@h:1/0'), 'redis://alice@h:1/0');
  t.equal(redactRedisUrl('rediss://:secret@h:1/2'), 'rediss://h:1/2');
  t.equal(redactRedisUrl('not a url'), '(not a URL)');
});

t.test('a connection logs connect and disconnect, and its health follows', async (t) => {
  const redis = await startRedis(t);
  const { logger, lines } = capturingLogger('info');
  const conn = connectRedis({ ...base, url: redis.url }, logger, 'store');
  t.teardown(() => conn.disconnect());
  const health = redisHealth(conn);
  const changes: boolean[] = [];
  health.onChange((up) => changes.push(up));
  await new Promise<void>((resolve) => conn.once('ready', () => resolve()));
  t.equal(health.connected(), true);
  await redis.stop();
  await new Promise((r) => setTimeout(r, 50));
  t.equal(health.connected(), false);
  const back = new Promise<void>((resolve) => conn.once('ready', () => resolve()));
  await redis.start();
  await back;
  t.same(changes, [true, false, true]);
  const msgs = lines.map((l) => l.msg);
  t.same(msgs.filter((m) => m === 'redis connected').length, 2);
  t.ok(msgs.includes('redis disconnected; reconnecting'));
  t.equal(lines[0]?.url, redis.url);
});
