/**
 * TLS trunks end to end with two SipStacks: the gateway side (registry,
 * wiring, upstream watcher) and a "PBX" answering OPTIONS and SUBSCRIBE over
 * TLS, optionally requiring a client certificate. Also RFC 3263 resolution
 * for trunks and the TLS default port of responses.
 */
import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configSchema, type GatewayConfig } from '../../src/config/schema.js';
import { Directory } from '../../src/core/directory.js';
import { systemClock } from '../../src/util/clock.js';
import { PresenceHub } from '../../src/core/presence-hub.js';
import { createCertificateAuthority, createServerCertificate } from '../../src/graph-simulator/certs.js';
import { parseVia } from '../../src/sip/header-values.js';
import { createResponse, type Endpoint } from '../../src/sip/message.js';
import type { SrvAnswer } from '../../src/sip/resolve.js';
import { SipStack, type IncomingRequest } from '../../src/sip/stack.js';
import { responseTarget } from '../../src/sip/transport/routing.js';
import { createTrunkSide, startUpstream } from '../../src/trunk-wiring.js';
import { trunkTlsOptions } from '../../src/trunks/tls-client.js';
import { trunkSchema } from '../../src/trunks/config.js';
import { TrunkRegistry } from '../../src/trunks/registry.js';
import { rfc3263Resolver, systemDns } from '../../src/trunks/resolver.js';
import { Trunk, type TrunkTlsSettings } from '../../src/trunks/trunk.js';
import { silentLogger } from '../../src/util/logger.js';
import { TimerWheel } from '../../src/util/timer-wheel.js';
import { clientCertificate } from '../helpers/client-cert.js';
import { bodyPackages } from '../helpers/packages.js';

const TIMERS = { t1: 20, t2: 80, t4: 50 };
const PBX_NAME = 'pbx.example.test';

const ca = createCertificateAuthority('tls trunk test CA');
const otherCa = createCertificateAuthority('some other CA');
const pbxCert = createServerCertificate(ca, [PBX_NAME]);
const gatewayCert = clientCertificate(ca, 'presence-gateway');


interface Pbx {
  stack: SipStack;
  port: number;
  received: IncomingRequest[];
}

/** The "PBX": a TLS listener answering OPTIONS and SUBSCRIBE with 200. */
async function startPbx(t: Tap, requireClientCert: boolean): Promise<Pbx> {
  const stack = await SipStack.start({
    listen: [
      {
        protocol: 'tls',
        address: '127.0.0.1',
        port: 0,
        tls: { cert: pbxCert.certPem, key: pbxCert.keyPem, ca: ca.certPem, requestClientCert: requireClientCert },
      },
    ],
    logger: silentLogger(),
    timers: TIMERS,
  });
  t.teardown(() => stack.close());
  const received: IncomingRequest[] = [];
  stack.onRequest((req) => {
    received.push(req);
    const extra: Array<[string, string]> = [];
    if (req.request.method === 'SUBSCRIBE') extra.push(['expires', req.request.headers.get('expires') ?? '3600']);
    const res = createResponse(req.request, 200, undefined, { toTag: 'pbxtag' });
    for (const [k, v] of extra) res.headers.append(k, v);
    res.headers.append('contact', `<sip:pbx@127.0.0.1:${stack.localEndpoint('tls')!.port};transport=tls>`);
    req.respond(res);
  });
  return { stack, port: stack.localEndpoint('tls')!.port, received };
}

type Tap = { teardown(fn: () => unknown): void };

let dir = '';
const files = { ca: '', otherCa: '', cert: '', key: '' };

t.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pg-tls-trunk-'));
  files.ca = join(dir, 'ca.pem');
  files.otherCa = join(dir, 'other-ca.pem');
  files.cert = join(dir, 'gw.pem');
  files.key = join(dir, 'gw-key.pem');
  await writeFile(files.ca, ca.certPem);
  await writeFile(files.otherCa, otherCa.certPem);
  await writeFile(files.cert, gatewayCert.certPem);
  await writeFile(files.key, gatewayCert.keyPem, { mode: 0o600 });
});
t.teardown(() => rm(dir, { recursive: true, force: true }));

interface GatewaySide {
  stack: SipStack;
  config: GatewayConfig;
  wheel: TimerWheel;
  side: ReturnType<typeof createTrunkSide>;
}

async function gateway(t: Tap, trunks: unknown[], users: unknown[] = []): Promise<GatewaySide> {
  const config = configSchema.parse({ sip: { domain: 'gw.example.test' }, trunks, users });
  const stack = await SipStack.start({ listen: [{ protocol: 'udp', address: '127.0.0.1', port: 0 }], logger: silentLogger(), timers: TIMERS });
  const wheel = new TimerWheel({ resolutionMs: 20 });
  const side = createTrunkSide(config, stack, silentLogger(), wheel);
  t.teardown(async () => {
    side.registry.close();
    wheel.close();
    await stack.close();
  });
  await side.registry.start();
  return { stack, config, wheel, side };
}

function tlsTrunk(port: number, tls: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return { name: 'pbx', address: `sip:127.0.0.1:${port};transport=tls`, optionsIntervalSec: 0, domain: PBX_NAME, tls, ...extra };
}

t.test('mutual TLS trunk: OPTIONS ping and upstream SUBSCRIBE go over TLS with the client certificate', async (t) => {
  const pbx = await startPbx(t, true);
  const users = [{ id: 'anna', displayName: 'Anna', extension: '1001' }];
  const gw = await gateway(
    t,
    [tlsTrunk(pbx.port, { caPath: files.ca, certPath: files.cert, keyPath: files.key, servername: PBX_NAME }, { directions: ['watch'], profile: 'asterisk' })],
    users,
  );
  const status = await gw.side.registry.ping('pbx');
  t.equal(status?.reachable, true, `reachable (lastError: ${status?.lastError?.message ?? 'none'})`);
  const options = pbx.received.find((r) => r.request.method === 'OPTIONS');
  t.ok(options, 'the PBX got the OPTIONS');
  t.equal(options?.source.protocol, 'tls', 'over TLS');
  t.equal(parseVia(options!.request.headers.get('via')!)?.protocol, 'TLS', 'Via says TLS');

  const directory = new Directory([{ id: 'anna', displayName: 'Anna', extension: '1001', sipAors: ['sip:anna@gw.example.test'] }], {
    domains: ['gw.example.test'],
  });
  const store = new PresenceHub(directory);
  const upstream = startUpstream({ config: gw.config, sender: gw.stack, trunks: gw.side, directory, store, wheel: gw.wheel, logger: silentLogger(), packages: bodyPackages() });
  t.teardown(() => upstream.close());
  const until = Date.now() + 5000;
  while (!pbx.received.some((r) => r.request.method === 'SUBSCRIBE') && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  const sub = pbx.received.find((r) => r.request.method === 'SUBSCRIBE');
  t.ok(sub, 'the PBX got the upstream SUBSCRIBE');
  t.equal(sub?.request.uri, `sip:1001@${PBX_NAME}`);
  t.equal(sub?.source.protocol, 'tls', 'SUBSCRIBE over TLS');
  t.equal(sub?.connectionId, options?.connectionId, 'on the same (mutually authenticated) connection');
  t.match(sub?.request.headers.get('contact'), /transport=tls/i, 'our Contact asks for TLS');
});

t.test('the same PBX without our client certificate: unreachable, and lastError says why', async (t) => {
  const pbx = await startPbx(t, true);
  const gw = await gateway(t, [tlsTrunk(pbx.port, { caPath: files.ca, servername: PBX_NAME })]);
  const status = await gw.side.registry.ping('pbx');
  t.equal(status?.reachable, false);
  t.match(status?.lastError?.message, /no TLS connection/);
  t.match(status?.lastError?.message, /requires a client certificate.*tls\.certPath/, `names the TLS failure: ${status?.lastError?.message}`);
  t.equal(pbx.received.length, 0, 'the PBX saw no SIP request');
});

t.test('a wrong CA: unreachable, lastError names the untrusted certificate', async (t) => {
  const pbx = await startPbx(t, false);
  const gw = await gateway(t, [tlsTrunk(pbx.port, { caPath: files.otherCa, servername: PBX_NAME })]);
  const status = await gw.side.registry.ping('pbx');
  t.equal(status?.reachable, false);
  t.match(status?.lastError?.message, new RegExp(`^OPTIONS to 127\\.0\\.0\\.1:${pbx.port}/tls: 503`));
  t.match(status?.lastError?.message, /no TLS connection: .*certificate.*check tls\.caPath/i, `clear error: ${status?.lastError?.message}`);
  t.equal(pbx.received.length, 0);
});

t.test('a servername the certificate does not carry: unreachable; verify: false accepts the wrong CA', async (t) => {
  const pbx = await startPbx(t, false);
  const wrongName = await gateway(t, [tlsTrunk(pbx.port, { caPath: files.ca, servername: 'other.example.test' })]);
  const s1 = await wrongName.side.registry.ping('pbx');
  t.equal(s1?.reachable, false);
  t.match(s1?.lastError?.message, /other\.example\.test.*check tls\.servername/, `names the mismatch: ${s1?.lastError?.message}`);

  const noVerify = await gateway(t, [tlsTrunk(pbx.port, { caPath: files.otherCa, verify: false })]);
  const s2 = await noVerify.side.registry.ping('pbx');
  t.equal(s2?.reachable, true, 'verify: false connects despite the unknown CA');
  t.ok(pbx.received.some((r) => r.request.method === 'OPTIONS'));
});

t.test('trunkTlsOptions: PEMs, servername, verify', async (t) => {
  const settings: TrunkTlsSettings = { trunk: 'pbx', verify: true, servername: PBX_NAME };
  t.same(trunkTlsOptions(settings, { ca: 'CA', cert: 'C', key: 'K' }), { rejectUnauthorized: true, ca: 'CA', cert: 'C', key: 'K', servername: PBX_NAME });
  t.same(trunkTlsOptions({ trunk: 'pbx', verify: false }, undefined), { rejectUnauthorized: false });
  t.same(trunkTlsOptions(settings, { cert: 'C' }), { rejectUnauthorized: true, servername: PBX_NAME }, 'no half client credentials');
});

t.test('an unreadable PEM path fails the start with a message naming the trunk and key', async (t) => {
  const config = configSchema.parse({ trunks: [tlsTrunk(5061, { caPath: join(dir, 'missing.pem') })] });
  const wheel = new TimerWheel({ autoStart: false });
  t.teardown(() => wheel.close());
  const sender = { sendRequest: () => Promise.reject(new Error('unused')), localEndpoint: () => undefined };
  t.throws(() => createTrunkSide(config, sender, silentLogger(), wheel), /trunks\[pbx\]\.tls\.caPath: cannot read .*missing\.pem \(ENOENT\)/);
});

// ---------------------------------------------------------------------------
// TLS settings per resolved endpoint, RFC 3263 for trunks

function trunkOf(raw: Record<string, unknown>, resolver: (uri: string) => Promise<Endpoint[]>, onTlsTarget?: (e: Endpoint, s: TrunkTlsSettings) => void) {
  return new Trunk(trunkSchema.parse(raw), { resolver, clock: systemClock, resolveTtlMs: 60_000, ...(onTlsTarget !== undefined ? { onTlsTarget } : {}) });
}

t.test('TLS settings: the host name is the default servername (RFC 5922), none for an IP; configured wins', async (t) => {
  const byName = trunkOf({ name: 'a', address: 'sip:PBX.example.test;transport=tls', tls: { caPath: '/ca.pem' } }, async () => []);
  t.same(byName.tlsSettings(), { trunk: 'a', verify: true, caPath: '/ca.pem', servername: 'pbx.example.test' });
  const byIp = trunkOf({ name: 'b', address: 'sips:10.0.0.5' }, async () => []);
  t.same(byIp.tlsSettings(), { trunk: 'b', verify: true }, 'no tls section: verify against default roots, no servername');
  const configured = trunkOf(
    { name: 'c', address: 'sip:10.0.0.5;transport=tcp', outboundProxy: 'sip:proxy.example.test;transport=tls', tls: { servername: 'sbc.example.test', certPath: '/c', keyPath: '/k', verify: false } },
    async () => [],
  );
  t.same(configured.tlsSettings(), { trunk: 'c', verify: false, certPath: '/c', keyPath: '/k', servername: 'sbc.example.test' });
});

t.test('onTlsTarget: called for each resolved TLS endpoint before destination() hands it out', async (t) => {
  const calls: Array<[Endpoint, TrunkTlsSettings]> = [];
  const trunk = trunkOf(
    { name: 'srv', address: 'sip:pbx.example.test;transport=tls' },
    async () => [
      { protocol: 'tls', address: '192.0.2.1', port: 5061 },
      { protocol: 'tls', address: '2001:db8::1', port: 5071 },
    ],
    (e, s) => calls.push([e, s]),
  );
  const first = await trunk.destination();
  t.same(first, { protocol: 'tls', address: '192.0.2.1', port: 5061 });
  t.equal(calls.length, 2);
  t.same(calls.map(([e]) => `${e.address}:${e.port}`), ['192.0.2.1:5061', '2001:db8::1:5071']);
  t.equal(calls[0]![1].servername, 'pbx.example.test');

  const udpCalls: Endpoint[] = [];
  const udp = trunkOf({ name: 'u', address: 'sip:10.0.0.5' }, async () => [{ protocol: 'udp', address: '10.0.0.5', port: 5060 }], (e) => udpCalls.push(e));
  await udp.destination();
  t.same(udpCalls, [], 'not for UDP endpoints');
});

t.test('the registry hands onTlsTarget to its trunks', async (t) => {
  const seen: string[] = [];
  const registry = new TrunkRegistry({
    trunks: [trunkSchema.parse({ name: 'x', address: 'sips:192.0.2.9', optionsIntervalSec: 0 })],
    sender: { sendRequest: () => Promise.reject(new Error('unused')) },
    fromUri: 'sip:gw@example.test',
    logger: silentLogger(),
    wheel: new TimerWheel({ autoStart: false }),
    onTlsTarget: (e, s) => seen.push(`${s.trunk} ${e.protocol} ${e.address}:${e.port}`),
  });
  t.teardown(() => registry.close());
  await registry.start();
  t.same(seen, ['x tls 192.0.2.9:5061'], 'the default resolver gives sips: port 5061 and the callback runs');
});

function fakeDns(srv: Record<string, SrvAnswer[]>, a: Record<string, string[]>) {
  const asked: string[] = [];
  return {
    asked,
    dns: {
      resolveSrv: async (name: string) => {
        asked.push(`SRV ${name}`);
        const r = srv[name];
        if (r === undefined) throw Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' });
        return r;
      },
      resolve4: async (name: string) => {
        asked.push(`A ${name}`);
        return a[name] ?? [];
      },
      resolve6: async (name: string) => {
        asked.push(`AAAA ${name}`);
        return [];
      },
    },
  };
}

t.test('rfc3263Resolver: SRV when there is no port, A/AAAA with a port, numeric hosts as they are', async (t) => {
  const { asked, dns } = fakeDns(
    {
      '_sips._tcp.pbx.example.test': [
        { name: 'b.pbx.example.test', port: 5081, priority: 20, weight: 0 },
        { name: 'a.pbx.example.test', port: 5071, priority: 10, weight: 0 },
      ],
      '_sip._tcp.corp.example.test': [{ name: 'pbx.corp.example.test', port: 5070, priority: 0, weight: 0 }],
    },
    { 'a.pbx.example.test': ['192.0.2.11'], 'b.pbx.example.test': ['192.0.2.12'], 'pbx.corp.example.test': ['192.0.2.20'], 'pbx.example.test': ['192.0.2.10'] },
  );
  const resolve = rfc3263Resolver({ dns, random: () => 0 });
  t.same(await resolve('sip:pbx.example.test;transport=tls'), [
    { protocol: 'tls', address: '192.0.2.11', port: 5071 },
    { protocol: 'tls', address: '192.0.2.12', port: 5081 },
  ], 'SRV _sips._tcp in priority order');
  t.same(await resolve('sip:corp.example.test'), [{ protocol: 'tcp', address: '192.0.2.20', port: 5070 }], 'no transport: SRV decides (TCP here)');
  asked.length = 0;
  t.same(await resolve('sip:pbx.example.test:5099;transport=tls'), [{ protocol: 'tls', address: '192.0.2.10', port: 5099 }]);
  t.notOk(asked.some((q) => q.startsWith('SRV')), 'an explicit port means no SRV');
  t.same(await resolve('sip:10.0.0.5;transport=tcp'), [{ protocol: 'tcp', address: '10.0.0.5', port: 5060 }]);
  await t.rejects(resolve('sip:nothing.example.test'), /did not resolve/);
});

t.test('systemDns: addresses from the system lookup by family, SRV from DNS', async (t) => {
  const lookups: string[] = [];
  const dns = systemDns(
    async (host, options) => {
      lookups.push(`${host}/${options.family ?? 0}`);
      return options.family === 6 ? [{ address: '::1', family: 6 }] : [{ address: '127.0.0.1', family: 4 }];
    },
    { resolveSrv: async () => [{ name: 'x', port: 1, priority: 0, weight: 0 }] },
  );
  t.same(await dns.resolve4('localhost'), ['127.0.0.1']);
  t.same(await dns.resolve6('localhost'), ['::1']);
  t.same(lookups, ['localhost/4', 'localhost/6']);
  t.same(await dns.resolveSrv('_sip._udp.x'), [{ name: 'x', port: 1, priority: 0, weight: 0 }]);
  const real = rfc3263Resolver();
  t.same(await real('sip:localhost:5080;transport=tcp').then((eps) => eps.find((e) => e.address === '127.0.0.1')), {
    protocol: 'tcp',
    address: '127.0.0.1',
    port: 5080,
  }, 'a hosts-file name resolves with the default resolver');
});

t.test('responses to a TLS request whose Via has no port go to 5061 (RFC 3261 §18.2.2)', async (t) => {
  const src: Endpoint = { protocol: 'tls', address: '192.0.2.7', port: 40000 };
  const via = parseVia('SIP/2.0/TLS pbx.example.test;branch=z9hG4bKx;received=192.0.2.7')!;
  t.same(responseTarget(via, src, undefined), { destination: { protocol: 'tls', address: '192.0.2.7', port: 5061 } });
  const tcp = parseVia('SIP/2.0/TCP pbx.example.test;branch=z9hG4bKy;received=192.0.2.7')!;
  t.equal(responseTarget(tcp, { ...src, protocol: 'tcp' }, 'tcp-1').destination.port, 5060);
  const explicit = parseVia('SIP/2.0/TLS pbx.example.test:5071;branch=z9hG4bKz')!;
  t.equal(responseTarget(explicit, src, 'tls-1').destination.port, 5071);
});
