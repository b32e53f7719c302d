/**
 * The Kamailio harness on its own, with SIPp only: a real Kamailio presence server
 * (test/helpers/kamailio.ts) serves dialog-info and PIDF from PUBLISH to SUBSCRIBE
 * watchers, answers OPTIONS and refuses other methods, keeps its SQLite file in WAL
 * mode, and keeps publications and subscriptions across a restart on the same database.
 */
import t from 'tap';
import {
  assertKamailioInstalled,
  BENCH_TUNING,
  hasNoLiveDialog,
  isConfirmedDialog,
  isNotOnThePhone,
  isOnThePhone,
  kamPublish,
  startKamailio,
  startKamWatcher,
  type Kamailio,
} from '../helpers/kamailio.js';
import { udpRequest } from '../helpers/sip-udp.js';
import { assertSippInstalled, expectSippOk, runSipp, type SippResult } from '../helpers/sipp.js';

const DOMAIN = 'kam.interop.test';
let kamailio: Kamailio | undefined;
const K = (): Kamailio => {
  if (kamailio === undefined) throw new Error('kamailio not started');
  return kamailio;
};

t.before(async () => {
  assertSippInstalled();
  assertKamailioInstalled();
  kamailio = await startKamailio({ domain: DOMAIN });
});
t.teardown(async () => {
  await kamailio?.stop();
});

/** Subscriptions of bench-subscribe's SIPp watchers in active_watchers. */
const storedWatchers = (kam: Kamailio): number =>
  kam.query("SELECT count(*) AS n FROM active_watchers WHERE watcher_username LIKE 'watcher-%'")[0]?.['n'] as number;

/** Fresh SUBSCRIBE dialogs (bench-subscribe.xml, Expires 60) spread over 20 users from `firstUser` up. */
function subscribeMany(kam: Kamailio, o: { firstUser: number; calls: number; rate: number; timeoutSec: number }): Promise<SippResult> {
  return runSipp({
    scenario: 'bench-subscribe',
    gatewayPort: kam.port,
    transport: 'u1',
    calls: o.calls,
    rate: o.rate,
    limit: o.rate,
    timeoutSec: o.timeoutSec,
    injection: ['SEQUENTIAL', ...Array.from({ length: 20 }, (_, i) => `${o.firstUser + i};60`)],
  });
}

t.test('Kamailio answers OPTIONS, refuses other methods, and runs SQLite in WAL mode', async (t) => {
  const options = await udpRequest({ method: 'OPTIONS', user: 'probe', port: K().port });
  t.equal(options.status, 200, 'OPTIONS 200');
  const message = await udpRequest({ method: 'MESSAGE', user: '1001', port: K().port, body: 'hi' });
  t.equal(message.status, 405, 'MESSAGE 405');
  t.match(message.header('allow') ?? '', /SUBSCRIBE/, '405 lists what is allowed');
  t.same(K().query('PRAGMA journal_mode'), [{ journal_mode: 'wal' }], 'the database is in WAL mode');
  const tables = K().query('SELECT table_name FROM version ORDER BY table_name').map((r) => r['table_name']);
  t.same(tables, ['active_watchers', 'presentity', 'pua', 'version', 'watchers', 'xcap'], "Kamailio's own presence schema");
  await K().waitForLog(/pg-kam request MESSAGE /, 2000);

  // a presentity of another domain is not served here
  const foreign = { port: K().port, domain: 'elsewhere.example' };
  await t.rejects(kamPublish(foreign, 'kam-publish-pidf', '1009', { activity: 'busy' }), /404/, 'PUBLISH for another domain: 404');
  t.same(K().query("SELECT username FROM presentity WHERE domain = 'elsewhere.example'"), [], 'nothing stored for it');
});

t.test('a phone PUBLISHes dialog-info and a dialog watcher at Kamailio gets it (UDP)', async (t) => {
  const watcher = await startKamWatcher(K(), 'u1', '1001', 'dialog');
  try {
    const first = await watcher.waitFor(() => true, 5000, 'initial NOTIFY');
    t.ok(hasNoLiveDialog(watcher.lines()[first] ?? ''), 'nothing published yet: no live dialog');
    t.match(watcher.lines()[first], /sub=active/, 'the subscription is active (no authorisation step)');

    const { etag } = await kamPublish(K(), 'kam-publish-dialog', '1001', { dialog: 'line-a', dstate: 'confirmed' });
    const busy = await watcher.waitFor(isConfirmedDialog, 5000, 'confirmed dialog', first);
    t.ok(busy > first, 'the confirmed dialog reached the watcher');
    const rows = K().query(`SELECT username, domain, event FROM presentity WHERE etag = '${etag}'`);
    t.same(rows, [{ username: '1001', domain: DOMAIN, event: 'dialog' }], 'stored for 1001@domain, event dialog');

    await kamPublish(K(), 'kam-publish-dialog-modify', '1001', { dialog: 'line-a', dstate: 'terminated', version: '1', etag });
    const idle = await watcher.waitFor(hasNoLiveDialog, 5000, 'terminated dialog', busy);
    t.ok(idle > busy, 'the hang-up (modified publication) reached the watcher');
  } finally {
    const r = await watcher.stop();
    t.equal(r.errors.trim(), '', 'watcher: no unexpected messages');
  }
});

t.test('a client PUBLISHes PIDF on-the-phone and a presence watcher at Kamailio gets it (TCP)', async (t) => {
  const watcher = await startKamWatcher(K(), 't1', '1002', 'presence');
  try {
    const first = await watcher.waitFor(() => true, 5000, 'initial NOTIFY');
    t.ok(isNotOnThePhone(watcher.lines()[first] ?? ''), 'nothing published yet: not on the phone');
    await kamPublish(K(), 'kam-publish-pidf', '1002', { activity: 'on-the-phone' }, 't1');
    const busy = await watcher.waitFor(isOnThePhone, 5000, 'on-the-phone', first);
    t.ok(busy > first, 'on-the-phone reached the watcher');
  } finally {
    const r = await watcher.stop();
    t.equal(r.errors.trim(), '', 'watcher: no unexpected messages');
  }
});

t.test('a restart on the same database keeps publications and subscriptions', async (t) => {
  const before = await startKamWatcher(K(), 'u1', '1003', 'dialog');
  let after: Awaited<ReturnType<typeof startKamWatcher>> | undefined;
  try {
    const first = await before.waitFor(() => true, 5000, 'initial NOTIFY');
    const { etag } = await kamPublish(K(), 'kam-publish-dialog', '1003', { dialog: 'line-r', dstate: 'confirmed' });
    const busy = await before.waitFor(isConfirmedDialog, 5000, 'confirmed dialog', first);
    const watching = (): number =>
      K().query(`SELECT count(*) AS n FROM active_watchers WHERE presentity_uri = 'sip:1003@${DOMAIN}' AND event = 'dialog'`)[0]?.['n'] as number;
    t.equal(watching(), 1, 'the subscription is in active_watchers before the restart (write-through)');

    const pidBefore = K().pid();
    const mark = K().logs().length;
    await K().restart();
    t.not(K().pid(), pidBefore, 'a new Kamailio process');
    await K().waitForLog(/pg-kam request OPTIONS /, 2000, mark);
    t.equal(watching(), 1, 'the subscription is still in active_watchers after the restart');

    // the publication survived: a watcher subscribing now is told the line is busy
    after = await startKamWatcher(K(), 'u1', '1003', 'dialog');
    const firstAfter = await after.waitFor(() => true, 5000, 'initial NOTIFY after the restart');
    t.ok(isConfirmedDialog(after.lines()[firstAfter] ?? ''), 'the publication made before the restart is still served');

    // the subscription survived: the watcher from before the restart hears the hang-up in its old dialog
    await kamPublish(K(), 'kam-publish-dialog-modify', '1003', { dialog: 'line-r', dstate: 'terminated', version: '1', etag });
    const idle = await before.waitFor(hasNoLiveDialog, 5000, 'terminated dialog after the restart', busy);
    t.ok(idle > busy, 'the watcher subscribed before the restart still gets NOTIFYs');
    await after.waitFor(hasNoLiveDialog, 5000, 'terminated dialog', firstAfter);
  } finally {
    const r = await before.stop();
    t.equal(r.errors.trim(), '', 'watcher from before the restart: no unexpected messages');
    if (after !== undefined) await after.stop();
  }
});

t.test('400 new subscriptions at 200/s are all stored (SQLite in WAL, one worker)', async (t) => {
  const before = storedWatchers(K());
  const result = await subscribeMany(K(), { firstUser: 2001, calls: 400, rate: 200, timeoutSec: 20 });
  expectSippOk(t, result, '400 SUBSCRIBE dialogs, each answering its first NOTIFY');
  t.equal(storedWatchers(K()) - before, 400, 'every subscription is in active_watchers (write-through)');
});

t.test('every worker gives its SQLite connection a busy timeout and synchronous=NORMAL', async (t) => {
  const tuned = K().logs().filter((l) => / pg-kam db tuned pid \d+ /.test(l));
  t.ok(tuned.length >= 1, 'the worker that handled requests logged its connection settings');
  for (const line of tuned) t.match(line, /busy_timeout 2000 synchronous 1$/, 'busy timeout 2 s, synchronous NORMAL (1)');
});

t.test("the benchmark's Kamailio (BENCH_TUNING): 4 workers write one SQLite file without 'database is locked'", async (t) => {
  const bench = await startKamailio({ domain: 'kam.bench.test', tuning: BENCH_TUNING });
  try {
    const result = await subscribeMany(bench, { firstUser: 3001, calls: 600, rate: 300, timeoutSec: 30 });
    expectSippOk(t, result, '600 SUBSCRIBE dialogs at 300/s');
    t.equal(storedWatchers(bench), 600, 'every subscription is in active_watchers: no NOTIFY response lost (4 MB receive buffer), none dropped');
    const pids = new Set(bench.logs().flatMap((l) => / pg-kam db tuned pid (\d+) busy_timeout 2000 synchronous 1$/.exec(l)?.[1] ?? []));
    t.ok(pids.size >= 2, `more than one worker handled requests, each with its connection tuned (${pids.size})`);
    const locked = bench.logs().filter((l) => / pg-kam .*database is locked/.test(l));
    t.same(locked, [], 'no SIP worker hit "database is locked"');
  } finally {
    await bench.stop();
  }
});

t.test('Kamailio logged no storage or presence errors (no "database is locked")', async (t) => {
  const bad = K().logs().filter(
    (l) => /database is locked|SQLITE_BUSY/i.test(l) || /\b(ERROR|CRITICAL|ALERT): (db_sqlite|presence|presence_xml|presence_dialoginfo|<core> \[db)/.test(l),
  );
  t.same(bad, [], 'no storage or presence error lines in the Kamailio log');
});
