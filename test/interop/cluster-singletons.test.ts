/**
 * Singletons move when their holder dies (issue 12, item 5): two gateway
 * nodes on one Redis, both configured with the same trunk (a scripted UDP
 * PBX on 127.0.0.4, in this process) and the same Graph tenant (the Graph
 * simulator, in this process: not on a node, since the node holding the
 * Graph jobs is the one killed). Node a starts first and takes every job:
 * the trunk's upstream SUBSCRIBE comes from it and the Graph subscription
 * names its webhook. Node a is SIGKILLed: the trunk's dialog is refreshed
 * from node b (same Call-ID, higher CSeq) and b answers the PBX's NOTIFYs;
 * the Graph subscription is taken over by b (its webhook), and the
 * simulator never holds two subscriptions.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import t from 'tap';
import { startCluster, until, type TestCluster } from '../helpers/cluster-nodes.js';
import { freePort } from '../helpers/ports.js';
import { assertSippInstalled } from '../helpers/sipp.js';
import { simulatorGraphConfig, startTeamsEnv, TEAMS_USERS, type TeamsEnv } from '../helpers/teams-gateway.js';

const PBX_HOST = '127.0.0.4';

interface Seen {
  from: string;
  callId: string;
  cseq: number;
  at: number;
}

/** A PBX that accepts every SUBSCRIBE (200, then a dialog-info NOTIFY to the subscriber's Contact) and records who sent what. */
interface ScriptedPbx {
  port: number;
  subscribes: Seen[];
  /** 200s to our NOTIFYs, by sender address. */
  notifyAnswers: Array<{ from: string; at: number }>;
  close(): Promise<void>;
}

function header(msg: string, name: string): string | undefined {
  const m = new RegExp(`^${name}:[ \\t]*(.*)$`, 'im').exec(msg);
  return m?.[1]?.trim();
}

async function startPbx(): Promise<ScriptedPbx> {
  const port = await freePort(PBX_HOST);
  const socket: Socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(port, PBX_HOST, resolve));
  const subscribes: Seen[] = [];
  const notifyAnswers: Array<{ from: string; at: number }> = [];
  const tags = new Map<string, string>();
  let notifyCseq = 0;
  const send = (text: string, to: { address: string; port: number }): void => socket.send(Buffer.from(text.replace(/\n/g, '\r\n')), to.port, to.address);
  socket.on('message', (data: Buffer, rinfo: RemoteInfo) => {
    const msg = data.toString('utf8');
    const from = `${rinfo.address}:${rinfo.port}`;
    if (msg.startsWith('SIP/2.0 ')) {
      if (/^CSeq:\s*\d+\s+NOTIFY/im.test(msg) && msg.startsWith('SIP/2.0 200')) notifyAnswers.push({ from, at: Date.now() });
      return;
    }
    const method = /^(\S+)/.exec(msg)?.[1];
    const callId = header(msg, 'Call-ID') ?? '';
    const cseqLine = header(msg, 'CSeq') ?? '';
    const vias = msg.split(/\r?\n/).filter((l) => /^Via:/i.test(l));
    const base = [...vias, `From: ${header(msg, 'From')}`];
    if (method !== 'SUBSCRIBE') {
      // OPTIONS and the like
      send([`SIP/2.0 200 OK`, ...base, `To: ${header(msg, 'To')}`, `Call-ID: ${callId}`, `CSeq: ${cseqLine}`, 'Content-Length: 0', '', ''].join('\n'), rinfo);
      return;
    }
    subscribes.push({ from, callId, cseq: Number(/^(\d+)/.exec(cseqLine)?.[1] ?? 0), at: Date.now() });
    const tag = tags.get(callId) ?? `pbx${tags.size + 1}`;
    tags.set(callId, tag);
    const to = header(msg, 'To') ?? '';
    const toTagged = /;tag=/.test(to) ? to : `${to};tag=${tag}`;
    const expires = header(msg, 'Expires') ?? '600';
    const event = header(msg, 'Event') ?? 'dialog';
    send(
      [`SIP/2.0 200 OK`, ...base, `To: ${toTagged}`, `Call-ID: ${callId}`, `CSeq: ${cseqLine}`, `Contact: <sip:pbx@${PBX_HOST}:${port}>`, `Expires: ${expires}`, 'Content-Length: 0', '', ''].join('\n'),
      rinfo,
    );
    if (expires === '0') return;
    // the NOTIFY goes to the subscriber's Contact (RFC 6665 §4.1.2.1): the node that sent this SUBSCRIBE
    const contact = /<sip:(?:[^@>]*@)?([^:;>]+):(\d+)/.exec(header(msg, 'Contact') ?? header(msg, 'm') ?? '');
    const target = contact !== null ? { address: contact[1]!, port: Number(contact[2]) } : rinfo;
    const entity = /<([^>]+)>/.exec(to)?.[1] ?? `sip:1001@${PBX_HOST}`;
    const body =
      event === 'dialog'
        ? `<?xml version="1.0"?>\n<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="${++notifyCseq}" state="full" entity="${entity}"/>\n`
        : `<?xml version="1.0"?>\n<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${entity}"><tuple id="t"><status><basic>open</basic></status></tuple></presence>\n`;
    send(
      [
        `NOTIFY sip:${target.address}:${target.port} SIP/2.0`,
        `Via: SIP/2.0/UDP ${PBX_HOST}:${port};branch=z9hG4bKpbx${Date.now()}${notifyCseq}`,
        `From: ${toTagged}`,
        `To: ${header(msg, 'From')}`,
        `Call-ID: ${callId}`,
        `CSeq: ${++notifyCseq} NOTIFY`,
        `Event: ${event}`,
        `Subscription-State: active;expires=${expires}`,
        `Contact: <sip:pbx@${PBX_HOST}:${port}>`,
        `Content-Type: ${event === 'dialog' ? 'application/dialog-info+xml' : 'application/pidf+xml'}`,
        `Content-Length: ${Buffer.byteLength(body.replace(/\n/g, '\r\n'))}`,
        '',
        body,
      ].join('\n'),
      target,
    );
  });
  return { port, subscribes, notifyAnswers, close: () => new Promise<void>((resolve) => socket.close(() => resolve())) };
}

let env: TeamsEnv;
let pbx: ScriptedPbx;
let cluster: TestCluster;
/** The most subscriptions the simulator held at any sample. */
let mostSubscriptions = 0;
let sampler: NodeJS.Timeout | undefined;

t.before(async () => {
  assertSippInstalled();
  env = await startTeamsEnv();
  pbx = await startPbx();
  cluster = await startCluster(t, {
    nodes: 2,
    start: false,
    users: TEAMS_USERS,
    overrides: (_name, node) => ({
      sip: { access: { trusted: ['127.0.0.1/32'] } },
      http: { tls: { certPath: env.certPath, keyPath: env.keyPath } },
      trunks: [{ name: 'pbx1', address: `sip:${PBX_HOST}:${pbx.port}`, directions: ['watch'], users: ['anna'], optionsIntervalSec: 0 }],
      // each node's own webhook (a real service puts one address in front of them all)
      graph: simulatorGraphConfig(env, `https://127.0.0.1:${node.httpPort}/graph/notifications`),
    }),
  });
  sampler = setInterval(() => {
    mostSubscriptions = Math.max(mostSubscriptions, env.sim.control.subscriptions().length);
  }, 50);
});
t.teardown(async () => {
  if (sampler !== undefined) clearInterval(sampler);
  await cluster?.stopAll();
  await pbx?.close();
  await env?.close();
});

t.test('node a starts first and runs the trunk\'s upstream side and the Graph subscription', async (t) => {
  const [a, b] = cluster.nodes;
  await a!.start();
  // b starts once a holds every job (a single node takes them all at its start)
  const bStarted = b!.start();
  const first = await until(() => pbx.subscribes[0], (s) => s !== undefined, 10_000, 'a SUBSCRIBE at the PBX');
  t.equal(first!.from.split(':')[0], a!.host, 'the upstream SUBSCRIBE comes from node a');
  const subs = await until(() => env.sim.control.subscriptions(), (s) => s.length === 1, 15_000, 'a Graph subscription');
  t.match(String(subs[0]!['notificationUrl']), `:${a!.httpPort}/`, 'the Graph subscription names node a\'s webhook');
  await bStarted;
  // b holds nothing while a lives: no SUBSCRIBE from it, still one Graph subscription
  await new Promise((r) => setTimeout(r, 500));
  t.notOk(pbx.subscribes.some((s) => s.from.startsWith(`${b!.host}:`)), 'no SUBSCRIBE from node b');
  t.equal(env.sim.control.subscriptions().length, 1, 'one Graph subscription');
});

t.test('node a is SIGKILLed: b refreshes the trunk\'s dialog and takes the Graph subscription over; never two', async (t) => {
  const [a, b] = cluster.nodes;
  const dialog = pbx.subscribes[0]!;
  const lastFromA = Math.max(...pbx.subscribes.filter((s) => s.callId === dialog.callId).map((s) => s.cseq));
  await a!.kill();
  const killedAt = Date.now();
  const moved = await until(
    () => pbx.subscribes.find((s) => s.from.startsWith(`${b!.host}:`)),
    (s) => s !== undefined,
    10_000,
    'a SUBSCRIBE from node b',
  );
  t.ok(moved!.at - killedAt < 10_000, `the trunk's upstream side moved to b in ${moved!.at - killedAt} ms`);
  t.equal(moved!.callId, dialog.callId, 'the same dialog, refreshed in place (same Call-ID)');
  t.ok(moved!.cseq > lastFromA, `with a higher CSeq (${lastFromA} -> ${moved!.cseq})`);
  await until(() => pbx.notifyAnswers.some((n) => n.from.startsWith(`${b!.host}:`) && n.at >= moved!.at), (ok) => ok, 5000, 'b answers the PBX\'s NOTIFY');
  t.pass('node b answers the PBX\'s NOTIFY in that dialog');
  const subs = await until(
    () => env.sim.control.subscriptions(),
    (s) => s.length === 1 && String(s[0]!['notificationUrl']).includes(`:${b!.httpPort}/`),
    15_000,
    'the Graph subscription on node b\'s webhook',
  );
  t.equal(subs.length, 1, `the Graph subscription moved to b in ${Date.now() - killedAt} ms`);
  t.equal(mostSubscriptions, 1, 'the simulator never held two subscriptions');
});
