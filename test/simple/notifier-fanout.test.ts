/**
 * Fan-out pacing: a change to many watchers is sent in short slices of the
 * event loop, so datagrams waiting on a socket (the watchers' 200s) are read
 * between slices, not after the whole fan-out.
 */
import t from 'tap';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { makeServer, settle, subscribe } from './helpers.js';

function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    /* the cost of one NOTIFY */
  }
}

t.test('fan-out interleaves reading the socket between slices', async (t) => {
  const { stack, store, now } = makeServer();
  const watchers = 1200;
  for (let i = 0; i < watchers; i++) stack.deliver(subscribe({ expires: 600 }));
  for (const s of stack.pending()) s.answer(200);
  await settle();
  const before = stack.notifies().length;
  t.equal(before, watchers, 'initial NOTIFYs');

  const socket = createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  t.teardown(() => socket.close());
  let sentWhenRead = -1;
  const read = new Promise<void>((resolve) =>
    socket.once('message', () => {
      sentWhenRead = stack.notifies().length - before;
      resolve();
    }),
  );
  const sender = createSocket('udp4');
  t.teardown(() => sender.close());
  sender.bind(0, '127.0.0.1');
  await once(sender, 'listening');
  // each NOTIFY costs 50 µs (the whole fan-out 60 ms, a 500-NOTIFY slice 25 ms); with the first one
  // a watcher's 200 arrives on the socket
  const send = stack.sendRequest.bind(stack);
  let first = true;
  stack.sendRequest = (request, options) => {
    if (first) {
      first = false;
      sender.send('SIP/2.0 200 OK\r\n\r\n', socket.address().port, '127.0.0.1');
    }
    busy(0.05);
    return send(request, options);
  };

  store.setTelephony('alice', { line: 'in-call', dnd: false, calls: [{ id: 'c1', phase: 'confirmed' }], origin: 'test', at: now() });
  await read;
  t.ok(sentWhenRead >= 0 && sentWhenRead < 250, `the socket was read after ${sentWhenRead} of ${watchers} NOTIFYs (a turn of the loop every few ms)`);
  for (let i = 0; i < 200 && stack.notifies().length - before < watchers; i++) await settle();
  t.equal(stack.notifies().length - before, watchers, 'every watcher notified');
});

t.test('the periodic sweep saves moved subscriptions in slices; persistMoved (at close) saves all at once', async (t) => {
  const { stack, store, now, server } = makeServer();
  const saved: string[] = [];
  server.notifier.onPersist({ save: (sub) => saved.push(sub.localTag), remove: () => undefined });
  const watchers = 1000;
  for (let i = 0; i < watchers; i++) stack.deliver(subscribe({ expires: 600 }));
  for (const s of stack.pending()) s.answer(200);
  await settle();
  const change = async (line: 'in-call' | 'idle'): Promise<void> => {
    store.setTelephony('alice', { line, dnd: false, calls: line === 'idle' ? [] : [{ id: 'c1', phase: 'confirmed' }], origin: 'test', at: now() });
    for (let i = 0; i < 100 && stack.pending().length < watchers; i++) await settle();
    for (const s of stack.pending()) s.answer(200);
    await settle();
  };
  await change('in-call');
  saved.length = 0;
  server.notifier.sweepMoved();
  t.equal(saved.length, 250, 'one slice saved in this turn');
  server.notifier.sweepMoved();
  t.equal(saved.length, 250, 'a sweep in progress is not started again');
  const end = Date.now() + 5000;
  while (saved.length < watchers && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  t.equal(new Set(saved).size, watchers, 'all saved, each once, over a few slices');

  await change('idle');
  saved.length = 0;
  t.equal(server.notifier.persistMoved(), watchers, 'persistMoved saves all at once');
  t.equal(saved.length, watchers);
});
