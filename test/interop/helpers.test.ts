/** Unit tests for the interop/bench helpers that do not need SIPp or the gateway. */
import t from 'tap';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { buildGatewayConfig, deepMerge, readRssBytes } from '../helpers/gateway-process.js';
import { freePort, freePorts } from '../helpers/ports.js';
import { parseRttFile, parseStatFile, scenarioPath } from '../helpers/sipp.js';

t.test('freePort returns a port that can then be bound for both UDP and TCP', async (t) => {
  const port = await freePort();
  t.ok(port > 0 && port < 65536, 'a port number');
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port }, () => resolve());
  });
  const udp = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind({ address: '127.0.0.1', port }, () => resolve());
  });
  t.pass('bound TCP and UDP on it');
  await new Promise<void>((resolve) => udp.close(() => resolve()));
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

t.test('freePorts gives distinct ports', async (t) => {
  const ports = await freePorts(5);
  t.equal(new Set(ports).size, 5);
});

t.test('parseRttFile reads the response-time column', async (t) => {
  const text = 'Date_ms;response_time_ms;rtd_no\n28.001;4;1\n44.001;0;1\n64.5;12;1\n';
  t.same(parseRttFile(text), [4, 0, 12]);
  t.same(parseRttFile(''), []);
});

t.test('parseStatFile returns the last row by column name', async (t) => {
  const text = 'A;SuccessfulCall(C);FailedCall(C)\nx;1;0\ny;40;2\n';
  t.same(parseStatFile(text), { A: 'y', 'SuccessfulCall(C)': '40', 'FailedCall(C)': '2' });
  t.equal(parseStatFile('only-header\n'), undefined);
});

t.test('scenarioPath resolves names into sip-fixtures/scenarios', async (t) => {
  t.match(scenarioPath('publish'), /sip-fixtures\/scenarios\/publish\.xml$/);
  t.equal(scenarioPath('/abs/x.xml'), '/abs/x.xml');
});

t.test('buildGatewayConfig listens on UDP and TCP on one port and merges overrides', async (t) => {
  const config = buildGatewayConfig(5099, { logLevel: 'warn', overrides: { subscriptions: { maxExpires: 7200 } } });
  t.same((config['sip'] as { listen: unknown }).listen, [
    { transport: 'udp', address: '127.0.0.1', port: 5099 },
    { transport: 'tcp', address: '127.0.0.1', port: 5099 },
  ]);
  t.same(config['subscriptions'], { minExpires: 60, maxExpires: 7200, defaultExpires: 3600 });
  t.same(config['log'], { level: 'warn' });
  t.same(deepMerge({ a: [1, 2], b: { c: 1 } }, { a: [3], b: { d: 2 } }), { a: [3], b: { c: 1, d: 2 } });
});

t.test('readRssBytes reads VmRSS of a live process and 0 for none', async (t) => {
  t.ok(readRssBytes(process.pid) > 1024 * 1024, 'this process uses more than 1 MB');
  t.equal(readRssBytes(2 ** 22 + 12345), 0);
});
