import t from 'tap';
import { Lifecycle, type LifecycleLog } from '../../src/util/lifecycle.js';

function recordingLog(): LifecycleLog & { lines: { level: string; obj: object; msg: string }[] } {
  const lines: { level: string; obj: object; msg: string }[] = [];
  return {
    lines,
    warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
    error: (obj, msg) => lines.push({ level: 'error', obj, msg }),
  };
}

t.test('close hooks run in the reverse order of registration, one after the other', async (t) => {
  const life = new Lifecycle({ log: recordingLog() });
  const order: string[] = [];
  life.onClose('a', () => void order.push('a'));
  life.onClose('b', async () => {
    await new Promise((r) => setTimeout(r, 20));
    order.push('b');
  });
  life.onClose('c', () => void order.push('c'));
  const outcomes = await life.close();
  t.same(order, ['c', 'b', 'a']);
  t.same(outcomes.map((o) => o.name), ['c', 'b', 'a']);
  t.ok(outcomes.every((o) => o.result === 'closed'));
});

t.test('a failing hook is logged and the others still run', async (t) => {
  const log = recordingLog();
  const life = new Lifecycle({ log });
  const order: string[] = [];
  life.onClose('first', () => void order.push('first'));
  life.onClose('broken', () => {
    throw new Error('boom');
  });
  life.onClose('rejecting', () => Promise.reject(new Error('no')));
  life.onClose('last', () => void order.push('last'));
  const outcomes = await life.close();
  t.same(order, ['last', 'first']);
  t.same(
    outcomes.map((o) => `${o.name}:${o.result}`),
    ['last:closed', 'rejecting:failed', 'broken:failed', 'first:closed'],
  );
  t.equal(log.lines.filter((l) => l.level === 'error').length, 2, 'each failure logged');
  t.same(log.lines.map((l) => (l.obj as { part: string }).part), ['rejecting', 'broken']);
});

t.test('a hook that overruns its time bound is left behind and the next runs', async (t) => {
  const log = recordingLog();
  const life = new Lifecycle({ log, hookTimeoutMs: 50 });
  const order: string[] = [];
  life.onClose('after', () => void order.push('after'));
  life.onClose('stuck', () => new Promise<void>(() => undefined));
  const started = Date.now();
  const outcomes = await life.close();
  t.same(order, ['after']);
  t.same(outcomes.map((o) => o.result), ['timed-out', 'closed']);
  t.ok(Date.now() - started < 2000, 'close did not wait for the stuck hook');
  t.equal(log.lines[0]?.level, 'warn');
});

t.test('close is idempotent and no hook can be added once it began', async (t) => {
  const life = new Lifecycle({ log: recordingLog() });
  let runs = 0;
  life.onClose('once', () => void runs++);
  const first = life.close();
  t.equal(life.closed, true);
  t.throws(() => life.onClose('late', () => undefined), /after close\(\) began/);
  const second = life.close();
  t.equal(first, second, 'the same outcome');
  await second;
  t.equal(runs, 1);
});

t.test('start() registers the close only when the start succeeded', async (t) => {
  const life = new Lifecycle({ log: recordingLog() });
  const closed: string[] = [];
  const part = await life.start('ok', () => ({ name: 'ok' }), (p) => void closed.push(p.name));
  t.equal(part.name, 'ok');
  await t.rejects(
    life.start('bad', () => Promise.reject(new Error('no port')), () => void closed.push('bad')),
    /no port/,
  );
  await life.close();
  t.same(closed, ['ok'], 'the part that did not start is not closed');
});
