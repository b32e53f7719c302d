/**
 * SIPp against the started gateway serving a resource list (RFC 4662) over
 * UDP: Supported: eventlist gets multipart/related with RLMI and one PIDF part
 * per member (checked by regexps in sip-fixtures/scenarios/rls-*.xml), then a
 * terminated NOTIFY on unsubscribe; without eventlist the list answers 421.
 * The list NOTIFY is over the UDP size limit: the gateway tries TCP first
 * (RFC 3261 §18.1.1) and falls back to UDP, since SIPp in u1 mode has no TCP.
 */
import t from 'tap';
import { DEFAULT_DOMAIN, errorRecords, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { assertSippInstalled, expectSippOk, runSipp } from '../helpers/sipp.js';

let gateway: GatewayProcess | undefined;
t.before(async () => {
  assertSippInstalled();
  gateway = await startGateway({
    overrides: {
      lists: {
        batchMs: 50,
        groups: [{ name: 'sales', uri: `sip:sales@${DEFAULT_DOMAIN}`, displayName: 'Sales', members: ['anna', 'ben'] }],
      },
    },
  });
});
t.teardown(async () => {
  await gateway?.stop();
});
const gw = (): GatewayProcess => {
  if (gateway === undefined) throw new Error('gateway not started');
  return gateway;
};

t.test('list SUBSCRIBE with Supported: eventlist gets RLMI + PIDF parts, then a terminated list NOTIFY over UDP', async (t) => {
  const r = await runSipp({ scenario: 'rls-subscribe', gatewayPort: gw().port, transport: 'u1', service: 'sales' });
  expectSippOk(t, r, 'rls-subscribe');
});

t.test('list SUBSCRIBE without Supported: eventlist gets 421 with Require: eventlist', async (t) => {
  const r = await runSipp({ scenario: 'rls-no-eventlist', gatewayPort: gw().port, transport: 'u1', service: 'sales' });
  expectSippOk(t, r, 'rls-no-eventlist');
});

t.test('ten list watchers at once over UDP', async (t) => {
  const r = await runSipp({
    scenario: 'rls-subscribe',
    gatewayPort: gw().port,
    transport: 'u1',
    service: 'sales',
    calls: 10,
    rate: 50,
    traceStat: true,
  });
  expectSippOk(t, r, '10 x rls-subscribe');
  t.equal(r.stats?.['SuccessfulCall(C)'], '10', 'all 10 calls succeeded');
});

t.test('the gateway logged no errors', async (t) => {
  t.same(errorRecords(gw()), [], 'no log records at level error or above');
});
