import t from 'tap';
import { parseDialogInfo, parsePidf, type DialogInfoDocument } from '../../src/bodies/index.js';
import type { Call, PresenceView, TelephonyState } from '../../src/core/person-state.js';
import { parseAccept } from '../../src/sip/header-values.js';
import { Headers } from '../../src/sip/headers.js';
import { createRequest, type SipRequest, type SipResponse } from '../../src/sip/message.js';
import { DialogPackage, dialogDocumentXml, pickSingleCall, syntheticDialogIds } from '../../src/simple/dialog-package.js';
import { CPIM_PIDF, PIDF, PresencePackage } from '../../src/simple/presence-package.js';
import type { InboundRequest } from '../../src/simple/stack-port.js';
import {
  DEFAULT_WATCHER_PROFILE_RULES,
  WatcherProfileSelector,
  watcherInfoOf,
  type WatcherProfile,
} from '../../src/simple/watcher-profile.js';
import { makeServer, settle, subscribe } from './helpers.js';

function view(patch: Partial<PresenceView> = {}): PresenceView {
  return {
    personId: 'alice',
    basic: 'open',
    activities: [],
    dnd: false,
    ringing: false,
    calls: [],
    revision: 1,
    changedAt: 0,
    source: 'none',
    ...patch,
  };
}

function accept(...values: string[]) {
  return parseAccept(values) ?? undefined;
}

const ENTITY = 'sip:1001@example.com';

t.test('selection: caller profile, then configured rules, then built-in rules', async (t) => {
  const sel = new WatcherProfileSelector([{ userAgent: '^Yealink', profile: 'polycom' }]);
  t.equal(sel.select(undefined), undefined, 'no watcher info');
  t.equal(sel.select({}), undefined, 'no User-Agent');
  t.equal(sel.select({ userAgent: 'Cisco-CP8845/14.2.1' }), 'cisco');
  t.equal(sel.select({ userAgent: 'Cisco-CP-7841-3PCC/11.3' }), 'cisco');
  t.equal(sel.select({ userAgent: 'CP-8851 sip' }), 'cisco', 'CP-<digit>');
  t.equal(sel.select({ userAgent: 'PolycomVVX-VVX_411-UA/6.4.3' }), 'polycom');
  t.equal(sel.select({ userAgent: 'PolyEdge-E350/8.0' }), 'polycom');
  t.equal(sel.select({ userAgent: 'polycom soundpoint' }), 'polycom', 'case-insensitive');
  t.equal(sel.select({ userAgent: 'Yealink SIP-T54W 96.86' }), 'polycom', 'configured rule');
  t.equal(sel.select({ userAgent: 'Linphone/5.2' }), undefined, 'no rule: Accept decides');
  t.equal(sel.select({ userAgent: 'Cisco-CP8845', profile: 'asterisk' }), 'asterisk', 'the caller wins over rules');
  t.equal(sel.select({ profile: 'rfc' }), 'rfc');

  const first = new WatcherProfileSelector([{ userAgent: 'Cisco', profile: 'rfc' }]);
  t.equal(first.select({ userAgent: 'Cisco-CP8845' }), 'rfc', 'configured rules come before the built-in ones');
  const only = new WatcherProfileSelector([], { defaults: false });
  t.equal(only.select({ userAgent: 'Cisco-CP8845' }), undefined, 'built-in rules can be left out');
  t.equal(DEFAULT_WATCHER_PROFILE_RULES.length, 2);

  // Repeated User-Agents are answered from the cache, with the same answer.
  for (let i = 0; i < 3; i++) t.equal(sel.select({ userAgent: 'Cisco-CP8845/14.2.1' }), 'cisco');
  // A huge User-Agent is cut before matching, not refused.
  t.equal(sel.select({ userAgent: 'x'.repeat(100_000) + 'Cisco' }), undefined);
  t.equal(sel.select({ userAgent: 'Cisco' + 'x'.repeat(100_000) }), 'cisco');
});

t.test('watcherInfoOf reads User-Agent and the access layer profile', async (t) => {
  const h = new Headers();
  h.append('user-agent', 'Cisco-CP8845/14.2.1');
  const request = createRequest('SUBSCRIBE', 'sip:a@b', h);
  t.same(watcherInfoOf({ request }), { userAgent: 'Cisco-CP8845/14.2.1' });
  t.same(watcherInfoOf({ request, watcherProfile: 'asterisk' }), { userAgent: 'Cisco-CP8845/14.2.1', profile: 'asterisk' });
  t.same(watcherInfoOf({ request: createRequest('SUBSCRIBE', 'sip:a@b', new Headers()) }), {});
});

t.test('presence negotiation by profile', async (t) => {
  const pkg = new PresencePackage({ view: () => view() });
  const cisco = { userAgent: 'Cisco-CP8845/14.2.1' };
  t.same(pkg.negotiate(accept('application/pidf+xml'), cisco), { contentType: PIDF, variant: 'cisco' }, 'Cisco UA with pidf+xml');
  t.same(pkg.negotiate(undefined, cisco), { contentType: PIDF, variant: 'cisco' }, 'Cisco UA without Accept');
  t.same(pkg.negotiate(accept('application/cpim-pidf+xml'), cisco), { contentType: CPIM_PIDF, variant: 'cisco' });
  t.same(pkg.negotiate(accept('application/cpim-pidf+xml'), { profile: 'rfc' }), { contentType: CPIM_PIDF, variant: 'rfc' }, 'explicit rfc keeps the label, drops the flavor');
  t.same(pkg.negotiate(accept('application/cpim-pidf+xml'), { userAgent: 'Linphone' }), { contentType: CPIM_PIDF, variant: 'cisco' }, 'no rule: cpim-pidf only means Cisco, as before');
  t.same(pkg.negotiate(accept('application/pidf+xml'), { userAgent: 'PolycomVVX' }), { contentType: PIDF, variant: 'rfc' }, 'polycom presence is plain PIDF');
  t.same(pkg.negotiate(accept('application/pidf+xml'), { profile: 'asterisk' }), { contentType: PIDF, variant: 'rfc' });
  t.equal(pkg.negotiate(accept('application/simple-message-summary'), cisco), undefined, 'a profile does not bypass Accept');
  t.same(pkg.negotiate(accept('application/pidf+xml', 'application/xpidf+xml'), { profile: 'xpidf' }), { contentType: 'application/xpidf+xml', variant: 'xpidf' }, 'the xpidf profile picks XPIDF when accepted');
  t.same(pkg.negotiate(accept('application/pidf+xml'), { profile: 'xpidf' }), { contentType: PIDF, variant: 'rfc' }, 'but never against Accept');
});

t.test('Cisco flavor person activities: on-the-phone, alerting, busy, ce:dnd, empty when idle', async (t) => {
  let current = view();
  const pkg = new PresencePackage({ view: () => current });
  const fmt = pkg.negotiate(accept('application/pidf+xml'), { userAgent: 'Cisco-CP8845' })!;
  const plain = pkg.negotiate(accept('application/pidf+xml'))!;
  const render = (f = fmt) => pkg.render('alice', { entity: ENTITY, format: f, version: 0 });

  const idle = render().toString();
  t.match(idle, /<rpid:activities\/>/, 'idle: an empty activities element');
  t.notMatch(render(plain).toString(), /activities/, 'the rfc flavor writes none');

  current = view({ revision: 2, activities: ['on-the-phone'], calls: [{ id: 'c', phase: 'confirmed' }] });
  t.same(parsePidf(render()).persons[0]!.activities, [{ name: 'on-the-phone', ns: 'rpid' }]);
  current = view({ revision: 3, activities: ['on-the-phone'], ringing: true, calls: [{ id: 'c', phase: 'early' }] });
  t.same(parsePidf(render()).persons[0]!.activities, [{ name: 'alerting', ns: 'cisco' }]);
  current = view({ revision: 4, activities: ['busy'], dnd: true });
  t.same(parsePidf(render()).persons[0]!.activities, [{ name: 'dnd', ns: 'cisco' }]);
  current = view({ revision: 5, activities: ['busy'] });
  t.same(parsePidf(render()).persons[0]!.activities, [{ name: 'busy', ns: 'rpid' }]);
});

const RINGING: Call = {
  id: 'c-ring',
  phase: 'early',
  direction: 'recipient',
  remote: { identity: 'sip:2002@example.com', display: 'Front Desk' },
};
const TALKING: Call = { id: 'c-talk', phase: 'confirmed', callId: 'abc@pbx', localTag: 'lt1', remoteTag: 'rt1', direction: 'initiator' };
const HELD: Call = { id: 'c-held', phase: 'confirmed', held: true };
const TEAMS: Call = { id: 'busy-alice', phase: 'confirmed', synthetic: true };

function dialogs(xml: string): DialogInfoDocument {
  return parseDialogInfo(xml);
}

t.test('rfc dialog flavor: every live call, none when idle', async (t) => {
  t.same(dialogs(dialogDocumentXml(view(), ENTITY, 0)).dialogs, [], 'idle');
  const doc = dialogs(dialogDocumentXml(view({ calls: [RINGING, TALKING, { id: 'gone', phase: 'terminated' }] }), ENTITY, 3));
  t.same(doc.dialogs.map((d) => d.id), ['c-ring', 'c-talk']);
  t.equal(doc.dialogs[1]!.callId, 'abc@pbx');
});

t.test('polycom dialog flavor: call-id, tags, direction and remote identity on every dialog', async (t) => {
  const xml = dialogDocumentXml(view({ calls: [TEAMS, TALKING, RINGING] }), ENTITY, 0, { flavor: 'polycom', resource: 'alice' });
  const doc = dialogs(xml);
  t.equal(doc.dialogs.length, 3);
  for (const d of doc.dialogs) {
    t.ok(d.callId, `${d.id} has a call-id`);
    t.ok(d.localTag, `${d.id} has a local-tag`);
    t.ok(d.remoteTag, `${d.id} has a remote-tag`);
    t.ok(d.direction, `${d.id} has a direction`);
  }
  const [teams, talking, ring] = doc.dialogs;
  const ids = syntheticDialogIds('alice', 'busy-alice');
  t.same([teams!.callId, teams!.localTag, teams!.remoteTag], [ids.callId, ids.localTag, ids.remoteTag], 'the Teams call gets generated ids');
  t.equal(teams!.direction, 'initiator');
  t.same([talking!.callId, talking!.localTag, talking!.remoteTag, talking!.direction], ['abc@pbx', 'lt1', 'rt1', 'initiator'], 'real ids kept');
  t.equal(ring!.direction, 'recipient');
  t.equal(ring!.remote?.identity, 'sip:2002@example.com');
  t.equal(ring!.remote?.display, 'Front Desk');

  const again = dialogs(dialogDocumentXml(view({ revision: 9, calls: [TEAMS] }), ENTITY, 1, { flavor: 'polycom', resource: 'alice' }));
  t.equal(again.dialogs[0]!.callId, ids.callId, 'stable across renderings');
  t.not(syntheticDialogIds('bob', 'busy-alice').callId, ids.callId, 'differs per person');
  t.not(ids.localTag, ids.remoteTag);
  t.match(ids.callId, /^[A-Za-z0-9.@-]+$/, 'a valid Call-ID word');
});

t.test('asterisk dialog flavor: one dialog id=extension by priority, terminated when idle, no call-id', async (t) => {
  const render = (calls: Call[], extension?: string) => {
    const options = extension === undefined ? { flavor: 'asterisk' as const } : { flavor: 'asterisk' as const, extension };
    return dialogs(dialogDocumentXml(view({ calls }), ENTITY, 0, options));
  };
  const idle = render([]);
  t.equal(idle.dialogs.length, 1, 'always one dialog');
  t.same(idle.dialogs[0], { id: '1001', state: 'terminated' }, 'terminated when idle, id from the entity');

  const ring = render([TALKING, RINGING]).dialogs;
  t.equal(ring.length, 1);
  t.equal(ring[0]!.state, 'early', 'early beats confirmed');
  t.equal(ring[0]!.direction, 'recipient');
  t.equal(ring[0]!.local?.identity, ENTITY);
  t.equal(ring[0]!.remote?.identity, 'sip:2002@example.com');
  t.equal(ring[0]!.callId, undefined, 'no call-id');
  t.equal(ring[0]!.localTag, undefined);

  const busy = render([HELD, TALKING], '4410').dialogs;
  t.same(busy, [{ id: '4410', state: 'confirmed' }], 'the call not on hold wins; extension given');
  const held = render([HELD]).dialogs[0]!;
  t.equal(held.state, 'confirmed');
  t.same(held.local?.targetParams, [['+sip.rendering', 'no']], 'on hold: +sip.rendering=no');

  t.equal(pickSingleCall([{ id: 'a', phase: 'trying' }, { id: 'b', phase: 'proceeding' }])?.id, 'b', 'proceeding beats trying');
  t.equal(pickSingleCall([{ id: 'a', phase: 'terminated' }, { id: 'b', phase: 'trying' }])?.id, 'b');
  t.equal(pickSingleCall([]), undefined);

  const noUser = dialogs(dialogDocumentXml(view({ calls: [] }), 'sip:example.com', 0, { flavor: 'asterisk' }));
  t.equal(noUser.dialogs[0]!.id, 'alice', 'no user part: the person id');
});

t.test('dialog package: profile from the watcher, cache keyed by profile, version spliced', async (t) => {
  let current = view({ calls: [TEAMS] });
  const pkg = new DialogPackage({ view: () => current }, { extensionOf: (r) => (r === 'alice' ? '1001' : undefined) });
  const rfc = pkg.negotiate(accept('application/dialog-info+xml'))!;
  const poly = pkg.negotiate(accept('application/dialog-info+xml'), { userAgent: 'PolycomVVX-VVX_411-UA/6.4.3' })!;
  const ast = pkg.negotiate(undefined, { profile: 'asterisk' })!;
  const cisco = pkg.negotiate(undefined, { userAgent: 'Cisco-CP8845' })!;
  t.same([rfc.variant, poly.variant, ast.variant, cisco.variant], ['rfc', 'polycom', 'asterisk', 'rfc']);
  t.equal(pkg.negotiate(accept('application/pidf+xml'), { profile: 'polycom' }), undefined, '406 stays 406');

  const entity = 'sip:alice@example.com';
  const r = (format = rfc, version = 0) => pkg.render('alice', { entity, format, version }).toString();
  const plainDoc = dialogs(r());
  t.equal(plainDoc.dialogs[0]!.callId, undefined, 'rfc: no made-up call-id');
  const polyDoc = dialogs(r(poly, 4));
  t.equal(polyDoc.version, 4);
  t.ok(polyDoc.dialogs[0]!.callId, 'polycom: made-up call-id');
  const astDoc = dialogs(r(ast, 2));
  t.same(astDoc.dialogs, [{ id: '1001', state: 'confirmed' }], 'asterisk: id is the extension');
  t.equal(r(poly, 7).replace('version="7"', 'version="4"'), r(poly, 4), 'only the version differs');
  current = view({ revision: 2, calls: [] });
  t.same(dialogs(r(ast)).dialogs, [{ id: '1001', state: 'terminated' }], 'a new revision renders again');
  t.same(dialogs(r(poly)).dialogs, []);
});

function inbound(request: SipRequest, responses: SipResponse[], profile?: WatcherProfile): InboundRequest {
  const req: InboundRequest = {
    request,
    source: { protocol: 'udp', address: '198.51.100.7', port: 5062 },
    local: { protocol: 'udp', address: '192.0.2.10', port: 5060 },
    respond: (r) => responses.push(r),
  };
  if (profile !== undefined) req.watcherProfile = profile;
  return req;
}

t.test('notifier: User-Agent and the trunk profile pick the body', async (t) => {
  const { stack, store, now } = makeServer();
  const responses: SipResponse[] = [];
  const ciscoPhone = subscribe({ accept: ['application/pidf+xml'] });
  ciscoPhone.headers.append('user-agent', 'Cisco-CP8845/14.2.1');
  stack.handler!(inbound(ciscoPhone, responses));
  const polyPhone = subscribe({ event: 'dialog', accept: ['application/dialog-info+xml'] });
  polyPhone.headers.append('user-agent', 'PolycomVVX-VVX_411-UA/6.4.3');
  stack.handler!(inbound(polyPhone, responses));
  // A trunk's profile beats the User-Agent.
  const trunk = subscribe({ event: 'dialog', accept: ['application/dialog-info+xml'] });
  trunk.headers.append('user-agent', 'PolycomVVX');
  stack.handler!(inbound(trunk, responses, 'asterisk'));
  t.same(responses.map((r) => r.status), [200, 200, 200]);

  const [pidf, poly, ast] = stack.notifies();
  t.equal(pidf!.request.headers.get('content-type'), 'application/pidf+xml');
  t.match(pidf!.request.body.toString(), /<rpid:activities\/>/, 'Cisco flavor for a Cisco User-Agent');
  t.same(parseDialogInfo(poly!.request.body).dialogs, [], 'polycom idle: no dialog');
  t.same(parseDialogInfo(ast!.request.body).dialogs, [{ id: '1001', state: 'terminated' }], 'asterisk idle: terminated dialog, id = the extension');
  for (const p of stack.pending()) p.answer(200);
  await settle();

  const inCall: TelephonyState = {
    line: 'in-call',
    dnd: false,
    calls: [{ id: 'c1', phase: 'confirmed', direction: 'initiator', remote: { identity: 'sip:2002@example.com' } }],
    origin: 'test',
    at: now(),
  };
  store.setTelephony('alice', inCall);
  await settle();
  const [pidf2, poly2, ast2] = stack.notifies().slice(3);
  t.same(parsePidf(pidf2!.request.body).persons[0]!.activities, [{ name: 'on-the-phone', ns: 'rpid' }]);
  const polyDialog = parseDialogInfo(poly2!.request.body).dialogs[0]!;
  t.ok(polyDialog.callId && polyDialog.localTag && polyDialog.remoteTag, 'polycom: call-id and tags');
  t.equal(polyDialog.remote?.identity, 'sip:2002@example.com');
  t.same(parseDialogInfo(ast2!.request.body).dialogs, [{ id: '1001', state: 'confirmed' }]);
});
