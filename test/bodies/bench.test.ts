import t from 'tap';
import { benchBodies } from '../../bench/bodies.js';

t.test('benchBodies runs every codec and reports rates', async (t) => {
  const r = benchBodies(50);
  t.same(Object.keys(r).sort(), ['dialogBuildsPerSecond', 'pidfBuildsPerSecond', 'pidfParsesPerSecond']);
  for (const [k, v] of Object.entries(r)) t.ok(v > 0 && !Number.isNaN(v), `${k} is a positive rate`);
});
