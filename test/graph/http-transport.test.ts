/**
 * The HTTPS transport trusts the system CAs plus the configured one (a
 * private CA, the simulator's in tests), and nothing else: the extra CA is
 * one secure context made once, and certificates are still verified.
 */
import t from 'tap';
import { createHttpTransport } from '../../src/graph/http-transport.js';
import { env } from './helpers.js';

t.test('the configured CA is trusted, and without it the same server is refused', async (t) => {
  const e = await env();
  t.teardown(() => e.close());
  const trusting = createHttpTransport({ caPem: e.sim.caPem });
  const plain = createHttpTransport();
  t.teardown(() => {
    trusting.close();
    plain.close();
  });
  const url = `${e.sim.graphBaseUrl}/me`;
  const first = await trusting.request(url);
  t.equal(first.status, 401, 'the TLS handshake passed (no token: 401 from the server)');
  const again = await trusting.request(url);
  t.equal(again.status, 401, 'and again on the kept-alive connection');
  const refused = await plain.request(url).then(
    () => 'answered',
    (err: unknown) => (err instanceof Error ? err.message : String(err)),
  );
  t.match(refused, /certificate|self.signed|issuer/i, 'no extra CA: the certificate is not trusted');
});
