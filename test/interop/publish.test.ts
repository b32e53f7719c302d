/**
 * SIPp against the started gateway: PUBLISH (RFC 3903) and the NOTIFY it causes
 * to watchers, over UDP and TCP. One gateway for the file; each transport uses
 * its own user so one run's publication cannot leak into the next.
 */
import t from 'tap';
import { errorRecords } from '../helpers/gateway-process.js';
import { gatewayFixture, expectSippOk, runSipp, startSipp, type SippTransport } from '../helpers/sipp.js';

const TRANSPORTS: ReadonlyArray<readonly [string, SippTransport, string]> = [
  ['UDP', 'u1', '1002'],
  ['TCP', 't1', '1003'],
];

const gw = gatewayFixture(t);

for (const [name, transport, user] of TRANSPORTS) {
  t.test(`PUBLISH on-the-phone reaches the watchers of that user over ${name}`, async (t) => {
    const watchers = 3;
    const watcher = await startSipp({
      scenario: 'publish-then-notify-watcher',
      gatewayPort: gw().port,
      transport,
      service: user,
      calls: watchers,
      rate: 30,
      traceLogs: true,
      timeoutSec: 30,
    });
    try {
      // publish-then-notify-watcher logs one line per watcher once its initial NOTIFY is answered.
      await watcher.waitForLogLines(watchers, 15_000, 'subscribed ');
    } catch (err) {
      watcher.kill();
      const r = await watcher.done;
      expectSippOk(t, r, 'watchers subscribed');
      throw err;
    }
    const publisher = await runSipp({ scenario: 'publish-then-notify', gatewayPort: gw().port, transport, service: user });
    expectSippOk(t, publisher, 'publish');
    const result = await watcher.done;
    expectSippOk(t, result, `${watchers} watchers each got a NOTIFY with on-the-phone`);
  });

  t.test(`PUBLISH refresh, unknown SIP-If-Match (412) and removal over ${name}`, async (t) => {
    const r = await runSipp({ scenario: 'publish-refresh-412', gatewayPort: gw().port, transport, service: '1004' });
    expectSippOk(t, r, 'publish-refresh-412');
  });
}

t.test('the gateway logged no errors and is still running', async (t) => {
  t.same(errorRecords(gw()), [], 'no log records at level error or above');
  t.equal(gw().rssBytes() > 0, true, 'gateway process alive');
});
