/**
 * The composition root's start and stop: every part registers its close as it
 * is started, a stop closes them in the reverse order, and a close hook that
 * fails does not keep the others from closing.
 */
import t, { type Test } from 'tap';
import { createSocket } from 'node:dgram';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway } from '../src/app.js';
import { configSchema } from '../src/config/schema.js';
import { Lifecycle, type LifecycleLog } from '../src/util/lifecycle.js';
import { silentLogger } from '../src/util/logger.js';
import { freePort } from './helpers/ports.js';

/** The parts in the order app.ts starts them (a SIP-only gateway). */
const START_ORDER = ['store', 'cluster', 'cluster wiring', 'sip stack', 'timers', 'trunks', 'persistence', 'simple server', 'resource lists', 'upstream', 'admin', 'http server'];

async function gateway(t: Test) {
  const stateDir = await mkdtemp(join(tmpdir(), 'pgw-app-'));
  t.teardown(() => rm(stateDir, { recursive: true, force: true }));
  const config = configSchema.parse({
    sip: { listen: [{ transport: 'udp', address: '127.0.0.1', port: 0 }], domain: 'example.com' },
    http: { address: '127.0.0.1', port: await freePort() },
    stateDir,
    users: [{ id: 'alice', displayName: 'Alice', extension: '1001' }],
  });
  const errors: { part: string }[] = [];
  const log: LifecycleLog = {
    warn: () => undefined,
    error: (obj) => void errors.push(obj as { part: string }),
  };
  const life = new Lifecycle({ log });
  const gw = await startGateway(config, silentLogger(), { lifecycle: life });
  return { gw, life, errors };
}

/** Whether something still answers on the UDP port (an OPTIONS gets a response). */
function sipAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      resolve(false);
    }, 1500);
    socket.on('message', () => {
      clearTimeout(timer);
      socket.close();
      resolve(true);
    });
    socket.bind(0, '127.0.0.1', () => {
      const local = socket.address().port;
      const msg = [
        `OPTIONS sip:example.com SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${local};branch=z9hG4bK-app-test-${Date.now()};rport`,
        'Max-Forwards: 70',
        'From: <sip:probe@127.0.0.1>;tag=p1',
        'To: <sip:example.com>',
        `Call-ID: app-test-${Date.now()}@127.0.0.1`,
        'CSeq: 1 OPTIONS',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n');
      socket.send(Buffer.from(msg), port, '127.0.0.1');
    });
  });
}

t.test('stop closes every part in the reverse order of their start', async (t) => {
  const { gw, life, errors } = await gateway(t);
  const port = gw.stack.localEndpoint('udp')!.port;
  t.equal(await sipAnswers(port), true, 'the gateway answers while it runs');
  await gw.stop();
  const outcomes = await life.close();
  t.same(outcomes.map((o) => o.name), [...START_ORDER].reverse(), 'closed last started first');
  t.ok(outcomes.every((o) => o.result === 'closed'), 'every part closed');
  t.same(errors, []);
  t.equal(gw.stack.localEndpoint('udp'), undefined, 'the SIP listener is gone');
  const res = await fetch(`${gw.http.origin}/healthz`).then(
    () => 'answered',
    () => 'refused',
  );
  t.equal(res, 'refused', 'the HTTP server is closed');
});

t.test('a failing close hook is logged and the parts after it still close', async (t) => {
  const { gw, life, errors } = await gateway(t);
  // the resource lists fail to close: the SIMPLE server, the store, the trunks and the stack still do
  gw.lists.close = () => {
    throw new Error('lists would not close');
  };
  await gw.stop();
  const outcomes = await life.close();
  t.same(
    outcomes.map((o) => `${o.name}:${o.result}`),
    [...START_ORDER].reverse().map((n) => `${n}:${n === 'resource lists' ? 'failed' : 'closed'}`),
  );
  t.same(errors.map((e) => e.part), ['resource lists'], 'the failure is logged with the part');
  t.equal(gw.stack.localEndpoint('udp'), undefined, 'the SIP stack closed after the failure');
});

t.test('a start that fails half way closes what it had started', async (t) => {
  const stateDir = await mkdtemp(join(tmpdir(), 'pgw-app-'));
  t.teardown(() => rm(stateDir, { recursive: true, force: true }));
  const http = await freePort();
  // the HTTP port is taken: the start fails after the SIP stack and the store were up
  const { createServer } = await import('node:net');
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(http, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => blocker.close(() => r())));
  const config = configSchema.parse({
    sip: { listen: [{ transport: 'udp', address: '127.0.0.1', port: 0 }], domain: 'example.com' },
    http: { address: '127.0.0.1', port: http },
    stateDir,
    users: [{ id: 'alice', displayName: 'Alice' }],
  });
  const life = new Lifecycle({ log: { warn: () => undefined, error: () => undefined } });
  await t.rejects(startGateway(config, silentLogger(), { lifecycle: life }), /EADDRINUSE/);
  const outcomes = await life.close();
  t.same(outcomes.map((o) => o.name), START_ORDER.filter((n) => n !== 'http server').reverse(), 'everything started before the failure is closed');
  t.ok(outcomes.every((o) => o.result === 'closed'));
});
