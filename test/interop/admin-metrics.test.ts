/**
 * The gateway's own /metrics, /readyz and admin API wired in app.ts, in demo
 * mode (built-in Graph simulator): Graph request statuses, a Teams call
 * reaching a SIP watcher (Teams-to-SIP latency), a PBX call reaching Teams
 * (SIP-to-Teams latency), NOTIFY and PUBLISH counts.
 */
import t from 'tap';
import { createSocket } from 'node:dgram';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway } from '../../src/app.js';
import { configSchema } from '../../src/config/schema.js';
import { silentLogger } from '../../src/util/logger.js';
import { freePort } from '../helpers/ports.js';
import { udpRequest } from '../helpers/sip-udp.js';
import { appSession, eventually, TEAMS_USERS } from '../helpers/teams-gateway.js';

const TOKEN = 'metrics-test-admin-token-0123456789abcdef';

function get(url: string, token?: string, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, rejectUnauthorized: false, headers: token !== undefined ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function value(text: string, line: string): number {
  for (const l of text.split('\n')) if (l.startsWith(line + ' ')) return Number(l.slice(line.length + 1));
  return 0;
}

/** A SIP watcher on UDP that answers every NOTIFY 200 and keeps their bodies. */
async function udpWatcher(gatewayPort: number, user: string) {
  const socket = createSocket('udp4');
  const bodies: string[] = [];
  await new Promise<void>((r) => socket.bind({ address: '127.0.0.1', port: 0 }, () => r()));
  const local = socket.address().port;
  socket.on('message', (data) => {
    const text = data.toString('utf8');
    if (!text.startsWith('NOTIFY ')) return;
    const head = text.slice(0, text.indexOf('\r\n\r\n'));
    bodies.push(text.slice(head.length + 4));
    const keep = head.split('\r\n').filter((l) => /^(via|from|to|call-id|cseq):/i.test(l));
    socket.send(Buffer.from(['SIP/2.0 200 OK', ...keep, 'Content-Length: 0', '', ''].join('\r\n')), gatewayPort, '127.0.0.1');
  });
  const lines = [
    `SUBSCRIBE sip:${user}@127.0.0.1:${gatewayPort} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${local};branch=z9hG4bK-admin-metrics-1;rport`,
    'Max-Forwards: 70',
    `From: <sip:watcher@127.0.0.1>;tag=w1`,
    `To: <sip:${user}@127.0.0.1>`,
    'Call-ID: admin-metrics-watch@127.0.0.1',
    'CSeq: 1 SUBSCRIBE',
    `Contact: <sip:watcher@127.0.0.1:${local}>`,
    'Event: presence',
    'Accept: application/pidf+xml',
    'Expires: 600',
    'Content-Length: 0',
    '',
    '',
  ];
  socket.send(Buffer.from(lines.join('\r\n')), gatewayPort, '127.0.0.1');
  return { bodies, close: () => new Promise<void>((r) => socket.close(() => r())) };
}

t.test('metrics, readiness and the admin API of the running gateway', async (t) => {
  const stateDir = await mkdtemp(join(tmpdir(), 'pg-admin-metrics-'));
  const config = configSchema.parse({
    sip: { listen: [{ transport: 'udp', address: '127.0.0.1', port: 0 }], domain: 'demo.presence-gateway.local' },
    http: { address: '127.0.0.1', port: await freePort() },
    graphSimulator: { port: await freePort(), dir: join(stateDir, 'sim') },
    admin: { token: TOKEN },
    stateDir,
    users: TEAMS_USERS.map((u) => ({ id: u.id, displayName: u.displayName, extension: u.extension })),
  });
  const gw = await startGateway(config, silentLogger());
  t.teardown(async () => {
    await gw.stop();
    await rm(stateDir, { recursive: true, force: true });
  });
  const origin = gw.http.origin;
  const sim = gw.simulator!;
  const sipPort = gw.stack.localEndpoint('udp')!.port;
  await gw.graph?.idle();

  const ready = await get(`${origin}/readyz`);
  t.equal(ready.status, 200, ready.body);
  t.same(JSON.parse(ready.body), { ready: true, sip: true, store: true, graph: true }, 'SIP listeners, the store and Graph auth are up');

  const watcher = await udpWatcher(sipPort, 'anna');
  t.teardown(() => watcher.close());
  await eventually(() => watcher.bodies.length, (n) => n >= 1, 5000, 'the initial NOTIFY');
  sim.control.call('anna');
  await eventually(() => watcher.bodies.some((b) => b.includes('on-the-phone')), Boolean, 20_000, 'the Teams call reaches the watcher');

  // a PBX call of ben's reaches Teams
  const dialog =
    '<?xml version="1.0"?><dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="sip:ben@demo.presence-gateway.local">' +
    '<dialog id="d1" call-id="c1" local-tag="l1" remote-tag="r1" direction="initiator"><state>confirmed</state></dialog></dialog-info>';
  const published = await udpRequest({
    method: 'PUBLISH',
    user: 'ben',
    port: sipPort,
    headers: ['Event: dialog', 'Expires: 600'],
    contentType: 'application/dialog-info+xml',
    body: dialog,
  });
  t.equal(published.status, 200);
  await eventually(() => appSession(sim, 'ben')?.activity, (a) => a === 'InACall', 20_000, "ben's PBX call in Teams");

  let text = '';
  const scrape = async (): Promise<string> => {
    const m = await get(`${origin}/metrics`);
    t.equal(m.status, 200);
    return m.body;
  };
  const end = Date.now() + 10_000;
  do {
    text = await scrape();
    if (value(text, 'teams_to_sip_seconds_count') >= 1 && value(text, 'sip_to_teams_seconds_count') >= 1) break;
    await new Promise((r) => setTimeout(r, 200));
  } while (Date.now() < end);
  t.ok(value(text, 'graph_requests_total{status="200"}') > 0, 'Graph requests by status');
  t.ok(value(text, 'graph_requests_total{status="201"}') > 0, 'the subscription was created (201)');
  t.ok(value(text, 'notify_sent_total{event="presence"}') >= 2, 'NOTIFYs answered by the watcher');
  t.equal(value(text, 'subscriptions{event="presence",state="active"}'), 1);
  t.equal(value(text, 'publish_total{event="dialog",result="created"}'), 1, 'the PUBLISH');
  t.ok(value(text, 'webhook_deliveries_total{result="accepted"}') >= 1, 'Graph delivered to the webhook');
  t.equal(value(text, 'teams_to_sip_seconds_count'), 1, 'the Teams call was timed to the NOTIFY');
  t.ok(value(text, 'teams_to_sip_seconds_sum') < 20);
  t.ok(value(text, 'sip_to_teams_seconds_count') >= 1, 'the PBX call was timed to Graph accepting it');
  t.match(text, /process_resident_memory_bytes \d+/, 'process metrics too');

  const users = await get(`${origin}/api/users`, TOKEN);
  t.equal(users.status, 200);
  const rows = (JSON.parse(users.body) as { users: Array<{ id: string; watchersSee: { state: string } }> }).users;
  t.equal(rows.find((u) => u.id === 'anna')?.watchersSee.state, 'on-the-phone');
  t.equal(rows.find((u) => u.id === 'ben')?.watchersSee.state, 'on-the-phone');
  const detail = JSON.parse((await get(`${origin}/api/users/anna`, TOKEN)).body) as { watchers: Record<string, number>; history: unknown[] };
  t.same(detail.watchers, { presence: 1 }, 'the watcher is counted');
  t.ok(detail.history.length >= 1, 'and the history kept');
  const before = watcher.bodies.length;
  const resync = await get(`${origin}/api/users/anna/resync`, TOKEN, 'POST');
  t.equal(resync.status, 200, resync.body);
  t.match(JSON.parse(resync.body), { ok: true, detail: /Teams presence read again; current state sent to 1 watcher$/ });
  await eventually(() => watcher.bodies.length, (n) => n > before, 5000, 'the resync NOTIFY');
  t.equal((await get(`${origin}/api/users`)).status, 401, 'the admin API needs the token');
});
