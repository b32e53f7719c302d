/**
 * SIPp against the started gateway: SUBSCRIBE / NOTIFY flows over UDP and TCP
 * (scenarios in sip-fixtures/scenarios). One gateway for the whole file.
 */
import t from 'tap';
import { errorRecords } from '../helpers/gateway-process.js';
import { gatewayFixture, expectSippOk, runSipp, sippCallId, type SippTransport } from '../helpers/sipp.js';

const TRANSPORTS: ReadonlyArray<readonly [string, SippTransport]> = [
  ['UDP', 'u1'],
  ['TCP', 't1'],
];

const gw = gatewayFixture(t);

for (const [name, transport] of TRANSPORTS) {
  t.test(`presence SUBSCRIBE gets 200/202 and a PIDF NOTIFY over ${name}`, async (t) => {
    const r = await runSipp({ scenario: 'subscribe-notify', gatewayPort: gw().port, transport, service: '1001' });
    expectSippOk(t, r, 'subscribe-notify');
    const callId = sippCallId(r);
    t.ok(
      gw().logs.some((line) => line.includes(callId)),
      `the gateway logged the subscription (Call-ID ${callId})`,
    );
  });

  t.test(`refresh inside the dialog gets 200/202 and a NOTIFY over ${name}`, async (t) => {
    const r = await runSipp({ scenario: 'refresh', gatewayPort: gw().port, transport, service: '1002' });
    expectSippOk(t, r, 'refresh');
  });

  t.test(`unsubscribe gets a terminated NOTIFY, then 481 over ${name}`, async (t) => {
    const r = await runSipp({ scenario: 'unsubscribe', gatewayPort: gw().port, transport, service: '1003' });
    expectSippOk(t, r, 'unsubscribe');
  });

  t.test(`dialog SUBSCRIBE gets a dialog-info NOTIFY over ${name}`, async (t) => {
    const r = await runSipp({ scenario: 'dialog-subscribe', gatewayPort: gw().port, transport, service: '1001' });
    expectSippOk(t, r, 'dialog-subscribe');
  });

  t.test(`Accept: application/cpim-pidf+xml only gets a cpim-pidf NOTIFY over ${name}`, async (t) => {
    const r = await runSipp({ scenario: 'cisco-accept', gatewayPort: gw().port, transport, service: '1004' });
    expectSippOk(t, r, 'cisco-accept');
  });

  t.test(`40 watchers subscribe at once over ${name}`, async (t) => {
    const r = await runSipp({
      scenario: 'subscribe-notify',
      gatewayPort: gw().port,
      transport,
      service: '1002',
      calls: 40,
      rate: 200,
      traceStat: true,
    });
    expectSippOk(t, r, '40 x subscribe-notify');
    t.equal(r.stats?.['SuccessfulCall(C)'], '40', 'all 40 calls succeeded');
  });
}

t.test('a user is found by the user part of its AoR as well as by extension', async (t) => {
  const r = await runSipp({ scenario: 'subscribe-notify', gatewayPort: gw().port, transport: 'u1', service: 'anna' });
  expectSippOk(t, r, 'subscribe-notify to sip:anna@...');
});

t.test('the gateway logged no errors and is still running', async (t) => {
  t.same(errorRecords(gw()), [], 'no log records at level error or above');
  t.equal(gw().rssBytes() > 0, true, 'gateway process alive');
});
