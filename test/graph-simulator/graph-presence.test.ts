import t from 'tap';
import { ManualClock } from '../../src/graph-simulator/clock.js';
import { newGuid } from '../../src/graph-simulator/ids.js';
import { graphFailure, harness } from './helpers.js';

const MIN = 60_000;

t.test('Graph presence read and write', async (t) => {
  const clock = new ManualClock();
  const h = await harness({ clock });
  t.teardown(() => h.close());
  const token = await h.appToken();
  const graph = h.graph(async () => token);
  const { control } = h.sim;
  const anna = control.user('anna');
  const ben = control.user('ben');
  const appId = h.sim.demoApp.clientId;
  const presence = async (id: string) => (await graph.api(`/users/${id}/presence`).get()) as { availability: string; activity: string; sequenceNumber: string };
  const setPresence = (id: string, body: Record<string, unknown>) => graph.api(`/users/${id}/presence/setPresence`).post({ sessionId: appId, ...body });

  await t.test('reads: /users/{id}/presence, /communications/presences/{id}, getPresencesByUserId', async (t) => {
    control.call('anna');
    const p = await presence(anna.id);
    t.equal(p.availability, 'Busy');
    t.equal(p.activity, 'InACall');
    const c = (await graph.api(`/communications/presences/${anna.id}`).get()) as { id: string; activity: string };
    t.equal(c.id, anna.id);
    t.equal(c.activity, 'InACall');
    const batch = (await graph.api('/communications/getPresencesByUserId').post({ ids: [anna.id, ben.id] })) as { value: Array<{ id: string; availability: string }> };
    t.same(batch.value.map((v) => `${v.id}:${v.availability}`).sort(), [`${anna.id}:Busy`, `${ben.id}:Offline`].sort());
    control.endCall('anna');
  });

  await t.test('getPresencesByUserId takes at most 650 ids', async (t) => {
    const ids650 = Array.from({ length: 650 }, () => newGuid());
    const ok = (await graph.api('/communications/getPresencesByUserId').post({ ids: ids650 })) as { value: unknown[] };
    t.same(ok.value, [], 'unknown ids are left out');
    const tooMany = await graphFailure(graph.api('/communications/getPresencesByUserId').post({ ids: [...ids650, newGuid()] }));
    t.equal(tooMany.statusCode, 400);
  });

  await t.test('setPresence accepts the documented pairs only', async (t) => {
    for (const [availability, activity] of [
      ['Available', 'Available'],
      ['Busy', 'InACall'],
      ['Busy', 'InAConferenceCall'],
      ['Away', 'Away'],
      ['DoNotDisturb', 'Presenting'],
    ]) {
      await setPresence(ben.id, { availability, activity, expirationDuration: 'PT1H' });
      const p = await presence(ben.id);
      t.equal(`${p.availability}/${p.activity}`, `${availability}/${activity}`);
    }
    for (const [availability, activity] of [
      ['Busy', 'Busy'],
      ['Available', 'InAMeeting'],
      ['Away', 'OutOfOffice'],
      ['DoNotDisturb', 'DoNotDisturb'],
      ['Offline', 'OffWork'],
    ]) {
      const f = await graphFailure(setPresence(ben.id, { availability, activity }));
      t.equal(f.statusCode, 400, `${availability}/${activity} refused`);
    }
    const short = await graphFailure(setPresence(ben.id, { availability: 'Busy', activity: 'InACall', expirationDuration: 'PT4M' }));
    t.equal(short.statusCode, 400, 'below PT5M');
    const long = await graphFailure(setPresence(ben.id, { availability: 'Busy', activity: 'InACall', expirationDuration: 'PT4H1M' }));
    t.equal(long.statusCode, 400, 'above PT4H');
    const otherSession = await graphFailure(graph.api(`/users/${ben.id}/presence/setPresence`).post({ sessionId: newGuid(), availability: 'Busy', activity: 'InACall' }));
    t.equal(otherSession.statusCode, 400, 'the session id is the caller app id');
  });

  await t.test('clearPresence: 200 for the app session, then 404', async (t) => {
    await graph.api(`/users/${ben.id}/presence/clearPresence`).post({ sessionId: appId });
    t.equal((await presence(ben.id)).availability, 'Offline');
    const again = await graphFailure(graph.api(`/users/${ben.id}/presence/clearPresence`).post({ sessionId: appId }));
    t.equal(again.statusCode, 404);
  });

  await t.test('aggregation with the Teams client; the app session is visible through the control API', async (t) => {
    const chiara = control.user('chiara');
    control.signIn('chiara');
    await setPresence(chiara.id, { availability: 'Busy', activity: 'InACall', expirationDuration: 'PT10M' });
    let p = await presence(chiara.id);
    t.equal(`${p.availability}/${p.activity}`, 'Busy/InACall', 'app Busy beats client Available');
    const sessions = control.sessions('chiara');
    t.same(
      sessions.map((s) => `${s.kind}:${s.sessionId}:${s.availability}/${s.activity}`).sort(),
      [`app:${appId}:Busy/InACall`, 'client:teams-client:Available/Available'],
    );
    control.present('chiara');
    p = await presence(chiara.id);
    t.equal(`${p.availability}/${p.activity}`, 'DoNotDisturb/Presenting');
    control.stopPresenting('chiara');
    control.dnd('chiara');
    p = await presence(chiara.id);
    t.equal(`${p.availability}/${p.activity}`, 'DoNotDisturb/DoNotDisturb', 'user preferred DND wins');
    control.available('chiara');
    const seqBefore = (await presence(chiara.id)).sequenceNumber;
    clock.advance(10 * MIN);
    p = await presence(chiara.id);
    t.equal(`${p.availability}/${p.activity}`, 'Available/Available', 'the app session expired after PT10M');
    t.ok(p.sequenceNumber > seqBefore, 'sequence number moved forward');
    control.signOut('chiara');
    t.equal((await presence(chiara.id)).availability, 'Offline');
  });

  await t.test('an Available app session fades unless refreshed', async (t) => {
    const dmitri = control.user('dmitri');
    await setPresence(dmitri.id, { availability: 'Available', activity: 'Available', expirationDuration: 'PT1H' });
    clock.advance(5 * MIN);
    let p = await presence(dmitri.id);
    t.equal(`${p.availability}/${p.activity}`, 'Available/AvailableInactive', 'the documented first fade');
    clock.advance(5 * MIN);
    p = await presence(dmitri.id);
    t.equal(`${p.availability}/${p.activity}`, 'Away/Away');
    await setPresence(dmitri.id, { availability: 'Available', activity: 'Available', expirationDuration: 'PT1H' });
    t.equal((await presence(dmitri.id)).availability, 'Available');
  });

  await t.test('user preferred presence and status message', async (t) => {
    const elif = control.user('elif');
    control.signIn('elif');
    await graph.api(`/users/${elif.id}/presence/setUserPreferredPresence`).post({ availability: 'Offline', activity: 'OffWork' });
    t.equal((await presence(elif.id)).activity, 'OffWork');
    const bad = await graphFailure(graph.api(`/users/${elif.id}/presence/setUserPreferredPresence`).post({ availability: 'Busy', activity: 'InACall' }));
    t.equal(bad.statusCode, 400);
    await graph.api(`/users/${elif.id}/presence/clearUserPreferredPresence`).post({});
    t.equal((await presence(elif.id)).availability, 'Available');
    await graph.api(`/users/${elif.id}/presence/setStatusMessage`).post({ statusMessage: { message: { content: 'On the phone (PBX)', contentType: 'text' } } });
    const p = (await graph.api(`/users/${elif.id}/presence`).get()) as { statusMessage: { message: { content: string } } | null };
    t.equal(p.statusMessage?.message.content, 'On the phone (PBX)');
  });

  await t.test('setStatusMessage: text only; expiryDateTime as a local dateTime without suffix plus its timeZone', async (t) => {
    const dmitri = control.user('dmitri');
    const post = (statusMessage: unknown) => graph.api(`/users/${dmitri.id}/presence/setStatusMessage`).post({ statusMessage });
    const html = await graphFailure(post({ message: { content: '<b>busy</b>', contentType: 'html' } }));
    t.equal(html.statusCode, 400, 'contentType html is refused');
    const at = clock.now() + 90 * MIN;
    const iso = new Date(at).toISOString();
    for (const dateTime of [iso, iso.replace('Z', '+00:00')]) {
      const zoned = await graphFailure(post({ message: { content: 'x', contentType: 'text' }, expiryDateTime: { dateTime, timeZone: 'UTC' } }));
      t.equal(zoned.statusCode, 400, `a dateTime with a zone suffix (${dateTime.slice(-6)}) is refused`);
    }
    await post({ message: { content: 'Back at four', contentType: 'text' }, expiryDateTime: { dateTime: iso.replace('Z', ''), timeZone: 'UTC' } });
    let p = control.presence('dmitri');
    t.equal(p.statusMessage?.message?.content, 'Back at four');
    t.equal(p.statusMessage?.expiryDateTime?.timeZone, 'UTC');
    t.equal(Date.parse(`${p.statusMessage?.expiryDateTime?.dateTime ?? ''}Z`), at, 'kept in UTC');
    // the docs' own example: a local time in a Windows zone (Pacific: UTC-8 in January)
    await post({ message: { content: 'Pacific', contentType: 'text' }, expiryDateTime: { dateTime: '2031-01-15T09:30:00.0000000', timeZone: 'Pacific Standard Time' } });
    p = control.presence('dmitri');
    t.equal(p.statusMessage?.expiryDateTime?.dateTime, '2031-01-15T17:30:00.0000000', 'converted from the given zone');
    const zone = await graphFailure(post({ message: { content: 'x', contentType: 'text' }, expiryDateTime: { dateTime: '2031-01-15T09:30:00', timeZone: 'Mars/Olympus' } }));
    t.equal(zone.statusCode, 400, 'an unknown timeZone is refused');
  });

  await t.test('writes need Presence.ReadWrite.All; unknown users are 404', async (t) => {
    const clientId = newGuid();
    control.registerApp({ clientId, secrets: ['s'], applicationPermissions: ['Presence.Read.All'] });
    const { ConfidentialClientApplication } = await import('@azure/msal-node');
    const { msalNetworkClient } = await import('./tls-clients.js');
    const net = msalNetworkClient(h.sim.caPem);
    const r = await new ConfidentialClientApplication({ auth: { clientId, clientSecret: 's', authority: h.sim.authorityUrl, knownAuthorities: [h.sim.host] }, system: { networkClient: net } }).acquireTokenByClientCredential({ scopes: ['https://graph.microsoft.com/.default'] });
    net.close();
    const readOnly = h.graph(async () => r?.accessToken ?? '');
    t.equal((await readOnly.api(`/users/${anna.id}/presence`).get() as { id: string }).id, anna.id, 'reads work');
    const f = await graphFailure(readOnly.api(`/users/${anna.id}/presence/setPresence`).post({ sessionId: clientId, availability: 'Busy', activity: 'InACall' }));
    t.equal(f.statusCode, 403);
    const missing = await graphFailure(graph.api(`/users/${newGuid()}/presence`).get());
    t.equal(missing.statusCode, 404);
  });
});
