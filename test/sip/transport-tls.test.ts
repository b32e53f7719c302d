import t from 'tap';
import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  createCertificateAuthority,
  createServerCertificate,
} from '../../src/graph-simulator/certs.js';
import { Headers } from '../../src/sip/headers.js';
import { createRequest, createResponse, type Endpoint, type SipRequest } from '../../src/sip/message.js';
import { SipStack, type IncomingRequest, type SipStackOptions, type TlsClientOptions } from '../../src/sip/stack.js';
import { silentLogger } from '../../src/util/logger.js';
import { clientCertificate } from '../helpers/client-cert.js';

type Tap = { teardown(fn: () => unknown): void };
const TIMERS = { t1: 20, t2: 80, t4: 50 };

const ca = createCertificateAuthority('sip tls test CA');
const serverCert = createServerCertificate(ca);
const clientCert = clientCertificate(ca, 'gateway-client');
const otherCa = createCertificateAuthority('untrusted CA');
const strangerCert = clientCertificate(otherCa, 'stranger');


async function tlsServer(t: Tap, requestClientCert = false): Promise<SipStack> {
  const stack = await SipStack.start({
    listen: [
      { protocol: 'udp', address: '127.0.0.1', port: 0 },
      {
        protocol: 'tls',
        address: '127.0.0.1',
        port: 0,
        tls: { cert: serverCert.certPem, key: serverCert.keyPem, ca: ca.certPem, requestClientCert },
      },
    ],
    logger: silentLogger(),
    timers: TIMERS,
  });
  t.teardown(() => stack.close());
  return stack;
}

/** A stack with no TLS listener: outbound TLS only (sent-by borrowed from UDP). */
async function client(t: Tap, extra: Partial<SipStackOptions> = {}): Promise<SipStack> {
  const stack = await SipStack.start({
    listen: [{ protocol: 'udp', address: '127.0.0.1', port: 0 }],
    logger: silentLogger(),
    timers: TIMERS,
    ...extra,
  });
  t.teardown(() => stack.close());
  return stack;
}

let seq = 0;
function subscribe(target: Endpoint): SipRequest {
  const n = ++seq;
  return createRequest(
    'SUBSCRIBE',
    `sip:alice@127.0.0.1:${target.port};transport=tls`,
    Headers.from([
      ['From', `<sip:gw@example.com>;tag=f${n}`],
      ['To', '<sip:alice@example.com>'],
      ['Call-ID', `tls-call-${n}`],
      ['CSeq', '1 SUBSCRIBE'],
      ['Event', 'presence'],
      ['Contact', '<sip:gw@127.0.0.1;transport=tls>'],
      ['Expires', '600'],
    ]),
  );
}

function tlsTo(stack: SipStack): Endpoint {
  const ep = stack.localEndpoint('tls')!;
  return { protocol: 'tls', address: '127.0.0.1', port: ep.port };
}

t.test('SUBSCRIBE over TLS gets its 200; the NOTIFY comes back over the same TLS connection', async (t) => {
  const server = await tlsServer(t);
  const seen: IncomingRequest[] = [];
  server.onRequest((req) => {
    seen.push(req);
    req.respond(createResponse(req.request, 200, undefined, { toTag: 'srv' }));
  });
  const trusting: TlsClientOptions = { ca: ca.certPem };
  const c = await client(t, { tlsClient: trusting });
  const notifies: IncomingRequest[] = [];
  c.onRequest((req) => {
    notifies.push(req);
    req.respond(createResponse(req.request, 200));
  });

  const sub = subscribe(tlsTo(server));
  const res = await c.sendRequest(sub, { destination: tlsTo(server) });
  t.equal(res.status, 200, 'SUBSCRIBE answered over TLS');
  t.equal(seen.length, 1);
  const inbound = seen[0]!;
  t.equal(inbound.source.protocol, 'tls');
  t.equal(inbound.local.protocol, 'tls');
  t.match(inbound.connectionId, /^tls-/);
  t.match(inbound.request.headers.get('via')!, /^SIP\/2\.0\/TLS 127\.0\.0\.1:\d+;/, 'Via transport TLS');
  t.same(server.advertisedEndpoint('tls'), { protocol: 'tls', address: '127.0.0.1', port: server.localEndpoint('tls')!.port });

  const notify = createRequest(
    'NOTIFY',
    'sip:gw@127.0.0.1;transport=tls',
    Headers.from([
      ['From', '<sip:alice@example.com>;tag=srv'],
      ['To', `${sub.headers.get('from')!}`],
      ['Call-ID', sub.headers.get('call-id')!],
      ['CSeq', '1 NOTIFY'],
      ['Event', 'presence'],
      ['Subscription-State', 'active;expires=600'],
    ]),
  );
  // port 1 would fail if a new connection were opened: the subscriber's connection must carry it
  const nres = await server.sendRequest(notify, {
    destination: { protocol: 'tls', address: '127.0.0.1', port: 1 },
    connectionId: inbound.connectionId!,
  });
  t.equal(nres.status, 200, 'NOTIFY answered');
  t.equal(notifies.length, 1);
  t.equal(notifies[0]!.request.method, 'NOTIFY');
  t.equal(notifies[0]!.source.protocol, 'tls');
  t.equal(server.stats().tlsConnections, 1);
  t.equal(c.stats().tlsConnections, 1, 'the client reused its connection for the NOTIFY');
  t.equal(c.stats().tcpConnections, 0, 'nothing went over plain TCP');
});

t.test('an untrusted server certificate fails the request locally (503); per-destination options fix it', async (t) => {
  const server = await tlsServer(t);
  let handled = 0;
  server.onRequest((req) => {
    handled++;
    req.respond(createResponse(req.request, 200, undefined, { toTag: 'srv' }));
  });
  const c = await client(t); // default: Node's roots only, which do not include the test CA
  const refused = await c.sendRequest(subscribe(tlsTo(server)), { destination: tlsTo(server) });
  t.equal(refused.status, 503, 'verification failure is a transport failure');
  t.equal(handled, 0);

  // a wrong expected name fails even with the right CA
  c.setTlsClientOptions(`127.0.0.1:${tlsTo(server).port}`, { ca: ca.certPem, servername: 'wrong.example.com' });
  const wrongName = await c.sendRequest(subscribe(tlsTo(server)), { destination: tlsTo(server) });
  t.equal(wrongName.status, 503, 'server name mismatch refused');

  c.setTlsClientOptions(`127.0.0.1:${tlsTo(server).port}`, { ca: ca.certPem, servername: 'localhost' });
  const ok = await c.sendRequest(subscribe(tlsTo(server)), { destination: tlsTo(server) });
  t.equal(ok.status, 200, 'accepted with the per-destination CA');
  t.equal(handled, 1);

  // an address-only entry applies to any port of that address
  const server2 = await tlsServer(t);
  server2.onRequest((req) => req.respond(createResponse(req.request, 200, undefined, { toTag: 's2' })));
  c.setTlsClientOptions('127.0.0.1', { ca: ca.certPem });
  t.equal((await c.sendRequest(subscribe(tlsTo(server2)), { destination: tlsTo(server2) })).status, 200);
  c.setTlsClientOptions('127.0.0.1', undefined);
});

t.test('mutual TLS: a client certificate from the CA is accepted, none or a foreign one is refused', async (t) => {
  const server = await tlsServer(t, true);
  const seen: IncomingRequest[] = [];
  server.onRequest((req) => {
    seen.push(req);
    req.respond(createResponse(req.request, 200, undefined, { toTag: 'm' }));
  });

  const withCert = await client(t, { tlsClient: { ca: ca.certPem, cert: clientCert.certPem, key: clientCert.keyPem } });
  t.equal((await withCert.sendRequest(subscribe(tlsTo(server)), { destination: tlsTo(server) })).status, 200, 'accepted');
  t.equal(seen.length, 1);

  const noCert = await client(t, { tlsClient: { ca: ca.certPem } });
  t.equal((await noCert.sendRequest(subscribe(tlsTo(server)), { destination: tlsTo(server) })).status, 503, 'no certificate');

  const foreign = await client(t, { tlsClient: { ca: ca.certPem, cert: strangerCert.certPem, key: strangerCert.keyPem } });
  t.equal((await foreign.sendRequest(subscribe(tlsTo(server)), { destination: tlsTo(server) })).status, 503, 'foreign CA');
  t.equal(seen.length, 1, 'refused clients never reached the handler');
});

t.test('bad handshakes (plain text, garbage, abort mid-handshake) do not crash the listener', async (t) => {
  const server = await tlsServer(t);
  let handled = 0;
  server.onRequest((req) => {
    handled++;
    req.respond(createResponse(req.request, 200, undefined, { toTag: 'x' }));
  });
  const port = tlsTo(server).port;

  // plain SIP over a TLS port
  const plain = netConnect({ host: '127.0.0.1', port });
  plain.on('error', () => undefined);
  plain.resume();
  await once(plain, 'connect');
  plain.write('OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKp\r\nContent-Length: 0\r\n\r\n');
  await once(plain, 'close');
  t.pass('plain-text client was dropped');

  // random bytes
  const junk = netConnect({ host: '127.0.0.1', port });
  junk.on('error', () => undefined);
  junk.resume();
  await once(junk, 'connect');
  junk.write(Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff, 0, 1, 2, 3, 4, 5]));
  await once(junk, 'close');
  t.pass('garbage client was dropped');

  // a TLS client that gives up after the TCP connect
  const quitter = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false });
  quitter.on('error', () => undefined);
  quitter.destroy();
  await sleep(20);

  const c = await client(t, { tlsClient: { ca: ca.certPem } });
  t.equal((await c.sendRequest(subscribe(tlsTo(server)), { destination: tlsTo(server) })).status, 200, 'still serving');
  t.equal(handled, 1);
});

t.test('a tls listener without certificate and key is a start error', async (t) => {
  await t.rejects(
    SipStack.start({ listen: [{ protocol: 'tls', address: '127.0.0.1', port: 0 }], logger: silentLogger() }),
    /tls/,
  );
});
