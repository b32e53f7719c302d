import Fastify from 'fastify';
import t from 'tap';
import { parseNotifications, validationReply, type WebhookHandlers } from '../../src/graph/webhook-handler.js';
import { graphWebhookRoute } from '../../src/graph/webhook-route.js';

const ID = 'A1000000-0000-4000-8000-000000001001';

t.test('validation: the decoded token back as text/plain', async (t) => {
  const token = 'Validation: Testing client application reachability for subscription Request-Id: 1f0e';
  t.same(validationReply({ validationToken: token }), { status: 200, contentType: 'text/plain; charset=utf-8', body: token });
  t.equal(validationReply({}).status, 400);
  t.equal(validationReply({ validationToken: 'x'.repeat(5000) }).status, 400);
});

t.test('notification batches: change and lifecycle items; junk never throws', async (t) => {
  const p = parseNotifications({
    value: [
      { subscriptionId: 's1', clientState: 'c', tenantId: 'tid', changeType: 'updated', resource: `communications/presences('${ID}')`, resourceData: { id: ID } },
      { subscriptionId: 's1', clientState: 'c', changeType: 'updated', resource: `communications/presences/${ID}` },
      { subscriptionId: 's1', clientState: 'c', lifecycleEvent: 'reauthorizationRequired' },
      { subscriptionId: 's1', resource: 'users/x' },
      'junk',
      { clientState: 'c' },
    ],
  });
  t.same(
    p.changes.map((c) => c.userId),
    [ID.toLowerCase(), ID.toLowerCase()],
    'the id from resourceData, or from the resource path',
  );
  t.equal(p.changes[0]?.tenantId, 'tid');
  t.same(p.lifecycle, [{ subscriptionId: 's1', clientState: 'c', tenantId: undefined, event: 'reauthorizationRequired' }]);
  t.equal(p.malformed, 3);
  t.same(parseNotifications(null), { changes: [], lifecycle: [], malformed: 1 });
  t.same(parseNotifications({ value: 'x' }).malformed, 1);
});

t.test('the fastify route', async (t) => {
  const app = Fastify({ logger: false });
  let handlers: WebhookHandlers | undefined;
  const seen: unknown[] = [];
  app.post('/elsewhere', async (request) => ({ got: request.body ?? null }));
  await app.register(graphWebhookRoute, { path: '/graph/notify', handlers: () => handlers });
  t.teardown(() => app.close());

  const validation = await app.inject({ method: 'POST', url: '/graph/notify?validationToken=Validation%3A%20hello%20%26%20more', headers: { 'content-type': 'text/plain' }, payload: '' });
  t.equal(validation.statusCode, 200, 'answered before the Graph side is up');
  t.equal(validation.body, 'Validation: hello & more', 'decoded');
  t.match(validation.headers['content-type'], /^text\/plain/);

  const early = await app.inject({ method: 'POST', url: '/graph/notify', payload: { value: [] } });
  t.equal(early.statusCode, 503, 'notifications wait for the handlers');
  t.equal(early.headers['retry-after'], '30');

  handlers = {
    handleValidation: () => ({ status: 200, contentType: 'text/plain; charset=utf-8', body: 'from handlers' }),
    handleNotifications: (body) => {
      seen.push(body);
      return { status: 202 };
    },
  };
  const ok = await app.inject({ method: 'POST', url: '/graph/notify', headers: { 'content-type': 'application/json; charset=utf-8' }, payload: '{"value":[{"subscriptionId":"s"}]}' });
  t.equal(ok.statusCode, 202);
  t.same(seen, [{ value: [{ subscriptionId: 's' }] }]);
  const emptyJson = await app.inject({ method: 'POST', url: '/graph/notify?validationToken=abc', headers: { 'content-type': 'application/json' }, payload: '' });
  t.equal(emptyJson.statusCode, 200, 'an empty JSON body is no error');
  t.equal(emptyJson.body, 'from handlers');
  const bad = await app.inject({ method: 'POST', url: '/graph/notify', headers: { 'content-type': 'application/json' }, payload: '{"value":' });
  t.equal(bad.statusCode, 400);
  t.equal(seen.length, 1, 'bad JSON never reaches the handler');
  const outside = await app.inject({ method: 'POST', url: '/elsewhere', headers: { 'content-type': 'application/json' }, payload: '' });
  t.equal(outside.statusCode, 400, "the plugin's lenient JSON parser stays inside the plugin");
});
