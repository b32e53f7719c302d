import t from 'tap';
import { loadConfigFile, parseConfig } from '../../src/config/loader.js';
import { configProblems as problems } from '../helpers/config-problems.js';

t.test('an empty file gives the defaults', async (t) => {
  const c = parseConfig('');
  t.same(c.sip.listen, [
    { transport: 'udp', address: '127.0.0.1', port: 5060 },
    { transport: 'tcp', address: '127.0.0.1', port: 5060 },
  ]);
  t.equal(c.subscriptions.minExpires, 60);
  t.equal(c.subscriptions.maxExpires, 3600);
  t.equal(c.log.level, 'info');
  t.same(c.users, []);
});

t.test('${ENV} and ${ENV:-default} are substituted', async (t) => {
  const c = parseConfig('sip:\n  domain: ${DOMAIN}\n  userAgent: "${UA:-gw}/1"\n', 'x.yaml', { DOMAIN: 'corp.example' });
  t.equal(c.sip.domain, 'corp.example');
  t.equal(c.sip.userAgent, 'gw/1');
});

t.test('an unset variable names the path and the variable', async (t) => {
  const p = problems(() => parseConfig('sip:\n  domain: ${NOPE}\n', 'x.yaml', {}));
  t.match(p[0], /^sip\.domain: environment variable NOPE is not set/);
});

t.test('a wrong value names the path, what is expected and what was given', async (t) => {
  const p = problems(() => parseConfig('sip:\n  listen:\n    - { transport: udp, address: 127.0.0.1, port: 70000 }\n'));
  t.equal(p.length, 1);
  t.match(p[0], /^sip\.listen\[0\]\.port: expected .*65535.* \(got 70000\)/);
});

t.test('an unknown key is named, with a hint', async (t) => {
  const p = problems(() => parseConfig('subscriptions:\n  maxExpire: 100\n'));
  t.match(p[0], /^subscriptions: unknown key "maxExpire"/);
});

t.test('an unknown transport lists the choices', async (t) => {
  const p = problems(() => parseConfig('sip:\n  listen:\n    - { transport: sctp, address: 127.0.0.1, port: 5060 }\n'));
  t.match(p[0], /sip\.listen\[0\]\.transport: expected one of: udp, tcp, tls, ws, wss \(got "sctp"\)/);
});

t.test('inconsistent expiry bounds are refused', async (t) => {
  const p = problems(() => parseConfig('publications:\n  minExpires: 600\n  defaultExpires: 300\n'));
  t.match(p[0], /^publications: minExpires <= defaultExpires <= maxExpires/);
});

t.test('users: extension as a number, duplicate ids and extensions, bad AoRs', async (t) => {
  const c = parseConfig('users:\n  - { id: anna, displayName: Anna, extension: 1001 }\n');
  t.equal(c.users[0]!.extension, '1001');
  const p = problems(() =>
    parseConfig(
      [
        'users:',
        '  - { id: anna, displayName: Anna, extension: 1001 }',
        '  - { id: anna, displayName: Other, extension: 1001 }',
        '  - { id: carl, displayName: Carl, sip: ["carl@example.com"] }',
      ].join('\n'),
    ),
  );
  t.ok(p.some((x) => /^users\[2\]\.sip\[0\]: expected a SIP address of record/.test(x)), p.join('\n'));
  t.ok(p.some((x) => /^users\[1\]\.id: duplicate id "anna" \(also users\[0\]\)/.test(x)), p.join('\n'));
  t.ok(p.some((x) => /^users\[1\]\.extension: extension 1001 is already users\[0\]'s/.test(x)), p.join('\n'));
});

t.test('YAML syntax errors give a line and column', async (t) => {
  const p = problems(() => parseConfig('sip:\n  domain: [unclosed\n'));
  t.match(p[0], /^line \d+, column \d+: /);
});

t.test('a missing file says so', async (t) => {
  const p = problems(() => loadConfigFile('/nonexistent/gw.yaml'));
  t.match(p[0], /cannot read the file \(ENOENT\)/);
});

t.test('the shipped configs are valid', async (t) => {
  const demo = loadConfigFile(new URL('../../config/demo.yaml', import.meta.url).pathname);
  t.ok(demo.users.length >= 3, 'demo has sample users');
  t.equal(demo.sip.listen.length, 2);
  const env = {
    SIP_DOMAIN: 'x.example',
    TENANT_ID: 'contoso.onmicrosoft.com',
    CLIENT_ID: '3a7c9e11-2b4d-4f60-8a1b-5c6d7e8f9a0b',
    CLIENT_SECRET: 'secret',
    SVC1_PASSWORD: 'pw',
    CONSOLE_PASS: 'pw',
    PBX_PASS: 'pw',
    ADMIN_TOKEN: 'a'.repeat(32),
    METRICS_TOKEN: 'm'.repeat(32),
  };
  const example = loadConfigFile(new URL('../../config/example.yaml', import.meta.url).pathname, env);
  t.equal(example.sip.domain, 'x.example');
  t.equal(example.graph?.serviceAccounts.length, 1);
  t.equal(demo.graphSimulator?.port, 9443, 'the demo runs the built-in Graph simulator');
});

t.test('graph and graphSimulator exclude each other; graph errors name the path', async (t) => {
  const graph = 'graph:\n  tenantId: common\n  clientId: not-a-guid\n';
  const p = problems(() => parseConfig(graph));
  t.ok(p.some((x) => /^graph\.tenantId: /.test(x) && /not "common"/.test(x)), p.join('\n'));
  t.ok(p.some((x) => /^graph\.clientId: expected the app registration's Application \(client\) id/.test(x)), p.join('\n'));
  const both = problems(() =>
    parseConfig(
      'graphSimulator: {}\ngraph:\n  tenantId: contoso.onmicrosoft.com\n  clientId: 3a7c9e11-2b4d-4f60-8a1b-5c6d7e8f9a0b\n  clientSecret: s\n',
    ),
  );
  t.ok(both.some((x) => /^graphSimulator: graphSimulator runs the demo tenant/.test(x)), both.join('\n'));
});

t.test('secure listeners need a certificate; tls and path only where they apply', async (t) => {
  const p = problems(() =>
    parseConfig(
      'sip:\n  listen:\n    - { transport: tls, address: 127.0.0.1, port: 5061 }\n    - { transport: udp, address: 127.0.0.1, port: 5060, path: /sip }\n    - { transport: tcp, address: 127.0.0.1, port: 5060, tls: { certPath: a.pem, keyPath: a.key } }\n',
    ),
  );
  t.ok(p.some((l) => /sip\.listen\[0\]\.tls: .*needs tls: \{ certPath, keyPath \}/.test(l)), p.join('\n'));
  t.ok(p.some((l) => /sip\.listen\[1\]\.path: path applies to ws and wss listeners only/.test(l)), p.join('\n'));
  t.ok(p.some((l) => /sip\.listen\[2\]\.tls: tls settings apply to tls and wss listeners only.*use transport: tls/.test(l)), p.join('\n'));
});

t.test('trunk users and list members must be configured users', async (t) => {
  const p = problems(() =>
    parseConfig(
      'users:\n  - { id: anna, displayName: Anna }\ntrunks:\n  - { name: pbx, address: "sip:10.0.0.5", users: [anna, zoe] }\nlists:\n  groups:\n    - { name: sales, uri: "sip:sales@example.com", members: [anna, max] }\n',
    ),
  );
  t.ok(p.some((l) => /^trunks\[0\]\.users\[1\]: "zoe" is not the id of any entry of users/.test(l)), p.join('\n'));
  t.ok(p.some((l) => /^lists\.groups\[0\]\.members\[1\]: "max" is not the id/.test(l)), p.join('\n'));
});

t.test('sip.advertisedHost must be a host name or address', async (t) => {
  const p = problems(() => parseConfig('sip:\n  advertisedHost: "gw example"\n'));
  t.match(p[0], /^sip\.advertisedHost: expected a DNS name or IP address/);
  t.equal(parseConfig('sip:\n  advertisedHost: 203.0.113.10\n').sip.advertisedHost, '203.0.113.10');
});
