/**
 * bench/cluster-stats.ts: a rate step summed over the nodes, the best clean rate, cluster / single
 * ratios, the failover kills' p50 and max, the orphans a survivor reached (cluster-watch.xml log
 * lines), and the verdict rows with their met flags.
 */
import t from 'tap';
import { bestCleanRate, combineSteps, commonStep, completedPerSecond, failoverRows, fanoutRatioRow, killSummary, orphansNotified, rateRatioRow, ratio } from '../../bench/cluster-stats.js';

const step = (offered: number, achieved: number, failures = 0, p99 = 10) => ({
  offeredPerSecond: offered,
  achievedPerSecond: achieved,
  calls: offered * 5,
  successful: offered * 5 - failures,
  failures,
  retransmissions: failures * 2,
  p99Ms: p99,
});

t.test('a rate step summed over the nodes: rates and counts added, the worst p99', async (t) => {
  const s = combineSteps([step(500, 490, 0, 12), step(500, 470, 3, 40)]);
  t.same(s, { offeredPerSecond: 1000, achievedPerSecond: 960, calls: 5000, successful: 4997, failures: 3, retransmissions: 6, p99Ms: 40 });
  t.ok(Number.isNaN(combineSteps([step(500, 490), step(500, Number.NaN)]).achievedPerSecond), 'a node without a rate makes the sum unknown');
  t.ok(Number.isNaN(combineSteps([]).achievedPerSecond), 'no nodes: no rate');
});

t.test('best clean rate: the highest failure-free step, 0 when none', async (t) => {
  t.equal(bestCleanRate([step(1000, 995), step(2000, 1980), step(3000, 2100, 40)]), 1980);
  t.equal(bestCleanRate([step(1000, 900, 1)]), 0);
  t.equal(bestCleanRate([step(1000, Number.NaN)]), 0);
});

t.test('completed per second and the highest step both shapes ran', async (t) => {
  t.equal(completedPerSecond({ achievedPerSecond: 1000, successful: 4000, calls: 5000 }), 800);
  t.equal(completedPerSecond({ achievedPerSecond: Number.NaN, successful: 0, calls: 5000 }), 0);
  const single = [step(500, 480, 10), step(1000, 900, 100)];
  // 3 nodes offer 3 x 167 = 501 for 500; the cluster stopped at 500, the single node went on to 1,000
  const cluster = [step(501, 501, 0)];
  t.same(commonStep(cluster, single), { offeredPerSecond: 500, cluster: 501, single: (480 * 2490) / 2500 });
  t.same(commonStep([step(500, 500), step(1000, 1000)], single), { offeredPerSecond: 1000, cluster: 1000, single: (900 * 4900) / 5000 });
  t.equal(commonStep([step(2000, 1900)], single), undefined);
});

t.test('ratio: cluster / single, NaN without a positive single figure', async (t) => {
  t.equal(ratio(1500, 1000), 1.5);
  t.ok(Number.isNaN(ratio(1500, 0)));
  t.ok(Number.isNaN(ratio(Number.NaN, 1000)));
});

t.test('kill summary: nearest-rank p50 and the max over the kills; an unreached round shows in the max', async (t) => {
  const ms = [5400, 5100, 6200, 5300, 5900, 5200, 5800, 5000, 5600, 5700];
  t.same(killSummary(ms), { kills: 10, p50Ms: 5400, maxMs: 6200 });
  t.same(killSummary([5000, Number.POSITIVE_INFINITY, 5200]), { kills: 3, p50Ms: 5200, maxMs: Number.POSITIVE_INFINITY });
  const none = killSummary([]);
  t.equal(none.kills, 0);
  t.ok(Number.isNaN(none.p50Ms) && Number.isNaN(none.maxMs));
});

t.test('orphans notified: the post-kill change from a survivor, in the same dialog with a higher CSeq', async (t) => {
  const a = '127.0.0.1:5060';
  const lines = [
    'subscribed 1-9@127.0.0.1',
    'subscribed 2-9@127.0.0.1',
    'subscribed 3-9@127.0.0.1',
    'subscribed 4-9@127.0.0.1',
    `notify 1-9@127.0.0.1 cseq=2 from=${a} tag=T1 busy=on-the-phone`,
    `notify 2-9@127.0.0.1 cseq=2 from=${a} tag=T2 busy=on-the-phone`,
    `notify 3-9@127.0.0.1 cseq=2 from=${a} tag=T3 busy=on-the-phone`,
    `notify 4-9@127.0.0.1 cseq=2 from=${a} tag=T4 busy=on-the-phone`,
    // 1: the change from b, same dialog, CSeq up: counted in both
    'notify 1-9@127.0.0.1 cseq=3 from=127.0.0.2:5070 tag=T1 busy=',
    // 2: a takeover NOTIFY still on the phone is not the change; then the change from c with a lower CSeq: reached, not in dialog
    'notify 2-9@127.0.0.1 cseq=3 from=127.0.0.2:5070 tag=T2 busy=on-the-phone',
    'notify 2-9@127.0.0.1 cseq=3 from=127.0.0.3:5080 tag=T2 busy=',
    // 3: the change from the dead node itself does not count
    `notify 3-9@127.0.0.1 cseq=3 from=${a} tag=T3 busy=`,
    // 4: the change from b in another dialog (From tag changed): reached, not in dialog; the after-final line is ignored
    'notify 4-9@127.0.0.1 cseq=5 from=127.0.0.2:5070 tag=OTHER busy=',
    'notify 4-9@127.0.0.1 cseq=6 from=127.0.0.2:5070 tag=OTHER busy= after-final',
    'refreshed 1-9@127.0.0.1 from=127.0.0.3:5080',
  ];
  t.same(orphansNotified(lines, a), { notified: 3, inDialog: 1 });
  t.same(orphansNotified(lines.slice(0, 8), a), { notified: 0, inDialog: 0 }, 'before the kill: none');
});

t.test('verdict rows: rate ratio, fan-out ratio, failover p50 / max', async (t) => {
  const r = rateRatioRow('2 nodes Redis', 1800, 2000, 0.8);
  t.same(r, { line: 'cluster rate, 2 nodes Redis / 1 node SQLite', target: '>= 0.80x single (best clean)', result: 'best clean 1,800/s vs 2,000/s = 0.90x', met: true });
  const withCommon = rateRatioRow('2 nodes Redis', 503, 0, 0.8, { offeredPerSecond: 500, cluster: 503, single: 382 });
  t.equal(withCommon.result, 'best clean 503/s vs 0/s = n/ax; completed at 500/s offered: 503 vs 382/s = 1.32x');
  t.equal(withCommon.met, false, 'judged on the clean rates only');
  t.equal(rateRatioRow('3 nodes Redis', 1500, 2000, 0.8).met, false, '0.75x is below 0.8x');
  t.equal(rateRatioRow('3 nodes Redis', 0, 0, 0.8).met, false, 'nothing clean on either side');

  const f = fanoutRatioRow('2 nodes Redis', 10_000, { ms: 420, notified: 10_000 }, { ms: 300, notified: 10_000 }, 1.5);
  t.same(f, { line: 'cluster fan-out 10,000, 2 nodes Redis / 1 node SQLite', target: '<= 1.50x single, all answered', result: '420 ms vs 300 ms = 1.40x', met: true });
  t.equal(fanoutRatioRow('3 nodes Redis', 10_000, { ms: 460, notified: 10_000 }, { ms: 300, notified: 10_000 }, 1.5).met, false, '1.53x is above 1.5x');
  const partial = fanoutRatioRow('3 nodes Redis', 10_000, { ms: 350, notified: 9_990 }, { ms: 300, notified: 10_000 }, 1.5);
  t.equal(partial.met, false, 'a watcher not answered fails it');
  t.match(partial.result, /answered 9,990 \/ 10,000 of 10,000/);

  const [p50, max] = failoverRows('3 nodes', { kills: 10, p50Ms: 5400, maxMs: 10_400 }, true, 10_000);
  t.same(p50, { line: 'failover p50 over 10 kills, 3 nodes', target: '<= 10 s', result: '5.40 s', met: true });
  t.same(max, { line: 'failover max over 10 kills, 3 nodes', target: '<= 10 s', result: '10.40 s', met: false });
  const unreached = failoverRows('3 nodes', { kills: 2, p50Ms: 5000, maxMs: Number.POSITIVE_INFINITY }, false, 10_000);
  t.same(unreached.map((x) => [x.result, x.met]), [['5.00 s (some orphans not reached)', false], ['not reached (some orphans not reached)', false]]);
});
