import t from 'tap';
import { wireCluster, type ClusterHub, type ClusterNotifier, type ClusterPublications } from '../src/cluster-wiring.js';
import type { HubInput } from '../src/core/hub-input.js';
import { publishSourceOf } from '../src/core/publish-source.js';
import type { BusMessage, Cluster, LeaseInfo, NodeInfo } from '../src/store/cluster.js';
import type { PublicationRecord, WatcherSubscriptionRecord } from '../src/store/records.js';
import { silentLogger } from '../src/util/logger.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A Cluster whose store and bus are arrays: what was published, saved and claimed. */
function fakeCluster(nodeId: string) {
  const busListeners = new Set<(m: BusMessage) => void>();
  const downListeners = new Set<(id: string) => void>();
  const connListeners = new Set<(up: boolean) => void>();
  const published: BusMessage[] = [];
  const saved: HubInput[] = [];
  const locals: Array<Partial<NodeInfo>> = [];
  const claims: string[] = [];
  /** ids another node owns now (ownedElsewhere) */
  const elsewhere = new Set<string>();
  let connected = true;
  const stored: HubInput[] = [];
  let loadGate: Promise<void> = Promise.resolve();
  const owned = {
    subscriptions: new Map<string, WatcherSubscriptionRecord[]>(),
    publications: new Map<string, PublicationRecord[]>(),
  };
  const leases: LeaseInfo[] = [
    { job: 'trunk:pbx1', holder: nodeId, token: 3, expiresAt: 1 },
    { job: 'graph:poller', holder: 'other', token: 1, expiresAt: 1 },
  ];
  const cluster: Cluster = {
    nodeId,
    membership: {
      nodeId,
      nodes: () => [],
      onNodeDown: (l) => (downListeners.add(l), () => downListeners.delete(l)),
      onNodeUp: () => () => undefined,
      setLocal: (info) => void locals.push(info),
    },
    leases: {
      hold: () => async () => undefined,
      held: (job) => leases.find((l) => l.job === job && l.holder === nodeId)?.token,
      list: () => leases,
    },
    bus: {
      publish: (m) => void published.push(m),
      onMessage: (l) => (busListeners.add(l), () => busListeners.delete(l)),
    },
    ownership: {
      async claimNode(dead) {
        claims.push(`node:${dead}`);
        const out = { subscriptions: owned.subscriptions.get(dead) ?? [], publications: owned.publications.get(dead) ?? [] };
        owned.subscriptions.delete(dead);
        owned.publications.delete(dead);
        return out;
      },
      async claimSubscription(id) {
        claims.push(`sub:${id}`);
        return id === 'known' ? ({ id } as unknown as WatcherSubscriptionRecord) : undefined;
      },
      async claimPublication(etag) {
        claims.push(`pub:${etag}`);
        return etag === 'known' ? ({ etag } as unknown as PublicationRecord) : undefined;
      },
      ownerOf: async () => undefined,
      ownedElsewhere: async (what, ids) => (claims.push(`elsewhere:${what}:${ids.join(',')}`), ids.filter((id) => elsewhere.has(id))),
    },
    personState: {
      loadInputs: async () => {
        await loadGate;
        return stored;
      },
      save: (input) => void saved.push(input),
    },
    connected: () => connected,
    onConnected: (l) => (connListeners.add(l), () => connListeners.delete(l)),
    close: async () => undefined,
  };
  return {
    cluster,
    published,
    saved,
    locals,
    claims,
    elsewhere,
    stored,
    owned,
    gate(p: Promise<void>) {
      loadGate = p;
    },
    deliver: (m: BusMessage) => busListeners.forEach((l) => l(m)),
    nodeDown: (id: string) => downListeners.forEach((l) => l(id)),
    setConnected(up: boolean) {
      connected = up;
      connListeners.forEach((l) => l(up));
    },
    /** connected() changes before its listeners hear of it (they are told by setConnected). */
    setConnectedQuietly(up: boolean) {
      connected = up;
    },
  };
}

function fakeHub() {
  const listeners = new Set<(i: HubInput) => void>();
  const applied: HubInput[] = [];
  const dropped: string[] = [];
  const hub: ClusterHub = {
    onInput: (l) => (listeners.add(l), () => listeners.delete(l)),
    apply: (i) => void applied.push(i),
    dropSource: (s) => void dropped.push(s),
  };
  return { hub, applied, dropped, emit: (i: HubInput) => listeners.forEach((l) => l(i)) };
}

function fakeSimple() {
  const log: string[] = [];
  const notifier: ClusterNotifier = {
    size: 7,
    ids: () => ['s1', 's2', 's3'],
    restoreClaimed: (r) => (log.push(`restore ${r.map((x) => x.id).join(',')}`), { restored: r.length, dropped: 0 }),
    release: (id) => void log.push(`release sub ${id}`),
  };
  const publications: ClusterPublications = {
    etags: () => ['e1', 'e2'],
    adopt: (r) => (log.push(`adopt ${r.map((x) => x.etag).join(',')}`), { restored: r.length, dropped: 0 }),
    release: (etag) => void log.push(`release pub ${etag}`),
  };
  return { notifier, publications, log };
}

const input = (personId: string, note: string, source = 'publish@a'): HubInput => ({
  kind: 'sip',
  personId,
  source,
  rich: { basic: 'open', activities: [], note, origin: 'sip', at: 1 } as unknown as NonNullable<Extract<HubInput, { kind: 'sip' }>['rich']>,
});

t.test('a local input goes on the bus and into the shared state; another node\'s is applied, its own is not', async (t) => {
  const c = fakeCluster('a');
  const h = fakeHub();
  const w = wireCluster({ cluster: c.cluster, hub: h.hub, logger: silentLogger() });
  t.teardown(() => w.close());
  await w.load();
  h.emit(input('anna', 'x'));
  t.same(c.published, [{ type: 'input', from: 'a', input: input('anna', 'x') }]);
  t.same(c.saved, [input('anna', 'x')]);
  t.same(h.applied, [], 'a local input is not applied again');
  c.deliver({ type: 'input', from: 'b', input: input('ben', 'y', 'publish@b') });
  c.deliver({ type: 'input', from: 'a', input: input('ben', 'echo') });
  t.same(h.applied, [input('ben', 'y', 'publish@b')], 'only the other node\'s input is applied');
});

t.test('load applies the shared state first and the bus inputs that came meanwhile after it, in order', async (t) => {
  const c = fakeCluster('a');
  c.stored.push(input('anna', 'old', 'publish@b'), input('ben', 'old', 'publish@b'));
  let open!: () => void;
  c.gate(new Promise<void>((r) => (open = r)));
  const h = fakeHub();
  const w = wireCluster({ cluster: c.cluster, hub: h.hub, logger: silentLogger() });
  t.teardown(() => w.close());
  const loading = w.load();
  c.deliver({ type: 'input', from: 'b', input: input('anna', 'new', 'publish@b') });
  t.same(h.applied, [], 'nothing applied before the shared state is read');
  open();
  t.equal(await loading, 2);
  t.same(
    h.applied.map((i) => (i.kind === 'sip' ? `${i.personId} ${i.rich?.note}` : '')),
    ['anna old', 'ben old', 'anna new'],
  );
  c.deliver({ type: 'input', from: 'b', input: input('carla', 'later', 'publish@b') });
  t.equal(h.applied.length, 4, 'applied at once after the load');
});

t.test('a dead node: its records claimed, publications adopted before the subscriptions restore, its source dropped', async (t) => {
  const c = fakeCluster('b');
  c.owned.subscriptions.set('a', [{ id: 's1' } as unknown as WatcherSubscriptionRecord, { id: 's2' } as unknown as WatcherSubscriptionRecord]);
  c.owned.publications.set('a', [{ etag: 'e1' } as unknown as PublicationRecord]);
  const h = fakeHub();
  const s = fakeSimple();
  const w = wireCluster({ cluster: c.cluster, hub: h.hub, logger: silentLogger() });
  t.teardown(() => w.close());
  await w.load();
  w.attach({ notifier: s.notifier, publications: s.publications });
  c.nodeDown('a');
  await tick();
  t.same(c.claims, ['node:a']);
  t.same(s.log, ['adopt e1', 'restore s1,s2']);
  t.same(h.dropped, [publishSourceOf('a')], 'publish@a dropped');
  // a second survivor that lost the claim still drops the dead node's source
  c.nodeDown('a');
  await tick();
  t.same(s.log, ['adopt e1', 'restore s1,s2'], 'nothing more restored');
  t.same(h.dropped, ['publish@a', 'publish@a']);
});

t.test('a node seen dead before this one serves SIP is taken over when it attaches (it may be the only one left)', async (t) => {
  const c = fakeCluster('b');
  c.owned.subscriptions.set('a', [{ id: 's1' } as unknown as WatcherSubscriptionRecord]);
  c.owned.publications.set('a', [{ etag: 'e1' } as unknown as PublicationRecord]);
  const h = fakeHub();
  const s = fakeSimple();
  const w = wireCluster({ cluster: c.cluster, hub: h.hub, logger: silentLogger() });
  t.teardown(() => w.close());
  c.nodeDown('a');
  await w.load();
  await tick();
  t.same(c.claims, [], 'nothing claimed before the notifier can take it');
  t.same(h.dropped, [], 'its state stays until its publications are adopted');
  w.attach({ notifier: s.notifier, publications: s.publications });
  await tick();
  t.same(c.claims, ['node:a']);
  t.same(s.log, ['adopt e1', 'restore s1']);
  t.same(h.dropped, [publishSourceOf('a')]);
});

t.test('a single node: no SIMPLE cluster options', async (t) => {
  const c = fakeCluster('a');
  const h = fakeHub();
  const w = wireCluster({ cluster: { ...c.cluster, ownership: undefined }, hub: h.hub, logger: silentLogger() });
  t.teardown(() => w.close());
  t.equal(w.simpleOptions(), undefined);
});

t.test('unknown subscriptions and entity-tags are claimed and announced as moved; a move elsewhere releases', async (t) => {
  const c = fakeCluster('c');
  const h = fakeHub();
  const s = fakeSimple();
  const w = wireCluster({ cluster: c.cluster, hub: h.hub, logger: silentLogger() });
  await w.load();
  const options = w.simpleOptions();
  t.equal(options?.publishSource, 'publish@c', 'publications compose under publish@<node>');
  w.attach({ notifier: s.notifier, publications: s.publications });
  t.same(await options!.resolveSubscription('known'), { id: 'known' });
  t.equal(await options!.resolveSubscription('nobody'), undefined);
  t.same(await options!.resolvePublication('known'), { etag: 'known' });
  t.same(c.claims, ['sub:known', 'sub:nobody', 'pub:known']);
  t.same(c.published, [
    { type: 'moved', from: 'c', what: 'subscription', id: 'known', to: 'c' },
    { type: 'moved', from: 'c', what: 'publication', id: 'known', to: 'c' },
  ], 'only a found one is announced');
  c.deliver({ type: 'moved', from: 'b', what: 'subscription', id: 's9', to: 'b' });
  c.deliver({ type: 'moved', from: 'b', what: 'publication', id: 'e9', to: 'b' });
  c.deliver({ type: 'moved', from: 'b', what: 'subscription', id: 's8', to: 'c' });
  t.same(s.log, ['release sub s9', 'release pub e9'], 'a move to this node releases nothing');
  w.close();
  c.deliver({ type: 'moved', from: 'b', what: 'subscription', id: 's7', to: 'b' });
  t.equal(s.log.length, 2, 'nothing handled after close');
});

t.test('the heartbeat says the subscriptions owned', async (t) => {
  const c = fakeCluster('a');
  const h = fakeHub();
  const s = fakeSimple();
  const w = wireCluster({ cluster: c.cluster, hub: h.hub, logger: silentLogger() });
  t.teardown(() => w.close());
  await w.load();
  w.attach({ notifier: s.notifier, publications: s.publications, sip: ['udp 127.0.0.1:5060'], http: 'http://127.0.0.1:1' });
  t.same(c.locals, [{ sip: ['udp 127.0.0.1:5060'], http: 'http://127.0.0.1:1' }, { subscriptions: 7 }]);
});

t.test('after an outage the latest input of each slot written meanwhile is published and saved again', async (t) => {
  const c = fakeCluster('a');
  const h = fakeHub();
  const w = wireCluster({ cluster: c.cluster, hub: h.hub, logger: silentLogger() });
  t.teardown(() => w.close());
  await w.load();
  h.emit(input('anna', 'before'));
  c.setConnected(false);
  h.emit(input('anna', 'd1'));
  h.emit(input('anna', 'd2'));
  h.emit(input('anna', 'phone', 'publish@x'));
  h.emit({ kind: 'teams', personId: 'ben' });
  t.equal(c.published.length, 5, 'published while down too (lost for the others)');
  c.published.length = 0;
  c.saved.length = 0;
  c.setConnected(true);
  const notes = c.published.map((m) => (m.type === 'input' && m.input.kind === 'sip' ? m.input.rich?.note : m.type === 'input' ? m.input.kind : m.type));
  t.same(notes, ['d2', 'phone', 'teams'], 'one per slot, the latest');
  t.equal(c.saved.length, 3, 'saved again');
  c.published.length = 0;
  c.setConnected(false);
  c.setConnected(true);
  t.same(c.published, [], 'nothing twice');
});

t.test('an input kept while down is stale once a later one of its slot went out: not published again', async (t) => {
  const c = fakeCluster('a');
  const h = fakeHub();
  const w = wireCluster({ cluster: c.cluster, hub: h.hub, logger: silentLogger() });
  t.teardown(() => w.close());
  await w.load();
  c.setConnected(false);
  h.emit(input('anna', 'while down'));
  h.emit(input('ben', 'while down'));
  c.setConnectedQuietly(true);
  h.emit(input('anna', 'later, connected'));
  c.published.length = 0;
  c.setConnected(true);
  const again = c.published.map((m) => (m.type === 'input' && 'personId' in m.input ? m.input.personId : m.type));
  t.same(again, ['ben'], "anna's stale input is not sent again over her later one");
});

t.test('the store back after an outage: what another node took over meanwhile is let go, at once and once more later', async (t) => {
  const c = fakeCluster('a');
  const h = fakeHub();
  const s = fakeSimple();
  const w = wireCluster({ cluster: c.cluster, hub: h.hub, logger: silentLogger(), recheckMs: 30 });
  t.teardown(() => w.close());
  await w.load();
  w.attach({ notifier: s.notifier, publications: s.publications });
  c.setConnected(false);
  await tick();
  t.same(s.log, [], 'losing the store lets nothing go');
  c.elsewhere.add('s2');
  c.elsewhere.add('e1');
  c.setConnected(true);
  await tick();
  await tick();
  t.same(c.claims, ['elsewhere:subscription:s1,s2,s3', 'elsewhere:publication:e1,e2'], 'every held id checked');
  t.same(s.log, ['release sub s2', 'release pub e1'], 'only what another node owns is let go, without a NOTIFY');
  // a survivor that claimed this node just after it reconnected: seen by the second check
  c.elsewhere.add('s3');
  await new Promise((r) => setTimeout(r, 80));
  t.ok(s.log.includes('release sub s3'), 'the later check lets go what was claimed after the reconnect');
});

t.test('no ownership (one node): nothing is checked when the store comes back', async (t) => {
  const c = fakeCluster('a');
  const h = fakeHub();
  const s = fakeSimple();
  const w = wireCluster({ cluster: { ...c.cluster, ownership: undefined }, hub: h.hub, logger: silentLogger(), recheckMs: 10 });
  t.teardown(() => w.close());
  await w.load();
  w.attach({ notifier: s.notifier, publications: s.publications });
  c.setConnected(true);
  await new Promise((r) => setTimeout(r, 30));
  t.same(s.log, []);
  t.same(c.claims, []);
});
