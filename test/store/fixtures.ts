/** Sample records for the store tests (invented values). */
import type {
  DirectoryCacheRecord,
  GraphSubscriptionRecord,
  PublicationRecord,
  UpstreamPublicationRecord,
  UpstreamSubscriptionRecord,
  WatcherSubscriptionRecord,
} from '../../src/store/index.js';
import type { Clock, Timer } from '../../src/util/clock.js';

export const T0 = 1_750_000_000_000;

export function watcher(n: number, over: Partial<WatcherSubscriptionRecord> = {}): WatcherSubscriptionRecord {
  return {
    id: `sub-${n}`,
    event: 'presence',
    resource: `user${n % 50}`,
    entity: `sip:user${n % 50}@gw.example.test`,
    callId: `c${n}-7f3a@10.1.2.3`,
    localTag: `gw${n.toString(16)}`,
    remoteTag: `w${n}`,
    localParty: `<sip:user${n % 50}@gw.example.test>;tag=gw${n.toString(16)}`,
    remoteParty: `"Console ${n}" <sip:console${n}@pbx.example.test>;tag=w${n}`,
    remoteTarget: `sip:console${n}@10.1.2.3:5062;transport=tcp`,
    routeSet: ['<sip:10.1.2.1;lr>'],
    localCseq: 3,
    remoteCseq: 101,
    expiresAt: T0 + 3_600_000,
    contentType: 'application/pidf+xml',
    variant: 'cisco',
    transport: 'tcp',
    destination: { protocol: 'tcp', address: '10.1.2.3', port: 5062 },
    version: 2,
    createdAt: T0,
    ...over,
  };
}

export const publication: PublicationRecord = {
  etag: 'a1b2c3d4e5f60708',
  resource: 'anna',
  event: 'presence',
  expiresAt: T0 + 600_000,
  state: { rich: { basic: 'open', activities: ['on-the-phone'], note: 'Am Telefon – Müller', origin: 'publish:10.0.0.9', at: T0 } },
};

export const upstreamSubscription: UpstreamSubscriptionRecord = {
  trunk: 'cucm-1',
  personId: 'anna',
  event: 'dialog',
  callId: 'up-1@gw',
  fromTag: 'f1',
  toTag: 't9',
  remoteTarget: 'sip:1001@10.9.9.9:5060',
  routeSet: [],
  cseq: 7,
  expiresAt: T0 + 1_800_000,
};

export const upstreamPublication: UpstreamPublicationRecord = {
  trunk: 'cups',
  personId: 'anna',
  event: 'presence',
  etag: 'e-55',
  expiresAt: T0 + 3_600_000,
};

export const graphSubscription: GraphSubscriptionRecord = {
  id: '7e1f1e0a-0000-4000-8000-000000000001',
  account: 'svc1@contoso.example',
  userIds: ['11111111-2222-4333-8444-555555555555'],
  expiresAt: T0 + 3_000_000,
  clientState: 'cs-secret-1',
  notificationUrl: 'https://gw.example.test/graph/notifications',
};

export const directoryEntry: DirectoryCacheRecord = {
  personId: 'anna',
  teamsUserId: '11111111-2222-4333-8444-555555555555',
  upn: 'anna@contoso.example',
  at: T0,
};

/** A manual clock: timers fire only when the test says so. */
export class ManualTimers implements Clock {
  pending: Array<{ fn: () => void; ms: number; cancelled: boolean }> = [];
  now(): number {
    return Date.now();
  }
  after(ms: number, fn: () => void): Timer {
    const h = { fn, ms, cancelled: false };
    this.pending.push(h);
    return { cancel: () => (h.cancelled = true) };
  }
  get armed(): Array<{ fn: () => void; ms: number }> {
    return this.pending.filter((h) => !h.cancelled);
  }
  fire(): void {
    const due = this.armed;
    this.pending = [];
    for (const h of due) h.fn();
  }
}
