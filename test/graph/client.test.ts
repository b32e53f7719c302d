import Fastify from 'fastify';
import t from 'tap';
import { createServerCertificate } from '../../src/graph-simulator/certs.js';
import { GraphAuth } from '../../src/graph/auth.js';
import { RequestBudget } from '../../src/graph/budget.js';
import { createGraphClient, graphFailure } from '../../src/graph/client.js';
import { systemClock } from '../../src/util/clock.js';
import { createHttpTransport } from '../../src/graph/http-transport.js';
import { silentLogger } from '../../src/util/logger.js';
import { ANNA, env, testCa } from './helpers.js';

t.test('Graph client: bearer only for the Graph host, retries honour Retry-After, every attempt is budgeted', async (t) => {
  const e = await env();
  const transport = createHttpTransport({ caPem: e.sim.caPem });
  t.teardown(async () => {
    transport.close();
    await e.close();
  });
  const auth = new GraphAuth({ config: e.config(), logger: silentLogger(), networkClient: transport.msalNetworkClient });

  await t.test('429 twice with Retry-After 1: the RetryHandler waits and succeeds; the budget counted 3 attempts', async (t) => {
    const budget = new RequestBudget(systemClock, 1500);
    const client = createGraphClient({ graphBaseUrl: e.sim.graphBaseUrl, tokens: auth.appToken(), budget, transport });
    e.sim.control.injectFault({ kind: '429', count: 2, path: 'getPresencesByUserId', retryAfterSec: 1 });
    const started = Date.now();
    const body = (await client.api('/communications/getPresencesByUserId').post({ ids: [ANNA] })) as { value: Array<{ id: string }> };
    const elapsed = Date.now() - started;
    t.equal(body.value[0]?.id, ANNA);
    t.ok(elapsed >= 1900, `waited for both Retry-After seconds (${elapsed} ms)`);
    t.equal(budget.status().granted, 3);
    t.equal(budget.status().throttled, 2);
  });

  await t.test('retries exhausted: the caller sees 429 with its Retry-After', async (t) => {
    const budget = new RequestBudget(systemClock, 1500);
    const client = createGraphClient({ graphBaseUrl: e.sim.graphBaseUrl, tokens: auth.appToken(), budget, transport, retry: { maxRetries: 0 } });
    e.sim.control.injectFault({ kind: '429', count: 1, path: 'getPresencesByUserId', retryAfterSec: 7 });
    const f = await client
      .api('/communications/getPresencesByUserId')
      .post({ ids: [ANNA] })
      .then(
        () => undefined,
        (x: unknown) => graphFailure(x),
      );
    t.equal(f?.status, 429);
    t.equal(f?.code, 'TooManyRequests');
    t.equal(f?.retryAfterMs, 7000);
    t.ok((budget.status().pausedUntil ?? 0) > Date.now() + 5000, 'the whole budget pauses for the Retry-After');
  });

  await t.test('a Retry-After longer than MAX_INLINE_RETRY_AFTER_MS is not slept inside the request: the caller sees the 429 at once and the budget waits', async (t) => {
    const budget = new RequestBudget(systemClock, 1500);
    const client = createGraphClient({ graphBaseUrl: e.sim.graphBaseUrl, tokens: auth.appToken(), budget, transport });
    e.sim.control.injectFault({ kind: '429', count: 1, path: 'getPresencesByUserId', retryAfterSec: 30 });
    const started = Date.now();
    const f = await client
      .api('/communications/getPresencesByUserId')
      .post({ ids: [ANNA] })
      .then(
        () => undefined,
        (x: unknown) => graphFailure(x),
      );
    t.equal(f?.status, 429, 'the 429 reaches the caller');
    t.ok(Date.now() - started < 5000, 'no 30 s sleep inside the request');
    t.equal(budget.status().granted, 1, 'one attempt');
    t.ok((budget.status().pausedUntil ?? 0) > Date.now() + 25_000, 'the budget holds every request for the Retry-After');
  });

  await t.test('a draining budget (the Graph side stopping) retries nothing', async (t) => {
    const budget = new RequestBudget(systemClock, 1500);
    const client = createGraphClient({ graphBaseUrl: e.sim.graphBaseUrl, tokens: auth.appToken(), budget, transport });
    budget.drain();
    e.sim.control.injectFault({ kind: '429', count: 1, path: 'getPresencesByUserId', retryAfterSec: 1 });
    const f = await client
      .api('/communications/getPresencesByUserId')
      .post({ ids: [ANNA] })
      .then(
        () => undefined,
        (x: unknown) => graphFailure(x),
      );
    t.equal(f?.status, 429);
    t.equal(budget.status().granted, 1, 'one attempt, no retry');
  });

  await t.test('the bearer token goes to the Graph host only', async (t) => {
    const cert = createServerCertificate(testCa());
    const echo = Fastify({ https: { key: cert.keyPem, cert: cert.certPem }, logger: false, forceCloseConnections: true });
    echo.get('/v1.0/echo', async (request) => ({ authorization: request.headers.authorization ?? null }));
    await echo.listen({ host: '127.0.0.1', port: 0 });
    t.teardown(() => echo.close());
    const address = echo.server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const budget = new RequestBudget(systemClock, 1500);
    const client = createGraphClient({ graphBaseUrl: `https://127.0.0.1:${port}/v1.0`, tokens: auth.appToken(), budget, transport });
    const onHost = (await client.api('/echo').get()) as { authorization: string | null };
    t.match(onHost.authorization ?? '', /^Bearer ey/, 'customHosts names 127.0.0.1');
    const elsewhere = (await client.api(`https://localhost:${port}/v1.0/echo`).get()) as { authorization: string | null };
    t.equal(elsewhere.authorization, null, 'localhost is not a Graph host: no token');
  });
});
