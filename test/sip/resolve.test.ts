import t from 'tap';
import { orderSrv, resolveSipUri, sipResolver, type DnsLike, type SrvAnswer } from '../../src/sip/resolve.js';

/** A fake DNS: tables per name; everything else fails like NXDOMAIN. Records the questions. */
class FakeDns implements DnsLike {
  readonly asked: string[] = [];
  constructor(
    private readonly srv: Record<string, SrvAnswer[]> = {},
    private readonly a: Record<string, string[]> = {},
    private readonly aaaa: Record<string, string[]> = {},
  ) {}
  private answer<T>(kind: string, table: Record<string, T[]>, name: string): Promise<T[]> {
    this.asked.push(`${kind} ${name}`);
    const r = table[name];
    if (r === undefined) return Promise.reject(Object.assign(new Error(`queryX ENOTFOUND ${name}`), { code: 'ENOTFOUND' }));
    return Promise.resolve(r);
  }
  resolveSrv(name: string): Promise<SrvAnswer[]> {
    return this.answer('SRV', this.srv, name);
  }
  resolve4(name: string): Promise<string[]> {
    return this.answer('A', this.a, name);
  }
  resolve6(name: string): Promise<string[]> {
    return this.answer('AAAA', this.aaaa, name);
  }
}

const srv = (name: string, port: number, priority: number, weight: number): SrvAnswer => ({ name, port, priority, weight });

t.test('a numeric host stands for itself; no DNS question is asked', async (t) => {
  const dns = new FakeDns();
  t.same(await resolveSipUri('sip:10.0.0.5', { dns }), [{ protocol: 'udp', address: '10.0.0.5', port: 5060 }]);
  t.same(await resolveSipUri('sip:10.0.0.5:5070;transport=tcp', { dns }), [{ protocol: 'tcp', address: '10.0.0.5', port: 5070 }]);
  t.same(await resolveSipUri('sips:[2001:db8::1]', { dns }), [{ protocol: 'tls', address: '2001:db8::1', port: 5061 }]);
  t.same(await resolveSipUri('sip:10.0.0.5;transport=tls', { dns }), [{ protocol: 'tls', address: '10.0.0.5', port: 5061 }]);
  t.same(dns.asked, []);
});

t.test('an explicit port means A/AAAA only, with that port (A first)', async (t) => {
  const dns = new FakeDns(
    { '_sip._udp.pbx.example.com': [srv('other.example.com', 5999, 0, 0)] },
    { 'pbx.example.com': ['192.0.2.10', '192.0.2.11'] },
    { 'pbx.example.com': ['2001:db8::10'] },
  );
  const found = await resolveSipUri('sip:alice@pbx.example.com:5080;transport=tcp', { dns });
  t.same(found, [
    { protocol: 'tcp', address: '192.0.2.10', port: 5080 },
    { protocol: 'tcp', address: '192.0.2.11', port: 5080 },
    { protocol: 'tcp', address: '2001:db8::10', port: 5080 },
  ]);
  t.notOk(dns.asked.some((q) => q.startsWith('SRV')), 'no SRV question with an explicit port');
  const v4only = await resolveSipUri('sip:pbx.example.com:5080', { dns, ipv6: false });
  t.same(v4only, [
    { protocol: 'udp', address: '192.0.2.10', port: 5080 },
    { protocol: 'udp', address: '192.0.2.11', port: 5080 },
  ]);
});

t.test('no port: SRV by transport parameter, ordered by priority, then the targets A records with SRV ports', async (t) => {
  const dns = new FakeDns(
    {
      '_sip._tcp.example.com': [srv('backup.example.com', 5062, 20, 0), srv('main.example.com', 5060, 10, 0)],
      '_sip._udp.example.com': [srv('udp.example.com', 5060, 0, 0)],
    },
    { 'main.example.com': ['192.0.2.1'], 'backup.example.com': ['192.0.2.2'], 'udp.example.com': ['192.0.2.9'] },
  );
  const found = await resolveSipUri('sip:example.com;transport=tcp', { dns });
  t.same(found, [
    { protocol: 'tcp', address: '192.0.2.1', port: 5060 },
    { protocol: 'tcp', address: '192.0.2.2', port: 5062 },
  ]);
  t.notOk(dns.asked.includes('SRV _sip._udp.example.com'), 'only the named transport is asked for');
});

t.test('sips and transport=tls use _sips._tcp; default port 5061 after no SRV', async (t) => {
  const dns = new FakeDns(
    { '_sips._tcp.secure.example.com': [srv('tls1.example.com', 5061, 1, 1)] },
    { 'tls1.example.com': ['192.0.2.30'], 'plain.example.com': ['192.0.2.40'] },
  );
  t.same(await resolveSipUri('sips:bob@secure.example.com', { dns }), [{ protocol: 'tls', address: '192.0.2.30', port: 5061 }]);
  t.same(await resolveSipUri('sip:secure.example.com;transport=tls', { dns }), [
    { protocol: 'tls', address: '192.0.2.30', port: 5061 },
  ]);
  t.same(await resolveSipUri('sips:plain.example.com', { dns }), [{ protocol: 'tls', address: '192.0.2.40', port: 5061 }]);
  t.ok(dns.asked.includes('SRV _sips._tcp.plain.example.com'));
});

t.test('no transport and no port: SRV of every supported transport, in the preferred order', async (t) => {
  const dns = new FakeDns(
    {
      '_sip._udp.example.org': [srv('u.example.org', 5060, 0, 0)],
      '_sip._tcp.example.org': [srv('t.example.org', 5070, 0, 0)],
    },
    { 'u.example.org': ['198.51.100.1'], 't.example.org': ['198.51.100.2'] },
  );
  t.same(await resolveSipUri('sip:example.org', { dns }), [
    { protocol: 'udp', address: '198.51.100.1', port: 5060 },
    { protocol: 'tcp', address: '198.51.100.2', port: 5070 },
  ]);
  t.same(await resolveSipUri('sip:example.org', { dns, transports: ['tcp', 'udp'] }), [
    { protocol: 'tcp', address: '198.51.100.2', port: 5070 },
    { protocol: 'udp', address: '198.51.100.1', port: 5060 },
  ]);
});

t.test('no SRV at all: A/AAAA of the host with port 5060 over UDP', async (t) => {
  const dns = new FakeDns({}, { 'pbx.example.net': ['203.0.113.5'] }, { 'pbx.example.net': ['2001:db8::5'] });
  t.same(await resolveSipUri('sip:1001@pbx.example.net', { dns }), [
    { protocol: 'udp', address: '203.0.113.5', port: 5060 },
    { protocol: 'udp', address: '2001:db8::5', port: 5060 },
  ]);
});

t.test('a "." SRV target means not offered; an unresolvable target is skipped', async (t) => {
  const dns = new FakeDns(
    {
      '_sip._udp.example.net': [srv('.', 0, 0, 0)],
      '_sip._tcp.example.net': [srv('gone.example.net', 5060, 0, 0), srv('ok.example.net', 5090, 5, 0)],
    },
    { 'ok.example.net': ['203.0.113.9'], 'example.net': ['203.0.113.1'] },
  );
  t.same(await resolveSipUri('sip:example.net', { dns }), [{ protocol: 'tcp', address: '203.0.113.9', port: 5090 }]);
});

t.test('nothing found: empty list; sipResolver rejects naming the URI; bad URIs resolve to nothing', async (t) => {
  const dns = new FakeDns();
  t.same(await resolveSipUri('sip:nowhere.invalid', { dns }), []);
  await t.rejects(sipResolver({ dns })('sip:nowhere.invalid'), /nowhere\.invalid/);
  t.same(await resolveSipUri('tel:+4930123', { dns }), []);
  t.same(await resolveSipUri('sip:host.example.com;transport=sctp', { dns }), []);
  t.same(await resolveSipUri('not a uri', { dns }), []);
  const ok = new FakeDns({}, { 'a.example.com': ['192.0.2.7'] });
  t.same(await sipResolver({ dns: ok })('sip:a.example.com:5070;transport=tcp'), [{ protocol: 'tcp', address: '192.0.2.7', port: 5070 }]);
});

t.test('orderSrv: priority first, weighted draw within a priority (RFC 2782)', async (t) => {
  const records = [srv('c', 1, 20, 0), srv('a', 1, 10, 60), srv('b', 1, 10, 40), srv('z', 1, 10, 0)];
  // draw 0 picks the zero-weight record placed first, then "a" (running sum 60 >= 0)
  t.same(
    orderSrv(records, () => 0).map((r) => r.name),
    ['z', 'a', 'b', 'c'],
  );
  // the highest draw lands past a's running sum: b first, then a, then the zero weight
  t.same(
    orderSrv(records, () => 0.999).map((r) => r.name),
    ['b', 'a', 'z', 'c'],
  );
  // over many draws the heavier record comes first more often
  let seed = 12345;
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  let aFirst = 0;
  for (let i = 0; i < 2000; i++) if (orderSrv([srv('a', 1, 0, 75), srv('b', 1, 0, 25)], random)[0]!.name === 'a') aFirst++;
  t.ok(aFirst > 1300 && aFirst < 1700, `a first ${aFirst}/2000 times (expected about 1500)`);
});
