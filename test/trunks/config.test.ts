import t from 'tap';
import { z } from 'zod';
import { parseDocument } from 'yaml';
import { formatPath } from '../../src/config/loader.js';
import { accessSchema, effectiveAccessMode, trunksSchema, unknownTrunkUsers } from '../../src/trunks/config.js';

/** The sections as the lead plugs them in: top-level trunks and sip.access. */
const root = z.strictObject({
  trunks: trunksSchema,
  sip: z.strictObject({ access: accessSchema }).prefault({}),
});

function parse(yamlText: string): z.output<typeof root> {
  return root.parse(parseDocument(yamlText).toJS() ?? {});
}

/** "path: message" lines, as the loader shows them. */
function problems(yamlText: string): string[] {
  const r = root.safeParse(parseDocument(yamlText).toJS() ?? {});
  if (r.success) return [];
  return r.error.issues.map((i) => `${formatPath(i.path.filter((p): p is string | number => typeof p !== 'symbol'))}: ${i.message}`);
}

t.test('a full trunk with defaults filled in', async (t) => {
  const c = parse(`
trunks:
  - name: pbx1
    address: sip:10.0.0.5:5060;transport=tcp
    profile: asterisk
    credentials: { username: gw, password: pw }
    inboundAddresses: [10.0.0.0/24]
  - name: cucm
    address: sip:cucm.example.com
    profile: cisco
    users: [anna, 1002]
    directions: [watch]
    watch: { event: presence, expires: 1800 }
  - name: kam
    address: sips:kamailio.example.com
    outboundProxy: sip:proxy.example.com;transport=tls
    domain: presence.example.com
    users: { pattern: "^10\\\\d\\\\d$" }
    userPart: id
    optionsIntervalSec: 0
    tls: { caPath: /etc/ca.pem }
`);
  const [a, b, k] = c.trunks;
  t.equal(a!.profile, 'asterisk');
  t.same(a!.directions, ['watch', 'inbound']);
  t.equal(a!.users, 'all');
  t.equal(a!.userPart, 'extension');
  t.equal(a!.optionsIntervalSec, 30);
  t.same(a!.watch, { expires: 3600, ratePerSec: 50 });
  t.same(a!.publish, { expires: 3600 });
  t.same(b!.users, ['anna', '1002'], 'numeric ids become strings');
  t.equal(b!.watch.event, 'presence');
  t.equal(b!.watch.expires, 1800);
  t.same(k!.users, { pattern: '^10\\d\\d$' });
  t.equal(k!.tls?.verify, true);
  t.same(c.trunks.length, 3);
  t.same(c.sip.access, { trusted: [], challenge: 401, users: [] });
});

t.test('no trunks: an empty list', async (t) => {
  t.same(parse('').trunks, []);
});

t.test('address: not a SIP URI names the path and the fix', async (t) => {
  const p = problems(`
trunks:
  - { name: a, address: sip:10.0.0.4 }
  - { name: b, address: "10.0.0.5:abc" }
  - { name: c, address: "sip:10.0.0.6;transport=sctp" }
  - { name: d, address: sip:10.0.0.7, outboundProxy: "proxy:5060" }
`);
  t.same(p, [
    'trunks[1].address: not a SIP URI; write sip:host[:port][;transport=tcp] (or ;transport=tls, or sips:host[:port])',
    'trunks[2].address: not a SIP URI; write sip:host[:port][;transport=tcp] (or ;transport=tls, or sips:host[:port])',
    'trunks[3].outboundProxy: not a SIP URI; write sip:host[:port][;transport=tcp] (or ;transport=tls, or sips:host[:port])',
  ]);
});

t.test('duplicate names and bad names', async (t) => {
  const p = problems(`
trunks:
  - { name: pbx1, address: sip:10.0.0.4 }
  - { name: pbx2, address: sip:10.0.0.5 }
  - { name: pbx1, address: sip:10.0.0.6 }
  - { name: "PBX 3", address: sip:10.0.0.7 }
`);
  t.equal(p.length, 2);
  t.match(p[0], /^trunks\[3\]\.name: a name of lower-case letters, digits and dashes/);
  t.equal(p[1], 'trunks[2].name: duplicate name "pbx1" (also trunks[0]); give each trunk its own name');
});

t.test('unknown profile and direction list the choices', async (t) => {
  const p = problems(`
trunks:
  - { name: a, address: sip:10.0.0.4, profile: avaya }
  - { name: b, address: sip:10.0.0.5, directions: [watch, outbound] }
  - { name: c, address: sip:10.0.0.6, directions: [] }
  - { name: d, address: sip:10.0.0.7, directions: [watch, watch] }
`);
  t.same(p, [
    'trunks[0].profile: one of: generic, asterisk, cisco, kamailio, polycom',
    'trunks[1].directions[1]: one of: watch, publish, inbound',
    'trunks[2].directions: at least one of watch, publish, inbound (or leave directions out for [watch, inbound])',
    'trunks[3].directions[1]: "watch" is listed twice; list it once',
  ]);
});

t.test('users: invalid pattern, wrong shapes, bad ids', async (t) => {
  const p = problems(`
trunks:
  - { name: a, address: sip:10.0.0.4, users: { pattern: "^10(\\\\d" } }
  - { name: b, address: sip:10.0.0.5, users: some }
  - { name: c, address: sip:10.0.0.6, users: { regex: "x" } }
  - { name: d, address: sip:10.0.0.7, users: [anna, "not an id", {x: 1}] }
`);
  t.equal(p.length, 5);
  t.match(p[0], /^trunks\[0\]\.users\.pattern: not a valid regular expression \(.*\); fix it/);
  t.match(p[1], /^trunks\[1\]\.users: write all, a list of user ids like \[anna, bert\], or \{ pattern:/);
  t.match(p[2], /^trunks\[2\]\.users: an object here takes only pattern;/);
  t.match(p[3], /^trunks\[3\]\.users\[1\]: not a user id;/);
  t.match(p[4], /^trunks\[3\]\.users\[2\]: not a user id;/);
});

t.test('numbers out of range, unknown keys, inbound addresses', async (t) => {
  const p = problems(`
trunks:
  - name: a
    address: sip:10.0.0.4
    optionsIntervalSec: -1
    watch: { expires: 10, ratePerSec: 0 }
    inboundAddresses: [10.0.0.0/33, bogus, "2001:db8::/48"]
    pasword: x
`);
  t.same(p.sort(), [
    'trunks[0].inboundAddresses[0]: not an IP address or CIDR block; write e.g. 10.0.0.5, 10.0.0.0/24 or 2001:db8::/48',
    'trunks[0].inboundAddresses[1]: not an IP address or CIDR block; write e.g. 10.0.0.5, 10.0.0.0/24 or 2001:db8::/48',
    'trunks[0].optionsIntervalSec: seconds from 0 (no pings) to 3600',
    'trunks[0].watch.expires: seconds from 60 to 86400',
    'trunks[0].watch.ratePerSec: from 1 to 10000',
    'trunks[0]: Unrecognized key: "pasword"',
  ]);
});

t.test('credentials need a password; tls needs a TLS address and cert with key', async (t) => {
  const p = problems(`
trunks:
  - { name: a, address: sip:10.0.0.4, credentials: { username: gw, password: "" } }
  - { name: b, address: sip:10.0.0.5;transport=tcp, tls: { caPath: /ca.pem } }
  - { name: c, address: sip:10.0.0.6;transport=tls, tls: { certPath: /c.pem } }
`);
  t.same(p, [
    'trunks[0].credentials.password: the password (write ${ENV_VAR} to keep it out of the file)',
    'trunks[1].tls: tls settings need a TLS address; write ;transport=tls (or sips:) in address or outboundProxy, or remove tls',
    'trunks[2].tls.keyPath: mutual TLS needs both certPath and keyPath; give both or neither',
  ]);
});

t.test('sip.access: defaults, bad values, duplicate users', async (t) => {
  const c = parse(`
sip:
  access:
    trusted: [192.168.10.0/24]
    challenge: 407
    realm: gw.example.com
    users: [{ username: console1, password: pw }]
`);
  t.same(c.sip.access, { trusted: ['192.168.10.0/24'], challenge: 407, realm: 'gw.example.com', users: [{ username: 'console1', password: 'pw' }] });
  const p = problems(`
sip:
  access:
    mode: closed
    trusted: [192.168.10.0/40]
    challenge: 403
`);
  t.same(p, [
    'sip.access.mode: one of: open, restricted',
    'sip.access.trusted[0]: not an IP address or CIDR block; write e.g. 10.0.0.5, 10.0.0.0/24 or 2001:db8::/48',
    'sip.access.challenge: either 401 (WWW-Authenticate) or 407 (Proxy-Authenticate)',
  ]);
  t.same(problems('sip:\n  access:\n    users: [{ username: a, password: x }, { username: a, password: y }]\n'), [
    'sip.access.users[1].username: duplicate username "a" (also users[0]); give each user its own name',
  ]);
});

t.test('effectiveAccessMode: restricted once a trunk or a user exists', async (t) => {
  const none = accessSchema.parse({});
  t.equal(effectiveAccessMode(none, []), 'open');
  const trunks = trunksSchema.parse([{ name: 'a', address: 'sip:10.0.0.4' }]);
  t.equal(effectiveAccessMode(none, trunks), 'restricted');
  t.equal(effectiveAccessMode(accessSchema.parse({ users: [{ username: 'u', password: 'p' }] }), []), 'restricted');
  t.equal(effectiveAccessMode(accessSchema.parse({ mode: 'open' }), trunks), 'open');
});

t.test('unknownTrunkUsers names each unknown id with path and fix', async (t) => {
  const trunks = trunksSchema.parse([
    { name: 'a', address: 'sip:10.0.0.4', users: ['anna', 'carl'] },
    { name: 'b', address: 'sip:10.0.0.5' },
    { name: 'c', address: 'sip:10.0.0.6', users: ['dora'] },
  ]);
  t.same(unknownTrunkUsers(trunks, ['anna', 'bert']), [
    'trunks[0].users[1]: "carl" is not the id of any entry of users; add it to users or remove it from this list',
    'trunks[2].users[0]: "dora" is not the id of any entry of users; add it to users or remove it from this list',
  ]);
  t.same(unknownTrunkUsers(trunks, ['anna', 'carl', 'dora']), []);
});
