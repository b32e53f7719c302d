import https from 'node:https';
import t from 'tap';
import { graphFailure, harness } from './helpers.js';

t.test('throttling, fault injection and the control API', async (t) => {
  const h = await harness({ throttle: { limit: 5, windowSec: 30 } });
  t.teardown(() => h.close());
  const token = await h.appToken();
  const noRetry = h.graph(async () => token, { maxRetries: 0 });
  const anna = h.sim.control.user('anna');
  const path = `/users/${anna.id}/presence`;

  await t.test('the per-app bucket answers 429 with Retry-After and a TooManyRequests body', async (t) => {
    for (let i = 0; i < 5; i++) await noRetry.api(path).get();
    const f = await graphFailure(noRetry.api(path).get());
    t.equal(f.statusCode, 429);
    t.equal(f.code, 'TooManyRequests');
    const retryAfter = Number(f.headers?.get('retry-after'));
    t.ok(retryAfter >= 1 && retryAfter <= 30, `Retry-After ${retryAfter} s`);
    const c = h.sim.control.counters();
    t.equal(c.requests['GET /v1.0/users/:id/presence 429'], 1);
    t.equal(c.requests['GET /v1.0/users/:id/presence 200'], 5);
    h.sim.control.setThrottle({ enabled: false });
  });

  await t.test('injected 429 without Retry-After, 503, and a 429 the Graph client retries past', async (t) => {
    h.sim.control.injectFault({ kind: '429', path: '/presence', retryAfterSec: null });
    const f = await graphFailure(noRetry.api(path).get());
    t.equal(f.statusCode, 429);
    t.equal(f.headers?.get('retry-after'), null, 'no Retry-After header');

    h.sim.control.injectFault({ kind: '503', retryAfterSec: 1 });
    const u = await graphFailure(noRetry.api(path).get());
    t.equal(u.statusCode, 503);

    h.sim.control.resetCounters();
    h.sim.control.injectFault({ kind: '429', path: '/presence', retryAfterSec: 1 });
    const withRetry = h.graph(async () => token);
    const p = (await withRetry.api(path).get()) as { id: string };
    t.equal(p.id, anna.id, 'the RetryHandler honoured Retry-After and succeeded');
    const c = h.sim.control.counters().requests;
    t.equal(c['GET /v1.0/users/:id/presence 200'], 1);
    t.equal(Object.entries(c).filter(([k]) => k.endsWith(' 429')).length, 1, 'one 429 was answered first');
  });

  await t.test('a hanging request outlives the client timeout', async (t) => {
    h.sim.control.injectFault({ kind: 'hang', path: '/presence' });
    const err = await new Promise<Error | undefined>((resolve) => {
      const req = https.request(`${h.sim.graphBaseUrl}${path}`, { ca: h.sim.caPem, headers: { authorization: `Bearer ${token}` } }, () => resolve(undefined));
      req.setTimeout(300, () => req.destroy(new Error('client timeout')));
      req.on('error', (e) => resolve(e));
      req.end();
    });
    t.match(err?.message ?? '', /client timeout/);
    t.equal((await noRetry.api(path).get() as { id: string }).id, anna.id, 'the fault was used up');
  });

  await t.test('the REST control API acts as a Teams user', async (t) => {
    const post = (p: string, body?: unknown) => control(h.sim.origin, h.sim.caPem, 'POST', p, body);
    const r = await post('/_sim/users/anna/teams/call');
    t.equal(r.status, 200);
    t.equal(r.json['activity'], 'InACall');
    const viaGraph = (await noRetry.api(path).get()) as { activity: string };
    t.equal(viaGraph.activity, 'InACall');
    const s = await control(h.sim.origin, h.sim.caPem, 'GET', '/_sim/users/1001/sessions');
    t.equal((s.json['value'] as unknown[]).length, 1, 'users can be named by extension');
    const bad = await post('/_sim/users/anna/teams/dance');
    t.equal(bad.status, 400);
    const missing = await post('/_sim/users/nobody/teams/call');
    t.equal(missing.status, 404);
    const fault = await post('/_sim/faults', { kind: '503', count: 1, path: '/users' });
    t.equal(fault.status, 201);
    const f = await graphFailure(noRetry.api('/users').get());
    t.equal(f.statusCode, 503);
    const counters = await control(h.sim.origin, h.sim.caPem, 'GET', '/_sim/counters');
    t.type(counters.json['requests'], 'object');
  });
});

function control(origin: string, ca: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = https.request(`${origin}${path}`, { method, ca, headers: payload ? { 'content-type': 'application/json' } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}
