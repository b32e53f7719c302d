import t from 'tap';
import { HEAP_GROWING_PERCENT, limitHeapGrowth } from '../../src/util/heap-growth.js';

t.test('the gateway sets its heap growth factor unless the operator gave one', async (t) => {
  t.equal(limitHeapGrowth([], ''), `--heap-growing-percent=${HEAP_GROWING_PERCENT}`, 'nothing given: the gateway default');
  t.equal(limitHeapGrowth(['--heap-growing-percent=80'], ''), undefined, 'on the command line: kept');
  t.equal(limitHeapGrowth([], '--max-old-space-size=512 --heap_growing_percent=50'), undefined, 'in NODE_OPTIONS (either spelling): kept');
  t.equal(limitHeapGrowth(['--max-old-space-size=512'], '--enable-source-maps'), `--heap-growing-percent=${HEAP_GROWING_PERCENT}`, 'other flags do not count');
});
