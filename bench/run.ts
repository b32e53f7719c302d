/**
 * `npm run bench`: builds, then runs this as dist/bench/run.js. Prints tables:
 *   micro      parser / serializer and body codec throughput (in process)
 *   rate       fresh SUBSCRIBE dialogs per second at rising offered rates (SIPp)
 *   memory     RSS of the gateway holding many concurrent subscriptions (SIPp)
 *   fanout     one PUBLISH to N watchers of one user, then 1,000 people x 20 watchers changing within 1 s
 *              (bench/publish-sender.ts); time until all answered, order per watcher checked (SIPp, bench-watch-many.xml)
 *   memory-shapes  issue 10: 100,000 subscriptions on the default config, all on one person and 20 each on 5,000; restart + restore
 *   kamailio   Kamailio 5.6 (presence, SQLite WAL) through the same rate steps and single-user fan-out, ratio gateway / Kamailio
 *   storm      overload: 8 s at 7,000/s and at 10,000/s of fresh SUBSCRIBEs; every one answered (bench/storm-sender.ts)
 *   avalanche  20,000 watchers re-subscribing within 5 s of a start, following Retry-After (SIPp)
 *   teams-to-sip   Teams change in the Graph simulator -> NOTIFY at a SIP watcher, p50/p99 (bench/teams.ts)
 *   teams-rich     the same with basic and with rich notifications: Graph requests per Teams change
 *   sip-to-teams   SIP PUBLISH -> setPresence / clearPresence applied by the simulator, p50/p99
 *   graph-budget   Graph requests per hour for 5,000 mapped users on 8 service accounts
 *   teams-polling  polling only (no service account, no webhook), 5,000 people: Teams change -> NOTIFY p50/p99, budget used
 *   cluster    issue 12: 2 and 3 nodes on one Redis against 1 node with SQLite: subscription rate and 10,000-watcher
 *              fan-out as ratios; failover (SIGKILL of a node -> last orphaned watcher notified) p50 / max over 10 kills
 * Options: --only micro,rate,memory,fanout,storm,avalanche,cluster  --rates 1000,2000,...  --seconds 5
 *          --storm-rates 7000,10000  --storm-seconds 8  --clean-rate 5000 (reference when the rate phase did not run)
 *          --avalanche 20000 (watchers)  --avalanche-seconds 5  --fanout-people 1000 --fanout-each 20
 *          --subscriptions 100000  --memory-rate 3000 (new subscriptions/s while filling)
 *          --watchers 10000  --instances 4 (SIPp processes for the watchers)
 *          --teams-changes 1000  --teams-rate 40 (Teams changes/s)  --teams-users 8
 *          --polling-users 5000  --polling-watched 300 (watched, one change each)  --polling-rate 10 (changes/s)
 *          --sip-rate 20 (PUBLISHes/s)  --sip-users 50  --budget-users 5000  --budget-window 90 (s)
 *          --store (rate phase twice: in-memory store, then the SQLite store file; the SQLite figure must stay within 10 %)
 *          --kills 10  --failover-watchers 200 (cluster phase; its rate steps are 500,1000,2000,3000 unless --rates)
 *          --strict (exit 1 when a target is missed)
 * Traffic stays on 127.0.0.1; every phase is bounded and the gateways are stopped at the end.
 */
import { benchBodies } from './bodies.js';
import { gatewayCounts } from './gateway-metrics.js';
import { benchParser } from './parser.js';
import { benchUsers, PUBLISH_SOURCES, runAvalanche, runFanout, runFanoutMany, runMemory, runRateStep, runStorm, type RateStepResult } from './sipp-load.js';
import { freePort } from '../test/helpers/ports.js';
import { assertKamailioInstalled, BENCH_TUNING, startKamailio, type Kamailio } from '../test/helpers/kamailio.js';
import type { FanoutResult } from './sipp-load.js';
import { startGateway, type GatewayProcess, type GatewayUser } from '../test/helpers/gateway-process.js';
import { assertSippInstalled } from '../test/helpers/sipp.js';
import { runGraphBudget, runSipToTeams, runTeamsPolling, runTeamsToSip, type LatencyResult } from './teams.js';
import { clusterFailover, clusterFanouts, clusterRates, PRODUCTION_TIMINGS, type ClusterBenchOptions } from './cluster.js';
import { commonStep, completedPerSecond, failoverRows, fanoutRatioRow, rateRatioRow } from './cluster-stats.js';

type Phase = 'micro' | 'rate' | 'memory' | 'memory-shapes' | 'fanout' | 'storm' | 'avalanche' | 'kamailio' | 'teams-to-sip' | 'teams-rich' | 'sip-to-teams' | 'graph-budget' | 'teams-polling' | 'cluster';
const PHASES: readonly Phase[] = ['micro', 'rate', 'memory', 'memory-shapes', 'fanout', 'storm', 'avalanche', 'kamailio', 'teams-to-sip', 'teams-rich', 'sip-to-teams', 'graph-budget', 'teams-polling', 'cluster'];

const TARGETS = {
  /** issue 10, item 2: new subscriptions per second with zero failures and zero retransmissions */
  subscriptionsPerSecond: 5000,
  memoryBytes: 400 * 1024 * 1024,
  fanoutMs: 1000,
  teamsLatencyP99Ms: 50,
  graphRequestsPerHour: 180_000,
  pollingP50Ms: 2000,
  pollingP99Ms: 4000,
  pollingBudgetShare: 0.5,
};

interface Options {
  phases: Set<Phase>;
  rates: number[];
  seconds: number;
  subscriptions: number;
  memoryRate: number;
  watchers: number;
  instances: number;
  teamsChanges: number;
  teamsRate: number;
  teamsUsers: number;
  sipRate: number;
  sipUsers: number;
  budgetUsers: number;
  budgetWindow: number;
  pollingUsers: number;
  pollingWatched: number;
  pollingRate: number;
  strict: boolean;
  store: boolean;
  stormRates: number[];
  stormSeconds: number;
  cleanRate: number;
  avalanche: number;
  avalancheSeconds: number;
  fanoutPeople: number;
  fanoutEach: number;
  /** --rates was given (the cluster phase then uses it instead of its own shorter steps) */
  ratesGiven: boolean;
  kills: number;
  failoverWatchers: number;
}

function parseOptions(argv: readonly string[]): Options {
  const options: Options = {
    phases: new Set(PHASES),
    rates: [1000, 2000, 3000, 4000, 5000],
    seconds: 5,
    subscriptions: 100_000,
    memoryRate: 3000,
    watchers: 10_000,
    instances: 4,
    teamsChanges: 1000,
    teamsRate: 40,
    teamsUsers: 8,
    sipRate: 20,
    sipUsers: 50,
    budgetUsers: 5000,
    budgetWindow: 90,
    pollingUsers: 5000,
    pollingWatched: 300,
    pollingRate: 10,
    strict: false,
    store: false,
    stormRates: [7000, 10_000],
    stormSeconds: 8,
    cleanRate: 5000,
    avalanche: 20_000,
    avalancheSeconds: 5,
    fanoutPeople: 1000,
    fanoutEach: 20,
    ratesGiven: false,
    kills: 10,
    failoverWatchers: 200,
  };
  const positiveInts = (value: string | undefined, flag: string): number[] => {
    const list = (value ?? '').split(',').map((v) => Number(v.trim()));
    if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n <= 0)) {
      throw new Error(`${flag} needs positive integers, e.g. ${flag} 1000,2000`);
    }
    return list;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    switch (arg) {
      case '--only': {
        const names = (argv[++i] ?? '').split(',').map((s) => s.trim());
        const unknown = names.filter((n) => !(PHASES as readonly string[]).includes(n));
        if (unknown.length > 0) throw new Error(`--only: unknown phase ${unknown.join(', ')} (phases: ${PHASES.join(', ')})`);
        options.phases = new Set(names as Phase[]);
        break;
      }
      case '--rates':
        options.rates = positiveInts(argv[++i], '--rates');
        options.ratesGiven = true;
        break;
      case '--kills':
        options.kills = positiveInts(argv[++i], '--kills')[0]!;
        break;
      case '--failover-watchers':
        options.failoverWatchers = positiveInts(argv[++i], '--failover-watchers')[0]!;
        break;
      case '--seconds':
        options.seconds = positiveInts(argv[++i], '--seconds')[0]!;
        break;
      case '--subscriptions':
        options.subscriptions = positiveInts(argv[++i], '--subscriptions')[0]!;
        break;
      case '--memory-rate':
        options.memoryRate = positiveInts(argv[++i], '--memory-rate')[0]!;
        break;
      case '--watchers':
        options.watchers = positiveInts(argv[++i], '--watchers')[0]!;
        break;
      case '--instances':
        options.instances = positiveInts(argv[++i], '--instances')[0]!;
        break;
      case '--teams-changes':
        options.teamsChanges = positiveInts(argv[++i], '--teams-changes')[0]!;
        break;
      case '--teams-rate':
        options.teamsRate = positiveInts(argv[++i], '--teams-rate')[0]!;
        break;
      case '--teams-users':
        options.teamsUsers = positiveInts(argv[++i], '--teams-users')[0]!;
        break;
      case '--sip-rate':
        options.sipRate = positiveInts(argv[++i], '--sip-rate')[0]!;
        break;
      case '--sip-users':
        options.sipUsers = positiveInts(argv[++i], '--sip-users')[0]!;
        break;
      case '--budget-users':
        options.budgetUsers = positiveInts(argv[++i], '--budget-users')[0]!;
        break;
      case '--budget-window':
        options.budgetWindow = positiveInts(argv[++i], '--budget-window')[0]!;
        break;
      case '--polling-users':
        options.pollingUsers = positiveInts(argv[++i], '--polling-users')[0]!;
        break;
      case '--polling-watched':
        options.pollingWatched = positiveInts(argv[++i], '--polling-watched')[0]!;
        break;
      case '--polling-rate':
        options.pollingRate = positiveInts(argv[++i], '--polling-rate')[0]!;
        break;
      case '--strict':
        options.strict = true;
        break;
      case '--store':
        options.store = true;
        break;
      case '--storm-rates':
        options.stormRates = positiveInts(argv[++i], '--storm-rates');
        break;
      case '--storm-seconds':
        options.stormSeconds = positiveInts(argv[++i], '--storm-seconds')[0]!;
        break;
      case '--clean-rate':
        options.cleanRate = positiveInts(argv[++i], '--clean-rate')[0]!;
        break;
      case '--avalanche':
        options.avalanche = positiveInts(argv[++i], '--avalanche')[0]!;
        break;
      case '--fanout-people':
        options.fanoutPeople = positiveInts(argv[++i], '--fanout-people')[0]!;
        break;
      case '--fanout-each':
        options.fanoutEach = positiveInts(argv[++i], '--fanout-each')[0]!;
        break;
      case '--avalanche-seconds':
        options.avalancheSeconds = positiveInts(argv[++i], '--avalanche-seconds')[0]!;
        break;
      default:
        throw new Error(`unknown argument ${arg}`);
    }
  }
  return options;
}

const fmt = (n: number, digits = 0): string =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a';
const mb = (bytes: number): string => `${fmt(bytes / (1024 * 1024), 1)} MB`;

/** Built bench (dist/bench/run.js) runs the built gateway; under tsx, the sources. */
const gatewayCommand: 'dist' | 'tsx' = import.meta.url.endsWith('.js') ? 'dist' : 'tsx';

async function withGateway<T>(
  users: GatewayUser[],
  fn: (gw: GatewayProcess) => Promise<T>,
  overrides?: Record<string, unknown>,
): Promise<T> {
  const gw = await startGateway({
    users,
    logLevel: 'warn',
    command: gatewayCommand,
    readyTimeoutMs: 30_000,
    ...(overrides !== undefined ? { overrides } : {}),
  });
  try {
    return await fn(gw);
  } finally {
    await gw.stop();
    const problems = gw.errors.filter((l) => l.trim().length > 0);
    if (problems.length > 0) console.log(`gateway stderr:\n${problems.slice(-20).join('\n')}`);
  }
}

const missed: string[] = [];
const details: string[] = [];
/** Keeps the failure report readable: the head of SIPp's description (exit code, command, first errors). */
const addDetail = (phase: string, text: string): void => {
  details.push(`${phase}:\n${text.length > 3000 ? `${text.slice(0, 3000)}\n…` : text}`);
};

function micro(): void {
  console.log('\n== micro benchmarks (in process) ==');
  const parser = benchParser(200_000);
  const bodies = benchBodies(50_000);
  console.table([
    { operation: 'SIP parse', 'per second': fmt(parser.parsesPerSecond) },
    { operation: 'SIP serialize', 'per second': fmt(parser.serializesPerSecond) },
    { operation: 'PIDF build', 'per second': fmt(bodies.pidfBuildsPerSecond) },
    { operation: 'PIDF parse', 'per second': fmt(bodies.pidfParsesPerSecond) },
    { operation: 'dialog-info build', 'per second': fmt(bodies.dialogBuildsPerSecond) },
  ]);
}


async function rate(options: Options, users: GatewayUser[], variant?: { label: string; overrides: Record<string, unknown> }): Promise<RateStepResult[]> {
  console.log(
    `\n== subscription rate: fresh SUBSCRIBE dialogs + initial NOTIFY, ~${options.seconds} s per step, one gateway, UDP` +
      `${variant === undefined ? '' : `, ${variant.label}`} ==`,
  );
  const rows: RateStepResult[] = [];
  await withGateway(users, async (gw) => {
    for (const r of options.rates) {
      const step = await runRateStep({ gatewayPort: gw.port, rate: r, seconds: options.seconds, users });
      rows.push(step);
      if (step.detail !== undefined) addDetail(`rate ${r}/s`, step.detail);
    }
    console.log(`gateway RSS after ${rows.reduce((a, s) => a + s.successful, 0)} subscriptions: ${mb(gw.rssBytes())}`);
  }, variant?.overrides);
  console.table(
    rows.map((s) => ({
      'offered /s': fmt(s.offeredPerSecond),
      'achieved /s': fmt(s.achievedPerSecond),
      calls: fmt(s.calls),
      failures: fmt(s.failures),
      retransmissions: fmt(s.retransmissions),
      'p50 ms': fmt(s.p50Ms),
      'p99 ms': fmt(s.p99Ms),
      'max ms': fmt(s.maxMs),
    })),
  );
  // A step meets the target when it was offered at least the target rate, had no failures nor retransmissions and achieved 95 % of it.
  const atTarget = rows.filter((s) => s.offeredPerSecond >= TARGETS.subscriptionsPerSecond);
  const ok = atTarget.some((s) => s.failures === 0 && s.retransmissions === 0 && s.achievedPerSecond >= TARGETS.subscriptionsPerSecond * 0.95);
  const best = rows.filter((s) => s.failures === 0).reduce((a, s) => Math.max(a, s.achievedPerSecond), 0);
  if (best > 0) cleanRateMeasured = Math.max(cleanRateMeasured ?? 0, best);
  const status = atTarget.length === 0 ? 'not measured (no step offered that rate)' : ok ? 'met' : 'MISSED';
  console.log(
    `target: >= ${fmt(TARGETS.subscriptionsPerSecond)} new subscriptions/s with zero failures and zero retransmissions: ${status}` +
      ` (best failure-free step: ${fmt(best)}/s; response time is SUBSCRIBE to its final response, SIPp -trace_rtt, 1 ms resolution)`,
  );
  if (atTarget.length > 0) {
    const top = atTarget[atTarget.length - 1]!;
    verdict(
      'subscription rate, default config',
      `>= ${fmt(TARGETS.subscriptionsPerSecond)}/s, 0 failures, 0 retransmissions`,
      `best failure-free step ${fmt(best)}/s; at ${fmt(top.offeredPerSecond)}/s offered: ${fmt(top.achievedPerSecond)}/s, ${fmt(top.failures)} failed, ${fmt(top.retransmissions)} retransmitted`,
      ok,
    );
  }
  return rows;
}

/** The rate phase with the in-memory store, then with the SQLite file (batched writes): within 10 % at every step. */
async function rateWithStore(options: Options, users: GatewayUser[]): Promise<void> {
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = await mkdtemp(join(tmpdir(), 'pg-bench-store-'));
  try {
    const memory = await rate(options, users, { label: 'store in memory', overrides: { store: { path: ':memory:' } } });
    const sqlite = await rate(options, users, { label: 'SQLite store file', overrides: { store: { path: join(dir, 'gateway.db') } } });
    const rows = memory.map((m, i) => {
      const s = sqlite[i];
      const ratio = s === undefined ? Number.NaN : s.achievedPerSecond / m.achievedPerSecond;
      return { m, s, ratio };
    });
    console.table(
      rows.map(({ m, s, ratio }) => ({
        'offered /s': fmt(m.offeredPerSecond),
        'memory /s': fmt(m.achievedPerSecond),
        'SQLite /s': fmt(s?.achievedPerSecond ?? Number.NaN),
        'SQLite / memory': `${fmt(ratio * 100, 1)} %`,
        'memory p99 ms': fmt(m.p99Ms),
        'SQLite p99 ms': fmt(s?.p99Ms ?? Number.NaN),
        'SQLite failures': fmt(s?.failures ?? Number.NaN),
      })),
    );
    // Judged where the in-memory gateway keeps up (no failures, >= 95 % of the offered rate): beyond that both are
    // overloaded and the ratio is noise.
    const judged = rows.filter(({ m }) => m.failures === 0 && m.achievedPerSecond >= 0.95 * m.offeredPerSecond);
    const ok = judged.length > 0 && judged.every(({ m, s, ratio }) => s !== undefined && s.failures <= m.failures && ratio >= 0.9);
    console.log(
      `target: SQLite store within 10 % of the in-memory rate, no extra failures, at every step the in-memory gateway sustains ` +
        `(${judged.map(({ m }) => fmt(m.offeredPerSecond)).join(', ')}/s): ${ok ? 'met' : 'MISSED'}`,
    );
    if (!ok) missed.push('subscription rate with the SQLite store');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function memory(options: Options, users: GatewayUser[]): Promise<void> {
  console.log(
    `\n== ${fmt(options.subscriptions)} concurrent subscriptions (Expires 3600, ${users.length} users, ` +
      `created at ${fmt(options.memoryRate)}/s), fresh gateway ==`,
  );
  await withGateway(users, async (gw) => {
    await new Promise((r) => setTimeout(r, 1000));
    const result = await runMemory({ gateway: gw, count: options.subscriptions, rate: options.memoryRate, users });
    if (result.detail !== undefined) addDetail('memory', result.detail);
    console.table([
      {
        subscriptions: fmt(result.subscriptions),
        failures: fmt(result.failures),
        'load seconds': fmt(result.seconds, 1),
        'RSS before': mb(result.rssBeforeBytes),
        'RSS after': mb(result.rssAfterBytes),
        'RSS settled': mb(result.rssSettledBytes),
        'bytes / subscription': fmt((result.rssAfterBytes - result.rssBeforeBytes) / Math.max(1, result.subscriptions)),
      },
    ]);
    // Judged on the higher of the two readings: right after the load (transactions still held) and settled.
    const worst = Math.max(result.rssAfterBytes, result.rssSettledBytes);
    const ok = result.rssAfterBytes > 0 && worst < TARGETS.memoryBytes && result.failures === 0;
    console.log(
      `target: RSS < ${mb(TARGETS.memoryBytes)} holding ${fmt(options.subscriptions)} subscriptions: ${ok ? 'met' : 'MISSED'}` +
        ' (VmRSS from /proc/<pid>/status, 3 s after the last subscription and again 35 s later; the higher counts)',
    );
    if (!ok) missed.push('memory');
  });
}

async function fanout(options: Options, users: GatewayUser[]): Promise<void> {
  console.log(
    `\n== fan-out: ${fmt(options.watchers)} watchers of one user (${options.instances} SIPp processes, UDP), ` +
      'one PUBLISH (on-the-phone) sent from the bench, fresh gateway ==',
  );
  const extension = users[0]?.extension ?? '2000';
  await withGateway(users, async (gw) => {
    const result = await runFanout({
      gatewayPort: gw.port,
      watchers: options.watchers,
      extension,
      instances: options.instances,
    });
    if (result.detail !== undefined) addDetail('fan-out', result.detail);
    console.table([
      {
        watchers: fmt(result.watchers),
        'SIPp processes': String(result.instances),
        subscribed: fmt(result.subscribed),
        '503s followed': fmt(result.subscribeRetries),
        'subscribed in s': fmt(result.subscribeSeconds, 1),
        'PUBLISH status': String(result.publishStatus),
        'PUBLISH -> 200 ms': fmt(result.publishResponseMs),
        'NOTIFYs answered': fmt(result.notified),
        'in order': fmt(result.inOrder),
        'PUBLISH -> last NOTIFY answered ms': fmt(result.lastNotifyAnsweredMs),
        'PUBLISH -> last SIPp exit ms': fmt(result.sippExitMs),
      },
    ]);
    const ok = result.notified === options.watchers && result.sippExitCode === 0 && result.sippExitMs < TARGETS.fanoutMs;
    console.log(
      `target: all ${fmt(options.watchers)} NOTIFYs answered < ${fmt(TARGETS.fanoutMs)} ms after the PUBLISH, measured to SIPp's exit: ` +
        `${ok ? 'met' : 'MISSED'} ("last NOTIFY answered" is from SIPp's log timestamps, without its exit)`,
    );
    if (!ok) missed.push('fan-out');
    printRows([
      verdict(
        `fan-out 1 change -> ${fmt(options.watchers)} watchers`,
        '<= 400 ms to the last NOTIFY answered, all subscribed, in order',
        `${fmt(result.lastNotifyAnsweredMs)} ms (${fmt(result.notified)} answered, ${fmt(result.inOrder)} in order, ${fmt(result.subscribed)} subscribed)`,
        result.subscribed === options.watchers && result.notified === options.watchers && result.inOrder === options.watchers && result.lastNotifyAnsweredMs <= 400,
      ),
    ]);
  });
  const people = benchUsers(options.fanoutPeople);
  console.log(
    `\n== fan-out: ${fmt(options.fanoutPeople)} people x ${options.fanoutEach} watchers (${options.instances} SIPp processes), ` +
      'each person changes once within 1 s (PUBLISHes paced evenly over 1 s by bench/publish-sender.ts from ' +
      `${PUBLISH_SOURCES.join(', ')}: one source, as a PBX is; the bench gateway is in open access mode, where sip.rateLimit limits no source), fresh gateway ==`,
  );
  await withGateway(people, async (gw) => {
    const m = await runFanoutMany({ gatewayPort: gw.port, users: people, watchersEach: options.fanoutEach, instances: options.instances });
    if (m.detail !== undefined) addDetail('fan-out 1,000 x 20', m.detail);
    console.table([
      {
        watchers: fmt(m.watchers),
        subscribed: fmt(m.subscribed),
        '503s followed': fmt(m.subscribeRetries),
        'subscribed in s': fmt(m.subscribeSeconds, 1),
        'PUBLISHes 2xx': fmt(m.published),
        'PUBLISH 503 / none': `${fmt(m.publishShed)} / ${fmt(m.publishUnanswered)}`,
        'PUBLISHes sent over ms': fmt(m.publishSpanMs),
        'PUBLISHes late > 50 ms': fmt(m.publishLate),
        'change NOTIFYs answered': fmt(m.notified),
        'in order': fmt(m.inOrder),
        'first PUBLISH -> last NOTIFY answered ms': fmt(m.lastNotifyAnsweredMs),
      },
    ]);
    printRows([
      verdict(
        `fan-out ${fmt(options.fanoutPeople)} people x ${options.fanoutEach} watchers`,
        `all ${fmt(m.watchers)} answered <= 2 s, in order`,
        `${fmt(m.notified)} answered (${fmt(m.inOrder)} in order), last after ${fmt(m.lastNotifyAnsweredMs)} ms; ` +
          `${fmt(m.published)} of ${fmt(m.people)} PUBLISHes 2xx, offered over ${fmt(m.publishSpanMs)} ms`,
        m.subscribed === m.watchers && m.published === m.people && m.publishSpanMs <= 1000 &&
          m.notified === m.watchers && m.inOrder === m.watchers && m.lastNotifyAnsweredMs <= 2000 && m.sippExitCode === 0,
      ),
    ]);
  });
}

function latencyVerdict(phase: string, r: LatencyResult): boolean {
  const ok = r.missing === 0 && r.measured === r.changes && r.p99Ms < TARGETS.teamsLatencyP99Ms;
  if (!ok) missed.push(phase);
  if (r.gatewayErrors.length > 0) console.log(`gateway warnings/errors (last):\n  ${r.gatewayErrors.join('\n  ')}`);
  return ok;
}

async function teamsToSip(options: Options): Promise<void> {
  console.log(
    `\n== Teams -> SIP: ${fmt(options.teamsChanges)} Teams changes (call / end-call alternating over ${options.teamsUsers} users, ` +
      `sequential, <= ${options.teamsRate}/s) -> NOTIFY at a raw UDP watcher; gateway process, Graph simulator in the bench ==`,
  );
  const r = await runTeamsToSip({ changes: options.teamsChanges, ratePerSecond: options.teamsRate, userCount: options.teamsUsers, gatewayCommand });
  console.table([
    {
      changes: fmt(r.changes),
      measured: fmt(r.measured),
      missing: fmt(r.missing),
      'POST -> NOTIFY p50 ms': fmt(r.p50Ms, 2),
      'p99 ms': fmt(r.p99Ms, 2),
      'max ms': fmt(r.maxMs, 2),
      'sim delivery p50/p99 ms (excluded)': `${fmt(r.deliveryP50Ms ?? Number.NaN, 2)} / ${fmt(r.deliveryP99Ms ?? Number.NaN, 2)}`,
      'control -> NOTIFY p99 ms': fmt(r.totalP99Ms ?? Number.NaN, 2),
      'Graph requests': fmt(r.graphRequests),
      '429s': fmt(r.throttled),
    },
  ]);
  const ok = latencyVerdict('teams-to-sip', r);
  console.log(
    `target: p99 < ${TARGETS.teamsLatencyP99Ms} ms from the simulator's change-notification POST to the NOTIFY at the watcher: ${ok ? 'met' : 'MISSED'}\n` +
      "note: the clock starts when the simulator's notifier hands the POST to its HTTP client (its webhook client is wrapped in the bench, observe only),\n" +
      '      so Graph delivery delay is excluded; the interval includes TLS to the webhook, the gateway\'s getPresencesByUserId look-up back to the\n' +
      '      simulator, mapping and the NOTIFY; it stops at the UDP message event of the bench\'s own watcher (one socket, one clock; SIPp is not used\n' +
      `      because its log timestamps cannot be tied to the control call). Gateway start until all users covered: ${fmt(r.startupMs / 1000, 1)} s.`,
  );
}

async function teamsRich(options: Options): Promise<void> {
  console.log(
    `\n== Teams -> SIP, basic vs rich notifications: ${fmt(options.teamsChanges)} Teams changes each (call / end-call over ${options.teamsUsers} users, ` +
      `sequential, <= ${options.teamsRate}/s); Graph requests the simulator counted during the run, per change ==`,
  );
  const rows = [];
  for (const rich of [false, true]) {
    const r = await runTeamsToSip({ changes: options.teamsChanges, ratePerSecond: options.teamsRate, userCount: options.teamsUsers, gatewayCommand, rich });
    rows.push({
      notifications: rich ? 'rich (includeResourceData)' : 'basic',
      changes: fmt(r.changes),
      measured: fmt(r.measured),
      'Graph requests': fmt(r.graphRequests),
      'per change': fmt(r.graphRequests / Math.max(1, r.measured), 2),
      'getPresencesByUserId': fmt(r.lookups ?? Number.NaN),
      'POST -> NOTIFY p50 ms': fmt(r.p50Ms, 2),
      'p99 ms': fmt(r.p99Ms, 2),
      '429s': fmt(r.throttled),
    });
    // this phase is about requests per change: every change must arrive; latency is shown, its target belongs to teams-to-sip
    if (r.missing > 0 || r.measured !== r.changes) missed.push(rich ? 'teams-rich (rich)' : 'teams-rich (basic)');
    if (r.gatewayErrors.length > 0) console.log(`gateway warnings/errors (last):\n  ${r.gatewayErrors.join('\n  ')}`);
  }
  console.table(rows);
  console.log(
    'note: basic notifications name the user only, so each change costs a getPresencesByUserId read-back (several changes in one\n' +
      '      turn share one); rich ones carry the presence encrypted to the gateway\'s certificate: decrypted and checked, no Graph request.\n' +
      '      The rich p50/p99 include the validation-token check (cached after the first batch) and the RSA-OAEP unwrap per item.',
  );
}

async function sipToTeams(options: Options): Promise<void> {
  console.log(
    `\n== SIP -> Teams: ${fmt(options.teamsChanges)} PUBLISHes (on-the-phone on / off alternating over ${options.sipUsers} users, ` +
      `sequential, <= ${options.sipRate}/s) -> setPresence / clearPresence applied by the simulator ==`,
  );
  const r = await runSipToTeams({ changes: options.teamsChanges, ratePerSecond: options.sipRate, userCount: options.sipUsers, gatewayCommand });
  console.table([
    {
      changes: fmt(r.changes),
      measured: fmt(r.measured),
      missing: fmt(r.missing),
      'PUBLISH -> Graph p50 ms': fmt(r.p50Ms, 2),
      'p99 ms': fmt(r.p99Ms, 2),
      'max ms': fmt(r.maxMs, 2),
      'PUBLISH -> 200 p50 ms': fmt(r.publishP50Ms ?? Number.NaN, 2),
      'Graph requests': fmt(r.graphRequests),
      '429s': fmt(r.throttled),
    },
  ]);
  const ok = latencyVerdict('sip-to-teams', r);
  console.log(
    `target: p99 < ${TARGETS.teamsLatencyP99Ms} ms from the PUBLISH datagram to the simulator applying the gateway's session write: ${ok ? 'met' : 'MISSED'}\n` +
      "note: the clock stops in the simulator's presence engine (wrapped, observe only) when setPresence (Busy/InACall) or clearPresence\n" +
      '      is applied, after TLS, HTTP parsing, the token check and the throttle; sequential changes, so the writer never coalesces; each change\n' +
      `      also costs an echo read-back (notification + look-up), hence the pacing under the 1,500 / 30 s budget. Start-up: ${fmt(r.startupMs / 1000, 1)} s.`,
  );
}

async function graphBudget(options: Options): Promise<void> {
  console.log(
    `\n== Graph budget: ${fmt(options.budgetUsers)} mapped users, ${Math.ceil(options.budgetUsers / 650)} service accounts, ` +
      `~${options.budgetWindow} s measured window after start-up ==`,
  );
  const r = await runGraphBudget({ users: options.budgetUsers, windowSec: options.budgetWindow, gatewayCommand });
  console.log(`start-up burst (measured, Graph requests from process start until every user was covered, ${fmt(r.startupMs / 1000, 1)} s): ${fmt(r.startupTotal)}`);
  console.table(Object.entries(r.startup).map(([route, n]) => ({ route, requests: fmt(n) })));
  console.log(`measured window (${fmt(r.windowSec, 0)} s, every route the simulator counted, Entra token requests included):`);
  console.table(Object.entries(r.window).map(([route, n]) => ({ route, requests: fmt(n) })));
  console.table(
    r.lines.map((l) => ({
      item: l.item,
      'requests / event (measured)': fmt(l.perEvent, 2),
      'events / hour (computed)': fmt(l.eventsPerHour, 2),
      'requests / hour': fmt(l.perEvent * l.eventsPerHour),
    })),
  );
  for (const l of r.lines) console.log(`  ${l.item}: ${l.basis}`);
  const share = r.requestsPerHour / TARGETS.graphRequestsPerHour;
  const ok = share < 1;
  console.log(
    `steady state: ${fmt(r.requestsPerHour)} Graph requests / hour = ${fmt(share * 100, 1)} % of the budget 1,500 / 30 s (${fmt(TARGETS.graphRequestsPerHour)} / hour): ${ok ? 'met' : 'MISSED'}\n` +
      'note: per-event costs are measured on the simulator\'s request counters; events per hour come from the gateway\'s default schedule\n' +
      '      (renew at 2/3 of 58 min, full read every 600 s, delta sync every 15 min) and the stated call / Teams-change assumptions.\n' +
      '      Notification look-ups coalesce under load (one request for up to 650 users), so the look-up lines are an upper bound.\n' +
      '      The budget is averaged per hour here; a burst (start-up, mass change) is paced by the gateway\'s own 1,500 / 30 s budget.',
  );
  if (r.gatewayErrors.length > 0) console.log(`gateway warnings/errors (last):\n  ${r.gatewayErrors.join('\n  ')}`);
  if (!ok) missed.push('graph-budget');
}

async function teamsPolling(options: Options): Promise<void> {
  console.log(
    `\n== Teams polling only: ${fmt(options.pollingUsers)} people, no service account, no webhook (app permissions only), ` +
      `${fmt(options.pollingWatched)} watched, one Teams call each at ${options.pollingRate}/s -> NOTIFY; gateway defaults (poll.mode budget, share 0.4) ==`,
  );
  const r = await runTeamsPolling({ users: options.pollingUsers, watched: options.pollingWatched, changes: options.pollingWatched, ratePerSecond: options.pollingRate, gatewayCommand });
  const complete = r.missing === 0 && r.measured === r.changes;
  const rows = [
    { measure: 'Teams change -> NOTIFY p50', target: `<= ${fmt(TARGETS.pollingP50Ms)} ms`, result: `${fmt(r.p50Ms)} ms`, met: complete && r.p50Ms <= TARGETS.pollingP50Ms },
    { measure: 'Teams change -> NOTIFY p99', target: `<= ${fmt(TARGETS.pollingP99Ms)} ms`, result: `${fmt(r.p99Ms)} ms (max ${fmt(r.maxMs)})`, met: complete && r.p99Ms <= TARGETS.pollingP99Ms },
    {
      measure: 'budget used (of 1,500 / 30 s)',
      target: `<= ${fmt(TARGETS.pollingBudgetShare * 100)} %`,
      result: `${fmt(r.budgetShare * 100, 1)} % (${fmt(r.graphRequests)} requests in ${fmt(r.windowSec, 1)} s)`,
      met: r.budgetShare <= TARGETS.pollingBudgetShare,
    },
  ];
  console.table(rows.map((x) => ({ ...x, met: x.met ? 'met' : 'MISSED' })));
  console.log(
    `changes: ${fmt(r.changes)}, measured: ${fmt(r.measured)}, missing: ${fmt(r.missing)}, 429s: ${fmt(r.throttled)}; start-up until the first full read: ${fmt(r.startupMs / 1000, 1)} s\n` +
      "note: the clock starts at the simulator's control call that changes the person's Teams presence and stops at the UDP message event of the\n" +
      "      bench's watcher for the NOTIFY carrying on-the-phone; the budget share counts every Graph (/v1.0) request the simulator answered in the window.",
  );
  if (r.gatewayErrors.length > 0) console.log(`gateway warnings/errors (last):\n  ${r.gatewayErrors.join('\n  ')}`);
  if (rows.some((x) => !x.met)) missed.push('teams-polling');
}

/** One verdict row: what was asked, what was measured, met or not (missed rows also go to the summary). */
interface TargetRow {
  line: string;
  target: string;
  result: string;
  met: boolean;
}
const targetRows: TargetRow[] = [];
function verdict(line: string, target: string, result: string, met: boolean): TargetRow {
  const row = { line, target, result, met };
  targetRows.push(row);
  if (!met) missed.push(line);
  return row;
}
function printRows(rows: TargetRow[]): void {
  console.table(rows.map((r) => ({ line: r.line, target: r.target, result: r.result, met: r.met ? 'met' : 'MISSED' })));
}

/**
 * The default configuration (config/demo.yaml): SQLite store, the Graph side with the built-in
 * simulator seeded with the users; on free ports of its own.
 */
async function withDemoGateway<T>(users: GatewayUser[], fn: (gw: GatewayProcess, storePath: string) => Promise<T>, storeDir?: string): Promise<T> {
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = storeDir ?? (await mkdtemp(join(tmpdir(), 'pg-bench-demo-')));
  const storePath = join(dir, 'gateway.db');
  try {
    return await withGateway(users, (gw) => fn(gw, storePath), {
      store: { path: storePath },
      graphSimulator: { port: await freePort(), dir: join(dir, 'sim') },
      http: { port: await freePort() },
    });
  } finally {
    if (storeDir === undefined) await rm(dir, { recursive: true, force: true });
  }
}

/** The clean rate the storm is judged against: the rate phase's best failure-free step in this run, else --clean-rate. */
let cleanRateMeasured: number | undefined;

async function storm(options: Options, users: GatewayUser[]): Promise<void> {
  const clean = cleanRateMeasured ?? options.cleanRate;
  console.log(
    `\n== overload storm: fresh SUBSCRIBEs at ${options.stormRates.map((r) => fmt(r)).join(' and ')}/s for ${options.stormSeconds} s each, ` +
      `default config (SQLite store, Graph simulator), fresh gateway per step; clean rate ${fmt(clean)}/s ` +
      `(${cleanRateMeasured !== undefined ? 'measured by the rate phase' : '--clean-rate, the rate phase did not run'}) ==`,
  );
  const rows: TargetRow[] = [];
  for (const r of options.stormRates) {
    await withDemoGateway(users, async (gw) => {
      const s = await runStorm({ gatewayPort: gw.port, rate: r, seconds: options.stormSeconds, users });
      if (s.detail !== undefined) addDetail(`storm ${r}/s`, s.detail);
      console.table([
        {
          'offered /s': fmt(s.offeredPerSecond),
          'offered s': fmt(s.offeredSpanMs / 1000, 2),
          calls: fmt(s.calls),
          created: fmt(s.created),
          'shed (503)': fmt(s.shed),
          unanswered: fmt(s.unanswered),
          'created /s': fmt(s.createdPerSecond),
          retransmissions: fmt(s.retransmissions),
          'fresh SUBSCRIBE ms': `${fmt(s.freshMs, 1)} (${s.freshStatus})`,
        },
      ]);
      const unansweredShare = s.unanswered / Math.max(1, s.calls);
      rows.push(verdict(`storm ${fmt(r)}/s: unanswered`, '<= 0.1 %', `${fmt(unansweredShare * 100, 2)} % (${fmt(s.unanswered)})`, unansweredShare <= 0.001));
      rows.push(
        verdict(`storm ${fmt(r)}/s: created`, `>= 80 % of ${fmt(clean)}/s`, `${fmt(s.createdPerSecond)}/s (${fmt((s.createdPerSecond / clean) * 100, 1)} %)`, s.createdPerSecond >= 0.8 * clean),
      );
      rows.push(
        verdict(`storm ${fmt(r)}/s: fresh SUBSCRIBE after`, '<= 100 ms', `${fmt(s.freshMs, 1)} ms (status ${s.freshStatus})`, s.freshMs <= 100 && s.freshStatus >= 200 && s.freshStatus < 300),
      );
    });
  }
  printRows(rows);
}

async function avalanche(options: Options, users: GatewayUser[]): Promise<void> {
  console.log(
    `\n== avalanche: ${fmt(options.avalanche)} watchers re-subscribing within ${options.avalancheSeconds} s of a gateway start ` +
      '(default config), each following Retry-After on a 503 ==',
  );
  const budgetSec = 60;
  await withDemoGateway(users, async (gw) => {
    const a = await runAvalanche({ gatewayPort: gw.port, watchers: options.avalanche, seconds: options.avalancheSeconds, users, budgetSec });
    if (a.detail !== undefined) addDetail('avalanche', a.detail);
    console.table([
      {
        watchers: fmt(a.watchers),
        subscribed: fmt(a.subscribed),
        '503s followed': fmt(a.retries),
        'all subscribed after s': fmt(a.allSubscribedMs / 1000, 1),
        'SIPp failures': JSON.stringify(a.failures),
      },
    ]);
    printRows([
      verdict(
        `avalanche ${fmt(a.watchers)} in ${a.offeredSeconds} s`,
        `all subscribed <= ${budgetSec} s`,
        `${fmt(a.subscribed)} subscribed, last after ${fmt(a.allSubscribedMs / 1000, 1)} s`,
        a.subscribed === a.watchers && a.allSubscribedMs <= budgetSec * 1000,
      ),
    ]);
  });
}

/**
 * Issue 10 memory: 100,000 subscriptions on the default config in both shapes (all on one person; 20 each
 * on 5,000 people, the simulator seeded with them), RSS 2 s after the load and settled; then a restart on
 * the same store: time until every subscription is restored, and RSS again.
 */
async function memoryShapes(options: Options): Promise<void> {
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const limit = 300 * 1024 * 1024;
  const shapes = [
    { label: `all ${fmt(options.subscriptions)} on one person`, people: 1 },
    { label: `${fmt(Math.ceil(options.subscriptions / 5000))} each on 5,000 people`, people: 5000 },
  ];
  const rows: TargetRow[] = [];
  for (const shape of shapes) {
    console.log(`\n== memory, default config: ${shape.label}, created at ${fmt(options.memoryRate)}/s ==`);
    const users = benchUsers(shape.people);
    const dir = await mkdtemp(join(tmpdir(), 'pg-bench-mem-'));
    try {
      let created = 0;
      let liveAtStop = 0;
      await withDemoGateway(
        users,
        async (gw) => {
          await new Promise((r) => setTimeout(r, 1000));
          const m = await runMemory({ gateway: gw, count: options.subscriptions, rate: options.memoryRate, users, settleMs: 2000 });
          if (m.detail !== undefined) addDetail(`memory ${shape.label}`, m.detail);
          created = m.subscriptions;
          // what the gateway holds at the stop: a subscription whose NOTIFY got no answer ended (RFC 6665 §4.2.2)
          const counts = await gatewayCounts(gw);
          liveAtStop = counts.subscriptions;
          console.log(`gateway before the stop: ${fmt(counts.subscriptions)} subscriptions live, ${fmt(counts.notifyTimeouts)} NOTIFYs unanswered (408, subscription ended)`);
          console.table([
            {
              subscriptions: fmt(m.subscriptions),
              failures: fmt(m.failures),
              'RSS idle': mb(m.rssBeforeBytes),
              'RSS 2 s after': mb(m.rssAfterBytes),
              'RSS settled': mb(m.rssSettledBytes),
              'bytes / subscription': fmt((Math.max(m.rssAfterBytes, m.rssSettledBytes) - m.rssBeforeBytes) / Math.max(1, m.subscriptions)),
            },
          ]);
          const worst = Math.max(m.rssAfterBytes, m.rssSettledBytes);
          rows.push(verdict(`memory ${shape.label}`, `<= ${mb(limit)} RSS, no failures`, `${mb(worst)} (${fmt(m.failures)} failures)`, worst <= limit && m.failures === 0));
        },
        dir,
      );
      // restart on the same store
      const started = Date.now();
      const gw = await startGateway({
        users,
        logLevel: 'info',
        command: gatewayCommand,
        readyTimeoutMs: 60_000,
        overrides: { store: { path: join(dir, 'gateway.db') }, graphSimulator: { port: await freePort(), dir: join(dir, 'sim') }, http: { port: await freePort() } },
      });
      try {
        const record = await gw.waitForLog((r) => r['msg'] === 'state restored from the store', 60_000);
        const restoredAt = typeof record['time'] === 'number' ? record['time'] : Date.now();
        const restoreMs = restoredAt - started;
        const summary = JSON.stringify(record['watchers'] ?? record['subscriptions'] ?? '');
        await new Promise((r) => setTimeout(r, 2000));
        const rss2 = gw.rssBytes();
        await new Promise((r) => setTimeout(r, 10_000));
        const rssSettled = gw.rssBytes();
        const restored = Number((record['subscriptions'] as { restored?: unknown } | undefined)?.restored ?? 0);
        console.table([{ created: fmt(created), 'live at stop': fmt(liveAtStop), 'process start -> restored s': fmt(restoreMs / 1000, 1), restored: summary, 'RSS 2 s after': mb(rss2), 'RSS settled': mb(rssSettled) }]);
        rows.push(verdict(`restore ${shape.label}`, '<= 5 s', `${fmt(restoreMs / 1000, 1)} s from process start`, restoreMs <= 5000));
        rows.push(verdict(`restored ${shape.label}`, 'all live at the stop', `${fmt(restored)} of ${fmt(liveAtStop)}`, restored === liveAtStop && liveAtStop > 0));
        rows.push(verdict(`memory after restore, ${shape.label}`, `<= ${mb(limit)} RSS`, mb(Math.max(rss2, rssSettled)), Math.max(rss2, rssSettled) <= limit));
      } finally {
        await gw.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  printRows(rows);
}

/**
 * Issue 10 item 5: Kamailio 5.6 (presence modules, SQLite in WAL, sized by BENCH_TUNING in
 * test/helpers/kamailio.ts) side by side with the gateway (its default SQLite store) in this run:
 * the same SIPp rate steps (bench-subscribe.xml: SUBSCRIBE + 200 + NOTIFY + 200), gateway step
 * then Kamailio step at each rate so both see the same machine load, then the same single-user
 * fan-out (kam-bench-watch.xml: bench-watch.xml that also answers a late retransmitted initial
 * NOTIFY; one PUBLISH, last NOTIFY answered) on each. One line per measure:
 * gateway, Kamailio, ratio. Throws when Kamailio is missing or does not start.
 */
async function kamailio(options: Options, users: GatewayUser[]): Promise<void> {
  try {
    assertKamailioInstalled();
  } catch (err) {
    throw new Error(`kamailio phase: ${err instanceof Error ? err.message : String(err)}`);
  }
  const t = BENCH_TUNING;
  console.log(
    `\n== Kamailio 5.6 side by side: the same SIPp rate steps (gateway step, then Kamailio step) and fan-out; Kamailio presence + ` +
      `SQLite WAL, ${t.children} UDP workers, -m ${t.shmMb} -M ${t.pkgMb}, subs_db_mode ${t.subsDbMode}; gateway default config (SQLite store) ==`,
  );
  const startKam = async (): Promise<Kamailio> => {
    try {
      return await startKamailio({ domain: 'bench.kamailio.local', debug: 1, readyTimeoutMs: 20_000, tuning: t });
    } catch (err) {
      throw new Error(`kamailio phase: Kamailio did not start: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  const rows: TargetRow[] = [];
  const table: Record<string, string>[] = [];
  // completed subscriptions per second: final responses per second times the share of calls that succeeded
  const completed = (x: RateStepResult): number => (x.calls > 0 ? (x.achievedPerSecond * x.successful) / x.calls : 0);
  const rateCell = (x: RateStepResult): string => `${fmt(completed(x))}/s (${fmt(x.failures)} failed, ${fmt(x.retransmissions)} retr., p99 ${fmt(x.p99Ms)} ms)`;
  const kamailioErrors = (kam: Kamailio): string => {
    const counts = new Map<string, number>();
    for (const line of kam.logs()) {
      if (!/ (ERROR|CRITICAL|ALERT|BUG):/.test(line)) continue;
      const key = line.replace(/^\s*\d+\(\d+\)\s*/, '').replace(/0x[0-9a-f]+/g, '0x…').slice(0, 160);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return [...counts].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, n]) => `${fmt(n)} x ${k}`).join('\n');
  };

  await withGateway(users, async (gw) => {
    const kam = await startKam();
    try {
      for (const r of options.rates) {
        const g = await runRateStep({ gatewayPort: gw.port, rate: r, seconds: options.seconds, users });
        if (g.detail !== undefined) addDetail(`kamailio phase, gateway rate ${r}/s`, g.detail);
        const k = await runRateStep({ gatewayPort: kam.port, rate: r, seconds: options.seconds, users });
        if (k.detail !== undefined) addDetail(`kamailio phase, Kamailio rate ${r}/s`, k.detail);
        const ratio = completed(k) > 0 ? `${fmt(completed(g) / completed(k), 2)}x` : `Kamailio completed none of ${fmt(k.calls)}`;
        table.push({ line: `rate ${fmt(r)}/s offered: completed /s`, gateway: rateCell(g), kamailio: rateCell(k), 'gateway / Kamailio': ratio });
        rows.push(verdict(`vs Kamailio: rate ${fmt(r)}/s`, 'gateway ahead, no failures', `${ratio} (gateway ${fmt(g.failures)} failed, Kamailio ${fmt(k.failures)})`, g.failures === 0 && completed(g) >= completed(k)));
      }
    } finally {
      const errors = kamailioErrors(kam);
      if (errors !== '') console.log(`Kamailio errors during the rate steps (count x message):\n${errors}`);
      await kam.stop();
    }
  });

  const extension = users[0]?.extension ?? '2000';
  const fan = (port: number): Promise<FanoutResult> => runFanout({ gatewayPort: port, watchers: options.watchers, extension, instances: options.instances, scenario: 'kam-bench-watch' });
  const g = await withGateway(users, (gw) => fan(gw.port));
  if (g.detail !== undefined) addDetail('kamailio phase, gateway fan-out', g.detail);
  const kam = await startKam();
  let k: FanoutResult;
  try {
    k = await fan(kam.port);
    if (k.detail !== undefined) addDetail('kamailio phase, Kamailio fan-out', k.detail);
  } finally {
    const errors = kamailioErrors(kam);
    if (errors !== '') console.log(`Kamailio errors during the fan-out (count x message):\n${errors}`);
    await kam.stop();
  }
  const fanCell = (x: FanoutResult): string =>
    `${fmt(x.lastNotifyAnsweredMs)} ms (${fmt(x.notified)} of ${fmt(x.watchers)} answered, subscribed in ${fmt(x.subscribeSeconds, 1)} s)`;
  const complete = (x: FanoutResult): boolean => x.notified === x.watchers && Number.isFinite(x.lastNotifyAnsweredMs);
  const fanRatio = !complete(k)
    ? `Kamailio answered ${fmt(k.notified)} of ${fmt(k.watchers)}${complete(g) ? '' : `; gateway ${fmt(g.notified)}`}`
    : !complete(g)
      ? `gateway answered ${fmt(g.notified)} of ${fmt(g.watchers)}`
      : `${fmt(k.lastNotifyAnsweredMs / g.lastNotifyAnsweredMs, 2)}x faster`;
  table.push({ line: `fan-out to ${fmt(options.watchers)} watchers: PUBLISH -> last NOTIFY answered`, gateway: fanCell(g), kamailio: fanCell(k), 'gateway / Kamailio': fanRatio });
  rows.push(
    verdict(`vs Kamailio: fan-out ${fmt(options.watchers)}`, 'gateway all answered, sooner', fanRatio, complete(g) && (!complete(k) || g.lastNotifyAnsweredMs <= k.lastNotifyAnsweredMs)),
  );
  console.table(table);
  console.log(
    'note: completed /s = final responses per second (SIPp -trace_rtt, first to last) x the share of calls that succeeded; both servers get\n' +
      '      the same SIPp scenario, users and rate; each rate step is gateway then Kamailio, back to back, so a ratio compares the same load.',
  );
  printRows(rows);
}

/** Cluster targets: on 2 shared cores a cluster cannot scale out; these bound what sharing Redis may cost. */
const CLUSTER_TARGETS = { minRateRatio: 0.8, maxFanoutRatio: 1.5, failoverMs: 10_000 };

/**
 * Issue 12: 2 and 3 nodes on one Redis against 1 node with its SQLite file (bench/cluster.ts): the
 * rate phase's SIPp steps split over the nodes, the fanout phase's 10,000 watchers dealt over them,
 * and the failover time over --kills SIGKILLs of node a.
 */
async function cluster(options: Options, users: GatewayUser[]): Promise<void> {
  const { REDIS_SERVER_BIN } = await import('../test/helpers/redis-server.js');
  const { existsSync } = await import('node:fs');
  if (!existsSync(REDIS_SERVER_BIN)) throw new Error(`cluster phase: ${REDIS_SERVER_BIN} is missing (./scripts/test.sh installs Debian's redis-server)`);
  const t = PRODUCTION_TIMINGS;
  const timing = `heartbeat ${fmt(t.heartbeatMs / 1000)} s, node TTL ${fmt(t.nodeTtlMs / 1000)} s, lease TTL ${fmt(t.leaseTtlMs / 1000)} s (defaults)`;
  const config =
    'SIP on UDP, no Graph side; 1 node: SQLite store file (default store); cluster: nodes a 127.0.0.1, b 127.0.0.2, c 127.0.0.3 ' +
    `on one redis-server (append-only, everysec), ${timing}`;
  // 500 first: on a loaded 2-core machine even one node may not take 1,000/s cleanly, and a ratio needs a clean step on both sides
  const rates = options.ratesGiven ? options.rates : [500, 1000, 2000, 3000];
  const bench: ClusterBenchOptions = {
    gatewayCommand,
    rates,
    seconds: options.seconds,
    watchers: options.watchers,
    instances: options.instances,
    kills: options.kills,
    failoverWatchers: options.failoverWatchers,
    onDetail: addDetail,
  };
  const shape = (n: number): string => (n === 1 ? '1 node SQLite' : `${n} nodes Redis`);
  const rows: TargetRow[] = [];
  const started = Date.now();

  console.log(
    `
== cluster rate: fresh SUBSCRIBE + initial NOTIFY (bench-subscribe.xml), total ${rates.map((r) => fmt(r)).join(', ')}/s for ` +
      `${options.seconds} s each (higher steps skipped once one fails), one SIPp per node at total / nodes; ${config} ==`,
  );
  const rateShapes = await clusterRates(bench, users);
  console.table(
    rateShapes.flatMap((s) =>
      s.steps.map((x) => ({
        shape: shape(s.nodes),
        'offered /s': fmt(x.offeredPerSecond),
        'achieved /s (sum)': fmt(x.achievedPerSecond),
        'completed /s': fmt(completedPerSecond(x)),
        calls: fmt(x.calls),
        failures: fmt(x.failures),
        retransmissions: fmt(x.retransmissions),
        'worst node p99 ms': fmt(x.p99Ms),
      })),
    ),
  );
  const single = rateShapes[0]!;
  console.log(`best failure-free total: ${rateShapes.map((s) => `${shape(s.nodes)} ${fmt(s.best)}/s`).join(', ')}`);
  for (const s of rateShapes.slice(1)) {
    const r = rateRatioRow(shape(s.nodes), s.best, single.best, CLUSTER_TARGETS.minRateRatio, commonStep(s.steps, single.steps));
    rows.push(verdict(r.line, r.target, r.result, r.met));
  }

  console.log(
    `
== cluster fan-out: ${fmt(options.watchers)} watchers of one person (SIPp bench-watch-many.xml, ${options.instances} processes on 1 node, ` +
      `ceil(${options.instances} / nodes) per node in a cluster, watchers dealt evenly), one PUBLISH at node a (127.0.0.1); fresh gateways; ${config} ==`,
  );
  const fans = await clusterFanouts(bench, users);
  console.table(
    fans.map((f) => ({
      shape: shape(f.nodes),
      'SIPp processes': String(f.result.instances),
      subscribed: fmt(f.result.subscribed),
      '503s followed': fmt(f.result.subscribeRetries),
      'subscribed in s': fmt(f.result.subscribeSeconds, 1),
      'PUBLISH status': String(f.result.publishStatus),
      'NOTIFYs answered': fmt(f.result.notified),
      'in order': fmt(f.result.inOrder),
      'PUBLISH -> last NOTIFY answered ms': fmt(f.result.lastNotifyAnsweredMs),
    })),
  );
  const fanSingle = fans[0]!.result;
  for (const f of fans.slice(1)) {
    const r = fanoutRatioRow(
      shape(f.nodes),
      options.watchers,
      { ms: f.result.lastNotifyAnsweredMs, notified: f.result.notified },
      { ms: fanSingle.lastNotifyAnsweredMs, notified: fanSingle.notified },
      CLUSTER_TARGETS.maxFanoutRatio,
    );
    rows.push(verdict(r.line, r.target, r.result, r.met));
  }

  console.log(
    `
== cluster failover: ${options.kills} rounds on 3 nodes (Redis, ${timing}): ${fmt(options.failoverWatchers)} watchers ` +
      '(cluster-watch.xml) subscribe at a, a change published at b reaches them, a is SIGKILLed, a change is published at b; ' +
      'kill -> the last orphaned watcher got it from a survivor (same dialog, higher CSeq; SIPp log polled every 50 ms); the watchers ' +
      'then refresh at c; a starts again for the next round ==',
  );
  const f = await clusterFailover(bench);
  console.table(
    f.rounds.map((r, i) => ({
      kill: String(i + 1),
      'kill -> last orphan notified s': Number.isFinite(r.ms) ? fmt(r.ms / 1000, 2) : 'not reached',
      'subscribed at a': `${fmt(r.subscribed)} of ${fmt(f.watchers)}`,
      'orphans notified': fmt(r.notified),
      'same dialog, higher CSeq': fmt(r.inDialog),
      'refreshed at c (200)': fmt(r.refreshed),
      'SIPp exit': String(r.sippCode),
    })),
  );
  if (f.subscribed < f.watchers * f.rounds.length) {
    console.log(`note: ${fmt(f.watchers * f.rounds.length - f.subscribed)} of ${fmt(f.watchers * f.rounds.length)} watchers were shed (503) at subscribe; the orphans are the subscribed ones`);
  }
  for (const r of failoverRows(`3 nodes, ${fmt(f.watchers)} watchers, node TTL ${fmt(t.nodeTtlMs / 1000)} s default`, f.summary, f.allReached, CLUSTER_TARGETS.failoverMs)) {
    rows.push(verdict(r.line, r.target, r.result, r.met));
  }
  console.log(`cluster phase took ${fmt((Date.now() - started) / 1000)} s`);
  printRows(rows);
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const needsSipp = ['rate', 'memory', 'memory-shapes', 'fanout', 'storm', 'avalanche', 'kamailio', 'cluster'].some((p) => options.phases.has(p as Phase));
  if (needsSipp) assertSippInstalled();
  console.log(`presence-gateway benchmark (${gatewayCommand === 'dist' ? 'built gateway' : 'gateway from sources via tsx'})`);
  const users = benchUsers(1000);
  if (options.phases.has('micro')) micro();
  if (options.phases.has('rate')) {
    if (options.store) await rateWithStore(options, users);
    else await rate(options, users);
  }
  if (options.phases.has('memory')) await memory(options, users);
  if (options.phases.has('memory-shapes')) await memoryShapes(options);
  if (options.phases.has('fanout')) await fanout(options, users);
  if (options.phases.has('storm')) await storm(options, users);
  if (options.phases.has('avalanche')) await avalanche(options, users);
  if (options.phases.has('kamailio')) await kamailio(options, users);
  if (options.phases.has('teams-to-sip')) await teamsToSip(options);
  if (options.phases.has('teams-rich')) await teamsRich(options);
  if (options.phases.has('sip-to-teams')) await sipToTeams(options);
  if (options.phases.has('graph-budget')) await graphBudget(options);
  if (options.phases.has('teams-polling')) await teamsPolling(options);
  if (options.phases.has('cluster')) await cluster(options, users);
  if (targetRows.length > 0) {
    console.log('\n== targets (SIP hot path and Teams: issue 10 and earlier; cluster rows: issue 12) ==');
    printRows(targetRows);
  }
  if (details.length > 0) console.log(`\n== SIPp details of failed runs ==\n${details.join('\n\n')}`);
  console.log(missed.length === 0 ? '\nall targets met' : `\ntargets missed: ${missed.join(', ')}`);
  if (options.strict && missed.length > 0) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack ?? err.message : String(err));
  process.exitCode = 1;
});
