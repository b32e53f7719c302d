import t from 'tap';
import { ManualClock } from '../../src/graph-simulator/clock.js';
import { pollRequestsPer30s } from '../../src/graph/config.js';
import { batchesFor, planPolling } from '../../src/graph/poll-plan.js';
import { evenBatches, SpreadRead } from '../../src/graph/spread-read.js';
import { WebhookHealth } from '../../src/graph/webhook-health.js';

const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
};

t.test('the poll interval follows the people and the budget share, down to 1 s', async (t) => {
  const share = pollRequestsPer30s(0.4);
  t.equal(share, 600, '40 % of 1,500');
  const plan = (polled: number, covered = 0, mode: 'budget' | 'fixed' = 'budget') =>
    planPolling({ mode, requestsPer30s: share, polled, covered, intervalMs: 30_000, safetyIntervalMs: 600_000 });
  t.equal(batchesFor(5000), 8);
  const p5k = plan(5000);
  t.equal(p5k.pollIntervalMs, 1000, '8 calls a second is well within 20 a second: the 1 s floor');
  t.equal(p5k.requestsPer30s, 240, '16 % of the documented 1,500');
  t.equal(p5k.limited, false);
  const p50k = plan(50_000);
  t.equal(p50k.pollIntervalMs, 3850, '77 calls at 20 a second');
  t.ok(p50k.requestsPer30s <= share + 1e-9, 'never more than the share');
  const huge = plan(500_000);
  t.ok(huge.pollIntervalMs > 30_000, 'the budget wins over intervalSec');
  t.equal(huge.limited, true, 'and says so');
  t.equal(plan(10, 0, 'fixed').pollIntervalMs, 30_000, 'fixed: intervalSec');
  const mixed = plan(650, 4350);
  t.equal(mixed.safetyIntervalMs, 600_000, 'the safety read of covered people keeps its interval');
  t.equal(mixed.pollIntervalMs, 1000);
  t.ok(Math.abs(mixed.requestsPer30s - (30 + 7 * 30_000 / 600_000)) < 1e-9, 'one call a second plus 7 calls per 10 min');
});

t.test('batches of at most 650, of near equal size', async (t) => {
  const ids = Array.from({ length: 5000 }, (_, i) => `u${i}`);
  const b = evenBatches(ids);
  t.equal(b.length, 8);
  t.same(b.map((x) => x.length), [625, 625, 625, 625, 625, 625, 625, 625]);
  t.same(b.flat(), ids, 'everyone once, in order');
  t.same(evenBatches(ids.slice(0, 651)).map((x) => x.length), [326, 325]);
  t.same(evenBatches([]), []);
});

t.test('a cycle spreads its batches evenly over the interval (no burst)', async (t) => {
  const clock = new ManualClock(1_000_000);
  const ids = Array.from({ length: 2600 }, (_, i) => `u${i}`);
  const starts: Array<{ at: number; n: number }> = [];
  const s = new SpreadRead({
    clock,
    ids: () => ids,
    intervalMs: () => 1000,
    read: async (batch) => {
      starts.push({ at: clock.now() - 1_000_000, n: batch.length });
    },
  });
  s.start(0);
  for (let i = 0; i < 40; i++) {
    clock.advance(50);
    await settle();
  }
  s.stop();
  t.same(starts.slice(0, 8), [
    { at: 0, n: 650 },
    { at: 250, n: 650 },
    { at: 500, n: 650 },
    { at: 750, n: 650 },
    { at: 1000, n: 650 },
    { at: 1250, n: 650 },
    { at: 1500, n: 650 },
    { at: 1750, n: 650 },
  ]);
  t.equal(s.cycles, 3, 'the third cycle began at 2 s');
  t.equal(starts.length, 9);
});

t.test('a slow batch delays the next; batches never overlap', async (t) => {
  const clock = new ManualClock(0);
  let inFlight = 0;
  let most = 0;
  const starts: number[] = [];
  const s = new SpreadRead({
    clock,
    ids: () => Array.from({ length: 1300 }, (_, i) => `u${i}`),
    intervalMs: () => 1000,
    read: (batch) => {
      starts.push(clock.now());
      inFlight++;
      most = Math.max(most, inFlight);
      return new Promise<void>((resolve) => clock.after(800, () => { inFlight--; resolve(); void batch; }));
    },
  });
  s.start(0);
  for (let i = 0; i < 30; i++) {
    clock.advance(100);
    await settle();
  }
  s.stop();
  t.equal(most, 1);
  t.same(starts.slice(0, 3), [0, 800, 1600], 'the second waited for the first; the next cycle for the second');
});

t.test('webhook health: changes a read found and no notification announced', async (t) => {
  const clock = new ManualClock(0);
  const h = new WebhookHealth(clock, 15 * 60_000);
  t.equal(h.status().state, 'healthy');
  h.changeFound('anna');
  clock.advance(30_000);
  h.notified(['anna']);
  clock.advance(60_000);
  t.equal(h.status().state, 'healthy', 'announced within the minute Graph allows: not a miss');
  h.changeFound('ben');
  clock.advance(61_000);
  t.same(h.status(), { state: 'degraded', missed: 1, refused: 0, delivered: 1 });
  h.changeFound('chiara');
  h.changeFound('dmitri');
  clock.advance(61_000);
  t.equal(h.status().state, 'down', 'three misses, not more deliveries than misses: notifications are absent');
  clock.advance(15 * 60_000);
  t.equal(h.status().state, 'healthy', 'a window without misses');
  h.refused();
  t.equal(h.status().state, 'degraded', 'a refused delivery');
});

t.test('webhook health: a read racing a notification look-up is not a miss', async (t) => {
  const clock = new ManualClock(0);
  const h = new WebhookHealth(clock);
  h.notified(['anna']);
  clock.advance(2000);
  h.changeFound('anna');
  clock.advance(120_000);
  t.equal(h.status().state, 'healthy', 'announced just before the read found it');
  h.changeFound('anna');
  clock.advance(61_000);
  t.equal(h.status().missed, 1, 'a minute after the notification, a new unannounced change is a miss');
});
