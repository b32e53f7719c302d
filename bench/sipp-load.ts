/**
 * SIPp-driven load phases of the benchmark: subscription rate, many concurrent
 * subscriptions (memory) and NOTIFY fan-out. Traffic goes to 127.0.0.1 only;
 * every SIPp run is bounded in calls and in time.
 */
import type { GatewayProcess, GatewayUser } from '../test/helpers/gateway-process.js';
import { DEFAULT_DOMAIN } from '../test/helpers/gateway-process.js';
import { Worker } from 'node:worker_threads';
import { describeSipp, runSipp, startSipp, type SippResult, type SippRun } from '../test/helpers/sipp.js';
import { sendPaced } from './publish-sender.js';
import { startStorm } from './storm-sender.js';
import type { FreshPhoneResult, FreshPhoneTask } from './fresh-phone.js';

/** Large socket buffers so bursts of NOTIFYs are not dropped by the kernel (capped by net.core.rmem_max). */
const SIPP_BUFFER_BYTES = 4 * 1024 * 1024;

/** `count` directory users with extensions from `firstExtension` up. */
export function benchUsers(count: number, firstExtension = 2000): GatewayUser[] {
  const users: GatewayUser[] = [];
  for (let i = 0; i < count; i++) {
    users.push({
      id: `bench${i}`,
      displayName: `Bench User ${i}`,
      extension: String(firstExtension + i),
      sip: [`sip:bench${i}@${DEFAULT_DOMAIN}`],
    });
  }
  return users;
}

/** Nearest-rank percentile (p in 0..100) of unsorted values; NaN for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

/**
 * What several SIPp processes of one phase add to its result: the worst exit
 * code, and (when one failed, or `why` says the phase gave up) the failed
 * runs' details.
 */
function sippOutcome(results: readonly SippResult[], why?: string): { sippExitCode: number; detail?: string } {
  const failed = results.filter((r) => r.code !== 0).map(describeSipp);
  const out: { sippExitCode: number; detail?: string } = { sippExitCode: results.reduce((a, r) => Math.max(a, r.code), 0) };
  if (why !== undefined) out.detail = [why, ...failed].join('\n');
  else if (failed.length > 0) out.detail = failed.join('\n');
  return out;
}

function statNumber(result: SippResult, column: string): number {
  const value = Number(result.stats?.[column]);
  return Number.isFinite(value) ? value : 0;
}

/** SIPp injection lines: one row per user (extension;expires), used in order and wrapped. */
function injection(users: readonly GatewayUser[], expires: number): string[] {
  return ['SEQUENTIAL', ...users.map((u) => `${u.extension ?? u.id};${expires}`)];
}

export interface RateStepResult {
  offeredPerSecond: number;
  calls: number;
  /** Final responses per second between the first and the last one. */
  achievedPerSecond: number;
  successful: number;
  /** Failed calls plus calls that never completed. */
  failures: number;
  retransmissions: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  sippExitCode: number;
  detail?: string;
}

/**
 * Fresh SUBSCRIBE dialogs (each answering its initial NOTIFY) at `rate` per
 * second for `seconds`. Response time = SUBSCRIBE to its final response
 * (SIPp -trace_rtt, every call).
 */
export async function runRateStep(options: {
  gatewayPort: number;
  /** A cluster node's address (default 127.0.0.1). */
  gatewayHost?: string;
  rate: number;
  seconds: number;
  users: readonly GatewayUser[];
}): Promise<RateStepResult> {
  const calls = Math.round(options.rate * options.seconds);
  const result = await runSipp({
    scenario: 'bench-subscribe',
    gatewayPort: options.gatewayPort,
    ...(options.gatewayHost !== undefined ? { gatewayHost: options.gatewayHost } : {}),
    transport: 'u1',
    calls,
    rate: options.rate,
    limit: Math.max(1000, options.rate),
    timeoutSec: options.seconds * 3 + 15,
    injection: injection(options.users, 3600),
    traceRtt: true,
    traceStat: true,
    buffSize: SIPP_BUFFER_BYTES,
  });
  const rtt = result.rtt ?? [];
  const times = result.rttTimes ?? [];
  const first = times[0];
  const last = times[times.length - 1];
  const spanSeconds = first !== undefined && last !== undefined ? (last - first) / 1000 : 0;
  const successful = statNumber(result, 'SuccessfulCall(C)');
  const failed = statNumber(result, 'FailedCall(C)');
  const out: RateStepResult = {
    offeredPerSecond: options.rate,
    calls,
    achievedPerSecond: spanSeconds > 0 ? (rtt.length - 1) / spanSeconds : Number.NaN,
    successful,
    failures: failed + Math.max(0, calls - successful - failed),
    retransmissions: statNumber(result, 'Retransmissions(C)'),
    p50Ms: percentile(rtt, 50),
    p99Ms: percentile(rtt, 99),
    maxMs: rtt.length === 0 ? Number.NaN : rtt.reduce((a, b) => (b > a ? b : a), 0),
    sippExitCode: result.code,
  };
  if (result.code !== 0) out.detail = describeSipp(result);
  return out;
}

export interface MemoryResult {
  subscriptions: number;
  failures: number;
  seconds: number;
  rssBeforeBytes: number;
  rssAfterBytes: number;
  /** RSS once the SUBSCRIBE transactions have ended (Timer J, 32 s over UDP): the steady cost of the subscriptions. */
  rssSettledBytes: number;
  sippExitCode: number;
  detail?: string;
}

/**
 * `count` subscriptions with Expires 3600 spread over the users, created at
 * `rate` per second and left in place; then the gateway's RSS.
 */
export async function runMemory(options: {
  gateway: GatewayProcess;
  count: number;
  rate: number;
  users: readonly GatewayUser[];
  settleMs?: number;
}): Promise<MemoryResult> {
  const rssBeforeBytes = options.gateway.rssBytes();
  const started = Date.now();
  const result = await runSipp({
    scenario: 'bench-subscribe',
    gatewayPort: options.gateway.port,
    transport: 'u1',
    calls: options.count,
    rate: options.rate,
    limit: Math.max(1000, options.rate),
    timeoutSec: Math.ceil(options.count / options.rate) * 3 + 30,
    injection: injection(options.users, 3600),
    traceStat: true,
    buffSize: SIPP_BUFFER_BYTES,
  });
  const seconds = (Date.now() - started) / 1000;
  await new Promise((r) => setTimeout(r, options.settleMs ?? 3000));
  const successful = statNumber(result, 'SuccessfulCall(C)');
  const failed = statNumber(result, 'FailedCall(C)');
  const out: MemoryResult = {
    subscriptions: successful,
    failures: failed + Math.max(0, options.count - successful - failed),
    seconds,
    rssBeforeBytes,
    rssAfterBytes: options.gateway.rssBytes(),
    rssSettledBytes: 0,
    sippExitCode: result.code,
  };
  if (result.code !== 0) out.detail = describeSipp(result);
  await new Promise((r) => setTimeout(r, TIMER_J_MS + 3000));
  out.rssSettledBytes = options.gateway.rssBytes();
  return out;
}

/** RFC 3261 Timer J over UDP with the default T1: completed SUBSCRIBE transactions live this long. */
const TIMER_J_MS = 64 * 500;

export interface FanoutResult {
  watchers: number;
  /** SIPp processes the watchers were spread over (each one UDP socket). */
  instances: number;
  /** watchers subscribed when the PUBLISH went (all, unless the subscribe budget ran out) */
  subscribed: number;
  /** 503s followed while subscribing */
  subscribeRetries: number;
  subscribeSeconds: number;
  publishStatus: number;
  /** PUBLISH sent to its 200. */
  publishResponseMs: number;
  /** PUBLISH sent to the last watcher's 200 for its NOTIFY (SIPp log timestamps). */
  lastNotifyAnsweredMs: number;
  /** PUBLISH sent to the exit of the last SIPp process, once every watcher call completed. */
  sippExitMs: number;
  notified: number;
  /** watchers whose NOTIFYs came in order (watcherOrder); NaN with another scenario than bench-watch-many */
  inOrder: number;
  /** Worst SIPp exit code (0 when all succeeded). */
  sippExitCode: number;
  detail?: string;
}

const FANOUT_PIDF = (entity: string): string =>
  [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"',
    `    xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="${entity}">`,
    '  <tuple id="bench-phone"><status><basic>open</basic></status></tuple>',
    '  <dm:person id="bench-person"><rpid:activities><rpid:on-the-phone/></rpid:activities></dm:person>',
    '</presence>',
  ].join('\r\n');

/** Epoch ms at the end of a SIPp `[timestamp]` log line ("... <epoch seconds.micro>"). */
export function logLineEpochMs(line: string): number {
  const last = line.trim().split(/\s+/).pop();
  const seconds = Number(last);
  return Number.isFinite(seconds) ? seconds * 1000 : Number.NaN;
}

/** A watcher's view of its NOTIFYs, from bench-watch-many.xml's log lines. */
export interface WatcherOrder {
  /** watchers that logged the change ("notified") */
  notified: number;
  /** of those, watchers whose NOTIFY CSeqs never went down and whose change NOTIFY had the highest CSeq, above the initial one */
  inOrder: number;
  /** call-ids out of order (first few), with their CSeq sequence */
  outOfOrder: string[];
  /** epoch ms of each "notified" line */
  notifiedAt: number[];
}

/**
 * "In order per watcher" (issue 10): for each call-id, the initial NOTIFY's CSeq, every later
 * NOTIFY's CSeq in arrival order, and the change's CSeq. A retransmission repeats a CSeq (RFC 3261
 * section 17.1.2.2), so the sequence may stay level but never fall, and the change must be the
 * newest NOTIFY of its dialog (RFC 6665 section 4.1.2.4: a notifier's NOTIFYs carry increasing CSeq).
 */
export function watcherOrder(logs: readonly string[]): WatcherOrder {
  const seen = new Map<string, { seq: number[]; changed?: number; at?: number }>();
  const entry = (id: string): { seq: number[]; changed?: number; at?: number } => {
    let e = seen.get(id);
    if (e === undefined) seen.set(id, (e = { seq: [] }));
    return e;
  };
  for (const line of logs) {
    const [kind, id, cseq] = line.split(/\s+/);
    if (id === undefined || cseq === undefined) continue;
    if (kind === 'subscribed' || kind === 'notify') entry(id).seq.push(Number(cseq));
    else if (kind === 'notified') {
      const e = entry(id);
      e.changed = Number(cseq);
      e.at = logLineEpochMs(line);
    }
  }
  const out: WatcherOrder = { notified: 0, inOrder: 0, outOfOrder: [], notifiedAt: [] };
  for (const [id, e] of seen) {
    if (e.changed === undefined) continue;
    out.notified++;
    if (e.at !== undefined && Number.isFinite(e.at)) out.notifiedAt.push(e.at);
    const level = e.seq.every((n, k) => k === 0 || n >= e.seq[k - 1]!);
    const newest = e.seq.length > 0 && e.changed === Math.max(...e.seq) && e.changed > e.seq[0]!;
    if (level && newest) out.inOrder++;
    else if (out.outOfOrder.length < 5) out.outOfOrder.push(`${id}: CSeq ${e.seq.join(', ')} (change ${e.changed})`);
  }
  return out;
}

interface WatcherFleet {
  runs: SippRun[];
  /** watchers holding a subscription when the wait ended */
  subscribed: number;
  /** 503s followed during the subscribe step */
  retries: number;
  subscribeSeconds: number;
  /** set when not every watcher subscribed within the budget */
  shortfall?: string;
}

/**
 * Starts the watcher SIPp processes (bench-watch-many.xml, or `scenario` with -s for the
 * kamailio phase), paced at `rate` SUBSCRIBEs per second in all, each following 503 +
 * Retry-After, and waits until every watcher is subscribed or `budgetMs` has passed.
 */
async function startWatchers(options: {
  gatewayPort: number;
  shares: readonly (readonly string[])[];
  /** Share i subscribes at targets[i % targets.length] (cluster nodes); default 127.0.0.1:gatewayPort. */
  targets?: readonly { host: string; port: number }[];
  rate: number;
  budgetMs: number;
  /** a -s scenario (one watched user, `service`) instead of bench-watch-many's injection */
  serviceScenario?: { scenario: string; service: string };
}): Promise<WatcherFleet> {
  const total = options.shares.reduce((a, s) => a + s.length, 0);
  const perRate = Math.max(1, Math.round(options.rate / options.shares.length));
  const started = Date.now();
  const targets = options.targets ?? [{ host: '127.0.0.1', port: options.gatewayPort }];
  const runs = await Promise.all(
    options.shares.map((share, i) =>
      startSipp({
        scenario: options.serviceScenario?.scenario ?? 'bench-watch-many',
        gatewayHost: targets[i % targets.length]!.host,
        gatewayPort: targets[i % targets.length]!.port,
        transport: 'u1',
        ...(options.serviceScenario !== undefined ? { service: options.serviceScenario.service } : { injection: ['SEQUENTIAL', ...share] }),
        calls: share.length,
        rate: perRate,
        limit: share.length + 100,
        timeoutSec: Math.ceil(options.budgetMs / 1000) + 60,
        traceLogs: true,
        buffSize: SIPP_BUFFER_BYTES,
      }),
    ),
  );
  const count = (prefix: string): number => runs.reduce((a, r) => a + r.logLines().filter((l) => l.startsWith(prefix)).length, 0);
  let subscribed = 0;
  while (Date.now() - started < options.budgetMs) {
    subscribed = count('subscribed ');
    if (subscribed >= total) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  subscribed = count('subscribed ');
  const fleet: WatcherFleet = { runs, subscribed, retries: count('retry'), subscribeSeconds: (Date.now() - started) / 1000 };
  if (subscribed < total) fleet.shortfall = `only ${subscribed} of ${total} watchers subscribed within ${Math.round(options.budgetMs / 1000)} s; measured from there`;
  // the last 200s to initial NOTIFYs and the store's flush of the new subscriptions are still in
  // the gateway's queue: the change is timed from a settled gateway, not from the tail of the subscribe step
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  return fleet;
}

/** Pause between the last watcher subscribed and the first PUBLISH. */
const SETTLE_MS = 3000;

/** Grace after the last PUBLISH for the change NOTIFYs (targets are 0.4 s and 2 s). */
const CHANGE_GRACE_MS = 10_000;

/**
 * A watcher that never saw the change (its person's PUBLISH failed, or it was not yet subscribed
 * when the PUBLISH went) would wait until SIPp's timeout: the processes are killed after the
 * grace period instead, their logs still read.
 */
function endStragglers(runs: readonly SippRun[]): NodeJS.Timeout {
  return setTimeout(() => {
    for (const run of runs) run.kill();
  }, CHANGE_GRACE_MS);
}

/** `lines` dealt round robin into at most `parts` near-equal shares (empty shares dropped). */
function roundRobin(lines: readonly string[], parts: number): string[][] {
  const shares: string[][] = Array.from({ length: parts }, () => []);
  lines.forEach((l, i) => shares[i % parts]!.push(l));
  return shares.filter((s) => s.length > 0);
}

/**
 * `watchers` SIPp calls (spread over `instances` SIPp processes, default 4) subscribe to one
 * user, paced and following 503 + Retry-After; once all are subscribed (or the budget is
 * spent: `subscribed` says how many), one PUBLISH (on-the-phone) for that user is sent from
 * here and the time to the last answered change NOTIFY and to the last SIPp exit is measured.
 */
export async function runFanout(options: {
  /** Where the PUBLISH goes (127.0.0.1:gatewayPort) and, without `nodes`, every watcher. */
  gatewayPort: number;
  /**
   * Cluster nodes sharing the watchers: ceil(instances / nodes) SIPp processes on each, the
   * watchers dealt evenly over all of them; the PUBLISH still goes to 127.0.0.1:gatewayPort.
   */
  nodes?: readonly { host: string; port: number }[];
  watchers: number;
  extension: string;
  instances?: number;
  subscribeRate?: number;
  /** The watcher scenario (default bench-watch-many; the kamailio phase uses kam-bench-watch for both servers). */
  scenario?: string;
}): Promise<FanoutResult> {
  const nodeCount = Math.max(1, options.nodes?.length ?? 1);
  const asked = options.instances ?? 4;
  const instances = Math.max(1, Math.min(nodeCount * Math.ceil(asked / nodeCount), options.watchers));
  const rate = options.subscribeRate ?? 1000;
  const shares = roundRobin(Array.from({ length: options.watchers }, () => options.extension), instances);
  const fleet = await startWatchers({
    gatewayPort: options.gatewayPort,
    shares,
    ...(options.nodes !== undefined ? { targets: options.nodes } : {}),
    rate,
    budgetMs: Math.ceil(options.watchers / rate) * 3000 + 30_000,
    ...(options.scenario !== undefined ? { serviceScenario: { scenario: options.scenario, service: options.extension } } : {}),
  });
  const { runs } = fleet;
  const base = {
    watchers: options.watchers,
    instances,
    subscribed: fleet.subscribed,
    subscribeRetries: fleet.retries,
    subscribeSeconds: fleet.subscribeSeconds,
    publishStatus: 0,
    publishResponseMs: Number.NaN,
    lastNotifyAnsweredMs: Number.NaN,
    sippExitMs: Number.NaN,
    notified: 0,
    inOrder: 0,
  };

  const t0 = Date.now();
  const sent = await sendPaced({
    port: options.gatewayPort,
    requests: [{ user: options.extension, body: FANOUT_PIDF(`sip:${options.extension}@127.0.0.1`) }],
    spreadMs: 0,
  });
  const answer = sent.outcomes[0];
  if (answer === undefined || answer.status === 0) {
    for (const run of runs) run.kill();
    const results = await Promise.all(runs.map((r) => r.done));
    return { ...base, ...sippOutcome(results, ['PUBLISH got no final response', fleet.shortfall].filter((s) => s !== undefined).join('\n')) };
  }
  const exitTimes: number[] = [];
  const grace = endStragglers(runs);
  const results = await Promise.all(
    runs.map(async (run) => {
      const result = await run.done;
      exitTimes.push(Date.now());
      return result;
    }),
  );
  clearTimeout(grace);
  const logs = results.flatMap((r) => r.logs ?? []);
  const order = options.scenario === undefined ? watcherOrder(logs) : undefined;
  const notifiedAt = order?.notifiedAt ?? logs.filter((l) => l.startsWith('notified ')).map(logLineEpochMs);
  const lastNotify = notifiedAt.reduce((a, b) => (b > a ? b : a), Number.NEGATIVE_INFINITY);
  const why = [fleet.shortfall, ...(order !== undefined && order.outOfOrder.length > 0 ? [`out of order: ${order.outOfOrder.join('; ')}`] : [])].filter((s) => s !== undefined);
  return {
    ...base,
    publishStatus: answer.status,
    publishResponseMs: answer.answeredAt - answer.sentAt,
    lastNotifyAnsweredMs: notifiedAt.length === 0 ? Number.NaN : lastNotify - t0,
    sippExitMs: exitTimes.reduce((a, b) => Math.max(a, b), t0) - t0,
    notified: notifiedAt.length,
    inOrder: order?.inOrder ?? Number.NaN,
    ...sippOutcome(results, why.length > 0 ? why.join('\n') : undefined),
  };
}

export interface StormResult {
  offeredPerSecond: number;
  seconds: number;
  instances: number;
  calls: number;
  /** subscriptions created (answered 2xx) */
  created: number;
  /** answered 503 (shed) */
  shed: number;
  /** neither: no final response before Timer F (32 s) */
  unanswered: number;
  /** created per second of the offered period */
  createdPerSecond: number;
  retransmissions: number;
  /** a fresh SUBSCRIBE sent as soon as the offered period ended: the storm's last send to its final response */
  freshMs: number;
  /** the storm's first send to its last send (the offered period) */
  offeredSpanMs: number;
  /** first transmissions more than 50 ms after their slot */
  late: number;
  freshStatus: number;
  sippExitCode: number;
  detail?: string;
}

/** The storm's fresh phone (fresh-phone.ts) in a worker thread of its own; its result, or status 0 when the worker failed. */
function freshPhone(task: FreshPhoneTask): Promise<FreshPhoneResult> {
  return new Promise((resolve) => {
    const worker = new Worker(new URL('./fresh-phone.js', import.meta.url), { workerData: task });
    let result: FreshPhoneResult = { status: 0, sentAt: task.at, answeredAt: task.at };
    worker.once('message', (r: FreshPhoneResult) => (result = r));
    worker.once('error', () => undefined);
    worker.once('exit', () => resolve(result));
  });
}

/** The address the storm's fresh SUBSCRIBE comes from: not the storm's (127.0.0.1). */
const FRESH_PHONE_ADDRESS = '127.0.0.2';

/** Largest rate one SIPp process is asked to offer (the avalanche); more goes to further processes. */
const SIPP_MAX_RATE = 5000;

/**
 * Overload storm: fresh SUBSCRIBE dialogs offered at exactly `rate` per second for `seconds` by a
 * bench-side sender (storm-sender.ts: every request ends created, shed (503), another status or
 * unanswered at Timer F, counted per Call-ID); then, as soon as the last one is sent, a fresh SUBSCRIBE
 * from a phone of its own is timed from the storm's last send. The storm is one source (127.0.0.1),
 * which the ingress throttles first by design (fair across sources); a fresh phone is another address.
 */
export async function runStorm(options: {
  gatewayPort: number;
  rate: number;
  seconds: number;
  users: readonly GatewayUser[];
}): Promise<StormResult> {
  const storm = await startStorm({
    port: options.gatewayPort,
    rate: options.rate,
    seconds: options.seconds,
    users: options.users.map((u) => u.extension ?? u.id),
  });
  const fresh = freshPhone({ port: options.gatewayPort, user: options.users[0]?.extension ?? '2000', at: storm.endsAt, localAddress: FRESH_PHONE_ADDRESS });
  const lastSentAt = await storm.offered;
  const phone = await fresh;
  const freshStatus = phone.status;
  // from the later of the fresh send and the storm's last send (when the sender fell behind its slots)
  const freshMs = phone.status === 0 ? Number.NaN : phone.answeredAt - Math.max(phone.sentAt, lastSentAt);
  const run = await storm.done;
  const otherCount = Object.values(run.other).reduce((a, b) => a + b, 0);
  const why = [
    ...(run.late > 0 ? [`${run.late} first transmissions left > 50 ms after their slot (the sender could not keep pace)`] : []),
    ...(otherCount > 0 ? [`other final statuses: ${JSON.stringify(run.other)}`] : []),
    `answered p50 ${run.p50AnswerMs} ms, p99 ${run.p99AnswerMs} ms; last answer ${run.lastAnsweredAt - run.lastSentAt} ms after the last send; ${run.notifies} NOTIFYs answered`,
  ];
  return {
    offeredPerSecond: run.sent / options.seconds,
    seconds: options.seconds,
    instances: 1,
    calls: run.sent,
    created: run.created,
    shed: run.shed,
    unanswered: run.unanswered,
    createdPerSecond: run.created / options.seconds,
    retransmissions: run.retransmissions,
    freshMs,
    freshStatus,
    offeredSpanMs: run.lastSentAt - run.firstSentAt,
    late: run.late,
    sippExitCode: 0,
    detail: why.join('\n'),
  };
}

export interface AvalancheResult {
  /** SIPp's failed-call counters that are not zero (why a watcher gave up) */
  failures: Record<string, number>;
  watchers: number;
  offeredSeconds: number;
  subscribed: number;
  /** 503s followed (Retry-After waited out, SUBSCRIBE sent again) */
  retries: number;
  /** first SUBSCRIBE to the last watcher subscribed */
  allSubscribedMs: number;
  sippExitCode: number;
  detail?: string;
}

/**
 * Avalanche: `watchers` phones re-subscribing within `seconds` (SIPp,
 * bench-avalanche.xml), each following Retry-After on a 503 until it holds a
 * subscription.
 */
export async function runAvalanche(options: {
  gatewayPort: number;
  watchers: number;
  seconds: number;
  users: readonly GatewayUser[];
  budgetSec: number;
}): Promise<AvalancheResult> {
  const rate = Math.ceil(options.watchers / options.seconds);
  const instances = Math.max(1, Math.ceil(rate / SIPP_MAX_RATE));
  const perRate = Math.ceil(rate / instances);
  const shares = Array.from({ length: instances }, (_, i) =>
    Math.floor(options.watchers / instances) + (i < options.watchers % instances ? 1 : 0),
  );
  const started = Date.now();
  const runs = await Promise.all(
    shares.map((calls) =>
      startSipp({
        scenario: 'bench-avalanche',
        gatewayPort: options.gatewayPort,
        transport: 'u1',
        calls,
        rate: perRate,
        limit: calls,
        timeoutSec: options.budgetSec + 30,
        injection: injection(options.users, 3600),
        traceLogs: true,
        traceStat: true,
        buffSize: SIPP_BUFFER_BYTES,
      }),
    ),
  );
  const results = await Promise.all(runs.map((r) => r.done));
  let subscribed = 0;
  let retries = 0;
  let last = Number.NEGATIVE_INFINITY;
  for (const r of results) {
    for (const line of r.logs ?? []) {
      if (line.startsWith('subscribed ')) {
        subscribed++;
        const at = logLineEpochMs(line);
        if (Number.isFinite(at) && at > last) last = at;
      } else if (line.startsWith('retry')) retries++;
    }
  }
  const failures: Record<string, number> = {};
  for (const r of results) {
    for (const [k, v] of Object.entries(r.stats ?? {})) {
      if (k.startsWith('Failed') && k.endsWith('(C)') && Number(v) > 0) failures[k] = (failures[k] ?? 0) + Number(v);
    }
  }
  const out: AvalancheResult = {
    failures,
    watchers: options.watchers,
    offeredSeconds: options.seconds,
    subscribed,
    retries,
    allSubscribedMs: subscribed === 0 ? Number.NaN : last - started,
    ...sippOutcome(results),
  };
  return out;
}

export interface FanoutManyResult {
  people: number;
  watchersEach: number;
  watchers: number;
  /** watchers subscribed when the PUBLISHes started */
  subscribed: number;
  /** 503s followed while subscribing */
  subscribeRetries: number;
  subscribeSeconds: number;
  /** PUBLISHes answered 2xx */
  published: number;
  /** PUBLISHes answered 503 (shed) and with no final response */
  publishShed: number;
  publishUnanswered: number;
  /** first PUBLISH sent to the last one sent (first transmissions): the offered period */
  publishSpanMs: number;
  /** PUBLISHes that left more than 50 ms after their slot (the sender could not keep pace) */
  publishLate: number;
  /** source addresses the PUBLISHes came from */
  publishSources: number;
  /** watchers whose change NOTIFY (on-the-phone) was answered */
  notified: number;
  /** of those, in order (watcherOrder) */
  inOrder: number;
  /** first PUBLISH sent to the last change NOTIFY answered */
  lastNotifyAnsweredMs: number;
  sippExitCode: number;
  detail?: string;
}

/**
 * Source addresses of the 1,000-people phase's PUBLISHes. Each person's phone is one PBX line,
 * but a PBX sends all of them from one address, so the PUBLISHes come from one address by
 * default. The bench gateway runs in open access mode (no trunk, no digest user), in which
 * sip.rateLimit limits no source (src/trunks/access.ts exemptFromRateLimit), so one source is
 * not shed for its rate; pass more addresses (127.0.0.2...) to take one socket's queue out of it.
 */
export const PUBLISH_SOURCES = ['127.0.0.1'];

/**
 * `people` people with `watchersEach` watchers each (SIPp, bench-watch-many.xml, spread over
 * `instances` processes, paced and following 503 + Retry-After); once all hold their
 * subscription, every person changes once: one PUBLISH each, sent evenly over `spreadMs`
 * (bench/publish-sender.ts), and the time to the last answered change NOTIFY is measured.
 * Order per watcher is checked from the NOTIFYs' CSeqs (watcherOrder).
 */
export async function runFanoutMany(options: {
  gatewayPort: number;
  users: readonly GatewayUser[];
  watchersEach: number;
  instances?: number;
  spreadMs?: number;
  subscribeRate?: number;
  sources?: readonly string[];
}): Promise<FanoutManyResult> {
  const instances = Math.max(1, options.instances ?? 4);
  const people = options.users.length;
  const watchers = people * options.watchersEach;
  const lines: string[] = [];
  for (let w = 0; w < options.watchersEach; w++) for (const u of options.users) lines.push(u.extension ?? u.id);
  const rate = options.subscribeRate ?? 1000;
  const fleet = await startWatchers({
    gatewayPort: options.gatewayPort,
    shares: roundRobin(lines, instances),
    rate,
    budgetMs: Math.ceil(watchers / rate) * 3000 + 30_000,
  });
  const spreadMs = options.spreadMs ?? 1000;
  const t0 = Date.now();
  const sent = await sendPaced({
    port: options.gatewayPort,
    requests: options.users.map((u) => ({ user: u.extension ?? u.id, body: FANOUT_PIDF(`sip:${u.extension ?? u.id}@127.0.0.1`) })),
    spreadMs,
    sources: options.sources ?? PUBLISH_SOURCES,
  });
  const published = sent.outcomes.filter((o) => o.status >= 200 && o.status < 300).length;
  const refusals = new Map<string, number>();
  for (const o of sent.outcomes) if (o.status >= 300) refusals.set(`${o.status} ${o.reason}`, (refusals.get(`${o.status} ${o.reason}`) ?? 0) + 1);
  const grace = endStragglers(fleet.runs);
  const results = await Promise.all(fleet.runs.map((r) => r.done));
  clearTimeout(grace);
  const order = watcherOrder(results.flatMap((r) => r.logs ?? []));
  const last = order.notifiedAt.reduce((a, b) => (b > a ? b : a), Number.NEGATIVE_INFINITY);
  const why = [
    fleet.shortfall,
    ...(refusals.size > 0 ? [`PUBLISHes refused: ${[...refusals].map(([r, n]) => `${n} x ${r}`).join(', ')}`] : []),
    ...(order.outOfOrder.length > 0 ? [`out of order: ${order.outOfOrder.join('; ')}`] : []),
  ].filter((s) => s !== undefined);
  return {
    people,
    watchersEach: options.watchersEach,
    watchers,
    subscribed: fleet.subscribed,
    subscribeRetries: fleet.retries,
    subscribeSeconds: fleet.subscribeSeconds,
    published,
    publishShed: sent.outcomes.filter((o) => o.status === 503).length,
    publishUnanswered: sent.outcomes.filter((o) => o.status === 0).length,
    publishSpanMs: sent.offeredSpanMs,
    publishLate: sent.late,
    publishSources: sent.sources.length,
    notified: order.notified,
    inOrder: order.inOrder,
    lastNotifyAnsweredMs: order.notifiedAt.length === 0 ? Number.NaN : last - t0,
    ...sippOutcome(results, why.length > 0 ? why.join('\n') : undefined),
  };
}
