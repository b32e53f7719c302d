import t from 'tap';
import { Writable } from 'node:stream';
import { wireAdmin, wireMetrics } from '../../src/admin-wiring.js';
import { securityInfo } from '../../src/http/security-info.js';
import { DEMO_ADMIN_TOKEN } from '../../src/config/admin.js';
import { GUESSING_DEFAULTS } from '../../src/trunks/guessing-config.js';
import { parseConfig } from '../../src/config/loader.js';
import { configSchema } from '../../src/config/schema.js';
import { connectors } from '../../src/http/rows.js';
import { Metrics } from '../../src/http/metrics.js';
import { CountingSecurityLog } from '../../src/sip/security-log.js';
import { createLogger } from '../../src/util/logger.js';
import type { Directory } from '../../src/core/directory.js';
import { makeServer } from '../simple/helpers.js';
import { configProblems as problems } from '../helpers/config-problems.js';

/** The directory the helpers' server was built with (SimpleServer keeps it private). */
function makeDirectoryOf(env: ReturnType<typeof makeServer>): Directory {
  return (env.server as unknown as { directory: Directory }).directory;
}

t.test('defaults: guessing on, connection limits, security log on stdout', async (t) => {
  const c = parseConfig('');
  t.same(c.sip.connections, { messageTimeoutSec: 10, strangerIdleSec: 30, maxPerSource: 32 });
  t.same(c.log.security, { destination: 'stdout', linesPerSourcePerSec: 10 });
  t.equal(c.sip.access.guessing, undefined, 'left out, it stays out of the parsed config');
  t.match(GUESSING_DEFAULTS, { enabled: true, maxFailures: 5, lockoutSec: 60, maxLockoutSec: 3600, perUserMaxFailures: 30, refuseWith: 403 });
});

t.test('bad values name the config path and the fix', async (t) => {
  const p = problems(() => parseConfig('sip:\n  connections:\n    maxPerSource: -1\n  access:\n    guessing:\n      refuseWith: 404\n', 'g.yaml'));
  t.ok(p.some((m) => /sip\.connections\.maxPerSource/.test(m) && /raise it/.test(m)), p.join('\n'));
  t.ok(p.some((m) => /sip\.access\.guessing\.refuseWith/.test(m) && /403.*503/.test(m)), p.join('\n'));
  const q = problems(() => parseConfig('sip:\n  access:\n    guessing:\n      perUserMaxFailures: 2\n', 'g.yaml'));
  t.ok(q.some((m) => /sip\.access\.guessing\.perUserMaxFailures/.test(m) && /raise it/.test(m)), q.join('\n'));
});

t.test('the demo token is refused unless the admin API is on loopback', async (t) => {
  const yaml = (address: string) => `admin:\n  token: ${DEMO_ADMIN_TOKEN}\nhttp:\n  address: ${address}\n`;
  t.equal(parseConfig(yaml('127.0.0.1')).admin?.token, DEMO_ADMIN_TOKEN, 'fine on loopback (the demo)');
  const p = problems(() => parseConfig(yaml('0.0.0.0'), 'prod.yaml'));
  t.ok(p.some((m) => /admin\.token/.test(m) && /openssl rand -hex 24/.test(m)), p.join('\n'));
  const short = problems(() => parseConfig('admin:\n  token: short-token\n', 'prod.yaml'));
  t.ok(short.some((m) => /admin\.token/.test(m) && /24 characters/.test(m)), 'a short token is refused');
  t.notOk([...p, ...short].some((m) => m.includes('short-token') || m.includes(DEMO_ADMIN_TOKEN)), 'the error does not repeat the token');
});

t.test('/metrics: security events and lockouts; the diagnostics page summary', async (t) => {
  const log = new CountingSecurityLog();
  for (let i = 0; i < 3; i++) log.record('auth_failed', { source: '203.0.113.1', reason: 'wrong_password' });
  log.record('lockout_start', { source: '203.0.113.1', reason: 'too_many_failures' });
  log.record('connection_refused', { source: '203.0.113.2', reason: 'per_source_limit' });
  log.record('connection_closed', { source: '203.0.113.2', reason: 'incomplete_message' });
  const metrics = new Metrics({ processMetrics: false });
  metrics.collectSecurity(() => ({ events: log.counts(), lockouts: { lockedSources: 1, lockedUsers: 0 } }));
  const text = await metrics.text();
  t.match(text, /security_events_total\{event="auth_failed",reason="wrong_password"\} 3/);
  t.match(text, /security_events_total\{event="connection_refused",reason="per_source_limit"\} 1/);
  t.match(text, /auth_lockouts_active\{scope="source"\} 1/);
  const info = securityInfo(log.counts(), { lockedSources: 1, lockedUsers: 0 });
  t.same(info, { authFailures: 3, refusals: 0, lockouts: 1, activeLockouts: 1, connectionsRefused: 1, connectionsClosed: 1 });
  const source = { trunks: () => [], graph: () => undefined, security: () => info } as unknown as Parameters<typeof connectors>[0];
  const row = connectors(source, undefined).find((c) => c.kind === 'security');
  t.match(row, { ok: false, badge: '1 locked out' });
  t.match(row?.detail, /3 failed logins, 1 lockouts.*1 refused, 1 closed by limits/);
});

t.test('a warning at start when /metrics is open on a non-loopback address without a token', async (t) => {
  const lines: string[] = [];
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      lines.push(c.toString());
      cb();
    },
  });
  const env = makeServer();
  const wire = (http: Record<string, unknown>, admin?: Record<string, unknown>) =>
    wireAdmin({
      config: configSchema.parse({ http, ...(admin !== undefined ? { admin } : {}) }),
      directory: makeDirectoryOf(env),
      store: env.store,
      stack: { localEndpoint: () => undefined },
      simple: env.server,
      trunks: { statuses: () => [] },
      graph: undefined,
      logger: createLogger({ level: 'warn', destination: sink }),
      metrics: wireMetrics({ store: env.store, processMetrics: false }),
    });
  wire({ address: '127.0.0.1' }).close();
  wire({ address: '0.0.0.0' }, { token: 'a'.repeat(30), metricsToken: 'b'.repeat(30) }).close();
  await new Promise((r) => setImmediate(r));
  t.equal(lines.length, 0, 'no warning on loopback, nor with a metrics token');
  wire({ address: '0.0.0.0' }).close();
  await new Promise((r) => setImmediate(r));
  t.equal(lines.length, 1);
  t.match(lines[0], /metrics is open without a token.*admin\.metricsToken/);
});
