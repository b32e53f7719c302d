/**
 * Vendor peers: SIPp plays an Asterisk and a Cisco CUCM presence source on a
 * trunk (sip-fixtures/scenarios/peer-*.xml, bodies as those products send
 * them). The gateway, configured with `trunks:`, subscribes there per carried
 * user (digest answered for Asterisk); what the peer says (ringing, in a call,
 * on hold, DND, idle) must reach SIPp watchers subscribed at the gateway for
 * that user, and the gateway's shutdown must end its subscription at the peer.
 *
 * The peers listen on 127.0.0.2 so that the watchers (127.0.0.1, trusted) are
 * not taken for the trunk.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { parseDialogInfo, parsePidf } from '../../src/bodies/index.js';
import { richStateFromPidf, telephonyFromDialogInfo } from '../../src/simple/body-state.js';
import { errorRecords, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { freePort } from '../helpers/ports.js';
import { assertSippInstalled, describeSipp, scenarioPath, startSipp, type SippRun } from '../helpers/sipp.js';
import { eventually, hasNoLiveDialog, isIdlePresence, isOnThePhone, startWatcher } from '../helpers/teams-gateway.js';

const PEER_IP = '127.0.0.2';
const TRUNK_USER = 'gw';
const TRUNK_PASSWORD = 'pbx-secret';

// ---------------------------------------------------------------------------
// The peers' bodies, read out of the scenarios, parse the way the gateway reads them.

/** The NOTIFY bodies of a peer scenario, with its variables filled in. */
function scenarioBodies(name: string): string[] {
  const xml = readFileSync(scenarioPath(name), 'utf8');
  const out: string[] = [];
  for (const m of xml.matchAll(/<!\[CDATA\[([\s\S]*?)\]\]>/g)) {
    const message = m[1]!;
    if (!/^\s*NOTIFY /.test(message)) continue;
    const split = message.indexOf('\n\n');
    const body = message.slice(split + 2).trim();
    if (body.length === 0) continue;
    out.push(body.replace(/\[\$exten\]/g, '1001').replace(/\[\$seq\]/g, '3').replace(/\[local_ip\]/g, PEER_IP));
  }
  return out;
}

t.test('Asterisk peer bodies: one dialog id=exten, parsed into line states', async (t) => {
  const bodies = scenarioBodies('peer-asterisk-dialog');
  t.ok(bodies.length >= 5, 'idle, ringing, in use, on hold, idle');
  const lines = bodies.slice(0, 5).map((b) => {
    const doc = parseDialogInfo(b);
    t.equal(doc.dialogs.length, 1, 'a single dialog');
    t.equal(doc.dialogs[0]!.id, '1001', 'id is the extension');
    t.equal(doc.dialogs[0]!.callId, undefined, 'no call-id');
    return telephonyFromDialogInfo(doc, undefined, 'trunk:pbx1', 0).line;
  });
  t.same(lines, ['idle', 'ringing', 'in-call', 'on-hold', 'idle']);
  const ringing = parseDialogInfo(bodies[1]!).dialogs[0]!;
  t.equal(ringing.direction, 'recipient');
  t.equal(ringing.remote?.identity, `sip:2000@${PEER_IP}`, 'the caller for consoles');
});

t.test('CUCM peer bodies: status:rpid and Cisco activities, tuple ids cmp-<exten>-<n>', async (t) => {
  const bodies = scenarioBodies('peer-cucm-presence');
  t.ok(bodies.length >= 6, 'idle, ringing, on the phone, idle, DND, idle');
  const activities = bodies.slice(0, 6).map((b) => {
    const doc = parsePidf(b);
    t.match(doc.tuples[0]!.id, /^cmp-1001-\d+$/);
    return [...doc.persons[0]!.activities.map((a) => `${a.ns}:${a.name}`)];
  });
  t.same(activities, [[], ['cisco:alerting'], ['rpid:on-the-phone'], [], ['cisco:dnd'], []]);
  t.same(richStateFromPidf(parsePidf(bodies[4]!), 'trunk:cucm', 0).activities, ['dnd']);
});

// ---------------------------------------------------------------------------
// Against the gateway

interface Peer {
  run: SippRun;
  port: number;
}

async function startPeer(scenario: string): Promise<Peer> {
  const port = await freePort();
  const run = await startSipp({
    scenario,
    // SIPp is the server here: its remote address is unused, the gateway's requests decide.
    gatewayPort: port,
    transport: 'u1',
    traceLogs: true,
    timeoutSec: 90,
    // later -i / -p win over the helper's 127.0.0.1 and free port
    extraArgs: ['-i', PEER_IP, '-p', String(port)],
  });
  return { run, port };
}

function trunkGateway(peer: Peer, trunk: Record<string, unknown>): Promise<GatewayProcess> {
  return startGateway({
    overrides: {
      sip: { access: { trusted: ['127.0.0.1/32'] } },
      // No persistent store: a gateway that keeps nothing across restarts ends its upstream subscriptions
      // on shutdown (with SQLite it keeps them for the next start: test/interop/restart-persist.test.ts).
      store: { path: ':memory:' },
      trunks: [
        {
          address: `sip:${PEER_IP}:${peer.port}`,
          directions: ['watch'],
          users: ['anna'],
          optionsIntervalSec: 0,
          ...trunk,
        },
      ],
    },
  });
}

/** Index of the first log line after `from` that matches, waiting for it. */
async function waitLine(lines: () => string[], match: (l: string) => boolean, from: number, what: string): Promise<number> {
  const i = await eventually(
    () => lines().findIndex((l, n) => n > from && match(l)),
    (n) => n >= 0,
    20_000,
    what,
  ).catch((err: unknown) => {
    throw new Error(`${err instanceof Error ? err.message : String(err)}; lines: ${JSON.stringify(lines())}`);
  });
  return i;
}

const isEarly = (l: string): boolean => l.includes('dialog=early');
const isConfirmed = (l: string): boolean => l.includes('dialog=confirmed');

t.test('Asterisk peer: digest-authenticated dialog watch, ringing / in a call / on hold / idle reach the watchers', async (t) => {
  assertSippInstalled();
  const peer = await startPeer('peer-asterisk-dialog');
  let gw: GatewayProcess | undefined;
  try {
    gw = await trunkGateway(peer, {
      name: 'pbx1',
      profile: 'asterisk',
      credentials: { username: TRUNK_USER, password: TRUNK_PASSWORD },
      watch: { event: 'dialog' },
    });
    await peer.run.waitForLogLines(1, 20_000, 'peer subscribed 1001');
    t.pass('the gateway subscribed to 1001 at the peer and answered its digest challenge');

    const presence = await startWatcher(gw.port, 'u1', '1001', 'presence');
    const dialog = await startWatcher(gw.port, 'u1', '1001', 'dialog');
    try {
      const d0 = await dialog.waitFor(() => true, 10_000, 'initial NOTIFY');
      const p0 = await presence.waitFor(() => true, 10_000, 'initial NOTIFY');
      const dRing = await dialog.waitFor(isEarly, 20_000, 'early dialog while the peer rings', d0 - 1);
      const pBusy = await presence.waitFor(isOnThePhone, 20_000, 'on-the-phone while ringing or in a call', p0 - 1);
      const dCall = await dialog.waitFor(isConfirmed, 20_000, 'confirmed dialog in the call', dRing);
      await peer.run.waitForLogLines(1, 20_000, 'peer idle');
      const dIdle = await dialog.waitFor(hasNoLiveDialog, 20_000, 'no live dialog when idle again', dCall);
      const pIdle = await presence.waitFor(isIdlePresence, 20_000, 'idle presence again', pBusy);
      t.ok(dRing < dCall && dCall < dIdle, 'dialog watcher: early, then confirmed, then idle');
      t.ok(pIdle > pBusy, 'presence watcher: on the phone, then idle');
      t.match(presence.lines()[pBusy], /sub=active/);
    } finally {
      const [rp, rd] = await Promise.all([presence.stop(), dialog.stop()]);
      t.equal(rp.errors.trim(), '', 'presence watcher: no unexpected messages');
      t.equal(rd.errors.trim(), '', 'dialog watcher: no unexpected messages');
    }
    t.same(errorRecords(gw), [], 'the gateway logged no errors');

    await gw.stop();
    const result = await peer.run.done;
    t.ok(result.logs?.includes('peer unsubscribed'), 'the gateway ended its subscription at the peer on shutdown');
    if (result.code !== 0) t.comment(describeSipp(result));
    t.equal(result.code, 0, 'the peer scenario ran to its end (auth verified, every NOTIFY answered)');
  } finally {
    await gw?.stop();
    peer.run.kill();
  }
});

t.test('CUCM peer: presence watch, alerting / on the phone / DND / idle reach a Cisco phone and a dialog watcher', async (t) => {
  assertSippInstalled();
  const peer = await startPeer('peer-cucm-presence');
  let gw: GatewayProcess | undefined;
  try {
    gw = await trunkGateway(peer, { name: 'cucm', profile: 'cisco', watch: { event: 'presence' } });
    await peer.run.waitForLogLines(1, 20_000, 'peer subscribed 1001');
    t.pass('the gateway subscribed to 1001 at the peer');

    const phoneRun = await startSipp({
      scenario: 'peer-cucm-phone-watch',
      gatewayPort: gw.port,
      transport: 'u1',
      service: '1001',
      traceLogs: true,
      timeoutSec: 90,
    });
    const phone = (): string[] => phoneRun.logLines().filter((l) => l.startsWith('notify '));
    const dialog = await startWatcher(gw.port, 'u1', '1001', 'dialog');
    try {
      const p0 = await waitLine(phone, () => true, -1, 'Cisco phone: initial NOTIFY');
      t.match(phone()[p0], /empty=rpid:activities\//, 'the Cisco User-Agent gets the Cisco flavor (empty activities when idle)');
      const lit = (l: string): boolean => /act=(ce:alerting|rpid:on-the-phone)/.test(l);
      const pRing = await waitLine(phone, lit, p0 - 1, 'Cisco phone: lamp lit while ringing');
      const d0 = await dialog.waitFor(() => true, 10_000, 'initial NOTIFY');
      const dBusy = await dialog.waitFor((l) => isEarly(l) || isConfirmed(l), 20_000, 'a live dialog while ringing or in a call', d0 - 1);
      const pCall = await waitLine(phone, (l) => l.includes('act=rpid:on-the-phone'), pRing - 1, 'Cisco phone: on-the-phone in the call');
      const pIdle = await waitLine(phone, (l) => l.includes('act= '), pCall, 'Cisco phone: idle after the call');
      const pDnd = await waitLine(phone, (l) => l.includes('act=ce:dnd'), pIdle, 'Cisco phone: ce:dnd');
      const pIdle2 = await waitLine(phone, (l) => l.includes('act= '), pDnd, 'Cisco phone: idle after DND');
      const dIdle = await dialog.waitFor(hasNoLiveDialog, 20_000, 'no live dialog after the call', dBusy);
      t.ok(pRing <= pCall && pCall < pIdle && pIdle < pDnd && pDnd < pIdle2, 'phone: lit, on the phone, idle, DND, idle');
      t.ok(dIdle > dBusy, 'dialog watcher: live dialog, then idle');
    } finally {
      phoneRun.kill();
      const [rp, rd] = await Promise.all([phoneRun.done, dialog.stop()]);
      t.equal(rp.errors.trim(), '', 'Cisco phone: no unexpected messages');
      t.equal(rd.errors.trim(), '', 'dialog watcher: no unexpected messages');
    }
    t.same(errorRecords(gw), [], 'the gateway logged no errors');

    await gw.stop();
    const result = await peer.run.done;
    t.ok(result.logs?.includes('peer unsubscribed'), 'the gateway ended its subscription at the peer on shutdown');
    if (result.code !== 0) t.comment(describeSipp(result));
    t.equal(result.code, 0, 'the peer scenario ran to its end (every NOTIFY answered)');
  } finally {
    await gw?.stop();
    peer.run.kill();
  }
});
