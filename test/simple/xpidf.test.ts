import t from 'tap';
import { parseXpidf } from '../../src/bodies/index.js';
import { makeServer, settle, subscribe } from './helpers.js';

t.test('a phone that asks for XPIDF gets it, from the same view as PIDF watchers', async (t) => {
  const { stack, store } = makeServer();
  const res = stack.deliver(subscribe({ user: 'alice', accept: ['application/xpidf+xml'] }))[0]!;
  t.equal(res.status, 200);
  const next = async () => {
    await settle();
    const n = stack.pending().at(-1)!;
    n.answer(200);
    t.equal(n.request.headers.get('content-type'), 'application/xpidf+xml');
    return parseXpidf(n.request.body);
  };
  const idle = await next();
  t.same(idle, {
    presentity: 'sip:alice@example.com;method=SUBSCRIBE',
    atomId: '1001',
    address: 'sip:alice@example.com;user=ip',
    status: 'open',
    substatus: 'online',
  }, 'the atom is the extension, as Asterisk names it');

  store.setTelephony('alice', { line: 'in-call', dnd: false, calls: [{ id: 'c1', phase: 'confirmed' }], origin: 'test', at: 1 });
  const call = await next();
  t.same([call.status, call.substatus], ['inuse', 'onthephone']);
  store.setTelephony('alice', { line: 'idle', dnd: true, calls: [], origin: 'test', at: 2 });
  const dnd = await next();
  t.same([dnd.status, dnd.substatus], ['inuse', 'busy'], 'DND is never online');
  store.setTelephony('alice', undefined);
  store.setSip('alice', { basic: 'open', activities: ['away'], origin: 'test', at: 3 });
  const away = await next();
  t.same([away.status, away.substatus], ['open', 'away']);
  store.setSip('alice', { basic: 'closed', activities: [], origin: 'test', at: 4 });
  const off = await next();
  t.same([off.status, off.substatus], ['closed', 'offline']);
});

t.test('Accept listing PIDF first keeps PIDF', async (t) => {
  const { stack } = makeServer();
  t.equal(stack.deliver(subscribe({ accept: ['application/pidf+xml', 'application/xpidf+xml'] }))[0]!.status, 200);
  await settle();
  t.equal(stack.pending()[0]!.request.headers.get('content-type'), 'application/pidf+xml');
});
