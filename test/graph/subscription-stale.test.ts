import t from 'tap';
import { GraphError, type Client } from '@microsoft/microsoft-graph-client';
import { ManualClock } from '../../src/graph-simulator/clock.js';
import { SubscriptionManager } from '../../src/graph/subscription-manager.js';
import { MemorySubscriptionStateStore } from '../../src/graph/subscription-state.js';
import { silentLogger } from '../../src/util/logger.js';

t.test('a 409 clears stale subscriptions on every page of GET /subscriptions (@odata.nextLink)', async (t) => {
  const clock = new ManualClock(Date.parse('2030-01-01T08:00:00Z'));
  const calls: string[] = [];
  let staleLeft = true;
  const next = 'https://graph.example/v1.0/subscriptions?$skiptoken=page2';
  // one account's subscriptions: an Outlook one on the first page, the stale presence one on the second
  const fake = {
    api(path: string) {
      return {
        get: async () => {
          calls.push(`GET ${path}`);
          if (path === '/subscriptions') return { value: [{ id: 'mail-1', resource: 'me/mailFolders/inbox/messages' }], '@odata.nextLink': next };
          if (path === next) return { value: [{ id: 'stale-1', resource: "communications/presences?$filter=id in ('u1')" }] };
          throw new GraphError(404, 'no such page');
        },
        post: async () => {
          calls.push(`POST ${path}`);
          if (staleLeft) throw new GraphError(409, 'A subscription already exists for this application and user.');
          return { id: 'fresh-1', expirationDateTime: new Date(clock.now() + 58 * 60_000).toISOString() };
        },
        delete: async () => {
          calls.push(`DELETE ${path}`);
          if (path === '/subscriptions/stale-1') staleLeft = false;
        },
        patch: async () => {
          calls.push(`PATCH ${path}`);
          return {};
        },
      };
    },
  } as unknown as Client;
  const m = new SubscriptionManager({
    accounts: [{ name: 'svc@contoso.example', client: fake }],
    notificationUrl: 'https://gw.example/graph/notifications',
    clientState: 'c'.repeat(32),
    stateStore: new MemorySubscriptionStateStore(),
    clock,
    logger: silentLogger(),
  });
  await m.start(['u1']);
  await m.idle();
  t.same(calls, ['POST /subscriptions', 'GET /subscriptions', `GET ${next}`, 'DELETE /subscriptions/stale-1', 'POST /subscriptions'], 'the second page was read; only the presence subscription deleted');
  t.equal(m.isCovered('u1'), true);
  t.equal(m.status()[0]?.conflictsResolved, 1);
  await m.stop();
});
