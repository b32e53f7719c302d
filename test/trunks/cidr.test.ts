import t from 'tap';
import { CidrSet, ipBytes, ipKey, parseCidr } from '../../src/trunks/cidr.js';

t.test('parseCidr: v4, v6, single addresses, host bits cleared, invalid', async (t) => {
  t.equal(parseCidr('10.0.0.0/24')?.prefix, 96 + 24);
  t.equal(parseCidr('10.0.0.5')?.prefix, 128);
  t.equal(parseCidr('2001:db8::/32')?.prefix, 32);
  t.equal(parseCidr('::1')?.prefix, 128);
  for (const bad of ['10.0.0.0/33', '10.0.0/24', '2001:db8::/129', 'bogus', '10.0.0.0/', '10.0.0.0/x', '', '256.0.0.1']) {
    t.equal(parseCidr(bad), null, bad);
  }
  const c = new CidrSet(['10.0.0.7/24']);
  t.ok(c.has('10.0.0.200'), 'host bits of the block are ignored');
});

t.test('CidrSet membership, IPv4-mapped IPv6 sources included', async (t) => {
  const s = new CidrSet(['192.168.10.0/24', '2001:db8:1::/48', '172.16.0.0/12', 'bad entry']);
  t.equal(s.size, 3);
  t.ok(s.has('192.168.10.1'));
  t.ok(s.has('192.168.10.255'));
  t.notOk(s.has('192.168.11.1'));
  t.ok(s.has('::ffff:192.168.10.9'), 'dual-stack socket form');
  t.ok(s.has('172.31.255.255'));
  t.notOk(s.has('172.32.0.0'));
  t.ok(s.has('2001:db8:1:ffff::1'));
  t.ok(s.has('[2001:db8:1::5]'));
  t.notOk(s.has('2001:db8:2::1'));
  t.notOk(s.has('not-an-ip'));
  t.notOk(new CidrSet([]).has('10.0.0.1'));
  t.ok(new CidrSet(['0.0.0.0/0']).has('8.8.8.8'));
  t.notOk(new CidrSet(['0.0.0.0/0']).has('2001:db8::1'), 'an IPv4 block does not cover IPv6');
});

t.test('ipKey canonicalises', async (t) => {
  t.equal(ipKey('10.0.0.5'), '10.0.0.5');
  t.equal(ipKey('::ffff:10.0.0.5'), '10.0.0.5');
  t.equal(ipKey('2001:DB8::1'), '2001:db8:0:0:0:0:0:1');
  t.equal(ipKey('[::1]'), '0:0:0:0:0:0:0:1');
  t.equal(ipKey('fe80::1%eth0'), 'fe80:0:0:0:0:0:0:1');
  t.equal(ipKey('x'), null);
  t.same([...ipBytes('1.2.3.4')!], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 1, 2, 3, 4]);
});
