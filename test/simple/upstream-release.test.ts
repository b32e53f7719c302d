/**
 * Releasing a trunk (its job moved to another node, src/store/cluster.ts):
 * the publisher and the watcher stop for that trunk without ending anything
 * there and without writing over what the next holder saves; the other
 * trunks go on. TeamsPublishing stops publishing to a dropped trunk.
 */
import t from 'tap';
import { Directory } from '../../src/core/directory.js';
import type { PresenceView } from '../../src/core/person-state.js';
import { PresenceHub } from '../../src/core/presence-hub.js';
import { TeamsPublishing } from '../../src/simple/upstream-policy.js';
import { UpstreamPublisher, type PublishTarget, type UpstreamPublicationSnapshot } from '../../src/simple/upstream-publisher.js';
import { UpstreamWatcher, type UpstreamTarget } from '../../src/simple/upstream-watcher.js';
import { silentLogger } from '../../src/util/logger.js';
import { bodyPackages } from '../helpers/packages.js';
import { manualClock, PBX, publishTarget, RecordingSink, ScriptedSender, settle } from './upstream-fakes.js';

const target = (trunk: string): PublishTarget => publishTarget({ trunk, expires: 600 });
const directory = new Directory([{ id: 'alice', displayName: 'Alice', extension: '1001', sipAors: ['sip:alice@gw.example.com'] }], { domains: ['gw.example.com'] });
const known = new PresenceHub(directory).view('alice');
const view = (activity: string): PresenceView => ({ ...known, activities: [activity] });

function publisher() {
  const clock = manualClock();
  const sender = new ScriptedSender();
  const saved: UpstreamPublicationSnapshot[] = [];
  const removed: string[] = [];
  const p = new UpstreamPublisher({ sender, wheel: clock.wheel, logger: silentLogger(), clock: { now: clock.now }, random: () => 0.5, backoff: { minMs: 1_000, maxMs: 60_000 } });
  p.onPersist({ save: (s) => saved.push(s), remove: (trunk) => removed.push(trunk) });
  return { clock, sender, p, saved, removed };
}

t.test('a released trunk: no removal, no refresh, an answer in flight saves nothing; the others go on', async (t) => {
  const { clock, sender, p, saved, removed } = publisher();
  p.publish(target('kam'), view('busy'));
  p.publish(target('other'), view('busy'));
  await settle();
  for (const s of sender.pending()) s.answer(200, { headers: [['sip-etag', `etag-${s.request.uri}`], ['expires', '600']] });
  await settle();
  t.equal(saved.length, 2);

  p.publish(target('kam'), view('away'));
  await settle();
  const inFlight = sender.pending();
  t.equal(inFlight.length, 1, 'a modify out');
  t.equal(p.release('kam'), 1);
  inFlight[0]!.answer(200, { headers: [['sip-etag', 'etag-new'], ['expires', '600']] });
  await settle();
  t.equal(saved.length, 2, 'the answer after the release is not saved (the next holder saves)');
  t.same(removed, [], 'nothing removed from the store');

  const before = sender.sent.length;
  clock.advance(600_000);
  await settle();
  const after = sender.sent.slice(before);
  t.ok(after.length >= 1, 'the other trunk is refreshed');
  t.ok(
    after.every((s) => s.request.headers.get('expires') !== '0'),
    'no removal (Expires: 0) anywhere',
  );
  t.equal(after.length, 1, 'the released trunk sends nothing more');
  for (const s of sender.pending()) s.answer(200, { headers: [['sip-etag', 'etag-other-2'], ['expires', '600']] });
  await settle();
  const closing = p.close();
  await settle();
  const removals = sender.pending();
  t.same(removals.map((s) => s.request.headers.get('expires')), ['0'], 'at close only the trunk still held is removed');
  for (const s of removals) s.answer(200);
  await closing;
});

t.test('TeamsPublishing: a dropped trunk is published to no more; added again, it is published at once', async (t) => {
  const published: string[] = [];
  let part = view('busy');
  const publishing = new TeamsPublishing({ teamsPart: () => part }, { publish: (target) => void published.push(target.trunk) });
  publishing.add(target('kam'));
  publishing.add(target('other'));
  publishing.changed('alice');
  t.same(published, ['kam', 'other']);
  publishing.drop('kam');
  part = view('away');
  publishing.changed('alice');
  t.same(published, ['kam', 'other', 'other'], 'only the trunk still held');
  publishing.add(target('kam'));
  publishing.changed('alice');
  t.same(published, ['kam', 'other', 'other', 'kam'], 'the trunk taken again gets the state it never had');
});

t.test('a released watch trunk: an in-flight SUBSCRIBE answered after the release is not ended from here', async (t) => {
  const clock = manualClock();
  const sender = new ScriptedSender();
  const watcher = new UpstreamWatcher({ sender, wheel: clock.wheel, logger: silentLogger(), clock: { now: clock.now }, random: () => 0.5, sink: new RecordingSink(), packages: bodyPackages(), refusals: 'throw' });
  t.teardown(() => watcher.close(false));
  const w: UpstreamTarget = { trunk: 'pbx1', personId: 'alice', uri: 'sip:1001@pbx.example.com', event: 'dialog', accept: ['application/dialog-info+xml'], expires: 3600, fromUri: 'sip:gateway@gw.example.com', destination: () => Promise.resolve(PBX) };
  watcher.add(w);
  await settle();
  t.equal(sender.sent.length, 1);
  t.equal(watcher.release('pbx1'), 1);
  sender.last().answer(200, { toTag: 'pbx-tag', headers: [['expires', '3600']] });
  await settle();
  clock.advance(3_600_000);
  await settle();
  t.equal(sender.sent.length, 1, 'no unSUBSCRIBE, no refresh');
  t.equal(watcher.stateOf('pbx1', 'alice'), undefined, 'not watched here any more');
});
