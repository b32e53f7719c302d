import t from 'tap';
import { parsePidf } from '../../src/bodies/index.js';
import type { PresenceView } from '../../src/core/person-state.js';
import { UpstreamPublisher } from '../../src/simple/upstream-publisher.js';
import { silentLogger } from '../../src/util/logger.js';
import { manualClock, PBX, publishTarget, ScriptedSender, settle } from './upstream-fakes.js';

function view(over: Partial<PresenceView> = {}): PresenceView {
  return {
    personId: 'alice',
    basic: 'open',
    activities: [],
    dnd: false,
    ringing: false,
    calls: [],
    revision: 1,
    changedAt: 0,
    source: 'teams',
    ...over,
  };
}

function setup(closeTimeoutMs = 2_000) {
  const clock = manualClock();
  const sender = new ScriptedSender();
  const items: string[] = [];
  const auth: string[] = [];
  const publisher = new UpstreamPublisher({
    sender,
    wheel: clock.wheel,
    logger: silentLogger(),
    clock: { now: clock.now },
    random: () => 0.5,
    backoff: { minMs: 1_000, maxMs: 60_000 },
    closeTimeoutMs,
    onItem: (trunk, personId, up, error) => items.push(`${trunk}/${personId} ${up ? 'up' : 'down'}${error !== undefined ? ` ${error}` : ''}`),
    onAuth: (trunk, ok) => auth.push(`${trunk} ${ok}`),
  });
  return { clock, sender, publisher, items, auth };
}

t.test('initial PUBLISH with PIDF body; 2xx ETag kept; refresh at 85 % with SIP-If-Match and no body', async (t) => {
  const s = setup();
  s.publisher.publish(publishTarget(), view({ activities: ['on-the-phone'], note: 'In a call (Teams)' }));
  await settle();
  t.equal(s.sender.sent.length, 1);
  const first = s.sender.sent[0]!;
  const h = first.request.headers;
  t.equal(first.request.method, 'PUBLISH');
  t.equal(first.request.uri, 'sip:alice@presence.example.com');
  t.equal(h.get('event'), 'presence');
  t.equal(h.get('expires'), '3600');
  t.equal(h.get('content-type'), 'application/pidf+xml');
  t.notOk(h.has('sip-if-match'));
  t.match(h.get('from')!, /^<sip:gateway@gw\.example\.com>;tag=/);
  t.equal(h.get('to'), '<sip:alice@presence.example.com>');
  t.same(first.options.destination, PBX);
  const doc = parsePidf(first.request.body);
  t.equal(doc.entity, 'sip:alice@presence.example.com');
  t.same(doc.persons[0]?.activities.map((a) => a.name), ['on-the-phone']);
  t.equal(doc.tuples[0]?.notes[0], 'In a call (Teams)');
  first.answer(200, { headers: [['sip-etag', 'et1'], ['expires', '1000']] });
  await settle();
  t.same(s.items, ['kam/alice up']);
  t.same(s.publisher.counts(), { kam: { up: 1, down: 0 } });

  s.clock.advance(849_000);
  await settle();
  t.equal(s.sender.sent.length, 1, 'nothing before 85 %');
  s.clock.advance(2_000);
  await settle();
  t.equal(s.sender.sent.length, 2);
  const refresh = s.sender.last().request;
  t.equal(refresh.headers.get('sip-if-match'), 'et1');
  t.equal(refresh.body.length, 0, 'refresh has no body');
  t.notOk(refresh.headers.has('content-type'));
  t.equal(refresh.headers.get('call-id'), first.request.headers.get('call-id'));
  t.equal(refresh.headers.get('cseq'), '2 PUBLISH');
  s.sender.last().answer(200, { headers: [['sip-etag', 'et2'], ['expires', '1000']] });
  await settle();
  s.publisher.publish(publishTarget(), view({ activities: ['away'] }));
  await settle();
  t.equal(s.sender.last().request.headers.get('sip-if-match'), 'et2', 'the new ETag is used');
});

t.test('changed view → modify (SIP-If-Match + body); the same view again sends nothing', async (t) => {
  const s = setup();
  s.publisher.publish(publishTarget(), view());
  await settle();
  s.sender.last().answer(200, { headers: [['sip-etag', 'e1'], ['expires', '3600']] });
  await settle();
  s.publisher.publish(publishTarget(), view({ revision: 2 }));
  await settle();
  t.equal(s.sender.sent.length, 1, 'same body: nothing to send');
  s.publisher.publish(publishTarget(), view({ activities: ['away'], revision: 3 }));
  await settle();
  t.equal(s.sender.sent.length, 2);
  const mod = s.sender.last().request;
  t.equal(mod.headers.get('sip-if-match'), 'e1');
  t.same(parsePidf(mod.body).persons[0]?.activities.map((a) => a.name), ['away']);
});

t.test('one request in flight; changes meanwhile coalesce to the latest', async (t) => {
  const s = setup();
  s.publisher.publish(publishTarget(), view());
  await settle();
  s.publisher.publish(publishTarget(), view({ activities: ['away'] }));
  s.publisher.publish(publishTarget(), view({ activities: ['meeting'] }));
  s.publisher.publish(publishTarget(), view({ activities: ['busy'] }));
  await settle();
  t.equal(s.sender.sent.length, 1, 'still one in flight');
  s.sender.last().answer(200, { headers: [['sip-etag', 'e1']] });
  await settle();
  t.equal(s.sender.sent.length, 2, 'one follow-up');
  t.same(parsePidf(s.sender.last().request.body).persons[0]?.activities.map((a) => a.name), ['busy']);
});

t.test('412 → a new initial publication with the body', async (t) => {
  const s = setup();
  s.publisher.publish(publishTarget(), view());
  await settle();
  s.sender.last().answer(200, { headers: [['sip-etag', 'e1']] });
  await settle();
  s.publisher.refreshAll('kam');
  await settle();
  t.equal(s.sender.last().request.headers.get('sip-if-match'), 'e1');
  t.equal(s.sender.last().request.body.length, 0);
  s.sender.last().answer(412);
  await settle();
  t.equal(s.sender.sent.length, 3);
  const again = s.sender.last().request;
  t.notOk(again.headers.has('sip-if-match'), 'initial: no SIP-If-Match');
  t.ok(again.body.length > 0, 'with the full body');
});

t.test('423 → Min-Expires; 401 answered; Cisco flavor body', async (t) => {
  const s = setup();
  s.publisher.publish(publishTarget({ expires: 60, flavor: 'cisco', credentials: { username: 'gw', password: 'pw' } }), view({ dnd: true, activities: ['busy'] }));
  await settle();
  s.sender.last().answer(423, { headers: [['min-expires', '600']] });
  await settle();
  t.equal(s.sender.last().request.headers.get('expires'), '600');
  s.sender.last().answer(401, { headers: [['www-authenticate', 'Digest realm="kam", nonce="abc", qop="auth"']] });
  await settle();
  const authed = s.sender.last().request;
  t.match(authed.headers.get('authorization')!, /username="gw".*uri="sip:alice@presence\.example\.com"/);
  const doc = parsePidf(authed.body);
  t.same(doc.persons[0]?.activities.map((a) => `${a.ns}:${a.name}`), ['cisco:dnd']);
  s.sender.last().answer(200, { headers: [['sip-etag', 'x']] });
  await settle();
  t.same(s.auth, ['kam true']);
});

t.test('failure → down, retry with backoff carrying the latest state', async (t) => {
  const s = setup();
  s.publisher.publish(publishTarget(), view());
  await settle();
  s.sender.last().answer(503);
  await settle();
  t.match(s.items.at(-1), /kam\/alice down 503/);
  s.publisher.publish(publishTarget(), view({ activities: ['away'] }));
  await settle();
  t.equal(s.sender.sent.length, 1, 'waits for the backoff');
  s.clock.advance(1_100);
  await settle();
  t.equal(s.sender.sent.length, 2);
  t.same(parsePidf(s.sender.last().request.body).persons[0]?.activities.map((a) => a.name), ['away']);
});

t.test('undefined view removes the publication (Expires: 0 + SIP-If-Match)', async (t) => {
  const s = setup();
  s.publisher.publish(publishTarget(), view());
  await settle();
  s.sender.last().answer(200, { headers: [['sip-etag', 'e9']] });
  await settle();
  s.publisher.publish(publishTarget(), undefined);
  await settle();
  const rm = s.sender.last().request;
  t.equal(rm.headers.get('expires'), '0');
  t.equal(rm.headers.get('sip-if-match'), 'e9');
  t.equal(rm.body.length, 0);
  s.sender.last().answer(200);
  await settle();
  t.same(s.publisher.counts(), {}, 'forgotten');
  t.same(s.items, ['kam/alice up', 'kam/alice down']);
  s.clock.advance(4_000_000);
  await settle();
  t.equal(s.sender.sent.length, 2, 'no refresh after removal');
});

t.test('close() removes every publication, including one in flight, bounded', async (t) => {
  const s = setup(300);
  s.publisher.publish(publishTarget(), view());
  s.publisher.publish(publishTarget({ personId: 'bob', uri: 'sip:bob@presence.example.com' }), view({ personId: 'bob' }));
  await settle();
  s.sender.sent[0]!.answer(200, { headers: [['sip-etag', 'a']] });
  await settle();
  // bob's initial PUBLISH still in flight
  const closing = s.publisher.close();
  await settle();
  const removeAlice = s.sender.last();
  t.equal(removeAlice.request.headers.get('sip-if-match'), 'a');
  t.equal(removeAlice.request.headers.get('expires'), '0');
  s.sender.sent[1]!.answer(200, { headers: [['sip-etag', 'b']] });
  await settle();
  const removeBob = s.sender.last();
  t.equal(removeBob.request.headers.get('sip-if-match'), 'b', 'the in-flight one is removed once accepted');
  t.equal(removeBob.request.headers.get('expires'), '0');
  removeAlice.answer(200);
  await closing;
  t.equal(s.sender.sent.length, 4);
});
