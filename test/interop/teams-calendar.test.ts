/**
 * Calendar end to end: a meeting in a Teams user's calendar in the Graph
 * simulator (Teams shows InAMeeting) reaches a SIP watcher of the gateway
 * process as RPID `until` on the activities and the note "In a meeting until
 * HH:MM" in graph.calendar.timeZone, read through getSchedule with the
 * least privileged application permission Calendars.ReadBasic.All.
 */
import t from 'tap';
import { DEMO_APP } from '../../src/graph-simulator/seed.js';
import { errorRecords, type GatewayProcess } from '../helpers/gateway-process.js';
import { TcpWatcher, type WatcherNotify } from '../helpers/tcp-watcher.js';
import { startTeamsEnv, startTeamsGateway, type TeamsEnv } from '../helpers/teams-gateway.js';

const WITH_CALENDAR = { ...DEMO_APP, applicationPermissions: [...(DEMO_APP.applicationPermissions ?? []), 'Calendars.ReadBasic.All'] };

let env: TeamsEnv | undefined;
let gw: GatewayProcess | undefined;
t.teardown(async () => {
  await gw?.stop();
  await env?.close();
});

async function notifyWhere(w: TcpWatcher, test: (n: WatcherNotify) => boolean, timeoutMs: number): Promise<WatcherNotify> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const hit = w.notifies.find(test);
    if (hit !== undefined) return hit;
    const left = until - Date.now();
    if (left <= 0) throw new Error(`no such NOTIFY; seen: ${JSON.stringify(w.notifies.map((n) => n.body.slice(0, 600)))}`);
    await w.waitForNotifies(w.notifies.length + 1, left).catch(() => undefined);
  }
}

t.test('a calendar meeting shows as RPID until and "In a meeting until HH:MM" to a SIP watcher', async (t) => {
  env = await startTeamsEnv({ apps: [WITH_CALENDAR] });
  const meeting = env.sim.control.meeting('anna', 45);
  t.equal(meeting.presence.activity, 'InAMeeting');
  gw = (await startTeamsGateway(env, { stateDir: await env.newStateDir(), graph: { calendar: { enabled: true, timeZone: 'Europe/Berlin' } } })).gw;
  const w = await TcpWatcher.start({ gatewayPort: gw.port, user: '1001', event: 'presence', name: 'console' });
  t.teardown(() => w.close());
  const sub = await w.subscribe();
  t.equal(sub.status, 200);

  const end = new Date(Math.floor(Date.parse(meeting.end) / 1000) * 1000);
  const until = end.toISOString().replace('.000Z', 'Z');
  const hhmm = end.toLocaleTimeString('en-GB', { timeZone: 'Europe/Berlin', hour: '2-digit', minute: '2-digit', hour12: false });
  const n = await notifyWhere(w, (x) => x.body.includes('until='), 20_000);
  t.match(n.body, new RegExp(`<rpid:activities until="${until}"><rpid:meeting/></rpid:activities>`));
  t.ok(n.body.includes(`In a meeting until ${hhmm}`), `the note with the end in Europe/Berlin (${hhmm})`);
  t.same(errorRecords(gw), [], 'no errors logged');
});
