import t from 'tap';
import { graphFailure, harness, webhook } from './helpers.js';

t.test('like Microsoft Graph, a plain http notificationUrl is refused unless a test allows it', async (t) => {
  const h = await harness({ allowHttpNotificationUrl: false });
  const hook = await webhook();
  t.teardown(async () => {
    await h.close();
    await hook.close();
  });
  const userToken = await h.userToken();
  const graph = h.graph(async () => userToken);
  const anna = h.sim.control.user('anna');
  const failure = await graphFailure(
    graph.api('/subscriptions').post({
      changeType: 'updated',
      notificationUrl: hook.url,
      resource: `/communications/presences/${anna.id}`,
      expirationDateTime: new Date(Date.now() + 30 * 60_000).toISOString(),
      clientState: 'gateway-secret-state',
    }),
  );
  t.ok(hook.url.startsWith('http://'), 'the hook is plain http');
  t.equal(failure.statusCode, 400);
  t.match(failure.message, /https URL/);
  t.same(h.sim.control.subscriptions(), [], 'nothing was created');
});
