/**
 * TCP watchers across gateway restarts (real gateway process, SQLite store
 * file, SIPp phone over UDP). The watchers are test/helpers/tcp-watcher.ts,
 * not SIPp: after a restart the gateway reaches a watcher on a new TCP
 * connection to its Contact, and the watcher must answer there (SIPp's t1
 * mode answers on the call's old, dead socket). A presence and a dialog
 * watcher of one user subscribe once; the gateway is killed (SIGKILL) and
 * started again with the same config and store, a phone publishes a
 * confirmed dialog, and both watchers get the change on a new connection to
 * their Contact with a higher CSeq; then the same after a SIGTERM stop.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { errorRecords, samePlaceOverrides, startGateway, type GatewayProcess, type LogRecord } from '../helpers/gateway-process.js';
import { freePort } from '../helpers/ports.js';
import { assertSippInstalled, expectSippOk, runSipp } from '../helpers/sipp.js';
import { TcpWatcher, type WatcherNotify } from '../helpers/tcp-watcher.js';

let dir = '';
let port = 0;
let httpPort = 0;
let gateway: GatewayProcess | undefined;
let presence: TcpWatcher | undefined;
let dialog: TcpWatcher | undefined;
/** Every gateway started, for the error check at the end. */
const runs: GatewayProcess[] = [];

t.before(async () => {
  assertSippInstalled();
  dir = await mkdtemp(join(tmpdir(), 'pg-persist-tcp-'));
  port = await freePort();
  httpPort = await freePort();
});
t.teardown(async () => {
  await presence?.close();
  await dialog?.close();
  await gateway?.stop();
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

/** The gateway on the same port and store file every time. */
async function start(): Promise<GatewayProcess> {
  gateway = await startGateway({ overrides: samePlaceOverrides({ port, httpPort, dir }) });
  runs.push(gateway);
  return gateway;
}

const P = (): TcpWatcher => presence!;
const D = (): TcpWatcher => dialog!;
const watchers = (): Array<[string, TcpWatcher]> => [
  ['presence', P()],
  ['dialog', D()],
];

/** The watcher's view shows the call: PIDF on-the-phone, dialog-info a confirmed dialog. */
function showsCall(name: string, n: WatcherNotify): boolean {
  return name === 'presence' ? /on-the-phone/.test(n.body) : /<state[^>]*>confirmed<\/state>/.test(n.body);
}

/** Resolves with the first NOTIFY after index `from` that passes `test`; rejects after timeoutMs. */
async function notifyWhere(w: TcpWatcher, from: number, test: (n: WatcherNotify) => boolean, timeoutMs = 10_000): Promise<WatcherNotify> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const hit = w.notifies.slice(from).find(test);
    if (hit !== undefined) return hit;
    const left = deadline - Date.now();
    if (left <= 0) {
      const seen = w.notifies.slice(from).map((n) => `cseq=${n.cseq} via=${n.via} body=${n.body.slice(0, 400)}`);
      throw new Error(`no matching NOTIFY within ${timeoutMs} ms; after #${from}: ${seen.join(' || ') || 'none'}; ${w.problems.join(' | ')}`);
    }
    await w.waitForNotifies(w.notifies.length + 1, left).catch(() => undefined);
  }
}

const subscriptionsCreated = (gw: GatewayProcess): LogRecord[] => gw.records().filter((r) => r['msg'] === 'subscription created');

/** The gateway's log lines `msg` once there are `count` of them (stdout is read asynchronously); what is there after timeoutMs. */
async function logLines(gw: GatewayProcess, msg: string, count: number, timeoutMs = 5000): Promise<LogRecord[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lines = gw.records().filter((r) => r['msg'] === msg);
    if (lines.length >= count || Date.now() >= deadline) return lines;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Resolves once the store file holds the subscriptions with these Call-IDs.
 * Writes are batched (flushMs), and a SIGKILL loses what was not written yet,
 * so the first kill waits for them; read-only, beside the gateway (WAL).
 */
async function savedInStore(callIds: readonly string[], timeoutMs = 5000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let count = 0;
  for (;;) {
    try {
      const db = new Database(join(dir, 'gateway.db'), { readonly: true, fileMustExist: true });
      try {
        const row: unknown = db
          .prepare(`select count(*) as n from watcher_subscriptions where json_extract(data, '$.callId') in (${callIds.map(() => '?').join(', ')})`)
          .get(...callIds);
        count = typeof row === 'object' && row !== null && 'n' in row && typeof row.n === 'number' ? row.n : 0;
      } finally {
        db.close();
      }
    } catch {
      count = 0; // not created yet, or busy
    }
    if (count >= callIds.length || Date.now() >= deadline) return count;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

let beforeRestart = 0;
let etag = '';
/** Per watcher: how many NOTIFYs it had before the current restart. */
const mark = new Map<TcpWatcher, number>();

t.test('a presence and a dialog watcher subscribe over TCP', async (t) => {
  await start();
  presence = await TcpWatcher.start({ gatewayPort: port, user: '1001', event: 'presence', name: 'tcp-presence' });
  // this one's Contact has no transport parameter: only the saved transport of the subscription says TCP
  dialog = await TcpWatcher.start({ gatewayPort: port, user: '1001', event: 'dialog', name: 'tcp-dialog', contactTransport: false });
  for (const [name, w] of watchers()) {
    const ok = await w.subscribe();
    t.equal(ok.status, 200, `${name}: SUBSCRIBE answered 200`);
    t.ok(ok.toTag !== undefined && ok.toTag.length > 0, `${name}: the gateway tagged the dialog`);
    const [initial] = await w.waitForNotifies(1);
    t.equal(initial!.via, 'subscribe', `${name}: initial NOTIFY on the SUBSCRIBE's connection`);
    t.equal(initial!.fromTag, ok.toTag, `${name}: initial NOTIFY in the dialog`);
    t.match(initial!.subscriptionState, /^active;expires=\d+/, `${name}: active`);
    t.notOk(showsCall(name, initial!), `${name}: no call yet`);
  }
  t.equal((await logLines(gateway!, 'subscription created', 2)).length, 2, 'two subscriptions created');
  beforeRestart = Math.max(...watchers().flatMap(([, w]) => w.notifies.map((n) => n.cseq)));
  t.equal(await savedInStore([P().callId, D().callId]), 2, 'both subscriptions are in the store file');
});

t.test('after SIGKILL and a start with the same store, a published call reaches both watchers on new connections', async (t) => {
  const before = gateway!;
  process.kill(before.pid, 'SIGKILL');
  t.equal((await before.exited).signal, 'SIGKILL', 'killed');
  await before.stop();
  for (const [, w] of watchers()) mark.set(w, w.notifies.length);
  const gw = await start();
  t.match(
    gw.records().find((r) => r['msg'] === 'state restored from the store'),
    { subscriptions: { restored: 2 } },
    'both TCP subscriptions restored',
  );

  const pub = await runSipp({
    scenario: 'teams-publish-dialog',
    gatewayPort: port,
    transport: 'u1',
    service: '1001',
    traceLogs: true,
    vars: { dstate: 'confirmed' },
  });
  expectSippOk(t, pub, 'phone PUBLISH dialog-info confirmed');
  etag = /^etag (\S+)/m.exec((pub.logs ?? []).join('\n'))?.[1] ?? '';
  t.ok(etag.length > 0, `entity-tag ${etag}`);

  for (const [name, w] of watchers()) {
    const n = await notifyWhere(w, mark.get(w)!, (x) => showsCall(name, x));
    const after = w.notifies.slice(mark.get(w)!);
    const cseqs = after.map((x) => x.cseq);
    t.ok(cseqs.every((c) => c > beforeRestart), `${name}: CSeqs ${cseqs.join(', ')} are higher than before the restart (${beforeRestart})`);
    t.equal(n.via, 'contact', `${name}: NOTIFY came on a connection the gateway opened to the Contact`);
    t.ok(after.length >= 2, `${name}: the restored NOTIFY, then the call`);
    t.equal(new Set(after.map((x) => x.connection)).size, 1, `${name}: the gateway reused its connection to the Contact`);
    t.equal(n.callId, w.callId, `${name}: same dialog (Call-ID)`);
    t.match(n.contact ?? '', new RegExp(`^<sip:127\\.0\\.0\\.1:${port}[;>]`), `${name}: the gateway's Contact names its listener (${n.contact})`);
    t.match(n.subscriptionState, /^active;expires=\d+/, `${name}: still active`);
    t.equal(w.subscribeCount, 1, `${name}: never subscribed again`);
  }
  t.equal(subscriptionsCreated(gw).length, 0, 'nobody subscribed again');
});

t.test('after SIGTERM and a start, the watchers still get the changes on new connections', async (t) => {
  const before = gateway!;
  const highest = Math.max(...watchers().flatMap(([, w]) => w.notifies.map((n) => n.cseq)));
  await before.stop();
  t.equal((await before.exited).code, 0, 'clean exit on SIGTERM');
  t.notOk(
    before.records().some((r) => typeof r['msg'] === 'string' && /subscription terminated/.test(r['msg'])),
    'no subscription ended at the stop',
  );
  for (const [name, w] of watchers()) {
    t.notOk(w.notifies.some((n) => /^terminated/.test(n.subscriptionState)), `${name}: no terminating NOTIFY at the stop`);
    mark.set(w, w.notifies.length);
  }
  const gw = await start();
  t.match(
    gw.records().find((r) => r['msg'] === 'state restored from the store'),
    { subscriptions: { restored: 2 }, publications: { restored: 1 } },
    'subscriptions and the publication restored',
  );
  // the restored NOTIFY still shows the call (the publication survived)
  for (const [name, w] of watchers()) {
    const n = await notifyWhere(w, mark.get(w)!, () => true);
    t.ok(showsCall(name, n), `${name}: restored NOTIFY shows the restored call`);
    t.ok(n.cseq > highest, `${name}: CSeq ${n.cseq} higher than before the stop (${highest})`);
    t.equal(n.via, 'contact', `${name}: on a new connection to the Contact`);
    mark.set(w, w.notifies.length);
  }

  const modify = await runSipp({
    scenario: 'teams-publish-dialog-modify',
    gatewayPort: port,
    transport: 'u1',
    service: '1001',
    vars: { etag, version: '1', dstate: 'terminated' },
  });
  expectSippOk(t, modify, 'SIP-If-Match with the entity-tag from before the restart: the call ended');
  for (const [name, w] of watchers()) {
    const n = await notifyWhere(w, mark.get(w)!, (x) => !showsCall(name, x));
    t.equal(n.via, 'contact', `${name}: the end of the call came on a connection to the Contact`);
    t.equal(w.subscribeCount, 1, `${name}: never subscribed again`);
  }
  t.equal(subscriptionsCreated(gw).length, 0, 'nobody subscribed again');
});

t.test('a refresh after the restarts is accepted in the same dialog, on its own new connection', async (t) => {
  for (const [name, w] of watchers()) {
    const from = w.notifies.length;
    const ok = await w.refresh();
    t.equal(ok.status, 200, `${name}: refresh answered 200 (dialog and remote CSeq restored)`);
    t.equal(ok.toTag, w.toTag, `${name}: same dialog`);
    const n = await notifyWhere(w, from, () => true);
    t.equal(n.via, 'subscribe', `${name}: the refresh NOTIFY came on the refresh's connection`);
    t.equal(n.fromTag, w.toTag, `${name}: in the dialog`);
  }
  t.equal(subscriptionsCreated(gateway!).length, 0, 'a refresh, not a new subscription');
});

t.test('NOTIFY CSeqs strictly increased across both restarts; nothing went wrong', async (t) => {
  for (const [name, w] of watchers()) {
    const cseqs = w.notifies.map((n) => n.cseq);
    t.ok(cseqs.length >= 6, `${name}: initial, two after each restart, the refresh's (${cseqs.length})`);
    t.equal(w.subscribeCount, 1, `${name}: subscribed once`);
    t.ok(cseqs.every((c, k) => k === 0 || c > cseqs[k - 1]!), `${name}: CSeqs strictly increase: ${cseqs.join(', ')}`);
    t.ok(new Set(w.notifies.map((n) => n.fromTag)).size === 1, `${name}: one dialog throughout`);
    t.same(w.problems, [], `${name}: no unparseable or unexpected messages`);
  }
  for (const gw of runs) t.same(errorRecords(gw), [], 'no errors logged');
});
