/**
 * SIPp against the started gateway: SUBSCRIBE requests the gateway must
 * refuse, with the RFC answer, over UDP and TCP. One gateway for the file.
 */
import t from 'tap';
import { errorRecords } from '../helpers/gateway-process.js';
import { gatewayFixture, expectSippOk, runSipp, type SippTransport } from '../helpers/sipp.js';

const TRANSPORTS: ReadonlyArray<readonly [string, SippTransport]> = [
  ['UDP', 'u1'],
  ['TCP', 't1'],
];

const gw = gatewayFixture(t);

const CASES: ReadonlyArray<{ scenario: string; service: string; what: string }> = [
  { scenario: 'unknown-event', service: '1001', what: 'unknown event package gets 489 with Allow-Events' },
  { scenario: 'interval-too-brief', service: '1001', what: 'Expires below minExpires gets 423 with Min-Expires: 60' },
  { scenario: 'bad-accept', service: '1001', what: 'Accept naming nothing we make gets 406 with Accept' },
  { scenario: 'unknown-user', service: 'nobody-9999', what: 'unknown user gets 404' },
];

for (const [name, transport] of TRANSPORTS) {
  for (const c of CASES) {
    t.test(`${c.what} over ${name}`, async (t) => {
      const r = await runSipp({ scenario: c.scenario, gatewayPort: gw().port, transport, service: c.service });
      expectSippOk(t, r, c.scenario);
    });
  }
}

t.test('refusals are not errors: nothing logged at error level, gateway still up', async (t) => {
  t.same(errorRecords(gw()), [], 'no log records at level error or above');
  t.equal(gw().rssBytes() > 0, true, 'gateway process alive');
});
