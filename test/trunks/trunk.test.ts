import t from 'tap';
import { trunkSchema } from '../../src/trunks/config.js';
import type { Endpoint } from '../../src/sip/message.js';
import { profileTraits, traitsFor } from '../../src/trunks/profiles.js';
import { lookupResolver } from '../../src/trunks/resolver.js';
import { Trunk, type TrunkStatus } from '../../src/trunks/trunk.js';

function trunk(raw: Record<string, unknown>, resolver = async (_u: string): Promise<Endpoint[]> => [{ protocol: 'udp', address: '10.0.0.5', port: 5060 }]) {
  let now = 1000;
  const tr = new Trunk(trunkSchema.parse({ name: 'pbx', address: 'sip:10.0.0.5', ...raw }), {
    resolver,
    clock: { now: () => now },
    resolveTtlMs: 60_000,
  });
  return { tr, advance: (ms: number) => (now += ms) };
}

t.test('profiles: vendor facts', async (t) => {
  t.same(profileTraits('asterisk'), {
    watchEvent: 'dialog',
    watchAccept: ['application/dialog-info+xml'],
    publishFlavor: 'rfc',
    unsolicitedNotify: false,
    inboundPublish: true,
    output: 'asterisk',
  });
  t.same(profileTraits('cisco'), {
    watchEvent: 'presence',
    watchAccept: ['application/pidf+xml'],
    publishFlavor: 'cisco',
    unsolicitedNotify: true,
    inboundPublish: false,
    output: 'cisco',
  });
  t.equal(profileTraits('kamailio').watchEvent, 'dialog');
  t.equal(profileTraits('kamailio').output, 'rfc');
  t.equal(profileTraits('polycom').output, 'polycom');
  t.equal(profileTraits('generic').publishFlavor, 'rfc');
  const kp = traitsFor('kamailio', 'presence');
  t.equal(kp.watchEvent, 'presence');
  t.same(kp.watchAccept, ['application/pidf+xml']);
  t.equal(profileTraits('kamailio').watchEvent, 'dialog', 'the shared traits are not changed by an override');
  t.ok(Object.isFrozen(profileTraits('generic')));
});

t.test('a trunk takes its traits from profile and watch.event', async (t) => {
  t.equal(trunk({ profile: 'cisco' }).tr.traits.watchEvent, 'presence');
  t.equal(trunk({ profile: 'kamailio', watch: { event: 'presence' } }).tr.traits.watchEvent, 'presence');
  t.equal(trunk({ profile: 'kamailio' }).tr.traits.watchEvent, 'dialog');
});

t.test('carries: all, list, pattern on extension then id', async (t) => {
  const anna = { id: 'anna', extension: '1001' };
  const bert = { id: 'bert', extension: '2002' };
  const kiosk = { id: '1050' };
  t.ok(trunk({}).tr.carries(bert));
  const listed = trunk({ users: ['anna'] }).tr;
  t.ok(listed.carries(anna));
  t.notOk(listed.carries(bert));
  const pattern = trunk({ users: { pattern: '^10\\d\\d$' } }).tr;
  t.ok(pattern.carries(anna), 'extension matches');
  t.notOk(pattern.carries(bert));
  t.ok(pattern.carries(kiosk), 'no extension: the id is tried');
});

t.test('has, userUri and domain', async (t) => {
  const a = trunk({ directions: ['publish'], domain: 'pbx.example.com' }).tr;
  t.ok(a.has('publish'));
  t.notOk(a.has('watch'));
  t.equal(a.userUri({ id: 'anna', extension: '1001' }), 'sip:1001@pbx.example.com');
  t.equal(a.userUri({ id: 'anna' }), 'sip:anna@pbx.example.com', 'no extension: the id');
  const b = trunk({ address: 'sip:pbx.example.org:5070;transport=tcp', userPart: 'id' }).tr;
  t.equal(b.userUri({ id: 'anna', extension: '1001' }), 'sip:anna@pbx.example.org', 'domain defaults to the address host');
  t.equal(b.domainUri(), 'sip:pbx.example.org');
  t.equal(trunk({}).tr.userUri({ id: 'x', extension: '#31' }), 'sip:%2331@10.0.0.5', '# is escaped in the user part');
  t.same(trunk({ credentials: { username: 'gw', password: 'pw' } }).tr.credentials, { username: 'gw', password: 'pw' });
  t.equal(trunk({}).tr.credentials, undefined);
});

t.test('destination: the outbound proxy when set, cached, failover across addresses', async (t) => {
  const asked: string[] = [];
  const { tr, advance } = trunk({ outboundProxy: 'sip:proxy.example.com;transport=tcp' }, async (uri) => {
    asked.push(uri);
    return uri.includes('proxy')
      ? [
          { protocol: 'tcp', address: '10.1.0.1', port: 5060 },
          { protocol: 'tcp', address: '10.1.0.2', port: 5060 },
        ]
      : [{ protocol: 'udp', address: '10.0.0.5', port: 5060 }];
  });
  t.same(await tr.destination(), { protocol: 'tcp', address: '10.1.0.1', port: 5060 });
  t.same(await tr.destination(), { protocol: 'tcp', address: '10.1.0.1', port: 5060 });
  t.equal(asked.filter((u) => u.includes('proxy')).length, 1, 'resolved once while fresh');
  tr.failover();
  t.same(await tr.destination(), { protocol: 'tcp', address: '10.1.0.2', port: 5060 });
  advance(61_000);
  await tr.destination();
  await new Promise((r) => setImmediate(r));
  t.equal(asked.filter((u) => u.includes('proxy')).length, 2, 'an old resolution is refreshed');
});

t.test('destination rejects when the name never resolved; the error is in the status', async (t) => {
  const { tr } = trunk({ address: 'sip:nowhere.invalid' }, async () => {
    throw new Error('ENOTFOUND');
  });
  const seen: TrunkStatus[] = [];
  tr.onStatus((s) => seen.push(s));
  await t.rejects(tr.destination(), /cannot resolve nowhere\.invalid: ENOTFOUND/);
  t.equal(tr.status().reachable, false);
  t.match(tr.status().lastError?.message, /ENOTFOUND/);
  t.equal(seen.length, 1);
});

t.test('status counters and listener on changes only', async (t) => {
  const { tr } = trunk({ profile: 'asterisk' });
  const seen: TrunkStatus[] = [];
  const off = tr.onStatus((s) => seen.push(s));
  tr.noteItem('subscription', 'anna', true);
  tr.noteItem('subscription', 'bert', true);
  tr.noteItem('subscription', 'anna', false);
  tr.noteItem('subscription', 'anna', false);
  tr.noteItem('publication', 'anna', true);
  tr.forgetItem('subscription', 'bert');
  t.same(tr.status().subscriptions, { up: 0, down: 1 });
  t.same(tr.status().publications, { up: 1, down: 0 });
  t.equal(seen.length, 0, 'counts do not fire the listener');
  tr.noteAuth(true);
  tr.noteAuth(true);
  t.equal(seen.length, 1);
  t.equal(seen[0]!.authenticated, true);
  tr.noteAuth(false);
  t.equal(seen.length, 2);
  t.equal(seen[1]!.lastError?.message, 'credentials refused by the trunk');
  tr.noteError('SUBSCRIBE anna: 404');
  t.equal(seen.length, 3);
  off();
  tr.noteError('again');
  t.equal(seen.length, 3, 'unsubscribed');
  const s = tr.status();
  t.equal(s.name, 'pbx');
  t.equal(s.profile, 'asterisk');
  t.same(s.directions, ['watch', 'inbound']);
  t.equal(s.reachable, undefined);
});

t.test('lookupResolver: numeric hosts, names, default ports', async (t) => {
  const r = lookupResolver(async (host) => {
    if (host === 'pbx.example.com') return [{ address: '192.0.2.1', family: 4 }, { address: '2001:db8::1', family: 6 }];
    return [];
  });
  t.same(await r('sip:10.0.0.5'), [{ protocol: 'udp', address: '10.0.0.5', port: 5060 }]);
  t.same(await r('sips:[2001:db8::9]'), [{ protocol: 'tls', address: '2001:db8::9', port: 5061 }]);
  t.same(await r('sip:pbx.example.com:5080;transport=tcp'), [
    { protocol: 'tcp', address: '192.0.2.1', port: 5080 },
    { protocol: 'tcp', address: '2001:db8::1', port: 5080 },
  ]);
  await t.rejects(r('sip:empty.example.com'), /no address/);
  await t.rejects(r('http://x'), /not a SIP URI/);
});
