/**
 * SIP -> Teams end to end: what phones and PBXs PUBLISH to the gateway process
 * becomes the gateway's own presence session in the Graph simulator (session
 * id = the app's client id), and goes away when the publication does.
 */
import t from 'tap';
import { errorRecords } from '../helpers/gateway-process.js';
import { expectSippOk, runSipp } from '../helpers/sipp.js';
import { appSession, eventually, publishForEtag, teamsFixture } from '../helpers/teams-gateway.js';

const { env: E, gw: G } = teamsFixture(t);

const busyInACall = (s: ReturnType<typeof appSession>): boolean => s?.availability === 'Busy' && s.activity === 'InACall';

t.test('PUBLISH on-the-phone sets Busy/InACall in Teams; PUBLISH Expires: 0 clears it', async (t) => {
  const sim = E().sim;
  t.equal(appSession(sim, 'ben'), undefined, 'no gateway session for ben before');
  const { etag } = await publishForEtag({ scenario: 'teams-publish-pidf', gatewayPort: G().port, transport: 'u1', service: '1002' });
  const s = await eventually(() => appSession(sim, 'ben'), busyInACall, 10_000, 'gateway session Busy/InACall');
  t.equal(s?.sessionId, sim.demoApp.clientId, 'the session is the app session of the gateway');
  t.equal(sim.control.presence('ben').activity, 'InACall', "ben's aggregated Teams presence is InACall");

  const removal = await runSipp({
    scenario: 'teams-publish-remove',
    gatewayPort: G().port,
    transport: 'u1',
    service: '1002',
    vars: { event: 'presence', etag },
  });
  expectSippOk(t, removal, 'PUBLISH Expires: 0');
  await eventually(() => appSession(sim, 'ben'), (x) => x === undefined, 10_000, 'gateway session cleared');
  t.not(sim.control.presence('ben').activity, 'InACall', 'ben is no longer in a call in Teams');
});

t.test('dialog-info PUBLISH with a confirmed dialog sets Busy/InACall; terminated clears it (TCP)', async (t) => {
  const sim = E().sim;
  const first = await publishForEtag({
    scenario: 'teams-publish-dialog',
    gatewayPort: G().port,
    transport: 't1',
    service: '1004',
    vars: { dstate: 'confirmed' },
  });
  await eventually(() => appSession(sim, 'dmitri'), busyInACall, 10_000, 'gateway session Busy/InACall');
  t.pass('confirmed dialog -> Busy/InACall');
  await publishForEtag({
    scenario: 'teams-publish-dialog-modify',
    gatewayPort: G().port,
    transport: 't1',
    service: '1004',
    vars: { etag: first.etag, version: '1', dstate: 'terminated' },
  });
  await eventually(() => appSession(sim, 'dmitri'), (x) => x === undefined, 10_000, 'gateway session cleared');
  t.pass('terminated dialog -> session cleared');
});

t.test('removing a confirmed dialog publication clears the session', async (t) => {
  const sim = E().sim;
  const { etag } = await publishForEtag({
    scenario: 'teams-publish-dialog',
    gatewayPort: G().port,
    transport: 'u1',
    service: '1005',
    vars: { dstate: 'confirmed' },
  });
  await eventually(() => appSession(sim, 'elif'), busyInACall, 10_000, 'gateway session Busy/InACall');
  const removal = await runSipp({
    scenario: 'teams-publish-remove',
    gatewayPort: G().port,
    transport: 'u1',
    service: '1005',
    vars: { event: 'dialog', etag },
  });
  expectSippOk(t, removal, 'dialog PUBLISH Expires: 0');
  await eventually(() => appSession(sim, 'elif'), (x) => x === undefined, 10_000, 'gateway session cleared');
  t.pass('empty dialog state -> session cleared');
});

t.test('no errors logged', async (t) => {
  t.same(errorRecords(G()), [], 'no log records at level error or above');
});
