/**
 * Pure arithmetic of the bench's cluster phase (bench/cluster.ts): one rate step summed over the
 * nodes' SIPp runs, the best clean rate of a shape, cluster / single ratios, the failover kills'
 * p50 and max, which orphaned watchers a survivor reached (from cluster-watch.xml's log lines),
 * and the verdict rows. No I/O here, so test/bench/cluster-stats.test.ts checks it with numbers.
 */
import { percentile } from './sipp-load.js';

/** What the summing needs of one SIPp rate step (a RateStepResult). */
export interface NodeStep {
  offeredPerSecond: number;
  achievedPerSecond: number;
  calls: number;
  successful: number;
  failures: number;
  retransmissions: number;
  p99Ms: number;
}

/**
 * One total rate step of a shape: every node's SIPp at its share, at the same time. The fields of one
 * node's step, combined: counts and rates summed (the runs cover the same seconds), p99 the worst node's.
 */
export type ShapeStep = NodeStep;

export function combineSteps(perNode: readonly NodeStep[]): ShapeStep {
  const sum = (f: (s: NodeStep) => number): number => perNode.reduce((a, s) => a + f(s), 0);
  return {
    offeredPerSecond: sum((s) => s.offeredPerSecond),
    achievedPerSecond: perNode.length === 0 || perNode.some((s) => !Number.isFinite(s.achievedPerSecond)) ? Number.NaN : sum((s) => s.achievedPerSecond),
    calls: sum((s) => s.calls),
    successful: sum((s) => s.successful),
    failures: sum((s) => s.failures),
    retransmissions: sum((s) => s.retransmissions),
    p99Ms: perNode.reduce((a, s) => (Number.isFinite(s.p99Ms) && s.p99Ms > a ? s.p99Ms : a), perNode.length === 0 ? Number.NaN : 0),
  };
}

/** The highest achieved rate among the failure-free steps (as the rate phase judges); 0 when none was clean. */
export function bestCleanRate(steps: readonly Pick<ShapeStep, 'achievedPerSecond' | 'failures'>[]): number {
  return steps.reduce((a, s) => (s.failures === 0 && Number.isFinite(s.achievedPerSecond) && s.achievedPerSecond > a ? s.achievedPerSecond : a), 0);
}

/**
 * Subscriptions completed per second in a step (as the kamailio phase counts them): final responses
 * per second times the share of calls that succeeded; a figure also when a step had failures.
 */
export function completedPerSecond(s: Pick<ShapeStep, 'achievedPerSecond' | 'successful' | 'calls'>): number {
  return s.calls > 0 && Number.isFinite(s.achievedPerSecond) ? (s.achievedPerSecond * s.successful) / s.calls : 0;
}

/** The highest offered total both shapes ran, with each one's completed rate there (undefined when none in common). */
export function commonStep(
  cluster: readonly ShapeStep[],
  single: readonly ShapeStep[],
): { offeredPerSecond: number; cluster: number; single: number } | undefined {
  // offered totals differ by rounding (3 x 167 = 501 for 500): matched within 1 %
  for (const c of [...cluster].reverse()) {
    const s = single.find((x) => Math.abs(x.offeredPerSecond - c.offeredPerSecond) <= 0.01 * c.offeredPerSecond);
    if (s !== undefined) return { offeredPerSecond: s.offeredPerSecond, cluster: completedPerSecond(c), single: completedPerSecond(s) };
  }
  return undefined;
}

/** cluster / single; NaN when either side has no finite positive figure. */
export function ratio(cluster: number, single: number): number {
  if (!Number.isFinite(cluster) || !Number.isFinite(single) || single <= 0 || cluster < 0) return Number.NaN;
  return cluster / single;
}

export interface KillSummary {
  kills: number;
  /** nearest-rank median of the kill -> last orphaned watcher notified times */
  p50Ms: number;
  maxMs: number;
}

/** p50 and max of the failover times; a round that never completed counts as Infinity (so the max shows it). */
export function killSummary(ms: readonly number[]): KillSummary {
  if (ms.length === 0) return { kills: 0, p50Ms: Number.NaN, maxMs: Number.NaN };
  return { kills: ms.length, p50Ms: percentile(ms, 50), maxMs: ms.reduce((a, b) => (b > a ? b : a), Number.NEGATIVE_INFINITY) };
}

/** One "notify" line of cluster-watch.xml. */
interface WatchNotify {
  callId: string;
  cseq: number;
  from: string;
  tag: string;
  busy: boolean;
}

const NOTIFY_LINE = /^notify (\S+) cseq=(\d+) from=(\S+) tag=(\S+) busy=(\S*)/;

export interface OrphanCount {
  /** watchers (call-ids) that logged the post-kill change (not on-the-phone) from a node other than `killed` */
  notified: number;
  /** of those, the ones whose change came in the dialog they had (same From tag) with a CSeq above every earlier one */
  inDialog: number;
}

/**
 * Which of the watchers of one failover round got the post-kill change from a survivor: the change
 * is the first NOTIFY without on-the-phone (the pre-kill change was on-the-phone; the initial NOTIFY
 * is not logged), `killed` is the dead node's "host:port" as the Via names it.
 */
export function orphansNotified(lines: readonly string[], killed: string): OrphanCount {
  const byCall = new Map<string, WatchNotify[]>();
  for (const line of lines) {
    const m = NOTIFY_LINE.exec(line);
    if (m === null) continue;
    const n: WatchNotify = { callId: m[1]!, cseq: Number(m[2]), from: m[3]!, tag: m[4]!, busy: m[5] === 'on-the-phone' };
    const list = byCall.get(n.callId) ?? [];
    list.push(n);
    byCall.set(n.callId, list);
  }
  const out: OrphanCount = { notified: 0, inDialog: 0 };
  for (const list of byCall.values()) {
    const i = list.findIndex((n) => !n.busy && n.from !== killed);
    if (i < 0) continue;
    out.notified++;
    const change = list[i]!;
    const earlier = list.slice(0, i);
    if (earlier.every((n) => n.tag === change.tag && n.cseq < change.cseq)) out.inDialog++;
  }
  return out;
}

/** A verdict row of the bench table (run.ts prints them and collects the missed ones). */
export interface ClusterRow {
  line: string;
  target: string;
  result: string;
  met: boolean;
}

const fmt = (n: number, digits = 0): string =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a';

/**
 * Rate ratio row: met when the cluster's best clean total rate is at least `minRatio` x the single
 * node's; `common` (the highest step both ran, completed /s) is shown beside it, not judged.
 */
export function rateRatioRow(
  shape: string,
  cluster: number,
  single: number,
  minRatio: number,
  common?: { offeredPerSecond: number; cluster: number; single: number },
): ClusterRow {
  const r = ratio(cluster, single);
  const beside =
    common === undefined
      ? ''
      : `; completed at ${fmt(common.offeredPerSecond)}/s offered: ${fmt(common.cluster)} vs ${fmt(common.single)}/s = ${fmt(ratio(common.cluster, common.single), 2)}x`;
  return {
    line: `cluster rate, ${shape} / 1 node SQLite`,
    target: `>= ${fmt(minRatio, 2)}x single (best clean)`,
    result: `best clean ${fmt(cluster)}/s vs ${fmt(single)}/s = ${fmt(r, 2)}x${beside}`,
    met: cluster > 0 && Number.isFinite(r) && r >= minRatio,
  };
}

/** Fan-out ratio row: met when every watcher answered in both and the cluster took at most `maxRatio` x the single node's time. */
export function fanoutRatioRow(
  shape: string,
  watchers: number,
  cluster: { ms: number; notified: number },
  single: { ms: number; notified: number },
  maxRatio: number,
): ClusterRow {
  const r = ratio(cluster.ms, single.ms);
  const complete = cluster.notified === watchers && single.notified === watchers;
  return {
    line: `cluster fan-out ${fmt(watchers)}, ${shape} / 1 node SQLite`,
    target: `<= ${fmt(maxRatio, 2)}x single, all answered`,
    result:
      `${fmt(cluster.ms)} ms vs ${fmt(single.ms)} ms = ${fmt(r, 2)}x` +
      (complete ? '' : ` (answered ${fmt(cluster.notified)} / ${fmt(single.notified)} of ${fmt(watchers)})`),
    met: complete && Number.isFinite(r) && r <= maxRatio,
  };
}

/** Failover rows, p50 and max: met when within `boundMs` and every round reached every orphan in its dialog. */
export function failoverRows(label: string, summary: KillSummary, allReached: boolean, boundMs: number): ClusterRow[] {
  const s = (ms: number): string => (Number.isFinite(ms) ? `${fmt(ms / 1000, 2)} s` : 'not reached');
  const tail = allReached ? '' : ' (some orphans not reached)';
  return [
    {
      line: `failover p50 over ${summary.kills} kills, ${label}`,
      target: `<= ${fmt(boundMs / 1000)} s`,
      result: `${s(summary.p50Ms)}${tail}`,
      met: allReached && summary.kills > 0 && summary.p50Ms <= boundMs,
    },
    {
      line: `failover max over ${summary.kills} kills, ${label}`,
      target: `<= ${fmt(boundMs / 1000)} s`,
      result: `${s(summary.maxMs)}${tail}`,
      met: allReached && summary.kills > 0 && summary.maxMs <= boundMs,
    },
  ];
}
