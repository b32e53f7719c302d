/**
 * An AdminSource for tests: a real Directory, PresenceHub and ChangeHistory,
 * with trunks, Graph status, watcher counts, rendering and resync faked.
 */
import { Directory, type Person } from '../../src/core/directory.js';
import { ChangeHistory } from '../../src/core/history.js';
import { PresenceHub } from '../../src/core/presence-hub.js';
import type { Clock } from '../../src/util/clock.js';
import type { AdminSource, GraphInfo, RenderedBody, ResyncResult, TrunkInfo, WatcherEvent, WatcherProfileName } from '../../src/http/admin-source.js';

export const DOMAIN = 'example.test';

export const PEOPLE: Person[] = [
  { id: 'anna', displayName: 'Anna Meier', extension: '1001', sipAors: [`sip:anna@${DOMAIN}`], teams: { userId: '11111111-0000-0000-0000-000000000001', upn: 'anna@contoso.test' } },
  { id: 'ben', displayName: 'Ben Okafor', extension: '1002', sipAors: [`sip:ben@${DOMAIN}`], teams: { userId: '11111111-0000-0000-0000-000000000002', upn: 'ben@contoso.test' } },
  { id: 'chiara', displayName: 'Chiara Rossi', extension: '1003', sipAors: [`sip:chiara@${DOMAIN}`] },
];

export interface FakeSource extends AdminSource {
  readonly store: PresenceHub;
  readonly directory: Directory;
  readonly historyLog: ChangeHistory;
  trunkList: TrunkInfo[];
  graphInfo: GraphInfo | undefined;
  watcherCounts: Map<string, Record<string, number>>;
  resyncs: string[];
  renders: Array<{ id: string; event: WatcherEvent; profile: WatcherProfileName }>;
  close(): void;
}

export function fakeSource(options: { clock?: Pick<Clock, 'now'>; historySize?: number } = {}): FakeSource {
  const people = PEOPLE.map((p) => ({ ...p, sipAors: [...p.sipAors], ...(p.teams !== undefined ? { teams: { ...p.teams } } : {}) }));
  const directory = new Directory(people, { domains: [DOMAIN] });
  const store = new PresenceHub(directory, options.clock !== undefined ? { clock: options.clock } : {});
  const historyLog = new ChangeHistory(store, { size: options.historySize ?? 50, ...(options.clock !== undefined ? { clock: options.clock } : {}) });
  const src: FakeSource = {
    store,
    directory,
    historyLog,
    trunkList: [
      {
        name: 'pbx1',
        profile: 'asterisk',
        directions: ['watch', 'inbound'],
        reachable: true,
        rttMs: 3.2,
        authenticated: true,
        subscriptions: { up: 3, down: 0 },
        publications: { up: 0, down: 0 },
      },
      {
        name: 'cucm',
        profile: 'cisco',
        directions: ['publish'],
        reachable: false,
        authenticated: undefined,
        subscriptions: { up: 0, down: 0 },
        publications: { up: 0, down: 2 },
        lastError: { at: 1_700_000_000_000, message: 'OPTIONS timed out' },
      },
    ],
    graphInfo: {
      started: true,
      tokens: [{ name: 'app', ok: true, lastAcquiredAt: 1_700_000_000_000 }],
      budget: { throttled: 0 },
      reader: {
        users: 2,
        subscriptions: [
          { account: 'svc1', users: 2, subscriptionId: 'sub-1', expiresAt: new Date(Date.now() + 45 * 60_000).toISOString(), state: 'active', failures: 0 },
        ],
      },
    },
    watcherCounts: new Map([['anna', { presence: 2, dialog: 1 }]]),
    resyncs: [],
    renders: [],
    persons: () => directory.all(),
    state: (id) => store.state(id),
    view: (id) => store.view(id),
    history: (id) => historyLog.entries(id),
    watchers: (id) => src.watcherCounts.get(id) ?? {},
    onChange: (listener) => store.onChange((id) => listener(id)),
    trunks: () => src.trunkList,
    graph: () => src.graphInfo,
    async resync(id): Promise<ResyncResult> {
      src.resyncs.push(id);
      return id === 'chiara' ? { ok: false, detail: 'chiara has no Teams identity' } : { ok: true, detail: `read ${id} from Graph again` };
    },
    render(id, event, profile): RenderedBody | undefined {
      if (directory.get(id) === undefined) return undefined;
      src.renders.push({ id, event, profile });
      const v = store.view(id);
      return event === 'presence'
        ? { contentType: 'application/pidf+xml', body: `<presence entity="sip:${id}@${DOMAIN}"><basic>${v.basic}</basic><activities>${v.activities.join(' ')}</activities></presence>` }
        : { contentType: 'application/dialog-info+xml', body: `<dialog-info entity="sip:${id}@${DOMAIN}" calls="${v.calls.length}"/>` };
    },
    close: () => historyLog.close(),
  };
  return src;
}

export const TOKEN = 'test-admin-token-0123456789abcdef';
