import t from 'tap';
import { ManualClock } from '../../src/graph-simulator/clock.js';
import { RequestBudget } from '../../src/graph/budget.js';
import { parseRetryAfter, splitGraphBaseUrl } from '../../src/graph/client.js';

const settle = () => new Promise<void>((r) => setImmediate(r));

t.test('at most `limit` starts in any window; waiters go in order as the window slides', async (t) => {
  const clock = new ManualClock(1_000_000);
  const budget = new RequestBudget(clock, 3, 30_000);
  const started: number[] = [];
  const go = (n: number) => budget.acquire().then(() => started.push(n));
  go(1);
  clock.advance(10_000);
  go(2);
  go(3);
  await settle();
  t.same(started, [1, 2, 3], 'three fit in the window');
  go(4);
  go(5);
  await settle();
  t.same(started, [1, 2, 3], 'the fourth waits');
  t.equal(budget.status().waiting, 2);
  clock.advance(19_999);
  await settle();
  t.same(started, [1, 2, 3], 'not before the first start has left the window');
  clock.advance(1);
  await settle();
  t.same(started, [1, 2, 3, 4], 'the first start left the window: one more');
  clock.advance(10_000);
  await settle();
  t.same(started, [1, 2, 3, 4, 5], 'in order');
  const s = budget.status();
  t.equal(s.inWindow, 2, 'the starts at +10 s are exactly a window old: out');
  t.equal(s.granted, 5);
});

t.test('a 429 pauses everyone until Retry-After has passed', async (t) => {
  const clock = new ManualClock(0);
  const budget = new RequestBudget(clock, 100);
  budget.throttledFor(5000);
  let done = false;
  void budget.acquire().then(() => (done = true));
  await settle();
  t.equal(done, false);
  t.equal(budget.status().pausedUntil, 5000);
  clock.advance(4999);
  await settle();
  t.equal(done, false);
  clock.advance(1);
  await settle();
  t.equal(done, true);
  t.equal(budget.status().throttled, 1);
});

t.test('drain releases waiters at shutdown', async (t) => {
  const clock = new ManualClock(0);
  const budget = new RequestBudget(clock, 1);
  await budget.acquire();
  let released = false;
  void budget.acquire().then(() => (released = true));
  budget.drain();
  await settle();
  t.equal(released, true);
});

t.test('Retry-After as seconds or a date; Graph base URL split for the client', async (t) => {
  t.equal(parseRetryAfter('7'), 7000);
  t.equal(parseRetryAfter(new Date(60_000).toUTCString(), 0), 60_000);
  t.equal(parseRetryAfter('soon'), undefined);
  t.equal(parseRetryAfter(null), undefined);
  t.same(splitGraphBaseUrl('https://graph.microsoft.com/v1.0'), { baseUrl: 'https://graph.microsoft.com/', version: 'v1.0', hostname: 'graph.microsoft.com' });
  t.same(splitGraphBaseUrl('https://127.0.0.1:8443/graph/beta/'), { baseUrl: 'https://127.0.0.1:8443/graph/', version: 'beta', hostname: '127.0.0.1' });
});
