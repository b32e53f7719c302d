/**
 * Desk-phone DND over as-feature-event against the started gateway, with
 * SIPp scenarios sending the bodies Polycom and Yealink phones send
 * (sip-fixtures/scenarios/feature-dnd-*.xml): DND on → DoNotDisturbEvent true,
 * DND off (Expires: 0) → final DoNotDisturbEvent false.
 */
import t from 'tap';
import { errorRecords } from '../helpers/gateway-process.js';
import { expectSippOk, gatewayFixture, runSipp } from '../helpers/sipp.js';

const gw = gatewayFixture(t);

for (const [phone, service] of [['polycom', '1001'], ['yealink', '1002']] as const) {
  t.test(`${phone}: DND key on and off, the DND light follows`, async (t) => {
    const r = await runSipp({ scenario: `feature-dnd-${phone}`, gatewayPort: gw().port, transport: 'u1', service });
    expectSippOk(t, r, `feature-dnd-${phone}`);
  });
}

t.test('the gateway logged no errors', async (t) => {
  t.same(errorRecords(gw()), []);
});
