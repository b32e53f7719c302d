/** Desk phones' forwarding (as-feature-event) is kept per person in the store and sent to their phones after a restart. */
import t from 'tap';
import { buildForwardingEvent } from '../../src/bodies/index.js';
import { PresenceHub } from '../../src/core/presence-hub.js';
import { createPersistence } from '../../src/persistence-wiring.js';
import { PHONE_FORWARDING_META_KEY as FORWARDING_META_KEY } from '../../src/store/index.js';
import { SimpleServer } from '../../src/simple/simple-server.js';
import { MemoryStore } from '../../src/store/index.js';
import { silentLogger } from '../../src/util/logger.js';
import { TimerWheel } from '../../src/util/timer-wheel.js';
import { CONFIG, FakeStack, makeDirectory, settle, subscribe } from '../simple/helpers.js';

const NS = 'http://www.ecma-international.org/standards/ecma-323/csta/ed3';

function run(db: MemoryStore) {
  const now = () => 1_700_000_000_000;
  const directory = makeDirectory();
  const store = new PresenceHub(directory, { clock: { now } });
  const stack = new FakeStack();
  const server = new SimpleServer({ stack, directory, store, config: { ...CONFIG, featureKeys: true }, logger: silentLogger(), clock: { now }, wheel: new TimerWheel({ clock: { now }, autoStart: false }) });
  const p = createPersistence({ store: db, logger: silentLogger(), always: true, sweepMs: 3_600_000, clock: { now } });
  const summary = p.restore({ notifier: server.notifier, publications: server.publications, directory, features: server.features! });
  return { stack, server, summary };
}

async function drain(stack: FakeStack): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < 20; i++) {
    await settle();
    const p = stack.pending();
    if (p.length === 0) break;
    for (const x of p) {
      out.push(x.request.body.toString());
      x.answer(200);
    }
  }
  return out;
}

t.test('forwarding survives a restart and reaches the restored phone subscription', async (t) => {
  const db = new MemoryStore();
  const a = run(db);
  const phone = subscribe({ user: 'alice', event: 'as-feature-event', expires: 600 });
  phone.headers.set('from', '<sip:alice@example.com>;tag=desk');
  phone.headers.append('content-type', 'application/x-as-feature-event+xml');
  phone.body = Buffer.from(
    `<SetForwarding xmlns="${NS}"><device>1001</device><forwardingType>forwardNoAns</forwardingType><activateForward>true</activateForward><forwardDN>4000</forwardDN><ringCount>4</ringCount></SetForwarding>`,
  );
  t.equal(a.stack.deliver(phone)[0]!.status, 200);
  await drain(a.stack);
  t.match(JSON.parse(db.meta.get(FORWARDING_META_KEY)!), { alice: [{ type: 'forwardNoAns', on: true, to: '4000', ringCount: 4 }] }, 'kept in the store');

  const b = run(db);
  t.equal(b.summary.forwarding, 1, 'one setting restored');
  t.same(b.server.features!.forwardingOf('alice').map((f) => [f.type, f.on, f.to, f.ringCount]), [['forwardNoAns', true, '4000', 4]]);
  const bodies = await drain(b.stack);
  t.match(bodies[0], /DoNotDisturbEvent/, 'the restored subscription: DND first');
  t.equal(bodies[1], buildForwardingEvent('1001', 'forwardNoAns', true, '4000', 4), 'then the forwarding kept across the restart');
});

t.test('a bad saved forwarding document is skipped, not half-restored', async (t) => {
  const db = new MemoryStore();
  db.meta.set(FORWARDING_META_KEY, JSON.stringify({ alice: [{ type: 'forwardSometimes', on: true }, { type: 'forwardBusy', on: 'yes' }, { type: 'forwardBusy', on: false, at: 5 }], ghost: [{ type: 'forwardBusy', on: true, at: 1 }] }));
  const b = run(db);
  t.equal(b.summary.forwarding, 1);
  t.same(b.server.features!.forwardingOf('alice'), [{ type: 'forwardBusy', on: false, at: 5 }]);
  t.same(b.server.features!.forwardingOf('ghost'), [], 'people no longer configured are dropped');
  const c = run(new MemoryStore());
  db.meta.set(FORWARDING_META_KEY, 'not json');
  t.equal(run(db).summary.forwarding, 0);
  t.equal(c.summary.forwarding, 0);
});
