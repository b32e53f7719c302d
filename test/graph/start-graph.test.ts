import t from 'tap';
import { startGraph } from '../../src/graph/index.js';
import { silentLogger } from '../../src/util/logger.js';
import { ANNA, core, env, waitFor, webhookServer } from './helpers.js';

t.test('startGraph end to end: sync, subscribe, write, and the echo does not bounce', async (t) => {
  const e = await env();
  const hook = await webhookServer();
  const { directory, store } = core();
  const svc = e.sim.serviceAccount;
  const config = e.config({
    serviceAccounts: [{ username: svc.username, password: svc.password }],
    webhook: { publicUrl: hook.url },
  });
  let graph: Awaited<ReturnType<typeof startGraph>> | undefined;
  hook.handlers = {
    handleValidation: (q) => (graph ? graph.webhook.handleValidation(q) : { status: 200, contentType: 'text/plain', body: String((q as Record<string, unknown>)['validationToken']) }),
    handleNotifications: (b) => (graph ? graph.webhook.handleNotifications(b) : { status: 503 }),
  };
  graph = await startGraph({ config, directory, store, logger: silentLogger() });
  t.teardown(async () => {
    await graph?.stop();
    await hook.close();
    await e.close();
  });
  const count = (key: string) => e.sim.control.counters().requests[key] ?? 0;

  const s = graph.status();
  t.equal(s.started, true);
  t.equal(s.directory.matched, 5);
  t.equal(s.directory.unmatchedPersons, 1);
  t.equal(s.reader.subscriptions[0]?.state, 'active');
  t.same(
    s.tokens.map((x) => [x.name, x.ok]),
    [
      ['app', true],
      [svc.username, true],
    ],
  );
  t.equal(directory.get('anna')?.teams?.userId, ANNA);

  // the PBX says anna is on a call: the gateway's session goes to Teams, Teams notifies it back
  store.setTelephony('anna', { line: 'in-call', dnd: false, calls: [], origin: 'pbx', at: Date.now() });
  await waitFor(() => store.state('anna').teams?.activity === 'InACall', 8000, 'the echo arrived');
  await graph.idle();
  t.equal(count('POST /v1.0/users/:id/presence/setPresence 200'), 1, 'written once; reading it back wrote nothing');
  t.equal(store.teamsTarget('anna').kind, 'set');
  t.same(store.view('anna').activities, ['on-the-phone']);

  store.setTelephony('anna', { line: 'idle', dnd: false, calls: [], origin: 'pbx', at: Date.now() });
  await waitFor(() => store.state('anna').teams?.availability === 'Offline', 8000, 'cleared in Teams and read back');
  t.equal(count('POST /v1.0/users/:id/presence/clearPresence 200'), 1);
  t.equal(graph.status().writer?.failures, 0);
});

t.test('a wrong client secret: start still resolves, status tells why', async (t) => {
  const e = await env();
  t.teardown(() => e.close());
  const { directory, store } = core();
  const graph = await startGraph({ config: e.config({ clientSecret: 'not-the-secret' }), directory, store, logger: silentLogger() });
  t.teardown(() => graph.stop());
  const s = graph.status();
  t.match(s.directory.lastError ?? '', /AADSTS7000215/);
  t.equal(s.tokens[0]?.ok, false);
  t.match(s.tokens[0]?.lastError ?? '', /invalid_client/);
  t.equal(s.reader.users, 0, 'nobody mapped yet; the sync is retried');
});

t.test('when no subscription can be made, everyone is polled', async (t) => {
  const e = await env();
  t.teardown(() => e.close());
  const { directory, store } = core();
  const svc = e.sim.serviceAccount;
  // nothing listens there: Graph's validation fails and so does the subscription
  const config = e.config({
    serviceAccounts: [{ username: svc.username, password: svc.password }],
    webhook: { publicUrl: 'https://127.0.0.1:9/graph/notify' },
    writer: { enabled: false },
  });
  const graph = await startGraph({ config, directory, store, logger: silentLogger() });
  t.teardown(() => graph.stop());
  const sub = graph.status().reader.subscriptions[0];
  t.equal(sub?.state, 'failed');
  t.match(sub?.lastError ?? '', /ValidationError/);
  t.equal(graph.status().reader.polled, 5);
  e.sim.control.present('elif');
  await graph.pollNow();
  t.equal(store.state('elif').teams?.activity, 'Presenting');
});
