/**
 * Browser consoles end to end (RFC 7118): SIP.js running in Node, with the
 * `ws` package as its WebSocket, subscribes at the gateway process over WS
 * (presence) and WSS (dialog) and sees a Teams call in the Graph simulator
 * start and end.
 */
import t from 'tap';
import WebSocket from 'ws';
import { Subscriber, SubscriptionState, UserAgent, type Notification } from 'sip.js';
import { errorRecords, type GatewayProcess, type LogRecord } from '../helpers/gateway-process.js';
import { eventually, startTeamsEnv, startTeamsGateway, type TeamsEnv } from '../helpers/teams-gateway.js';

let env: TeamsEnv | undefined;
let gw: GatewayProcess | undefined;
const ports = { ws: 0, wss: 0 };

/** SIP.js opens `new WebSocket(url, "sip")`: the `ws` client, trusting the test CA for wss. */
const globals = globalThis as { WebSocket?: unknown };
const originalWebSocket = globals.WebSocket;

function listening(records: LogRecord[], transport: string): number {
  const r = records.find((x) => x['msg'] === 'sip listening' && x['transport'] === transport);
  return typeof r?.['port'] === 'number' ? r['port'] : 0;
}

t.before(async () => {
  env = await startTeamsEnv();
  const e = env;
  const caPem = e.sim.caPem;
  globals.WebSocket = class TestWebSocket extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, { ca: caPem });
    }
  };
  // poll every 60 s: within this test a change can only arrive by webhook
  const started = await startTeamsGateway(e, {
    stateDir: await e.newStateDir(),
    pollIntervalSec: 60,
    overrides: {
      sip: {
        listen: [
          { transport: 'ws', address: '127.0.0.1', port: 0 },
          { transport: 'wss', address: '127.0.0.1', port: 0, path: '/sip', tls: { certPath: e.certPath, keyPath: e.keyPath } },
        ],
      },
    },
  });
  gw = started.gw;
  ports.ws = listening(gw.records(), 'ws');
  ports.wss = listening(gw.records(), 'wss');
});

t.teardown(async () => {
  globals.WebSocket = originalWebSocket;
  await gw?.stop();
  await env?.close();
});

interface Console {
  ua: UserAgent;
  subscriber: Subscriber;
  /** NOTIFY bodies in arrival order */
  bodies: string[];
  states: SubscriptionState[];
  waitFor(match: (body: string) => boolean, after: number, what: string): Promise<number>;
  close(): Promise<void>;
}

/** A SIP.js user agent subscribed to `user`'s `event` package at `server`. */
async function console(server: string, user: string, event: 'presence' | 'dialog'): Promise<Console> {
  const ua = new UserAgent({
    uri: UserAgent.makeURI('sip:console@demo.presence-gateway.local'),
    transportOptions: { server, connectionTimeout: 5 },
    logLevel: 'error',
    logBuiltinEnabled: false,
    noAnswerTimeout: 10,
  });
  await ua.start();
  const target = UserAgent.makeURI(`sip:${user}@demo.presence-gateway.local`);
  if (target === undefined) throw new Error('bad target URI');
  const accept = event === 'presence' ? 'application/pidf+xml' : 'application/dialog-info+xml';
  const subscriber = new Subscriber(ua, target, event, { expires: 600, extraHeaders: [`Accept: ${accept}`] });
  const bodies: string[] = [];
  const states: SubscriptionState[] = [];
  subscriber.delegate = {
    onNotify: (n: Notification) => {
      bodies.push(n.request.body);
      void n.accept();
    },
  };
  subscriber.stateChange.addListener((s) => states.push(s));
  await subscriber.subscribe();
  return {
    ua,
    subscriber,
    bodies,
    states,
    async waitFor(match, after, what) {
      return eventually(
        () => bodies.findIndex((b, i) => i > after && match(b)),
        (i) => i >= 0,
        15_000,
        `${event} at ${server}: ${what} (bodies: ${JSON.stringify(bodies)})`,
      );
    },
    async close() {
      if (subscriber.state !== SubscriptionState.Terminated) await subscriber.unsubscribe().catch(() => undefined);
      await ua.stop();
    },
  };
}

const onThePhone = (b: string): boolean => /on-the-phone/.test(b);
const idlePresence = (b: string): boolean => /<(\w+:)?basic>open</.test(b) && !onThePhone(b);
const confirmed = (b: string): boolean => /<(\w+:)?state[^>]*>confirmed</.test(b);
const noLiveDialog = (b: string): boolean => /dialog-info/.test(b) && !/<(\w+:)?state[^>]*>(confirmed|early|trying|proceeding)</.test(b);

t.test('the gateway listens on ws and wss', async (t) => {
  t.ok(ports.ws > 0, `ws port ${ports.ws}`);
  t.ok(ports.wss > 0, `wss port ${ports.wss}`);
});

t.test('SIP.js over WS (presence) and WSS (dialog) sees anna\'s Teams call start and end', async (t) => {
  const sim = env!.sim;
  const presence = await console(`ws://127.0.0.1:${ports.ws}`, 'anna', 'presence');
  const dialog = await console(`wss://127.0.0.1:${ports.wss}/sip`, 'anna', 'dialog');
  try {
    await eventually(() => presence.states.includes(SubscriptionState.Subscribed), (v) => v, 10_000, 'presence subscribed');
    const p0 = await presence.waitFor(() => true, -1, 'initial NOTIFY');
    const d0 = await dialog.waitFor(() => true, -1, 'initial NOTIFY');
    t.ok(idlePresence(presence.bodies[p0]!), 'first presence NOTIFY: open, not on the phone');
    t.match(presence.bodies[p0], /entity="sip:anna@demo\.presence-gateway\.local"/, 'PIDF of anna');
    t.ok(noLiveDialog(dialog.bodies[d0]!), 'first dialog NOTIFY: no live dialog');

    const during = sim.control.call('anna');
    t.equal(during.activity, 'InACall', 'the simulator shows the call');
    const p1 = await presence.waitFor(onThePhone, p0, 'on-the-phone');
    const d1 = await dialog.waitFor(confirmed, d0, 'confirmed dialog');
    t.ok(p1 > p0 && d1 > d0, 'the call arrives after the initial state');

    sim.control.endCall('anna');
    const p2 = await presence.waitFor(idlePresence, p1, 'idle again');
    const d2 = await dialog.waitFor(noLiveDialog, d1, 'no live dialog');
    t.ok(p2 > p1 && d2 > d1, 'the hang-up arrives after the call');
    t.equal(presence.subscriber.state, SubscriptionState.Subscribed, 'the WS subscription is still up');
    t.equal(dialog.subscriber.state, SubscriptionState.Subscribed, 'the WSS subscription is still up');
  } finally {
    await Promise.all([presence.close(), dialog.close()]);
  }
  t.ok(presence.states.includes(SubscriptionState.Terminated), 'unsubscribed');
});

t.test('the changes came by webhook, no errors logged, the NOTIFYs went over the WebSocket connections', async (t) => {
  const c = env!.sim.control.counters();
  t.ok(c.notifications.delivered >= 2, `the simulator delivered notifications (${c.notifications.delivered})`);
  t.same(errorRecords(gw!), [], 'no log records at level error or above');
  const failed = gw!.records().filter((r) => r['msg'] === 'NOTIFY failed, ending subscription');
  t.same(failed, [], 'no NOTIFY failed');
});
