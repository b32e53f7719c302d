import t from 'tap';
import { request as httpRequest } from 'node:http';
import Fastify, { type FastifyInstance } from 'fastify';
import { adminApi } from '../../src/http/admin.js';
import type { UserDetail, UserRow } from '../../src/http/rows.js';
import { fakeSource, TOKEN, type FakeSource } from './fake-source.js';

const AUTH = { authorization: `Bearer ${TOKEN}` };

async function build(src: FakeSource, extra: { heartbeatMs?: number; statusMs?: number } = {}): Promise<FastifyInstance> {
  const app = Fastify();
  await app.register(adminApi, { prefix: '/api', source: src, token: TOKEN, ...extra });
  await app.ready();
  return app;
}

t.test('every route needs the bearer token: none or a wrong one gets 401 JSON', async (t) => {
  const src = fakeSource();
  const app = await build(src);
  t.teardown(() => app.close());
  for (const [method, url] of [
    ['GET', '/api/users'],
    ['GET', '/api/users/anna'],
    ['GET', '/api/trunks'],
    ['GET', '/api/graph/subscriptions'],
    ['POST', '/api/users/anna/resync'],
    ['GET', '/api/events'],
    ['GET', '/api/nothing-here'],
  ] as const) {
    const none = await app.inject({ method, url });
    t.equal(none.statusCode, 401, `${method} ${url} without a token`);
    t.match(none.headers['www-authenticate'], /^Bearer /);
    t.equal(none.json().error, 'unauthorized');
    const wrong = await app.inject({ method, url, headers: { authorization: `Bearer ${TOKEN}x` } });
    t.equal(wrong.statusCode, 401, `${method} ${url} with a wrong token`);
    t.match(wrong.json().message, /does not match/);
  }
  const shortWrong = await app.inject({ url: '/api/users', headers: { authorization: 'Bearer abc' } });
  t.equal(shortWrong.statusCode, 401, 'a shorter token too');
  const basic = await app.inject({ url: '/api/users', headers: { authorization: `Basic ${TOKEN}` } });
  t.equal(basic.statusCode, 401, 'another scheme does not pass');
  const query = await app.inject({ url: `/api/users?token=${TOKEN}` });
  t.equal(query.statusCode, 401, 'the query token is only for the event stream');
  t.equal(src.resyncs.length, 0, 'nothing ran without the token');
});

t.test('GET /api/users lists both presences, what watchers see and the last change', async (t) => {
  let now = 1_000_000;
  const src = fakeSource({ clock: { now: () => now } });
  const app = await build(src);
  t.teardown(() => app.close());

  now = 2_000_000;
  src.store.setTeams('anna', { availability: 'Busy', activity: 'InACall', at: now });
  now = 3_000_000;
  src.store.setTelephony('ben', { line: 'ringing', dnd: false, calls: [{ id: 'c1', phase: 'early', direction: 'recipient' }], origin: 'trunk:pbx1', at: now });

  const res = await app.inject({ url: '/api/users', headers: AUTH });
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /application\/json/);
  const users = res.json<{ users: UserRow[] }>().users;
  t.same(users.map((u) => u.id), ['anna', 'ben', 'chiara'], 'directory order');
  const [anna, ben, chiara] = users;
  t.same(anna?.teamsPresence, { availability: 'Busy', activity: 'InACall', statusMessage: null, at: 2_000_000 });
  t.equal(anna?.watchersSee.state, 'on-the-phone');
  t.ok(anna?.watchersSee.activities.includes('on-the-phone'));
  t.equal(anna?.watchersSee.calls.length, 1, 'a Teams call shows one (synthetic) dialog');
  t.same(anna?.lastChange, { at: 2_000_000, source: 'teams' });
  t.same(anna?.teams, { userId: '11111111-0000-0000-0000-000000000001', upn: 'anna@contoso.test' });
  t.equal(anna?.extension, '1001');
  t.same(anna?.aors, ['sip:anna@example.test']);
  t.same(ben?.telephony, { line: 'ringing', dnd: false, calls: 1, origin: 'trunk:pbx1', at: 3_000_000 });
  t.equal(ben?.watchersSee.state, 'ringing');
  t.same(ben?.lastChange, { at: 3_000_000, source: 'telephony (trunk:pbx1)' });
  t.equal(chiara?.teams, null, 'chiara is not mapped to Teams');
  t.equal(chiara?.telephony, null);
  t.equal(chiara?.watchersSee.state, 'available');

  const filtered = await app.inject({ url: '/api/users?state=ringing', headers: AUTH });
  t.same(filtered.json<{ users: UserRow[] }>().users.map((u) => u.id), ['ben'], 'filter by state');
  const text = await app.inject({ url: '/api/users?q=ROSSI', headers: AUTH });
  t.same(text.json<{ users: UserRow[] }>().users.map((u) => u.id), ['chiara'], 'filter by text, case-insensitive');
  const ext = await app.inject({ url: '/api/users?q=1002', headers: AUTH });
  t.same(ext.json<{ users: UserRow[] }>().users.map((u) => u.id), ['ben'], 'filter by extension');
  const bad = await app.inject({ url: '/api/users?state=sleeping', headers: AUTH });
  t.equal(bad.statusCode, 400);
  t.match(bad.json().message, /state is one of: available/);
});

t.test('GET /api/users/:id gives detail, history and watcher counts; 404 and 400 otherwise', async (t) => {
  let now = 10_000;
  const src = fakeSource({ clock: { now: () => now }, historySize: 3 });
  const app = await build(src);
  t.teardown(() => app.close());
  const teams = (availability: string, activity: string) => src.store.setTeams('anna', { availability, activity, at: now });
  now = 11_000;
  teams('Busy', 'InACall');
  now = 12_000;
  teams('Available', 'Available');
  now = 13_000;
  src.store.setTelephony('anna', { line: 'in-call', dnd: false, calls: [], origin: 'publish:phone', at: now });
  now = 14_000;
  teams('Away', 'Away');

  const res = await app.inject({ url: '/api/users/anna', headers: AUTH });
  t.equal(res.statusCode, 200);
  const d = res.json<UserDetail>();
  t.same(d.watchers, { presence: 2, dialog: 1 });
  t.equal(d.history.length, 3, 'the ring keeps historySize entries');
  t.same(
    d.history.map((h) => [h.at, h.source, h.state]),
    [
      [12_000, 'teams', 'available'],
      [13_000, 'telephony (publish:phone)', 'on-the-phone'],
      [14_000, 'teams', 'on-the-phone'],
    ],
    'oldest first, each with its cause',
  );
  t.ok(d.history.every((h, i, all) => i === 0 || h.revision > (all[i - 1]?.revision ?? 0)), 'revisions increase');
  t.same(d.lastChange, { at: 14_000, source: 'teams' });

  const unknown = await app.inject({ url: '/api/users/zoe', headers: AUTH });
  t.equal(unknown.statusCode, 404);
  t.match(unknown.json(), { error: 'not found', message: /zoe/ });
  const badId = await app.inject({ url: '/api/users/%3Cscript%3E', headers: AUTH });
  t.equal(badId.statusCode, 400);
  t.equal(badId.json().error, 'bad request');
});

t.test('render, resync, trunks and Graph subscriptions', async (t) => {
  const src = fakeSource();
  const app = await build(src);
  t.teardown(() => app.close());
  src.store.setTeams('ben', { availability: 'Busy', activity: 'InACall', at: 1 });

  const r = await app.inject({ url: '/api/users/ben/render?event=dialog&profile=polycom', headers: AUTH });
  t.equal(r.statusCode, 200);
  t.same(r.json(), { id: 'ben', event: 'dialog', profile: 'polycom', contentType: 'application/dialog-info+xml', body: '<dialog-info entity="sip:ben@example.test" calls="1"/>' });
  const def = await app.inject({ url: '/api/users/ben/render', headers: AUTH });
  t.match(def.json(), { event: 'presence', profile: 'rfc', contentType: 'application/pidf+xml', body: /on-the-phone/ }, 'presence/rfc by default');
  t.same(src.renders.at(-1), { id: 'ben', event: 'presence', profile: 'rfc' });
  const badEvent = await app.inject({ url: '/api/users/ben/render?event=message-summary', headers: AUTH });
  t.equal(badEvent.statusCode, 400);
  t.match(badEvent.json().message, /event is one of: presence, dialog/);
  const badProfile = await app.inject({ url: '/api/users/ben/render?profile=avaya', headers: AUTH });
  t.equal(badProfile.statusCode, 400);
  const rUnknown = await app.inject({ url: '/api/users/zoe/render', headers: AUTH });
  t.equal(rUnknown.statusCode, 404);

  const ok = await app.inject({ method: 'POST', url: '/api/users/anna/resync', headers: AUTH });
  t.equal(ok.statusCode, 200);
  t.same(ok.json(), { id: 'anna', ok: true, detail: 'read anna from Graph again' });
  const notOk = await app.inject({ method: 'POST', url: '/api/users/chiara/resync', headers: AUTH });
  t.equal(notOk.statusCode, 503);
  t.equal(notOk.json().ok, false);
  const rsUnknown = await app.inject({ method: 'POST', url: '/api/users/zoe/resync', headers: AUTH });
  t.equal(rsUnknown.statusCode, 404);
  t.same(src.resyncs, ['anna', 'chiara'], 'resync ran for known users only');

  const trunks = await app.inject({ url: '/api/trunks', headers: AUTH });
  t.same(trunks.json().trunks.map((x: { name: string }) => x.name), ['pbx1', 'cucm']);
  const subs = await app.inject({ url: '/api/graph/subscriptions', headers: AUTH });
  t.match(subs.json(), { configured: true, subscriptions: [{ account: 'svc1', state: 'active', users: 2 }] });
  src.graphInfo = undefined;
  const none = await app.inject({ url: '/api/graph/subscriptions', headers: AUTH });
  t.same(none.json(), { configured: false, subscriptions: [] });

  const status = await app.inject({ url: '/api/status', headers: AUTH });
  const kinds = status.json().connectors.map((c: { kind: string; name: string; ok: boolean | null }) => `${c.kind}:${c.name}:${c.ok}`);
  t.same(kinds, ['trunk:pbx1:true', 'trunk:cucm:false'], 'trunk colours: reachable green, unreachable red');
});

t.test('a source that throws gives 500 JSON without details', async (t) => {
  const src = fakeSource();
  src.trunks = () => {
    throw new Error('secret internal detail');
  };
  const app = await build(src);
  t.teardown(() => app.close());
  const res = await app.inject({ url: '/api/trunks', headers: AUTH });
  t.equal(res.statusCode, 500);
  t.equal(res.json().error, 'internal');
  t.notMatch(res.body, /secret internal detail/);
});

interface SseEvent {
  event: string;
  data: string;
}

/** Open the event stream and collect events and comments. */
function openStream(port: number, path: string): Promise<{ status: number; events: SseEvent[]; comments: string[]; close(): void; waitFor(p: (e: SseEvent) => boolean, ms: number): Promise<SseEvent> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers: { accept: 'text/event-stream' } }, (res) => {
      const events: SseEvent[] = [];
      const comments: string[] = [];
      const waiters = new Set<{ p: (e: SseEvent) => boolean; done: (e: SseEvent) => void }>();
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let i = buf.indexOf('\n\n');
        while (i >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let event = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) comments.push(line);
            else if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data.push(line.slice(6));
          }
          if (data.length > 0) {
            const e = { event, data: data.join('\n') };
            events.push(e);
            for (const w of waiters) if (w.p(e)) { waiters.delete(w); w.done(e); }
          }
          i = buf.indexOf('\n\n');
        }
      });
      resolve({
        status: res.statusCode ?? 0,
        events,
        comments,
        close: () => req.destroy(),
        waitFor: (p, ms) => {
          const seen = events.find(p);
          if (seen !== undefined) return Promise.resolve(seen);
          return new Promise((ok, fail) => {
            const timer = setTimeout(() => fail(new Error(`no matching event within ${ms} ms: ${JSON.stringify(events)}`)), ms);
            waiters.add({ p, done: (e) => { clearTimeout(timer); ok(e); } });
          });
        },
      });
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('GET /api/events streams a user event with the new row on every change, connectors and heartbeats', async (t) => {
  const src = fakeSource();
  const app = await build(src, { heartbeatMs: 50, statusMs: 50 });
  t.teardown(() => app.close());
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;

  const refused = await openStream(port, '/api/events?token=wrong-token-wrong-token-wrong');
  t.equal(refused.status, 401, 'a wrong query token is refused');
  refused.close();

  const s = await openStream(port, `/api/events?token=${encodeURIComponent(TOKEN)}`);
  t.teardown(() => s.close());
  t.equal(s.status, 200);
  const first = await s.waitFor((e) => e.event === 'connectors', 2000);
  t.match(JSON.parse(first.data), { connectors: [{ kind: 'trunk', name: 'pbx1' }] }, 'connectors first');

  src.store.setTeams('anna', { availability: 'Busy', activity: 'InACall', at: 5 });
  const e1 = await s.waitFor((e) => e.event === 'user', 2000);
  const row = JSON.parse(e1.data) as UserRow;
  t.equal(row.id, 'anna');
  t.equal(row.watchersSee.state, 'on-the-phone', 'the row as it is now');

  // a burst for one user within one tick is one event with the final row
  const before = s.events.filter((e) => e.event === 'user').length;
  src.store.setTeams('ben', { availability: 'Away', activity: 'Away', at: 6 });
  src.store.setTeams('ben', { availability: 'DoNotDisturb', activity: 'DoNotDisturb', at: 7 });
  const e2 = await s.waitFor((e) => e.event === 'user' && (JSON.parse(e.data) as UserRow).id === 'ben', 2000);
  t.equal((JSON.parse(e2.data) as UserRow).watchersSee.state, 'dnd');
  await new Promise((r) => setTimeout(r, 120));
  t.equal(s.events.filter((e) => e.event === 'user').length, before + 1, 'coalesced');

  src.trunkList[1]!.reachable = true;
  const e3 = await s.waitFor((e) => e.event === 'connectors' && e.data.includes('"name":"cucm","ok":true'), 2000);
  t.ok(e3, 'a connector change is pushed');
  await new Promise((r) => setTimeout(r, 150));
  t.ok(s.comments.some((c) => c.startsWith(': heartbeat')), 'heartbeat comments');
});

t.test('closing the server ends open event streams', async (t) => {
  const src = fakeSource();
  const app = await build(src);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  const s = await openStream(port, `/api/events?token=${encodeURIComponent(TOKEN)}`);
  await s.waitFor((e) => e.event === 'connectors', 2000);
  await app.close();
  t.pass('app.close() returned with a stream open');
  src.store.setTeams('anna', { availability: 'Busy', activity: 'InACall', at: 5 });
  await new Promise((r) => setTimeout(r, 50));
  t.equal(s.events.filter((e) => e.event === 'user').length, 0, 'nothing sent after close');
  s.close();
});
