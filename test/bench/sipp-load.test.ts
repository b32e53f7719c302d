/**
 * bench/sipp-load.ts watcherOrder: "in order per watcher" (issue 10) from bench-watch-many.xml's
 * log lines: CSeqs never fall and the change is the newest NOTIFY of its dialog.
 */
import t from 'tap';
import { watcherOrder } from '../../bench/sipp-load.js';

const at = (s: number): string => `2026-12-02 01:00:00.000000 ${s}.250000`;

t.test('a retransmitted initial NOTIFY, then the change: in order', async (t) => {
  const o = watcherOrder([`subscribed 1-x@h 1 ${at(100)}`, `notify 1-x@h 1 ${at(101)}`, `notify 1-x@h 2 ${at(102)}`, `notified 1-x@h 2 ${at(102)}`]);
  t.equal(o.notified, 1);
  t.equal(o.inOrder, 1);
  t.same(o.notifiedAt, [102_250]);
});

t.test('a CSeq that falls, or a change not above the initial NOTIFY, is out of order', async (t) => {
  const o = watcherOrder([
    `subscribed a 1 ${at(1)}`, `notify a 3 ${at(2)}`, `notify a 2 ${at(3)}`, `notified a 2 ${at(3)}`,
    `subscribed b 4 ${at(1)}`, `notify b 4 ${at(2)}`, `notified b 4 ${at(2)}`,
    `subscribed c 1 ${at(1)}`, `notify c 2 ${at(2)}`, `notified c 2 ${at(2)}`,
    `subscribed d 1 ${at(1)}`,
  ]);
  t.equal(o.notified, 3, 'd never saw the change');
  t.equal(o.inOrder, 1, 'only c');
  t.equal(o.outOfOrder.length, 2);
  t.match(o.outOfOrder[0]!, /^a: CSeq 1, 3, 2/);
});
