import t from 'tap';
import { TimerWheel } from '../../src/util/timer-wheel.js';

function manualWheel(options: { resolutionMs?: number; slots?: number; start?: number } = {}) {
  let now = options.start ?? 1_000_000;
  const wheel = new TimerWheel({
    resolutionMs: options.resolutionMs ?? 1000,
    slots: options.slots ?? 8,
    clock: { now: () => now },
    autoStart: false,
  });
  return {
    wheel,
    get now() {
      return now;
    },
    advanceTo(ms: number): number {
      now = ms;
      return wheel.advance();
    },
    advanceBy(ms: number): number {
      now += ms;
      return wheel.advance();
    },
  };
}

t.test('fires at or after the due time, never before', async (t) => {
  const w = manualWheel({ start: 10_000 });
  const firedAt: number[] = [];
  w.wheel.schedule(12_500, () => firedAt.push(w.now));
  t.equal(w.wheel.size, 1);
  t.equal(w.advanceTo(12_000), 0, 'not due at 12.0 s');
  t.equal(w.advanceTo(12_499), 0, 'not due just before');
  t.equal(w.advanceTo(13_000), 1, 'fires on the next tick boundary');
  t.same(firedAt, [13_000]);
  t.equal(w.wheel.size, 0);
  t.equal(w.advanceTo(20_000), 0, 'fires once');
});

t.test('entries beyond one turn of the wheel wait for their round', async (t) => {
  // 8 slots of 1 s: an entry 20 s out shares a bucket with ticks 4 s and 12 s out.
  const w = manualWheel({ start: 0, slots: 8 });
  const fired: string[] = [];
  w.wheel.schedule(20_000, () => fired.push('20s'));
  w.wheel.schedule(4_000, () => fired.push('4s'));
  w.wheel.schedule(12_000, () => fired.push('12s'));
  for (let s = 1; s <= 25; s++) w.advanceTo(s * 1000);
  t.same(fired, ['4s', '12s', '20s']);
});

t.test('cancel and reschedule', async (t) => {
  const w = manualWheel({ start: 0 });
  let a = 0;
  let b = 0;
  const ha = w.wheel.schedule(3000, () => a++);
  const hb = w.wheel.schedule(3000, () => b++);
  w.wheel.cancel(ha);
  t.notOk(ha.active);
  t.equal(w.wheel.size, 1);
  w.wheel.reschedule(hb, 6000);
  t.equal(hb.at, 6000);
  w.advanceTo(5000);
  t.equal(a, 0, 'cancelled never fires');
  t.equal(b, 0, 'moved later');
  w.advanceTo(6000);
  t.equal(b, 1);
  t.notOk(hb.active);
  // reschedule re-arms a fired handle
  w.wheel.reschedule(hb, 8000);
  t.ok(hb.active);
  w.advanceTo(8000);
  t.equal(b, 2);
  w.wheel.cancel(hb);
  t.equal(w.wheel.size, 0, 'cancelling a fired handle is a no-op');
});

t.test('a long stall fires everything overdue once, in due order', async (t) => {
  const w = manualWheel({ start: 0, slots: 4 });
  const fired: number[] = [];
  for (const at of [9000, 1000, 30_000, 5000, 17_000]) w.wheel.schedule(at, () => fired.push(at));
  w.wheel.schedule(100_000, () => fired.push(100_000));
  t.equal(w.advanceTo(40_000), 5);
  t.same([...fired].sort((x, y) => x - y), [1000, 5000, 9000, 17_000, 30_000]);
  t.equal(w.wheel.size, 1, 'the far one still waits');
  w.advanceTo(100_000);
  t.equal(fired.at(-1), 100_000);
});

t.test('callbacks may schedule, cancel and reschedule during a pass', async (t) => {
  const w = manualWheel({ start: 0 });
  const fired: string[] = [];
  const later = w.wheel.schedule(2000, () => fired.push('later'));
  w.wheel.schedule(1000, () => {
    fired.push('first');
    w.wheel.cancel(later);
    // due in the past: runs in this same pass, not a turn later
    w.wheel.schedule(500, () => fired.push('chained'));
  });
  w.advanceTo(3000);
  t.same(fired, ['first', 'chained']);
  t.equal(w.wheel.size, 0);
});

t.test('scheduling in the past fires on the next advance', async (t) => {
  const w = manualWheel({ start: 50_000 });
  let n = 0;
  w.wheel.schedule(1000, () => n++);
  t.equal(w.advanceTo(50_000), 0, 'same tick: nothing yet');
  t.equal(w.advanceTo(51_000), 1);
  t.equal(n, 1);
});

t.test('a throwing callback does not stop the others', async (t) => {
  const errors: unknown[] = [];
  let now = 0;
  const wheel = new TimerWheel({ clock: { now: () => now }, autoStart: false, onError: (e) => errors.push(e) });
  let ran = false;
  wheel.schedule(1000, () => {
    throw new Error('boom');
  });
  wheel.schedule(1000, () => {
    ran = true;
  });
  now = 1000;
  t.equal(wheel.advance(), 2);
  t.ok(ran);
  t.equal(errors.length, 1);
});

t.test('many entries: every one fires exactly once', async (t) => {
  const w = manualWheel({ start: 0, slots: 64, resolutionMs: 100 });
  const counts = new Uint8Array(10_000);
  for (let i = 0; i < counts.length; i++) w.wheel.schedule((i * 37) % 20_000, () => counts[i]!++);
  for (let ms = 0; ms <= 21_000; ms += 250) w.advanceTo(ms);
  t.equal(counts.every((c) => c === 1), true);
  t.equal(w.wheel.size, 0);
});

t.test('real timer drives the wheel and never holds the process', async (t) => {
  const wheel = new TimerWheel({ resolutionMs: 10 });
  const started = Date.now();
  // the wheel's interval is unref'd: keep the loop alive ourselves while waiting
  const keepAlive = setTimeout(() => undefined, 5000);
  const firedAt = await new Promise<number>((resolve) => {
    wheel.schedule(started + 30, () => resolve(Date.now()));
  });
  clearTimeout(keepAlive);
  t.ok(firedAt >= started + 30, 'not early');
  t.equal(wheel.size, 0);
  wheel.close();
});
