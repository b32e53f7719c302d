import t from 'tap';
import { DIAGNOSTICS_CSP, loadDiagnosticsAssets } from '../../src/http/diagnostics-page.js';
import { Metrics } from '../../src/http/metrics.js';
import { startHttpServer } from '../../src/http/server.js';
import { silentLogger } from '../../src/util/logger.js';
import { fakeSource, TOKEN } from './fake-source.js';

const METRICS_TOKEN = 'metrics-token-0123456789-abcdef';

t.test('the server mounts metrics, the admin API, the page and counts webhook deliveries', async (t) => {
  const src = fakeSource();
  const metrics = new Metrics({ processMetrics: false });
  let accepting = true;
  const server = await startHttpServer({
    address: '127.0.0.1',
    port: 0,
    logger: silentLogger(),
    metrics: { metrics, token: METRICS_TOKEN },
    admin: { token: TOKEN, source: src },
    graphWebhook: {
      path: '/graph/notifications',
      handlers: () => ({
        handleValidation: () => ({ status: 200, contentType: 'text/plain', body: 'ok' }),
        handleNotifications: () => ({ status: accepting ? 202 : 400 }),
      }),
    },
  });
  t.teardown(() => server.close());
  const get = (path: string, headers: Record<string, string> = {}) => fetch(server.origin + path, { headers });

  t.equal((await get('/healthz')).status, 200, 'health stays');

  const m401 = await get('/metrics');
  t.equal(m401.status, 401, '/metrics needs its token when one is set');
  const mOk = await get('/metrics', { authorization: `Bearer ${METRICS_TOKEN}` });
  t.equal(mOk.status, 200);
  t.match(mOk.headers.get('content-type'), /text\/plain/);
  t.match(await mOk.text(), /# TYPE notify_sent_total counter/);

  const users = await get('/api/users', { authorization: `Bearer ${TOKEN}` });
  t.equal(users.status, 200);
  t.equal(((await users.json()) as { users: unknown[] }).users.length, 3);
  t.equal((await get('/api/users')).status, 401);

  const { html: DIAGNOSTICS_HTML } = await loadDiagnosticsAssets();
  for (const path of ['/', '/diagnostics']) {
    const page = await get(path);
    t.equal(page.status, 200, `${path} serves the page without a token`);
    t.match(page.headers.get('content-type'), /text\/html/);
    t.equal(page.headers.get('content-security-policy'), DIAGNOSTICS_CSP);
    t.equal(page.headers.get('referrer-policy'), 'no-referrer');
    const html = await page.text();
    t.equal(html, DIAGNOSTICS_HTML);
  }
  t.notMatch(DIAGNOSTICS_HTML, /https?:\/\//, 'the page loads nothing from elsewhere');
  t.match(DIAGNOSTICS_CSP, /(^|; )script-src 'self'(;|$)/, 'the CSP allows only the gateway\'s own script file');
  t.notMatch(DIAGNOSTICS_HTML, /<script(?![^>]*\bsrc=)[^>]*>/, 'and the page has no inline script');

  // webhook reachability: deliveries as answered
  const post = (query = '') => fetch(`${server.origin}/graph/notifications${query}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"value":[]}' });
  t.equal((await post('?validationToken=abc')).status, 200);
  t.equal((await post()).status, 202);
  accepting = false;
  t.equal((await post()).status, 400);
  const text = await (await get('/metrics', { authorization: `Bearer ${METRICS_TOKEN}` })).text();
  t.match(text, /webhook_deliveries_total\{result="validation"\} 1/);
  t.match(text, /webhook_deliveries_total\{result="accepted"\} 1/);
  t.match(text, /webhook_deliveries_total\{result="rejected"\} 1/);
  const status = (await (await get('/api/status', { authorization: `Bearer ${TOKEN}` })).json()) as {
    connectors: Array<{ kind: string; ok: boolean | null; detail: string; at?: number }>;
  };
  const hook = status.connectors.find((c) => c.kind === 'webhook');
  t.equal(hook?.ok, false, 'the last delivery was refused: red');
  t.match(hook?.detail, /3 deliveries; last answered 400/);
  t.ok(typeof hook?.at === 'number' && Date.now() - (hook.at ?? 0) < 10_000, 'with the time of the last delivery');
  t.match(
    status.connectors.map((c) => c.kind),
    ['trunk', 'trunk', 'graph-auth', 'graph-subscription', 'webhook'],
    'trunks, Graph sign-in, Graph subscriptions and the webhook',
  );
});

t.test('without admin or metrics options none of those routes exist', async (t) => {
  const server = await startHttpServer({ address: '127.0.0.1', port: 0, logger: silentLogger() });
  t.teardown(() => server.close());
  for (const path of ['/', '/metrics', '/api/users']) t.equal((await fetch(server.origin + path)).status, 404, path);
});
